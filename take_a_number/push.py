"""Push: a page's updates URL, held until its queue changes, in any process.

``LiveUpdates`` answers the updates URLs (``?since=<version>``) of the ticket
page, the console, the queue page and the board: at once when the page is out
of date, else held by the ``Hub`` until the queue moves on.

One watcher thread per process notices every commit to the database, from this
process or another (gunicorn and mod_wsgi workers, the command line), through
SQLite's ``PRAGMA data_version``. It reads the versions of the queues someone
waits on, and wakes the waiters of the queues that changed. Waiters never poll
the database themselves. Commits made by this process poke the watcher so they
are seen at once; other processes' commits within ``watch_interval``.

Whoever the change is about is woken first: the watcher reads which tickets the
new events name (the customer just called, say) and wakes the requests held for
those tickets before anyone else. Everybody else is handed to a waker thread,
which wakes them a few at a time (the next only as an answer is built), so that
hundreds of threads waking at once don't crowd out the servicer's own request
or the ordinary pages.
"""

import contextlib
import functools
import heapq
import json
import logging
import math
import os
import random
import re
import sys
import threading
import time

from webob import Response

from . import eventloop, views

log = logging.getLogger(__name__)

CHANGED, TIMEOUT, FULL, GONE = "changed", "timeout", "full", "gone"
# The process is stopping (close()): answered at once, told to ask again.
STOPPING = "stopping"
# Changed, and the change names this request's ticket.
URGENT = "urgent"

# How often a held request checks whether its client went away.
DISCONNECT_CHECK_SECONDS = 5.0
# Everyone else is woken by a separate thread, no more than this many being
# answered at once, so that woken requests never queue up in front of the
# servicer, the pages, or the customer a later change is about.
WAKE_BATCH = 8
# Once WAKE_BATCH are being answered, the waker wakes more only when as few as this are.
WAKE_REFILL = WAKE_BATCH // 2
WAKE_PAUSE_SECONDS = 0.002
# While the answer of a request a change is about is being built, the waker
# wakes nobody else, for up to this long per waiter: the called customer gets
# the GIL without queueing behind a burst of answers to the rest of the line.
URGENT_HEAD_START_SECONDS = 0.05
# A change names a ticket (a call) none of whose requests this process holds: perhaps
# another process (a serve worker) holds it. This process's waker wakes nobody for this
# long, so that the called customer's process has the cores to itself while it answers.
FOREIGN_HEAD_START_SECONDS = 0.03
# A parked hold ends this much late at most: the waker ends the holds that run out
# in the same slot of this length in one go, a few times a second, not one by one.
EXPIRY_GRAIN_SECONDS = 0.25
# Holds end at a random moment in the last part of push_hold_seconds, so that
# requests held since the same change don't all time out together.
HOLD_JITTER = 0.2
# A live update held until the queue opens or closes by its hours is answered
# this long after that moment, so that its page is made after it.
HOURS_MARGIN = 0.25
# Threads of the server kept for pages, whatever push_max_held says: this many,
# or half of them (rounded up) on a server with fewer than twice as many.
PAGE_THREADS = 8
# A page pushed out of a full process polls every push_retry_seconds, but a
# customer who may be called by the next press asks again this soon, so that
# being called is still seen within a second.
NEXT_RETRY_SECONDS = 1
# How often the watcher looks for commits it was not told of (push_watch_interval's default):
# those of other processes, which the watcher learns of only by looking (gunicorn's and
# mod_wsgi's workers, the command line).
WATCH_SECONDS = 0.05
# The same under serve, where the workers tell each other of every commit the moment it is
# made (prefork.Siblings): only what no worker of the server does is left to look for (the
# command line, another server on the same file), and 20 looks a second in every worker
# would be a large part of an idle server's CPU (docs/benchmarks.md, issue 15).
TOLD_WATCH_SECONDS = 1.0
# A process that keeps filling up says so in the log at most this often.
FULL_LOG_SECONDS = 600
# ?since= of a live update: a version, 0 to MAX_VERSION (the OpenAPI document's).
DIGITS = re.compile(r"[0-9]{1,19}")
MAX_VERSION = 2**63 - 1


def _hold_for(hold_seconds, jitter):
    """How long a request is held: ``hold_seconds``, less a random part with ``jitter``."""
    spread = HOLD_JITTER * random.random() if jitter else 0.0
    return hold_seconds * (1 - spread)


def _is_past(version, since):
    """Whether a page showing ``since`` is out of date at ``version`` (None: the queue is gone)."""
    return version is None or version > since


class _Waiter:
    __slots__ = (
        "event",
        "since",
        "ticket_id",
        "urgent",
        "queue_id",
        "watched",
        "slot",
        "outcome",
        "resume",
    )

    def __init__(self, since, ticket_id):
        self.event = threading.Event()
        self.since = since  # the version its page shows
        self.ticket_id = ticket_id
        self.urgent = False  # woken at once: the change is about its ticket
        self.queue_id = self.watched = None  # what it waits on, once registered
        # Parked (no thread waits on it, ``park()``): the slot in which its hold
        # ends (None: a thread holds it), its outcome once decided, and who to tell then.
        self.slot = self.outcome = self.resume = None


