"""Tickets survive a restart of the app.

The first app runs in the test process; the restarted app is built by main() in a
fresh Python process on the same database file and settings, as after a deploy.
Browsers carry their cookies across the restart.
"""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest
from support import create_queue, my_number, press, take_number
from webtest import TestApp

from take_a_number import main

QUEUE = "cet236"
SPAWN = multiprocessing.get_context("spawn")

pytestmark = pytest.mark.slow


# -- helpers: run in the test process -------------------------------------------------


def in_a_fresh_process(function, *args):
    """Call ``function(*args)`` in a new Python process and return its result."""
    with ProcessPoolExecutor(max_workers=1, mp_context=SPAWN) as pool:
        return pool.submit(function, *args).result(timeout=60)


def cookies_of(browser):
    return list(browser.cookiejar)


def stop(app):
    """Stop the first app: close its database connection."""
    app.store.close()


# -- helpers: run in the restarted process -----------------------------------------------


def _restarted_browser(here, settings, cookies):
    app = main({"here": here}, **settings)
    browser = TestApp(app)
    for cookie in cookies:
        browser.cookiejar.set_cookie(cookie)
    return browser


def _ticket_view(page):
    section = page.html.select_one("section.ticket")
    state = next(c[len("state-") :] for c in section["class"] if c.startswith("state-"))
    return {
        "number": my_number(page),
        "state": state,
        "message": page.html.select_one(".status-message").get_text(strip=True),
    }


def _customers_after_restart(here, settings, cookie_jars):
    """Customers reopen the queue's page after the restart: where are their tickets?"""
    app = main({"here": here}, **settings)
    seen = []
    for cookies in cookie_jars:
        browser = TestApp(app)
        for cookie in cookies:
            browser.cookiejar.set_cookie(cookie)
        held = browser.get(f"/{QUEUE}").html.select_one(".held-ticket a")
        if held is None:
            seen.append({"led_to_ticket": False})
        else:
            seen.append(dict(_ticket_view(browser.get(held["href"])), led_to_ticket=True))
    return seen


def _new_customers_after_restart(here, settings, count):
    browser = _restarted_browser(here, settings, [])
    return [my_number(take_number(TestApp(browser.app), QUEUE)) for _ in range(count)]


def _servicer_after_restart(here, settings, cookies):
    """The servicer reloads the console after the restart, then presses Next."""
    browser = _restarted_browser(here, settings, cookies)
    console = browser.get(f"/{QUEUE}/serve")
    seen = {
        "signed_in_as": console.html.select_one(".signed-in strong"),
        "asks_for_password": console.html.select_one("input[name=password]") is not None,
    }
    if seen["signed_in_as"] is not None:
        seen["signed_in_as"] = seen["signed_in_as"].get_text(strip=True)
        seen["serving_before"] = console.html.select_one(".now-serving").get_text(strip=True)
        after = press(console, "Next")
        seen["serving_after"] = after.html.select_one(".now-serving").get_text(strip=True)
    return seen


# -- tests ------------------------------------------------------------------------------


def test_a_customers_ticket_keeps_its_number_and_state_after_a_restart(app, settings, tmp_path):
    owner, alice, bob = TestApp(app), TestApp(app), TestApp(app)
    console = create_queue(owner, queue_id=QUEUE)
    assert my_number(take_number(alice, QUEUE)) == 1
    assert my_number(take_number(bob, QUEUE)) == 2
    press(console, "Next")
    stop(app)

    alice_sees, bob_sees = in_a_fresh_process(
        _customers_after_restart, str(tmp_path), settings, [cookies_of(alice), cookies_of(bob)]
    )

    assert alice_sees == {
        "led_to_ticket": True,
        "number": 1,
        "state": "called",
        "message": "It's your turn — go to Desk 1.",
    }
    assert bob_sees == {
        "led_to_ticket": True,
        "number": 2,
        "state": "waiting",
        "message": "You're next.",
    }


def test_numbering_continues_after_a_restart_without_reusing_numbers(app, settings, tmp_path):
    create_queue(TestApp(app), queue_id=QUEUE)
    for _ in range(2):
        take_number(TestApp(app), QUEUE)
    leaver = take_number(TestApp(app), QUEUE)
    assert my_number(leaver) == 3
    left = press(leaver, "Yes, leave the queue")  # number 3 is given up
    assert _ticket_view(left)["state"] == "left"
    stop(app)

    assert in_a_fresh_process(_new_customers_after_restart, str(tmp_path), settings, 2) == [4, 5]

    # And again after a second restart, back in this process.
    restarted = main({"here": str(tmp_path)}, **settings)
    assert my_number(take_number(TestApp(restarted), QUEUE)) == 6


def test_a_signed_in_servicer_is_still_signed_in_after_a_restart(app, settings, tmp_path):
    owner = TestApp(app)
    console = create_queue(owner, queue_id=QUEUE, name="Desk 1")
    for _ in range(2):
        take_number(TestApp(app), QUEUE)
    press(console, "Next")
    secret_file = tmp_path / "var" / "secret"
    secret = secret_file.read_text()
    stop(app)

    seen = in_a_fresh_process(_servicer_after_restart, str(tmp_path), settings, cookies_of(owner))

    assert seen == {
        "signed_in_as": "Desk 1",
        "asks_for_password": False,
        "serving_before": "1",
        "serving_after": "2",
    }
    # The restart reused the session secret instead of making a new one.
    assert secret_file.read_text() == secret
    # Next in the restarted app finished number 1 and called number 2, both at Desk 1.
    restarted = main({"here": str(tmp_path)}, **settings)
    tickets = restarted.store.engine.rows(
        "SELECT number, state, servicer_id FROM tickets ORDER BY number"
    )
    assert [(t["number"], t["state"]) for t in tickets] == [(1, "served"), (2, "called")]
    assert tickets[0]["servicer_id"] == tickets[1]["servicer_id"]
