"""Fixtures: a fresh database file per test, the app built by its own factory,
and browsers (WebTest apps with their own cookie jars) that speak for people.
The flows those browsers go through are in support.py."""

import itertools
import os

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, open_page
from pg_support import PostgreSQLUnavailable, start_postgresql
from server_support import Server
from webtest import TestApp

from take_a_number import main

# Every test that asks for ``database`` runs on both, unless marked sqlite_only
# (it is about the SQLite file itself: WAL, backups, the file's folder).
DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    if "database" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("database", ["sqlite"] if only else DATABASES, indirect=True)


@pytest.fixture
def database(request, tmp_path):
    """A fresh database: an SQLite file's path, or a PostgreSQL database's URL."""
    if request.param == "sqlite":
        return str(tmp_path / "var" / "test.sqlite")
    return request.getfixturevalue("postgresql_url")


@pytest.fixture
def settings(database):
    """Settings for a fresh database; rate limits off unless a test sets them."""
    return {
        "database": database,
        "rate_limit_create_queue": "off",
        "rate_limit_sign_in": "off",
        "rate_limit_take_ticket": "off",
        "rate_limit_take_ticket_per_address": "off",
        "rate_limit_create_attempts": "off",
    }


@pytest.fixture
def make_app(tmp_path, settings):
    """The app on the test's database, with some settings changed; closed after the test."""
    apps = []

    def make(**changes):
        apps.append(main({"here": str(tmp_path)}, **dict(settings, **changes)))
        return apps[-1]

    yield make
    for app in apps:
        app.close()


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
    # Imported here: only the browser tests need Playwright.
    import playwright.sync_api as playwright_api

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


# -- PostgreSQL: one throwaway cluster for the session, a fresh database per test -----


@pytest.fixture(scope="session")
def postgresql_server():
    """The test cluster (tests/pg_support.py). One that cannot start is a failure,
    never a skip: scripts/test installs PostgreSQL."""
    try:
        server = start_postgresql()
    except PostgreSQLUnavailable as error:
        pytest.fail(f"cannot start the test PostgreSQL: {error}", pytrace=False)
    yield server
    server.destroy()


@pytest.fixture
def postgresql_url(postgresql_server):
    """The URL of a fresh, empty database of its own, dropped after the test."""
    name = postgresql_server.create_database()
    yield postgresql_server.url(name)
    postgresql_server.drop_database(name)
