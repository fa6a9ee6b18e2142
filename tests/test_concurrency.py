"""Many people at once: threads in several processes share one database file.

Numbers must be unique and gapless, and no ticket may be called twice, however
the takes and calls of different threads and processes interleave.
"""

import collections
import json
import multiprocessing
import threading
import time
import traceback
from concurrent.futures import ProcessPoolExecutor

import pytest
from support import create_queue, press, sign_in, take_number
from webtest import TestApp

from take_a_number.store import MIGRATIONS, Store

QUEUE = "busy"
PROCESSES = 4
THREADS = 4
TICKETS_PER_THREAD = 25
TIMEOUT = 60

# Spawned processes start clean: no inherited SQLite connection, no inherited threads.
SPAWN = multiprocessing.get_context("spawn")


def _counter_thread(store, servicer, label, barrier, result):
    """One customer-facing desk: takes numbers and presses Next, then empties the line."""
    try:
        for i in range(TICKETS_PER_THREAD):
            ticket = store.take_ticket(QUEUE, f"{label}-{i}", time.time())
            result["taken"].append(ticket["number"])
            _press_next(store, servicer, result)
        # Everyone has finished taking numbers: now serve whoever is left.
        barrier.wait(TIMEOUT)
        while _press_next(store, servicer, result):
            pass
    except BaseException:
        result["errors"].append(traceback.format_exc())
        barrier.abort()
    finally:
        store.close()


def _press_next(store, servicer, result):
    finished, called = store.call_next(servicer, time.time())
    if finished is not None:
        result["finished"].append([servicer["id"], finished["id"]])
    if called is not None:
        result["called"].append([servicer["id"], called["id"]])
    return called is not None


