"""The push hub on a real SQLite file, without HTTP: who is woken, how soon, and that
nothing is left counted or queued once everyone has gone."""

import bisect
import itertools
import pathlib
import sys
import tempfile
import threading
import time
import types

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from take_a_number import push
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


def test_closing_answers_every_held_request_at_once_and_holds_no_more(store, hub):
    """A server stopping gracefully (gunicorn's SIGTERM) waits for the requests it is
    answering: held ones must not keep it waiting up to push_hold_seconds."""
    version = store.queue_version(QUEUE)
    outcomes = []
    held = [
        threading.Thread(target=lambda: outcomes.append(hub.wait(QUEUE, version, 30)))
        for _ in range(WAITERS)
    ]
    for thread in held:
        thread.start()
    wait_until(lambda: hub.held == WAITERS, "the requests to be held")
    closed = time.monotonic()
    hub.close()
    for thread in held:
        thread.join(timeout=5)
    assert time.monotonic() - closed < 1.0
    assert outcomes == [push.STOPPING] * WAITERS
    assert hub.held == 0
    assert hub.wait(QUEUE, version, 30) == push.STOPPING


class Resumed:
    """What a server that parks (serve's) is told: each parked waiter's outcome, in order."""

    def __init__(self, hub):
        self.hub = hub
        self.order = []  # (outcome, urgent, waiter)

    def park(self, queue_id, since, hold_seconds, ticket_id=None):
        outcome, waiter = self.hub.park(queue_id, since, hold_seconds, ticket_id, jitter=False)
        assert outcome is None, outcome

        def resume(urgent):
            # As serve's server: handed to another thread (the hub's lock is held), which
            # builds the answer and says so.
            self.order.append((waiter.outcome, urgent, waiter))
            if self.answering:
                threading.Thread(target=self.hub.done, args=(waiter,)).start()

        self.hub.attach(waiter, resume)
        return waiter

    answering = True

    def answered(self, count):
        wait_until(lambda: len(self.order) >= count, f"{count} parked requests resumed")
        return self.order


def test_parked_requests_are_resumed_once_each_by_a_change_the_called_one_first(store, hub):
    tickets = [store.take_ticket(QUEUE, f"parked-{n}", time.time()) for n in range(WAITERS)]
    since = store.queue_version(QUEUE)
    resumed = Resumed(hub)
    waiters = [resumed.park(QUEUE, since, 30, ticket["id"]) for ticket in tickets]
    assert hub.held == WAITERS and threading.active_count() < 10  # no thread each
    servicer = store.sign_in(QUEUE, "Desk 1", time.time())
    store.call_next(servicer, time.time())  # calls tickets[0]
    order = resumed.answered(WAITERS)
    assert [outcome for outcome, _, _ in order] == [URGENT] + [CHANGED] * (WAITERS - 1)
    assert [urgent for _, urgent, _ in order] == [True] + [False] * (WAITERS - 1)
    assert order[0][2] is waiters[0]
    assert {id(w) for _, _, w in order} == {id(w) for w in waiters}
    time.sleep(0.2)
    assert len(order) == WAITERS  # once each
    assert hub.held == 0 and hub.holding() == 0
    assert not hub._queues and not hub._answering and not hub._to_wake


def test_a_call_of_a_customer_held_elsewhere_holds_this_process_back_a_moment(store, hub):
    # As in serve's workers: the called customer's page is held by another process. This
    # one wakes its own pages FOREIGN_HEAD_START_SECONDS later, so that the called
    # customer's process has the cores meanwhile. A take names nobody: no head start.
    called = store.take_ticket(QUEUE, "called-elsewhere", time.time())
    tickets = [store.take_ticket(QUEUE, f"parked-{n}", time.time()) for n in range(3)]
    resumed = Resumed(hub)
    for ticket in tickets:
        resumed.park(QUEUE, store.queue_version(QUEUE), 30, ticket["id"])
    servicer = store.sign_in(QUEUE, "Desk 1", time.time())
    store.call_next(servicer, time.time())
    changed = time.monotonic()
    assert store.current_ticket(servicer["id"])["id"] == called["id"]
    wait_until(lambda: len(resumed.order) == 3, "the pages woken")
    woken = time.monotonic()
    assert [outcome for outcome, _, _ in resumed.order] == [CHANGED] * 3
    assert woken - changed >= push.FOREIGN_HEAD_START_SECONDS
    held_back_until = hub._held_back_until
    resumed.order.clear()
    for ticket in tickets:
        resumed.park(QUEUE, store.queue_version(QUEUE), 30, ticket["id"])
    store.take_ticket(QUEUE, "newcomer", time.time())
    wait_until(lambda: len(resumed.order) == 3, "the pages woken by a take")
    assert hub._held_back_until == held_back_until  # not held back again


