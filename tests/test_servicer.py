"""Servicers: sign in, the console, Next, Done, No show, Recall, sign out."""

import datetime

from support import (
    PASSWORD,
    create_queue,
    my_number,
    press,
    sign_in,
    take_number,
    visible_buttons,
)
from webtest import TestApp

from take_a_number import statistics


def figures(console):
    return {
        "now_serving": console.html.select_one(".now-serving").get_text(strip=True),
        "waiting": console.html.select_one(".waiting-count").get_text(strip=True),
    }


def test_console_shows_now_serving_and_waiting_in_large_figures(browser, new_browser):
    console = create_queue(browser)
    assert figures(console) == {"now_serving": "–", "waiting": "0"}
    assert "Nobody is waiting." in console
    take_number(new_browser())
    take_number(new_browser())
    console = press(browser.get("/cet236/serve"), "Next")
    assert figures(console) == {"now_serving": "1", "waiting": "1"}
    assert "called just now" in console


def test_next_finishes_the_current_customer_and_calls_the_next(app, browser, new_browser):
    console = create_queue(browser)
    for _ in range(2):
        take_number(new_browser())
    console = press(press(console, "Next"), "Next")
    assert figures(console) == {"now_serving": "2", "waiting": "0"}
    states = {t["number"]: t["state"] for t in app.store.engine.rows("select * from tickets")}
    assert states == {1: "served", 2: "called"}


def test_next_with_nobody_waiting_says_so_plainly(browser):
    console = press(create_queue(browser), "Next")
    assert figures(console) == {"now_serving": "–", "waiting": "0"}
    assert "Nobody is waiting." in console