class _Watched:
    """The waiters of one queue, and what the hub knows of it."""

    def __init__(self):
        self.waiters = set()
        self.version = None
        self.last_event_id = None


class Hub:
    """Holds at most ``max_held`` requests of this process until their queue changes.

    What it keeps, all under one lock: ``_queues``, the waiters of each queue
    someone waits on; ``_to_wake``, the waiters a change has reached but the
    waker has not woken yet, each at most once, in the order they were reached;
    ``_answering``, the waiters the waker woke whose answer is not built yet.
    A waiter is put in ``_to_wake`` only once the queue is past the version its
    page shows, so that, once woken, it stops waiting; it leaves ``_to_wake``
    when it stops waiting, and ``_answering`` when its ``hold()`` ends, whatever
    happened. Nothing is counted that must later be balanced.
    """

    def __init__(self, store, max_held, watch_interval=None, version=None):
        self.store = store
        # The queue's version now: the store's query, or a cache kept as valid.
        self.version = version or store.queue_version
        self.max_held = max_held
        # push_watch_interval, or None: WATCH_SECONDS, TOLD_WATCH_SECONDS once told_of_siblings.
        self.watch_interval_setting = watch_interval
        self.watch_interval = watch_interval or WATCH_SECONDS
        self.held = 0
        # Called with the lock held whenever held, max_held, refused or full_since may
        # have changed (serve's workers publish them to each other: prefork.SharedPush).
        self.publish = None
        # Full: when it last turned away a request while it had had room before
        # (time.monotonic(), None while it has room), and how many it turned away.
        self.full_since = None
        self.refused = 0
        self._full_logged_at = None
        self._lock = threading.Lock()
        # Notified when there is someone to wake (or a parked hold ends sooner) ...
        self._wakeable = threading.Condition(self._lock)
        # ... and when an answer is built: room to wake the next.
        self._room = threading.Condition(self._lock)
        self._queues = {}
        self._to_wake = {}  # waiter: None, an ordered set
        # Parked waiters by when their hold ends, in slots of EXPIRY_GRAIN_SECONDS:
        # slot -> the waiters still held whose hold ends in it (a waiter leaves its
        # slot as it leaves the hub), and a heap of the slots (perhaps emptied since).
        self._expiring = {}
        self._slots = []
        self._answering = set()
        self._urgent = set()  # woken at once, their answer not built yet
        # Until when (time.monotonic()) the waker wakes nobody: a head start for the
        # process of a customer a change is about (FOREIGN_HEAD_START_SECONDS).
        self._held_back_until = 0.0
        self._poke = threading.Event()
        store.engine.after_reconnect.append(self.answer_all_held)
        self._stopped = threading.Event()
        self._watcher = None
        store.after_commit.append(self._poke.set)
        store.engine.after_notification.append(self._poke.set)  # PostgreSQL's

    @contextlib.contextmanager
    def hold(
        self, queue_id, since, hold_seconds, client_disconnected=None, ticket_id=None, jitter=True
    ):
        """Wait until the queue's version is past ``since``; the outcome is the ``with``'s value.

        The outcome is CHANGED (URGENT when the change names ``ticket_id``),
        TIMEOUT after about ``hold_seconds`` (exactly, without ``jitter``), FULL
        at once when this process already holds ``max_held`` requests, GONE
        when the client disconnected, or STOPPING at once when ``close()`` was
        called (before or while it waits). ``ticket_id`` names the ticket the request
        is about, so that a change to it is answered first. Build the answer
        inside the ``with``: until it ends, the waker counts this request as
        still being answered.
        """
        waiter = _Waiter(since, ticket_id)
        try:
            yield self._wait(waiter, queue_id, hold_seconds, client_disconnected, jitter)
        finally:
            self.done(waiter)

    def wait(self, queue_id, since, hold_seconds, **options):
        """The outcome of ``hold()``, for callers with no answer to build."""
        with self.hold(queue_id, since, hold_seconds, **options) as outcome:
            return outcome

    def _wait(self, waiter, queue_id, hold_seconds, client_disconnected, jitter):
        early = self._enter(waiter, queue_id)
        if early is not None:
            return early
        watched = waiter.watched
        try:
            self._first_look(waiter)
            deadline = time.monotonic() + _hold_for(hold_seconds, jitter)
            while True:
                with self._lock:
                    if _is_past(watched.version, waiter.since):
                        return URGENT if waiter.urgent else CHANGED
                    if self._stopped.is_set():
                        return STOPPING
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return TIMEOUT
                if client_disconnected is not None and client_disconnected():
                    return GONE
                waiter.event.wait(min(remaining, DISCONNECT_CHECK_SECONDS))
                waiter.event.clear()
        finally:
            with self._lock:
                self._leave(waiter)

    def park(self, queue_id, since, hold_seconds, ticket_id=None, jitter=True):
        """Hold a request without a thread waiting for it: ``(outcome, None)`` when it is
        answered at once (as ``hold()`` would: FULL, STOPPING, CHANGED), else ``(None,
        waiter)``, the waiter parked until its queue changes, its hold ends, or the hub
        closes. Then its ``outcome`` is set, its ``event`` set, and the function given
        to ``attach()`` called (from one of the hub's threads). Once its answer is built,
        ``done(waiter)``, whatever happened; ``cancel(waiter)`` if its client went away.
        """
        waiter = _Waiter(since, ticket_id)
        early = self._enter(waiter, queue_id)
        if early is not None:
            return early, None
        try:
            self._first_look(waiter)
        except BaseException:
            with self._lock:
                self._leave(waiter)
                self._answered(waiter)  # if a waker reached it meanwhile
            raise
        deadline = time.monotonic() + _hold_for(hold_seconds, jitter)
        with self._lock:
            past = _is_past(waiter.watched.version, since)
            if past or self._stopped.is_set():
                # Answered now, not parked (a waker that reached it meanwhile
                # counts it as being answered no more).
                self._leave(waiter)
                self._answered(waiter)
                if not past:
                    return STOPPING, None
                return (URGENT if waiter.urgent else CHANGED), None
            waiter.slot = math.ceil(deadline / EXPIRY_GRAIN_SECONDS)  # its slot
            expiring = self._expiring.get(waiter.slot)
            if expiring is None:
                expiring = self._expiring[waiter.slot] = set()
                earliest = self._slots[0] if self._slots else None
                heapq.heappush(self._slots, waiter.slot)
                if earliest is None or waiter.slot < earliest:
                    self._wakeable.notify_all()  # the waker sleeps until the earliest
            expiring.add(waiter)
        return None, waiter

    def attach(self, waiter, resume):
        """Call ``resume(urgent)`` when the parked ``waiter``'s outcome is decided (now, if
        it is already): ``urgent`` when the change is about its ticket. It is called with
        the hub's lock held: it must only hand the request on (serve's server queues it
        for a thread), never call the hub."""
        with self._lock:
            if waiter.outcome is None:
                waiter.resume = resume
                return
        resume(waiter.outcome == URGENT)

    def cancel(self, waiter):
        """A parked waiter's client went away: it is held no more (outcome GONE), and its
        ``resume`` is not called. False if its outcome was decided already (then
        ``resume`` is called, or was)."""
        with self._lock:
            if waiter.outcome is not None:
                return False
            waiter.resume = None
            self._settle(waiter, GONE)
            return True

    def done(self, waiter):
        """The answer of a woken waiter is built (or will never be): wake the next."""
        with self._lock:
            self._answered(waiter)

    def _answered(self, waiter):
        """``waiter`` is being answered no more (under the lock)."""
        urgent = waiter in self._urgent
        if urgent or waiter in self._answering:
            self._answering.discard(waiter)
            self._urgent.discard(waiter)
            # The waker, waiting for room, is woken once per few answers, not each.
            if urgent or len(self._answering) <= WAKE_REFILL:
                self._room.notify_all()

    def publish_to(self, publish):
        """Call ``publish(hub)`` now, and whenever ``held``, ``refused`` or ``full_since`` may
        have changed, with the lock held (it must not call the hub)."""
        with self._lock:
            self.publish = publish
            publish(self)

    def holding(self):
        """How many requests are held, or woken with their answer not yet built."""
        with self._lock:
            return self.held + len(self._answering | self._urgent)

    def _enter(self, waiter, queue_id):
        """Register ``waiter``: None, or the outcome of a request answered at once."""
        with self._lock:
            if self._stopped.is_set():
                return STOPPING
            full = self.held >= self.max_held
            if full:
                say_full = self._note_full()
            else:
                self.held += 1
                had_been_full, self.full_since = self.full_since, None
                waiter.queue_id = queue_id
                waiter.watched = self._queues.setdefault(queue_id, _Watched())
                waiter.watched.waiters.add(waiter)
                self._ensure_threads()
            if self.publish is not None:
                self.publish(self)
        if full:
            if say_full:  # not under the lock: a log slow to write must not stop the hub
                self._log_full()
            return FULL
        if had_been_full is not None and self._full_logged_at is not None:
            log.info(
                "push has room again after %.0f s full (%d pages told to poll so far)",
                time.monotonic() - had_been_full,
                self.refused,
            )
        return None

    def _first_look(self, waiter):
        watched = waiter.watched
        if watched.last_event_id is None:
            watched.last_event_id = self.store.last_event_id(waiter.queue_id)
        # Read after registering, so no commit can slip between the two unseen.
        # (From memory if nothing changed since it was read: a commit whose
        # generation is not yet moved on pokes the watcher, which reads the
        # versions from the database and wakes this waiter.)
        self._learn(watched, self.version(waiter.queue_id))
        # A held request needs no database connection (the request's own,
        # or one just used): another thread may use it.
        self.store.release()

    def _leave(self, waiter):
        """Unregister ``waiter`` (under the lock), once."""
        watched = waiter.watched
        if watched is None or waiter not in watched.waiters:
            return
        self.held -= 1
        if self.publish is not None:
            self.publish(self)
        watched.waiters.discard(waiter)
        self._to_wake.pop(waiter, None)
        if waiter.slot is not None:
            expiring = self._expiring.get(waiter.slot)
            if expiring is not None:
                expiring.discard(waiter)
                if not expiring:
                    del self._expiring[waiter.slot]
        if not watched.waiters and self._queues.get(waiter.queue_id) is watched:
            del self._queues[waiter.queue_id]

    def _settle(self, waiter, outcome):
        """Decide a parked waiter's outcome (under the lock), once, and say so."""
        if waiter.slot is None or waiter.outcome is not None:
            return
        waiter.outcome = outcome
        self._leave(waiter)
        waiter.event.set()
        resume, waiter.resume = waiter.resume, None  # it keeps the request: let it go
        if resume is not None:
            resume(outcome == URGENT)

    def _outcome(self, waiter):
        if waiter.urgent:
            return URGENT
        if _is_past(waiter.watched.version, waiter.since):
            return CHANGED
        return STOPPING if self._stopped.is_set() else TIMEOUT

    def holds_ticket(self, queue_id, ticket_id):
        """Whether a request for this ticket is held now (another tab of the same page)."""
        with self._lock:
            watched = self._queues.get(queue_id)
            waiters = watched.waiters if watched is not None else ()
            return ticket_id is not None and any(w.ticket_id == ticket_id for w in waiters)

    def _note_full(self):
        """A request turned away (under the lock): count it; whether to say so in the log
        now (``_log_full``: once in a while, never silently)."""
        self.refused += 1
        now = time.monotonic()
        if self.full_since is None:
            self.full_since = now
        if self._full_logged_at is not None and now - self._full_logged_at < FULL_LOG_SECONDS:
            return False
        self._full_logged_at = now
        return True

    def _log_full(self):
        log.warning(
            "push is full: this process holds %d live updates (push_max_held); more pages "
            "are told to poll every push_retry_seconds (customers next in line every %d s) "
            "until some are answered. Hold more with more threads and push_max_held, or "
            'more processes (docs/deployment.md, "Thousands waiting on one machine"); '
            "GET /api/v1/health shows it",
            self.max_held,
            NEXT_RETRY_SECONDS,
        )

    def _learn(self, watched, version, first=()):
        """Record a version read from the database; wake the waiters if it moved on.

        Waiters for the tickets in ``first`` are woken at once, the others
        handed to the waker. Only those whose page is older than ``version``:
        a woken waiter always stops waiting, so it is soon answered.
        """
        with self._lock:
            if watched.version is not None and not _is_past(version, watched.version):
                return
            watched.version = version
            named_here = False
            for waiter in list(watched.waiters):  # a parked one leaves as it is settled
                if not _is_past(version, waiter.since):
                    continue  # its page already shows this version (read from the database)
                if waiter.ticket_id is not None and waiter.ticket_id in first:
                    named_here = True
                    waiter.urgent = True
                    waiter.event.set()
                    self._to_wake.pop(waiter, None)
                    self._urgent.add(waiter)
                    self._settle(waiter, URGENT)  # if parked
                else:
                    self._to_wake.setdefault(waiter)
            if first and not named_here:
                self._held_back_until = time.monotonic() + FOREIGN_HEAD_START_SECONDS
            self._wakeable.notify_all()

    def _wake(self):
        """Wake the waiters in ``_to_wake``, no more than WAKE_BATCH being answered at once;
        and the parked ones whose hold has run out."""
        while not self._stopped.is_set():
            with self._lock:
                while True:
                    self._expire()
                    if self._to_wake or self._stopped.is_set():
                        break
                    if not self._slots:
                        self._wakeable.wait()
                        continue
                    # Holds that end in one slot are ended together.
                    until = self._slots[0] * EXPIRY_GRAIN_SECONDS - time.monotonic()
                    self._wakeable.wait(max(until, 0.01))
            # The ones the change is about go first; give them a head start (here, or
            # in the process that holds them).
            time.sleep(WAKE_PAUSE_SECONDS)
            held_back = self._held_back_until - time.monotonic()
            if held_back > 0:
                self._stopped.wait(min(held_back, FOREIGN_HEAD_START_SECONDS))
            with self._lock:
                while self._to_wake and not self._stopped.is_set():
                    if self._urgent:
                        self._room.wait_for(
                            lambda: not self._urgent, timeout=URGENT_HEAD_START_SECONDS
                        )
                    if len(self._answering) >= WAKE_BATCH:
                        self._room.wait_for(
                            lambda: len(self._answering) <= WAKE_REFILL or self._stopped.is_set()
                        )
                        continue
                    waiter = next(iter(self._to_wake))
                    del self._to_wake[waiter]
                    self._answering.add(waiter)
                    if waiter.slot is None:
                        waiter.event.set()  # a thread waits on it
                    else:
                        self._settle(waiter, self._outcome(waiter))

    def _expire(self):
        """Parked waiters whose hold has run out join the waiters to wake (under the lock)."""
        now = time.monotonic()
        while self._slots and self._slots[0] * EXPIRY_GRAIN_SECONDS <= now:
            for waiter in self._expiring.pop(heapq.heappop(self._slots), ()):
                self._to_wake.setdefault(waiter)

    def _ensure_threads(self):
        # Started on first use, so that a server which forks workers after
        # loading the app gives each worker its own watcher.
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(
                target=self._watch, name="take-a-number-watcher", daemon=True
            )
            self._watcher.start()
            threading.Thread(target=self._wake, name="take-a-number-waker", daemon=True).start()

    def _watch(self):
        last_data_version = None
        while not self._stopped.is_set():
            self._poke.wait(self.watch_interval)
            self._poke.clear()
            with self._lock:
                watched_now = list(self._queues.items())
            if not watched_now:
                continue
            try:
                # This thread's own connection: its data_version moves with
                # every commit made through any other connection.
                data_version = self.store.data_version()
                if data_version == last_data_version:
                    continue
                last_data_version = data_version
                # Perhaps another process's commit: pages read from now on
                # must not be answered from what was read before it.
                self.store.changed_elsewhere()
                # PostgreSQL names the queues notified: only theirs are read.
                notified = self.store.engine.notified_queues()
                if notified is not None:
                    watched_now = [
                        (queue_id, watched)
                        for queue_id, watched in watched_now
                        if queue_id in notified or watched.version is None
                    ]
                versions = self.store.queue_versions([queue_id for queue_id, _ in watched_now])
                changed = [
                    (queue_id, watched)
                    for queue_id, watched in watched_now
                    if watched.version is None or _is_past(versions.get(queue_id), watched.version)
                ]
                touched = {
                    queue_id: self._touched_tickets(queue_id, watched)
                    for queue_id, watched in changed
                }
            except self.store.engine.Error as error:
                if self.store.engine.unavailable(error):  # no bug: said in one line
                    log.warning("push watcher cannot reach %s: %s", self.store.path, error)
                else:
                    log.exception("push watcher could not read %s; retrying", self.store.path)
                # Its connection may be the one that broke (PostgreSQL restarted):
                # given back, the pool replaces it, and the next try gets a new one.
                self.store.release()
                self._stopped.wait(1)
                continue
            for queue_id, watched in changed:
                self._learn(watched, versions.get(queue_id), touched[queue_id])
        self.store.close()

    def _touched_tickets(self, queue_id, watched):
        """The tickets named by the queue's events since the watcher last looked."""
        if watched.last_event_id is None:
            watched.last_event_id = self.store.last_event_id(queue_id)
            return set()
        last, tickets = self.store.tickets_in_events_since(queue_id, watched.last_event_id)
        watched.last_event_id = last
        return tickets

    def answer_all_held(self):
        """Answer every held request soon, with what the database says now, so that its
        page asks again: PostgreSQL's listener reconnected after an outage, and what
        was held on what it heard before (versions of a database that may since have
        been restarted, or failed over) is not to be trusted."""
        with self._lock:
            for watched in self._queues.values():
                for waiter in watched.waiters:
                    waiter.since = -1  # as if its page showed nothing: past any version
                    self._to_wake.setdefault(waiter)
            self._wakeable.notify_all()

    def poke(self):
        """Another process committed a change: the watcher looks now, not at its next turn."""
        self._poke.set()

    def told_of_siblings(self):
        """The processes serving beside this one poke it after each of their commits (serve's
        workers): unless push_watch_interval says otherwise, the watcher looks for the commits
        of others every TOLD_WATCH_SECONDS, not WATCH_SECONDS."""
        if self.watch_interval_setting is None:
            self.watch_interval = TOLD_WATCH_SECONDS

    def close(self):
        """Stop the threads, and answer every held request at once (STOPPING).

        A server stopping gracefully (gunicorn's SIGTERM) waits for the requests
        it is answering: held ones would keep it waiting up to push_hold_seconds.
        """
        with self._lock:
            self._stopped.set()
            for watched in list(self._queues.values()):
                for waiter in list(watched.waiters):
                    waiter.event.set()
                    if waiter.slot is not None:
                        self._answering.add(waiter)  # until its answer is built
                        self._settle(waiter, STOPPING)
            self._expiring.clear()
            self._slots.clear()
            self._wakeable.notify_all()
            self._room.notify_all()
        self._poke.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)


