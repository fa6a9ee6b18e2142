"""What the ticket page, the servicer console and the board show, as plain dicts.

The HTML templates and the live JSON updates render the same dicts, so a page
and its updates never disagree. Snapshots of a queue are cached per version:
however many people watch a queue, it is read once per change.
"""

import collections
import threading

from . import rules, statistics

# A snapshot also goes stale with time (the wait estimate counts recently
# active servicers), so it is re-read at least this often, and at once when
# the queue opens or closes by its hours (Snapshot.changes_at).
SNAPSHOT_MAX_AGE = 60
CACHED_QUEUES = 1000
CACHED_TICKETS = 20_000
# A controller sets this in the environ when the whole answer to its GET may be
# given again, from memory, while the store's generation stays the same
# (Application._remember).
REMEMBER = "take_a_number.remember"


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
        self._cache = collections.OrderedDict()  # queue id: (generation, snapshot)
        self._tickets = {}  # token: (generation, ticket), of the latest generation seen
        self._tickets_generation = None
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
            self._cache[queue_id] = (generation, snapshot)
            self._cache.move_to_end(queue_id)
            while len(self._cache) > CACHED_QUEUES:
                self._cache.popitem(last=False)
        return snapshot

    def version(self, queue_id):
        """The queue's version, from memory while the store's generation is the same."""
        cached = self._cache.get(queue_id)
        if cached is not None and cached[0] == self.store.generation():
            return cached[1].version
        return self.store.queue_version(queue_id)

    def ticket(self, token):
        """The ticket with this token (and its servicer's name), or None."""
        generation = self.store.generation()
        cached = self._tickets.get(token)
        if cached is not None and cached[0] == generation:
            return cached[1]
        ticket = self.store.ticket_by_token(token)
        if ticket is not None:
            if generation != self._tickets_generation or len(self._tickets) >= CACHED_TICKETS:
                # Those of an older generation would never be served again: on a
                # busy day they were most of the cache, and of the server's memory.
                self._tickets.clear()
                self._tickets_generation = generation
            self._tickets[token] = (generation, ticket)
        return ticket


def _young(snapshot, now):
    if snapshot.changes_at is not None and now >= snapshot.changes_at:
        return False
    return now - snapshot.taken_at < SNAPSHOT_MAX_AGE


def frozen(view):
    """A view as a hashable key: equal keys, equal pages (Application.render)."""
    return tuple(sorted(view.items()))


def people(count):
    """'1 person', '3 people'."""
    return "1 person" if count == 1 else f"{count} people"


def numbers_served(snapshot):
    """'41, 42', or '–' when nobody is being served."""
    return ", ".join(str(s["number"]) for s in snapshot.serving) or "–"


def queue_view(snapshot):
    """The queue's page: title, now serving, waiting, and whether it gives numbers."""
    notice = snapshot.closed_notice()
    return {
        "queue_id": snapshot.queue["id"],
        "title": snapshot.queue["title"],
        "version": snapshot.version,
        "now_serving": numbers_served(snapshot),
        "waiting": len(snapshot.waiting),
        "status": snapshot.queue["status"],
        "announcement": snapshot.queue["announcement"],
        "accepting": notice is None,
        "notice": notice or "",
    }


def ticket_view(snapshot, ticket):
    """A customer's ticket page."""
    state = ticket["state"]
    view = dict(
        queue_view(snapshot),
        number=ticket["number"],
        state=state,
        servicer_name=ticket["servicer_name"],
        recalls=ticket["recalls"],
        ahead=None,
        position=None,
        estimate=None,
        is_open=rules.is_open(state),
        can_leave=rules.can_leave(state),
        can_move_back=False,
    )
    if state == rules.WAITING:
        ahead = snapshot.people_ahead(ticket["number"])
        view.update(
            ahead=ahead,
            position=ahead + 1,
            estimate=rules.describe_wait(snapshot.estimate(ahead + 1)),
            can_move_back=rules.can_move_back(ticket, snapshot.people_behind(ticket["number"])),
        )
    view["message"], view["detail"] = _ticket_words(view)
    return view


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
    others = [s for s in snapshot.serving if s["servicer_id"] != servicer["id"]]
    waiting = len(snapshot.waiting)
    if mine is None:
        called = "nobody"
    else:
        called = f"called {rules.describe_age(now - mine['called_at'])}"
        if mine["recalls"]:
            called += f", recalled {mine['recalls']}×"
    waiting_detail = f"{people(waiting)} in line" if waiting else "Nobody is waiting."
    flow = statistics.flow(
        [{"taken_at": t} for t in snapshot.arrivals],
        now,
        active_servicers=snapshot.active_servicers,
        service_durations=snapshot.service_durations,
    )
    growth = statistics.describe_flow(flow)
    return dict(
        queue_view(snapshot),
        flow=flow["verdict"] or "",
        flow_headline=growth[0] if growth else "",
        flow_detail=growth[1] if growth else "",
        servicer_name=servicer["name"],
        is_owner=bool(servicer["is_owner"]),
        next_label="Next" if servicer["started_at"] else "Start serving",
        has_current=mine is not None,
        current_number=mine["number"] if mine else "–",
        called_at=mine["called_at"] if mine else None,
        called=called,
        waiting_detail=waiting_detail,
        others="; ".join(f"{s['number']} at {s['servicer_name']}" for s in others),
    )


def board_view(snapshot):
    """The display board: each desk's number and the last calls."""
    return dict(
        queue_view(snapshot),
        desks=[
            {"servicer_name": s["servicer_name"], "number": s["number"]}
            for s in sorted(snapshot.serving, key=lambda s: s["servicer_name"].lower())
        ],
        recent_calls=[
            {"number": c["number"], "servicer_name": c["servicer_name"], "kind": c["kind"]}
            for c in snapshot.recent_calls
        ],
    )
