"""The rules of the line, as plain functions: no HTTP, no SQL.

A ticket is ``waiting`` until a servicer calls it; a ``called`` ticket ends as
``served`` or ``no_show``; a customer may leave (``left``) while their ticket is
open. The line is served in the order numbers were taken.
"""

import bisect
import dataclasses
import math
import statistics

WAITING, CALLED, SERVED, NO_SHOW, LEFT = "waiting", "called", "served", "no_show", "left"

TRANSITIONS = {
    WAITING: {CALLED, LEFT},
    CALLED: {SERVED, NO_SHOW, LEFT},
    SERVED: set(),
    NO_SHOW: set(),
    LEFT: set(),
}

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
    """The waiting ticket to call next: the lowest number, or None."""
    return min(waiting, key=lambda ticket: ticket["number"], default=None)


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


def describe_wait(estimate):
    """Words for an estimate range: 'about 2–5 minutes', or None for no estimate."""
    if estimate is None:
        return None
    low, high = estimate
    low_minutes = math.floor(low / 60)
    high_minutes = max(math.ceil(high / 60), low_minutes + 1)
    if high_minutes <= 1:
        return "under a minute"
    if low_minutes == 0:
        return f"under {high_minutes} minutes"
    return f"about {low_minutes}\u2013{high_minutes} minutes"


def describe_age(seconds):
    """'just now', '3 min ago', '1 h 5 min ago' for how long ago something happened."""
    minutes = int(max(0, seconds) // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    return f"{minutes // 60} h {minutes % 60} min ago"


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

    @property
    def version(self):
        return self.queue["version"]

    def people_ahead(self, number):
        return bisect.bisect_left(self.waiting, number)

    def estimate(self, position):
        return estimate_wait(position, self.service_durations, self.active_servicers)
