"""The schema: named, recorded migrations, applied in order at start-up.

Each migration is a function of a sqlite-utils Database, run inside the
transaction that records its name in the ``migrations`` table. Never edit one
that has shipped: append a new one to MIGRATIONS, and its PostgreSQL statements
to POSTGRESQL_MIGRATIONS under the same name (PostgreSQL began at 0009).
"""

import logging

log = logging.getLogger(__name__)


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


def _add_idempotency_keys(db):
    # The answers of API POSTs sent with an Idempotency-Key, for a day: the key
    # is kept as an HMAC with its scope (credentials, path), never as sent.
    db["idempotency_keys"].create(
        {
            "id": int,
            "key_hash": str,
            "request_hash": str,
            "created_at": float,
            "status": int,
            "headers": str,
            "body": bytes,
        },
        pk="id",
        not_null={"key_hash", "request_hash", "created_at"},
    )
    db["idempotency_keys"].create_index(["key_hash"], unique=True)
    db["idempotency_keys"].create_index(["created_at"])


def _add_console_steps(db):
    # A ticket called by its number from the waiting list, not as next in line;
    # and each servicer's last Next, Done or No show, to undo it (store/undo.py):
    # the rows it changed as they were before (JSON), when, and the last event
    # it made (any later event of those tickets makes it too late to undo).
    db["tickets"].add_column("called_specifically", int, not_null_default=0)
    servicers = db["servicers"]
    servicers.add_column("last_step", str)
    servicers.add_column("last_step_at", float)
    servicers.add_column("last_step_event", int)


MIGRATIONS = [
    ("0001_core_tables", _create_core_tables),
    ("0002_ticket_browser", _add_ticket_browser),
    ("0003_api_tokens", _add_api_tokens),
    ("0004_owner_controls", _add_owner_controls),
    ("0005_one_statement_take", _add_one_statement_take),
    ("0006_rate_limits", _add_rate_limits),
    ("0007_personal_invitations", _add_invitations),
    ("0008_idempotency_keys", _add_idempotency_keys),
    ("0009_console_steps", _add_console_steps),
]


