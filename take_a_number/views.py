"""What the ticket page, the servicer console and the board show, as plain dicts.

The HTML templates, the live JSON updates and the API render the same dicts,
so a page and its updates never disagree. A view holds every flag and every
piece of text its page shows: templates and ``static/live.js`` only read
``view[flag]`` (``data-show``) and ``view[field]`` (``data-text``, and a form
field's ``data-value``), never work one out. Snapshots of a queue are cached per
version: however many people watch a queue, it is read once per change.
"""

import math
import threading

from . import rules, statistics
from .cache import BoundedCache

# A snapshot also goes stale with time (the wait estimate counts recently
# active servicers), so it is re-read at least this often, and at once when
# the queue opens or closes by its hours (Snapshot.changes_at).
SNAPSHOT_MAX_AGE = 60
CACHED_QUEUES = 1000
CACHED_TICKETS = 20_000


class Snapshots:
    """The latest snapshot of each queue, and tickets by token, for the store's generation.

    While the store's generation stays the same nothing changed, and a page is
    served from memory without a single SQLite call (each would hand the GIL to
    another of the server's threads, and wait to get it back). When the
    generation moved on, one query tells whether this queue changed; only then
    is the snapshot read again, once, however many people watch the queue.
    """

    def __init__(self, store):
        self.store = store
        self._cache = BoundedCache(CACHED_QUEUES)  # queue id: (generation, snapshot)
        self._tickets = BoundedCache(CACHED_TICKETS)  # token: (generation, ticket)
        self._lock = threading.Lock()

    def get(self, queue_id, now):
        generation = self.store.generation()
        cached = self._cache.get(queue_id)
        if cached is not None and cached[0] == generation and _young(cached[1], now):
            return cached[1]
        version = self.store.queue_version(queue_id)
        if version is None:
            return None
        with self._lock:  # one reader per change, not one per waiting client
            cached = self._cache.get(queue_id)
            snapshot = cached[1] if cached is not None else None
            if snapshot is None or snapshot.version < version or not _young(snapshot, now):
                snapshot = self.store.queue_snapshot(queue_id, now)
                if snapshot is None:
                    return None
            self._cache.put(queue_id, (generation, snapshot))
        return snapshot

    def version(self, queue_id):
        """The queue's version, from memory while the store's generation is the same."""
        cached = self._cache.get(queue_id)
        if cached is not None and cached[0] == self.store.generation():
            return cached[1].version
        return self.store.queue_version(queue_id)

    def ticket_of(self, snapshot, token):
        """The ticket with this token as ``snapshot`` shows it while it is open, with no
        query (a change wakes every waiter of the queue at once); else ``ticket()``."""
        ticket = snapshot.open_tickets.get(token) if snapshot is not None else None
        return ticket if ticket is not None else self.ticket(token)

    def ticket(self, token):
        """The ticket with this token (and its servicer's name), or None."""
        generation = self.store.generation()
        cached = self._tickets.get(token)
        if cached is not None and cached[0] == generation:
            return cached[1]
        ticket = self.store.ticket_by_token(token)
        if ticket is not None:
            # Those of an older generation would never be served again: on a
            # busy day they were most of the cache, and of the server's memory.
            self._tickets.only_for(generation)
            self._tickets.put(token, (generation, ticket))
        return ticket


def _young(snapshot, now):
    if snapshot.changes_at is not None and now >= snapshot.changes_at:
        return False
    return now - snapshot.taken_at < SNAPSHOT_MAX_AGE


def shared(snapshot, make, key=None):
    """``make(snapshot)``, made once per snapshot however many pages ask for it.

    For what depends on the queue alone (its view, the board's, their JSON):
    a change that wakes a thousand waiters of one queue makes it once. The
    value is shared: never change it. ``key`` names it when ``make`` is a new
    function each time.
    """
    key = make if key is None else key
    value = snapshot.derived.get(key)
    if value is None:
        with snapshot.making:  # the first thread makes it, the others wait for it
            value = snapshot.derived.get(key)
            if value is None:
                value = snapshot.derived[key] = make(snapshot)
    return value


