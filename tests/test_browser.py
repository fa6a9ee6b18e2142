"""Every flow in a real browser: headless Chromium, through Playwright, against
the app served by waitress in a child process.

Browser contexts run with JavaScript disabled (the main flow runs once more
with it enabled), so passing these tests proves that the app works without
JavaScript: every flow is a plain form and pages refresh themselves.
"""

import os
import re
import sqlite3
import time
from pprint import pformat

import playwright.sync_api as playwright_api
import pytest
from browser_support import (
    LAPTOP,
    PASSWORD,
    PORTRAIT,
    SCREENSHOT_DIR,
    VIEWPORTS,
    WRITE_SCREENSHOTS,
    Server,
    api,
    arrive,
    axe_problems,
    contrast_problems,
    create_queue,
    focus_problems,
    join_url,
    layout_problems,
    my_number,
    open_page,
    press,
    sign_in,
    structure_problems,
    take_number,
)
from support import hours_ahead

expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("server_stays_healthy")]


# -- the flows -----------------------------------------------------------------


@pytest.mark.parametrize("javascript", [False, True], ids=["no-js", "js"])
def test_owner_creates_a_queue_and_serves_a_customer(new_page, queue_id, server, javascript):
    """The whole flow, with plain forms; and again with whatever JavaScript the app has."""
    owner = new_page(javascript=javascript)
    create_queue(owner, queue_id, title="CET236 lab help", name="Desk 1")
    expect(owner.locator("h1")).to_have_text("CET236 lab help")
    expect(owner.locator(".signed-in")).to_contain_text("Signed in as Desk 1")
    expect(owner.locator(".now-serving")).to_have_text("–")
    expect(owner.locator(".waiting-count")).to_have_text("0")
    link = join_url(owner)
    assert link == f"{server.url}/{queue_id}"
    expect(owner.locator("a.join-link")).to_have_text(link)

    customer = new_page(javascript=javascript)
    customer.goto(link)
    expect(customer.locator("h1")).to_have_text("CET236 lab help")
    customer.get_by_role("button", name="Take a number").click()
    expect(customer).to_have_url(re.compile(rf"/{queue_id}/ticket/[\w-]+$"))
    assert my_number(customer) == 1
    expect(customer.locator(".status-message")).to_have_text("You're next.")
    ticket_url = customer.url

    owner.reload()
    expect(owner.locator(".waiting-count")).to_have_text("1")
    press(owner, "Next")
    expect(owner.locator(".now-serving")).to_have_text("1")
    expect(owner.locator(".waiting-count")).to_have_text("0")

    customer.reload()
    expect(customer.locator(".ticket")).to_have_class(re.compile(r"\bstate-called\b"))
    expect(customer.locator(".status-message")).to_have_text("It's your turn — go to Desk 1.")

    # The queue's link leads a customer holding a ticket back to it.
    customer.goto(link)
    customer.get_by_role("link", name="You already have number 1 — see your ticket").click()
    expect(customer).to_have_url(ticket_url)

    press(owner, "Done")
    expect(owner.locator(".now-serving")).to_have_text("–")
    customer.reload()
    expect(customer.locator(".status-message")).to_have_text("You have been served. Thank you!")
    expect(customer.get_by_text("Leave the queue…")).to_be_hidden()

    customer.get_by_role("button", name="Take a new number").click()
    expect(customer).not_to_have_url(ticket_url)
    assert my_number(customer) == 2
    expect(customer.locator(".status-message")).to_have_text("You're next.")

    # Leaving asks first.
    customer.get_by_text("Leave the queue…").click()
    customer.get_by_role("button", name="Yes, leave the queue").click()
    expect(customer.locator(".status-message")).to_have_text("You left the queue.")
    expect(customer.get_by_text("Leave the queue…")).to_be_hidden()
    owner.reload()
    expect(owner.locator(".waiting-count")).to_have_text("0")

    customer.get_by_role("button", name="Take a new number").click()
    assert my_number(customer) == 3
    owner.reload()
    expect(owner.locator(".waiting-count")).to_have_text("1")


