"""A console button pressed for another customer than the servicer's own does nothing.

Each button carries ``expected_current``, the customer the console showed: Next
pressed twice, or on an old page, or in another tab, is refused (409 ``stale``)
instead of calling a second customer.
"""

import threading

import pytest
from support import accessible_name, create_queue, press, take_number
from test_actions import ADDRESS, new_queue
from test_api import Api
from test_api import create_queue as create_queue_over_the_api
from webtest import TestApp

from take_a_number.refusals import Refused

NOBODY = {"expected_current": None}


def states(app):
    return {t["number"]: t["state"] for t in app.store.engine.rows("SELECT * FROM tickets")}


# -- the action -------------------------------------------------------------------


@pytest.fixture
def acts(app):
    return app.actions


def pressed_for(number):
    return lambda: ({"expected_current": "" if number is None else str(number)}, None)


def test_a_press_for_the_customer_shown_acts_and_one_for_another_is_refused(app, acts):
    owner = new_queue(acts)
    for _ in range(3):
        acts.take("cet236", ADDRESS)
    acts.press(owner, "cet236", "call_next", pressed_for(None))
    with pytest.raises(Refused) as refused:
        acts.press(owner, "cet236", "call_next", pressed_for(None))
    assert (refused.value.status, refused.value.code) == (409, "stale")
    assert refused.value.message == (
        "Nothing was done: this was pressed for nobody, but you are serving number 1 now "
        "(pressed twice, or on an old page or in another tab)."
    )
    for button in ("done", "no_show", "recall"):
        with pytest.raises(Refused):
            acts.press(owner, "cet236", button, pressed_for(2))
    assert states(app) == {1: "called", 2: "waiting", 3: "waiting"}
    assert app.store.current_ticket(owner["id"])["recalls"] == 0
    acts.press(owner, "cet236", "call_next", pressed_for(1))
    assert states(app) == {1: "served", 2: "called", 3: "waiting"}


def test_a_press_without_a_precondition_acts_as_before(app, acts):
    owner = new_queue(acts)
    acts.take("cet236", ADDRESS)
    acts.press(owner, "cet236", "call_next")
    acts.press(owner, "cet236", "call_next", lambda: ({}, None))
    assert states(app) == {1: "served"}


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "99999999999999999999"])
def test_a_precondition_that_is_no_number_is_a_400(acts, value):
    owner = new_queue(acts)
    with pytest.raises(Refused) as refused:
        acts.press(owner, "cet236", "call_next", lambda: ({"expected_current": value}, None))
    assert (refused.value.status, set(refused.value.fields)) == (400, {"expected_current"})


# -- the API ----------------------------------------------------------------------


@pytest.fixture
def api(app):
    return Api(app)


def test_next_pressed_twice_over_the_api_calls_one_customer(app, make_app, api):
    token = create_queue_over_the_api(api)["token"]
    for _ in range(3):
        api("post", "/queues/lab/tickets", status=201)
    console = api("get", "/queues/lab/console", token=token).json
    assert console["expected_current"] is None
    pressed = {"expected_current": console["expected_current"]}
    assert api("post", "/queues/lab/next", json=pressed, token=token).json["expected_current"] == 1
    # The same press again, from another process: refused, with the console as it is.
    other = Api(make_app())
    error = other("post", "/queues/lab/next", json=pressed, token=token, status=409).json["error"]
    assert error["code"] == "stale"
    assert "serving number 1 now" in error["message"]
    assert (error["console"]["current_number"], error["console"]["waiting"]) == (1, 2)
    assert states(app) == {1: "called", 2: "waiting", 3: "waiting"}
    # Pressed for the customer it now shows, it acts.
    again = {"expected_current": error["console"]["expected_current"]}
    assert other("post", "/queues/lab/next", json=again, token=token).json["current_number"] == 2


def test_a_stale_no_show_never_marks_the_customer_now_called(app, api):
    token = create_queue_over_the_api(api)["token"]
    for _ in range(2):
        api("post", "/queues/lab/tickets", status=201)
    api("post", "/queues/lab/next", json=NOBODY, token=token)
    api("post", "/queues/lab/next", json={"expected_current": 1}, token=token)
    api("post", "/queues/lab/no-show", json={"expected_current": 1}, token=token, status=409)
    assert states(app) == {1: "served", 2: "called"}