def test_done_finishes_without_calling_anyone(browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    take_number(new_browser())
    console = press(press(console, "Next"), "Done")
    assert figures(console) == {"now_serving": "–", "waiting": "1"}
    assert visible_buttons(console) == ["Next", "Undo Done (1)", "Call 2", "Sign out"]


def test_no_show_ends_the_ticket(app, browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    press(press(console, "Next"), "No show")
    assert app.store.db.execute("select state from tickets").fetchone()[0] == "no_show"


def test_recall_signals_the_current_customer_again(app, browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    console = press(press(press(console, "Next"), "Recall"), "Recall")
    assert "recalled 2×" in console
    assert app.store.db.execute("select recalls from tickets").fetchone()[0] == 2


def test_servicer_signs_in_with_password_and_desk(browser, new_browser):
    create_queue(browser)
    desk = new_browser()
    form = desk.get("/cet236/serve").forms[0]
    assert "Sign in" in form.text
    console = sign_in(desk, name="Desk 3")
    assert "Signed in as" in console and "Desk 3" in console


def test_wrong_password_is_refused(browser, new_browser):
    create_queue(browser)
    desk = new_browser()
    form = desk.get("/cet236/serve").forms[0]
    form["name"] = "Desk 3"
    form["password"] = "not the password"
    page = form.submit(status=400)
    assert "That is not this queue's password." in page.html.get_text()
    assert page.forms[0]["name"].value == "Desk 3"
    assert page.forms[0]["password"].value == ""
    assert "Sign in" in desk.get("/cet236/serve")


def test_sign_in_needs_a_name(browser, new_browser):
    create_queue(browser)
    form = new_browser().get("/cet236/serve").forms[0]
    form["password"] = PASSWORD
    assert "Please fill this in." in form.submit(status=400)


def test_sign_in_is_rate_limited_per_client_address(make_app):
    from webtest import TestApp

    app = make_app(rate_limit_sign_in="3/600", rate_limit_sign_in_slowed="off")
    create_queue(TestApp(app))
    guesser = TestApp(app)
    for attempt in range(3):
        sign_in_page = guesser.get("/cet236/serve").forms[0]
        sign_in_page["name"] = "x"
        sign_in_page["password"] = f"guess{attempt:04}"
        sign_in_page.submit(status=400)
    form = guesser.get("/cet236/serve").forms[0]
    form["name"], form["password"] = "x", PASSWORD
    assert form.submit(status=429).headers["Retry-After"]


def test_two_servicers_have_their_own_now_serving(browser, new_browser):
    desk1 = create_queue(browser, name="Desk 1")
    desk2 = sign_in(new_browser(), name="Desk 2")
    for _ in range(3):
        take_number(new_browser())
    desk1 = press(desk1, "Next")
    desk2 = press(desk2, "Next")
    assert figures(browser.get("/cet236/serve")) == {"now_serving": "1", "waiting": "1"}
    assert figures(desk2) == {"now_serving": "2", "waiting": "1"}
    assert "Also serving: 1 at Desk 1" in desk2.html.get_text()


def test_signing_in_again_with_the_same_desk_resumes_it(browser, new_browser):
    console = create_queue(browser, name="Desk 1")
    take_number(new_browser())
    press(console, "Next")
    phone = sign_in(new_browser(), name="desk 1")
    assert figures(phone)["now_serving"] == "1"


def states(app):
    return {t["number"]: t["state"] for t in app.store.engine.rows("select * from tickets")}


def test_signing_out_with_a_called_customer_asks_what_became_of_them(app, browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    question = press(press(console, "Next"), "Sign out")
    assert visible_buttons(question) == ["Put #1 back at the front", "Finish #1 as served"]
    assert states(app) == {1: "called"}
    assert "Signed in as" in browser.get("/cet236/serve")


def test_a_servicer_who_leaves_puts_the_customer_back_first_in_line(app, browser, new_browser):
    console = create_queue(browser)
    customers = [new_browser() for _ in range(3)]
    tickets = [take_number(c) for c in customers]
    console = press(press(console, "Next"), "Next")  # 1 served, 2 called
    page = press(press(console, "Sign out"), "Put #2 back at the front")
    assert "You signed out." in page.html.select_one(".left-reason").get_text()
    assert states(app) == {1: "served", 2: "waiting", 3: "waiting"}
    mine = customers[1].get(tickets[1].request.path)
    assert my_number(mine) == 2 and "You're next." in mine.html.get_text()
    assert "Position in line: 2" in customers[2].get(tickets[2].request.path)
    # Whoever serves next calls #2 first, and it was served once, not twice.
    desk = press(sign_in(new_browser(), name="Desk 2"), "Next")
    assert figures(desk)["now_serving"] == "2"
    report = statistics.report(app.store.queue_tickets("cet236"), datetime.UTC)
    assert report["overall"]["served"] == 1


def test_a_servicer_who_signs_out_after_a_service_finishes_it_as_served(app, browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    press(press(press(console, "Next"), "Sign out"), "Finish #1 as served")
    assert states(app) == {1: "served"}
    assert "You have been served" in customer.get(ticket.request.path)


def test_a_servicer_who_pressed_done_signs_out_at_once(app, browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    page = press(press(press(console, "Next"), "Done"), "Sign out")
    assert page.request.path == "/cet236/serve" and "You signed out." in page
    assert page.html.find("label", attrs={"for": "password"})
    assert states(app) == {1: "served"}


def test_an_answer_about_another_customer_asks_again(app, browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    take_number(new_browser())
    csrf = console.html.find("input", attrs={"name": "csrf_token"})["value"]
    press(console, "Next")
    press(browser.get("/cet236/serve"), "Next")  # now serving 2, in another tab say
    question = browser.post(
        "/cet236/sign-out", {"csrf_token": csrf, "customer": "served", "number": "1"}
    ).follow()
    assert visible_buttons(question)[0] == "Put #2 back at the front"
    assert states(app) == {1: "served", 2: "called"}


def test_an_abandoned_desk_is_released_and_its_customer_goes_back_first(app, browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    take_number(new_browser())
    press(console, "Next")
    start = app.clock()
    app.clock = lambda: start + 29 * 60
    assert states(app)[1] == "called" and "go to Desk 1" in customer.get(ticket.request.path)
    app.clock = lambda: start + 30 * 60 + 1
    # Released when anyone next looks at the queue (the board, here).
    assert new_browser().get("/cet236/board").html.select(".desk") == []
    page = customer.get(ticket.request.path)
    assert "You're next." in page.html.get_text()
    assert states(app) == {1: "waiting", 2: "waiting"}
    console = browser.get("/cet236/serve")
    assert "because your console was closed" in console.html.select_one(".left-reason").get_text()


def test_an_open_console_keeps_its_desk(make_app, new_browser):
    app = make_app(servicer_idle_minutes="10")
    browser = TestApp(app)
    console = create_queue(browser)
    take_number(TestApp(app))
    press(console, "Next")
    start = app.clock()
    for minute in range(1, 40):
        app.clock = lambda minute=minute: start + minute * 60
        browser.get("/cet236/serve/updates")  # what the open console asks, again and again
        TestApp(app).get("/cet236/board")
    assert states(app) == {1: "called"}
    app.clock = lambda: start + 50 * 60
    TestApp(app).get("/cet236/board")
    assert states(app) == {1: "waiting"}


def test_console_buttons_need_a_signed_in_servicer(browser, new_browser):
    create_queue(browser)
    take_number(new_browser())
    stranger = new_browser()
    token = stranger.get("/cet236/serve").html.find("input", attrs={"name": "csrf_token"})["value"]
    response = stranger.post("/cet236/serve/next", {"csrf_token": token})
    assert response.status_int == 303
    assert "Sign in" in response.follow()
    assert figures(browser.get("/cet236/serve"))["now_serving"] == "–"


def test_console_of_unknown_queue_is_404(browser):
    browser.get("/nosuch/serve", status=404)
