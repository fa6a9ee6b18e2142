"""take-a-number copy-to: a site on SQLite moves to PostgreSQL and keeps its history."""

import contextlib
import hashlib
import os
import sqlite3
import subprocess
import sys

import psycopg
import pytest
from support import PASSWORD, accept, create_queue, invite, press, sign_in, take_number
from webtest import TestApp

from take_a_number import cli, main
from take_a_number.store import MIGRATIONS, Store, copy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = os.path.join(os.path.dirname(sys.executable), "take-a-number")


@pytest.fixture
def site(tmp_path):
    """A site's ini on an SQLite file; ``site.app(database)`` opens the app as it would."""

    class Site:
        def __init__(self):
            self.ini = tmp_path / "site.ini"
            self.sqlite = tmp_path / "var" / "site.sqlite"
            self.apps = []

        def app(self, database=None):
            # The default rate limits: their hits are copied too.
            self.apps.append(main({"here": str(tmp_path)}, database=str(database or self.sqlite)))
            return self.apps[-1]

    site = Site()
    site.ini.write_text(
        "[app:main]\nuse = egg:take-a-number\ndatabase = %(here)s/var/site.sqlite\n"
    )
    yield site
    for app in site.apps:
        app.close()


def copy_to(site, url, capsys):
    """Run ``take-a-number copy-to URL`` on the site's ini; what it printed."""
    assert cli.main(["--config", str(site.ini), "copy-to", url]) == 0
    return capsys.readouterr().out


def run(*args):
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, timeout=60)


def submit(page, action):
    """Press the button of the form that posts to ``action``."""
    return next(f for f in page.forms.values() if f.action.endswith(action)).submit(status=303)


def take_by_api(app, status=201):
    """A customer's app takes a number with an Idempotency-Key (a retry is answered the same)."""
    key = {"Idempotency-Key": "5f0c1d9e-7a3b-4c2e-9f1a-0b8d6e4c2a71"}
    return TestApp(app).post_json("/api/v1/queues/cet236/tickets", {}, headers=key, status=status)


def a_day_at_the_counter(app):
    """The owner, a servicer invited, one with an API token, customers served: the history."""
    owner = TestApp(app)
    console = create_queue(owner)
    desk2 = TestApp(app)
    accept(desk2, invite(owner, "Desk 2"))
    desk3 = TestApp(app).post_json(
        "/api/v1/queues/cet236/servicers", {"password": PASSWORD, "name": "Desk 3"}, status=201
    )
    customers = [TestApp(app) for _ in range(5)]
    tickets = [take_number(customer).request.path for customer in customers]
    console = press(console, "Next")  # 1
    console = press(console, "Done")
    press(sign_in(TestApp(app), name="Desk 4"), "Next")  # 2, who signs in with the password
    press(desk2.get("/cet236/serve"), "Next")  # 3
    console = press(console, "Next")  # 4, and the owner undoes it: 4 waits again
    submit(console, "/serve/undo")
    submit(customers[4].get(tickets[4]), "/leave")
    assert take_by_api(app).json["number"] == 6
    return owner, desk2, desk3.json["token"], customers, tickets


def what_the_site_shows(app, owner, staff_token, customers, tickets):
    """The pages and figures that must be the same after the move."""
    api = TestApp(app)
    bearer = {"Authorization": f"Bearer {staff_token}"}
    return {
        "csv": owner.get("/cet236/manage/tickets.csv").text,
        "history": owner.get("/cet236/manage/stats").html.select_one("main").get_text(" "),
        "statistics": api.get("/api/v1/queues/cet236/statistics", headers=bearer).json,
        "tickets": [
            customer.get(ticket).html.select_one("main").get_text(" ", strip=True)
            for customer, ticket in zip(customers, tickets, strict=True)
        ],
        "console": api.get("/api/v1/queues/cet236/console", headers=bearer).json,
        "board": api.get("/api/v1/queues/cet236/board").json,
    }