class LiveUpdates:
    """The updates URLs of the pages: a view as JSON, held by the ``Hub`` until it changes."""

    def __init__(self, app):
        self.app = app
        self.settings = app.settings
        self.hub = Hub(
            app.store,
            self.settings["push_max_held"],
            self.settings["push_watch_interval"],
            version=app.snapshots.version,
        )
        # Every serve worker's push (a list of push_health()), when the processes share it.
        self.processes = None
        self._fitted = False  # to the server's threads, on the first live update
        self._fit_lock = threading.Lock()

    def fit_to_server(self, environ):
        """Hold fewer requests than push_max_held if the server has too few threads.

        Waitress and mod_wsgi say how many threads serve this process's
        requests (``server_threads``): held requests may take all but
        PAGE_THREADS of them (or half), so pages are always answered. Said once
        in the log, with how to size the server.
        """
        with self._fit_lock:
            if self._fitted:
                return
            self._fitted = True
            if environ.get(eventloop.PARK_KEY):
                self._fit_to_connections(environ)  # serve's: a held request takes no thread
                return
            threads = server_threads(environ)
            if threads is None:
                return
            most = most_held(threads)
            wanted = self.settings["push_max_held"]
            if wanted > most:
                self.hub.max_held = most
                log.warning(
                    "the server has %d threads: push_max_held = %d held live updates could take "
                    "them all, so this process holds at most %d (the rest poll every "
                    "push_retry_seconds); to hold %d, give the server at least %d threads "
                    "(push_max_held + %d), or lower push_max_held",
                    threads,
                    wanted,
                    most,
                    wanted,
                    wanted + PAGE_THREADS,
                    PAGE_THREADS,
                )

    def _fit_to_connections(self, environ):
        """Under serve's waitress, hold fewer than push_max_held if its connection_limit is
        lower: a held request keeps its connection. Said once in the log."""
        limit = _adjustment(environ, "connection_limit")
        wanted = self.settings["push_max_held"]
        if limit is None or wanted <= limit - PAGE_THREADS:
            return
        self.hub.max_held = max(0, limit - PAGE_THREADS)
        log.warning(
            "waitress has connection_limit = %d: this process holds at most %d live updates "
            "(the rest poll every push_retry_seconds), not push_max_held = %d; to hold them "
            "all, raise connection_limit to %d, or lower push_max_held",
            limit,
            self.hub.max_held,
            wanted,
            wanted + PAGE_THREADS,
        )

    def answer(self, req, queue_id, make_view=None, ticket_id=None, shared=None, stream=False):
        """A page's live update as JSON, held until the queue is past ``?since=``.

        The answer is ``shared(snapshot)``, the part every page of the queue
        shows alike, made and encoded once per snapshot however many wait
        (``views.shared``), followed by ``make_view(snapshot)``, the page's own
        part (None: no such ticket). Either may be left out.
        Without ``since`` it answers at once. When this process already holds
        its most requests, it answers at once too, with ``retry_after`` seconds:
        the client polls until push has room again. ``ticket_id`` names the
        ticket the page is about, so that a change to it is answered first.
        With ``stream``, a page that asks for a stream (``Accept: text/event-stream``)
        under serve's server gets every update on one answer (``LiveStream``).
        """
        if not self._fitted:
            self.fit_to_server(req.environ)
        answer = functools.partial(self._answer, req, queue_id, make_view, shared, ticket_id)
        if "since" not in req.GET:
            return answer(CHANGED)
        since = parse_version(req.GET["since"])
        if since is None:
            return self.app.json_error(req, 400, "bad_request", "since must be a whole number.")
        if (
            stream
            and req.method == "GET"
            and req.environ.get(eventloop.PARK_KEY)
            and wants_stream(req)
        ):
            # serve's waitress, and a page that reads a stream: one answer for every update.
            stream = LiveStream(self, req, queue_id, since, make_view, shared, ticket_id)
            return stream.response()
        hold, jitter = self.hold_seconds(queue_id)
        if req.environ.get(eventloop.PARK_KEY):
            # serve's waitress: held without a thread (eventloop.py, "Parked requests").
            outcome, waiter = self.hub.park(queue_id, since, hold, ticket_id, jitter)
            if waiter is None:
                return answer(outcome)
            return ParkedAnswer(self, req, waiter, answer)
        disconnected = req.environ.get("waitress.client_disconnected")
        # The hub gives back the request's database connection while it holds.
        with self.hub.hold(queue_id, since, hold, disconnected, ticket_id, jitter) as outcome:
            # Inside the hold: the hub wakes the next waiters as answers are built.
            return answer(outcome)

    def hold_seconds(self, queue_id, snapshot=None, stream=False):
        """How long a live update of the queue is held, and whether with jitter (``snapshot``:
        the queue's, if the caller has just read it); a ``stream`` is held until its next
        heartbeat."""
        hold = self.settings["push_heartbeat_seconds" if stream else "push_hold_seconds"]
        jitter = True
        if snapshot is None:
            snapshot = self.app.snapshots.get(queue_id, self.app.now())
        if snapshot is not None and snapshot.changes_at is not None:
            until_change = max(0.0, snapshot.changes_at - self.app.now()) + HOURS_MARGIN
            if until_change < hold:
                # The queue opens or closes by its hours sooner: answer
                # then, with what the page says from that moment.
                hold, jitter = until_change, False
        return hold, jitter

    def _answer(self, req, queue_id, make_view, shared, ticket_id, outcome):
        if outcome == GONE:
            return Response(status=204)
        made = self.view_text(queue_id, make_view, shared, ticket_id, outcome)
        if made is None:
            return self.app.json_error(req, 404, "not_found", "There is no such queue or ticket.")
        _, text, retry = made
        response = self.app.json_text(req, text)
        if retry is not None:
            response.retry_after = retry
        return response

    def view_text(self, queue_id, make_view, shared, ticket_id, outcome):
        """A live update's view as it stands now, for ``outcome``: (its snapshot, its JSON
        text, the seconds after which the page is to ask again or None), or None when
        there is no such queue or ticket (any longer)."""
        snapshot = self.app.snapshots.get(queue_id, self.app.now())
        own = {} if make_view is None or snapshot is None else make_view(snapshot)
        if snapshot is None or own is None:
            return None
        retry = None
        if outcome == STOPPING:
            retry = self.settings["push_retry_seconds"]  # of the server that replaces this one
        elif outcome == FULL:
            retry = self.retry_seconds(snapshot, own, queue_id, ticket_id)
        if retry is not None:
            own = dict(own, retry_after=retry)
        return snapshot, joined_json(snapshot, shared, own), retry

    def retry_seconds(self, snapshot, own, queue_id, ticket_id):
        """How soon a page that could not be held asks again: within a second for a customer
        whom the next press of any desk may call (their place is within the desks serving),
        unless another of their pages is held here (that one is told at once)."""
        position = own.get("position")
        if (
            position is not None
            and position <= max(1, snapshot.active_servicers)
            and not self.hub.holds_ticket(queue_id, ticket_id)
        ):
            return min(NEXT_RETRY_SECONDS, self.settings["push_retry_seconds"])
        return self.settings["push_retry_seconds"]

    def health(self):
        """What push says of itself (``GET /api/v1/health``): ``push``, the whole server's
        (every serve worker's summed), and ``processes``, each process's own."""
        processes = self.processes() if self.processes is not None else None
        if not processes:
            hub = self.hub
            processes = [push_health(hub.held, hub.max_held, hub.refused, hub.full_since)]
        for process in processes:
            since = process["full_since"]
            if since is not None:  # time.monotonic(), the same in every process
                process["full_since"] = self.app.now() - (time.monotonic() - since)
        fulls = [p["full_since"] for p in processes if p["full"]]
        whole = {
            "held": sum(p["held"] for p in processes),
            "capacity": sum(p["capacity"] for p in processes),
            "full": bool(fulls),
            "full_since": min(fulls) if fulls else None,
            "refused": sum(p["refused"] for p in processes),
        }
        return whole, processes


