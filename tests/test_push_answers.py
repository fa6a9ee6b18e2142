"""Live updates in-process: what a change costs however many wait on the queue.

Held requests are the raw WSGI app called from threads of the test, as a
server's threads would call it (no sockets needed to count what is made).
"""

import json
import threading
import time

from webob import Request

from take_a_number import push, views

WAITING = 60
PATIENCE = 30


def updates(app, path, since=None):
    query = "" if since is None else f"?since={since}"
    response = Request.blank(f"{path}/updates{query}").get_response(app)
    return response.status_int, json.loads(response.body)


def hold_all(app, paths, since):
    """Each path's updates held on threads of their own; returns {path: answer} when done."""
    answers = {}

    def hold(path):
        answers[path] = updates(app, path, since)

    threads = [threading.Thread(target=hold, args=(path,), daemon=True) for path in paths]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + PATIENCE
    while app.updates.hub.held < len(paths):
        assert time.monotonic() < deadline, f"{app.updates.hub.held} of {len(paths)} held"
        time.sleep(0.005)
    return threads, answers


def counting(monkeypatch, module, name):
    """Count the calls of ``module.name`` (a list of the calls' first arguments)."""
    calls, original = [], getattr(module, name)

    def counted(first, *args, **kwargs):
        calls.append(first)
        return original(first, *args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_change_with_many_waiting_makes_the_queues_part_of_their_answer_once(app, monkeypatch):
    now = time.time()
    app.store.create_queue("crowd", "Crowd", "not-a-real-hash", now)
    tokens = [app.store.take_ticket("crowd", f"token-{n}", now)["token"] for n in range(WAITING)]
    paths = [f"/crowd/ticket/{token}" for token in tokens[1:]]
    since = app.store.queue_version("crowd")
    queue_views = counting(monkeypatch, views, "queue_view")
    board_views = counting(monkeypatch, views, "board_view")
    threads, answers = hold_all(app, paths + ["/crowd", "/crowd/board"], since)
    tickets_read = counting(monkeypatch, app.store, "ticket_by_token")

    app.store.leave(tokens[0], time.time())  # everyone moves up one place
    for thread in threads:
        thread.join(PATIENCE)

    version = app.store.queue_version("crowd")
    for place, path in enumerate(paths, start=1):
        status, view = answers[path]
        assert status == 200
        assert (view["version"], view["position"], view["waiting"]) == (
            version,
            place,
            WAITING - 1,
        )
        # Every field of the page's view, as the page itself would show it.
        ticket = app.store.ticket_by_token(path.rsplit("/", 1)[1])
        snapshot = app.snapshots.get("crowd", app.now())
        assert view == views.ticket_view(snapshot, ticket)
    assert answers["/crowd"][1]["waiting"] == WAITING - 1
    assert answers["/crowd/board"][1]["version"] == version
    # One queue view and one board for the new version, however many waited;
    # and no waiter read its own ticket from the database.
    assert len(queue_views) == 1
    assert len(board_views) == 1
    assert len(tickets_read) == len(paths)  # the test's own reads above, no more


def test_the_joined_answer_is_the_json_of_the_whole_view(app):
    now = time.time()
    app.store.create_queue("joined", "Joined – “quoted”", "not-a-real-hash", now)
    app.store.take_ticket("joined", "a-token", now)
    ticket = app.store.ticket_by_token("a-token")
    snapshot = app.snapshots.get("joined", now)
    own = views.ticket_part(snapshot, app.snapshots.ticket_of(snapshot, "a-token"))
    text = push.joined_json(snapshot, views.queue_view, own)
    assert json.loads(text) == views.ticket_view(snapshot, ticket)
    assert text == push.dumps(dict(views.queue_view(snapshot), **own))
    assert push.joined_json(snapshot, views.queue_view, {}) == push.dumps(
        views.queue_view(snapshot)
    )
