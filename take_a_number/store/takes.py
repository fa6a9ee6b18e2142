"""Taking a number: the statements that write takes, one or many at once.

Taking a number is one ``INSERT … SELECT`` statement, which the engine runs as
a transaction of its own holding the write lock from its first step (a
trigger moves the queue's counter and version on and logs the event). Takes
that arrive together go through the take line (take_line.py), which writes
them in batches: here are its two ways to write.
"""

import collections
import logging

from .. import rules
from .errors import NotTaking, TooManyTakes
from .rate_limits import whole_seconds
from .take_line import Take, TakeLine

log = logging.getLogger(__name__)

# Takes written in one statement at most (6 SQL variables each).
MAX_TAKES_TOGETHER = 200


def open_at(opening_hours, timezone, now):
    """SQL ``tan_open_at(opening_hours, timezone, now)``: whether the hours are open."""
    return rules.opening(rules.parse_hours(opening_hours), timezone, now)[0]


# The SQL functions the take statement calls, for the engine to define.
SQL_FUNCTIONS = [("tan_open_at", 3, open_at)]


def _taken(ticket_id, queue_id, number, token, taken_at):
    """A ticket just written, as the take's caller gets it."""
    return {
        "id": ticket_id,
        "queue_id": queue_id,
        "number": number,
        "token": token,
        "state": "waiting",
        "taken_at": taken_at,
    }


