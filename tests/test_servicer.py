"""Servicers: sign in, the console, Next, Done, No show, Recall, sign out."""

from conftest import PASSWORD, create_queue, press, sign_in, take_number, visible_buttons


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
    states = {t["number"]: t["state"] for t in app.store.db.query("select * from tickets")}
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
    assert visible_buttons(console) == ["Next", "Sign out"]


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
    assert "That is neither this queue's password nor its staff code." in page.html.get_text()
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


def test_sign_out_finishes_the_customer_and_shows_the_sign_in_form(app, browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    page = press(press(console, "Next"), "Sign out")
    assert page.request.path == "/cet236/serve"
    assert page.html.find("label", attrs={"for": "password"})
    assert app.store.db.execute("select state from tickets").fetchone()[0] == "served"


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