def test_customers_are_served_in_order_with_no_show_and_recall(new_page, queue_id):
    owner = create_queue(new_page(), queue_id, name="Counter A")
    link = join_url(owner)
    first, second = new_page(), new_page()
    assert take_number(first, link) == 1
    assert take_number(second, link) == 2
    second.reload()
    expect(second.locator(".status-message")).to_have_text("1 person ahead of you.")
    expect(second.locator(".status-detail")).to_contain_text("Position in line: 2")

    press(owner, "Next")
    press(owner, "Recall")
    expect(owner.locator(".figure-detail").first).to_contain_text("recalled 1×")
    first.reload()
    expect(first.locator(".status-message")).to_have_text("It's your turn — go to Counter A.")
    expect(first.locator(".status-detail")).to_have_text("You have been called again.")

    press(owner, "No show")
    first.reload()
    expect(first.locator(".status-message")).to_contain_text("your turn has passed")
    press(owner, "Next")
    expect(owner.locator(".now-serving")).to_have_text("2")
    second.reload()
    expect(second.locator(".status-message")).to_have_text("It's your turn — go to Counter A.")

    # Next with nobody waiting finishes the current customer.
    press(owner, "Next")
    expect(owner.locator(".now-serving")).to_have_text("–")
    expect(owner.locator(".waiting-count")).to_have_text("0")
    second.reload()
    expect(second.locator(".status-message")).to_have_text("You have been served. Thank you!")


def test_meta_refresh_alone_tells_the_customer_it_is_their_turn(new_page, queue_id):
    """JavaScript off, no click, no reload: the page refreshes itself."""
    owner = create_queue(new_page(), queue_id)
    customer = new_page()
    take_number(customer, join_url(owner))
    expect(customer.locator('meta[http-equiv="refresh"]')).to_have_attribute("content", "5")
    expect(customer.locator(".status-message")).to_have_text("You're next.")
    press(owner, "Next")
    expect(customer.locator(".status-message")).to_have_text(
        "It's your turn — go to Desk 1.", timeout=12_000
    )


def test_arriving_as_the_open_page_refreshes_itself_lands(chromium, tmp_path, queue_id):
    """The fixtures' reused contexts: ``arrive`` lands on the page however its
    meta refresh is timed. Going there in the same tab at the moment the page
    reloaded itself failed as "interrupted by another navigation", seen in CI,
    and failed again at once on each retry (7 and 10 times in 150 arrivals so
    timed, against 1-second refreshes)."""
    server = Server(tmp_path, settings={"refresh_seconds": 1}).start()
    page = None
    try:
        body = {"queue_id": queue_id, "title": "Lab", "password": PASSWORD, "name": "Desk 1"}
        api(server, "/api/v1/queues", **body)
        ticket = api(server, f"/api/v1/queues/{queue_id}/tickets")["links"]["page"]
        page, response = arrive(open_page(chromium, server), ticket)
        for n in range(25):
            time.sleep(0.85 + (n % 5) * 0.05)  # about when the page reloads itself
            page, response = arrive(page, ticket)
            assert response.status == 200
            expect(page.locator(".status-message")).to_have_text("You're next.")
    finally:
        if page is not None:
            page.context.close()
        server.stop()


def test_with_javascript_pages_update_themselves_without_reloading(new_page, queue_id):
    owner = create_queue(new_page(javascript=True), queue_id)
    board = new_page(javascript=True, viewport=LAPTOP)
    board.goto(f"/{queue_id}/board")
    expect(board.locator(".board-empty")).to_be_visible()
    for page in (owner, board):
        page.evaluate("window.stillTheSamePage = true")

    customer = new_page(javascript=True)
    take_number(customer, join_url(owner))
    expect(owner.locator(".waiting-count")).to_have_text("1")
    assert owner.evaluate("window.stillTheSamePage") is True
    # The console's tab says someone is waiting, in its page's words.
    expect(owner).to_have_title(re.compile("^● Someone is waiting – "))
    customer.evaluate("window.stillTheSamePage = true")

    press(owner, "Next")
    expect(customer.locator(".status-message")).to_have_text("It's your turn — go to Desk 1.")
    expect(customer.locator(".ticket")).to_have_class(re.compile(r"\bstate-called\b"))
    expect(customer).to_have_title("❗ Your turn! It's your turn — go to Desk 1.")
    expect(board.locator(".board-number")).to_have_text("1")
    expect(board.locator(".board-desk")).to_have_text("at Desk 1")
    expect(board.locator(".board-empty")).to_be_hidden()
    for page in (customer, board):
        assert page.evaluate("window.stillTheSamePage") is True
        expect(page.locator(".offline-note")).to_be_hidden()
        assert layout_problems(page) == []
    # Controls that need JavaScript show only with it.
    expect(customer.get_by_role("button", name="Enable sound")).to_be_visible()
    customer.get_by_role("button", name="Enable sound").click()
    expect(customer.get_by_role("button", name="Sound is on")).to_be_disabled()
    assert layout_problems(owner) == []


