"""The store: every SQL statement of Take A Number lives in this module.

One SQLite file in WAL mode, one connection per thread, and every transaction
that reads and then writes starts with ``BEGIN IMMEDIATE`` so that two
threads or two processes never interleave their read-modify-write. (Taking a
number is one ``INSERT … SELECT`` statement, which SQLite runs as a transaction
of its own that holds the write lock from its first step: the same guarantee.)

The store also keeps a *generation*, a number that moves on whenever the
database may have changed; caches of what pages show (views.py) are valid for
one generation. Commits of this process move it on at once. Commits of other
processes are noticed through ``PRAGMA data_version``: on every call when
several processes serve (``exact``), else at most ``FOREIGN_CHECK_SECONDS``
later, so that a page served from memory costs no SQLite call at all.
"""

import collections
import contextlib
import logging
import math
import os
import sqlite3
import threading
import time

import sqlite_utils

from . import rules, statistics

log = logging.getLogger(__name__)

# How many recent services feed the wait estimate and the line-growth model.
RECENT_SERVICES = statistics.RECENT_SERVICES
# A servicer's last_seen_at is written at most this often (Store.seen).
SEEN_EVERY_SECONDS = 60
# A servicer counts as active for the estimate if they called someone this recently.
ACTIVE_SERVICER_SECONDS = 30 * 60
# Released connections kept open for reuse; more are closed.
IDLE_CONNECTIONS = 16
# How many calls the display board lists.
RECENT_CALLS = 6
# Takes written in one statement at most (6 SQL variables each).
MAX_TAKES_TOGETHER = 200
# Unless ``Store.exact``, another process's commit is noticed within this long.
FOREIGN_CHECK_SECONDS = 0.05
# How often each process deletes rate-limit hits that have expired, and forgets
# the address hashes of tickets older than the per-address take period.
PRUNE_SECONDS = 60


def _open_at(opening_hours, timezone, now):
    """SQL ``tan_open_at(opening_hours, timezone, now)``: whether the hours are open."""
    return rules.opening(rules.parse_hours(opening_hours), timezone, now)[0]


