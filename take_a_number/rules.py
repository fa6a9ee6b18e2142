"""The rules of the line, as plain functions: no HTTP, no SQL.

A ticket is ``waiting`` until a servicer calls it; a ``called`` ticket ends as
``served`` or ``no_show``; a customer may leave (``left``) while their ticket is
open, and the owner may clear the waiting line (``cleared``). The line is
served in order of place in line: the order numbers were taken, except that a
customer may let the next person go first, and a no-show may be sent to the end.
"""

import dataclasses
import datetime
import json
import statistics
import threading
import zoneinfo

WAITING, CALLED, SERVED, NO_SHOW, LEFT = "waiting", "called", "served", "no_show", "left"
CLEARED = "cleared"

TRANSITIONS = {
    WAITING: {CALLED, LEFT, CLEARED},
    # Back to waiting: a no-show sent to the end of the line.
    CALLED: {SERVED, NO_SHOW, LEFT, WAITING},
    # How a ticket ends: nothing comes after.
    **{state: set() for state in (SERVED, NO_SHOW, LEFT, CLEARED)},
}

# What the owner makes of the queue.
OPEN, PAUSED, CLOSED = "open", "paused", "closed"
QUEUE_STATUSES = (OPEN, PAUSED, CLOSED)
# What happens to a customer who was called but not there.
NO_SHOW_END, NO_SHOW_REQUEUE = "end", "requeue"
# How often a customer may let the next person go first.
MAX_MOVES_BACK = 2
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Fewer observed services than this and the estimate says nothing.
MINIMUM_SERVICES_FOR_ESTIMATE = 3


class InvalidTransition(ValueError):
    """A ticket was asked to move to a state its current state does not allow."""


def allows(state, new_state):
    return new_state in TRANSITIONS[state]


def check_transition(state, new_state):
    if not allows(state, new_state):
        raise InvalidTransition(f"a {state} ticket cannot become {new_state}")


def is_open(state):
    """An open ticket still holds a place: its browser cannot take another."""
    return state in (WAITING, CALLED)


def can_leave(state):
    return allows(state, LEFT)


def next_in_line(waiting):
    """The waiting ticket to call next: the first place in line, or None."""
    return min(
        waiting,
        key=lambda ticket: (ticket.get("line_position", ticket["number"]), ticket["number"]),
        default=None,
    )


def requeue_no_show(ticket, policy):
    """Whether a no-show goes to the end of the line (once) rather than ending."""
    return policy == NO_SHOW_REQUEUE and not ticket["requeued"]


def front_of_line(waiting):
    """The place in line before everyone waiting (``waiting``: their ``line_position``)."""
    return min((ticket["line_position"] for ticket in waiting), default=1) - 1


# What a servicer who leaves does with the customer they called: finish them
# as served, or put them back at the front of the line.
FINISH, PUT_BACK = "served", "front"
LEAVING_CHOICES = (FINISH, PUT_BACK)


def customer_of_leaving_servicer(choice=PUT_BACK):
    """What becomes of the customer a servicer called, when the servicer leaves.

    A servicer who signs out, is revoked or whose desk is released for
    idleness before pressing Done sends their customer back: waiting, first in
    line, with the same number (``WAITING``). Only a servicer who signs out
    and says the customer was served (``FINISH``) ends the ticket as
    ``SERVED``. A service that never happened is never counted as one.
    """
    return SERVED if choice == FINISH else WAITING


# Why a servicer is no longer signed in (servicers.left_reason), in words.
SIGNED_OUT, REVOKED, IDLE = "signed_out", "revoked", "idle"
LEFT_REASONS = {
    SIGNED_OUT: "You signed out.",
    REVOKED: "The owner revoked your access to this queue.",
    IDLE: "You were signed out because your console was closed and no button was "
    "pressed for a long while. Your customer went back to the front of the line.",
}


def is_idle(servicer, now, idle_seconds):
    """A desk with no console open and no action for ``idle_seconds`` (0: never) is released."""
    if not idle_seconds or servicer["signed_out_at"] is not None:
        return False
    seen = servicer["last_seen_at"] or servicer["signed_in_at"]
    return now - seen >= idle_seconds


