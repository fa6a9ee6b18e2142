"""A servicer's last step (Next, Done, No show, or a number called from the list), to undo it.

Each such press keeps, on the servicer's row, the tickets it changed as they
were before, and the last event it made. Undo puts them back in one
transaction, so the customer's ticket is again what it was: Next puts the
previous customer back to called and the one it called back to waiting, at
their place; Done and No show put the customer back to called. The step's
events are renamed ``undone_<kind>``: the board's last calls and the start of
serving never count them, and statistics, read from the tickets, never see
the step at all.
"""

import json

from .. import rules
from .errors import ANY_CURRENT, CannotUndo
from .events import record

# A ticket's columns a step may change: what undo puts back.
STEP_COLUMNS = (
    "state",
    "called_at",
    "finished_at",
    "servicer_id",
    "line_position",
    "requeued",
    "recalls",
    "called_specifically",
)
_RESTORE = ", ".join(f"{column} = ?" for column in STEP_COLUMNS)


def ticket_before(ticket):
    """What a step keeps of a ticket it is about to change."""
    return {"id": ticket["id"], "number": ticket["number"]} | {c: ticket[c] for c in STEP_COLUMNS}


class Steps:
    """Store methods about a servicer's last step (mixed into Store; needs ``self.engine``)."""

    def _last_event_id(self, db):
        return db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]

    def _keep_step(self, db, servicer, button, now, first_event, before):
        """After a press made in ``db``'s transaction: keep it to undo (``before``: the
        tickets it changed, as ``ticket_before`` kept them), or forget the last
        step if the press changed no ticket."""
        if not before:
            db.execute(
                "UPDATE servicers SET last_step = NULL, last_step_at = NULL, "
                "last_step_event = NULL WHERE id = ?",
                (servicer["id"],),
            )
            return
        step = {
            "button": button,
            "tickets": before,
            "first_event": first_event,
            "started_at": servicer["started_at"],
        }
        db.execute(
            "UPDATE servicers SET last_step = ?, last_step_at = ?, last_step_event = ? "
            "WHERE id = ?",
            (json.dumps(step), now, self._last_event_id(db), servicer["id"]),
        )

    def undo(self, servicer, now, expected=ANY_CURRENT):
        """Undo the servicer's last step; return it (``last_step``).

        Raises CannotUndo when there is none, it is older than rules.UNDO_SECONDS,
        or anything changed one of its tickets since (a recall, the customer
        leaving, the owner clearing the line); Stale as the buttons do."""
        with self.engine.immediate(servicer["queue_id"]) as db:
            fresh = self.active_servicer(servicer["queue_id"], servicer["id"])
            step = fresh and rules.last_step(fresh)
            if step is None:
                raise CannotUndo("nothing")
            if not rules.can_undo(fresh["last_step_at"], now):
                raise CannotUndo("too_late")
            ids = [ticket["id"] for ticket in step["tickets"]]
            marks = ", ".join("?" * len(ids))
            changed = db.execute(
                "SELECT count(*) FROM events WHERE queue_id = ? AND id > ? "
                f"AND (ticket_id IN ({marks}) OR kind = 'clear')",
                (servicer["queue_id"], fresh["last_step_event"], *ids),
            ).fetchone()[0]
            if changed:
                raise CannotUndo("changed")
            self._expect(servicer, expected)
            self._pressed(db, servicer, now)
            for ticket in step["tickets"]:
                db.execute(
                    f"UPDATE tickets SET {_RESTORE} WHERE id = ?",
                    (*(ticket[c] for c in STEP_COLUMNS), ticket["id"]),
                )
            db.execute(
                "UPDATE events SET kind = 'undone_' || kind WHERE queue_id = ? "
                "AND id BETWEEN ? AND ? AND kind NOT LIKE 'undone_%'",
                (servicer["queue_id"], step["first_event"], fresh["last_step_event"]),
            )
            db.execute(
                "UPDATE servicers SET started_at = ?, last_step = NULL, last_step_at = NULL, "
                "last_step_event = NULL WHERE id = ?",
                (step["started_at"], servicer["id"]),
            )
            for ticket in step["tickets"]:  # each customer's page follows
                record(db, servicer["queue_id"], "undo", now, ticket["id"], servicer["id"])
        return step
