"""The API does every page action, and reads statistics and the tickets by day, a page at a time."""

import datetime
import threading

import pytest
from server_support import PASSWORD
from test_api import Api, create_queue
from webtest import TestApp

from take_a_number import forms, routing, statistics

# 2026-03-02, a Monday, 09:00 in London (GMT): each day of the tests starts here.
MONDAY = datetime.datetime(2026, 3, 2, 9, tzinfo=datetime.UTC).timestamp()
DAY = 86400


@pytest.fixture
def app(make_app):
    """The app at MONDAY; desks are never released for idleness (the tests skip days)."""
    app = make_app(servicer_idle_minutes="0")
    app.clock = lambda: MONDAY
    return app


@pytest.fixture
def api(app):
    return Api(app)


def at(app, moment):
    app.clock = lambda: moment


def take(api, queue_id="lab"):
    return api("post", f"/queues/{queue_id}/tickets", status=201).json


# -- every page action ---------------------------------------------------------------

# Each page route, and the API operation that does the same; None: nothing to do there.
PAGE_ACTIONS = {
    "home": None,  # the form of create_queue
    "create_queue": "api_create_queue",
    "static": None,
    "favicon": None,  # the browser tab's icon
    "join": "api_queue",
    "queue_updates": "api_queue_updates",
    "take": "api_take",
    "ticket": "api_ticket",
    "ticket_updates": "api_ticket_updates",
    "leave": "api_leave",
    "move_back": "api_move_back",
    "console": "api_console",
    "console_updates": "api_console_updates",
    "sign_in": "api_sign_in",
    "confirm_sign_out": None,  # the question the API asks as ?customer=
    "sign_out": "api_sign_out",
    **{button: f"api_{button}" for button, _path in routing.BUTTONS},
    "manage": "api_settings",
    "manage_stats": "api_statistics",
    "manage_csv": "api_tickets",
    **{f"manage_{change}": f"api_{change}" for change, _path in routing.OWNER_CHANGES},
    "manage_invite": "api_invite",
    "manage_password": "api_password",
    "manage_revoke": "api_revoke",
    "manage_revoke_invitation": "api_revoke_invitation",
    "manage_clear": None,  # the confirmation page of clearing
    "manage_clear_line": "api_clear",
    "board": "api_board",
    "poster": None,  # printed
    "qr": None,  # an image of the queue's link
    "board_updates": "api_board_updates",
}


def test_every_page_action_has_its_api_operation():
    mapper = routing.make_mapper()
    names = [route.name for route in mapper.matchlist]
    pages = [name for name in names if not name.startswith("api_")]
    assert sorted(PAGE_ACTIONS) == sorted(pages), "a page route not yet compared with the API"
    missing = {page: api for page, api in PAGE_ACTIONS.items() if api and api not in names}
    assert missing == {}


def test_a_customer_not_ready_lets_the_next_person_go_first_over_the_api(api):
    create_queue(api)
    first, second = take(api), take(api)
    moved = api("post", f"/tickets/{first['token']}/later").json
    assert (moved["number"], moved["position"], moved["ahead"]) == (1, 2, 1)
    assert api("get", f"/tickets/{second['token']}").json["position"] == 1

    # Last in line now: nobody to let go first.
    refused = api("post", f"/tickets/{first['token']}/later", status=409).json
    assert refused["error"]["code"] == "cannot_move_back"
    assert "with someone behind it" in refused["error"]["message"]
    api("delete", f"/tickets/{second['token']}")
    assert api("post", f"/tickets/{second['token']}/later", status=409).json["error"]["code"] == (
        "cannot_move_back"
    )
    assert api("post", "/tickets/no-such-token/later", status=404).json["error"]["code"] == (
        "not_found"
    )


def test_a_display_board_script_reads_the_desks_and_the_last_calls(api):
    owner = create_queue(api)["token"]
    take(api), take(api)
    version = api("get", "/queues/lab/board").json["version"]
    api("post", "/queues/lab/next", token=owner)
    api("post", "/queues/lab/recall", token=owner)
    board = api("get", f"/queues/lab/board/updates?since={version}").json
    assert board["desks"] == [{"servicer_name": "Desk 1", "number": 1}]
    assert board["recent_calls"] == [
        {"number": 1, "servicer_name": "Desk 1", "kind": "recall"},
        {"number": 1, "servicer_name": "Desk 1", "kind": "call"},
    ]
    assert board["nobody_served"] is False
    assert api("get", "/queues/nope/board", status=404).json["error"]["code"] == "not_found"


# -- statistics of some days -----------------------------------------------------------


def tickets_on_three_days(app, api):
    """The owner's token; one number taken and served on Monday, two on Tuesday, three
    on Wednesday."""
    owner = create_queue(api)["token"]
    for day in range(3):
        at(app, MONDAY + day * DAY)
        for _ in range(day + 1):
            take(api)
        for _ in range(day + 2):
            api("post", "/queues/lab/next", token=owner)
    return owner