class Takes:
    """Store methods that take numbers (mixed into Store; needs ``self.engine``)."""

    def _init_takes(self, take_limits):
        # (count, seconds) per browser and per address, a count of 0 for none:
        # take_ticket holds each queue's takes to them (see _insert_takes).
        self.take_limits = take_limits or {"browser": (0, 1), "address": (0, 1)}
        self._take_limits_on = [
            (column, *self.take_limits[column])
            for column in ("browser", "address")
            if self.take_limits[column][0]
        ]
        self._take_statements = {}  # by number of takes, see _take_statement
        self.take_line = TakeLine(
            self._write_together, self._take_alone, fails_all=self.engine.unavailable
        )

    def take_ticket(self, queue_id, token, now, browser=None, address=None):
        """Give the next number of the queue to a new ticket and return it.

        If ``browser`` already holds an open ticket in this queue, return that
        one instead: a browser never holds two (a unique index sees to it).
        The queue's tickets of the last while are held to ``take_limits``: so
        many per ``browser``, so many per ``address`` (a hash of the client's
        address, which the ticket keeps while it counts). Raises NotTaking when
        the queue gives no numbers now, TooManyTakes over a limit, LookupError
        when there is no such queue.

        Takes that arrive together are written together (see take_line.py).
        """
        if not self.take_limits["address"][0]:
            address = None  # a ticket keeps it only while it counts
        return self.take_line.take(Take(queue_id, token, now, browser, address))

    def _write_together(self, batch):
        """Write the takes of each queue in one statement; leave the rest.

        Left for _take_alone, which takes them alone or says why not: takes the
        statement refused, a browser's second take, every take of a statement
        that failed because a browser holds a ticket already, a lone take.
        """
        try:
            self.prune_limits(max(take.now for take in batch))
        except self.engine.Error as error:
            if self.engine.unavailable(error):
                raise  # the take line gives it to every take: nothing can be written
            log.exception("could not prune the rate limits; next time")
        if len(batch) < 2:
            return
        groups = {}  # each queue's takes, by browser: a browser's first take only
        for take in batch:
            browser = take if take.browser is None else take.browser
            groups.setdefault(take.queue_id, {}).setdefault(browser, take)
        for queue_id, takes in groups.items():
            together = list(takes.values())
            for start in range(0, len(together), MAX_TAKES_TOGETHER):
                chunk = together[start : start + MAX_TAKES_TOGETHER]
                if len(chunk) < 2:
                    continue
                try:
                    tickets = self._insert_takes(queue_id, chunk)
                except self.engine.IntegrityError:
                    continue  # a browser holds a ticket already, or a token is in use
                for take in chunk:
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
        may refuse a take that the rules allow (_take_alone then writes it alone),
        never the reverse. The takes written get the next numbers, in order.

        PostgreSQL has no such statement (its SELECT cannot call Python for the
        opening hours): there the takes are written by _insert_takes_in_steps.
        """
        if self.engine.dialect == "postgresql":
            return self._insert_takes_in_steps(queue_id, takes)
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
        rows = self.engine.write_statement(sql, params)
        taken_at = {take.token: take.now for take in takes}
        return {
            token: _taken(ticket_id, queue_id, number, token, taken_at[token])
            for ticket_id, number, token in rows
        }

    def _insert_takes_in_steps(self, queue_id, takes):
        """_insert_takes as a transaction of several statements, holding the queue's lock.

        The queue's counter row gives the numbers: ``UPDATE … SET last_number =
        last_number + k … RETURNING`` in the same transaction as the tickets'
        INSERT, so a rolled-back take leaves no gap, and UNIQUE (queue_id,
        number) stands behind it. Each take is judged on the tickets written
        before it, these takes' included.
        """
        now = max(take.now for take in takes)
        # Not shown unless it writes: a refusal is no change (see the end).
        with self.engine.immediate(queue_id, shown=False) as db:
            queue = self.engine.row(
                "SELECT status, opening_hours, timezone, max_waiting FROM queues WHERE id = ?",
                (queue_id,),
            )
            if queue is None or queue["status"] != rules.OPEN:
                return {}
            if queue["opening_hours"] and not open_at(
                queue["opening_hours"], queue["timezone"], now
            ):
                return {}
            room = (queue["max_waiting"] or 0) and queue["max_waiting"] - self._waiting_count(
                queue_id
            )
            counted = collections.Counter()  # this statement's takes, per (column, value)
            written = []
            for take in takes:
                if queue["max_waiting"] and len(written) >= room:
                    break
                if not all(
                    counted[column, value] + 1 + self._taken_recently(queue_id, column, value, take)
                    <= count
                    for column, count, _period in self._take_limits_on
                    if (value := getattr(take, column)) is not None
                ):
                    continue
                for column, _count, _period in self._take_limits_on:
                    counted[column, getattr(take, column)] += 1
                written.append(take)
            if not written:
                return {}
            last = db.execute(
                "UPDATE queues SET last_number = last_number + ?, version = version + 1 "
                "WHERE id = ? RETURNING last_number",
                (len(written), queue_id),
            ).fetchone()[0]
            first = last - len(written) + 1
            rows = db.execute(
                "INSERT INTO tickets (queue_id, number, token, state, taken_at, browser, "
                "address, line_position) VALUES "
                + ", ".join(["(?, ?, ?, 'waiting', ?, ?, ?, ?)"] * len(written))
                + " RETURNING id, number, token, taken_at",
                [
                    value
                    for number, take in enumerate(written, first)
                    for value in (
                        queue_id,
                        number,
                        take.token,
                        take.now,
                        take.browser,
                        take.address,
                        number,
                    )
                ],
            ).fetchall()
            db.execute(
                "INSERT INTO events (queue_id, ticket_id, kind, at) VALUES "
                + ", ".join(["(?, ?, 'take', ?)"] * len(rows)),
                [value for ticket_id, _, _, at in rows for value in (queue_id, ticket_id, at)],
            )
            self.engine.notify(queue_id)
        self.engine.committed()
        return {
            token: _taken(ticket_id, queue_id, number, token, taken_at)
            for ticket_id, number, token, taken_at in rows
        }

    def _taken_recently(self, queue_id, column, value, take):
        """How many of the queue's tickets ``column`` = ``value`` took within its limit's period."""
        period = self.take_limits[column][1]
        return self.engine.scalar(
            f"SELECT count(*) FROM tickets WHERE queue_id = ? AND {column} = ? AND taken_at > ?",
            (queue_id, value, take.now - period),
        )

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

    def _take_alone(self, take):
        """take_ticket for one ticket: one statement, and if it refuses, why."""
        for _attempt in range(3):
            try:
                ticket = self._insert_takes(take.queue_id, [take]).get(take.token)
            except self.engine.IntegrityError as error:
                if "browser" not in str(error):
                    raise
                ticket = None
            if ticket is None and take.browser is not None:
                # The browser's own open ticket, whatever the limits say.
                ticket = self.engine.row(
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
                row = self.engine.db.execute(
                    f"SELECT taken_at FROM tickets WHERE queue_id = ? AND {column} = ? "
                    "AND taken_at > ? ORDER BY taken_at DESC LIMIT 1 OFFSET ?",
                    (take.queue_id, value, take.now - period, count - 1),
                ).fetchone()
                if row is not None:
                    wait = max(wait, whole_seconds(row[0] + period - take.now))
        return wait
