"""Statistics of a queue's tickets, as plain functions: no SQL, no HTTP.

The store reads ticket rows (``id, queue_id, number, state, taken_at,
called_at, finished_at, servicer_id, servicer_name, recalls,
called_specifically``; times in Unix
seconds, or None) and these functions turn them into the owner's figures, the
CSV download and the servicer console's "line is growing" indicator.

The times of a ticket
    *Wait* runs from taking the number to being called. Numbers taken before
    anyone started serving that day would otherwise count the time the counter
    was not yet open, so a wait starts at the later of the ticket being taken
    and serving starting (``serving_started_at``, see ``wait_started_at``).
    *Service* runs from being called to being finished, for served tickets;
    *total* is wait plus service, for served tickets.

An undone step (the console's Undo) is never counted: undo puts the ticket's
row back as it was, and these figures are read from the rows.

Summaries
    Count, mean, median and p90 of each time. The p90 is the nearest-rank
    percentile: the smallest time that at least 90 % of the tickets did not
    exceed. "9 in 10 waited at most this long" is then literally true, and the
    figure is a time somebody really waited.

Is the line growing?  (the servicer console's indicator)
    People join the line at a rate of *a* a minute: the numbers taken in the
    last 15 minutes, divided by 15. Each servicer serves one person per recent
    service time, so *k* servicers serve *k / s* people a minute, where *s* is
    the mean of the recent service times: the last 20 customers served, the
    same times the customers' wait estimate uses, and *k* the servicers active
    now (at least one: the one reading the console). When people join more than
    10 % faster than they are served, the line is growing and keeps growing
    until someone else starts serving; more than 10 % slower, it is shrinking;
    otherwise it is steady. With fewer than 3 numbers taken in the window, or
    fewer than 3 services seen, the indicator says nothing.

    A customer's estimated wait is the same model seen from one place in line:
    the n-th person waits for n / k services, each between the lower and upper
    quartile of the recent service times (``rules.estimate_wait``).
"""

import bisect
import collections
import csv
import datetime
import io
import math
import statistics

from . import rules

# How many recent services the flow model and the wait estimate average over
# (the store reads the same number for the customers' estimate).
RECENT_SERVICES = 20
# The window of recent arrivals the flow model counts.
FLOW_WINDOW = 15 * 60
# How far arrivals must outrun service (or lag it) before the line counts as
# growing (or shrinking) rather than steady.
FLOW_MARGIN = 0.10
GROWING, SHRINKING, STEADY = "growing", "shrinking", "steady"

# A spreadsheet treats a cell starting with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = """number state servicer taken_at called_at finished_at
wait_seconds service_seconds total_seconds recalls called_specifically""".split()


# -- the times of one ticket ---------------------------------------------------


def serving_started_by_day(start_times, tz):
    """The first start of each local day, in order, from every time a servicer started serving.

    Several servicers each start serving; a day's serving starts with the first.
    """
    days = {}
    for started in sorted(start_times):
        days.setdefault(local_time(started, tz).date(), started)
    return list(days.values())


def wait_started_at(ticket, serving_started_at=None):
    """When the ticket's wait began: taken, or the start of serving if that was later.

    The start that applies is the latest one at or before the ticket was
    called, so pass one start per day in order (``serving_started_by_day``), not every
    servicer's: a second servicer starting later does not restart the wait of
    people already in line.
    """
    taken_at, called_at = ticket["taken_at"], ticket["called_at"]
    if not serving_started_at or called_at is None:
        return taken_at
    index = bisect.bisect_right(serving_started_at, called_at) - 1
    return max(taken_at, serving_started_at[index]) if index >= 0 else taken_at


def ticket_times(ticket, serving_started_at=None):
    """``{"wait", "service", "total"}`` in seconds, None where it does not apply.

    Wait needs a call (a requeued no-show counts to its last call); service and
    total need the ticket to have been served.
    """
    called_at, finished_at = ticket["called_at"], ticket["finished_at"]
    wait = service = total = None
    if called_at is not None:
        wait = max(0.0, called_at - wait_started_at(ticket, serving_started_at))
        if ticket["state"] == rules.SERVED and finished_at is not None:
            service = max(0.0, finished_at - called_at)
            total = wait + service
    return {"wait": wait, "service": service, "total": total}


# -- summaries -----------------------------------------------------------------


def percentile(sorted_values, fraction):
    """Nearest rank: the smallest value that ``fraction`` of the values do not exceed."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values):
    """``{"count", "mean", "median", "p90"}`` of the values that are not None.

    Mean, median and p90 are None when there are no values.
    """
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    return {
        "count": len(ordered),
        "mean": statistics.fmean(ordered),
        "median": statistics.median(ordered),
        "p90": percentile(ordered, 0.9),
    }


