"""Customers: join, take a number, watch the ticket, leave, take again."""

from support import (
    create_queue,
    my_number,
    press,
    sign_in,
    take_number,
    visible_buttons,
    waiting,
)


def test_queue_page_shows_title_now_serving_waiting_and_a_take_button(browser, new_browser):
    create_queue(browser, "cet236", "CET236 lab help")
    page = new_browser().get("/cet236")
    assert page.html.h1.get_text() == "CET236 lab help"
    facts = page.html.select_one(".queue-facts").get_text(" ", strip=True)
    assert " ".join(facts.split()) == "Now serving nobody yet Waiting 0"
    form = page.forms[0]
    assert form.method.upper() == "POST"
    assert page.html.find("button", string="Take a number")


def test_taking_a_number_sets_a_private_random_ticket_cookie_and_redirects(browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    response = customer.get("/cet236").forms[0].submit()
    assert response.status_int == 303
    cookie = next(c for c in response.headers.getall("Set-Cookie") if "tan_ticket_cet236" in c)
    token = cookie.split("=", 1)[1].split(";")[0]
    assert len(token) >= 32
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/;" in cookie
    assert "secure" not in cookie.lower()
    assert response.location == f"http://localhost/cet236/ticket/{token}"


def test_customers_get_increasing_numbers_and_see_their_place(browser, new_browser):
    create_queue(browser)
    first, second, third = (take_number(new_browser()) for _ in range(3))
    assert [my_number(p) for p in (first, second, third)] == [1, 2, 3]
    assert "2 people ahead of you." in third
    assert "Position in line: 3" in third
    assert "You're next." in first.html.get_text()


def held_ticket_link(join_page):
    """Where the queue page's "You already have number N — see your ticket" leads."""
    return join_page.html.select_one(".held-ticket a")["href"]


def test_reloading_or_pressing_back_never_makes_a_second_ticket(browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    join_page = customer.get("/cet236")
    ticket = join_page.forms[0].submit().follow()
    # Back to the join page's form, submitted again: the same ticket.
    again = join_page.forms[0].submit().follow()
    assert again.request.path == ticket.request.path
    # Reloading the queue page leads the customer to their ticket.
    assert held_ticket_link(customer.get("/cet236")) == ticket.request.path
    assert customer.get(ticket.request.path).status_int == 200
    assert waiting(browser) == 1


def test_called_customer_sees_its_their_turn_and_the_desk(browser, new_browser):
    console = create_queue(browser, name="Desk 3")
    customer = new_browser()
    ticket = take_number(customer)
    press(console, "Next")
    page = customer.get(ticket.request.path)
    assert "It's your turn — go to Desk 3." in page.html.get_text()
    assert page.html.select_one(".ticket")["class"] == ["ticket", "state-called"]


def test_served_customer_can_take_a_new_number(browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    console = press(console, "Next")
    press(console, "Done")
    page = customer.get(ticket.request.path)
    assert "You have been served" in page
    assert visible_buttons(page) == ["Take a new number"]
    new_ticket = press(page, "Take a new number")
    assert my_number(new_ticket) == 2
    assert new_ticket.request.path != ticket.request.path


def test_customer_who_left_can_take_a_new_number(browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    assert visible_buttons(ticket) == ["Yes, leave the queue"]
    page = press(ticket, "Yes, leave the queue")
    assert "You left the queue." in page
    assert waiting(browser) == 0
    assert press(console, "Next").html.select_one(".now-serving").get_text() == "–"
    assert my_number(press(page, "Take a new number")) == 2


def test_no_show_customer_is_told_and_can_take_a_new_number(browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    press(press(console, "Next"), "No show")
    page = customer.get(ticket.request.path)
    assert "your turn has passed" in page
    assert my_number(customer.get("/cet236").forms[0].submit().follow()) == 2


def test_recalled_customer_is_told_again(browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    press(press(console, "Next"), "Recall")
    assert "You have been called again." in customer.get(ticket.request.path)


def test_ticket_link_keeps_the_place_on_another_device(browser, new_browser):
    create_queue(browser)
    ticket = take_number(new_browser())
    other_device = new_browser()
    page = other_device.get(ticket.request.path)
    assert my_number(page) == 1
    # The other device now holds that ticket: its queue page leads back to it.
    assert held_ticket_link(other_device.get("/cet236")) == ticket.request.path


def test_wait_estimate_appears_only_after_three_services(app, browser, new_browser):
    console = create_queue(browser)
    customers = [new_browser() for _ in range(6)]
    tickets = [take_number(c) for c in customers]
    last = tickets[-1].request.path
    assert "Estimated wait" not in customers[-1].get(last)
    for _ in range(3):
        console = press(console, "Next")
    assert "Estimated wait" not in customers[-1].get(last)
    console = press(console, "Next")  # finishes the third service
    page = customers[-1].get(last)
    assert "Estimated wait: under a minute" in page


def test_pages_refresh_themselves_until_push_exists(browser, new_browser):
    console = create_queue(browser)
    ticket = take_number(new_browser())
    for page in (console, ticket):
        assert page.html.find("meta", attrs={"http-equiv": "refresh"})["content"] == "5"


def test_a_mistyped_queue_link_says_there_is_no_such_queue_and_to_check_the_link(browser):
    page = browser.get("/nope", status=404)
    assert page.html.h1.get_text() == "No such queue"
    assert "There is no queue called “nope”. Check the link" in page.html.get_text()
    # No big button to create it: a customer with a typo is not setting up a queue.
    assert page.html.select("a.button, button") == []
    link = page.html.find("a", string=lambda s: s and "Create the queue" in s)
    assert "hint" in link.parent["class"]
    assert link["href"] == "/?queue_id=nope"
    assert browser.get(link["href"]).forms[0]["queue_id"].value == "nope"


def test_a_link_to_a_reserved_name_offers_no_queue_to_create(browser):
    page = browser.get("/help", status=404)
    assert "There is no queue called “help”" in page
    assert "Create the queue" not in page


def test_unknown_ticket_gets_a_404_with_a_way_back(browser):
    create_queue(browser)
    page = browser.get("/cet236/ticket/not-a-real-token", status=404)
    assert "This ticket does not exist" in page
    assert page.html.find("a", string="Go to the queue")["href"] == "/cet236"


def test_ticket_of_another_queue_is_not_shown_under_this_one(browser, new_browser):
    create_queue(browser, "first")
    create_queue(new_browser(), "second")
    ticket = take_number(new_browser(), "first")
    token = ticket.request.path.rsplit("/", 1)[1]
    browser.get(f"/second/ticket/{token}", status=404)


def test_taking_numbers_is_rate_limited_per_browser(make_app):
    from webtest import TestApp

    app = make_app(rate_limit_take_ticket="2/minute")
    create_queue(TestApp(app))
    customer = TestApp(app)
    for _ in range(2):
        ticket = take_number(customer)
        press(ticket, "Yes, leave the queue")  # so the next take is a new ticket
    refused = customer.get("/cet236").forms[0].submit(status=429)
    assert "Too many attempts" in refused
    assert my_number(take_number(TestApp(app))) == 3


def test_several_servicers_each_call_their_own_customer(browser, new_browser):
    desk1 = create_queue(browser, name="Desk 1")
    desk2 = sign_in(new_browser(), name="Desk 2")
    customers = [new_browser() for _ in range(3)]
    tickets = [take_number(c) for c in customers]
    press(desk1, "Next")
    press(desk2, "Next")
    assert "go to Desk 1" in customers[0].get(tickets[0].request.path)
    assert "go to Desk 2" in customers[1].get(tickets[1].request.path)
    assert "You're next." in customers[2].get(tickets[2].request.path).html.get_text()


def test_a_double_click_racing_the_ticket_cookie_still_gives_one_ticket(app, browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    form = customer.get("/cet236").forms[0]
    first = form.submit()
    # The second click left before the first answer set the ticket cookie.
    same_browser = new_browser()
    same_browser.set_cookie("tan_session", customer.cookies["tan_session"])
    second = same_browser.post("/cet236/take", {"csrf_token": form["csrf_token"].value})
    assert second.location == first.location
    assert waiting(browser) == 1


# -- answers given again from memory (answers.py) ------------------------


def test_a_reloaded_ticket_page_is_the_same_until_something_changes(app, browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    first = take_number(customer)
    take_number(new_browser())
    path = first.request.path
    again = customer.get(path)
    assert again.body == customer.get(path).body  # nothing changed: the same page
    assert app.answers.kept, "the reload should have been remembered"
    assert "You're next." in again.html.get_text()

    press(console, "Next")  # a change: the very next reload shows it
    called = customer.get(path)
    assert "It's your turn" in called.html.get_text()
    assert called.headers["Content-Security-Policy"]  # remembered with every header


def test_a_remembered_page_is_never_given_to_another_browser(browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    path = take_number(customer).request.path
    customer.get(path)
    customer.get(path)
    # A stranger with the link has no session yet: they get one of their own,
    # with their own CSRF token, not the customer's remembered page.
    stranger = new_browser()
    theirs = stranger.get(path)
    assert "tan_session" in stranger.cookies
    assert stranger.cookies["tan_session"] != customer.cookies["tan_session"]
    mine = customer.get(path)
    assert theirs.forms[0]["csrf_token"].value != mine.forms[0]["csrf_token"].value
    # And their page, reloaded once they have a session, carries their token.
    assert stranger.get(path).forms[0]["csrf_token"].value == theirs.forms[0]["csrf_token"].value


def test_a_remembered_page_expires_even_when_nothing_changes(app, browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    path = take_number(customer).request.path
    customer.get(path)
    customer.get(path)
    (key,) = app.answers.kept
    app.answers.kept[key] = app.answers.kept[key]._replace(body=b"stale", expires=0)
    page = customer.get(path)  # past its time: made again, not given from memory
    assert "You're next." in page.html.get_text()
    assert app.answers.kept[key].body == page.body


def test_under_several_processes_a_page_shows_another_processs_change_at_once(make_app):
    # Two apps on one database file, as two gunicorn workers: the server says
    # several processes serve (wsgi.multiprocess), so no page is answered from
    # memory once another process has changed something.
    from webtest import TestApp

    one, two = make_app(), make_app()
    several = {"wsgi.multiprocess": True}
    console = create_queue(TestApp(one, extra_environ=several))
    customer = TestApp(two, extra_environ=several)
    path = take_number(customer).request.path
    assert "You're next." in customer.get(path).html.get_text()
    customer.get(path)  # remembered by the second worker

    press(console, "Next")  # the first worker calls them
    assert "It's your turn" in customer.get(path).html.get_text()


def test_back_on_the_queue_page_says_which_number_this_browser_holds(browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    join = customer.get("/cet236")
    assert join.status_int == 200
    link = join.html.find("a", string="You already have number 1 — see your ticket")
    assert link["href"] == ticket.request.path
    assert "Take a number" not in join
    # Never kept by the browser, so Back asks again rather than showing the old page.
    assert join.headers["Cache-Control"] == "no-store"
    # Others still get the button; once served, so does this customer.
    assert visible_buttons(new_browser().get("/cet236")) == ["Take a number"]
    press(press(console, "Next"), "Done")
    again = customer.get("/cet236")
    assert visible_buttons(again) == ["Take a number"]
    assert "You already have" not in again


# -- how a ticket looks in each state ------------------------------------------------


def ticket_look(page):
    """The ticket's look (waiting, next, called, or the state it ended in), its
    heading and its number's label, as the page shows them."""
    look = page.html.select_one(".ticket-look")["class"]
    heading = page.html.select_one(".ticket-heading")
    return (
        next(c[len("look-") :] for c in look if c.startswith("look-")),
        "" if heading.has_attr("hidden") else heading.get_text(strip=True),
        page.html.select_one(".my-number .figure-label").get_text(strip=True),
    )


def test_the_next_customer_looks_different_from_one_still_waiting(browser, new_browser):
    create_queue(browser)
    first, second = take_number(new_browser()), take_number(new_browser())
    assert ticket_look(first) == ("next", "Get ready", "Your number")
    assert ticket_look(second) == ("waiting", "", "Your number")


def test_a_called_customer_sees_the_green_look_of_their_turn(browser, new_browser):
    console = create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    press(console, "Next")
    assert ticket_look(customer.get(ticket.request.path)) == ("called", "", "Your number")


def test_an_ended_ticket_says_how_it_ended_and_that_its_number_is_no_longer_valid(
    browser, new_browser
):
    console = create_queue(browser)
    customers = [new_browser() for _ in range(4)]
    served, no_show, left, cleared = (take_number(c) for c in customers)
    console = press(press(console, "Next"), "Done")
    press(press(console, "Next"), "No show")
    press(left, "Yes, leave the queue")
    press(browser.get("/cet236/manage/clear"), "Yes, clear the line")
    tickets = (served, no_show, left, cleared)
    looks = [ticket_look(c.get(t.request.path)) for c, t in zip(customers, tickets, strict=True)]
    invalid = "This number is no longer valid"
    assert looks == [
        ("served", "Served", invalid),
        ("no_show", "Turn passed", invalid),
        ("left", "Left the queue", invalid),
        ("cleared", "Line cleared", invalid),
    ]


def test_the_queue_page_says_a_place_is_kept_only_once_this_browser_has_one(browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    assert "Your place is kept in this browser" not in customer.get("/cet236")
    take_number(customer)
    assert "Your place is kept in this browser." in customer.get("/cet236")