def test_statistics_of_a_range_of_days_count_only_the_numbers_taken_on_them(app, api):
    owner = tickets_on_three_days(app, api)
    every = api("get", "/queues/lab/statistics", token=owner).json
    assert every["overall"]["tickets"] == 6
    some = api("get", "/queues/lab/statistics?from=2026-03-03&to=2026-03-04", token=owner).json
    assert some["overall"]["tickets"] == 5
    assert [d["date"] for d in some["days"]] == ["2026-03-03", "2026-03-04"]
    since = api("get", "/queues/lab/statistics?from=2026-03-04", token=owner).json
    assert since["overall"]["tickets"] == 3
    until = api("get", "/queues/lab/statistics?to=2026-03-02", token=owner).json
    assert until["overall"]["tickets"] == 1


def test_the_days_are_the_queues_own_in_its_time_zone(app, api):
    owner = tickets_on_three_days(app, api)
    hours = {"always_open": True, "timezone": "Asia/Tokyo"}  # 09:00 UTC is 18:00 there
    api("post", "/queues/lab/hours", json=hours, token=owner)
    at(app, MONDAY + 2 * DAY + 14 * 3600)  # Wednesday 23:00 UTC: Thursday in Tokyo
    take(api)
    thursday = api("get", "/queues/lab/statistics?from=2026-03-05", token=owner).json
    assert thursday["overall"]["tickets"] == 1


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("from=2026-02-30", "from", "There is no such date."),
        ("from=yesterday", "from", "Use a date written YYYY-MM-DD, like 2026-03-31."),
        ("to=20260301", "to", "Use a date written YYYY-MM-DD, like 2026-03-31."),
        ("from=", "from", "Use a date written YYYY-MM-DD, like 2026-03-31."),
        ("from=2026-03-04&to=2026-03-03", "to", "must not come before the first"),
        ("from=%D9%A2%D9%A0%D9%A2%D9%A6-03-01", "from", "YYYY-MM-DD"),  # other digits
    ],
)
def test_a_bad_date_is_a_400_that_names_the_parameter(api, query, field, message):
    owner = create_queue(api)["token"]
    for path in ("statistics", "tickets"):
        error = api("get", f"/queues/lab/{path}?{query}", token=owner, status=400).json["error"]
        assert error["code"] == "invalid"
        assert list(error["fields"]) == [field]
        assert message in error["fields"][field]


def test_the_widest_dates_are_no_error(api):
    owner = create_queue(api)["token"]
    take(api)
    for query in ("from=0001-01-01&to=9999-12-31", "from=9999-12-31"):
        for path in ("statistics", "tickets"):
            api("get", f"/queues/lab/{path}?{query}", token=owner)


# -- the tickets, a page at a time --------------------------------------------------------


def test_the_owner_reads_the_tickets_a_page_at_a_time(app, api):
    owner = tickets_on_three_days(app, api)
    first = api("get", "/queues/lab/tickets?limit=4", token=owner).json
    assert [t["number"] for t in first["tickets"]] == [1, 2, 3, 4]
    assert (first["has_more"], first["next_after"]) == (True, 4)
    assert first["links"]["next"] == "http://localhost/api/v1/queues/lab/tickets?limit=4&after=4"
    rest = api("get", first["links"]["next"].removeprefix("http://localhost/api/v1"), token=owner)
    assert [t["number"] for t in rest.json["tickets"]] == [5, 6]
    assert (rest.json["has_more"], rest.json["next_after"], rest.json["links"]["next"]) == (
        False,
        6,
        None,
    )
    # Asked again after the last page: nothing yet, then the numbers taken since.
    again = api("get", "/queues/lab/tickets?after=6", token=owner).json
    assert (again["tickets"], again["next_after"]) == ([], 6)
    take(api)
    assert [
        t["number"] for t in api("get", "/queues/lab/tickets?after=6", token=owner).json["tickets"]
    ] == [7]


def test_a_ticket_in_the_list_is_its_row_of_the_csv(app, api):
    owner = tickets_on_three_days(app, api)
    listed = api("get", "/queues/lab/tickets?from=2026-03-02&to=2026-03-02", token=owner).json
    (ticket,) = listed["tickets"]
    assert ticket == {
        "number": 1,
        "state": "served",
        "servicer_name": "Desk 1",
        "taken_at": "2026-03-02T09:00:00+00:00",
        "called_at": "2026-03-02T09:00:00+00:00",
        "finished_at": "2026-03-02T09:00:00+00:00",
        "wait_seconds": 0,
        "service_seconds": 0,
        "total_seconds": 0,
        "recalls": 0,
        "called_specifically": False,
    }
    history = app.actions.history(app.store.servicer_of_queue("lab", 1), "lab")
    header, *rows = statistics.csv_rows(history.tickets, history.tz, history.starts)
    listed = api("get", "/queues/lab/tickets", token=owner).json["tickets"]
    assert [["" if v is None else v for v in t.values()] for t in listed] == rows
    assert len(header) == len(listed[0])