def test_a_parked_request_times_out_and_a_page_already_behind_is_answered_at_once(store, hub):
    since = store.queue_version(QUEUE)
    resumed = Resumed(hub)
    started = time.monotonic()
    resumed.park(QUEUE, since, 0.3)
    [(outcome, urgent, _)] = resumed.answered(1)
    assert (outcome, urgent) == (TIMEOUT, False)
    assert 0.3 <= time.monotonic() - started < 1.5
    assert hub.park(QUEUE, since - 1, 30) == (CHANGED, None)  # never parked
    assert hub.held == 0
    # The timed-out one's answer is built on a thread of its own (Resumed).
    wait_until(lambda: hub.holding() == 0, "the timed-out answer built")


def test_closing_the_hub_resumes_every_parked_request_and_counts_them_until_answered(store, hub):
    since = store.queue_version(QUEUE)
    resumed = Resumed(hub)
    resumed.answering = False  # not yet
    for _ in range(WAITERS):
        resumed.park(QUEUE, since, 30)
    hub.close()
    assert [outcome for outcome, _, _ in resumed.order] == [push.STOPPING] * WAITERS
    assert hub.held == 0 and hub.holding() == WAITERS  # a stopping server waits for these
    for _, _, waiter in resumed.order:
        hub.done(waiter)
    assert hub.holding() == 0
    assert hub.park(QUEUE, since, 30) == (push.STOPPING, None)


def test_the_servers_threads_are_read_from_mod_wsgi_and_keep_some_for_pages(monkeypatch):
    """(Waitress's are read from its environ: tests/test_push.py serves with waitress-serve.)"""
    assert push.server_threads({}) is None  # a server that does not say
    monkeypatch.setitem(sys.modules, "mod_wsgi", types.SimpleNamespace(threads_per_process=40))
    assert push.server_threads({"mod_wsgi.version": (5, 0, 0)}) == 40
    assert [push.most_held(n) for n in (1, 3, 4, 16, 40, 520)] == [0, 1, 2, 8, 32, 512]


# -- every order of arrivals, departures, timeouts and changes (hypothesis) ----------------

STATE_QUEUES = ("lab-a", "lab-b")
STATE_MAX_HELD = 5
POOL = 4  # tickets taken on each queue before any waiter comes, for waiters about a ticket
PATIENCE = 5.0  # seconds of real time an expected answer may take (a stuck waiter fails)


