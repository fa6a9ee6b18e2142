"""The queue owner: the home page and creating a queue."""

import pytest
from support import PASSWORD, accept, create_queue, invite


def submit_create_form(browser, status=400, **fields):
    form = browser.get("/").forms[0]
    values = {"queue_id": "cet236", "title": "Lab help", "password": PASSWORD, "name": "Desk 1"}
    values.update(fields)
    for name, value in values.items():
        form[name] = value
    return form.submit(status=status)


def test_home_page_says_what_this_is_and_offers_to_create_a_queue(browser):
    page = browser.get("/")
    assert "deli-counter" in page.text
    assert page.html.find("button", string="Create a queue")
    for field in ("queue_id", "title", "password", "name"):
        assert page.html.find("label", attrs={"for": field}), field


def test_the_home_page_keeps_the_password_the_owners_and_points_to_invitations(browser):
    text = browser.get("/").html.get_text(" ", strip=True)
    assert "Share it" not in text
    assert "It is yours alone" in text
    assert "Invite whoever serves with you from the Manage page" in text
    assert "Servicers: open the invitation link" in text


def test_creating_a_queue_signs_the_owner_in_and_shows_the_customer_link(browser):
    console = create_queue(browser, "cet236", "CET236 lab help", name="Desk 1")
    assert console.request.path == "/cet236/serve"
    assert "CET236 lab help" in console
    assert "Signed in as" in console and "Desk 1" in console
    assert console.html.select_one(".join-link")["href"] == "http://localhost/cet236"


def test_queue_id_is_lowercased_and_trimmed(browser):
    response = submit_create_form(browser, status=303, queue_id="  CET-236 ")
    assert response.location.endswith("/cet-236/serve")


@pytest.mark.parametrize(
    "queue_id, message",
    [
        ("ab", "3 to 20 characters"),
        ("a" * 21, "3 to 20 characters"),
        ("has space", "3 to 20 characters"),
        ("-edge", "3 to 20 characters"),
        ("émile", "3 to 20 characters"),
        ("static", "reserved"),
        ("api", "reserved"),
        ("", "Choose a name"),
    ],
)
def test_bad_queue_ids_are_refused_with_a_clear_message(browser, queue_id, message):
    page = submit_create_form(browser, queue_id=queue_id)
    error = page.html.select_one(".error-message")
    assert message in error.get_text()
    assert page.html.find("input", attrs={"name": "title"})["value"] == "Lab help"


def test_short_password_is_refused(browser):
    page = submit_create_form(browser, password="short")
    assert "at least 8 characters" in page.text
    assert browser.get("/cet236", status=404)


def test_empty_title_and_name_are_refused(browser):
    page = submit_create_form(browser, title="  ", name="")
    assert page.text.count("Please fill this in.") == 2


def test_a_taken_queue_id_cannot_be_taken_over(browser, new_browser):
    create_queue(browser, "cet236", "Original")
    page = submit_create_form(new_browser(), title="Impostor")
    assert "That name is taken" in page.text
    assert "Original" in new_browser().get("/cet236")


def test_the_password_is_stored_hashed(app, browser):
    create_queue(browser)
    stored = app.store.get_queue("cet236")["password_hash"]
    assert PASSWORD not in stored
    assert stored.startswith("pbkdf2_sha256$600000$")


def test_queue_creation_is_rate_limited_per_client_address(make_app):
    from webtest import TestApp

    app = make_app(rate_limit_create_queue="2/hour")
    one, other = TestApp(app), TestApp(app, extra_environ={"REMOTE_ADDR": "10.0.0.9"})
    create_queue(one, "first")
    create_queue(one, "second")
    refused = submit_create_form(one, status=429, queue_id="third")
    assert "Please wait about 60 minutes before creating another." in refused
    assert int(refused.headers["Retry-After"]) > 0
    assert one.get("/third", status=404)
    create_queue(other, "third")  # another address is not held back


# -- "Your queues" ---------------------------------------------------------------------


def your_queues(page):
    """The home page's "Your queues": ``(title, [its links])`` each."""
    return [
        (item.select_one(".your-queue-title").get_text(), [a["href"] for a in item.find_all("a")])
        for item in page.html.select(".your-queues-list li")
    ]


def test_a_signed_in_owner_finds_their_queues_on_the_home_page(browser):
    create_queue(browser, "cet236", "CET236 lab help")
    create_queue(browser, "biology", "Biology desk")
    page = browser.get("/")
    assert page.html.find("h2", string="Your queues")
    assert your_queues(page) == [
        ("Biology desk", ["/biology/serve", "/biology/manage"]),
        ("CET236 lab help", ["/cet236/serve", "/cet236/manage"]),
    ]
    # Each link names its queue for a screen reader, not just "Console".
    assert page.html.select_one(".your-queues-list a").get_text() == "Console of Biology desk"


def test_your_queues_leaves_out_queues_signed_out_of_and_those_served_but_not_owned(
    browser, new_browser
):
    create_queue(browser, "cet236", "CET236 lab help")
    create_queue(browser, "biology", "Biology desk")
    console = browser.get("/biology/serve")
    next(f for f in console.forms.values() if f.action.endswith("/sign-out")).submit()
    assert [title for title, _links in your_queues(browser.get("/"))] == ["CET236 lab help"]
    servicer = new_browser()
    accept(servicer, invite(browser, "Desk 2"))
    page = servicer.get("/")
    assert not page.html.find("h2", string="Your queues")
    assert not your_queues(page)


def test_a_visitor_who_signed_in_nowhere_sees_no_queues(browser):
    assert not browser.get("/").html.select(".your-queues")


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("Europe/Paris", "Europe/Paris"), ("", "UTC"), ("Mars/Olympus", "UTC"), ("../etc", "UTC")],
)
def test_a_new_queue_takes_the_time_zone_the_browser_sends_or_utc(app, browser, sent, kept):
    page = browser.get("/")
    assert page.html.select_one("input[type=hidden][name=timezone]")
    assert page.html.find("script", src=lambda src: src and "home" in src)
    submit_create_form(browser, status=303, timezone=sent)
    assert app.store.get_queue("cet236")["timezone"] == kept