def test_with_javascript_a_ticket_page_hears_every_change_on_one_streamed_answer(
    new_page, queue_id
):
    owner = create_queue(new_page(javascript=True), queue_id)
    take_number(new_page(javascript=True), join_url(owner))
    customer = new_page(javascript=True)
    asked = []
    customer.on(
        "request", lambda r: asked.append(r) if re.search(r"/ticket/.*/updates", r.url) else None
    )
    take_number(customer, join_url(owner))
    expect(customer.locator(".ticket")).to_have_class(re.compile(r"\bstate-waiting\b"))
    customer.wait_for_timeout(300)
    press(owner, "Next")  # calls the first customer: this one is next
    expect(customer.locator(".status-message")).to_have_text("You're next.")
    press(owner, "Next")
    expect(customer.locator(".status-message")).to_have_text("It's your turn — go to Desk 1.")
    # The first view at once, then one stream for both changes: no request after a change.
    assert len(asked) == 2, [r.url for r in asked]
    first, stream = asked
    assert "since=" not in first.url and "since=" in stream.url
    assert stream.headers.get("accept") == "text/event-stream"
    assert stream.response() is not None  # its head came at once, before any change
    assert stream.response().headers["content-type"] == "text/event-stream; charset=UTF-8"
    expect(customer.locator(".offline-note")).to_be_hidden()


def test_with_javascript_take_a_number_appears_the_moment_the_queue_opens(
    chromium, tmp_path, queue_id
):
    clock = tmp_path / "clock"
    clock.write_text("0")
    server = Server(tmp_path, settings={"push_hold_seconds": 20}, clock_file=clock).start()
    page = None
    try:
        body = {"queue_id": queue_id, "title": "Lab", "password": PASSWORD, "name": "Desk 1"}
        created = api(server, "/api/v1/queues", **body)
        opens, closes = hours_ahead()
        hours = {"days": list(range(7)), "timezone": "UTC"}
        hours["opens"], hours["closes"] = opens.strftime("%H:%M"), closes.strftime("%H:%M")
        api(server, f"/api/v1/queues/{queue_id}/hours", token=created["token"], **hours)
        clock.write_text(str(opens.timestamp() - time.time() - 3))  # 3 s before it opens

        page = open_page(chromium, server, javascript=True)
        page.goto(f"/{queue_id}")
        take = page.get_by_role("button", name="Take a number")
        expect(page.locator(".notice")).to_contain_text("The queue is closed. It opens")
        expect(take).to_be_hidden()
        # Nothing is written when it opens: the held update ends at that moment.
        expect(take).to_be_visible(timeout=8_000)
        expect(page.locator(".notice")).to_be_hidden()
        take.click()
        page.wait_for_url(f"**/{queue_id}/ticket/*")
        assert my_number(page) == 1
    finally:
        if page is not None:
            page.context.close()
        server.stop()


def test_a_second_servicer_signs_in_and_calls_a_customer(new_page, queue_id):
    owner = create_queue(new_page(), queue_id)
    link = join_url(owner)

    helper = new_page()
    helper.goto(f"/{queue_id}/serve")
    expect(helper.locator("h1")).to_have_text("Serve “CET236 lab help”")
    helper.get_by_label("Your name or desk").fill("Desk 2")
    helper.get_by_label("Queue password").fill("not the password")
    helper.get_by_role("button", name="Sign in").click()
    error = helper.locator("#password-error .error-message")
    expect(error).to_have_text(re.compile("^That is not this queue's password."))
    expect(error).to_be_visible()
    expect(helper.get_by_label("Your name or desk")).to_have_value("Desk 2")
    expect(helper.get_by_label("Queue password")).to_have_value("")

    sign_in(helper, queue_id, name="Desk 2")
    expect(helper).to_have_url(re.compile(rf"/{queue_id}/serve$"))
    expect(helper.locator(".signed-in")).to_contain_text("Signed in as Desk 2")

    customer = new_page()
    take_number(customer, link)
    press(helper, "Next")
    expect(helper.locator(".now-serving")).to_have_text("1")
    customer.reload()
    expect(customer.locator(".status-message")).to_have_text("It's your turn — go to Desk 2.")
    owner.reload()
    expect(owner.get_by_text("Also serving")).to_have_text(re.compile(r"Also serving: 1 at Desk 2"))

    press(helper, "Sign out")
    press(helper, "Finish #1 as served")
    expect(helper.locator(".left-reason")).to_have_text("You signed out.")
    expect(helper.get_by_label("Queue password")).to_be_visible()


