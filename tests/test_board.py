"""What the display board shows (take_a_number/views.py's board_view, through the
API and the page): the newest call, the calls before it once each, no site header."""

import pytest
from support import PASSWORD
from test_api import Api, create_queue

from take_a_number.store import Store


@pytest.fixture
def api(app):
    return Api(app)


@pytest.fixture
def desks(api):
    """Lab help with two desks and four customers; each desk's bearer token."""
    desk_1 = create_queue(api)["token"]
    body = {"name": "Desk 2", "password": PASSWORD}
    desk_2 = api("post", "/queues/lab/servicers", json=body, status=201).json["token"]
    for _ in range(4):
        api("post", "/queues/lab/tickets", status=201)
    return desk_1, desk_2


def board(api):
    return api("get", "/queues/lab/board").json


def press(api, token, button):
    api("post", f"/queues/lab/{button}", token=token)


def test_a_board_with_nobody_called_shows_no_number_and_no_calls(api, desks):
    seen = board(api)
    assert seen["has_newest"] is False
    assert seen["nobody_served"] is True
    assert seen["newest_number"] is None
    assert seen["last_calls"] == []
    assert seen["no_last_calls"] is True


def test_the_newest_call_leads_the_board_and_the_calls_before_it_follow(api, desks):
    desk_1, desk_2 = desks
    press(api, desk_1, "next")  # 1 at Desk 1
    press(api, desk_1, "next")  # 1 served, 2 at Desk 1
    press(api, desk_2, "next")  # 3 at Desk 2
    seen = board(api)
    assert (seen["newest_number"], seen["newest_desk"]) == (3, "Desk 2")
    assert seen["newest_recalled"] is False
    assert seen["last_calls"] == [
        {"number": 2, "servicer_name": "Desk 1", "recalls": 0, "serving": True},
        {"number": 1, "servicer_name": "Desk 1", "recalls": 0, "serving": False},
    ]


def test_a_recall_is_the_same_entry_flashed_again_not_a_second_call(app, api, desks):
    desk_1, desk_2 = desks
    app.clock = lambda: 1_780_000_000.0  # every press at the same moment
    press(api, desk_1, "next")  # 1 at Desk 1
    press(api, desk_2, "next")  # 2 at Desk 2
    before = board(api)
    press(api, desk_1, "recall")  # 1 again: back on top, listed once
    seen = board(api)
    assert (seen["newest_number"], seen["newest_desk"]) == (1, "Desk 1")
    assert seen["newest_recalled"] is True
    assert seen["newest_call"] != before["newest_call"]
    assert [c["number"] for c in seen["last_calls"]] == [2]
    press(api, desk_1, "recall")  # and again, at the same moment: it still flashes
    again = board(api)
    assert again["newest_call"] != seen["newest_call"]
    assert [c["number"] for c in again["last_calls"]] == [2]
    # The API's list of events still has every call and recall.
    assert [c["kind"] for c in again["recent_calls"]] == ["recall", "recall", "call", "call"]


def test_once_everyone_is_served_the_board_keeps_the_last_calls(api, desks):
    desk_1, _ = desks
    press(api, desk_1, "next")
    press(api, desk_1, "done")
    seen = board(api)
    assert seen["has_newest"] is False
    assert seen["last_calls"] == [
        {"number": 1, "servicer_name": "Desk 1", "recalls": 0, "serving": False}
    ]


def test_the_newest_number_says_how_wide_it_is_for_its_type(api, desks, settings):
    desk_1, _ = desks
    other = Store(settings["database"])  # another process, on either database
    with other.immediate("lab") as db:
        db.execute("UPDATE queues SET last_number = ? WHERE id = ?", (99998, "lab"))
    other.close_all()
    api("post", "/queues/lab/tickets", status=201)
    for _ in range(5):
        press(api, desk_1, "next")
    assert board(api)["newest_digits"] == 5


def test_the_board_page_has_no_site_header_nor_controls(browser, api, desks):
    page = browser.get("/lab/board")
    assert page.html.select(".site-header, .skip-link, a, button, form") == []
    assert page.html.select_one(".board-qr")["src"].endswith("/lab/qr.svg")
    assert page.html.select_one(".board-link").get_text() == "Take a number: localhost:80/lab"
    assert browser.get("/lab").html.select_one(".site-header") is not None