def invitation_refusal(invitation, now):
    """Why an invitation code cannot sign anyone in, in words; None when it can.

    An invitation signs in its servicer until the owner revokes it or it
    expires; it can be used again, on any device, by the person it was made for.
    """
    if invitation is None:
        return "That is not an invitation code of this queue."
    if invitation["revoked_at"] is not None:
        return "The owner revoked this invitation. Ask them for a new one."
    if invitation["expires_at"] is not None and now >= invitation["expires_at"]:
        return "This invitation has expired. Ask the owner for a new one."
    return None


# How long a servicer may undo their last Next, Done or No show (store/steps.py).
UNDO_SECONDS = 60


def can_undo(step_at, now):
    """A servicer's last step may be undone for UNDO_SECONDS after it, if nothing
    changed its tickets since (the store checks that)."""
    return step_at is not None and now - step_at <= UNDO_SECONDS


def last_step(servicer):
    """The servicer's last step kept to undo (store/steps.py: ``{"button", "tickets",
    ...}``, each ticket with its ``number``), or None."""
    return json.loads(servicer["last_step"]) if servicer.get("last_step") else None


def can_move_back(ticket, people_behind):
    """'Not ready, let the next person go first': while waiting, a few times."""
    return (
        ticket["state"] == WAITING and ticket["moves_back"] < MAX_MOVES_BACK and people_behind > 0
    )


# -- opening hours ------------------------------------------------------------


def parse_hours(text):
    """Opening hours as stored: ``{"days": [0..6], "opens": "09:00", "closes": "17:00"}``.

    A day ticked is a day an opening starts: with a closing time before the
    opening time (17:00 to 09:00) it closes the next morning.
    """
    if not text:
        return None
    hours = json.loads(text)
    return {
        "days": sorted(set(hours["days"])),
        "opens": datetime.time.fromisoformat(hours["opens"]),
        "closes": datetime.time.fromisoformat(hours["closes"]),
    }


def _local_moment(day, time, zone):
    """When a clock in ``zone`` reads ``time`` on ``day``, as an aware datetime.

    A time the clocks skip in spring comes an hour later by the clock (02:30
    becomes 03:30); in autumn the first of the two comes.
    """
    moment = datetime.datetime.combine(day, time, zone).timestamp()
    return datetime.datetime.fromtimestamp(moment, zone)


def opening_window(hours, timezone, now):
    """``(opens, closes)``: the opening the queue is in at Unix time ``now``, or
    the next one; aware datetimes in the queue's zone, or None with no day open.

    Each ticked day's opening starts that day at the opening time and ends at
    the closing time, the next day when that is earlier (overnight), so the
    opening that started yesterday evening may still be on.
    """
    zone = zoneinfo.ZoneInfo(timezone)
    today = datetime.datetime.fromtimestamp(now, zone).date()
    overnight = hours["closes"] < hours["opens"]
    for offset in range(-1, 8):
        day = today + datetime.timedelta(days=offset)
        if day.weekday() not in hours["days"]:
            continue
        closing_day = day + datetime.timedelta(days=1) if overnight else day
        closes = _local_moment(closing_day, hours["closes"], zone)
        if now < closes.timestamp():
            return _local_moment(day, hours["opens"], zone), closes
    return None


def opening(hours, timezone, now):
    """``(open_now, next_opening)`` for opening hours in a time zone at Unix time ``now``.

    Without hours the queue is always open. ``next_opening`` is an aware datetime,
    or None when open now or when no day is open at all.
    """
    if not hours:
        return True, None
    window = opening_window(hours, timezone, now)
    if window is None:
        return False, None
    opens = window[0]
    return (True, None) if opens.timestamp() <= now else (False, opens)


def next_change(hours, timezone, now):
    """The Unix time after ``now`` at which what the queue says of its hours changes.

    That is its next opening or closing, or the next local midnight (when
    "tomorrow at 09:00" becomes "today at 09:00"), whichever comes first; None
    without hours. A page showing the queue is out of date from then on.
    """
    if not hours:
        return None
    zone = zoneinfo.ZoneInfo(timezone)
    tomorrow = datetime.datetime.fromtimestamp(now, zone).date() + datetime.timedelta(days=1)
    moments = [_local_moment(tomorrow, datetime.time(), zone).timestamp()]
    window = opening_window(hours, timezone, now)
    if window is not None:
        moments += [moment.timestamp() for moment in window]
    return min(moment for moment in moments if moment > now)