def push_health(held, capacity, refused, full_since, pid=None):
    """One process's push, as health shows it (``full_since``: time.monotonic(), or None)."""
    full_since = full_since if held >= capacity else None
    return {
        "pid": os.getpid() if pid is None else pid,
        "held": held,
        "capacity": capacity,
        "full": full_since is not None,
        "full_since": full_since,
        "refused": refused,
    }


class ParkedAnswer(Response):
    """What ``LiveUpdates.answer`` gives for a request parked by serve's server: a stand-in
    to which the app adds what it adds to every answer (security headers, CORS, a
    session's cookie), as it would to the real one. The server then holds the request
    without a thread (``eventloop``, "Parked requests"), until the hub decides the
    outcome; the answer is built then, with those headers.
    """

    def __init__(self, updates, req, waiter, build):
        super().__init__()
        self.headerlist = []  # only what the app's layers add from here on
        self.updates, self.req, self.waiter, self.build = updates, req, waiter, build

    def __call__(self, environ, start_response):
        return _Parked(self, start_response)

    def answer(self):
        """The answer for the outcome decided, as ``handle()`` would give it."""
        app = self.updates.app
        try:
            try:
                response = self.build(self.waiter.outcome)
            finally:
                app.store.release()
        except Exception as error:
            response = app.failure(self.req, error)
        finally:
            self.updates.hub.done(self.waiter)
        response.headerlist.extend(self.headerlist)
        return response