def _process_worker(path, servicers, barrier, result_file, process_index):
    """A server process: its own Store on the shared file, one thread per servicer."""
    store = Store(path)
    result = {"taken": [], "called": [], "finished": [], "errors": []}
    threads = [
        threading.Thread(
            target=_counter_thread,
            args=(store, servicer, f"p{process_index}-t{i}", barrier, result),
        )
        for i, servicer in enumerate(servicers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(result_file, "w") as f:
        json.dump(result, f)


def duplicates(values):
    return [value for value, count in collections.Counter(values).items() if count > 1]


@pytest.mark.slow
def test_threads_in_several_processes_get_unique_gapless_numbers_and_distinct_calls(
    tmp_path, database
):
    path = database  # an SQLite file, then a PostgreSQL database
    store = Store(path)
    store.migrate()
    store.create_queue(QUEUE, "Busy counter", "hash", time.time())
    servicers = [
        store.sign_in(QUEUE, f"Desk {p}-{t}", time.time())
        for p in range(PROCESSES)
        for t in range(THREADS)
    ]
    store.close_all()

    barrier = SPAWN.Barrier(PROCESSES * THREADS)
    result_files = [tmp_path / f"result-{p}.json" for p in range(PROCESSES)]
    processes = [
        SPAWN.Process(
            target=_process_worker,
            args=(path, servicers[p::PROCESSES], barrier, str(result_files[p]), p),
        )
        for p in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(TIMEOUT)
    for process in processes:
        if process.is_alive():
            process.kill()
    assert [process.exitcode for process in processes] == [0] * PROCESSES

    results = [json.loads(f.read_text()) for f in result_files]
    errors = [error for result in results for error in result["errors"]]
    assert errors == []
    taken = [number for result in results for number in result["taken"]]
    called = [tuple(pair) for result in results for pair in result["called"]]
    finished = [tuple(pair) for result in results for pair in result["finished"]]

    total = PROCESSES * THREADS * TICKETS_PER_THREAD
    store = Store(path)
    tickets = store.engine.rows(
        "SELECT * FROM tickets WHERE queue_id = ? ORDER BY number", (QUEUE,)
    )
    all_ids = {t["id"] for t in tickets}

    # Numbers: exactly 1..N on disk, and each handed to exactly one customer.
    assert [t["number"] for t in tickets] == list(range(1, total + 1))
    assert store.get_queue(QUEUE)["last_number"] == total
    assert sorted(taken) == list(range(1, total + 1))

    # Calls: every ticket was called, and returned to exactly one servicer's Next.
    assert duplicates(ticket_id for _, ticket_id in called) == []
    assert {ticket_id for _, ticket_id in called} == all_ids
    servicer_of = {t["id"]: t["servicer_id"] for t in tickets}
    assert all(servicer_of[ticket_id] == servicer_id for servicer_id, ticket_id in called)

    # Each called customer was finished once, by the servicer who called them.
    assert sorted(finished) == sorted(called)
    assert {t["state"] for t in tickets} == {"served"}

    # The event log agrees: one call and one served per ticket, by that ticket's servicer.
    for kind in ("call", "served"):
        rows = store.engine.rows(
            "SELECT ticket_id, servicer_id FROM events WHERE queue_id = ? AND kind = ?",
            (QUEUE, kind),
        )
        assert duplicates(row["ticket_id"] for row in rows) == [], kind
        assert {row["ticket_id"] for row in rows} == all_ids, kind
        assert all(servicer_of[row["ticket_id"]] == row["servicer_id"] for row in rows), kind
    # Numbers were called in order: each servicer's calls go up.
    by_servicer = collections.defaultdict(list)
    number_of = {t["id"]: t["number"] for t in tickets}
    for servicer_id, ticket_id in called:
        by_servicer[servicer_id].append(number_of[ticket_id])
    assert all(numbers == sorted(numbers) for numbers in by_servicer.values())


def _start_up(path, barrier):
    """An app process starting: open the store and bring the schema up to date."""
    barrier.wait(TIMEOUT)
    store = Store(path)
    applied = store.migrate()
    store.close_all()
    return applied


@pytest.mark.slow
def test_app_processes_starting_together_on_a_new_database_migrate_it_once(database):
    path = database
    with SPAWN.Manager() as manager:
        barrier = manager.Barrier(PROCESSES)
        with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=SPAWN) as pool:
            futures = [pool.submit(_start_up, path, barrier) for _ in range(PROCESSES)]
            applied = sorted(future.result(TIMEOUT) for future in futures)

    assert applied == [[]] * (PROCESSES - 1) + [[name for name, _ in MIGRATIONS]]
    store = Store(path)
    assert store.applied_migrations() == [name for name, _ in MIGRATIONS]
    if store.engine.dialect == "sqlite":
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close_all()


# -- the same through the web app -------------------------------------------------------


def run_together(actions):
    """Run each action in its own thread, all starting at the same moment."""
    barrier = threading.Barrier(len(actions))
    results = [None] * len(actions)
    errors = []

    def run(index, action):
        try:
            barrier.wait(TIMEOUT)
            results[index] = action()
        except BaseException:
            errors.append(traceback.format_exc())
            barrier.abort()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert errors == []
    return results


def now_serving(console):
    return console.html.select_one(".now-serving").get_text(strip=True)


def my_number(ticket_page):
    return int(ticket_page.html.select_one(".my-number .number").get_text())


def test_two_servicers_pressing_next_together_get_different_tickets(app):
    desks = [TestApp(app) for _ in range(6)]
    create_queue(desks[0], queue_id=QUEUE, name="Desk 1")
    consoles = [desks[0].get(f"/{QUEUE}/serve")] + [
        sign_in(desk, queue_id=QUEUE, name=f"Desk {i}") for i, desk in enumerate(desks[1:], 2)
    ]
    for _ in range(8):
        take_number(TestApp(app), queue_id=QUEUE)

    pressed = run_together([lambda console=c: press(console, "Next") for c in consoles])

    assert sorted(now_serving(page) for page in pressed) == ["1", "2", "3", "4", "5", "6"]
    tickets = app.store.engine.rows(
        "SELECT number, servicer_id, state FROM tickets ORDER BY number"
    )
    called = [t for t in tickets if t["state"] == "called"]
    assert [t["number"] for t in called] == [1, 2, 3, 4, 5, 6]
    assert len({t["servicer_id"] for t in called}) == 6
    console = desks[0].get(f"/{QUEUE}/serve")
    assert console.html.select_one(".waiting-count").get_text(strip=True) == "2"


def test_customers_taking_numbers_at_the_same_moment_get_different_numbers(app):
    create_queue(TestApp(app), queue_id=QUEUE)
    pages = [TestApp(app).get(f"/{QUEUE}") for _ in range(10)]

    tickets = run_together([lambda page=p: page.forms[0].submit().follow() for p in pages])

    assert sorted(my_number(page) for page in tickets) == list(range(1, 11))
