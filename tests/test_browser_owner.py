"""The owner's pages in a real browser: managing a queue, its statistics, the
poster, and the console's line-growth indicator and QR code.

Headless Chromium through Playwright, JavaScript off unless a test says
otherwise, with the fixtures and page checks of test_browser.py.
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
    accept,
    axe_problems,
    contrast_problems,
    create_queue,
    focus_problems_in_long_forms,
    invite,
    join_url,
    layout_problems,
    open_page,
    press,
    sign_in,
    structure_problems,
    take_number,
)
from support import hours_ahead

expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("server_stays_healthy")]

TITLE = "CET236 lab help — Tuesday afternoon, room B204"
MINUTE = 60

# Each number's history in minutes before now: taken, called, finished (None: not yet).
# Two servicers take twelve minutes a customer while three people arrived in the
# last quarter of an hour: the line is growing.
HISTORY = {
    1: (100, 98, 86),
    2: (95, 90, 78),
    3: (70, 70, 57),
    4: (50, 48, 36),
    5: (30, 22, None),
    6: (11, 10, None),
    7: (9, None, None),
    8: (4, None, None),
}


def save_screenshot(page, name):
    """Keep a picture for a person to judge the design, when asked to."""
    if WRITE_SCREENSHOTS:
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, name), full_page=True)


def backdate(database, queue, now):
    """Spread the queue's history over the last hour and a half, as in HISTORY.

    The app stores plain Unix times, so this is what a real afternoon leaves
    behind; the version moves on so that no page shows a cached snapshot.
    """
    with sqlite3.connect(database) as db:
        for number, (taken, called, finished) in HISTORY.items():
            db.execute(
                "UPDATE tickets SET taken_at = ?, called_at = ?, finished_at = ? "
                "WHERE queue_id = ? AND number = ?",
                (
                    now - taken * MINUTE,
                    None if called is None else now - called * MINUTE,
                    None if finished is None else now - finished * MINUTE,
                    queue,
                    number,
                ),
            )
        db.execute(
            "UPDATE events SET at = ? WHERE queue_id = ? AND kind = 'start_serving'",
            (now - 101 * MINUTE, queue),
        )
        db.execute("UPDATE queues SET version = version + 1 WHERE id = ?", (queue,))
    db.close()


def printed_pages(page):
    """How many A4 pages the page prints on: Chromium's PDF, counted."""
    return len(re.findall(rb"/Type\s*/Page\b", page.pdf(format="A4")))


@pytest.fixture(scope="module")
def busy_queue(chromium, server):
    """An afternoon's queue: four served by two servicers, two at the desks, two waiting.

    Returns its id and the owner's cookies.
    """
    queue = "busy-lab"
    owner = open_page(chromium, server)
    create_queue(owner, queue, title=TITLE)
    link = join_url(owner)
    invitation = invite(owner, queue, "Window desk")
    helper = accept(open_page(chromium, server), invitation, "Window desk")
    customer = open_page(chromium, server)
    for _ in HISTORY:
        customer.context.clear_cookies()
        take_number(customer, link)
    owner.goto(f"/{queue}/serve")
    for servicer in (owner, helper) * 3:
        press(servicer, "Next")
    backdate(server.database, queue, time.time())
    owner_state = owner.context.storage_state()
    for page in (owner, helper, customer):
        page.context.close()
    return {"id": queue, "owner": owner_state}


@pytest.fixture(scope="module")
def visit_as_owner(chromium, server, busy_queue):
    """Load one of the owner's pages at a viewport, in one reused context per viewport."""
    contexts = {}
    paths = {
        "manage": "/{}/manage",
        "clear": "/{}/manage/clear",
        "stats": "/{}/manage/stats",
        "poster": "/{}/poster",
        "console": "/{}/serve",
    }

    def load(name, viewport):
        key = tuple(viewport.values())
        if key not in contexts:
            contexts[key] = open_page(
                chromium, server, viewport=viewport, storage_state=busy_queue["owner"]
            )
        page = contexts[key]
        page.problems.clear()
        try:
            response = page.goto(paths[name].format(busy_queue["id"]))
        except playwright_api.Error as error:
            # The page the last test left (the console) may be reloading itself as
            # its live update says: that navigation wins the race; go again.
            if "interrupted by another navigation" not in str(error):
                raise
            response = page.goto(paths[name].format(busy_queue["id"]))
        assert response.status == 200
        return page

    yield load
    for page in contexts.values():
        page.context.close()