def test_two_presses_at_once_on_one_console_call_one_customer(make_app):
    apps = [make_app(), make_app()]
    token = create_queue_over_the_api(Api(apps[0]))["token"]
    for _ in range(3):
        Api(apps[0])("post", "/queues/lab/tickets", status=201)
    start, statuses = threading.Barrier(2), []

    def press_next(app):
        client = TestApp(app)
        start.wait()
        response = client.post_json(
            "/api/v1/queues/lab/next",
            NOBODY,
            headers={"Authorization": f"Bearer {token}"},
            expect_errors=True,
        )
        statuses.append(response.status_int)

    threads = [threading.Thread(target=press_next, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(statuses) == [200, 409]
    assert states(apps[0]) == {1: "called", 2: "waiting", 3: "waiting"}


def test_a_retry_with_its_key_gets_its_answer_a_repeat_without_one_is_stale(api):
    token = create_queue_over_the_api(api)["token"]
    api("post", "/queues/lab/tickets", status=201)
    key = {"Idempotency-Key": "next-1"}
    first = api("post", "/queues/lab/next", json=NOBODY, token=token, headers=key)
    assert api("post", "/queues/lab/next", json=NOBODY, token=token, headers=key).json == first.json
    api("post", "/queues/lab/next", json=NOBODY, token=token, status=409)


@pytest.mark.parametrize("value", ["1", 0, 1.5, True, [1]])
def test_a_precondition_of_the_wrong_type_is_refused_over_the_api(api, value):
    token = create_queue_over_the_api(api)["token"]
    body = {"expected_current": value}
    error = api("post", "/queues/lab/next", json=body, token=token, status=400).json["error"]
    assert set(error["fields"]) == {"expected_current"}


def test_a_precondition_needs_a_signed_in_servicer_first(api):
    create_queue_over_the_api(api)
    body = {"expected_current": "not a number"}
    api("post", "/queues/lab/next", json=body, token="nobody", status=401)


# -- the console page ----------------------------------------------------------------


def expected_fields(console):
    return {
        accessible_name(f.html.find("button")): f["expected_current"].value
        for f in console.forms.values()
        if "expected_current" in f.fields
    }


def test_the_console_buttons_carry_the_customer_they_are_for(browser, new_browser):
    console = create_queue(browser)
    buttons = ["Done", "No show", "Recall"]
    assert expected_fields(console) == dict.fromkeys(["Start serving", *buttons, "Undo"], "")
    take_number(new_browser())
    take_number(new_browser())
    assert expected_fields(browser.get("/cet236/serve"))["Call 2"] == ""  # from the list
    console = press(console, "Next")
    expected = dict.fromkeys(["Next", *buttons, "Undo Next (1)", "Call 2"], "1")
    assert expected_fields(console) == expected


def test_a_double_submitted_next_calls_one_customer_and_says_why(app, browser, new_browser):
    console = create_queue(browser)
    for _ in range(3):
        take_number(new_browser())
    next_form = next(f for f in console.forms.values() if "Start serving" in f.text)
    next_form.submit().follow()
    second = next_form.submit()  # the same form again: a double click
    assert second.location.endswith("/cet236/serve?stale=1")
    page = second.follow()
    assert "That press did nothing" in page.html.select_one(".refused").get_text()
    assert not page.html.select_one(".refused").has_attr("hidden")
    assert states(app) == {1: "called", 2: "waiting", 3: "waiting"}


def test_no_show_pressed_in_a_stale_tab_leaves_the_customer_now_called(app, browser, new_browser):
    console = create_queue(browser)
    for _ in range(2):
        take_number(new_browser())
    first_tab = press(console, "Next")
    second_tab = browser.get("/cet236/serve")  # shows number 1 too
    press(first_tab, "Next")  # number 1 served, number 2 called
    refused = press(second_tab, "No show")
    assert refused.request.url.endswith("?stale=1")
    assert refused.html.select_one(".now-serving").get_text(strip=True) == "2"
    assert states(app) == {1: "served", 2: "called"}
    # The page shown after the refusal is current: its buttons act.
    assert press(refused, "No show").html.select_one(".refused").has_attr("hidden")
    assert states(app) == {1: "served", 2: "no_show"}