def _whole_seconds(seconds):
    """A wait as a Retry-After gives it: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


class _Take:
    """A take_ticket call, waiting for its ticket to be written."""

    __slots__ = (
        "queue_id",
        "token",
        "now",
        "browser",
        "address",
        "ready",
        "lead",
        "ticket",
        "error",
    )

    def __init__(self, queue_id, token, now, browser, address):
        self.queue_id, self.token, self.now = queue_id, token, now
        self.browser, self.address = browser, address
        self.ready = threading.Lock()
        self.ready.acquire()  # released when answered, or when it is to write next
        self.lead = False
        self.ticket = self.error = None


class QueueExists(Exception):
    """The queue id is already taken."""


class NameInUse(Exception):
    """A servicer of the other role is signed in under this name."""


class InvitationRefused(Exception):
    """An invitation code that signs nobody in; the message says why."""


class NotTaking(Exception):
    """The queue gives no numbers now; the message says why."""


class TooManyTakes(Exception):
    """This browser or address took as many numbers as its limit allows for now."""

    def __init__(self, retry_after):
        super().__init__(f"too many tickets taken; wait {retry_after} s")
        self.retry_after = retry_after


def _create_core_tables(db):
    db["queues"].create(
        {
            "id": str,
            "title": str,
            "password_hash": str,
            "created_at": float,
            "last_number": int,
            "version": int,
        },
        pk="id",
        not_null={"title", "password_hash", "created_at", "last_number", "version"},
        defaults={"last_number": 0, "version": 0},
    )
    db["servicers"].create(
        {
            "id": int,
            "queue_id": str,
            "name": str,
            "signed_in_at": float,
            "signed_out_at": float,
        },
        pk="id",
        not_null={"queue_id", "name", "signed_in_at"},
        foreign_keys=[("queue_id", "queues", "id")],
    )
    db["servicers"].create_index(["queue_id", "signed_out_at"])
    db["tickets"].create(
        {
            "id": int,
            "queue_id": str,
            "number": int,
            "token": str,
            "state": str,
            "taken_at": float,
            "called_at": float,
            "finished_at": float,
            "servicer_id": int,
            "recalls": int,
        },
        pk="id",
        not_null={"queue_id", "number", "token", "state", "taken_at", "recalls"},
        defaults={"recalls": 0},
        foreign_keys=[("queue_id", "queues", "id"), ("servicer_id", "servicers", "id")],
    )
    db["tickets"].create_index(["queue_id", "number"], unique=True)
    db["tickets"].create_index(["token"], unique=True)
    db["tickets"].create_index(["queue_id", "state", "number"])
    db["tickets"].create_index(["queue_id", "finished_at"])
    db["tickets"].create_index(["servicer_id", "state"])
    db["events"].create(
        {
            "id": int,
            "queue_id": str,
            "ticket_id": int,
            "servicer_id": int,
            "kind": str,
            "at": float,
        },
        pk="id",
        not_null={"queue_id", "kind", "at"},
        foreign_keys=[
            ("queue_id", "queues", "id"),
            ("ticket_id", "tickets", "id"),
            ("servicer_id", "servicers", "id"),
        ],
    )
    db["events"].create_index(["queue_id", "at"])


def _add_ticket_browser(db):
    # Which browser took a ticket (a hash of its session), so that two clicks
    # racing ahead of the ticket cookie still give that browser one ticket.
    db["tickets"].add_column("browser", str)
    db["tickets"].create_index(["browser"])


def _add_api_tokens(db):
    # Bearer tokens of the JSON API, stored as hashes: each acts as one servicer.
    db["api_tokens"].create(
        {"token_hash": str, "servicer_id": int, "created_at": float},
        pk="token_hash",
        not_null={"servicer_id", "created_at"},
        foreign_keys=[("servicer_id", "servicers", "id")],
    )
    db["api_tokens"].create_index(["servicer_id"])


def _add_owner_controls(db):
    # The owner's controls of a queue, servicer roles, and each ticket's place in line.
    queues = db["queues"]
    queues.add_column("status", str, not_null_default="open")
    queues.add_column("announcement", str, not_null_default="")
    queues.add_column("max_waiting", int)
    queues.add_column("no_show_policy", str, not_null_default="end")
    queues.add_column("opening_hours", str)
    queues.add_column("timezone", str, not_null_default="UTC")
    queues.add_column("staff_code", str)
    servicers = db["servicers"]
    servicers.add_column("is_owner", int, not_null_default=0)
    servicers.add_column("started_at", float)
    tickets = db["tickets"]
    tickets.add_column("line_position", float)
    tickets.add_column("moves_back", int, not_null_default=0)
    tickets.add_column("requeued", int, not_null_default=0)
    db.execute("UPDATE tickets SET line_position = number")
    # The first servicer of each existing queue created it.
    db.execute(
        "UPDATE servicers SET is_owner = 1 WHERE id IN "
        "(SELECT min(id) FROM servicers GROUP BY queue_id)"
    )
    tickets.create_index(["queue_id", "state", "line_position"])


def _add_one_statement_take(db):
    # Taking a number becomes one INSERT: this trigger moves the queue's counter
    # and version on and records the event, inside the same statement.
    db.execute(
        """
        CREATE TRIGGER ticket_taken AFTER INSERT ON tickets BEGIN
            UPDATE queues SET last_number = NEW.number, version = version + 1
                WHERE id = NEW.queue_id;
            INSERT INTO events (queue_id, ticket_id, kind, at)
                VALUES (NEW.queue_id, NEW.id, 'take', NEW.taken_at);
        END
        """
    )
    # A browser holds one open ticket per queue, whatever races: the index says so.
    db.execute(
        "UPDATE tickets SET browser = NULL WHERE browser IS NOT NULL "
        "AND state IN ('waiting', 'called') AND id NOT IN (SELECT min(id) FROM tickets "
        "WHERE browser IS NOT NULL AND state IN ('waiting', 'called') "
        "GROUP BY queue_id, browser)"
    )
    db.execute(
        "CREATE UNIQUE INDEX tickets_open_per_browser ON tickets (queue_id, browser) "
        "WHERE browser IS NOT NULL AND state IN ('waiting', 'called')"
    )


def _add_rate_limits(db):
    # Rate limits that hold across processes: a hit per row, until it expires.
    # Keys hold HMACs of addresses, never an address.
    db["rate_limit_hits"].create(
        {"id": int, "key": str, "expires": float}, pk="id", not_null={"key", "expires"}
    )
    db["rate_limit_hits"].create_index(["key", "expires"])
    db["rate_limit_hits"].create_index(["expires"])
    # Takes per address are counted from the tickets themselves (an HMAC of the
    # address, forgotten once older than the limit's period).
    db["tickets"].add_column("address", str)
    db.execute(
        "CREATE INDEX tickets_recent_by_address ON tickets (queue_id, address, taken_at) "
        "WHERE address IS NOT NULL"
    )


def _add_invitations(db):
    # Personal invitations replace the shared staff code: one per servicer, its
    # code stored as a hash; each servicer remembers the invitation that signed
    # them in, why they left, and when their console or a button was last seen.
    db["invitations"].create(
        {
            "id": int,
            "queue_id": str,
            "name": str,
            "code_hash": str,
            "created_at": float,
            "expires_at": float,
            "revoked_at": float,
        },
        pk="id",
        not_null={"queue_id", "name", "code_hash", "created_at"},
        foreign_keys=[("queue_id", "queues", "id")],
    )
    db["invitations"].create_index(["code_hash"], unique=True)
    db["invitations"].create_index(["queue_id", "revoked_at"])
    servicers = db["servicers"]
    servicers.add_column("invitation_id", int)
    servicers.add_column("left_reason", str)
    servicers.add_column("last_seen_at", float)
    servicers.create_index(["invitation_id"])
    db.execute(
        "UPDATE servicers SET last_seen_at = max(signed_in_at, coalesce("
        "(SELECT max(at) FROM events WHERE events.servicer_id = servicers.id), 0))"
    )
    db.execute("UPDATE servicers SET left_reason = 'signed_out' WHERE signed_out_at IS NOT NULL")
    # Shared staff codes stop working: the owner invites each servicer instead.
    # Those signed in with one stay signed in until they sign out or are revoked.
    db.execute("UPDATE queues SET staff_code = NULL")


# Named, recorded migrations, applied in order at start-up. Never edit one that
# has shipped: add a new one.
MIGRATIONS = [
    ("0001_core_tables", _create_core_tables),
    ("0002_ticket_browser", _add_ticket_browser),
    ("0003_api_tokens", _add_api_tokens),
    ("0004_owner_controls", _add_owner_controls),
    ("0005_one_statement_take", _add_one_statement_take),
    ("0006_rate_limits", _add_rate_limits),
    ("0007_personal_invitations", _add_invitations),
]


class Store:
    """All reads and writes of queues, servicers, tickets and events."""

    def __init__(
        self,
        path,
        synchronous="normal",
        busy_timeout=10.0,
        take_limits=None,
        servicer_idle_seconds=0,
    ):
        self.path = os.path.abspath(path)
        # (count, seconds) per browser and per address, a count of 0 for none:
        # take_ticket holds each queue's takes to them (see _insert_takes).
        self.take_limits = take_limits or {"browser": (0, 1), "address": (0, 1)}
        self._take_limits_on = [
            (column, *self.take_limits[column])
            for column in ("browser", "address")
            if self.take_limits[column][0]
        ]
        self._take_statements = {}  # by number of takes, see _take_statement
        self._pruned_at = float("-inf")
        # A desk with no console open and no action this long is released (0: never).
        self.servicer_idle_seconds = servicer_idle_seconds
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._idle = []  # released connections, for the next thread that needs one
        self._pool_lock = threading.Lock()
        # Threads of this process take turns for SQLite's write lock here, in
        # order, instead of in SQLite's busy handler, which sleeps and retries.
        self._write_lock = threading.Lock()
        # Called after every commit of a change (the push hub listens here).
        self.after_commit = []
        # See generation(). Ask SQLite on every call (several processes serve)?
        self.exact = False
        self._generation = 0
        self._generation_lock = threading.Lock()
        self._probe = None  # a connection of its own, for PRAGMA data_version
        self._probe_lock = threading.Lock()
        self._probe_data_version = None
        self._probe_pid = None
        # take_ticket's line: takes waiting to be written, and whether one writes.
        self._takes = []
        self._takes_lock = threading.Lock()
        self._taking = False
        self._probed_at = float("-inf")
        directory = os.path.dirname(self.path)
        os.makedirs(directory, exist_ok=True)

    # -- connections and transactions -------------------------------------

    @property
    def db(self):
        """This thread's sqlite-utils Database: its own until it releases it."""
        db = getattr(self._local, "db", None)
        if db is None:
            with self._pool_lock:
                db = self._idle.pop() if self._idle else None
            self._local.db = db = db or self._connect()
        return db

    def _connect(self):
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        conn.create_function("tan_open_at", 3, _open_at, deterministic=True)
        return sqlite_utils.Database(conn)

    def release(self):
        """Give this thread's connection back for the next request's thread.

        A server with hundreds of threads (for held push requests) would
        otherwise keep a connection, and two file descriptors, per thread.
        """
        db = getattr(self._local, "db", None)
        if db is None:
            return
        self._local.db = None
        with self._pool_lock:
            if len(self._idle) < IDLE_CONNECTIONS and not db.conn.in_transaction:
                self._idle.append(db)
                return
        db.conn.close()

    def close(self):
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    def close_all(self):
        """Close this thread's connection and those kept for reuse (at shutdown)."""
        self.close()
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for db in idle:
            db.conn.close()
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None

    @contextlib.contextmanager
    def immediate(self, shown=True):
        """A read-modify-write transaction holding the write lock from its start.

        ``shown=False`` for writes that no page shows (rate limits): pages
        made before it stay valid.
        """
        conn = self.db.conn
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        if shown:
            self._committed()

    def _write_statement(self, sql, params):
        """One writing statement, run to its end as a transaction of its own.

        SQLite takes the write lock as such a statement starts, before it reads,
        so it is a read-modify-write as safe as ``BEGIN IMMEDIATE`` … ``COMMIT``,
        in one call instead of three. Returns the rows of its RETURNING clause.
        """
        with self._write_lock:
            rows = self.db.conn.execute(sql, params).fetchall()
        self._committed()
        return rows

    def _committed(self):
        self._next_generation()
        for callback in self.after_commit:
            callback()

    # -- generations ---------------------------------------------------------

    def generation(self):
        """A number that moves on whenever the database may have changed.

        What was read at one generation may be served again while it is
        current. Commits of this process move it on before they return; other
        processes' commits are seen through ``PRAGMA data_version`` on a
        connection of its own: on every call if ``exact``, else once per
        ``FOREIGN_CHECK_SECONDS``, by whichever request comes first.
        """
        if self.exact or time.monotonic() - self._probed_at >= FOREIGN_CHECK_SECONDS:
            self._check_other_processes()
        return self._generation

    def changed_elsewhere(self):
        """Another connection committed (the push watcher saw it): what was read is old."""
        self._next_generation()

    def _next_generation(self):
        with self._generation_lock:
            self._generation += 1

    def _check_other_processes(self):
        # Without ``exact``, a request that finds another checking goes on
        # with what is known: it is at most FOREIGN_CHECK_SECONDS old.
        if not self._probe_lock.acquire(blocking=self.exact):
            return
        try:
            if self._probe is None or self._probe_pid != os.getpid():
                self._probe_pid = os.getpid()  # a forked worker opens its own
                self._probe = sqlite3.connect(
                    self.path, timeout=self.busy_timeout, check_same_thread=False
                )
            data_version = self._probe.execute("PRAGMA data_version").fetchone()[0]
            self._probed_at = time.monotonic()
            if data_version != self._probe_data_version:
                self._probe_data_version = data_version
                self._next_generation()
        finally:
            self._probe_lock.release()

    def _rows(self, sql, params=()):
        cursor = self.db.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    def _row(self, sql, params=()):
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _scalar(self, sql, params=()):
        return self.db.execute(sql, params).fetchone()[0]

    # -- schema ------------------------------------------------------------

    def migrate(self):
        """Apply the migrations not yet recorded; return the names applied."""
        db = self.db
        self._use_wal(db)
        applied = []
        with self.immediate():
            db.execute(
                "CREATE TABLE IF NOT EXISTS migrations "
                "(name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            done = {row[0] for row in db.execute("SELECT name FROM migrations")}
            for name, migration in MIGRATIONS:
                if name in done:
                    continue
                migration(db)
                db.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, julianday('now'))",
                    (name,),
                )
                applied.append(name)
        for name in applied:
            log.info("applied migration %s to %s", name, self.path)
        return applied

    def _use_wal(self, db, attempts=50):
        # Switching to WAL needs the file to itself for a moment; when several
        # processes start on a new file at once, SQLite says "locked" at once
        # rather than waiting, so wait here.
        for attempt in range(attempts):
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    with db.ensure_autocommit_on():
                        db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or attempt == attempts - 1:
                    raise
                time.sleep(0.1)

    def applied_migrations(self):
        return [row[0] for row in self.db.execute("SELECT name FROM migrations ORDER BY name")]

    def backup(self, destination):
        """Copy the database to ``destination`` with SQLite's online backup."""
        target = sqlite3.connect(destination)
        try:
            self.db.conn.backup(target)
        finally:
            target.close()

    def _event(self, db, queue_id, kind, now, ticket_id=None, servicer_id=None):
        db.execute(
            "INSERT INTO events (queue_id, ticket_id, servicer_id, kind, at) "
            "VALUES (?, ?, ?, ?, ?)",
            (queue_id, ticket_id, servicer_id, kind, now),
        )

    def _touch(self, db, queue_id):
        db.execute("UPDATE queues SET version = version + 1 WHERE id = ?", (queue_id,))

    # -- queues --------------------------------------------------------------

    def create_queue(self, queue_id, title, password_hash, now):
        try:
            with self.immediate() as db:
                db.execute(
                    "INSERT INTO queues (id, title, password_hash, created_at) VALUES (?, ?, ?, ?)",
                    (queue_id, title, password_hash, now),
                )
                self._event(db, queue_id, "create", now)
        except sqlite3.IntegrityError:
            raise QueueExists(queue_id) from None

    def get_queue(self, queue_id):
        return self._row("SELECT * FROM queues WHERE id = ?", (queue_id,))

    @contextlib.contextmanager
    def reading(self):
        """A read transaction: every query inside sees the same committed state."""
        conn = self.db.conn
        conn.execute("BEGIN")
        try:
            yield self.db
        finally:
            conn.execute("COMMIT")

    def queue_version(self, queue_id):
        """The queue's version, bumped by every change to it; None if no such queue."""
        row = self.db.execute("SELECT version FROM queues WHERE id = ?", (queue_id,)).fetchone()
        return row[0] if row else None

    def data_version(self):
        """Changes whenever another connection commits (SQLite's PRAGMA data_version)."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def queue_versions(self, queue_ids):
        """``{queue_id: version}`` for those of ``queue_ids`` that exist."""
        versions = {}
        for start in range(0, len(queue_ids), 500):
            chunk = queue_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            versions.update(
                self.db.execute(f"SELECT id, version FROM queues WHERE id IN ({marks})", chunk)
            )
        return versions

    def last_event_id(self, queue_id):
        return self._scalar(
            "SELECT coalesce(max(id), 0) FROM events WHERE queue_id = ?", (queue_id,)
        )

    def tickets_in_events_since(self, queue_id, event_id):
        """``(last event id, {ticket ids named})`` of the queue's events after ``event_id``."""
        rows = self.db.execute(
            "SELECT id, ticket_id FROM events WHERE queue_id = ? AND id > ?",
            (queue_id, event_id),
        ).fetchall()
        return max((r[0] for r in rows), default=event_id), {r[1] for r in rows if r[1]}

    def queue_snapshot(self, queue_id, now):
        """Everything the pages of a queue show, read at one moment; None if no such queue.

        Idle desks are released first (release_idle_desks): every page of the
        queue reads its snapshot at least once a minute while anyone looks.
        """
        self.release_idle_desks(queue_id, now)
        with self.reading():
            queue = self.get_queue(queue_id)
            if queue is None:
                return None
            waiting = [
                row[0]
                for row in self.db.execute(
                    "SELECT number FROM tickets WHERE queue_id = ? AND state = 'waiting' "
                    "ORDER BY line_position, number",
                    (queue_id,),
                )
            ]
            serving = self._rows(
                "SELECT t.number, t.called_at, t.recalls, t.servicer_id, "
                "s.name AS servicer_name FROM tickets t "
                "LEFT JOIN servicers s ON s.id = t.servicer_id "
                "WHERE t.queue_id = ? AND t.state = 'called' ORDER BY t.called_at DESC",
                (queue_id,),
            )
            recent_calls = self._rows(
                "SELECT e.kind, e.at, t.number, s.name AS servicer_name FROM events e "
                "JOIN tickets t ON t.id = e.ticket_id "
                "LEFT JOIN servicers s ON s.id = e.servicer_id "
                "WHERE e.queue_id = ? AND e.kind IN ('call', 'recall') "
                "ORDER BY e.at DESC, e.id DESC LIMIT ?",
                (queue_id, RECENT_CALLS),
            )
            durations = [
                row[0]
                for row in self.db.execute(
                    "SELECT finished_at - called_at FROM tickets "
                    "WHERE queue_id = ? AND state = 'served' AND finished_at IS NOT NULL "
                    "ORDER BY finished_at DESC LIMIT ?",
                    (queue_id, RECENT_SERVICES),
                )
            ]
            servicers = self._scalar(
                "SELECT count(DISTINCT servicer_id) FROM tickets "
                "WHERE queue_id = ? AND called_at > ? AND servicer_id IN "
                "(SELECT id FROM servicers WHERE queue_id = ? AND signed_out_at IS NULL)",
                (queue_id, now - ACTIVE_SERVICER_SECONDS, queue_id),
            )
            arrivals = [
                row[0]
                for row in self.db.execute(
                    "SELECT taken_at FROM tickets WHERE queue_id = ? AND taken_at > ?",
                    (queue_id, now - statistics.FLOW_WINDOW),
                )
            ]
        return rules.Snapshot(
            queue=queue,
            taken_at=now,
            waiting=waiting,
            serving=serving,
            recent_calls=recent_calls,
            service_durations=durations,
            active_servicers=servicers,
            arrivals=arrivals,
        )

    # -- servicers -------------------------------------------------------------

    def sign_in(self, queue_id, name, now, is_owner=False):
        """Sign a servicer in by name; the same name (any case) and role resumes an active one.

        The owner signs in so, with the queue's password; invited servicers
        through sign_in_invited. Raises NameInUse when another kind of servicer
        is signed in under that name: nobody can resume the owner's desk.
        """
        with self.immediate() as db:
            row = self._active_by_name(queue_id, name)
            if row is not None:
                if bool(row["is_owner"]) != is_owner or row["invitation_id"] is not None:
                    raise NameInUse(name)
                return row
            return self._new_servicer(db, queue_id, name, now, is_owner=is_owner)

    def _active_by_name(self, queue_id, name):
        return self._row(
            "SELECT * FROM servicers WHERE queue_id = ? AND signed_out_at IS NULL "
            "AND lower(name) = lower(?) ORDER BY id LIMIT 1",
            (queue_id, name),
        )

    def _new_servicer(self, db, queue_id, name, now, is_owner=False, invitation_id=None):
        servicer_id = db.execute(
            "INSERT INTO servicers "
            "(queue_id, name, signed_in_at, is_owner, invitation_id, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (queue_id, name, now, int(is_owner), invitation_id, now),
        ).lastrowid
        self._event(db, queue_id, "sign_in", now, servicer_id=servicer_id)
        self._touch(db, queue_id)
        return self.get_servicer(servicer_id)

    def sign_in_invited(self, queue_id, code_hash, now):
        """Sign in the servicer an invitation was made for, on this device too.

        While one is signed in with the invitation, another device resumes the
        same desk. Raises InvitationRefused (revoked, expired, unknown) or
        NameInUse (someone else took the invitation's name meanwhile).
        """
        with self.immediate() as db:
            invitation = self.invitation_by_code(queue_id, code_hash)
            refusal = rules.invitation_refusal(invitation, now)
            if refusal:
                raise InvitationRefused(refusal)
            row = self._row(
                "SELECT * FROM servicers WHERE invitation_id = ? AND signed_out_at IS NULL "
                "ORDER BY id LIMIT 1",
                (invitation["id"],),
            )
            if row is not None:
                return row
            if self._active_by_name(queue_id, invitation["name"]) is not None:
                raise NameInUse(invitation["name"])
            return self._new_servicer(
                db, queue_id, invitation["name"], now, invitation_id=invitation["id"]
            )

    def get_servicer(self, servicer_id):
        return self._row("SELECT * FROM servicers WHERE id = ?", (servicer_id,))

    def active_servicer(self, queue_id, servicer_id):
        """The servicer if still signed in to this queue, else None."""
        return self._row(
            "SELECT * FROM servicers WHERE id = ? AND queue_id = ? AND signed_out_at IS NULL",
            (servicer_id, queue_id),
        )

    def servicer_of_queue(self, queue_id, servicer_id):
        """The servicer of this queue, signed in or not (to say why they left), or None."""
        return self._row(
            "SELECT * FROM servicers WHERE id = ? AND queue_id = ?", (servicer_id, queue_id)
        )

    def sign_out(self, servicer_id, now, choice=rules.PUT_BACK):
        """Sign out; the customer they called goes back to the front unless ``choice`` is FINISH.

        Their sessions and API tokens stop working at once: both are checked
        against ``signed_out_at`` on every request.
        """
        with self.immediate() as db:
            servicer = self.get_servicer(servicer_id)
            if servicer is not None:
                self._leave(db, servicer, now, rules.SIGNED_OUT, choice)

    def _leave(self, db, servicer, now, reason, choice=rules.PUT_BACK):
        """The servicer leaves their desk (rules.customer_of_leaving_servicer); True if they did."""
        if servicer["signed_out_at"] is not None:
            return False
        ticket = self.current_ticket(servicer["id"])
        if ticket is not None:
            if rules.customer_of_leaving_servicer(choice) == rules.SERVED:
                self._set_state(db, ticket, rules.SERVED, now)
            else:
                self._put_back_at_the_front(db, ticket, now)
        db.execute(
            "UPDATE servicers SET signed_out_at = ?, left_reason = ? WHERE id = ?",
            (now, reason, servicer["id"]),
        )
        self._event(db, servicer["queue_id"], "sign_out", now, servicer_id=servicer["id"])
        self._touch(db, servicer["queue_id"])
        return True

    def _put_back_at_the_front(self, db, ticket, now):
        """A called customer whose servicer left waits again, first, with the same number."""
        rules.check_transition(ticket["state"], rules.WAITING)
        waiting = self._rows(
            "SELECT line_position FROM tickets WHERE queue_id = ? AND state = 'waiting'",
            (ticket["queue_id"],),
        )
        db.execute(
            "UPDATE tickets SET state = 'waiting', called_at = NULL, servicer_id = NULL, "
            "recalls = 0, line_position = ? WHERE id = ?",
            (rules.front_of_line(waiting), ticket["id"]),
        )
        self._event(
            db,
            ticket["queue_id"],
            "put_back",
            now,
            ticket_id=ticket["id"],
            servicer_id=ticket["servicer_id"],
        )

    def revoke_servicer(self, queue_id, servicer_id, now):
        """The owner revokes a servicer: signed out, their invitation dead. True if found."""
        with self.immediate() as db:
            servicer = self.active_servicer(queue_id, servicer_id)
            if servicer is None:
                return False
            if servicer["invitation_id"] is not None:
                self._revoke_invitation(db, queue_id, servicer["invitation_id"], now)
            else:
                self._leave(db, servicer, now, rules.REVOKED)
        return True

    def revoke_invitation(self, queue_id, invitation_id, now):
        """The owner revokes an invitation and whoever it signed in. True if it was live."""
        with self.immediate() as db:
            return self._revoke_invitation(db, queue_id, invitation_id, now)

    def _revoke_invitation(self, db, queue_id, invitation_id, now):
        revoked = db.execute(
            "UPDATE invitations SET revoked_at = ? "
            "WHERE id = ? AND queue_id = ? AND revoked_at IS NULL",
            (now, invitation_id, queue_id),
        ).rowcount
        for servicer in self._rows(
            "SELECT * FROM servicers WHERE invitation_id = ? AND signed_out_at IS NULL",
            (invitation_id,),
        ):
            self._leave(db, servicer, now, rules.REVOKED)
        if revoked:
            self._event(db, queue_id, "revoke", now)
            self._touch(db, queue_id)
        return bool(revoked)

    def seen(self, servicer, now, every=SEEN_EVERY_SECONDS):
        """The servicer's console is open or they pressed a button: not idle.

        Written at most once per ``every`` seconds per servicer, so that
        the console's live updates cost no write each time. Changes no page.
        """
        if servicer["last_seen_at"] is not None and now - servicer["last_seen_at"] < every:
            return
        with self._write_lock:
            self.db.execute(
                "UPDATE servicers SET last_seen_at = ? WHERE id = ?", (now, servicer["id"])
            )
        self._committed()

    def release_idle_desks(self, queue_id, now):
        """Sign out the queue's servicers idle for servicer_idle_seconds (rules.is_idle).

        Their customers go back to the front of the line. Returns how many.
        """
        idle = self.servicer_idle_seconds
        if not idle or not self._scalar(
            "SELECT count(*) FROM servicers WHERE queue_id = ? AND signed_out_at IS NULL "
            "AND coalesce(last_seen_at, signed_in_at) <= ?",
            (queue_id, now - idle),
        ):
            return 0
        released = 0
        with self.immediate() as db:
            for servicer in self.active_servicers(queue_id):
                if rules.is_idle(servicer, now, idle):
                    released += self._leave(db, servicer, now, rules.IDLE)
        return released

    # -- invitations -------------------------------------------------------------

    def create_invitation(self, queue_id, name, code_hash, now, expires_at=None):
        """A personal invitation for the servicer ``name``; return it.

        Raises NameInUse when a live invitation of the queue has that name.
        """
        with self.immediate() as db:
            if self._row(
                "SELECT id FROM invitations WHERE queue_id = ? AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > ?) AND lower(name) = lower(?)",
                (queue_id, now, name),
            ):
                raise NameInUse(name)
            invitation_id = db.execute(
                "INSERT INTO invitations (queue_id, name, code_hash, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (queue_id, name, code_hash, now, expires_at),
            ).lastrowid
            self._event(db, queue_id, "invite", now)
        return self._row("SELECT * FROM invitations WHERE id = ?", (invitation_id,))

    def invitation_by_code(self, queue_id, code_hash):
        return self._row(
            "SELECT * FROM invitations WHERE code_hash = ? AND queue_id = ?",
            (code_hash, queue_id),
        )

    def invitations(self, queue_id):
        """The queue's invitations not revoked, oldest first, with ``signed_in`` (0 or 1)."""
        return self._rows(
            "SELECT i.*, EXISTS (SELECT 1 FROM servicers s WHERE s.invitation_id = i.id "
            "AND s.signed_out_at IS NULL) AS signed_in FROM invitations i "
            "WHERE i.queue_id = ? AND i.revoked_at IS NULL ORDER BY i.id",
            (queue_id,),
        )

    # -- API tokens ----------------------------------------------------------------

    def add_api_token(self, servicer_id, token_hash, now):
        with self.immediate() as db:
            db.execute(
                "INSERT INTO api_tokens (token_hash, servicer_id, created_at) VALUES (?, ?, ?)",
                (token_hash, servicer_id, now),
            )

    def servicer_of_api_token(self, token_hash):
        """The servicer a bearer token acts as, signed in or not (``signed_out_at``), or None.

        A token is good while its servicer is signed in; once they sign out
        or are revoked it never works again (left_reason says why).
        """
        return self._row(
            "SELECT s.* FROM api_tokens a JOIN servicers s ON s.id = a.servicer_id "
            "WHERE a.token_hash = ?",
            (token_hash,),
        )

    def current_ticket(self, servicer_id):
        """The ticket this servicer called and has not finished, or None."""
        return self._row(
            "SELECT * FROM tickets WHERE servicer_id = ? AND state = 'called' "
            "ORDER BY called_at DESC LIMIT 1",
            (servicer_id,),
        )

    # -- tickets ---------------------------------------------------------------

    def take_ticket(self, queue_id, token, now, browser=None, address=None):
        """Give the next number of the queue to a new ticket and return it.

        If ``browser`` already holds an open ticket in this queue, return that
        one instead: a browser never holds two (a unique index sees to it).
        The queue's tickets of the last while are held to ``take_limits``: so
        many per ``browser``, so many per ``address`` (a hash of the client's
        address, which the ticket keeps while it counts). Raises NotTaking when
        the queue gives no numbers now, TooManyTakes over a limit, LookupError
        when there is no such queue.

        Takes that arrive together are written together (group commit): while
        one thread writes, the takes of the others wait in line, and the next
        of them writes all those that came meanwhile in one statement. Each
        waits for its own ticket and gets it only once it is committed.
        """
        if not self.take_limits["address"][0]:
            address = None  # a ticket keeps it only while it counts
        take = _Take(queue_id, token, now, browser, address)
        with self._takes_lock:
            self._takes.append(take)
            if not self._taking:
                self._taking = take.lead = True
        if not take.lead:
            take.ready.acquire()  # answered by the writer, or asked to write next
        if take.lead:
            self._write_takes()
        if take.error is not None:
            raise take.error
        return take.ticket

    def _write_takes(self):
        with self._takes_lock:
            batch, self._takes = self._takes, []
        try:
            try:
                self.prune_limits(max(take.now for take in batch))
            except sqlite3.Error:
                log.exception("could not prune the rate limits; next time")
            if len(batch) > 1:
                try:
                    self._take_together(batch)
                except Exception:
                    log.exception("could not write %d takes together; one by one", len(batch))
            for take in batch:
                if take.ticket is None and take.error is None:
                    try:
                        take.ticket = self._take_one(take)
                    except BaseException as error:  # raised in its own thread
                        take.error = error
        finally:
            for take in batch:
                take.ready.release()
            with self._takes_lock:
                if self._takes:  # came while this batch was written: the next writes
                    following = self._takes[0]
                    following.lead = True
                    following.ready.release()
                else:
                    self._taking = False

    def _take_together(self, batch):
        """Write the takes of each queue in one statement; leave the rest.

        Left for _take_one, which takes them alone or says why not: takes the
        statement refused, a browser's second take, every take of a statement
        that failed because a browser holds a ticket already, a lone take.
        """
        groups = {}
        for take in batch:
            groups.setdefault(take.queue_id, []).append(take)
        for queue_id, takes in groups.items():
            browsers = set()
            together = []
            for take in takes:
                if take.browser is not None:
                    if take.browser in browsers:
                        continue
                    browsers.add(take.browser)
                together.append(take)
            for start in range(0, len(together), MAX_TAKES_TOGETHER):
                chunk = together[start : start + MAX_TAKES_TOGETHER]
                if len(chunk) > 1:
                    self._insert_together(queue_id, chunk)

    def _insert_together(self, queue_id, takes):
        try:
            tickets = self._insert_takes(queue_id, takes)
        except sqlite3.IntegrityError:
            return  # a browser holds a ticket already, or a token is in use
        for take in takes:
            take.ticket = tickets.get(take.token)

    def _insert_takes(self, queue_id, takes):
        """Write takes of one queue in one statement; return ``{token: ticket}`` of those written.

        The statement checks each take: the queue gives numbers (open, within
        its hours), and neither the line's maximum nor a limit would be passed.
        It takes the write lock as it starts, and SQLite reads its whole SELECT
        before it inserts a row (the SELECT reads tickets), so every take is
        judged on the tickets as they were before the statement: a take's place
        in the statement (``n``) and among the takes of its address (``rank``)
        count the takes before it as if written. A take refused for any reason
        leaves those counts a little high for the takes after it: the statement
        may refuse a take that the rules allow (_take_one then writes it alone),
        never the reverse. The takes written get the next numbers, in order.
        """
        params = []
        ranks = collections.Counter()
        for n, take in enumerate(takes, 1):
            ranks[take.address] += 1
            params += (n, take.token, take.now, take.browser, take.address, ranks[take.address])
        # One moment for the opening hours, so the takes go in together or not at all.
        params += (queue_id, max(take.now for take in takes), queue_id)
        for _column, count, period in self._take_limits_on:
            params += (queue_id, period, count)
        sql = self._take_statements.get(len(takes))
        if sql is None:
            sql = self._take_statements[len(takes)] = self._take_statement(len(takes))
        with self._write_lock:
            rows = self.db.conn.execute(sql, params).fetchall()
        if not rows:
            return {}
        self._committed()
        taken_at = {take.token: take.now for take in takes}
        return {
            token: {
                "id": ticket_id,
                "queue_id": queue_id,
                "number": number,
                "token": token,
                "state": "waiting",
                "taken_at": taken_at[token],
            }
            for ticket_id, number, token in rows
        }

    def _take_statement(self, takes):
        """_insert_takes's statement for so many takes (made once per number of takes)."""
        limits = "".join(
            # A constant column name; the values are parameters.
            f"AND (b.{column} IS NULL OR {'b.rank' if column == 'address' else '1'} + "
            f"(SELECT count(*) FROM tickets WHERE queue_id = ? AND {column} = b.{column} "
            "AND taken_at > b.now - ?) <= ?) "
            for column, _count, _period in self._take_limits_on
        )
        return (
            "WITH b (n, token, now, browser, address, rank) AS (VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?)"] * takes)
            + ") INSERT INTO tickets "
            "(queue_id, number, token, state, taken_at, browser, address, line_position) "
            "SELECT q.id, q.last_number + row_number() OVER w, b.token, 'waiting', b.now, "
            "b.browser, b.address, q.last_number + row_number() OVER w FROM queues q, b "
            "WHERE q.id = ? AND q.status = 'open' "
            "AND (q.opening_hours IS NULL OR tan_open_at(q.opening_hours, q.timezone, ?)) "
            "AND (coalesce(q.max_waiting, 0) = 0 OR b.n + (SELECT count(*) FROM tickets "
            "WHERE queue_id = ? AND state = 'waiting') <= q.max_waiting) "
            + limits
            + "WINDOW w AS (ORDER BY b.n) ORDER BY b.n RETURNING id, number, token"
        )

    def _take_one(self, take):
        """take_ticket for one ticket: one statement, and if it refuses, why."""
        for _attempt in range(3):
            try:
                ticket = self._insert_takes(take.queue_id, [take]).get(take.token)
            except sqlite3.IntegrityError as error:
                if "browser" not in str(error):
                    raise
                ticket = None
            if ticket is None and take.browser is not None:
                # The browser's own open ticket, whatever the limits say.
                ticket = self._row(
                    "SELECT * FROM tickets WHERE browser = ? AND queue_id = ? "
                    "AND state IN ('waiting', 'called')",
                    (take.browser, take.queue_id),
                )
            if ticket is not None:
                return ticket
            # Nothing taken: say why.
            queue = self.get_queue(take.queue_id)
            if queue is None:
                raise LookupError(f"no queue {take.queue_id!r}")
            notice = rules.closed_notice(queue, self._waiting_count(take.queue_id), take.now)
            if notice:
                raise NotTaking(notice)
            wait = self._take_wait(take)
            if wait:
                raise TooManyTakes(wait)
            # It opened again, or a ticket left the limit's period, in between: try again.
        raise NotTaking("The queue is busy. Please try again.")

    def _take_wait(self, take):
        """Seconds until the take limits let ``take`` through; 0 if they do now."""
        wait = 0
        for column, count, period in self._take_limits_on:
            value = take.browser if column == "browser" else take.address
            if value is not None:
                # Once the count-th newest counted ticket is out of the period, one more may go.
                row = self.db.execute(
                    f"SELECT taken_at FROM tickets WHERE queue_id = ? AND {column} = ? "
                    "AND taken_at > ? ORDER BY taken_at DESC LIMIT 1 OFFSET ?",
                    (take.queue_id, value, take.now - period, count - 1),
                ).fetchone()
                if row is not None:
                    wait = max(wait, _whole_seconds(row[0] + period - take.now))
        return wait

    # -- rate limits ------------------------------------------------------------

    def limit_hit(self, key, rate, now, always=False):
        """Count a hit of ``key`` if fewer than ``rate`` = (count, seconds) are counted.

        Returns ``(hit id, 0)``, or ``(None, seconds to wait)`` when the limit
        is reached; with ``always``, the hit is counted either way (and its id
        given with the wait). Hits expire ``seconds`` after they are counted.
        """
        count, period = rate
        self.prune_limits(now)
        with self.immediate(shown=False) as db:
            row = db.execute(
                "SELECT expires FROM rate_limit_hits WHERE key = ? AND expires > ? "
                "ORDER BY expires DESC LIMIT 1 OFFSET ?",
                (key, now, count - 1),
            ).fetchone()
            wait = _whole_seconds(row[0] - now) if row is not None else 0
            hit_id = None
            if always or not wait:
                hit_id = db.execute(
                    "INSERT INTO rate_limit_hits (key, expires) VALUES (?, ?)", (key, now + period)
                ).lastrowid
        return hit_id, wait

    def limit_forget(self, hit_id):
        """Un-count a hit (what it counted did not happen after all)."""
        with self.immediate(shown=False) as db:
            db.execute("DELETE FROM rate_limit_hits WHERE id = ?", (hit_id,))

    def prune_limits(self, now):
        """Delete expired hits, and forget the addresses of tickets that no longer count.

        At most once per PRUNE_SECONDS in each process, by whichever caller comes.
        """
        if now - self._pruned_at < PRUNE_SECONDS:
            return
        self._pruned_at = now
        _count, period = self.take_limits["address"]
        with self.immediate(shown=False) as db:
            db.execute("DELETE FROM rate_limit_hits WHERE expires <= ?", (now,))
            db.execute(
                "UPDATE tickets SET address = NULL WHERE address IS NOT NULL AND taken_at <= ?",
                (now - period,),
            )

    def _waiting_count(self, queue_id):
        return self._scalar(
            "SELECT count(*) FROM tickets WHERE queue_id = ? AND state = 'waiting'", (queue_id,)
        )

    def _end_of_line(self, queue_id):
        return self._scalar(
            "SELECT coalesce(max(line_position), 0) + 1 FROM tickets "
            "WHERE queue_id = ? AND state = 'waiting'",
            (queue_id,),
        )

    def move_back(self, token, now):
        """Let the next person go first: swap places with them. True if it moved."""
        with self.immediate() as db:
            ticket = self._row("SELECT * FROM tickets WHERE token = ?", (token,))
            if ticket is None or ticket["state"] != rules.WAITING:
                return False
            behind = self._row(
                "SELECT id, line_position FROM tickets WHERE queue_id = ? AND state = 'waiting' "
                "AND line_position > ? ORDER BY line_position LIMIT 1",
                (ticket["queue_id"], ticket["line_position"]),
            )
            if not rules.can_move_back(ticket, 1 if behind else 0):
                return False
            db.execute(
                "UPDATE tickets SET line_position = ?, moves_back = moves_back + 1 WHERE id = ?",
                (behind["line_position"], ticket["id"]),
            )
            db.execute(
                "UPDATE tickets SET line_position = ? WHERE id = ?",
                (ticket["line_position"], behind["id"]),
            )
            self._event(db, ticket["queue_id"], "move_back", now, ticket_id=ticket["id"])
            self._touch(db, ticket["queue_id"])
        return True

    def ticket_by_token(self, token):
        return self._row(
            "SELECT t.*, s.name AS servicer_name FROM tickets t "
            "LEFT JOIN servicers s ON s.id = t.servicer_id WHERE t.token = ?",
            (token,),
        )

    def _set_state(self, db, ticket, state, now):
        """Move a ticket to ``state``; return it as it is now."""
        rules.check_transition(ticket["state"], state)
        db.execute(
            "UPDATE tickets SET state = ?, finished_at = ? WHERE id = ?",
            (state, now, ticket["id"]),
        )
        self._event(
            db,
            ticket["queue_id"],
            state,
            now,
            ticket_id=ticket["id"],
            servicer_id=ticket["servicer_id"],
        )
        self._touch(db, ticket["queue_id"])
        return dict(ticket, state=state, finished_at=now)

    def leave(self, token, now):
        """The customer leaves the line; return the ticket as it was before."""
        with self.immediate() as db:
            ticket = self._row("SELECT * FROM tickets WHERE token = ?", (token,))
            if ticket is not None and rules.allows(ticket["state"], "left"):
                self._set_state(db, ticket, "left", now)
        return ticket

    def _finish_current(self, db, servicer, state, now):
        ticket = self.current_ticket(servicer["id"])
        if ticket is None:
            return None
        if state == rules.NO_SHOW:
            policy = self.get_queue(servicer["queue_id"])["no_show_policy"]
            if rules.requeue_no_show(ticket, policy):
                return self._requeue(db, ticket, now)
        return self._set_state(db, ticket, state, now)

    def _requeue(self, db, ticket, now):
        """A no-show goes to the end of the line, once."""
        rules.check_transition(ticket["state"], rules.WAITING)
        db.execute(
            "UPDATE tickets SET state = 'waiting', called_at = NULL, servicer_id = NULL, "
            "requeued = 1, line_position = ? WHERE id = ?",
            (self._end_of_line(ticket["queue_id"]), ticket["id"]),
        )
        self._event(
            db,
            ticket["queue_id"],
            "requeue",
            now,
            ticket_id=ticket["id"],
            servicer_id=ticket["servicer_id"],
        )
        self._touch(db, ticket["queue_id"])
        return dict(ticket, state=rules.WAITING)

    def call_next(self, servicer, now):
        """Finish this servicer's customer and call the next in line.

        Returns ``(finished, called)``; ``called`` is None when nobody waits.
        """
        with self.immediate() as db:
            current = self.active_servicer(servicer["queue_id"], servicer["id"])
            if current is None:  # signed out or revoked meanwhile: calls nobody
                return None, None
            self._pressed(db, servicer, now)
            finished = self._finish_current(db, servicer, "served", now)
            waiting = self._rows(
                "SELECT id, number, line_position FROM tickets "
                "WHERE queue_id = ? AND state = 'waiting'",
                (servicer["queue_id"],),
            )
            called = rules.next_in_line(waiting)
            if called is not None and not current["started_at"]:
                # "Start serving": this servicer's first call since signing in.
                db.execute(
                    "UPDATE servicers SET started_at = ? WHERE id = ?", (now, servicer["id"])
                )
                self._event(
                    db, servicer["queue_id"], "start_serving", now, servicer_id=servicer["id"]
                )
            if called is not None:
                db.execute(
                    "UPDATE tickets SET state = 'called', called_at = ?, servicer_id = ? "
                    "WHERE id = ? AND state = 'waiting'",
                    (now, servicer["id"], called["id"]),
                )
                self._event(
                    db,
                    servicer["queue_id"],
                    "call",
                    now,
                    ticket_id=called["id"],
                    servicer_id=servicer["id"],
                )
                self._touch(db, servicer["queue_id"])
        return finished, called

    def finish_current(self, servicer, state, now):
        """Done (``served``) or No show (``no_show``) for this servicer's customer."""
        with self.immediate() as db:
            self._pressed(db, servicer, now)
            return self._finish_current(db, servicer, state, now)

    def _pressed(self, db, servicer, now):
        """A button pressed is an action: the desk is not idle (rules.is_idle)."""
        db.execute("UPDATE servicers SET last_seen_at = ? WHERE id = ?", (now, servicer["id"]))

    def recall(self, servicer, now):
        """Signal this servicer's current customer again; return the ticket or None."""
        with self.immediate() as db:
            self._pressed(db, servicer, now)
            ticket = self.current_ticket(servicer["id"])
            if ticket is not None:
                db.execute("UPDATE tickets SET recalls = recalls + 1 WHERE id = ?", (ticket["id"],))
                self._event(
                    db,
                    ticket["queue_id"],
                    "recall",
                    now,
                    ticket_id=ticket["id"],
                    servicer_id=servicer["id"],
                )
                self._touch(db, ticket["queue_id"])
        return ticket

    # -- the owner's controls ------------------------------------------------------

    def _update_queue(self, queue_id, now, event, **columns):
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.immediate() as db:
            db.execute(
                f"UPDATE queues SET {assignments} WHERE id = ?", (*columns.values(), queue_id)
            )
            self._event(db, queue_id, event, now)
            self._touch(db, queue_id)

    def set_status(self, queue_id, status, now):
        """Open, pause (no new numbers, the line is kept) or close the queue."""
        if status not in rules.QUEUE_STATUSES:
            raise ValueError(status)
        self._update_queue(queue_id, now, status, status=status)

    def set_options(self, queue_id, now, announcement, max_waiting, no_show_policy):
        self._update_queue(
            queue_id,
            now,
            "options",
            announcement=announcement,
            max_waiting=max_waiting,
            no_show_policy=no_show_policy,
        )

    def set_opening_hours(self, queue_id, now, opening_hours, timezone):
        """``opening_hours`` as JSON text (see rules.parse_hours), or None for always."""
        self._update_queue(queue_id, now, "hours", opening_hours=opening_hours, timezone=timezone)

    def clear_line(self, queue_id, now):
        """Everyone waiting leaves the line; return how many."""
        with self.immediate() as db:
            cleared = db.execute(
                "UPDATE tickets SET state = 'cleared', finished_at = ? "
                "WHERE queue_id = ? AND state = 'waiting'",
                (now, queue_id),
            ).rowcount
            self._event(db, queue_id, "clear", now)
            self._touch(db, queue_id)
        return cleared

    def queue_tickets(self, queue_id):
        """Every ticket of the queue with its servicer's name, in number order."""
        return self._rows(
            "SELECT t.*, s.name AS servicer_name FROM tickets t "
            "LEFT JOIN servicers s ON s.id = t.servicer_id "
            "WHERE t.queue_id = ? ORDER BY t.number",
            (queue_id,),
        )

    def serving_starts(self, queue_id):
        """When servicers pressed Start serving, oldest first."""
        return [
            row[0]
            for row in self.db.execute(
                "SELECT at FROM events WHERE queue_id = ? AND kind = 'start_serving' ORDER BY at",
                (queue_id,),
            )
        ]

    def active_servicers(self, queue_id):
        return self._rows(
            "SELECT * FROM servicers WHERE queue_id = ? AND signed_out_at IS NULL ORDER BY id",
            (queue_id,),
        )