# PostgreSQL's schema, as SQLite's is after 0001 to 0009.
POSTGRESQL_SCHEMA = """
CREATE TABLE queues (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    last_number BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'open',
    announcement TEXT NOT NULL DEFAULT '',
    max_waiting INTEGER,
    no_show_policy TEXT NOT NULL DEFAULT 'end',
    opening_hours TEXT,
    timezone TEXT NOT NULL DEFAULT 'UTC',
    staff_code TEXT
);
CREATE TABLE invitations (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    queue_id TEXT NOT NULL REFERENCES queues (id),
    name TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION,
    revoked_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX idx_invitations_code_hash ON invitations (code_hash);
CREATE INDEX idx_invitations_queue_id_revoked_at ON invitations (queue_id, revoked_at);
CREATE TABLE servicers (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    queue_id TEXT NOT NULL REFERENCES queues (id),
    name TEXT NOT NULL,
    signed_in_at DOUBLE PRECISION NOT NULL,
    signed_out_at DOUBLE PRECISION,
    is_owner INTEGER NOT NULL DEFAULT 0,
    started_at DOUBLE PRECISION,
    invitation_id BIGINT,
    left_reason TEXT,
    last_seen_at DOUBLE PRECISION,
    last_step TEXT,
    last_step_at DOUBLE PRECISION,
    last_step_event BIGINT
);
CREATE INDEX idx_servicers_queue_id_signed_out_at ON servicers (queue_id, signed_out_at);
CREATE INDEX idx_servicers_invitation_id ON servicers (invitation_id);
CREATE TABLE tickets (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    queue_id TEXT NOT NULL REFERENCES queues (id),
    number BIGINT NOT NULL,
    token TEXT NOT NULL,
    state TEXT NOT NULL,
    taken_at DOUBLE PRECISION NOT NULL,
    called_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    servicer_id BIGINT REFERENCES servicers (id),
    recalls INTEGER NOT NULL DEFAULT 0,
    browser TEXT,
    line_position DOUBLE PRECISION,
    moves_back INTEGER NOT NULL DEFAULT 0,
    requeued INTEGER NOT NULL DEFAULT 0,
    address TEXT,
    called_specifically INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX idx_tickets_queue_id_number ON tickets (queue_id, number);
CREATE UNIQUE INDEX idx_tickets_token ON tickets (token);
CREATE INDEX idx_tickets_queue_id_state_number ON tickets (queue_id, state, number);
CREATE INDEX idx_tickets_queue_id_finished_at ON tickets (queue_id, finished_at);
CREATE INDEX idx_tickets_servicer_id_state ON tickets (servicer_id, state);
CREATE INDEX idx_tickets_browser ON tickets (browser);
CREATE INDEX idx_tickets_queue_id_state_line_position
    ON tickets (queue_id, state, line_position);
CREATE UNIQUE INDEX tickets_open_per_browser ON tickets (queue_id, browser)
    WHERE browser IS NOT NULL AND state IN ('waiting', 'called');
CREATE INDEX tickets_recent_by_address ON tickets (queue_id, address, taken_at)
    WHERE address IS NOT NULL;
CREATE TABLE events (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    queue_id TEXT NOT NULL REFERENCES queues (id),
    ticket_id BIGINT REFERENCES tickets (id),
    servicer_id BIGINT REFERENCES servicers (id),
    kind TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX idx_events_queue_id_at ON events (queue_id, at);
CREATE INDEX idx_events_queue_id_id ON events (queue_id, id);
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY,
    servicer_id BIGINT NOT NULL REFERENCES servicers (id),
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX idx_api_tokens_servicer_id ON api_tokens (servicer_id);
CREATE TABLE rate_limit_hits (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    key TEXT NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE INDEX idx_rate_limit_hits_key_expires ON rate_limit_hits (key, expires);
CREATE INDEX idx_rate_limit_hits_expires ON rate_limit_hits (expires);
CREATE TABLE idempotency_keys (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    key_hash TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    status INTEGER,
    headers TEXT,
    body BYTEA
);
CREATE UNIQUE INDEX idx_idempotency_keys_key_hash ON idempotency_keys (key_hash);
CREATE INDEX idx_idempotency_keys_created_at ON idempotency_keys (created_at);
"""


def _create_postgresql_schema(db):
    for statement in POSTGRESQL_SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _in_postgresql_schema(db):
    """On PostgreSQL, 0001 made the whole schema up to 0009 at once."""


# A PostgreSQL database begins with the schema of 0009: no site ran an older
# one there. Migrations after 0009 are written for both databases.
POSTGRESQL_MIGRATIONS = [("0001_core_tables", _create_postgresql_schema)] + [
    (name, _in_postgresql_schema) for name, _ in MIGRATIONS[1:9]
]

# The moment a migration is applied, as a Julian day on both databases.
_NOW = {
    "sqlite": "julianday('now')",
    "postgresql": "extract(epoch FROM now()) / 86400 + 2440587.5",
}


def migrate(engine):
    """Apply the migrations not yet recorded; return the names applied."""
    engine.prepare()
    applied = []
    postgresql = engine.dialect == "postgresql"
    with engine.immediate("migrations", shown=False) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS migrations "
            f"(name TEXT PRIMARY KEY, applied_at {'DOUBLE PRECISION' if postgresql else 'REAL'} "
            "NOT NULL)"
        )
        done = {row[0] for row in db.execute("SELECT name FROM migrations")}
        for name, migration in POSTGRESQL_MIGRATIONS if postgresql else MIGRATIONS:
            if name in done:
                continue
            migration(db)
            db.execute(
                f"INSERT INTO migrations (name, applied_at) VALUES (?, {_NOW[engine.dialect]})",
                (name,),
            )
            applied.append(name)
    for name in applied:
        log.info("applied migration %s to %s", name, engine.path)
    return applied


def applied_migrations(engine):
    """The names of the migrations recorded, in order."""
    return engine.column("SELECT name FROM migrations ORDER BY name")