class _Parked:
    """The app_iter of a ``ParkedAnswer``: ``eventloop``'s parking protocol, or, for a server
    that iterates it instead, the body once the hold has ended."""

    def __init__(self, parked, start_response):
        self.parked, self.start_response = parked, start_response

    def park(self, resume):
        self.parked.updates.hub.attach(self.parked.waiter, resume)

    def respond(self, environ, start_response):
        return self.parked.answer()(environ, start_response)

    def cancel(self):
        return self.parked.updates.hub.cancel(self.parked.waiter)

    def close(self):
        self.parked.updates.hub.done(self.parked.waiter)

    def __iter__(self):
        self.parked.waiter.event.wait()
        return iter(self.respond(self.parked.req.environ, self.start_response))


class LiveStream:
    """A page's live updates as one answer of Server-Sent Events, under serve's server
    (``eventloop``, "Streamed answers"): a comment at once, then ``data: <view>`` for
    each new version of the queue, the same JSON a held request would be answered
    with, and a comment (a heartbeat) when a hold of push_heartbeat_seconds ends with
    nothing new (a held request's push_hold_seconds must be short enough for a router
    that wants a whole answer within 30 s; a stream's answer has begun). Between two
    events the answer is parked in the hub as a held request is, without a thread; it
    is held again after each event, with that event's version as ``since``.

    The stream ends, and the page asks again as it would after a held request, when
    there is no such queue or ticket any more, or the page's own part says it may not
    see it (the console of a servicer signed out), when the process is full or
    stopping (the last event then has ``retry_after``, as a held answer does), or on
    any error (logged). A woken page costs one event, not an answer and the request
    that follows it; an idle page costs a heartbeat per hold.
    """

    streams = True  # eventloop's: it parks between its parts
    parkable = False  # set by eventloop.ParkingApp: it iterates this very object

    def __init__(self, updates, req, queue_id, since, make_view, shared, ticket_id):
        self.updates, self.hub, self.app = updates, updates.hub, updates.app
        self.req, self.queue_id, self.since = req, queue_id, since
        self.make_view, self.shared, self.ticket_id = make_view, shared, ticket_id
        self.waiter = None  # held in the hub, or woken and not yet answered
        self.sent = None  # the JSON text of the last event
        self.snapshot = None  # the queue's, read for the last part (to hold from)
        self.begun = self.ended = False

    def response(self):
        response = Response(app_iter=self, content_type="text/event-stream", charset="UTF-8")
        response.cache_control = "no-store"
        response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        return response

    def __iter__(self):
        return self

    def __next__(self):
        if self.ended:
            raise StopIteration
        if not self.begun:
            self.begun = True
            self._note_shown()
            return b": live\n\n"  # the answer's head goes out now, before any hold
        waiter, self.waiter = self.waiter, None
        if waiter is not None:  # woken, or its hold ended
            return self._event(waiter.outcome, waiter)
        hold, jitter = self.updates.hold_seconds(self.queue_id, self.snapshot, stream=True)
        self.snapshot = None  # read again for the next event
        outcome, waiter = self.hub.park(self.queue_id, self.since, hold, self.ticket_id, jitter)
        if waiter is None:
            return self._event(outcome)
        if not self.parkable:
            # Wrapped by something that iterates it in a thread: that thread waits, and
            # the stream ends after one event, a held request in all but its type.
            waiter.event.wait()
            self.ended = True
            return self._event(waiter.outcome, waiter)
        self.waiter = waiter
        raise eventloop.Parked(self)

    def _view(self, outcome):
        """``LiveUpdates.view_text`` for this page, its database connection given back."""
        try:
            return self.updates.view_text(
                self.queue_id, self.make_view, self.shared, self.ticket_id, outcome
            )
        finally:
            self.app.store.release()

    def _note_shown(self):
        """What the page shows, if the queue is still at the version it says it shows: so
        that the first hold ending with nothing new is a heartbeat, not that view again."""
        made = self._view(TIMEOUT)
        if made is not None:
            self.snapshot = made[0]
            if made[0].version == self.since:
                self.sent = made[1]

    def _event(self, outcome, waiter=None):
        """The part for ``outcome``: an event, or a heartbeat; the last part unless the
        stream goes on after it."""
        try:
            made = self._view(outcome)
        except Exception:
            log.exception("error streaming %r", self.req.path)
            made = None
        finally:
            if waiter is not None:
                self.hub.done(waiter)
        if made is None or outcome in (GONE, STOPPING, FULL):
            self.ended = True
        if made is None:
            raise StopIteration  # the page asks again: its answer says why
        snapshot, text, _ = made
        self.snapshot = snapshot
        if outcome == TIMEOUT and text == self.sent:
            return b":\n\n"
        self.sent, self.since = text, snapshot.version
        return b"data: " + text.encode() + b"\n\n"

    # eventloop's protocol of streamed answers, between two parts (no ``close()``: the
    # task that begins the answer would call it as the answer parks)

    def park(self, resume):
        self.hub.attach(self.waiter, resume)

    def cancel(self):
        waiter = self.waiter
        # None: resumed as its client left (the channel had read it as parked just before);
        # the thread that goes on with it finds the connection closed and ends it.
        return False if waiter is None else self.hub.cancel(waiter)

    def end(self):
        self.ended = True
        waiter, self.waiter = self.waiter, None
        if waiter is not None:
            self.hub.done(waiter)


