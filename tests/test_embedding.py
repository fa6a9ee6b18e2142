"""The app embedded in another WSGI stack: two instances side by side, under /a and /b.

Each test runs against both stacks docs/deployment.md shows: a PasteDeploy urlmap
composition (tests/embedding.ini) and a plain Python parent app (examples/embed.py).
test_prefix.py covers one instance's pages and flow under a prefix.
"""

import os
import runpy

import pytest
from paste.deploy import loadapp
from support import PASSWORD
from webtest import TestApp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_site(stack, data_dir):
    """The parent WSGI app of ``stack`` ("urlmap" or "python"), its databases in data_dir."""
    if stack == "urlmap":
        return loadapp(
            "config:" + os.path.join(HERE, "embedding.ini"), global_conf={"data_dir": data_dir}
        )
    example = runpy.run_path(os.path.join(ROOT, "examples", "embed.py"))
    return example["make_site"](data_dir)


@pytest.fixture(params=["urlmap", "python"])
def site(request, tmp_path):
    """The parent WSGI app, with its own databases under tmp_path."""
    return make_site(request.param, str(tmp_path))


@pytest.fixture
def new_browser(site):
    return lambda: TestApp(site)


def create_queue(browser, prefix, title="Lab help", name="Desk 1"):
    form = browser.get(f"{prefix}/").forms[0]
    form["queue_id"], form["title"], form["password"], form["name"] = (
        "cet236",
        title,
        PASSWORD,
        name,
    )
    created = form.submit()
    assert created.location == f"http://localhost{prefix}/cet236/serve"
    return created.follow()


def take_number(browser, prefix):
    taken = browser.get(f"{prefix}/cet236").forms[0].submit()
    assert taken.location.startswith(f"http://localhost{prefix}/cet236/ticket/")
    return taken.follow()


def press_next(console):
    form = next(f for f in console.forms.values() if f.action.endswith("/serve/next"))
    return form.submit().follow()


def csrf_token(page):
    return page.html.find("input", attrs={"name": "csrf_token"})["value"]


@pytest.mark.parametrize("prefix", ["/a", "/b"])
def test_links_forms_redirects_and_static_files_follow_each_prefix(new_browser, prefix):
    owner = new_browser()
    console = create_queue(owner, prefix)
    assert console.html.select_one(".site-header a")["href"] == f"{prefix}/"
    assert console.html.select_one(".join-link")["href"] == f"http://localhost{prefix}/cet236"
    assert all(form.action.startswith(f"{prefix}/cet236/") for form in console.forms.values())
    for tag, attribute in (("link", "href"), ("script", "src")):
        url = console.html.find(tag, **{attribute: True})[attribute]
        assert url.startswith(f"{prefix}/static/")
        static = owner.get(url)
        assert static.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    ticket = take_number(new_browser(), prefix)
    actions = {f.action for f in ticket.forms.values()}
    assert ticket.request.path + "/leave" in actions
    assert all(action.startswith(f"{prefix}/cet236/") for action in actions)


def test_live_updates_are_asked_for_under_the_prefix(new_browser):
    owner, customer = new_browser(), new_browser()
    console = create_queue(owner, "/a")
    ticket = take_number(customer, "/a")
    live_url = ticket.html.body["data-live-url"]
    assert live_url == ticket.request.path + "/updates"
    assert console.html.body["data-live-url"] == "/a/cet236/serve/updates"
    version = int(ticket.html.body["data-version"])
    press_next(console)
    woken = customer.get(f"{live_url}?since={version}").json
    assert woken["state"] == "called"
    assert woken["version"] > version


def test_api_urls_are_under_the_prefix_and_each_instance_has_its_own_tickets(new_browser):
    create_queue(new_browser(), "/a")
    create_queue(new_browser(), "/b")
    api = new_browser()
    taken = api.post_json("/a/api/v1/queues/cet236/tickets", {}, status=201)
    token = taken.json["token"]
    assert taken.location == f"http://localhost/a/api/v1/tickets/{token}"
    assert taken.json["links"] == {
        "page": f"http://localhost/a/cet236/ticket/{token}",
        "api": f"http://localhost/a/api/v1/tickets/{token}",
        "updates": f"http://localhost/a/api/v1/tickets/{token}/updates",
    }
    assert api.get(f"/a/api/v1/tickets/{token}").json["number"] == 1
    api.get(f"/b/api/v1/tickets/{token}", status=404)
    description = api.get("/b/api/v1/openapi.json").json
    assert description["servers"] == [{"url": "http://localhost/b/api/v1"}]