# Below this, a time is said in seconds ("45 s"), not in tenths of a minute ("0.8 min").
SECONDS_BELOW = 120


def duration_text(seconds):
    """A wait or a service as the owner reads it: '45 s' below two minutes, else
    '2.5 min'; '–' for none."""
    if seconds is None:
        return "–"
    if seconds < SECONDS_BELOW:
        return f"{round(seconds)} s"
    return f"{seconds / 60:.1f} min"


def time_unit(seconds):
    """``(divisor, name)`` to draw these durations in: seconds if all are below two
    minutes, else minutes (None values ignored)."""
    known = [value for value in seconds if value is not None]
    if known and max(known) < SECONDS_BELOW:
        return 1, "seconds"
    return 60, "minutes"


def local_time(timestamp, tz):
    return datetime.datetime.fromtimestamp(timestamp, tz)


def day_bounds(first, last, tz):
    """``(start, end)``: Unix times from the start of day ``first`` to the end of day
    ``last`` (dates, inclusive) in the time zone ``tz``; None for a day not given."""

    def start_of(day):
        return datetime.datetime.combine(day, datetime.time(), tz).timestamp()

    start = start_of(first) if first else None
    end = start_of(last + datetime.timedelta(days=1)) if last and last < datetime.date.max else None
    return start, end


def counts_and_times(tickets, serving_started_at=None):
    """How many tickets ended how, and summaries of their wait, service and total.

    ``called_specifically`` counts those called by their number from the console's
    list rather than as next in line;
    ``left_before_served`` counts those who left while waiting (never called);
    ``left_after_call`` those who left once called; ``cleared`` those whose
    number the owner cleared; ``open`` those still waiting or called.
    """
    states = collections.Counter(t["state"] for t in tickets)
    times = [ticket_times(t, serving_started_at) for t in tickets]
    left = [t for t in tickets if t["state"] == rules.LEFT]
    return {
        "tickets": len(tickets),
        "called": sum(1 for t in tickets if t["called_at"] is not None),
        "called_specifically": sum(1 for t in tickets if t.get("called_specifically")),
        "served": states[rules.SERVED],
        "no_shows": states[rules.NO_SHOW],
        "left_before_served": sum(1 for t in left if t["called_at"] is None),
        "left_after_call": sum(1 for t in left if t["called_at"] is not None),
        "cleared": states[rules.CLEARED],
        "open": states[rules.WAITING] + states[rules.CALLED],
        "wait": summarize(t["wait"] for t in times),
        "service": summarize(t["service"] for t in times),
        "total": summarize(t["total"] for t in times),
    }


def arrivals_per_hour(tickets, tz):
    """24 counts: the numbers taken in each hour of the day, local time, over all days."""
    hours = [0] * 24
    for ticket in tickets:
        hours[local_time(ticket["taken_at"], tz).hour] += 1
    return hours


def left_line_at(ticket):
    """When the ticket stopped waiting: called, or left (or cleared) uncalled; else None."""
    if ticket["called_at"] is not None:
        return ticket["called_at"]
    if ticket["state"] != rules.WAITING:
        return ticket["finished_at"]
    return None


def queue_length(tickets):
    """How many people waited, as steps: ``[(unix time, waiting), ...]`` in time order.

    One step per moment the count changed; a number taken and called in the
    same second makes no step.
    """
    changes = collections.Counter()
    for ticket in tickets:
        changes[ticket["taken_at"]] += 1
        left_at = left_line_at(ticket)
        if left_at is not None:
            changes[left_at] -= 1
    steps, waiting = [], 0
    for moment in sorted(changes):
        if changes[moment]:
            waiting += changes[moment]
            steps.append((moment, waiting))
    return steps


def report(tickets, tz, serving_started_at=None):
    """The owner's statistics of these tickets (one queue's), in the time zone ``tz``.

    ``{"overall": ..., "servicers": [...], "days": [...]}``: each entry has the
    ``counts_and_times`` figures; ``overall`` and each day also have
    ``arrivals_per_hour`` and ``queue_length``. Servicers (by name, in
    alphabetical order, for the tickets they called) carry ``servicer_name``;
    days (by the local date a number was taken, in order) carry ``date`` as
    ``YYYY-MM-DD``.
    """

    def with_arrivals(group):
        return dict(
            counts_and_times(group, serving_started_at),
            arrivals_per_hour=arrivals_per_hour(group, tz),
            queue_length=queue_length(group),
        )

    by_servicer = collections.defaultdict(list)
    by_day = collections.defaultdict(list)
    for ticket in tickets:
        if ticket["servicer_name"] is not None:
            by_servicer[ticket["servicer_name"]].append(ticket)
        by_day[local_time(ticket["taken_at"], tz).date()].append(ticket)
    return {
        "overall": with_arrivals(tickets),
        "servicers": [
            dict(servicer_name=name, **counts_and_times(by_servicer[name], serving_started_at))
            for name in sorted(by_servicer, key=lambda name: (name.casefold(), name))
        ],
        "days": [
            dict(date=day.isoformat(), **with_arrivals(by_day[day])) for day in sorted(by_day)
        ],
    }