def file_digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_site_moved_to_postgresql_shows_the_same_history_and_goes_on(
    site, postgresql_url, capsys
):
    app = site.app()
    owner, desk2, staff_token, customers, tickets = a_day_at_the_counter(app)
    before = what_the_site_shows(app, owner, staff_token, customers, tickets)
    app.close()
    digest = file_digest(site.sqlite)

    printed = copy_to(site, postgresql_url, capsys)

    assert file_digest(site.sqlite) == digest  # the source is only read
    assert "the same in both" in printed
    moved = site.app(postgresql_url)
    for browser in (owner, desk2, *customers):  # the same browsers, cookies and all
        browser.app = moved
    # The owner's session, the customers' tickets and the API token all still work.
    after = what_the_site_shows(moved, owner, staff_token, customers, tickets)
    assert after == before
    assert "Desk 1" in owner.get("/cet236/serve").text
    assert "Desk 2" in owner.get("/cet236/manage").text
    # Desk 2 can still undo the Next they pressed before the move: 3 waits again.
    third = "SELECT state FROM tickets WHERE number = 3"
    assert moved.store.engine.scalar(third) == "called"
    submit(desk2.get("/cet236/serve"), "/serve/undo")
    assert moved.store.engine.scalar(third) == "waiting"
    # An API POST retried across the move is answered as before, not taken twice.
    assert take_by_api(moved).json["number"] == 6
    # The next number follows the last one taken, and new rows get new ids.
    assert take_number(TestApp(moved)).html.select_one(".my-number .number").text == "7"
    invite(owner, "Desk 5")
    press(owner.get("/cet236/serve"), "Next")
    ids = moved.store.engine.rows(
        "SELECT max(id) AS id FROM tickets UNION ALL SELECT max(id) FROM invitations"
    )
    assert [row["id"] for row in ids] == [7, 2]


def test_the_copy_prints_each_tables_rows_and_highest_id(site, postgresql_url, capsys):
    app = site.app()
    a_day_at_the_counter(app)
    source = copy.figures(app.store.db.conn)
    app.close()

    printed = copy_to(site, postgresql_url, capsys)

    for table in copy.TABLES:
        line = next(line for line in printed.splitlines() if line.startswith(table + " "))
        rows, highest = source["tables"][table].values()
        assert line.split()[1:] == [str(rows), "-" if highest is None else str(highest)]
    assert f"keep the secret in {site.sqlite.parent / 'secret'}" in printed
    assert source["tables"]["tickets"]["rows"] == 6
    assert source["tables"]["idempotency_keys"]["rows"] == 1
    assert source["tables"]["rate_limit_hits"]["rows"] > 0
    assert source["tables"]["servicers"]["rows"] == 4
    with psycopg.connect(postgresql_url) as conn:
        assert copy.figures(conn) == source


def test_names_kept_with_nul_characters_are_copied_without_them(site, postgresql_url, capsys):
    app = site.app()
    create_queue(TestApp(app))
    app.close()
    # As an older version kept what its forms were sent (this one refuses control characters).
    with contextlib.closing(sqlite3.connect(site.sqlite)) as conn, conn:
        conn.execute("UPDATE queues SET title = ?", ("Lab\x00 help",))
        conn.execute("UPDATE servicers SET name = ?", ("Desk\x00 1",))

    printed = copy_to(site, postgresql_url, capsys)

    for table in ("queues", "servicers"):
        assert f"{table}: 1 row(s) held NUL characters in their text" in printed
    with psycopg.connect(postgresql_url) as conn:
        assert conn.execute("SELECT title FROM queues").fetchall() == [("Lab help",)]
        assert conn.execute("SELECT name FROM servicers").fetchall() == [("Desk 1",)]


def test_every_table_of_either_schema_is_copied_but_the_migrations_record(postgresql_url, tmp_path):
    for database in (postgresql_url, str(tmp_path / "site.sqlite")):
        store = Store(database)
        store.migrate()
        store.close_all()
    with psycopg.connect(postgresql_url) as conn:
        assert copy.target_tables(conn) == {*copy.TABLES, "migrations"}
    with contextlib.closing(sqlite3.connect(tmp_path / "site.sqlite")) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    assert tables == {*copy.TABLES, "migrations"}


def test_a_database_that_holds_queues_is_refused_and_left_as_it_was(site, postgresql_url):
    site.app().close()
    other = site.app(postgresql_url)
    create_queue(TestApp(other), "elsewhere")
    other.close()

    result = run("--config", str(site.ini), "copy-to", postgresql_url)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "is not empty (it holds rows in queues, servicers" in result.stderr
    assert "nothing was written" in result.stderr
    with psycopg.connect(postgresql_url) as conn:
        assert conn.execute("SELECT id FROM queues").fetchall() == [("elsewhere",)]


def test_a_target_in_use_by_an_app_is_said_rather_than_waited_for(
    site, postgresql_url, monkeypatch
):
    site.app().close()
    store = Store(postgresql_url)
    store.migrate()
    store.close_all()
    monkeypatch.setattr(copy, "LOCK_TIMEOUT", "200ms")
    with psycopg.connect(postgresql_url) as busy:
        busy.execute("LOCK TABLE queues IN ROW EXCLUSIVE MODE")  # an app's write under way
        with pytest.raises(SystemExit) as failed:
            cli.main(["--config", str(site.ini), "copy-to", postgresql_url])
    assert "so nothing was copied: canceling statement due to lock timeout" in str(failed.value)