def _assert_error_next_to(page, field_id, message):
    """The message shows right below its field, and the field is marked."""
    field = page.locator(f"#{field_id}")
    error = page.locator(f"#{field_id}-error .error-message")
    expect(error).to_have_text(message)
    expect(error).to_be_visible()
    expect(field).to_have_class(re.compile(r"\berror\b"))
    field_box, error_box = field.bounding_box(), error.bounding_box()
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 24
    red = "rgb(176, 0, 32)"
    assert error.evaluate("e => getComputedStyle(e).color") == red
    assert field.evaluate("e => getComputedStyle(e).borderTopColor") == red


def test_bad_input_shows_an_error_next_to_each_field(new_page, queue_id):
    page = new_page()
    page.goto("/")
    page.get_by_label("Link name").fill("A!")
    page.get_by_label("Title shown to customers").fill("My queue")
    page.get_by_label("Your password").fill("short")
    page.get_by_label("Your name or desk").fill("")
    page.get_by_role("button", name="Create a queue").click()

    expect(page.locator("h1")).to_have_text("Take A Number")
    _assert_error_next_to(
        page,
        "queue_id",
        "Use 3 to 20 characters: lowercase letters, digits and '-' (not at the start or end).",
    )
    _assert_error_next_to(page, "password", "Use at least 8 characters.")
    _assert_error_next_to(page, "name", "Please fill this in.")
    expect(page.locator("#title-error .error-message")).to_have_count(0)
    # What was typed is kept, except the password.
    expect(page.get_by_label("Link name")).to_have_value("A!")
    expect(page.get_by_label("Title shown to customers")).to_have_value("My queue")
    expect(page.get_by_label("Your password")).to_have_value("")
    assert layout_problems(page) == []

    # A reserved word, then a name already taken.
    page.get_by_label("Link name").fill("admin")
    page.get_by_label("Your password").fill("long enough")
    page.get_by_label("Your name or desk").fill("Desk 1")
    page.get_by_role("button", name="Create a queue").click()
    _assert_error_next_to(page, "queue_id", "'admin' is reserved; choose another name.")

    create_queue(new_page(), queue_id)
    page.get_by_label("Link name").fill(queue_id)
    page.get_by_label("Your password").fill("long enough")
    page.get_by_role("button", name="Create a queue").click()
    _assert_error_next_to(page, "queue_id", "That name is taken; choose another.")


def test_an_unknown_queue_says_to_check_the_link_and_still_lets_one_create_it(new_page, queue_id):
    page = new_page()
    response = page.goto(f"/{queue_id}")
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("No such queue")
    expect(page.locator(".lead")).to_contain_text("Check the link")
    page.get_by_role("link", name=f"Create the queue “{queue_id}”").click()
    expect(page.get_by_label("Link name")).to_have_value(queue_id)
    page.get_by_label("Title shown to customers").fill("Found it")
    page.get_by_label("Your password").fill("long enough")
    page.get_by_role("button", name="Create a queue").click()
    expect(page).to_have_url(re.compile(rf"/{queue_id}/serve$"))
    expect(page.locator("h1")).to_have_text("Found it")


# -- every page, on a phone held both ways and on a laptop ----------------------


@pytest.fixture(scope="module")
def scenario(chromium, server):
    """A queue mid-service: number 1 called at Desk 1, numbers 2 and 3 waiting.

    Returns the address of each page, and the servicer's cookies.
    """
    queue = "lab-help"
    owner = open_page(chromium, server)
    create_queue(owner, queue, title="CET236 lab help — Tuesday afternoon, room B204")
    link = join_url(owner)
    customers = [open_page(chromium, server) for _ in range(3)]
    tickets = []
    for customer in customers:
        take_number(customer, link)
        tickets.append(customer.url)
    press(owner, "Next")
    pages = {
        "home": "/",
        "join": f"/{queue}",
        "ticket-called": tickets[0],
        "ticket-waiting": tickets[1],
        "console": f"/{queue}/serve",
        "sign-in": f"/{queue}/serve",
        "404": "/no-such-queue",
        "board": f"/{queue}/board",
    }
    servicer_state = owner.context.storage_state()
    for page in [owner, *customers]:
        page.context.close()
    return {"pages": pages, "servicer": servicer_state}