# -- the CSV download ----------------------------------------------------------


def spreadsheet_safe(text):
    """Text a spreadsheet shows as text: a leading ``'`` before a formula character.

    A servicer named ``=HYPERLINK(...)`` would otherwise run as a formula in
    the owner's spreadsheet (CSV injection).
    """
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def ticket_record(ticket, tz, serving_started_at=None):
    """One ticket as the CSV and the API list it: ``number``, ``state``,
    ``servicer_name``, its times in ISO 8601 local time (with the offset) and its
    wait, service and total in whole seconds; None where it has none."""

    def when(timestamp):
        return None if timestamp is None else local_time(timestamp, tz).isoformat("T", "seconds")

    times = ticket_times(ticket, serving_started_at)
    return {
        "number": ticket["number"],
        "state": ticket["state"],
        "servicer_name": ticket["servicer_name"],
        "taken_at": when(ticket["taken_at"]),
        "called_at": when(ticket["called_at"]),
        "finished_at": when(ticket["finished_at"]),
        "wait_seconds": None if times["wait"] is None else round(times["wait"]),
        "service_seconds": None if times["service"] is None else round(times["service"]),
        "total_seconds": None if times["total"] is None else round(times["total"]),
        "recalls": ticket["recalls"],
        # Called by its number from the console's list, not as next in line.
        "called_specifically": bool(ticket.get("called_specifically")),
    }


def csv_rows(tickets, tz, serving_started_at=None):
    """The header and one row per ticket in number order (``ticket_record``'s values)."""
    rows = [CSV_HEADER]
    for ticket in sorted(tickets, key=lambda t: (str(t["queue_id"]), t["number"])):
        record = ticket_record(ticket, tz, serving_started_at)
        record["servicer_name"] = spreadsheet_safe(record["servicer_name"] or "")
        record["called_specifically"] = int(record["called_specifically"])  # 1 or 0
        rows.append(["" if value is None else value for value in record.values()])
    return rows


def tickets_csv(tickets, tz, serving_started_at=None):
    """``csv_rows`` as CSV text (RFC 4180: commas, CRLF, quotes where needed)."""
    text = io.StringIO()
    csv.writer(text).writerows(csv_rows(tickets, tz, serving_started_at))
    return text.getvalue()


# -- is the line growing? ------------------------------------------------------


def flow(taken_times, service_durations, now, active_servicers=1):
    """Whether the line is growing: arrivals per minute against services per minute.

    ``taken_times`` are when numbers were taken, ``service_durations`` the
    recent service times (the snapshot's). Returns the figures behind the
    verdict (rates per minute, mean service in seconds) and ``verdict``:
    "growing", "shrinking", "steady", or None with too little data.
    """
    durations = [d for d in service_durations if d is not None and d >= 0]
    arrivals = sum(1 for taken_at in taken_times if now - FLOW_WINDOW < taken_at <= now)
    servicers = max(1, active_servicers)
    arrivals_per_minute = arrivals / (FLOW_WINDOW / 60)
    mean_service = statistics.fmean(durations) if durations else None
    served_per_minute = servicers * 60 / mean_service if mean_service else None
    verdict = None
    enough = min(arrivals, len(durations)) >= rules.MINIMUM_SERVICES_FOR_ESTIMATE
    if enough and served_per_minute is not None:
        if arrivals_per_minute > served_per_minute * (1 + FLOW_MARGIN):
            verdict = GROWING
        elif arrivals_per_minute < served_per_minute * (1 - FLOW_MARGIN):
            verdict = SHRINKING
        else:
            verdict = STEADY
    return {
        "window": FLOW_WINDOW,
        "arrivals": arrivals,
        "arrivals_per_minute": arrivals_per_minute,
        "services": len(durations),
        "mean_service": mean_service,
        "servicers": servicers,
        "served_per_minute": served_per_minute,
        "verdict": verdict,
    }
