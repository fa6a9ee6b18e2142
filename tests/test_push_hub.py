"""The push hub on a real SQLite file, without HTTP: who is woken, how soon, and that
nothing is left counted or queued once everyone has gone."""

import bisect
import itertools
import threading
import time

import pytest

from take_a_number.push import CHANGED, TIMEOUT, URGENT, WAKE_BATCH, Hub
from take_a_number.store import Store

QUEUE = "cet236"
WAITERS = 40
# How long each woken request takes to build its answer, as a page's JSON would.
ANSWER_SECONDS = 0.001


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "var" / "queue.sqlite")
    store.migrate()
    store.create_queue(QUEUE, "CET236 lab help", "not-a-real-hash", time.time())
    yield store
    store.close()


@pytest.fixture
def hub(store):
    hub = Hub(store, max_held=WAITERS + 10, watch_interval=0.05)
    yield hub
    hub.close()


class Changes:
    """A servicer and newcomers changing the queue as fast as they can, with the moment
    each version was reached (taken just before its write began)."""

    def __init__(self, store):
        self.store = store
        self.servicer = store.sign_in(QUEUE, "Desk 1", time.time())
        self.versions, self.started = [], []
        self.tokens = (f"newcomer-{n}" for n in itertools.count())

    def make(self, count):
        for n in range(count):
            started = time.monotonic()
            if n % 2:
                self.store.call_next(self.servicer, time.time())
            else:
                self.store.take_ticket(QUEUE, next(self.tokens), time.time())
            self.versions.append(self.store.queue_version(QUEUE))
            self.started.append(started)

    def reached(self, version):
        """When the first change past ``version`` began."""
        return self.started[bisect.bisect_right(self.versions, version)]


def test_under_many_changes_every_waiting_customer_hears_each_change_within_a_second(store, hub):
    tickets = [store.take_ticket(QUEUE, f"waiting-{n}", time.time()) for n in range(WAITERS)]
    changes = Changes(store)
    stop = threading.Event()
    heard = []  # (outcome, the version it waited to pass, when it was woken)
    failures = []

    def customer(ticket):
        try:
            since = store.queue_version(QUEUE)
            while not stop.is_set():
                with hub.hold(QUEUE, since, 5, ticket_id=ticket["id"], jitter=False) as outcome:
                    heard.append((outcome, since, time.monotonic()))
                    time.sleep(ANSWER_SECONDS)
                    since = store.queue_version(QUEUE)
                store.release()
        except Exception as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)

    customers = [threading.Thread(target=customer, args=(t,)) for t in tickets]
    for thread in customers:
        thread.start()
    time.sleep(0.2)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        changes.make(20)
    stop.set()
    changes.make(1)  # wakes everyone still held, so that they see stop
    for thread in customers:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in customers)

    assert not failures
    outcomes = {outcome for outcome, _, _ in heard}
    assert TIMEOUT not in outcomes, "a waiter slept through changes until its hold ran out"
    assert URGENT in outcomes, "the called customers should be woken first"
    assert outcomes <= {CHANGED, URGENT}
    slowest = max(woken - changes.reached(since) for _, since, woken in heard)
    assert slowest < 1.0, f"a waiter heard of a change only after {slowest:.2f} s"
    assert len(heard) > 10 * WAITERS
    # Nothing is left waiting, queued to be woken, or counted as being answered.
    assert hub.held == 0
    assert not hub._queues
    assert not hub._answering
    assert not hub._to_wake


def test_a_customer_reached_by_several_quick_changes_leaves_nothing_counted(store, hub):
    changes = Changes(store)
    for _ in range(200):
        since = store.queue_version(QUEUE)
        holding = threading.Thread(target=hub.wait, args=(QUEUE, since, 5))
        holding.start()
        changes.make(3)
        holding.join(timeout=5)
        assert not holding.is_alive()
    assert hub.held == 0
    assert not hub._answering
    assert not hub._to_wake


def test_pages_that_already_show_a_change_do_not_hold_up_the_others(store, hub):
    """A page may show a version the hub has not heard of yet (its answer was read
    from the database after the change that woke it). Waking it for that change
    would wake it for nothing: it would go on waiting, and count as being answered."""
    changes = Changes(store)
    version = store.queue_version(QUEUE)
    ahead = [
        threading.Thread(target=hub.wait, args=(QUEUE, version + 1000, 3))
        for _ in range(2 * WAKE_BATCH)
    ]
    for thread in ahead:
        thread.start()
    for _ in range(3):
        since = store.queue_version(QUEUE)
        behind = threading.Thread(target=hub.wait, args=(QUEUE, since, 10))
        behind.start()
        time.sleep(0.1)
        changed = time.monotonic()
        changes.make(1)
        behind.join(timeout=5)
        assert time.monotonic() - changed < 1.0, "a page waited behind the ones ahead of it"
        assert not hub._answering
    assert all(thread.is_alive() for thread in ahead)
    assert hub.held == len(ahead)
    for thread in ahead:
        thread.join(timeout=5)
    assert hub.held == 0