def wants_stream(req):
    """Whether the page asks for its updates as a stream (live.js's ``Accept``)."""
    return "text/event-stream" in req.headers.get("Accept", "")


def joined_json(snapshot, shared, own):
    """The JSON text of ``dict(shared(snapshot), **own)``, as ``json.dumps`` would write it,
    ``shared``'s part encoded once per snapshot."""
    if shared is None:
        return dumps(own)
    head = views.shared(
        snapshot, lambda snapshot: dumps(views.shared(snapshot, shared)), key=("json", shared)
    )
    if not own:
        return head
    if head == "{}":
        return dumps(own)
    # Two objects of distinct keys, joined: '{"a":1' + ',' + '"b":2}'.
    return head[:-1] + "," + dumps(own)[1:]


def dumps(value):
    """JSON text as WebOb writes ``json_body`` (every JSON answer's body)."""
    return json.dumps(value, separators=(",", ":"))


def most_held(threads):
    """The most requests a server of ``threads`` threads may hold, keeping some for pages."""
    return threads - min(PAGE_THREADS, (threads + 1) // 2)


def server_threads(environ):
    """How many threads serve this process's requests, if the server says; else None.

    Waitress hands each request its channel's ``check_client_disconnected``,
    and the channel carries the server's settings; mod_wsgi's ``mod_wsgi``
    module, importable only inside it, has ``threads_per_process``.
    """
    threads = _adjustment(environ, "threads")
    if threads is None and "mod_wsgi.version" in environ:
        threads = getattr(sys.modules.get("mod_wsgi"), "threads_per_process", None)
    return threads if isinstance(threads, int) and threads > 0 else None


def _adjustment(environ, name):
    """One of waitress's settings, from the channel behind ``waitress.client_disconnected``."""
    disconnected = environ.get("waitress.client_disconnected")
    adjustments = getattr(getattr(disconnected, "__self__", None), "adj", None)
    value = getattr(adjustments, name, None)
    return value if isinstance(value, int) and value > 0 else None


def parse_version(text):
    """``?since=`` as a version, or None: int() would also take " 5", "1_0" and "٥"."""
    if not DIGITS.fullmatch(text):
        return None
    version = int(text)
    return version if version <= MAX_VERSION else None
