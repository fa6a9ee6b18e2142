"""The database engine for PostgreSQL: many app instances, on many machines, as one service.

The queries are the same as on SQLite (written with ``?`` placeholders, which
this engine turns into psycopg's ``%s``); only this module knows it is
PostgreSQL. What differs, and why:

- **Connections** come from a psycopg_pool pool, one per process, opened when
  the process first needs it (a worker forked after the app was loaded opens
  its own), checked before each use and recycled after an hour. A thread holds
  one from its first query until the request ends (``release``), in autocommit
  mode outside the transactions below.
- **Writes** that read first (``immediate``) lock their *scope* for the
  transaction: ``pg_advisory_xact_lock`` on a hash of the queue's id (or of a
  rate limit's key), released by COMMIT or ROLLBACK. So every read-modify-write
  of one queue runs alone, on every instance, as under SQLite's ``BEGIN
  IMMEDIATE``, while other queues go on. Transaction-level advisory locks hold
  through pgbouncer's transaction pooling; session-level ones, never used here,
  would not.
- **Wake-ups**: a shown write sends ``pg_notify('take_a_number', queue_id)`` in
  its transaction; PostgreSQL delivers it at COMMIT. Each process has one
  listener thread on a connection of its own, outside the pool (LISTEN needs a
  session: it must reach PostgreSQL directly or through a session-mode pool).
  Each notification moves the generation on (what pages remembered is old) and
  pokes the push hub. NOTIFY is not durable, so after every (re)connect the
  listener first LISTENs, then treats everything as changed (after a reconnect,
  ``after_reconnect``: the push hub answers every request it held, and their
  pages ask again); while it is not connected, every ``generation()`` is new,
  so nothing is served from memory.

**Staleness bound**: a page or answer this process keeps in memory is never
older than the last notification it received: a change committed on another
instance is shown here as soon as its notification arrives (milliseconds on
one network), and at once where this process made it.
"""

import contextlib
import functools
import logging
import os
import threading
import time
from urllib.parse import urlsplit, urlunsplit

from .engine import Queries

# Imported when a PostgresEngine is made (``_load``): an SQLite site that has
# the extra installed pays nothing for it (importing them takes about 80 ms).
psycopg = psycopg_pool = None

log = logging.getLogger(__name__)

CHANNEL = "take_a_number"
# Connections a process keeps at most (see docs/deployment.md for the sizes).
POOL_SIZE = 20
# A request waits this long for a connection (the database is down, or all
# are busy) before it is answered 503.
POOL_TIMEOUT_SECONDS = 5.0
# The listener looks whether it is to stop this often, checks its connection
# this often, and waits this long between attempts to reconnect.
LISTEN_WAKE_SECONDS = 0.5
# While the listener cannot connect, a request waits this long for a connection.
UNREACHABLE_WAIT_SECONDS = 0.5
LISTEN_CHECK_SECONDS = 5.0
RECONNECT_SECONDS = 0.5
# psycopg_pool tries again to open a lost connection after 1, 2, 4, ... seconds,
# for this long (its reconnect_timeout), then waits for the next request to
# ask. Kept short: else, once the database is back, requests would still wait
# for the next of those tries, up to as long as the outage lasted.
POOL_RECONNECT_SECONDS = 2.0
# Connections are replaced after this long (psycopg_pool's max_lifetime).
CONNECTION_LIFETIME_SECONDS = 3600.0
URL_SCHEMES = ("postgresql", "postgres")
INSTALL_HINT = "pip install 'take-a-number[postgresql]'"


def is_postgresql_url(value):
    value = str(value)  # a path may be a pathlib.Path
    scheme = urlsplit(value).scheme.lower() if "://" in value else ""
    return scheme in URL_SCHEMES


def redacted(url):
    """The URL with its password hidden, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


@functools.lru_cache(maxsize=2048)
def placeholders(sql):
    """The statement with psycopg's placeholders: ``?`` becomes ``%s``, ``%`` becomes ``%%``.

    No statement of the store has a ``?`` inside a string literal."""
    return sql.replace("%", "%%").replace("?", "%s")


def _load():
    """Import psycopg and psycopg_pool; False if the extra is not installed."""
    global psycopg, psycopg_pool
    if psycopg is None:
        try:
            import psycopg as loaded
            import psycopg_pool as loaded_pool
        except ImportError:
            return False
        psycopg, psycopg_pool = loaded, loaded_pool
    return True


def _bool_as_integer():
    """A dumper of True and False as the integers 1 and 0, as SQLite stores them."""

    class BoolAsInteger(psycopg.adapt.Dumper):
        oid = psycopg.adapters.types["int4"].oid

        def dump(self, obj):
            return b"1" if obj else b"0"

    return BoolAsInteger


class Connection:
    """A psycopg connection that speaks as sqlite-utils' Database does to the queries."""

    def __init__(self, conn, pool):
        self.conn = conn
        self.pool = pool  # where it goes back

    def execute(self, sql, params=()):
        return self.conn.execute(placeholders(sql), tuple(params))

    @property
    def in_transaction(self):
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


