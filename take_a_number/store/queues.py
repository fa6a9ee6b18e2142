"""Queues: creating one, the owner's controls, versions, and the snapshot pages show."""

from .. import rules, statistics
from .errors import QueueExists
from .events import record
from .tickets import WITH_SERVICER_NAME

# A servicer counts as active for the estimate if they called someone this recently.
ACTIVE_SERVICER_SECONDS = 30 * 60
# How many calls the display board lists.
RECENT_CALLS = 6


class Queues:
    """Store methods about queues (mixed into Store; needs ``self.engine``)."""

    def create_queue(self, queue_id, title, password_hash, now, timezone="UTC"):
        try:
            with self.engine.immediate(queue_id) as db:
                db.execute(
                    "INSERT INTO queues (id, title, password_hash, created_at, timezone) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (queue_id, title, password_hash, now, timezone),
                )
                record(db, queue_id, "create", now, moves_version=False)
        except self.engine.IntegrityError:
            raise QueueExists(queue_id) from None

    def get_queue(self, queue_id):
        return self.engine.row("SELECT * FROM queues WHERE id = ?", (queue_id,))

    def queue_version(self, queue_id):
        """The queue's version, bumped by every change to it; None if no such queue."""
        return self.engine.scalar("SELECT version FROM queues WHERE id = ?", (queue_id,))

    def queue_versions(self, queue_ids):
        """``{queue_id: version}`` for those of ``queue_ids`` that exist."""
        versions = {}
        for start in range(0, len(queue_ids), 500):
            chunk = queue_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT id, version FROM queues WHERE id IN ({marks})"
            versions.update(self.engine.db.execute(sql, chunk))
        return versions

    # -- the owner's controls ------------------------------------------------------

    def _update_queue(self, queue_id, now, event, **columns):
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.engine.immediate(queue_id) as db:
            db.execute(
                f"UPDATE queues SET {assignments} WHERE id = ?", (*columns.values(), queue_id)
            )
            record(db, queue_id, event, now)

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

    def set_password(self, queue_id, password_hash, now):
        """A new password for the owner; True if the queue exists. Pages show nothing of it."""
        with self.engine.immediate(queue_id) as db:
            changed = db.execute(
                "UPDATE queues SET password_hash = ? WHERE id = ?", (password_hash, queue_id)
            ).rowcount
            if changed:
                record(db, queue_id, "password", now, moves_version=False)
        return bool(changed)

    def clear_line(self, queue_id, now):
        """Everyone waiting leaves the line; return how many."""
        with self.engine.immediate(queue_id) as db:
            cleared = db.execute(
                "UPDATE tickets SET state = 'cleared', finished_at = ? "
                "WHERE queue_id = ? AND state = 'waiting'",
                (now, queue_id),
            ).rowcount
            record(db, queue_id, "clear", now)
        return cleared

    # -- what the pages show ---------------------------------------------------------

    def queue_snapshot(self, queue_id, now):
        """Everything the pages of a queue show, read at one moment; None if no such queue.

        Idle desks are released first (release_idle_desks): every page of the
        queue reads its snapshot at least once a minute while anyone looks.
        """
        self.release_idle_desks(queue_id, now)
        engine = self.engine
        with engine.reading():
            queue = self.get_queue(queue_id)
            if queue is None:
                return None
            line = engine.rows(
                "SELECT number, taken_at, moves_back FROM tickets "
                "WHERE queue_id = ? AND state = 'waiting' ORDER BY line_position, number",
                (queue_id,),
            )
            serving = engine.rows(
                "SELECT t.number, t.called_at, t.recalls, t.servicer_id, "
                "s.name AS servicer_name FROM tickets t "
                "LEFT JOIN servicers s ON s.id = t.servicer_id "
                "WHERE t.queue_id = ? AND t.state = 'called' ORDER BY t.called_at DESC",
                (queue_id,),
            )
            recent_calls = engine.rows(
                "SELECT e.kind, e.at, t.number, s.name AS servicer_name FROM events e "
                "JOIN tickets t ON t.id = e.ticket_id "
                "LEFT JOIN servicers s ON s.id = e.servicer_id "
                "WHERE e.queue_id = ? AND e.kind IN ('call', 'recall') "
                "ORDER BY e.at DESC, e.id DESC LIMIT ?",
                (queue_id, RECENT_CALLS),
            )
            durations = engine.column(
                "SELECT finished_at - called_at FROM tickets "
                "WHERE queue_id = ? AND state = 'served' AND finished_at IS NOT NULL "
                "ORDER BY finished_at DESC LIMIT ?",
                (queue_id, statistics.RECENT_SERVICES),
            )
            servicers = engine.scalar(
                "SELECT count(DISTINCT servicer_id) FROM tickets "
                "WHERE queue_id = ? AND called_at > ? AND servicer_id IN "
                "(SELECT id FROM servicers WHERE queue_id = ? AND signed_out_at IS NULL)",
                (queue_id, now - ACTIVE_SERVICER_SECONDS, queue_id),
            )
            arrivals = engine.column(
                "SELECT taken_at FROM tickets WHERE queue_id = ? AND taken_at > ?",
                (queue_id, now - statistics.FLOW_WINDOW),
            )
            open_tickets = engine.rows(
                WITH_SERVICER_NAME + "WHERE t.queue_id = ? AND t.state IN ('waiting', 'called')",
                (queue_id,),
            )
        return rules.Snapshot(
            queue=queue,
            taken_at=now,
            waiting=[ticket["number"] for ticket in line],
            line=line,
            serving=serving,
            recent_calls=recent_calls,
            service_durations=durations,
            active_servicers=servicers,
            arrivals=arrivals,
            open_tickets={ticket["token"]: ticket for ticket in open_tickets},
        )