@pytest.fixture(scope="module")
def visit(chromium, server, scenario):
    """Load one of the scenario's pages at a viewport, in a reused browser context.

    One context per viewport for the servicer (console) and one for everybody
    else, whose cookies are cleared before each visit: a fresh visitor each time.
    """
    contexts = {}

    def load(name, viewport, theme="light", javascript=False):
        who = "servicer" if name == "console" else "visitor"
        key = (who, tuple(viewport.values()), theme, javascript)
        if key not in contexts:
            state = scenario["servicer"] if who == "servicer" else None
            contexts[key] = open_page(
                chromium,
                server,
                viewport=viewport,
                storage_state=state,
                theme=theme,
                javascript=javascript,
            )
        if who == "visitor":
            contexts[key].context.clear_cookies()
        page, response = arrive(contexts[key], scenario["pages"][name])
        contexts[key] = page
        assert response.status == (404 if name == "404" else 200)
        return page

    yield load
    for page in contexts.values():
        page.context.close()


PAGES = ["home", "join", "ticket-called", "ticket-waiting", "console", "sign-in", "404", "board"]
BIG_FIGURES = {
    "ticket-called": ".my-number .number",
    "ticket-waiting": ".my-number .number",
    "console": ".now-serving",
    "board": ".board-number",
}


# Screenshots for a person to judge the design: docs/screenshots/<file>.
SCREENSHOTS = {
    ("console", "portrait"): "console-360.png",
    # The join and ticket pages': tests/test_browser_customer.py; the home page, with the
    # owner's queues on it: tests/test_browser_owner.py.
    ("console", "laptop"): "console-1280.png",
}


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("name", PAGES)
def test_layout(visit, name, viewport):
    page = visit(name, VIEWPORTS[viewport])
    if WRITE_SCREENSHOTS and (name, viewport) in SCREENSHOTS:
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
        path = os.path.join(SCREENSHOT_DIR, SCREENSHOTS[name, viewport])
        page.screenshot(path=path, full_page=True)
    if name in BIG_FIGURES:
        expect(page.locator(BIG_FIGURES[name])).to_be_in_viewport()
    if name == "console":
        expect(page.locator(".now-serving")).to_have_text("1")
        expect(page.locator(".waiting-count")).to_have_text("2")
    expect(page.locator(".offline-note")).to_be_hidden()
    assert layout_problems(page) == []
    assert page.problems == []


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("name", PAGES)
def test_accessibility(visit, name, theme):
    page = visit(name, PORTRAIT, theme)
    assert structure_problems(page) == []
    assert contrast_problems(page) == []
    if name == "board":  # a screen on the wall: nothing to press, nothing to tab to
        assert page.locator("a, button, input, select, textarea").count() == 0
    else:
        assert focus_problems(page) == []


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("name", PAGES)
def test_axe_core_finds_nothing(visit, name, theme):
    # With JavaScript: its controls are checked too, and no refresh cuts axe-core short.
    page = visit(name, PORTRAIT, theme, javascript=True)
    assert axe_problems(page) == []
    assert contrast_problems(page) == []


def test_the_skip_link_is_the_first_stop_and_shows_on_focus(new_page):
    page = new_page()
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))


def test_long_names_and_big_numbers_still_fit_a_phone(new_page, queue_id, server):
    """The longest title and desk name allowed, without spaces, and four-digit numbers."""
    owner = create_queue(new_page(), queue_id, title="W" * 80, name="D" * 40)
    with sqlite3.connect(server.database) as db:
        db.execute("UPDATE queues SET last_number = 9997 WHERE id = ?", (queue_id,))
    customer = new_page()
    assert take_number(customer, join_url(owner)) == 9998
    take_number(new_page(), join_url(owner))
    press(owner, "Next")
    customer.reload()
    join, board = new_page(), new_page()
    join.goto(f"/{queue_id}")
    board.goto(f"/{queue_id}/board")
    problems = {}
    for page in (owner, customer, join, board):
        for name, viewport in VIEWPORTS.items():
            page.set_viewport_size(viewport)
            found = layout_problems(page)
            if found:
                problems[f"{page.url} {name}"] = found
    assert not problems, pformat(problems)


@pytest.mark.parametrize("javascript", [False, True], ids=["no-js", "js"])
def test_back_after_taking_a_number_shows_the_number_this_browser_holds(
    new_page, queue_id, javascript
):
    owner = create_queue(new_page(), queue_id)
    customer = new_page(javascript=javascript)
    assert take_number(customer, join_url(owner)) == 1
    ticket_url = customer.url
    customer.go_back()
    expect(customer).to_have_url(join_url(owner))
    held = customer.get_by_role("link", name="You already have number 1 — see your ticket")
    expect(held).to_be_visible()
    expect(customer.get_by_role("button", name="Take a number")).to_have_count(0)
    assert layout_problems(customer) == []
    held.click()
    expect(customer).to_have_url(ticket_url)
    assert my_number(customer) == 1
