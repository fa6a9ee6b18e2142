"""The servicer console in Chromium: one key per customer, Undo, calling a number from the
waiting list, and the list following the queue live."""

import json
import re
import urllib.request

import playwright.sync_api as playwright_api
import pytest
from browser_support import (
    LAPTOP,
    PORTRAIT,
    api,
    contrast_problems,
    create_queue,
    layout_problems,
    structure_problems,
)

expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("server_stays_healthy")]

TV = {"width": 1920, "height": 1080}


def take(server, queue_id):
    """A customer takes a number over the API; their ticket's token."""
    return api(server, f"/api/v1/queues/{queue_id}/tickets")["token"]


def serving(page):
    return page.locator(".now-serving").inner_text()


def wait_for_focus_on(page, key):
    """The button with this shortcut key gets the focus (autofocus lands once the page has
    rendered, which on a busy machine may be a moment after its load event)."""
    page.wait_for_function(
        "key => document.activeElement && document.activeElement.dataset.key === key",
        arg=key,
        timeout=5_000,
    )


def press_key(page, key):
    """Press a key that submits a console button: the page reloads."""
    with page.expect_navigation():
        page.keyboard.press(key)
    page.wait_for_load_state()


@pytest.mark.parametrize("javascript", [True, False], ids=["keys", "no JavaScript: Enter"])
def test_a_keyboard_user_serves_three_customers_with_one_key_each(
    new_page, server, queue_id, javascript
):
    console = create_queue(new_page(javascript=javascript), queue_id)
    for _ in range(3):
        take(server, queue_id)
    console.reload()
    wait_for_focus_on(console, "n")  # Next has the focus from the start
    key = "n" if javascript else "Enter"
    for number in ("1", "2", "3"):
        press_key(console, key)
        assert serving(console) == number
        wait_for_focus_on(console, "n")  # back on Next after each action
    if javascript:
        press_key(console, "d")  # Done
        assert serving(console) == "–"


def test_keys_typed_into_a_field_press_no_button(new_page, server, queue_id):
    console = create_queue(new_page(javascript=True), queue_id)
    take(server, queue_id)
    console.reload()
    console.locator("[data-setting=chime]").focus()
    console.keyboard.press("n")
    console.wait_for_timeout(300)
    assert serving(console) == "–"
    assert console.get_by_role("button", name="Start serving").is_visible()


def test_undo_takes_back_next_and_the_customers_page_follows_live(new_page, server, queue_id):
    console = create_queue(new_page(javascript=True), queue_id)
    first, second = take(server, queue_id), take(server, queue_id)
    customer = new_page(javascript=True)
    customer.goto(f"/{queue_id}/ticket/{second}")
    press_key(console, "n")
    press_key(console, "n")  # 1 served, 2 called
    expect(customer.locator("main")).to_contain_text("It's your turn")
    undo = console.get_by_role("button", name="Undo Next (1, 2)")
    expect(undo).to_be_visible()
    press_key(console, "u")
    assert serving(console) == "1"
    wait_for_focus_on(console, "n")
    expect(customer.locator("main")).to_contain_text("You're next.")
    expect(console.locator(".undo")).to_be_hidden()
    with urllib.request.urlopen(f"{server.url}/api/v1/tickets/{first}", timeout=10) as answer:
        assert json.load(answer)["state"] == "called"  # the servicer's customer again


def test_a_number_called_from_the_waiting_list_is_served_out_of_turn(new_page, server, queue_id):
    console = create_queue(new_page(javascript=True), queue_id)
    for _ in range(3):
        take(server, queue_id)
    console.reload()
    with console.expect_navigation():
        console.get_by_role("button", name="Call 3").click()
    assert serving(console) == "3"
    items = console.locator(".line-list li .line-number")
    expect(items).to_have_text(["1", "2"])


def test_the_waiting_list_follows_the_queue_live(new_page, server, queue_id):
    console = create_queue(new_page(javascript=True), queue_id)
    numbers = console.locator(".line-list li .line-number")
    expect(console.locator(".waiting-line")).to_be_hidden()
    tokens = [take(server, queue_id) for _ in range(3)]
    expect(numbers).to_have_text(["1", "2", "3"])
    api(server, f"/api/v1/tickets/{tokens[0]}/later")  # 1 lets 2 go first
    expect(numbers).to_have_text(["2", "1", "3"])
    expect(console.locator(".line-list li").nth(1)).to_contain_text("let others go first 1×")
    api(server, f"/api/v1/tickets/{tokens[2]}", method="DELETE")  # 3 leaves
    expect(numbers).to_have_text(["2", "1"])
    # A Call button drawn live calls its number.
    with console.expect_navigation():
        console.get_by_role("button", name="Call 1").click()
    assert serving(console) == "1"


def test_the_chime_choice_is_kept_by_this_browser(new_page, queue_id):
    console = create_queue(new_page(javascript=True), queue_id)
    choice = console.get_by_label("Chime")
    expect(choice).to_have_value("empty")  # the default: only when the line was empty
    choice.select_option("every")
    console.reload()
    expect(console.get_by_label("Chime")).to_have_value("every")


@pytest.mark.parametrize("choice, chimes", [("empty", False), ("every", True)])
def test_a_console_may_choose_to_be_told_of_every_new_customer(
    new_page, server, queue_id, choice, chimes
):
    console = create_queue(new_page(javascript=True), queue_id)
    take(server, queue_id)
    console.get_by_label("Chime").select_option(choice)
    console.reload()
    expect(console.locator(".line-list li")).to_have_count(1)
    take(server, queue_id)  # the line was not empty
    expect(console.locator(".line-list li")).to_have_count(2)
    console.wait_for_timeout(100)
    flashed = console.evaluate("document.title").startswith("● Someone is waiting")
    assert flashed == chimes


@pytest.mark.parametrize("viewport", [PORTRAIT, LAPTOP, TV], ids=["360", "1280", "1920x1080"])
def test_the_busy_console_fits_every_screen(new_page, server, queue_id, viewport):
    console = create_queue(new_page(javascript=True, viewport=viewport), queue_id)
    tokens = [take(server, queue_id) for _ in range(4)]
    api(server, f"/api/v1/tickets/{tokens[1]}/later")
    press_key(console, "n")
    problems = layout_problems(console) + structure_problems(console)
    assert problems + contrast_problems(console) == []
    # No show looks harsher than Done; the alert settings do not look like the actions.
    styles = console.evaluate(
        """() => Object.fromEntries(['[data-key=d]', '[data-key=s]', '[data-action=enable-sound]']
             .map(s => [s, getComputedStyle(document.querySelector(s))])
             .map(([s, c]) => [s, {color: c.color, border: c.borderTopStyle,
                                   radius: c.borderTopLeftRadius, weight: c.fontWeight}]))"""
    )
    assert styles["[data-key=s]"]["color"] != styles["[data-key=d]"]["color"]
    assert styles["[data-action=enable-sound]"]["weight"] != styles["[data-key=d]"]["weight"]
    kbd = console.locator(".actions kbd")
    expect(kbd).to_have_text(["N", "D", "S", "R"])
    assert re.match(r"^\d+$", serving(console))
