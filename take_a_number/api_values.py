"""The API's answers: what the pages show (views.py), with values typed for programs.

Where a page says words ("41, 42", "–", "about 2–5 minutes", "called 3 min
ago"), an answer of the API carries a value (an integer or null, seconds, an
ISO 8601 time) and keeps the words beside it.
"""

import datetime

from . import views


def invitation(invitation):
    """An invitation as the API shows it (never its code, but once when made)."""
    return {
        "id": invitation["id"],
        "name": invitation["name"],
        "created_at": utc_time(invitation["created_at"]),
        "expires_at": utc_time(invitation["expires_at"]),
        "signed_in": bool(invitation["signed_in"]),
    }


def utc_time(seconds):
    """A moment (seconds since the epoch) as ISO 8601 in UTC, 2026-12-01T10:59:24Z; or None."""
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def queue_values(snapshot):
    """What the API says as values where a queue's pages say words: who is served
    (the number called last, or null; ``now_serving_text`` the page's '41, 42' or '–')."""
    return {
        "now_serving": snapshot.serving[0]["number"] if snapshot.serving else None,
        "now_serving_text": views.numbers_served(snapshot),
    }


def queue_answer(snapshot):
    """A queue's view (views.queue_view) with typed values."""
    return dict(views.queue_view(snapshot), **queue_values(snapshot))


def board_answer(snapshot):
    """The display board's view (views.board_view) with typed values."""
    return dict(views.board_view(snapshot), **queue_values(snapshot))


def console_answer(snapshot, servicer, now):
    """A servicer's console (views.console_view) with typed values: the number
    called, or null; when, in ISO 8601; the line's flow, or null with too little data."""
    view = views.console_view(snapshot, servicer, now)
    return dict(
        view,
        **queue_values(snapshot),
        current_number=view["current_number"] if view["has_current"] else None,
        called_at=utc_time(view["called_at"]),
        flow=view["flow"] or None,
    )


def queue_status(snapshot):
    """A queue's public status: title, who is served by whom, how many wait."""
    return dict(
        queue_answer(snapshot),
        serving=[
            {"number": s["number"], "servicer_name": s["servicer_name"]} for s in snapshot.serving
        ],
    )


def jsonable(value):
    """The statistics report as JSON: tuples become lists, keys become text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