# -- managing a queue, as its customers see it ---------------------------------------


def test_owner_pauses_reopens_and_announces(new_page, queue_id):
    owner = create_queue(new_page(), queue_id)
    link = join_url(owner)
    # With JavaScript, so that the announcement must arrive without a reload.
    waiting = new_page(javascript=True)
    take_number(waiting, link)
    take_number(new_page(), link)
    waiting.reload()
    waiting.evaluate("window.stillTheSamePage = true")

    owner.get_by_role("link", name="Manage the queue").click()
    expect(owner.locator("h1")).to_have_text("Manage “CET236 lab help”")
    owner.get_by_role("button", name="Pause").click()
    expect(owner.get_by_role("button", name="Pause")).to_have_attribute("aria-pressed", "true")
    expect(owner.get_by_role("button", name="Open", exact=True)).not_to_have_attribute(
        "aria-pressed", "true"
    )

    customer = new_page()
    customer.goto(link)
    expect(customer.locator(".notice")).to_have_text(
        "The queue is paused: no new numbers for now. Those in line keep their place."
    )
    expect(customer.get_by_role("button", name="Take a number")).to_have_count(0)
    assert layout_problems(customer) == []

    owner.get_by_role("button", name="Open", exact=True).click()
    expect(owner.get_by_role("button", name="Open", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    customer.reload()
    expect(customer.locator(".notice")).to_be_hidden()
    expect(customer.get_by_role("button", name="Take a number")).to_be_visible()

    owner.get_by_label("Announcement shown to everyone waiting").fill("Back in 5 minutes")
    owner.get_by_role("button", name="Save", exact=True).click()
    expect(owner.get_by_label("Announcement shown to everyone waiting")).to_have_value(
        "Back in 5 minutes"
    )
    expect(waiting.locator(".announcement")).to_have_text("Announcement: Back in 5 minutes")
    expect(waiting.locator(".announcement")).to_be_visible()
    assert waiting.evaluate("window.stillTheSamePage") is True
    # The ticket page with its announcement and "Not ready" button fits a phone.
    expect(
        waiting.get_by_role("button", name="Not ready – let the next person go first")
    ).to_be_visible()
    assert layout_problems(waiting) == []


# -- every owner page, on a phone held both ways and on a laptop ----------------------

OWNER_PAGES = [
    ("manage", "portrait"),
    ("manage", "landscape"),
    ("manage", "laptop"),
    ("clear", "portrait"),
    ("clear", "landscape"),
    ("clear", "laptop"),
    ("stats", "portrait"),
    ("stats", "landscape"),
    ("stats", "laptop"),
    ("poster", "laptop"),
    ("console", "portrait"),
]
SCREENSHOTS = {
    ("manage", "portrait"): "manage-360.png",
    ("stats", "laptop"): "stats-1280.png",
    ("stats", "portrait"): "stats-360.png",
    ("poster", "laptop"): "poster-1280.png",
    ("console", "portrait"): "console-owner-360.png",
}


@pytest.mark.parametrize(
    ("name", "viewport"), OWNER_PAGES, ids=[f"{name}-{viewport}" for name, viewport in OWNER_PAGES]
)
def test_owner_page_layout_and_accessibility(visit_as_owner, name, viewport):
    page = visit_as_owner(name, VIEWPORTS[viewport])
    if (name, viewport) in SCREENSHOTS:
        save_screenshot(page, SCREENSHOTS[name, viewport])
    problems = {
        "layout": layout_problems(page),
        "structure": structure_problems(page),
        "contrast": contrast_problems(page),
        "focus": focus_problems_in_long_forms(page),
        "page": page.problems,
    }
    assert not any(problems.values()), pformat(problems)


def test_stats_charts_show_and_wide_tables_scroll_in_their_box(visit_as_owner):
    page = visit_as_owner("stats", PORTRAIT)
    charts = page.locator(".charts figure.chart > svg")
    expect(charts).to_have_count(4)
    for chart in charts.all():
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box["width"] > 200 and box["height"] > 0
    expect(page.locator("table.stats").last).to_contain_text("Window desk")
    for scroller in page.locator(".table-scroll").all():
        scrolls = scroller.evaluate(
            "e => { e.scrollLeft = e.scrollWidth; return [e.scrollWidth > e.clientWidth, "
            "e.scrollLeft > 0, e.getBoundingClientRect().right <= innerWidth]; }"
        )
        assert scrolls == [True, True, True]
    assert page.evaluate("document.documentElement.scrollWidth") <= PORTRAIT["width"]
    expect(page.get_by_role("link", name="Download all tickets (CSV)")).to_be_visible()


def test_the_poster_prints_on_one_page(visit_as_owner):
    page = visit_as_owner("poster", LAPTOP)
    qr = page.locator("img.poster-qr")
    assert qr.evaluate("img => img.complete && img.naturalWidth") > 0
    expect(page.locator(".poster-link")).to_have_text(re.compile(r"/busy-lab$"))
    page.emulate_media(media="print")
    try:
        for hidden in (".site-header", ".skip-link", ".print-hint"):
            expect(page.locator(hidden)).to_be_hidden()
        expect(qr).to_be_visible()
        assert qr.bounding_box()["width"] >= 300
        expect(page.locator(".poster-title")).to_be_visible()
        expect(page.locator(".poster-link")).to_be_visible()
        assert printed_pages(page) == 1
    finally:
        page.emulate_media(media="screen")


def test_a_poster_with_the_longest_title_still_prints_on_one_page(new_page, queue_id):
    owner = create_queue(new_page(viewport=LAPTOP), queue_id, title="W" * 80)
    owner.goto(f"/{queue_id}/poster")
    owner.emulate_media(media="print")
    assert owner.locator("img.poster-qr").bounding_box()["width"] >= 300
    assert printed_pages(owner) == 1


def test_the_owners_console_shows_the_growing_line_and_the_qr_code(visit_as_owner):
    page = visit_as_owner("console", PORTRAIT)
    flow = page.locator(".flow")
    expect(flow).to_have_class(re.compile(r"\bflow-growing\b"))
    expect(flow.locator(".flow-headline")).to_have_text(
        "Line growing: about 1 more person every 27 minutes than you serve."
    )
    expect(flow).to_be_in_viewport()
    # Growing stands out in its shape and type too, not in its colour alone.
    assert flow.evaluate(
        "e => parseFloat(getComputedStyle(e).borderLeftWidth) >= 6 && "
        "parseFloat(getComputedStyle(e.querySelector('.flow-headline')).fontSize) >= 20"
    )
    expect(page.locator(".waiting-count")).to_have_text("2")
    qr = page.locator("img.qr")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth") > 0
    for link in ("Manage the queue", "Printable poster", "Display board"):
        expect(page.get_by_role("link", name=link)).to_be_visible()
    assert layout_problems(page) == []


# -- the Manage page's status, opening hours and confirmations ------------------------


@pytest.mark.parametrize("javascript", [False, True], ids=["no-js", "js"])
def test_the_manage_page_says_one_status_with_the_hours_and_confirms_each_save(
    new_page, queue_id, javascript
):
    owner = create_queue(new_page(javascript=javascript), queue_id)
    link = join_url(owner)
    owner.goto(f"/{queue_id}/manage")
    always_open = owner.get_by_label("Always open (no opening hours)")
    opens_at, closes_at = owner.get_by_label("Opens at"), owner.get_by_label("Closes at")
    expect(always_open).to_be_checked()
    if javascript:  # switched off while "Always open" is ticked, on again live
        expect(opens_at).to_be_disabled()
        expect(owner.get_by_label("Monday")).to_be_disabled()
        always_open.uncheck()
        expect(opens_at).to_be_enabled()
        expect(owner.get_by_label("Monday")).to_be_enabled()
    else:  # left as they are: the server ignores them
        expect(opens_at).to_be_enabled()
        always_open.uncheck()

    # A mistake: the page comes back with the focus on the field to correct.
    opens, closes = hours_ahead()
    opens_at.fill("")
    owner.get_by_role("button", name="Save opening hours").click()
    expect(owner.locator("#opens-error")).to_have_text("When does it open?")
    expect(opens_at).to_be_focused()
    expect(owner.locator(".saved")).to_have_count(0)

    for day in ("Saturday", "Sunday"):
        owner.get_by_label(day).check()
    opens_at.fill(opens.strftime("%H:%M"))
    closes_at.fill(closes.strftime("%H:%M"))
    owner.get_by_label("Time zone").select_option("UTC")
    owner.get_by_role("button", name="Save opening hours").click()
    owner.wait_for_url(f"**/{queue_id}/manage?saved=hours#hours")
    saved = owner.locator("#hours .saved")
    expect(saved).to_have_text("Saved.")
    expect(saved).to_be_in_viewport()
    # One status, saying what the customers read.
    status = owner.locator(".queue-status")
    expect(status).to_have_text(
        re.compile(r"^Open — but outside opening hours: it opens .*" + opens.strftime("%H:%M"))
    )
    expect(owner.get_by_role("button", name="Open", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    customer = new_page()
    customer.goto(link)
    expect(customer.locator(".notice")).to_contain_text("It opens ")
    expect(customer.locator(".notice")).to_contain_text(opens.strftime("%H:%M"))

    owner.get_by_role("button", name="Pause").click()
    expect(status).to_have_text("Paused")
    expect(owner.locator("#status .saved")).to_have_text("Saved.")
    assert layout_problems(owner) == []


def test_without_javascript_always_open_saves_whatever_the_hour_fields_hold(new_page, queue_id):
    owner = create_queue(new_page(), queue_id)
    owner.goto(f"/{queue_id}/manage")
    owner.get_by_label("Opens at").fill("")
    owner.get_by_role("button", name="Save opening hours").click()
    expect(owner.locator("#hours .saved")).to_have_text("Saved.")
    expect(owner.locator(".queue-status")).to_have_text("Open")


# -- the owner's pages of issue 13: your queues, the password, statistics -------------------


def stats_page(chromium, server, busy_queue, viewport):
    """The busy queue's statistics, with JavaScript (axe-core runs in the page)."""
    page = open_page(
        chromium, server, viewport=viewport, storage_state=busy_queue["owner"], javascript=True
    )
    assert page.goto(f"/{busy_queue['id']}/manage/stats").status == 200
    return page


@pytest.mark.parametrize("viewport", ["portrait", "laptop"])
def test_the_statistics_read_on_a_phone_and_a_laptop_and_axe_finds_nothing(
    chromium, server, busy_queue, viewport
):
    page = stats_page(chromium, server, busy_queue, VIEWPORTS[viewport])
    try:
        assert axe_problems(page) == []
        assert layout_problems(page) == []
        # Every chart's text is at least 10.5 px tall as drawn (it was about 6 px at 360).
        smallest = page.evaluate(
            "() => Math.min(...[...document.querySelectorAll('.chart svg text')].map("
            "t => t.getBoundingClientRect().height).filter(h => h > 0))"
        )
        assert smallest >= 10.5, smallest
        expect(page.locator(".stats-timezone")).to_have_text("UTC")
        expect(page.locator("table.stats").first).to_contain_text(" min")
        hint = page.locator(".scroll-hint").first
        expect(hint).to_be_visible() if viewport == "portrait" else expect(hint).to_be_hidden()
    finally:
        page.context.close()


def test_a_wide_table_keeps_its_row_names_in_view_when_swiped(visit_as_owner):
    page = visit_as_owner("stats", PORTRAIT)
    scroller = page.locator(".table-scroll").last
    scroller.evaluate("e => { e.scrollIntoView({block: 'center'}); e.scrollLeft = e.scrollWidth; }")
    assert scroller.evaluate("e => e.scrollLeft") > 0
    name = scroller.locator("th[scope=row]").first
    expect(name).to_be_in_viewport()
    left = scroller.evaluate("e => e.getBoundingClientRect().left")
    assert abs(name.bounding_box()["x"] - left) <= 2


def test_a_queue_made_in_paris_counts_its_statistics_in_paris_time(chromium, server, queue_id):
    context = chromium.new_context(
        base_url=server.url, viewport=PORTRAIT, timezone_id="Europe/Paris"
    )
    try:
        owner = create_queue(context.new_page(), queue_id)
        owner.goto(f"/{queue_id}/manage/stats")
        expect(owner.locator(".stats-timezone")).to_have_text("Europe/Paris")
        owner.goto(f"/{queue_id}/manage")
        expect(owner.get_by_label("Time zone")).to_have_value("Europe/Paris")
    finally:
        context.close()


def test_the_owner_finds_their_queues_on_the_home_page(new_page, queue_id):
    owner = create_queue(new_page(javascript=True), queue_id, title=TITLE)
    owner.goto("/")
    mine = owner.get_by_role("region", name="Your queues")
    expect(mine).to_contain_text(TITLE)
    save_screenshot(owner, "home-360.png")
    assert axe_problems(owner) == []
    assert layout_problems(owner) == []
    mine.get_by_role("link", name=f"Manage {TITLE}").click()
    owner.wait_for_url(f"**/{queue_id}/manage")
    owner.goto("/")
    owner.get_by_role("link", name=f"Console of {TITLE}").click()
    owner.wait_for_url(f"**/{queue_id}/serve")


def test_the_owner_changes_the_password_on_the_manage_page(new_page, queue_id):
    owner = create_queue(new_page(javascript=True), queue_id)
    owner.goto(f"/{queue_id}/manage")
    owner.get_by_label("Password now").fill("not the password")
    owner.get_by_label("New password", exact=True).fill("battery staple")
    owner.get_by_label("New password again").fill("battery staple")
    owner.get_by_role("button", name="Change the password").click()
    expect(owner.locator("#old_password-error")).to_contain_text("nothing was changed")
    expect(owner.get_by_label("Password now")).to_be_focused()
    assert axe_problems(owner) == []
    owner.get_by_label("Password now").fill(PASSWORD)
    owner.get_by_label("New password", exact=True).fill("battery staple")
    owner.get_by_label("New password again").fill("battery staple")
    owner.get_by_role("button", name="Change the password").click()
    owner.wait_for_url(f"**/{queue_id}/manage?saved=password#password")
    expect(owner.locator("#password .saved")).to_be_in_viewport()
    assert layout_problems(owner) == []
    desk = sign_in(new_page(), queue_id, password="battery staple")
    expect(desk.get_by_text("Signed in as")).to_be_visible()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize(
    "path", ["manage", "manage/stats", "manage/clear", "poster", "serve/sign-out"]
)
def test_axe_core_finds_nothing_on_the_owner_s_pages_in_either_theme(
    chromium, server, busy_queue, path, theme
):
    page = open_page(
        chromium, server, storage_state=busy_queue["owner"], javascript=True, theme=theme
    )
    try:
        assert page.goto(f"/{busy_queue['id']}/{path}").status == 200
        assert axe_problems(page) == []
    finally:
        page.context.close()