def test_the_same_queue_id_is_a_different_queue_in_each_instance(new_browser):
    create_queue(new_browser(), "/a", title="Lab A")
    create_queue(new_browser(), "/b", title="Lab B")
    customer = new_browser()
    assert take_number(customer, "/a").html.select_one(".queue-title").get_text() == "Lab A"
    b_page = customer.get("/b/cet236")
    assert b_page.html.h1.get_text(strip=True) == "Lab B"
    assert "Take a number" in b_page.text  # no ticket of /a's carried over


def test_cookies_are_scoped_to_each_instance(new_browser):
    browser = new_browser()
    a_home, b_home = browser.get("/a/"), browser.get("/b/")
    assert "Path=/a;" in a_home.headers["Set-Cookie"]
    assert "Path=/b;" in b_home.headers["Set-Cookie"]
    assert {(c.name, c.path) for c in browser.cookiejar} == {
        ("tan_session", "/a"),
        ("tan_session", "/b"),
    }
    assert csrf_token(browser.get("/a/")) != csrf_token(browser.get("/b/"))


def test_a_servicer_signed_in_at_one_instance_is_not_signed_in_at_the_other(new_browser):
    owner = new_browser()
    a_console = create_queue(owner, "/a")
    create_queue(new_browser(), "/b")  # the same queue id, and the same servicer id 1
    b_page = owner.get("/b/cet236/serve")
    assert b_page.html.find("input", attrs={"name": "password"}) is not None
    assert not any(f.action.endswith("/serve/next") for f in b_page.forms.values())
    owner.post("/b/cet236/serve/next", {"csrf_token": csrf_token(a_console)}, status=403)


def test_a_session_cookie_copied_to_the_other_instance_is_refused(new_browser):
    owner = new_browser()
    create_queue(owner, "/a")
    create_queue(new_browser(), "/b")
    stolen = next(c.value for c in owner.cookiejar if c.name == "tan_session")
    intruder = new_browser()
    intruder.set_cookie("tan_session", stolen)  # sent for every path
    assert intruder.get("/a/cet236/serve").forms  # still good where it was made
    assert "Now serving" in intruder.get("/a/cet236/serve").text
    b_page = intruder.get("/b/cet236/serve")
    assert b_page.html.find("input", attrs={"name": "password"}) is not None


@pytest.mark.parametrize("stack", ["urlmap", "python"])
def test_the_environments_database_never_merges_two_instances_given_their_own(
    stack, tmp_path, monkeypatch
):
    # The docs' systemd unit, deploy/apache/envvars and deploy/gunicorn.conf.py set it.
    shared = tmp_path / "environment" / "take-a-number.sqlite"
    monkeypatch.setenv("TAKE_A_NUMBER_DATABASE", str(shared))
    browser = TestApp(make_site(stack, str(tmp_path)))
    body = {"queue_id": "cet236", "title": "Lab A", "password": PASSWORD, "name": "Desk 1"}
    token = browser.post_json("/a/api/v1/queues", body, status=201).json["token"]
    bearer = {"Authorization": f"Bearer {token}"}

    console = browser.get("/a/api/v1/queues/cet236/console", headers=bearer).json
    assert console["title"] == "Lab A"
    refused = browser.get("/b/api/v1/queues/cet236/console", headers=bearer, status=404)
    assert refused.json["error"]["code"] == "not_found"
    body["title"] = "Lab B"
    browser.post_json("/b/api/v1/queues", body, status=201)  # the same name, a new queue
    assert (tmp_path / "a" / "queues.sqlite").exists()
    assert (tmp_path / "b" / "queues.sqlite").exists()
    assert not shared.exists()
