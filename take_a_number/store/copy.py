"""Copy an SQLite database into an empty PostgreSQL one (``take-a-number copy-to``).

A site that outgrew one machine keeps its history: every row of every table
(but ``migrations``, which the target records for itself) keeps its id, in
one PostgreSQL transaction, read from one snapshot of the SQLite file opened
read-only. Rows go through ``COPY … FROM STDIN`` in batches. Before COMMIT,
each table's count and highest id, and each queue's last number, are compared
with the source's: any difference rolls everything back.

Rate-limit hits and idempotency keys are copied too, though they live for
minutes and a day: so that a limit reached, or an API POST answered just
before the move, holds just after it.
"""

import contextlib
import sqlite3
import time
import typing
from urllib.parse import quote

from . import migrations
from .postgresql import PostgresEngine, is_postgresql_url, redacted

__all__ = ["CopyError", "copy_to_postgresql", "is_postgresql_url", "redacted"]

# Every table, parents before children (the foreign keys' order).
TABLES = (
    "queues",
    "invitations",
    "servicers",
    "tickets",
    "events",
    "api_tokens",
    "idempotency_keys",
    "rate_limit_hits",
)
# Tables whose integer id PostgreSQL generates (an identity column).
IDENTITY_TABLES = tuple(t for t in TABLES if t not in ("queues", "api_tokens"))
NOT_COPIED = ("migrations",)
BATCH_ROWS = 5000
# How long the copy waits for a transaction of someone else's on the target.
LOCK_TIMEOUT = "10s"


class Copied(typing.NamedTuple):
    figures: dict  # as figures() gives them, the same on both sides
    with_nul: dict  # {table: rows whose text held NUL characters, copied without them}
    seconds: float


class CopyError(Exception):
    """The copy cannot be made, or did not match: nothing was written."""


def copy_to_postgresql(sqlite_path, url):
    """Copy the SQLite database at ``sqlite_path`` into the empty database at ``url``.

    Returns what was copied (``Copied``).
    Raises CopyError, with no row written to the target, if the source is not
    an up-to-date Take A Number database, the target holds anything already (then
    not even the schema is written), it cannot be reached, or the figures differ
    after the copy.
    """
    started = time.monotonic()
    with contextlib.closing(open_sqlite_read_only(sqlite_path)) as source:
        try:
            engine = PostgresEngine(url)
        except RuntimeError as error:  # psycopg is not installed
            raise CopyError(str(error)) from None
        try:
            copied = _copy(source, engine, url)
        except engine.Error as error:  # psycopg's, whatever PostgreSQL said
            raise CopyError(
                f"cannot copy into {redacted(url)}, so nothing was copied: {error}"
            ) from None
        except sqlite3.Error as error:
            raise CopyError(f"cannot read {sqlite_path}, so nothing was copied: {error}") from None
        finally:
            engine.close_all()
    return copied._replace(seconds=time.monotonic() - started)


def _copy(source, engine, url):
    with contextlib.closing(engine.connect(connect_timeout=10)) as target:
        refuse_data(target, url)
        migrations.migrate(engine)
        with target.transaction():
            # Nobody else writes meanwhile (an app started on it too early); if one is
            # in the middle of a transaction there, say so rather than wait for ever.
            target.execute("SELECT set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
            target.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
            refuse_data(target, url)
            check_tables(target_tables(target), url)
            source.execute("BEGIN")  # one snapshot for every table and figure
            with_nul = {table: copy_table(source, target, table) for table in TABLES}
            move_identities_past_copied_ids(target)
            compared = figures(source), figures(target)
            source.execute("COMMIT")
            differences = mismatches(*compared)
            if differences:
                raise CopyError(
                    "the copy does not match its source, so it was rolled back: "
                    + "; ".join(differences)
                )
    return Copied(compared[1], {t: rows for t, rows in with_nul.items() if rows}, 0.0)


def open_sqlite_read_only(path):
    """A read-only connection to an up-to-date Take A Number SQLite file."""
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, isolation_level=None)
        applied = [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY name")]
    except sqlite3.Error as error:
        raise CopyError(f"cannot read {path} as a Take A Number database: {error}") from None
    expected = [name for name, _ in migrations.MIGRATIONS]
    if applied != expected:
        conn.close()
        raise CopyError(
            f"{path} has the schema of another version of Take A Number "
            f"({len(applied)} of this version's {len(expected)} migrations): run "
            "take-a-number migrate with this version first"
        )
    tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    check_tables({row[0] for row in tables if not row[0].startswith("sqlite_")}, path)
    return conn


def target_tables(target):
    rows = target.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    )
    return {row[0] for row in rows}


