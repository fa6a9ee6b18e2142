"""The event log: every change to a queue is an event, and moves the queue's version.

Pages and the push hub compare a queue's version to know it changed; the
events feed the history and statistics.
"""


def record(db, queue_id, kind, now, ticket_id=None, servicer_id=None, moves_version=True):
    """Log an event of the queue and move the queue's version on.

    ``moves_version=False`` where the version stays (a queue just created, an
    invitation no page shows) or another event of the same change moves it.
    """
    db.execute(
        "INSERT INTO events (queue_id, ticket_id, servicer_id, kind, at) VALUES (?, ?, ?, ?, ?)",
        (queue_id, ticket_id, servicer_id, kind, now),
    )
    if moves_version:
        db.execute("UPDATE queues SET version = version + 1 WHERE id = ?", (queue_id,))


class Events:
    """Store methods that read the event log (mixed into Store; needs ``self.engine``)."""

    def last_event_id(self, queue_id):
        return self.engine.scalar(
            "SELECT coalesce(max(id), 0) FROM events WHERE queue_id = ?", (queue_id,)
        )

    def tickets_in_events_since(self, queue_id, event_id):
        """``(last event id, {ticket ids named})`` of the queue's events after ``event_id``;
        a take names none (no page can wait on a ticket just taken)."""
        rows = self.engine.db.execute(
            "SELECT id, ticket_id, kind FROM events WHERE queue_id = ? AND id > ?",
            (queue_id, event_id),
        ).fetchall()
        named = {r[1] for r in rows if r[1] and r[2] != "take"}
        return max((r[0] for r in rows), default=event_id), named

    def serving_starts(self, queue_id):
        """When servicers pressed Start serving, oldest first."""
        return self.engine.column(
            "SELECT at FROM events WHERE queue_id = ? AND kind = 'start_serving' ORDER BY at",
            (queue_id,),
        )
