"""The database engine: connections, transactions and the generation, for SQLite.

This is the one part of the store that knows which database it runs on; the
queries talk to it, not to ``sqlite3``. One SQLite file in WAL mode, one
connection per thread, and every transaction that reads and then writes
starts with ``BEGIN IMMEDIATE`` so that two threads or two processes never
interleave their read-modify-write (a lone writing statement is as safe:
``write_statement``).

The engine also keeps a *generation*, a number that moves on whenever the
database may have changed; caches of what pages show (views.py) are valid for
one generation. Commits of this process move it on at once. Commits of other
processes are noticed through ``PRAGMA data_version``: on every call when
several processes serve (``exact``), else at most ``FOREIGN_CHECK_SECONDS``
later, so that a page served from memory costs no SQLite call at all.
"""

import contextlib
import os
import sqlite3
import threading
import time

import sqlite_utils

try:
    import fcntl
except ImportError:  # not POSIX: processes meet in SQLite's busy handler
    fcntl = None

# Released connections kept open for reuse; more are closed.
IDLE_CONNECTIONS = 16
# Each connection's page cache, in KiB (SQLite's default is 2 MiB). The OS
# caches the file for every connection; this only spares re-reading pages.
CACHE_KIB = 256
# Unless ``exact``, another process's commit is noticed within this long.
FOREIGN_CHECK_SECONDS = 0.05


class Queries:
    """What both engines share: reads through this thread's connection (``self.db``),
    and the generation's moving on (``self._generation`` under ``self._generation_lock``;
    ``self.after_commit``)."""

    # serve's worker processes (prefork.SharedCommits): a function whose value
    # changes the moment any of them commits, read with no call to the database.
    siblings_commits = None
    _siblings_seen = None

    def committed(self):
        """A change of this process is committed: the generation moves on, listeners hear."""
        self._next_generation()
        for callback in self.after_commit:
            callback()

    def _check_siblings(self):
        """Move the generation on if another of serve's workers committed since the last look."""
        seen = self.siblings_commits()
        if seen != self._siblings_seen:
            # Moved on before it is noted: a thread that finds ``seen`` noted
            # already finds the generation moved on past that commit.
            self._next_generation()
            self._siblings_seen = seen

    def changed_elsewhere(self):
        """Another connection committed (the push watcher saw it): what was read is old."""
        self._next_generation()

    def _next_generation(self):
        with self._generation_lock:
            self._generation += 1

    def rows(self, sql, params=()):
        """The rows ``sql`` reads, as dicts."""
        cursor = self.db.execute(sql, params)
        keys = [d[0] for d in cursor.description]
        return [dict(zip(keys, row, strict=True)) for row in cursor.fetchall()]

    def row(self, sql, params=()):
        """The first row ``sql`` reads as a dict, or None."""
        rows = self.rows(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql, params=()):
        """The first column of the first row ``sql`` reads, or None if it reads none."""
        row = self.db.execute(sql, params).fetchone()
        return row[0] if row else None

    def column(self, sql, params=()):
        """The first column of every row ``sql`` reads, as a list."""
        return [row[0] for row in self.db.execute(sql, params)]


class WriteLock:
    """SQLite's write lock, taken in turn: by this process's threads, then by processes.

    SQLite's busy handler, when the lock is taken, sleeps and retries (1, 2, 5,
    … 25, 50, 100 ms): a writer can wait a hundred milliseconds after the lock
    came free. Here threads queue on a lock, and processes on ``flock`` of a
    file beside the database (``<database>.write-lock``), which hands it on the
    moment it is released. Each process opens the file itself: a lock taken
    through a descriptor inherited over fork would be its parent's.
    """

    def __init__(self, database_path):
        self.path = database_path + ".write-lock"
        self.threads = threading.Lock()
        self.fd = None
        self.pid = None

    def __enter__(self):
        self.threads.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self.threads.release()
            raise
        return self

    def __exit__(self, *exc_info):
        try:
            if self.fd is not None and self.pid == os.getpid():
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()

    def _file(self):
        if fcntl is None:
            return None
        if self.pid != os.getpid():
            self.pid = os.getpid()
            try:
                # Read-only is enough to flock: a file another user made serves too.
                self.fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError:
                self.fd = None  # cannot: SQLite's busy handler it is
        return self.fd