def check_tables(found, where):
    """The copy knows every table there is (a new migration's table must be added to TABLES)."""
    unknown = found - set(TABLES) - set(NOT_COPIED)
    missing = set(TABLES) - found
    if unknown or missing:
        raise CopyError(
            f"{redacted(where)} has tables {', '.join(sorted(found))}; "
            f"copy-to knows {', '.join(TABLES)}"
        )


def refuse_data(target, url):
    """CopyError unless the target is empty: no table but Take A Number's, and no row in them."""
    found = target_tables(target)
    others = sorted(found - set(TABLES) - set(NOT_COPIED))
    if others:
        raise CopyError(
            f"{redacted(url)} holds tables that are not Take A Number's ({', '.join(others)}): "
            "copy-to only copies into an empty database, so nothing was written"
        )
    # Table names from TABLES: no parameter can name a table.
    holding = [
        t
        for t in TABLES
        if t in found and target.execute(f"SELECT EXISTS (SELECT FROM {t})").fetchone()[0]
    ]
    if holding:
        raise CopyError(
            f"{redacted(url)} is not empty (it holds rows in {', '.join(holding)}): "
            "copy-to only copies into an empty database, so nothing was written"
        )


def columns(target, table):
    """The table's columns, in PostgreSQL's order (the copy names them on both sides),
    and which of them are text."""
    rows = target.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [name for name, _ in rows], [name for name, kind in rows if kind == "text"]


def copy_table(source, target, table):
    """Every row of ``table``, ids kept, by COPY in batches of BATCH_ROWS.

    Returns how many rows held NUL characters in their text (SQLite keeps what a
    form was sent; PostgreSQL's text cannot hold them): copied without them.
    """
    names, texts = columns(target, table)
    listed = ", ".join(f'"{name}"' for name in names)
    # Table and column names come from TABLES and the target's own schema.
    with_nul = 0
    if texts:
        with_nul = source.execute(
            f"SELECT count(*) FROM {table} WHERE "
            + " OR ".join(f'instr("{name}", char(0)) > 0' for name in texts)
        ).fetchone()[0]
    rows = source.execute(f"SELECT {listed} FROM {table} ORDER BY rowid")
    with target.cursor().copy(f"COPY {table} ({listed}) FROM STDIN") as copy:
        while batch := rows.fetchmany(BATCH_ROWS):
            for row in batch:
                copy.write_row(without_nul(row) if with_nul else row)
    return with_nul


def without_nul(row):
    return tuple(v.replace("\x00", "") if isinstance(v, str) else v for v in row)


def move_identities_past_copied_ids(target):
    """The next id PostgreSQL generates in each table is past the highest copied."""
    for table in IDENTITY_TABLES:
        target.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), coalesce(max(id), 0) + 1, false) "
            f"FROM {table}",
            (table,),
        )


def figures(conn):
    """What must be the same on both sides: each table's rows and highest id, each
    queue's last number and tickets. The same statements on SQLite and PostgreSQL."""
    tables = {}
    for table in TABLES:
        highest = "max(id)" if table in IDENTITY_TABLES else "NULL"
        count, top = conn.execute(f"SELECT count(*), {highest} FROM {table}").fetchone()
        tables[table] = {"rows": count, "highest id": top}
    queues = {
        queue_id: {"last number": last, "tickets": tickets}
        for queue_id, last, tickets in conn.execute(
            "SELECT id, last_number, (SELECT count(*) FROM tickets WHERE queue_id = queues.id) "
            "FROM queues ORDER BY id"
        )
    }
    return {"tables": tables, "queues": queues}


def mismatches(source, target):
    """Each figure that differs between the source's and the target's, in words."""
    found = []
    for group in ("tables", "queues"):
        for name in sorted(set(source[group]) | set(target[group])):
            mine, theirs = source[group].get(name), target[group].get(name)
            if mine is None or theirs is None:
                found.append(f"{group[:-1]} {name} is {'missing' if theirs is None else 'extra'}")
                continue
            for figure, value in mine.items():
                if theirs[figure] != value:
                    found.append(f"{name}: {figure} {theirs[figure]} instead of {value}")
    return found
