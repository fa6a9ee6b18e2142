"""The servicer console for a busy desk: the waiting list, calling a number from it, Undo,
its keys and its words (the pages through WebTest; the API as integrators use it)."""

import pytest
from support import create_queue, press, take_number
from test_api import Api
from test_api import create_queue as create_queue_over_the_api

from take_a_number import rules, statistics

T0 = 1_780_000_000.0


@pytest.fixture
def clock(app):
    """The app's clock, moved on by hand: ``clock.at = ...``."""

    class Clock:
        at = T0

    app.clock = lambda: Clock.at
    return Clock


@pytest.fixture
def api(app):
    return Api(app)


def states(app):
    return {t["number"]: t["state"] for t in app.store.queue_tickets("cet236")}


def line(console):
    """The console's waiting list as shown: number, how long, a note."""
    return [
        [li.select_one(c).get_text() for c in (".line-number", ".line-waited", ".line-note")]
        for li in console.html.select(".line-list li")
    ]


def call(console, number):
    """Press Call beside ``number`` in the waiting list."""
    forms = [f for f in console.forms.values() if "number" in f.fields]
    return next(f for f in forms if f["number"].value == str(number)).submit()


def undo(console):
    form = next(f for f in console.forms.values() if f.action.endswith("/serve/undo"))
    return form.submit()


# -- the waiting list -------------------------------------------------------------------


def test_the_console_lists_every_waiting_number_in_order_with_its_wait(
    app, browser, new_browser, clock
):
    console = create_queue(browser)
    customers = [new_browser() for _ in range(3)]
    for minutes, customer in enumerate(customers):
        clock.at = T0 + 60 * minutes
        take_number(customer)
    # Number 1 lets the next person go first: 2, 1, 3.
    app.store.move_back(app.store.queue_tickets("cet236")[0]["token"], clock.at)
    clock.at = T0 + 5 * 60
    console = browser.get("/cet236/serve")
    assert line(console) == [
        ["2", "waiting 4 min", ""],
        ["1", "waiting 5 min", "let others go first 1×"],
        ["3", "waiting 3 min", ""],
    ]


def test_the_waiting_list_is_hidden_when_nobody_waits(browser):
    console = create_queue(browser)
    assert console.html.select_one(".waiting-line").has_attr("hidden")
    assert line(console) == []


# -- calling a specific number ----------------------------------------------------------


def test_a_number_called_from_the_list_is_called_out_of_turn_and_recorded_so(
    app, browser, new_browser
):
    console = create_queue(browser)
    for _ in range(3):
        take_number(new_browser())
    console = press(console, "Next")  # 1
    console = call(console, 3).follow()
    assert states(app) == {1: "served", 2: "waiting", 3: "called"}
    assert console.html.select_one(".now-serving").get_text() == "3"
    csv = browser.get("/cet236/manage/tickets.csv").text.splitlines()
    assert csv[0].endswith(",recalls,called_specifically")
    assert [row.rsplit(",", 1)[1] for row in csv[1:]] == ["0", "0", "1"]
    history = app.actions.history(app.store.servicer_of_queue("cet236", 1), "cet236")
    report = statistics.report(history.tickets, history.tz, history.starts)
    assert report["overall"]["called_specifically"] == 1
    stats = browser.get("/cet236/manage/stats").html.select_one(".called-specifically")
    assert stats.get_text() == "Called by number from the waiting list, out of turn: 1"


def test_a_number_no_longer_waiting_is_not_called_and_the_console_says_why(
    app, browser, new_browser
):
    console = create_queue(browser)
    take_number(new_browser())
    take_number(new_browser())
    console = browser.get("/cet236/serve")
    first = app.store.queue_tickets("cet236")[0]
    app.store.leave(first["token"], app.now())  # 1 left: it no longer waits
    refused = call(console, 1)
    assert refused.location.endswith("/cet236/serve?refused=not_waiting")
    page = refused.follow()
    assert "That number is no longer waiting" in page.html.select_one(".refused").get_text()
    assert states(app) == {1: "left", 2: "waiting"}