class SQLiteEngine(Queries):
    """Connections to one SQLite file, its transactions and its generation."""

    dialect = "sqlite"
    # What the queries catch, whatever the database.
    Error = sqlite3.Error
    IntegrityError = sqlite3.IntegrityError

    def __init__(self, path, synchronous="normal", busy_timeout=10.0, functions=()):
        self.path = os.path.abspath(path)
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        # SQL functions of the queries: (name, number of arguments, function).
        self.functions = tuple(functions)
        self._local = threading.local()
        self._idle = []  # released connections, for the next thread that needs one
        self._pool_lock = threading.Lock()
        # Threads and processes take turns for SQLite's write lock here instead
        # of in SQLite's busy handler, which sleeps and retries (WriteLock).
        self.write_lock = WriteLock(self.path)
        # Called after every commit of a change (the push hub listens here).
        # Other processes' commits are seen by polling (generation,
        # data_version), never notified: after_notification stays empty.
        self.after_commit = []
        self.after_notification = []
        # See generation(). Ask SQLite on every call (several processes serve)?
        self.exact = False
        self._generation = 0
        self._generation_lock = threading.Lock()
        self._probe = None  # a connection of its own, for PRAGMA data_version
        self._probe_lock = threading.Lock()
        self._probe_data_version = None
        self._probe_pid = None
        self._probed_at = float("-inf")
        self.after_reconnect = []  # never called: no connection to a server to lose
        os.makedirs(os.path.dirname(self.path), exist_ok=True)

    # -- connections -------------------------------------------------------------

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
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        for name, arguments, function in self.functions:
            conn.create_function(name, arguments, function, deterministic=True)
        return sqlite_utils.Database(conn)

    def release(self):
        """Give this thread's connection back for the next request's thread.

        A server with hundreds of threads (for held push requests) would
        otherwise keep a connection, and two file descriptors, per thread.
        """
        db = getattr(self._local, "db", None)
        if db is not None and not db.conn.in_transaction:
            with self._pool_lock:
                if len(self._idle) < IDLE_CONNECTIONS:
                    self._idle.append(db)
                    self._local.db = None
                    return
        self.close()

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

    def prepare(self, attempts=50):
        """Ready a new file for several connections at once: WAL mode."""
        # Switching to WAL needs the file to itself for a moment; when several
        # processes start on a new file at once, SQLite says "locked" at once
        # rather than waiting, so wait here.
        db = self.db
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

    def unavailable(self, error):
        """Whether ``error`` says the database cannot be reached now (a 503, not a bug)."""
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    def bad_input(self, error):
        """Whether ``error`` is the database refusing a value sent: SQLite stores any."""
        return False

    def backup(self, destination):
        """Copy the database to ``destination`` with SQLite's online backup."""
        with contextlib.closing(sqlite3.connect(destination)) as target:
            self.db.conn.backup(target)

    @contextlib.contextmanager
    def reading(self):
        """A read transaction: every query inside sees the same committed state."""
        conn = self.db.conn
        conn.execute("BEGIN")
        try:
            yield self.db
        finally:
            conn.execute("COMMIT")

    # -- writes ------------------------------------------------------------------

    @contextlib.contextmanager
    def immediate(self, scope=None, shown=True):
        """A read-modify-write transaction holding the write lock from its start.

        ``scope`` names what it reads and writes (a queue's id, a rate limit's
        key): SQLite has one write lock for all, PostgreSQL locks each scope
        (postgresql.py). ``shown=False`` for writes that no page shows (rate
        limits): pages made before it stay valid.
        """
        conn = self.db.conn
        with self.write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        if shown:
            self.committed()

    def write_statement(self, sql, params):
        """One writing statement, run to its end as a transaction of its own.

        SQLite takes the write lock as such a statement starts, before it reads,
        so it is a read-modify-write as safe as ``BEGIN IMMEDIATE`` … ``COMMIT``,
        in one call instead of three. Returns the rows of its RETURNING clause;
        counts as a commit when it changed a row.
        """
        with self.write_lock:
            cursor = self.db.conn.execute(sql, params)
            rows = cursor.fetchall()
        if rows or cursor.rowcount > 0:
            self.committed()
        return rows

    # -- generations ---------------------------------------------------------------

    def generation(self):
        """A number that moves on whenever the database may have changed (see the module).

        Other processes' commits are seen on a connection of its own: on every
        call if ``exact``, else once per ``FOREIGN_CHECK_SECONDS``, by whichever
        request comes first. Those of serve's other workers are seen on every
        call, in shared memory (``siblings_commits``).
        """
        if self.siblings_commits is not None:
            self._check_siblings()
        if self.exact or time.monotonic() - self._probed_at >= FOREIGN_CHECK_SECONDS:
            self._check_other_processes()
        return self._generation

    def notified_queues(self):
        """Which queues other processes changed: SQLite does not say (None: any may have)."""
        return None

    def data_version(self):
        """Changes whenever another connection commits (SQLite's PRAGMA data_version)."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

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
