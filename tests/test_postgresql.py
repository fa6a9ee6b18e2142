"""What is PostgreSQL's own: the URL setting, notifications between instances, the
listener's reconnecting, and the 503 while the database cannot be reached. Everything
else runs on both databases through the ``database`` fixture (conftest.py)."""

import subprocess
import sys
import threading
import time

import pytest
from support import create_queue, take_number
from webtest import TestApp

from take_a_number import config, main, rules
from take_a_number.store import Store
from take_a_number.store.postgresql import placeholders, redacted

QUEUE = "cet236"
T0 = 1_700_000_000.0


@pytest.fixture
def two_instances(postgresql_url):
    """Two stores on one database, as two app instances on two machines, both listening."""
    first = Store(postgresql_url)
    first.migrate()
    first.create_queue(QUEUE, "CET236 lab help", "not-a-real-hash", T0)
    second = Store(postgresql_url)
    assert first.engine.listening(5) and second.engine.listening(5)
    yield first, second
    first.close_all()
    second.close_all()


def wait_until(predicate, timeout=1.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# -- the setting ---------------------------------------------------------------------


def test_a_postgresql_url_is_the_database_as_given(tmp_path):
    url = "postgresql://tan:secret@db.example:5432/tan"
    settings = config.read_settings({"database": url}, here=str(tmp_path), environ={})
    assert settings["database"] == url
    # The secret is shared by every instance: not beside a file that does not exist.
    assert settings["secret_file"] == str(tmp_path / "var" / "secret")


def test_a_postgresql_setting_that_is_not_a_url_is_refused(tmp_path):
    with pytest.raises(config.SettingsError, match="write a URL"):
        config.read_settings({"database": "postgresql:tan"}, here=str(tmp_path), environ={})


def test_without_the_postgresql_extra_the_message_says_what_to_install(tmp_path, monkeypatch):
    real = config.importlib.util.find_spec
    monkeypatch.setattr(
        config.importlib.util,
        "find_spec",
        lambda name: None if name == "psycopg_pool" else real(name),
    )
    with pytest.raises(config.SettingsError, match=r"take-a-number\[postgresql\]"):
        config.read_settings({"database": "postgresql://h/db"}, here=str(tmp_path), environ={})


def test_logs_never_show_the_databases_password():
    assert redacted("postgresql://tan:s3cret@db:5432/tan") == "postgresql://tan:***@db:5432/tan"
    assert redacted("postgresql://db/tan") == "postgresql://db/tan"


def test_the_queries_placeholders_become_psycopgs_and_a_percent_stays_a_percent():
    assert placeholders("SELECT ? WHERE kind NOT LIKE 'undone_%'") == (
        "SELECT %s WHERE kind NOT LIKE 'undone_%%'"
    )


def test_the_database_is_named_without_its_password(postgresql_url):
    store = Store(postgresql_url)
    assert "take-a-number-test" in postgresql_url and "take-a-number-test" not in store.path
    store.close_all()


# -- two instances on one database ------------------------------------------------------


def test_a_change_on_one_instance_moves_the_others_generation_at_once(two_instances):
    first, second = two_instances
    seen = second.generation()
    first.take_ticket(QUEUE, "from-the-first", T0)
    assert wait_until(lambda: second.generation() != seen), "not notified within a second"
    # And then what the second reads is the change.
    assert second.queue_snapshot(QUEUE, T0).waiting == [1]


def test_a_notification_names_the_queue_so_only_its_waiters_are_read_again(two_instances):
    first, second = two_instances
    second.engine.notified_queues()  # "any": it has just begun to listen
    first.create_queue("other", "Other", "not-a-real-hash", T0)
    assert wait_until(lambda: second.engine.notified_queues() == {"other"})
    first.take_ticket(QUEUE, "a", T0)
    first.take_ticket("other", "b", T0)
    notified = set()
    assert wait_until(
        lambda: notified.update(second.engine.notified_queues()) or len(notified) == 2
    )
    assert notified == {QUEUE, "other"}
    assert second.engine.notified_queues() == set()  # each told once


def test_a_write_no_page_shows_notifies_nobody(two_instances):
    first, second = two_instances
    seen = second.generation()
    first.limit_hit("a-key", (5, 60), T0)  # a rate limit: no page shows it
    time.sleep(0.3)
    assert second.generation() == seen


def test_the_push_watcher_is_poked_by_another_instances_change(two_instances):
    first, second = two_instances
    poked = threading.Event()
    second.engine.after_notification.append(poked.set)
    first.set_status(QUEUE, rules.PAUSED, T0)
    assert poked.wait(1)


def test_numbers_from_two_instances_are_unique_and_gapless(two_instances):
    first, second = two_instances
    tickets = []
    lock = threading.Lock()

    def take(store, prefix):
        for i in range(25):
            ticket = store.take_ticket(QUEUE, f"{prefix}-{i}", T0)
            with lock:
                tickets.append(ticket["number"])
        store.release()

    threads = [
        threading.Thread(target=take, args=(store, f"{n}-{t}"))
        for n, store in enumerate((first, second))
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(tickets) == list(range(1, 201))
    assert first.get_queue(QUEUE)["last_number"] == 200


# -- the database restarting -------------------------------------------------------------


def test_after_postgresql_restarts_the_listener_reconnects_and_treats_all_as_changed(
    two_instances, postgresql_server
):
    first, second = two_instances
    heard = []
    second.engine.after_notification.append(lambda: heard.append(time.monotonic()))
    postgresql_server.restart(mode="fast")
    restarted = time.monotonic()
    assert second.engine.listening(10), "the listener did not reconnect"
    assert heard and heard[-1] >= restarted  # everything counts as changed
    assert second.engine.notified_queues() is None  # any queue may have changed
    # The pool's connections were closed by the restart: it gives working ones.
    seen = second.generation()
    first.take_ticket(QUEUE, "after-the-restart", T0)
    assert wait_until(lambda: second.generation() != seen)
    assert second.ticket_by_token("after-the-restart")["number"] == 1


def test_while_nobody_listens_nothing_is_answered_from_memory(two_instances, postgresql_server):
    _, second = two_instances
    postgresql_server.stop(mode="fast")
    assert wait_until(lambda: not second.engine._listening, timeout=10)
    assert second.generation() != second.generation()
    postgresql_server.start()


def test_pages_and_the_api_say_503_while_the_database_cannot_be_reached(
    postgresql_url, postgresql_server, tmp_path
):
    app = main({"here": str(tmp_path)}, database=postgresql_url, rate_limit_sign_in="off")
    browser = TestApp(app)
    create_queue(browser)
    take_number(TestApp(app))
    postgresql_server.stop(mode="fast")
    try:
        page = TestApp(app).get("/cet236", status=503)
        assert "Back in a moment" in page.text and "Traceback" not in page.text
        assert page.headers["Retry-After"] == "2"
        assert page.headers["Refresh"] == "6"  # the page comes back by itself
        api = TestApp(app).post_json("/api/v1/queues/cet236/tickets", {}, status=503)
        assert api.json["error"]["code"] == "unavailable"
        # Once the listener found PostgreSQL refusing, a request is told at once.
        assert wait_until(lambda: app.store.engine._unreachable, timeout=10)
        started = time.monotonic()
        TestApp(app).get("/cet236/board", status=503)
        assert time.monotonic() - started < 2
    finally:
        postgresql_server.start()
    # Back by itself: the pool replaces the connections the restart closed.
    assert wait_until(lambda: TestApp(app).get("/cet236", expect_errors=True).status_int == 200, 10)
    app.close()


def test_an_sqlite_site_never_loads_psycopg(tmp_path):
    # Importing psycopg and its pool takes about 80 ms and memory for nothing.
    program = (
        "import sys, take_a_number; "
        f"take_a_number.main({{'here': {str(tmp_path)!r}}}); "
        "print('psycopg' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "False"