def test_calling_a_number_over_the_api_needs_one_that_waits(api):
    token = create_queue_over_the_api(api)["token"]
    for _ in range(2):
        api("post", "/queues/lab/tickets", status=201)
    console = api("post", "/queues/lab/call", json={"number": 2}, token=token).json
    assert (console["current_number"], [t["number"] for t in console["waiting_line"]]) == (2, [1])
    refused = api("post", "/queues/lab/call", json={"number": 2}, token=token, status=409).json
    assert refused["error"]["code"] == "not_waiting"
    missing = api("post", "/queues/lab/call", json={}, token=token, status=400).json
    assert missing["error"]["fields"] == {"number": "Say which waiting number to call."}
    stale = {"number": 1, "expected_current": 1}
    assert (
        api("post", "/queues/lab/call", json=stale, token=token, status=409).json["error"]["code"]
        == "stale"
    )


# -- undo -------------------------------------------------------------------------------


def test_undoing_next_calls_the_previous_customer_again_and_puts_the_other_back_in_place(
    app, browser, new_browser, clock
):
    console = create_queue(browser)
    tickets = [new_browser() for _ in range(3)]
    for customer in tickets:
        take_number(customer)
    console = press(console, "Next")  # 1
    first = app.store.queue_tickets("cet236")[0]
    clock.at = T0 + 30
    console = press(console, "Next")  # 1 served, 2 called
    assert console.html.select_one(".undo button").get_text(" ", strip=True) == (
        "Undo Next (1, 2) U"
    )
    clock.at = T0 + 40
    console = undo(console).follow()
    after = app.store.queue_tickets("cet236")
    assert states(app) == {1: "called", 2: "waiting", 3: "waiting"}
    assert (after[0]["called_at"], after[0]["finished_at"]) == (first["called_at"], None)
    assert app.snapshots.get("cet236", clock.at).waiting == [2, 3]  # 2 first, as before
    assert console.html.select_one(".now-serving").get_text() == "1"
    assert console.html.select_one(".undo").has_attr("hidden")  # once only
    # The board's last calls never show the call undone; statistics never count it.
    calls = app.store.queue_snapshot("cet236", clock.at).recent_calls
    assert [c["number"] for c in calls] == [1]
    history = app.actions.history(app.store.servicer_of_queue("cet236", 1), "cet236")
    overall = statistics.report(history.tickets, history.tz, history.starts)["overall"]
    assert (overall["served"], overall["called"]) == (0, 1)


