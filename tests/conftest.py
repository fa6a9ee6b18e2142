"""Fixtures: a fresh database file per test, the app built by its own factory,
and browsers (WebTest apps with their own cookie jars) that speak for people."""

import datetime
import itertools
import os

import playwright.sync_api as playwright_api
import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, open_page
from server_support import Server
from webtest import TestApp

from take_a_number import main

PASSWORD = "correct horse"


@pytest.fixture
def settings(tmp_path):
    """Settings for a fresh database file; rate limits off unless a test sets them."""
    return {
        "database": str(tmp_path / "var" / "test.sqlite"),
        "rate_limit_create_queue": "off",
        "rate_limit_sign_in": "off",
        "rate_limit_take_ticket": "off",
        "rate_limit_take_ticket_per_address": "off",
        "rate_limit_create_attempts": "off",
    }


@pytest.fixture
def make_app(tmp_path, settings):
    """The app on the test's database, with some settings changed."""
    return lambda **changes: main({"here": str(tmp_path)}, **dict(settings, **changes))


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def browser(app):
    """A browser: a WebTest client with its own cookies."""
    return TestApp(app)


@pytest.fixture
def new_browser(app):
    """Make as many separate browsers as a test needs."""
    return lambda **kwargs: TestApp(app, **kwargs)


def hours_ahead(hours=3):
    """A 30-minute opening window in UTC that starts a few hours from now, inside one
    day: ``(opens, closes)`` as aware datetimes."""
    now = datetime.datetime.now(datetime.UTC)
    opens = (now + datetime.timedelta(hours=hours)).replace(second=0, microsecond=0)
    closes = opens + datetime.timedelta(minutes=30)
    if closes.date() != opens.date():
        opens, closes = opens.replace(hour=1, minute=0), opens.replace(hour=1, minute=30)
    return opens, closes


def create_queue(browser, queue_id="cet236", title="CET236 lab help", name="Desk 1"):
    """The owner creates a queue from the home page; returns the console page."""
    form = browser.get("/").forms[0]
    form["queue_id"] = queue_id
    form["title"] = title
    form["password"] = PASSWORD
    form["name"] = name
    return form.submit().follow()


def sign_in(browser, queue_id="cet236", name="Desk 2", password=PASSWORD):
    """A servicer signs in to an existing queue; returns the console page."""
    form = browser.get(f"/{queue_id}/serve").forms[0]
    form["name"] = name
    form["password"] = password
    return form.submit().follow()


def invite(owner, name="Desk 2", queue_id="cet236", valid_for_hours=""):
    """The owner makes a personal invitation on the Manage page; returns its link (shown once)."""
    page = owner.get(f"/{queue_id}/manage")
    form = next(f for f in page.forms.values() if f.action.endswith("/manage/invitations"))
    form["name"], form["valid_for_hours"] = name, valid_for_hours
    return form.submit().follow().html.select_one(".new-invitation .invite-link")["href"]


def accept(browser, link, status=303):
    """A servicer opens their invitation link and signs in; returns the answer to it."""
    form = next(f for f in browser.get(link).forms.values() if "code" in f.fields)
    return form.submit(status=status)


def take_number(browser, queue_id="cet236"):
    """A customer takes a number from the queue's page; returns the ticket page."""
    return browser.get(f"/{queue_id}").forms[0].submit().follow()


def is_visible(tag):
    """Whether the tag would be shown: neither it nor an ancestor is ``hidden``."""
    return not any(t.has_attr("hidden") for t in [tag, *tag.parents] if t.name)


def visible_buttons(page):
    return [b.get_text(strip=True) for b in page.html.find_all("button") if is_visible(b)]


def press(page, button):
    """Press a visible button (Next, Done, Leave the queue...); follow the 303.

    A servicer's first Next is labelled "Start serving"; "Next" presses either.
    """
    labels = {button, "Start serving"} if button == "Next" else {button}
    for form in page.forms.values():
        tag = form.html.find("button")
        if tag.get_text(strip=True) in labels and is_visible(form.html.form):
            return form.submit().follow()
    raise AssertionError(f"no visible {button!r} button on the page")


def my_number(ticket_page):
    return int(ticket_page.html.select_one(".my-number .number").get_text())


def waiting(browser, queue_id="cet236"):
    """How many are waiting, as the queue's page shows it to a new visitor."""
    page = TestApp(browser.app).get(f"/{queue_id}")
    return int(page.html.select(".figure-value")[1].get_text())


# -- the browser tests' server and Chromium, shared by their modules ----------------

_queue_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    # Missing Chromium is a failure, never a skip: scripts/test installs it.
    assert os.path.exists(CHROMIUM), f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
    server = Server(tmp_path_factory.mktemp("server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def chromium(server):
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium, server):
    """Open as many separate browsers (contexts) as a test needs."""
    pages = []

    def make(**kwargs):
        page = open_page(chromium, server, **kwargs)
        pages.append(page)
        return page

    yield make
    problems = [problem for page in pages for problem in page.problems]
    for page in pages:
        page.context.close()
    assert not problems


@pytest.fixture
def server_stays_healthy(server):
    """No test may make the server log an error."""
    before = len(server.log())
    yield
    logged = server.log()[before:]
    assert "Traceback" not in logged and "ERROR" not in logged, logged


@pytest.fixture
def queue_id():
    return f"queue-{next(_queue_numbers)}"