def test_a_database_of_another_application_is_refused_and_left_as_it_was(site, postgresql_url):
    site.app().close()
    with psycopg.connect(postgresql_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")

    result = run("--config", str(site.ini), "copy-to", postgresql_url)

    assert result.returncode == 1
    assert "holds tables that are not Take A Number's (invoices)" in result.stderr
    with psycopg.connect(postgresql_url) as conn:
        assert copy.target_tables(conn) == {"invoices"}


def test_a_copy_that_does_not_match_is_rolled_back(site, postgresql_url, monkeypatch):
    a_day_at_the_counter(site.app())
    monkeypatch.setattr(copy, "mismatches", lambda source, target: ["tickets: rows 4 instead of 6"])

    with pytest.raises(SystemExit) as failed:
        cli.main(["--config", str(site.ini), "copy-to", postgresql_url])

    assert str(failed.value) == (
        "error: the copy does not match its source, so it was rolled back: "
        "tickets: rows 4 instead of 6"
    )
    with psycopg.connect(postgresql_url) as conn:
        assert copy.figures(conn)["tables"]["tickets"]["rows"] == 0
        assert copy.figures(conn)["queues"] == {}


def test_the_figures_that_differ_are_said_in_words():
    source = {
        "tables": {"tickets": {"rows": 5, "highest id": 5}},
        "queues": {"cet236": {"last number": 5, "tickets": 5}, "lab": {"last number": 0}},
    }
    target = {
        "tables": {"tickets": {"rows": 4, "highest id": 5}},
        "queues": {"cet236": {"last number": 5, "tickets": 4}},
    }
    assert copy.mismatches(source, target) == [
        "tickets: rows 4 instead of 5",
        "cet236: tickets 4 instead of 5",
        "queue lab is missing",
    ]
    assert copy.mismatches(source, source) == []


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://u:p@localhost/db", "is not a PostgreSQL URL"),
        ("/tmp/other.sqlite", "is not a PostgreSQL URL"),
        (
            "postgresql://u:secret@127.0.0.1:1/db",
            "cannot copy into postgresql://u:***@127.0.0.1:1/db",
        ),
        ("postgresql://u:secret@127.0.0.1:port/db", "cannot copy into"),
    ],
)
def test_a_bad_or_unreachable_url_is_refused_in_words(site, url, said):
    site.app().close()
    result = run("--config", str(site.ini), "copy-to", url)
    assert result.returncode != 0
    assert said in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr  # the password is never shown


def test_a_site_already_on_postgresql_is_told_to_use_pg_dump(site, postgresql_url, tmp_path):
    ini = tmp_path / "pg.ini"
    ini.write_text(f"[app:main]\nuse = egg:take-a-number\ndatabase = {postgresql_url}\n")
    for command in (("copy-to", postgresql_url), ("backup", str(tmp_path / "b.sqlite"))):
        result = run("--config", str(ini), *command)
        assert result.returncode == 1
        assert "its database is PostgreSQL, not an SQLite file" in result.stderr
        assert "pg_dump copies a PostgreSQL database" in result.stderr


def test_a_database_of_an_older_version_is_to_be_migrated_first(site, postgresql_url):
    site.app().close()
    with contextlib.closing(sqlite3.connect(site.sqlite)) as conn, conn:
        conn.execute("DELETE FROM migrations WHERE name = ?", (MIGRATIONS[-1][0],))

    result = run("--config", str(site.ini), "copy-to", postgresql_url)

    assert result.returncode == 1
    said = f"({len(MIGRATIONS) - 1} of this version's {len(MIGRATIONS)} migrations)"
    assert f"has the schema of another version of Take A Number {said}" in result.stderr
    assert "run take-a-number migrate with this version first" in result.stderr
    with psycopg.connect(postgresql_url) as conn:
        assert copy.target_tables(conn) == set()


def test_a_site_with_no_database_yet_has_nothing_to_copy(site, postgresql_url):
    result = run("--config", str(site.ini), "copy-to", postgresql_url)
    assert result.returncode != 0
    assert "there is no database at" in result.stderr
    assert not site.sqlite.exists()


def test_a_composite_ini_copies_the_app_that_app_names(tmp_path, postgresql_url):
    with open(os.path.join(ROOT, "tests", "embedding.ini")) as f:
        embedding = f.read()
    ini = tmp_path / "embed.ini"
    ini.write_text(f"[DEFAULT]\ndata_dir = %(here)s/data\n\n{embedding}")
    assert run("--config", str(ini), "migrate").returncode == 0

    refused = run("--config", str(ini), "copy-to", postgresql_url)
    copied = run("--config", str(ini), "copy-to", "--app", "queue_b", postgresql_url)

    assert refused.returncode == 1
    assert "copy one at a time, naming it with --app NAME" in refused.stderr
    assert copied.returncode == 0, copied.stderr
    assert f"copied {tmp_path / 'data' / 'b' / 'queues.sqlite'}" in copied.stdout