def test_undoing_done_or_no_show_calls_the_customer_again(app, browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    console = press(press(console, "Next"), "Done")
    console = undo(console).follow()
    assert states(app) == {1: "called"}
    undo(press(console, "No show"))
    assert states(app) == {1: "called"}
    assert app.store.queue_tickets("cet236")[0]["finished_at"] is None


def test_undoing_a_no_show_sent_to_the_end_of_the_line_calls_them_again(app, browser, new_browser):
    console = create_queue(browser)
    app.store.set_options("cet236", app.now(), "", None, rules.NO_SHOW_REQUEUE)
    take_number(new_browser())
    take_number(new_browser())
    console = press(browser.get("/cet236/serve"), "Next")
    console = press(console, "No show")  # 1 goes to the end of the line, once
    assert app.snapshots.get("cet236", app.now()).waiting == [2, 1]
    undo(console).follow()
    ticket = app.store.queue_tickets("cet236")[0]
    assert (ticket["state"], ticket["requeued"]) == ("called", 0)
    assert app.snapshots.get("cet236", app.now()).waiting == [2]


def test_undo_is_refused_after_a_minute(app, browser, new_browser, clock):
    console = create_queue(browser)
    take_number(new_browser())
    console = press(console, "Next")
    clock.at = T0 + rules.UNDO_SECONDS + 1
    refused = undo(console)
    assert refused.location.endswith("?refused=too_late_to_undo")
    assert "Too late to undo" in refused.follow().html.select_one(".refused").get_text()
    assert browser.get("/cet236/serve").html.select_one(".undo").has_attr("hidden")
    assert states(app) == {1: "called"}


def test_undo_is_refused_once_something_else_changed_the_ticket(app, browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    take_number(customer)
    take_number(new_browser())
    console = press(console, "Next")
    first = app.store.queue_tickets("cet236")[0]
    app.store.leave(first["token"], app.now())  # the customer called leaves
    refused = undo(console)
    assert refused.location.endswith("?refused=undo_overtaken")
    assert "can no longer be undone" in refused.follow().html.select_one(".refused").get_text()
    assert states(app) == {1: "left", 2: "waiting"}


def test_a_recall_since_leaves_nothing_to_undo(app, browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    console = press(console, "Next")
    assert not console.html.select_one(".undo").has_attr("hidden")
    recalled = press(console, "Recall")
    assert recalled.html.select_one(".undo").has_attr("hidden")
    assert undo(console).location.endswith("?refused=nothing_to_undo")
    assert states(app) == {1: "called"}


def test_undo_over_the_api_and_its_refusals(api):
    token = create_queue_over_the_api(api)["token"]
    nothing = api("post", "/queues/lab/undo", token=token, status=409).json
    assert nothing["error"]["code"] == "nothing_to_undo"
    api("post", "/queues/lab/tickets", status=201)
    assert api("post", "/queues/lab/next", token=token).json["undo_label"] == "Undo Next (1)"
    stale = api(
        "post", "/queues/lab/undo", json={"expected_current": None}, token=token, status=409
    ).json
    assert stale["error"]["code"] == "stale"
    console = api("post", "/queues/lab/undo", json={"expected_current": 1}, token=token).json
    assert (console["current_number"], console["waiting"], console["can_undo"]) == (None, 1, False)
    again = api("post", "/queues/lab/undo", token=token, status=409).json
    assert again["error"]["code"] == "nothing_to_undo"


def test_a_customer_page_follows_an_undo(app, browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    take_number(customer)
    ticket_url = f"/cet236/ticket/{app.store.queue_tickets('cet236')[0]['token']}"
    console = press(console, "Next")
    assert "It's your turn" in customer.get(ticket_url).html.main.get_text()
    undo(console)
    assert "You're next." in customer.get(ticket_url).html.main.get_text()


# -- the words and the keys ---------------------------------------------------------


def test_the_buttons_show_their_keys_and_next_takes_the_focus(browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    console = press(console, "Next")
    keys = {
        b.get("aria-keyshortcuts"): b.select_one("kbd").get_text()
        for b in console.html.select(".actions button, .undo button")
    }
    assert keys == {"N": "N", "D": "D", "S": "S", "R": "R", "U": "U"}
    focused = console.html.select("[autofocus]")
    assert [b.get("data-key") for b in focused] == ["n"]
    assert "harsh" in console.html.select_one("button[data-key=s]")["class"]


@pytest.mark.parametrize("number", ["", "abc", "-1", "99999999999999999999999", "1e3"])
def test_a_hostile_number_to_call_calls_nobody_and_never_fails(app, browser, new_browser, number):
    console = create_queue(browser)
    take_number(new_browser())
    csrf = console.html.select_one("input[name=csrf_token]")["value"]
    answer = browser.post("/cet236/serve/call", {"csrf_token": csrf, "number": number})
    assert answer.status_int == 303
    assert states(app) == {1: "waiting"}


@pytest.mark.parametrize("number", ["2", 0, 1.5, True, None, [1]])
def test_a_hostile_number_to_call_over_the_api_is_a_400(api, number):
    token = create_queue_over_the_api(api)["token"]
    api("post", "/queues/lab/tickets", status=201)
    answer = api("post", "/queues/lab/call", json={"number": number}, token=token, status=400)
    assert set(answer.json["error"]["fields"]) == {"number"}