class PostgresEngine(Queries):
    """A pool of connections to one PostgreSQL database, its transactions and notifications."""

    dialect = "postgresql"

    def __init__(self, url, pool_size=POOL_SIZE, pool_timeout=POOL_TIMEOUT_SECONDS):
        if not _load():
            raise RuntimeError(f"database = {redacted(url)}: PostgreSQL needs {INSTALL_HINT}")
        self._dumper = _bool_as_integer()
        self.url = url
        self.path = redacted(url)  # what logs and messages name
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self.Error = psycopg.Error
        self.IntegrityError = psycopg.IntegrityError
        self._local = threading.local()
        self._pool = None
        self._pool_pid = None
        self._pool_lock = threading.Lock()
        # Called after every commit of this process, and after every
        # notification of a change by any process (the push hub listens to both).
        self.after_commit = []
        self.after_notification = []
        self.exact = False  # no meaning here: notifications say what changed
        self._generation = 0
        self._generation_lock = threading.Lock()
        self._notifications = 0  # see data_version
        self._notified = set()  # see notified_queues; None: any queue
        self._listener = None
        self._listening = False
        # The listener's last attempt to connect failed: PostgreSQL refuses or
        # cannot be reached, and a request waits UNREACHABLE_WAIT_SECONDS for a
        # connection of the pool, not pool_timeout, before its 503.
        self._unreachable = False
        self._stopped = threading.Event()
        # Called each time the listener is connected again after losing its
        # connection: what was held on what it heard before must be read anew.
        self.after_reconnect = []
        self._listened_before = False

    # -- connections -------------------------------------------------------------

    def _configure(self, conn):
        conn.adapters.register_dumper(bool, self._dumper)

    def connect(self, **options):
        """A new connection of its own, outside the pool (the listener, migrations)."""
        conn = psycopg.connect(self.url, autocommit=True, **options)
        self._configure(conn)
        return conn

    def pool(self):
        """This process's pool, opened on first use (a forked worker opens its own)."""
        if self._pool_pid != os.getpid():
            with self._pool_lock:
                if self._pool_pid != os.getpid():
                    # A parent's pool is left alone: closing its connections
                    # here would close them for the parent too.
                    self._pool = psycopg_pool.ConnectionPool(
                        self.url,
                        min_size=1,
                        max_size=self.pool_size,
                        kwargs={"autocommit": True},
                        configure=self._configure,
                        check=psycopg_pool.ConnectionPool.check_connection,
                        max_lifetime=CONNECTION_LIFETIME_SECONDS,
                        reconnect_timeout=POOL_RECONNECT_SECONDS,
                        timeout=self.pool_timeout,
                        name="take-a-number",
                        open=False,
                    )
                    self._pool.open(wait=False)
                    self._pool_pid = os.getpid()
                    self._stopped.clear()
        return self._pool

    @property
    def db(self):
        """This thread's connection: its own until it releases it (or it breaks)."""
        db = getattr(self._local, "db", None)
        if db is not None and db.conn.broken:
            self.release()  # the pool discards it
            db = None
        if db is None:
            pool = self.pool()
            wait = UNREACHABLE_WAIT_SECONDS if self._unreachable else None  # None: pool_timeout
            self._local.db = db = Connection(pool.getconn(timeout=wait), pool)
        return db

    def _begin(self, command):
        """This thread's connection, in a transaction begun with ``command``.

        A connection found broken as it begins (PostgreSQL restarted since it
        was last used) is replaced once: nothing was done on it yet.
        """
        db = self.db
        try:
            db.conn.execute(command)
        except psycopg.OperationalError:
            if not db.conn.broken:
                raise
            db = self.db
            db.conn.execute(command)
        return db

    def release(self):
        """Give this thread's connection back to the pool."""
        db = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            if db.in_transaction or db.pool.closed:  # never lent on mid-transaction
                db.conn.close()
            if not db.pool.closed:
                db.pool.putconn(db.conn)

    close = release

    def close_all(self):
        """Give this thread's connection back, close the pool, stop the listener."""
        self.release()
        self._stopped.set()
        if self._pool is not None and self._pool_pid == os.getpid():
            self._pool.close()
            self._pool = self._pool_pid = None
        if self._listener is not None:
            self._listener.join(timeout=LISTEN_WAKE_SECONDS + 1)
            self._listener = None

    def prepare(self):
        """Nothing to ready: the database exists (``createdb``) and is shared."""

    def unavailable(self, error):
        """Whether ``error`` says the database cannot be reached now (a 503, not a bug)."""
        return isinstance(error, psycopg.OperationalError | psycopg_pool.PoolTimeout)

    def bad_input(self, error):
        """Whether ``error`` is PostgreSQL refusing a value sent (a NUL in text): a 400.

        The forms refuse such text first; this is the backstop for any other way in."""
        return isinstance(error, psycopg.DataError)

    def backup(self, destination):
        raise RuntimeError(
            "a PostgreSQL database is backed up with pg_dump (docs/deployment.md), "
            "not with take-a-number backup"
        )

    # -- transactions ------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self):
        """A read transaction: every query inside sees the same committed state."""
        db = self._begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield db
        finally:
            self._end(db, "COMMIT")

    @contextlib.contextmanager
    def immediate(self, scope=None, shown=True):
        """A read-modify-write transaction holding the lock of ``scope`` from its start.

        ``scope`` is the queue's id for a write of a queue (and the payload of
        the notification a shown write sends), else a name of what it reads
        and writes; a tuple of them for a write of several (locked in order,
        so that two such writes never wait for each other); None for writes
        that read nothing first. ``shown=False`` for writes no page shows.
        """
        scopes = sorted(scope) if isinstance(scope, tuple) else [] if scope is None else [scope]
        db = self._begin("BEGIN")
        try:
            for name in scopes:
                db.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))
            yield db
            for name in scopes if shown else ():
                self.notify(name)
        except BaseException:
            self._end(db, "ROLLBACK")
            raise
        self._end(db, "COMMIT")
        if shown:
            self.committed()

    def notify(self, queue_id):
        """Inside a write transaction: every process hears at COMMIT that the queue changed."""
        self.db.conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, queue_id))

    def _end(self, db, command):
        if db.in_transaction:
            try:
                db.conn.execute(command)
            except psycopg.OperationalError:
                if command == "COMMIT":
                    raise
                db.conn.close()  # the connection is gone: the pool replaces it

    def write_statement(self, sql, params):
        """One writing statement, a transaction of its own; the rows of its RETURNING."""
        cursor = self.db.execute(sql, params)
        rows = cursor.fetchall() if cursor.description else []
        if rows or cursor.rowcount > 0:
            self.committed()
        return rows

    # -- generations and notifications -------------------------------------------

    def generation(self):
        """A number that moves on with every notification (see the module's staleness bound),
        and at once when another of serve's workers committed (``siblings_commits``)."""
        if self.siblings_commits is not None:
            self._check_siblings()
        self._ensure_listener()
        if not self._listening:
            self._next_generation()  # changes by others go unheard: remember nothing
        return self._generation

    def listening(self, timeout):
        """Start the listener if need be; whether it listens within ``timeout`` seconds."""
        self._ensure_listener()
        deadline = time.monotonic() + timeout
        while not self._listening and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._listening

    def data_version(self):
        """Moves on with every notification received (and always, while not listening)."""
        self._ensure_listener()
        if not self._listening:
            self._notifications += 1
        return self._notifications

    def _ensure_listener(self):
        listener = self._listener
        if listener is None or not listener.is_alive() or listener.pid != os.getpid():
            with self._pool_lock:
                listener = self._listener
                if listener is None or not listener.is_alive() or listener.pid != os.getpid():
                    self._stopped.clear()
                    self._listening = False
                    listener = threading.Thread(
                        target=self._listen, name="take-a-number-listener", daemon=True
                    )
                    listener.pid = os.getpid()
                    self._listener = listener
                    listener.start()

    def notified_queues(self):
        """The queues notified since the last call, or None if any queue may have changed
        (the listener reconnected, or is not listening). The push watcher reads those only."""
        with self._generation_lock:
            notified, self._notified = self._notified, set()
        return notified if self._listening else None

    def _heard(self, queue_id=None):
        """Something may have changed (in ``queue_id``; None: anything): pages read from
        now on must be read anew."""
        with self._generation_lock:
            if queue_id is None:
                self._notified = None
            elif self._notified is not None:
                self._notified.add(queue_id)
        self._notifications += 1
        self._next_generation()
        for callback in self.after_notification:
            callback()

    def _listen(self):
        while not self._stopped.is_set():
            try:
                try:
                    conn = self.connect(connect_timeout=5, keepalives=1, keepalives_idle=10)
                except psycopg.OperationalError:
                    self._unreachable = True  # requests fail fast until it connects again
                    raise
                self._unreachable = False
                with conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening = True
                    self._heard()  # what was sent while nobody listened is lost
                    if self._listened_before:
                        for callback in self.after_reconnect:
                            callback()
                    self._listened_before = True
                    log.info("listening for changes on %s", self.path)
                    checked = time.monotonic()
                    while not self._stopped.is_set():
                        for notification in conn.notifies(timeout=LISTEN_WAKE_SECONDS):
                            self._heard(notification.payload or None)
                        if time.monotonic() - checked >= LISTEN_CHECK_SECONDS:
                            conn.execute("SELECT 1")  # a dead server shows here
                            checked = time.monotonic()
            except psycopg.Error as error:
                if self._listening:
                    log.warning("lost the connection listening on %s: %s", self.path, error)
            finally:
                if self._listening:
                    self._listening = False
                    self._heard()
            self._stopped.wait(RECONNECT_SECONDS)
