"""The app mounted under a path prefix (SCRIPT_NAME) inside another WSGI app."""

import pytest
from support import create_queue, my_number, press, take_number
from webob import Request, Response
from webtest import TestApp


def mounted(app, prefix):
    """A parent WSGI app that hands everything under ``prefix`` to ``app``."""

    def parent(environ, start_response):
        req = Request(environ)
        if req.path_info == prefix or req.path_info.startswith(prefix + "/"):
            for _ in prefix.strip("/").split("/"):
                req.path_info_pop()
            return app(environ, start_response)
        return Response("the parent app", status=404)(environ, start_response)

    return parent


@pytest.fixture
def lab(app):
    return lambda: TestApp(mounted(app, "/school/lab"))


def test_every_link_form_and_static_file_carries_the_prefix(lab):
    owner = lab()
    home = owner.get("/school/lab/")
    assert home.forms[0].action == "/school/lab/"
    assert home.html.find("link", rel="stylesheet")["href"].startswith("/school/lab/static/")
    assert home.html.select_one(".site-header a")["href"] == "/school/lab/"
    console = create_queue_under_prefix(owner)
    assert console.request.path == "/school/lab/cet236/serve"
    assert console.html.select_one(".join-link")["href"] == "http://localhost/school/lab/cet236"
    for form in console.forms.values():
        assert form.action.startswith("/school/lab/cet236/")
    owner.get(home.html.find("link", rel="stylesheet")["href"], status=200)


def create_queue_under_prefix(browser):
    form = browser.get("/school/lab/").forms[0]
    form["queue_id"], form["title"], form["password"] = "cet236", "Lab", "correct horse"
    response = form.submit()
    assert response.location == "http://localhost/school/lab/cet236/serve"
    return response.follow()


def test_the_whole_flow_works_under_the_prefix(lab):
    owner, customer = lab(), lab()
    console = create_queue_under_prefix(owner)
    join = customer.get("/school/lab/cet236")
    assert join.forms[0].action == "/school/lab/cet236/take"
    taken = join.forms[0].submit()
    for cookie in taken.headers.getall("Set-Cookie"):
        assert "Path=/school/lab;" in cookie
    ticket = taken.follow()
    assert ticket.request.path.startswith("/school/lab/cet236/ticket/")
    assert my_number(ticket) == 1
    press(console, "Next")
    page = customer.get(ticket.request.path)
    assert "It's your turn" in page.html.get_text()
    held = customer.get("/school/lab/cet236").html.select_one(".held-ticket a")
    assert held["href"] == ticket.request.path


def test_unknown_queue_offer_links_under_the_prefix(lab):
    page = lab().get("/school/lab/nosuch", status=404)
    create = page.html.find("a", string="Create the queue “nosuch”")
    assert create["href"] == "/school/lab/?queue_id=nosuch"


def test_the_same_app_also_answers_at_the_root(app, lab):
    owner = TestApp(app)
    create_queue(owner)
    assert my_number(take_number(TestApp(app))) == 1
    assert "Lab" not in lab().get("/school/lab/cet236").html.h1.get_text()
    press(owner.get("/cet236/serve"), "Next")


def test_the_bare_prefix_leads_to_the_home_page(lab):
    response = lab().get("/school/lab", status=301)
    assert response.location == "http://localhost/school/lab/"


def test_a_session_signed_for_one_mount_is_refused_under_another(app):
    """Even with one secret, a session cookie made under /a is not accepted under /b."""
    both = TestApp(_two_mounts(app))
    owner = TestApp(mounted(app, "/a"))
    create_queue_at(owner, "/a")
    cookie = owner.cookies["tan_session"]
    stranger = both
    stranger.set_cookie("tan_session", cookie)
    assert "Sign in" in stranger.get("/b/cet236/serve")


def _two_mounts(app):
    at_a, at_b = mounted(app, "/a"), mounted(app, "/b")

    def parent(environ, start_response):
        path = environ.get("PATH_INFO", "")
        return (at_a if path.startswith("/a") else at_b)(environ, start_response)

    return parent


def create_queue_at(browser, prefix):
    form = browser.get(f"{prefix}/").forms[0]
    form["queue_id"], form["title"], form["password"] = "cet236", "Lab", "correct horse"
    return form.submit().follow()
