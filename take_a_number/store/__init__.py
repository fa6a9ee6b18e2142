"""The store: every SQL statement of Take A Number lives in this package.

``Store`` is composed of the queries, grouped by what they are about
(queues.py, tickets.py, steps.py, takes.py, servicers.py, events.py,
rate_limits.py, idempotency.py),
over one database engine (engine.py: connections, transactions, and how a
change by another process is noticed), with the schema in migrations.py and
the group commit of takes in take_line.py. The queries talk to the engine,
never to ``sqlite3`` or ``psycopg``: SQLite's engine is engine.py, PostgreSQL's
postgresql.py, and the same statements run on both.
"""

from . import migrations
from .engine import FOREIGN_CHECK_SECONDS, SQLiteEngine
from .errors import (
    ANY_CURRENT,
    CannotUndo,
    InvitationRefused,
    NameInUse,
    NotTaking,
    NotWaiting,
    QueueExists,
    Stale,
    TooManyTakes,
)
from .events import Events
from .idempotency import IdempotencyKeys
from .migrations import MIGRATIONS
from .postgresql import PostgresEngine, is_postgresql_url
from .queues import Queues
from .rate_limits import RateLimits
from .servicers import Servicers
from .steps import Steps
from .take_line import Take, TakeLine
from .takes import SQL_FUNCTIONS, Takes
from .tickets import Tickets

__all__ = [
    "ANY_CURRENT",
    "CannotUndo",
    "FOREIGN_CHECK_SECONDS",
    "MIGRATIONS",
    "InvitationRefused",
    "NameInUse",
    "NotTaking",
    "NotWaiting",
    "QueueExists",
    "PostgresEngine",
    "SQLiteEngine",
    "Stale",
    "Store",
    "Take",
    "TakeLine",
    "TooManyTakes",
]


class Store(Queues, Tickets, Steps, Takes, Servicers, Events, RateLimits, IdempotencyKeys):
    """All reads and writes of queues, servicers, tickets and events."""

    def __init__(
        self,
        path,  # an SQLite file, or a postgresql:// URL
        synchronous="normal",
        busy_timeout=10.0,
        take_limits=None,
        servicer_idle_seconds=0,
        pool_size=20,  # PostgreSQL's connections per process at most
    ):
        if is_postgresql_url(path):
            self.engine = engine = PostgresEngine(path, pool_size)
        else:
            self.engine = engine = SQLiteEngine(path, synchronous, busy_timeout, SQL_FUNCTIONS)
        self.path = engine.path
        # The engine's, as the store's own: connections, transactions, generations.
        self.release, self.close, self.close_all = engine.release, engine.close, engine.close_all
        self.immediate, self.reading = engine.immediate, engine.reading
        self.generation, self.changed_elsewhere = engine.generation, engine.changed_elsewhere
        self.data_version, self.backup = engine.data_version, engine.backup
        self.after_commit = engine.after_commit
        # A desk with no console open and no action this long is released (0: never).
        self.servicer_idle_seconds = servicer_idle_seconds
        self._pruned_at = float("-inf")  # see prune_limits
        self._init_takes(take_limits)

    @property
    def db(self):
        """This thread's sqlite-utils Database."""
        return self.engine.db

    @property
    def exact(self):
        """Whether every generation() asks the database (several processes serve)."""
        return self.engine.exact

    @exact.setter
    def exact(self, exact):
        self.engine.exact = exact

    def migrate(self):
        """Apply the migrations not yet recorded; return the names applied."""
        return migrations.migrate(self.engine)

    def applied_migrations(self):
        return migrations.applied_migrations(self.engine)

    def reachable(self):
        """Whether the database answers a query now (the health check's)."""
        try:
            return self.engine.scalar("SELECT 1") == 1
        except Exception as error:
            if self.engine.unavailable(error) or isinstance(error, self.engine.Error):
                return False
            raise