def frozen(view):
    """A view as a hashable key: equal keys, equal pages (Application.render)."""
    return tuple(sorted(view.items()))


# -- the words of the pages -------------------------------------------------


def people(count):
    """'1 person', '3 people'."""
    return "1 person" if count == 1 else f"{count} people"


def describe_wait(estimate):
    """Words for an estimate range (``rules.estimate_wait``): 'about 2–5 minutes', or None."""
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


def describe_duration(seconds):
    """'under a minute', '3 min', '1 h 5 min'."""
    minutes = int(max(0, seconds) // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def describe_age(seconds):
    """'just now', '3 min ago', '1 h 5 min ago' for how long ago something happened."""
    return "just now" if seconds < 60 else f"{describe_duration(seconds)} ago"


def _every(per_minute):
    """'about 1 more person every 2 minutes', 'about 3 more people a minute' for a rate
    a minute (at most 'over 10 more people a minute')."""
    if per_minute > 10:
        return "over 10 more people a minute"
    if per_minute >= 0.95:
        return f"about {people(round(per_minute)).replace(' ', ' more ', 1)} a minute"
    minutes = round(1 / per_minute)
    return "about 1 more person " + ("every minute" if minutes == 1 else f"every {minutes} minutes")


def describe_flow(figures):
    """``(headline, how it was worked out)`` of ``statistics.flow`` in plain words; None
    with too little data."""
    verdict = figures["verdict"]
    if verdict is None:
        return None
    gap = figures["arrivals_per_minute"] - figures["served_per_minute"]
    if verdict == statistics.GROWING:
        headline = f"Line growing: {_every(gap)} than you serve."
    elif verdict == statistics.SHRINKING:
        headline = f"Line shrinking: you serve {_every(-gap)} than join."
    else:
        headline = "Line steady: people join about as fast as you serve them."
    servicers = figures["servicers"]
    desks = "1 desk takes" if servicers == 1 else f"{servicers} desks take"
    detail = (
        f"{people(figures['arrivals'])} joined in the last {figures['window'] // 60:g} min; "
        f"{desks} about {statistics.duration_text(figures['mean_service'])} per customer "
        f"(the last {figures['services']} served)."
    )
    return headline, detail


def numbers_served(snapshot):
    """'41, 42', or '–' when nobody is being served."""
    return ", ".join(str(s["number"]) for s in snapshot.serving) or "–"


def serving_desks(snapshot):
    """'20 at Desk 1 · 18 at Desk 5' (after the label "Now serving"), the last called first.

    A desk's words are joined by no-break spaces (a long name's own spaces
    excepted), so that a narrow screen wraps the line between desks.
    """
    if not snapshot.serving:
        return "nobody yet"
    return " \u00b7 ".join(_desk(s["number"], s["servicer_name"]) for s in snapshot.serving)


def _desk(number, name, longest=20):
    name = name.replace(" ", "\u00a0") if len(name) <= longest else name
    return f"{number}\u00a0at\u00a0{name}"


def queue_view(snapshot):
    """The queue's page: title, now serving, waiting, and whether it gives numbers."""
    notice = snapshot.closed_notice()
    return {
        "queue_id": snapshot.queue["id"],
        "title": snapshot.queue["title"],
        "version": snapshot.version,
        "now_serving": numbers_served(snapshot),
        "serving_desks": serving_desks(snapshot),
        "waiting": len(snapshot.waiting),
        "status": snapshot.queue["status"],
        # Shown when not empty (data-show="announcement", data-show="notice").
        "announcement": snapshot.queue["announcement"],
        "accepting": notice is None,
        "notice": notice or "",
    }


def ticket_view(snapshot, ticket):
    """A customer's ticket page: the queue's view and the ticket's own part."""
    return dict(shared(snapshot, queue_view), **ticket_part(snapshot, ticket))


def ticket_part(snapshot, ticket):
    """What the ticket page shows besides the queue's view: the customer's own part."""
    state = ticket["state"]
    queue = shared(snapshot, queue_view)
    view = {
        "number": ticket["number"],
        "state": state,
        "servicer_name": ticket["servicer_name"],
        "recalls": ticket["recalls"],
        "ahead": None,
        "is_next": False,
        "position": None,
        "estimate": None,
        "is_open": rules.is_open(state),
        "your_turn": state == rules.CALLED,
        "can_leave": rules.can_leave(state),
        "can_move_back": False,
        # A ticket that ended offers a new number, while the queue gives them.
        "can_take_new": not rules.is_open(state) and queue["accepting"],
    }
    if state == rules.WAITING:
        ahead = snapshot.people_ahead(ticket["number"])
        view.update(
            ahead=ahead,
            is_next=ahead == 0,
            position=ahead + 1,
            estimate=describe_wait(snapshot.estimate(ahead + 1)),
            can_move_back=rules.can_move_back(ticket, snapshot.people_behind(ticket["number"])),
        )
    view["look"] = _ticket_look(view)
    view["heading"], view["number_label"] = TICKET_HEADINGS[view["look"]]
    view["message"], view["detail"] = _ticket_words(view)
    return view


# What each look of a ticket says above its number (nothing while simply
# waiting, nor when called: its message says it all), and the number's label: an
# ended ticket says it is no longer valid, as well as looking struck through.
ENDED_LABEL = "This number is no longer valid"
TICKET_HEADINGS = {
    "waiting": ("", "Your number"),
    "next": ("Get ready", "Your number"),
    "called": ("", "Your number"),
    rules.SERVED: ("Served", ENDED_LABEL),
    rules.LEFT: ("Left the queue", ENDED_LABEL),
    rules.NO_SHOW: ("Turn passed", ENDED_LABEL),
    rules.CLEARED: ("Line cleared", ENDED_LABEL),
}


def _ticket_look(view):
    """How the ticket looks: waiting (neutral), next (amber), called (green), or
    the state it ended in (greyed, its number struck through)."""
    if view["state"] == rules.WAITING:
        return "next" if view["is_next"] else "waiting"
    return "called" if view["state"] == rules.CALLED else view["state"]


def _ticket_words(view):
    state = view["state"]
    if state == rules.CALLED:
        desk = view["servicer_name"] or "the counter"
        again = "You have been called again." if view["recalls"] else ""
        return f"It's your turn — go to {desk}.", again
    if state == rules.WAITING:
        ahead = view["ahead"]
        message = "You're next." if ahead == 0 else f"{people(ahead)} ahead of you."
        detail = f"Position in line: {view['position']}"
        if view["estimate"]:
            detail += f" · Estimated wait: {view['estimate']}"
        return message, detail
    return {
        rules.SERVED: "You have been served. Thank you!",
        rules.NO_SHOW: "You were called but not there, so your turn has passed.",
        rules.LEFT: "You left the queue.",
        rules.CLEARED: "The queue's owner cleared the line, so your number has lapsed.",
    }[state], ""


def console_view(snapshot, servicer, now):
    """A servicer's console: their customer, the line, the other desks."""
    mine = next((s for s in snapshot.serving if s["servicer_id"] == servicer["id"]), None)
    other_desks = [s for s in snapshot.serving if s["servicer_id"] != servicer["id"]]
    waiting = len(snapshot.waiting)
    if mine is None:
        called = "nobody"
    else:
        called = f"called {describe_age(now - mine['called_at'])}"
        if mine["recalls"]:
            called += f", recalled {mine['recalls']}×"
    waiting_detail = f"{people(waiting)} in line" if waiting else "Nobody is waiting."
    flow = statistics.flow(
        snapshot.arrivals, snapshot.service_durations, now, snapshot.active_servicers
    )
    growth = describe_flow(flow)
    return dict(
        shared(snapshot, queue_view),
        flow=flow["verdict"] or "",
        flow_headline=growth[0] if growth else "",
        flow_detail=growth[1] if growth else "",
        servicer_name=servicer["name"],
        is_owner=bool(servicer["is_owner"]),
        next_label="Next" if servicer["started_at"] else "Start serving",
        has_current=mine is not None,
        current_number=mine["number"] if mine else "–",
        # What the console's buttons send back, so a press made for another is refused.
        expected_current=mine["number"] if mine else None,
        called_at=mine["called_at"] if mine else None,
        called=called,
        waiting_detail=waiting_detail,
        nobody_waiting=waiting == 0,
        others="; ".join(f"{s['number']} at {s['servicer_name']}" for s in other_desks),
        waiting_line=[_in_line(ticket, now) for ticket in snapshot.line],
        # The highest number waiting: it grows with every customer who joins (the chime).
        newest_waiting=max(snapshot.waiting, default=0),
        **_undo(servicer, now),
    )


# What Undo undoes, by the button pressed (store/steps.py).
UNDO_LABELS = {
    "call_next": "Undo Next",
    "call_number": "Undo calling",
    "done": "Undo Done",
    "no_show": "Undo No show",
}


def _undo(servicer, now):
    """The console's Undo button: shown for rules.UNDO_SECONDS after a step, with its words
    ('Undo Next (41, 42)': the numbers it would put back)."""
    step = rules.last_step(servicer)
    if step is None or not rules.can_undo(servicer["last_step_at"], now):
        return {"can_undo": False, "undo_label": "Undo"}
    numbers = [ticket["number"] for ticket in step["tickets"]]
    label = f"{UNDO_LABELS[step['button']]} ({', '.join(map(str, numbers))})"
    return {"can_undo": True, "undo_label": label}


def _in_line(ticket, now):
    """One waiting number of the console's list: how long it waited, whether it let others by."""
    moves = ticket["moves_back"]
    return {
        "number": ticket["number"],
        "waited": f"waiting {describe_duration(now - ticket['taken_at'])}",
        "let_others_first": f"let others go first {moves}\u00d7" if moves else "",
    }


def board_view(snapshot):
    """The display board: the newest call, the calls before it, each desk's number.

    A recall is no new entry: it flashes the entry of the number it calls
    again (``newest_call`` changes, ``newest_recalled`` holds).
    """
    desks = [
        {"servicer_name": s["servicer_name"], "number": s["number"]}
        for s in sorted(snapshot.serving, key=lambda s: s["servicer_name"].lower())
    ]
    newest, earlier = board_calls(snapshot)
    return dict(
        shared(snapshot, queue_view),
        desks=desks,
        nobody_served=not desks,
        recent_calls=[
            {"number": c["number"], "servicer_name": c["servicer_name"], "kind": c["kind"]}
            for c in snapshot.recent_calls
        ],
        has_newest=newest is not None,
        newest_number=newest["number"] if newest else None,
        newest_desk=newest["servicer_name"] if newest else "",
        newest_recalled=bool(newest and newest["recalls"]),
        # Changes with each call and recall of the newest number: the board flashes it.
        newest_call=f"{newest['number']}/{newest['recalls']}/{newest['at']}" if newest else "",
        # How wide the newest number is, so that its type fills the screen.
        newest_digits=min(len(str(newest["number"])), 6) if newest else 1,
        # The calls before it, each number once; a number still being served
        # stands out from those already done.
        last_calls=earlier,
        no_last_calls=not earlier,
    )


def board_calls(snapshot):
    """The board's newest call, still being served, and the calls before it.

    One entry per number: its latest call or recall, with how often it was
    called again. Nobody served: no newest call, the last calls stay listed.
    """
    calls = {}
    for call in snapshot.recent_calls:  # the latest first
        entry = calls.setdefault(
            call["number"],
            {
                "number": call["number"],
                "servicer_name": call["servicer_name"] or "",
                "at": call["at"],
                "recalls": 0,
            },
        )
        entry["recalls"] += call["kind"] == "recall"
    serving = {s["number"]: s for s in snapshot.serving}
    newest = next((c for c in calls.values() if c["number"] in serving), None)
    if newest is None and snapshot.serving:  # called before the last calls began
        s = snapshot.serving[0]
        newest = {"number": s["number"], "servicer_name": s["servicer_name"] or ""}
        newest["at"] = s["called_at"]
    if newest is not None:
        newest["recalls"] = serving[newest["number"]]["recalls"]
        calls.pop(newest["number"], None)
    earlier = [
        {
            "number": c["number"],
            "servicer_name": c["servicer_name"],
            "recalls": c["recalls"],
            "serving": c["number"] in serving,
        }
        for c in calls.values()
    ]
    return newest, earlier
