"""Tickets after they are taken: reading them, the customer's and the servicer's buttons.

The servicer's presses are kept to undo them: steps.py."""

from .. import rules
from .errors import ANY_CURRENT, NotWaiting, Stale
from .events import record
from .steps import ticket_before

# Tickets with the name of the servicer who called them, for a WHERE to follow.
WITH_SERVICER_NAME = (
    "SELECT t.*, s.name AS servicer_name FROM tickets t "
    "LEFT JOIN servicers s ON s.id = t.servicer_id "
)


class Tickets:
    """Store methods about tickets (mixed into Store; needs ``self.engine``)."""

    def ticket_by_token(self, token):
        return self.engine.row(WITH_SERVICER_NAME + "WHERE t.token = ?", (token,))

    def queue_tickets(self, queue_id):
        """Every ticket of the queue with its servicer's name, in number order."""
        return self.engine.rows(
            WITH_SERVICER_NAME + "WHERE t.queue_id = ? ORDER BY t.number", (queue_id,)
        )

    def tickets_taken(self, queue_id, start=None, end=None, after=0, limit=None):
        """The queue's tickets taken from ``start`` to before ``end`` (Unix times, None:
        unbounded) and numbered after ``after``, in number order; at most ``limit``.

        Numbers only grow, so a list read page by page (``after`` the last number
        read) never skips or repeats a ticket, however many are taken meanwhile."""
        sql = WITH_SERVICER_NAME + "WHERE t.queue_id = ? AND t.number > ? "
        params = [queue_id, after]
        if start is not None:
            sql, params = sql + "AND t.taken_at >= ? ", [*params, start]
        if end is not None:
            sql, params = sql + "AND t.taken_at < ? ", [*params, end]
        sql += "ORDER BY t.number"
        if limit is not None:
            sql, params = sql + " LIMIT ?", [*params, limit]
        return self.engine.rows(sql, params)

    def current_ticket(self, servicer_id):
        """The ticket this servicer called and has not finished, or None."""
        return self.engine.row(
            "SELECT * FROM tickets WHERE servicer_id = ? AND state = 'called' "
            "ORDER BY called_at DESC LIMIT 1",
            (servicer_id,),
        )

    def _waiting_count(self, queue_id):
        return self.engine.scalar(
            "SELECT count(*) FROM tickets WHERE queue_id = ? AND state = 'waiting'", (queue_id,)
        )

    # -- the customer's buttons ------------------------------------------------------

    def _queue_of(self, token):
        """The queue of the ticket ``token`` (a ticket never changes queue), or None."""
        return self.engine.scalar("SELECT queue_id FROM tickets WHERE token = ?", (token,))

    def move_back(self, token, now):
        """Let the next person go first: swap places with them. True if it moved."""
        with self.engine.immediate(self._queue_of(token)) as db:
            ticket = self.engine.row("SELECT * FROM tickets WHERE token = ?", (token,))
            if ticket is None or ticket["state"] != rules.WAITING:
                return False
            behind = self.engine.row(
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
            record(db, ticket["queue_id"], "move_back", now, ticket_id=ticket["id"])
        return True

    def leave(self, token, now):
        """The customer leaves the line; return the ticket as it was before."""
        with self.engine.immediate(self._queue_of(token)) as db:
            ticket = self.engine.row("SELECT * FROM tickets WHERE token = ?", (token,))
            if ticket is not None and rules.allows(ticket["state"], "left"):
                self._set_state(db, ticket, "left", now)
        return ticket

    # -- the servicer's buttons ------------------------------------------------------

    def call_next(self, servicer, now, expected=ANY_CURRENT, number=None):
        """Finish this servicer's customer and call the next in line, or ``number``
        (a waiting number picked from the list: NotWaiting if it no longer waits;
        the ticket is marked ``called_specifically``).

        Returns ``(finished, called)``; ``called`` is None when nobody waits.
        ``expected``, on every button: see ``_expect``. The press is kept to undo
        (steps.py).
        """
        queue_id, servicer_id = servicer["queue_id"], servicer["id"]
        with self.engine.immediate(queue_id) as db:
            current = self.active_servicer(queue_id, servicer_id)
            if current is None:  # signed out or revoked meanwhile: calls nobody
                return None, None
            self._expect(servicer, expected)
            first_event = self._last_event_id(db) + 1
            waiting = self.engine.rows(
                "SELECT * FROM tickets WHERE queue_id = ? AND state = 'waiting'", (queue_id,)
            )
            if number is None:
                called = rules.next_in_line(waiting)
            else:
                called = next((t for t in waiting if t["number"] == number), None)
                if called is None:
                    raise NotWaiting(number)
            before = [ticket_before(t) for t in (self.current_ticket(servicer_id), called) if t]
            self._pressed(db, servicer, now)
            finished = self._finish_current(db, servicer, "served", now)
            if called is not None and not current["started_at"]:
                # "Start serving": this servicer's first call since signing in.
                db.execute("UPDATE servicers SET started_at = ? WHERE id = ?", (now, servicer_id))
                # No ticket yet; the call below moves the version on.
                record(db, queue_id, "start_serving", now, None, servicer_id, moves_version=False)
            if called is not None:
                db.execute(
                    "UPDATE tickets SET state = 'called', called_at = ?, servicer_id = ?, "
                    "called_specifically = ? WHERE id = ? AND state = 'waiting'",
                    (now, servicer_id, number is not None, called["id"]),
                )
                record(db, queue_id, "call", now, ticket_id=called["id"], servicer_id=servicer_id)
            button = "call_next" if number is None else "call_number"
            self._keep_step(db, current, button, now, first_event, before)
        return finished, called

    def finish_current(self, servicer, state, now, expected=ANY_CURRENT):
        """Done (``served``) or No show (``no_show``) for this servicer's customer;
        kept to undo (steps.py)."""
        with self.engine.immediate(servicer["queue_id"]) as db:
            self._expect(servicer, expected)
            first_event = self._last_event_id(db) + 1
            current = self.current_ticket(servicer["id"])
            self._pressed(db, servicer, now)
            finished = self._finish_current(db, servicer, state, now)
            button = "done" if state == rules.SERVED else "no_show"
            before = [ticket_before(current)] if current else []
            self._keep_step(db, servicer, button, now, first_event, before)
            return finished

    def recall(self, servicer, now, expected=ANY_CURRENT):
        """Signal this servicer's current customer again; return the ticket or None.

        The last step can no longer be undone: its customer was signalled since."""
        with self.engine.immediate(servicer["queue_id"]) as db:
            self._expect(servicer, expected)
            self._pressed(db, servicer, now)
            self._keep_step(db, servicer, "recall", now, None, [])
            ticket = self.current_ticket(servicer["id"])
            if ticket is not None:
                db.execute("UPDATE tickets SET recalls = recalls + 1 WHERE id = ?", (ticket["id"],))
                self._ticket_event(db, ticket, "recall", now)  # its servicer's own ticket
        return ticket

    def _expect(self, servicer, expected):
        """Raise Stale unless the servicer's customer is the one ``expected`` (a number, or
        None for nobody), as their console showed it; inside the button's transaction, so
        that two presses made on one console never both act."""
        if expected is ANY_CURRENT:
            return
        current = self.current_ticket(servicer["id"])
        number = current["number"] if current else None
        if number != expected:
            raise Stale(number)

    def _pressed(self, db, servicer, now):
        """A button pressed is an action: the desk is not idle (rules.is_idle)."""
        db.execute("UPDATE servicers SET last_seen_at = ? WHERE id = ?", (now, servicer["id"]))

    def _finish_current(self, db, servicer, state, now):
        ticket = self.current_ticket(servicer["id"])
        if ticket is None:
            return None
        if state == rules.NO_SHOW:
            policy = self.get_queue(servicer["queue_id"])["no_show_policy"]
            if rules.requeue_no_show(ticket, policy):
                position = self.engine.scalar(
                    "SELECT coalesce(max(line_position), 0) + 1 FROM tickets "
                    "WHERE queue_id = ? AND state = 'waiting'",
                    (ticket["queue_id"],),
                )
                # A no-show goes to the end of the line, once.
                return self._wait_again(db, ticket, now, "requeue", position, "requeued = 1")
        return self._set_state(db, ticket, state, now)

    # -- a ticket changes state --------------------------------------------------------

    def _set_state(self, db, ticket, state, now):
        """Move a ticket to ``state``; return it as it is now."""
        rules.check_transition(ticket["state"], state)
        db.execute(
            "UPDATE tickets SET state = ?, finished_at = ? WHERE id = ?",
            (state, now, ticket["id"]),
        )
        self._ticket_event(db, ticket, state, now)
        return dict(ticket, state=state, finished_at=now)

    def _put_back_at_the_front(self, db, ticket, now):
        """A called customer whose servicer left waits again, first, with the same number.

        The servicer's leaving moves the queue's version on.
        """
        waiting = self.engine.rows(
            "SELECT line_position FROM tickets WHERE queue_id = ? AND state = 'waiting'",
            (ticket["queue_id"],),
        )
        position = rules.front_of_line(waiting)
        self._wait_again(db, ticket, now, "put_back", position, "recalls = 0", moves_version=False)

    def _wait_again(self, db, ticket, now, event, position, also, moves_version=True):
        """A called ticket waits again at ``position``, uncalled; ``also`` is a constant
        assignment of the case. Returns the ticket as it is now."""
        rules.check_transition(ticket["state"], rules.WAITING)
        db.execute(
            "UPDATE tickets SET state = 'waiting', called_at = NULL, servicer_id = NULL, "
            f"{also}, line_position = ? WHERE id = ?",
            (position, ticket["id"]),
        )
        self._ticket_event(db, ticket, event, now, moves_version)
        return dict(ticket, state=rules.WAITING)

    def _ticket_event(self, db, ticket, kind, now, moves_version=True):
        """Record an event of ``ticket`` and of the servicer who called it."""
        record(
            db, ticket["queue_id"], kind, now, ticket["id"], ticket["servicer_id"], moves_version
        )