def describe_opening(moment, now, timezone):
    """'today at 09:00', 'tomorrow at 09:00' or 'on Monday at 09:00'."""
    local_now = datetime.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(timezone))
    days = (moment.date() - local_now.date()).days
    day = {0: "today", 1: "tomorrow"}.get(days) or f"on {DAY_NAMES[moment.weekday()]}"
    return f"{day} at {moment:%H:%M}"


def describe_status(queue, now):
    """The queue's status as its owner reads it, the opening hours included.

    'Paused', 'Closed', 'Open', 'Open — within opening hours: it closes today
    at 17:00' or 'Open — but outside opening hours: it opens tomorrow at 09:00'.
    """
    if queue["status"] != OPEN:
        return queue["status"].capitalize()
    hours = parse_hours(queue["opening_hours"])
    if not hours:
        return "Open"
    window = opening_window(hours, queue["timezone"], now)
    if window is None:
        return "Open — but no day is open in its opening hours"
    opens, closes = window
    if opens.timestamp() <= now:
        when = describe_opening(closes, now, queue["timezone"])
        return f"Open — within opening hours: it closes {when}"
    when = describe_opening(opens, now, queue["timezone"])
    return f"Open — but outside opening hours: it opens {when}"


def closed_notice(queue, waiting, now):
    """Why no number can be taken now, in words; None when one can."""
    if queue["status"] == PAUSED:
        return "The queue is paused: no new numbers for now. Those in line keep their place."
    if queue["status"] == CLOSED:
        return "The queue is closed."
    open_now, next_opening = opening(parse_hours(queue["opening_hours"]), queue["timezone"], now)
    if not open_now:
        if next_opening is None:
            return "The queue is closed."
        when = describe_opening(next_opening, now, queue["timezone"])
        return f"The queue is closed. It opens {when}."
    if queue["max_waiting"] and waiting >= queue["max_waiting"]:
        return "The line is full right now. Please try again in a little while."
    return None


def estimate_wait(position, service_durations, servicers):
    """Seconds until the ``position``-th person in line (1 = next) is called.

    Each servicer works through ``position / servicers`` customers before this
    one, each taking a recent service time; the range runs from the lower to
    the upper quartile of those times. Returns ``(low, high)`` in seconds, or
    None when fewer than three services have been observed.
    """
    durations = [d for d in service_durations if d is not None and d >= 0]
    if position < 1 or len(durations) < MINIMUM_SERVICES_FOR_ESTIMATE:
        return None
    lower, _, upper = statistics.quantiles(durations, n=4, method="inclusive")
    turns = position / max(1, servicers)
    return turns * lower, turns * upper


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A queue as it stood at one moment: what every page of it shows."""

    queue: dict
    taken_at: float
    waiting: list  # numbers of waiting tickets, in line order
    serving: list  # called tickets, most recent first, with their servicer's name
    recent_calls: list  # the last calls and recalls, most recent first
    service_durations: list  # seconds, most recent first
    active_servicers: int
    arrivals: list = dataclasses.field(default_factory=list)  # recent taken_at times
    # The waiting tickets in line order: number, taken_at, moves_back (the console's list).
    line: list = dataclasses.field(default_factory=list)
    # Its waiting and called tickets by token, whole rows as Store.ticket_by_token
    # reads them: a live update of an open ticket needs no query of its own.
    open_tickets: dict = dataclasses.field(default_factory=dict, repr=False)
    places: dict = dataclasses.field(init=False, repr=False)
    # What is made of the snapshot alone, made once however many pages ask
    # (views.shared): a snapshot never changes, so neither does what it gives.
    derived: dict = dataclasses.field(default_factory=dict, init=False, repr=False, compare=False)
    making: threading.RLock = dataclasses.field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )
    # When what it says of the opening hours goes out of date (next_change).
    changes_at: float = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "places", {n: i for i, n in enumerate(self.waiting)})
        hours = parse_hours(self.queue.get("opening_hours"))
        object.__setattr__(
            self, "changes_at", next_change(hours, self.queue.get("timezone"), self.taken_at)
        )

    @property
    def version(self):
        return self.queue["version"]

    def people_ahead(self, number):
        return self.places.get(number, len(self.waiting))

    def people_behind(self, number):
        return len(self.waiting) - self.people_ahead(number) - 1

    def closed_notice(self):
        return closed_notice(self.queue, len(self.waiting), self.taken_at)

    def estimate(self, position):
        return estimate_wait(position, self.service_durations, self.active_servicers)