class HubClock:
    """The hub's ``time`` module: ``monotonic()`` moves only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        time.sleep(seconds)


class HeldRequest:
    """One request held in the hub, and what the model expects of it: by a thread of its
    own, or ``parked`` (as serve's server holds it: no thread waits, the hub calls back)."""

    def __init__(self, hub, queue_id, since, hold_seconds, ticket_id, parked=False):
        self.queue_id, self.since, self.ticket_id = queue_id, since, ticket_id
        self.hub, self.parked, self.waiter = hub, parked, None
        self.answering = None  # a parked one's: the thread that builds its answer
        self.outcomes = []
        self.gone = threading.Event()
        self.thread = threading.Thread(
            target=self._park if parked else self._hold,
            args=(hub, hold_seconds),
            name=f"held-{queue_id}",
            daemon=True,
        )

    def _hold(self, hub, hold_seconds):
        outcome = hub.wait(
            self.queue_id,
            self.since,
            hold_seconds,
            client_disconnected=self.gone.is_set,
            ticket_id=self.ticket_id,
            jitter=False,
        )
        self.outcomes.append(outcome)

    def _park(self, hub, hold_seconds):
        outcome, waiter = hub.park(
            self.queue_id, self.since, hold_seconds, ticket_id=self.ticket_id, jitter=False
        )
        if waiter is None:
            self.outcomes.append(outcome)
            return
        self.waiter = waiter

        def resume(urgent):
            # Called with the hub's lock held: the answer is built by another thread.
            assert urgent == (waiter.outcome == URGENT)
            self.answering = threading.Thread(target=hub.done, args=(waiter,))
            self.answering.start()
            self.outcomes.append(waiter.outcome)

        hub.attach(waiter, resume)

    def leave(self):
        """Its client goes away."""
        if self.parked:
            assert self.hub.cancel(self.waiter)  # it was still held
            self.outcomes.append(push.GONE)  # as the server knows: its client left
        else:
            self.gone.set()

    def answer(self):
        """Its one outcome, once it has one."""
        self.thread.join(timeout=PATIENCE)
        assert not self.thread.is_alive(), f"not answered: waiting since {self.since}"
        if self.parked:
            wait_until(lambda: self.outcomes, f"an answer to the request parked at {self.since}")
            if self.answering is not None:
                self.answering.join(timeout=PATIENCE)  # its answer built
        assert len(self.outcomes) == 1
        return self.outcomes[0]


def wait_until(condition, what):
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"waited {PATIENCE} s for {what}"
        time.sleep(0.002)


class HubInEveryOrder(RuleBasedStateMachine):
    """Requests arrive on two queues (some about a ticket, some showing a version the hub has
    not heard of), leave, time out, and changes land in any order, one by one or in a burst.
    After each step, every request the step should end has its one outcome, and the rest wait.
    """

    def __init__(self):
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.store = Store(pathlib.Path(self.tmp.name) / "queue.sqlite")
        self.store.migrate()
        self.servicers, self.pool = {}, {}
        for queue_id in STATE_QUEUES:
            self.store.create_queue(queue_id, queue_id, "not-a-real-hash", time.time())
            self.servicers[queue_id] = self.store.sign_in(queue_id, "Desk", time.time())
            self.pool[queue_id] = [
                self.store.take_ticket(queue_id, f"{queue_id}-{n}", time.time())
                for n in range(POOL)
            ]
        self.tokens = itertools.count()
        self.clock = HubClock()
        self.patches = [(push, "time", self.clock), (push, "DISCONNECT_CHECK_SECONDS", 0.005)]
        self.patches = [
            (module, name, getattr(module, name), new) for module, name, new in self.patches
        ]
        for module, name, _, new in self.patches:
            setattr(module, name, new)
        self.read = threading.local()
        self.hub = push.Hub(
            self.store, STATE_MAX_HELD, watch_interval=0.02, version=self._version_read
        )
        self.waiting = []  # HeldRequests the model expects to be still held
        self.arrived = threading.Event()

    def _version_read(self, queue_id):
        """The hub's read of the version on arrival; the test goes on once it is made."""
        version = self.store.queue_version(queue_id)
        self.arrived.set()
        return version

    def teardown(self):
        try:
            self.clock.now += 10**6  # everyone still held times out
            with self.hub._lock:
                self.hub._wakeable.notify_all()
            for request in self.waiting:
                assert request.answer() == push.TIMEOUT
            self.waiting = []
            self.nothing_left_held_queued_or_counted()
        finally:
            self.hub.close()
            self.store.close()
            for module, name, old, _ in self.patches:
                setattr(module, name, old)
            self.tmp.cleanup()

    # -- rules -------------------------------------------------------------------------

    @rule(
        queue_id=st.sampled_from(STATE_QUEUES),
        page=st.sampled_from(["older", "current", "current", "ahead"]),
        about=st.none() | st.integers(0, POOL - 1),
        hold_seconds=st.integers(1, 60),
        parked=st.booleans(),
    )
    def a_request_arrives(self, queue_id, page, about, hold_seconds, parked):
        version = self.store.queue_version(queue_id)
        since = {"older": version - 1, "current": version, "ahead": version + 2}[page]
        ticket_id = None if about is None else self.pool[queue_id][about]["id"]
        request = HeldRequest(self.hub, queue_id, since, hold_seconds, ticket_id, parked)
        request.deadline = self.clock.now + hold_seconds
        self.arrived.clear()
        request.thread.start()
        if len(self.waiting) >= STATE_MAX_HELD:
            assert request.answer() == push.FULL
        elif page == "older":
            assert request.answer() == push.CHANGED
        else:
            self.waiting.append(request)
            wait_until(self.arrived.is_set, "the request to read its queue's version")
            wait_until(lambda: self.hub.held == len(self.waiting), "the request to be held")

    @rule(seconds=st.integers(1, 30))
    def time_passes(self, seconds):
        self.clock.now += seconds
        with self.hub._lock:  # the waker sleeps until a parked hold ends, by the real clock
            self.hub._wakeable.notify_all()
        for request in [r for r in self.waiting if r.deadline <= self.clock.now]:
            assert request.answer() == push.TIMEOUT
            self.waiting.remove(request)

    @precondition(lambda self: self.waiting)
    @rule(data=st.data())
    def a_client_goes_away(self, data):
        request = data.draw(st.sampled_from(self.waiting))
        request.leave()
        assert request.answer() == push.GONE
        self.waiting.remove(request)

    @rule(
        queue_id=st.sampled_from(STATE_QUEUES),
        changes=st.lists(st.sampled_from(["take", "call", "leave"]), min_size=1, max_size=3),
        leaving=st.integers(0, POOL - 1),
    )
    def the_queue_changes(self, queue_id, changes, leaving):
        """One change, or a burst the watcher may see in one read or several."""
        before_event = self.store.last_event_id(queue_id)
        named_each = []
        for change in changes:
            last_event = self.store.last_event_id(queue_id)
            version = self.store.queue_version(queue_id)
            if change == "take":
                self.store.take_ticket(queue_id, f"new-{next(self.tokens)}", time.time())
            elif change == "call":
                self.store.call_next(self.servicers[queue_id], time.time())
            else:
                self.store.leave(self.pool[queue_id][leaving]["token"], time.time())
            _, named = self.store.tickets_in_events_since(queue_id, last_event)
            named_each.append((version, self.store.queue_version(queue_id), named))
        version = self.store.queue_version(queue_id)
        _, named_in_all = self.store.tickets_in_events_since(queue_id, before_event)
        for request in [r for r in self.waiting if r.queue_id == queue_id]:
            if not request.since < version:
                continue
            outcome = request.answer()
            self.waiting.remove(request)
            if request.ticket_id not in named_in_all:
                assert outcome == push.CHANGED
            elif len(changes) == 1:
                assert outcome == push.URGENT
            else:
                # The watcher may have read the burst in one go or change by change.
                assert outcome in (push.URGENT, push.CHANGED)
        # The hub has read this version before the next step changes anything.
        wait_until(
            lambda: (
                queue_id not in self.hub._queues or self.hub._queues[queue_id].version == version
            ),
            "the watcher to read the change",
        )

    # -- invariants --------------------------------------------------------------------

    @invariant()
    def the_others_still_wait(self):
        for request in self.waiting:
            held = request.parked or request.thread.is_alive()  # a parked one has no thread
            assert held and not request.outcomes, "answered too soon"

    @invariant()
    def the_hub_holds_exactly_the_waiting(self):
        assert self.hub.held == len(self.waiting)
        for queue_id in STATE_QUEUES:
            held_here = sum(1 for r in self.waiting if r.queue_id == queue_id)
            watched = self.hub._queues.get(queue_id)
            assert (len(watched.waiters) if watched else 0) == held_here

    @invariant()
    def nothing_left_queued_or_counted(self):
        """Everyone the steps woke has gone: nobody is queued to be woken or answering."""
        wait_until(lambda: not self.hub._to_wake, "the waker to empty its line")
        assert not self.hub._answering

    def nothing_left_held_queued_or_counted(self):
        assert self.hub.held == 0
        assert not self.hub._queues
        self.nothing_left_queued_or_counted()


HubInEveryOrder.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_hub_in_every_order = HubInEveryOrder.TestCase


def test_told_of_its_siblings_a_hub_looks_by_itself_less_often_unless_told_how_often(store):
    # serve's workers poke each other's hubs after each commit (prefork.Siblings):
    # the watcher's own looks are then only for the commits of other processes.
    chosen, given = Hub(store, max_held=1), Hub(store, max_held=1, watch_interval=0.2)
    assert (chosen.watch_interval, given.watch_interval) == (push.WATCH_SECONDS, 0.2)
    chosen.told_of_siblings()
    given.told_of_siblings()
    assert (chosen.watch_interval, given.watch_interval) == (push.TOLD_WATCH_SECONDS, 0.2)
