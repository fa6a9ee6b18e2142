"""Memory on a busy day: what the app keeps to answer from memory stays small."""

import ctypes
import os
import re
import sys
import threading

from support import create_queue
from webtest import TestApp

from take_a_number import security
from take_a_number.store import SQLiteEngine
from take_a_number.store import engine as engine_module

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def deep_size(thing, seen=None):
    """Bytes held by ``thing`` and everything it refers to through containers."""
    seen = set() if seen is None else seen
    if id(thing) in seen:
        return 0
    seen.add(id(thing))
    size = sys.getsizeof(thing)
    if isinstance(thing, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in thing.items())
    elif isinstance(thing, list | tuple | set | frozenset):
        size += sum(deep_size(item, seen) for item in thing)
    return size


def new_customers_take_numbers(app, queue_id, count):
    """``count`` new browsers each open the queue, take a number and read their ticket."""
    for _ in range(count):
        browser = TestApp(app)
        page = browser.get(f"/{queue_id}")
        ticket = browser.post(f"/{queue_id}/take", {"csrf_token": CSRF.search(page.text).group(1)})
        ticket.follow()


def test_tickets_read_before_a_change_are_not_kept(app, browser):
    create_queue(browser)
    new_customers_take_numbers(app, "cet236", 300)
    # Each take changed the queue: the tickets read before it could never be
    # served from memory again.
    assert len(app.snapshots._tickets) <= 2


def test_answers_remembered_before_a_change_are_not_kept(app, browser):
    create_queue(browser)
    new_customers_take_numbers(app, "cet236", 300)
    assert len(app.answers.kept) <= 2


def test_the_checked_session_cookies_kept_fit_in_a_few_megabytes(app, browser):
    create_queue(browser)
    new_customers_take_numbers(app, "cet236", 200)
    verified = app.sessions._verified
    each = deep_size(verified) / len(verified)
    assert security.VERIFIED_COOKIES * each < 8 * 2**20


def sqlite_memory_used():
    """Bytes SQLite holds in this process, all connections together (sqlite3_memory_used)."""
    import _sqlite3

    library = ctypes.CDLL(_sqlite3.__file__)
    library.sqlite3_memory_used.restype = ctypes.c_int64
    return library.sqlite3_memory_used()


def test_a_server_with_hundreds_of_threads_keeps_few_connections_with_small_caches(tmp_path):
    engine = SQLiteEngine(tmp_path / "var" / "big.sqlite")
    engine.prepare()
    with engine.immediate() as db:
        db.execute("CREATE TABLE filler (text)")
        db.conn.executemany(
            "INSERT INTO filler VALUES (?)", [(os.urandom(1000).hex(),) for _ in range(4000)]
        )
    engine.close()
    before = sqlite_memory_used()
    threads = 60
    all_reading = threading.Barrier(threads)

    def request_reading_every_page():
        engine.scalar("SELECT sum(length(text)) FROM filler")  # 8 MiB: every page
        all_reading.wait(10)
        engine.release()

    requests = [threading.Thread(target=request_reading_every_page) for _ in range(threads)]
    for request in requests:
        request.start()
    for request in requests:
        request.join(10)
    try:
        # 60 connections were open at once; those kept for the next requests
        # are few, and each caches a fixed few pages, however big the file.
        assert len(engine._idle) <= engine_module.IDLE_CONNECTIONS
        kept = sqlite_memory_used() - before
        assert kept < engine_module.IDLE_CONNECTIONS * engine_module.CACHE_KIB * 1024 * 1.5
    finally:
        engine.close_all()