def test_the_list_keeps_the_days_asked_on_every_page(app, api):
    owner = tickets_on_three_days(app, api)
    page = api("get", "/queues/lab/tickets?from=2026-03-03&limit=2", token=owner).json
    assert [t["number"] for t in page["tickets"]] == [2, 3]
    assert "from=2026-03-03&limit=2&after=3" in page["links"]["next"]
    following = page["links"]["next"].removeprefix("http://localhost/api/v1")
    assert [t["number"] for t in api("get", following, token=owner).json["tickets"]] == [4, 5]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        (f"limit={forms.MAX_TICKETS_PER_PAGE + 1}", "limit"),
        ("limit=", "limit"),
        ("limit=+5", "limit"),
        ("limit=" + "9" * 5000, "limit"),
        ("after=-1", "after"),
        ("after=abc", "after"),
        ("after=1000000000000000000", "after"),
    ],
)
def test_a_bad_limit_or_cursor_is_a_400_that_names_it(api, query, field):
    owner = create_queue(api)["token"]
    error = api("get", f"/queues/lab/tickets?{query}", token=owner, status=400).json["error"]
    assert (error["code"], list(error["fields"])) == ("invalid", [field])


def test_a_page_holds_100_tickets_unless_asked_and_1000_at_most(api, app):
    owner = create_queue(api)["token"]
    for _ in range(forms.TICKETS_PER_PAGE + 1):
        take(api)
    assert len(api("get", "/queues/lab/tickets", token=owner).json["tickets"]) == 100
    whole = api("get", "/queues/lab/tickets?limit=1000", token=owner).json
    assert (len(whole["tickets"]), whole["has_more"]) == (101, False)


def test_only_the_owner_lists_the_tickets(api):
    owner = create_queue(api)["token"]
    staff = api("post", "/queues/lab/tokens", json={"name": "Desk 2"}, token=owner, status=201)
    assert api("get", "/queues/lab/tickets", status=401).json["error"]["code"] == "unauthorized"
    refused = api("get", "/queues/lab/tickets", token=staff.json["token"], status=403)
    assert refused.json["error"]["code"] == "not_owner"


def test_paging_while_numbers_are_taken_never_skips_or_repeats_a_ticket(app):
    api = Api(app)
    owner = create_queue(api)["token"]
    taker = TestApp(app)
    done = threading.Event()

    def take_many():
        for _ in range(120):
            taker.post("/api/v1/queues/lab/tickets", status=201)
        done.set()

    thread = threading.Thread(target=take_many)
    thread.start()
    seen, after, finished = [], 0, False
    while not finished:
        finished = done.is_set()  # read before the page: a page after the end sees them all
        page = api("get", f"/queues/lab/tickets?limit=7&after={after}", token=owner).json
        seen += [t["number"] for t in page["tickets"]]
        after = page["next_after"]
        finished = finished and not page["has_more"]
    thread.join()
    assert seen == list(range(1, 121))


# -- the owner's password ----------------------------------------------------------------


def test_the_owner_changes_the_password_over_the_api_giving_the_old_one(api):
    owner = create_queue(api)["token"]
    body = {"old_password": "not it at all", "new_password": "battery staple"}
    wrong = api("post", "/queues/lab/password", json=body, token=owner, status=401)
    assert wrong.json["error"]["code"] == "wrong_password"
    assert "nothing was changed" in wrong.json["error"]["fields"]["old_password"]
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    short = {"old_password": PASSWORD, "new_password": "short"}
    refused = api("post", "/queues/lab/password", json=short, token=owner, status=400).json
    assert refused["error"]["fields"] == {"new_password": "Use at least 8 characters."}
    staff = api("post", "/queues/lab/tokens", json={"name": "Kiosk"}, token=owner, status=201)
    right = {**body, "old_password": PASSWORD}
    kiosk = staff.json["token"]
    not_owner = api("post", "/queues/lab/password", json=right, token=kiosk, status=403)
    assert not_owner.json["error"]["code"] == "not_owner"
    done = api("post", "/queues/lab/password", json=right, token=owner)
    assert done.json == {"password_changed": True}
    sign_in = {"password": "battery staple", "name": "Desk 2"}
    assert api("post", "/queues/lab/servicers", json=sign_in, status=201).json["token"]
    old = api("post", "/queues/lab/servicers", json={**sign_in, "password": PASSWORD}, status=401)
    assert old.json["error"]["code"] == "wrong_password"


def test_a_queue_created_over_the_api_takes_the_time_zone_it_is_given(api):
    body = {"queue_id": "paris", "title": "Lab", "password": PASSWORD, "name": "Desk 1"}
    token = api("post", "/queues", json={**body, "timezone": "Europe/Paris"}, status=201).json
    assert api("get", "/queues/paris/settings", token=token["token"]).json["timezone"] == (
        "Europe/Paris"
    )
