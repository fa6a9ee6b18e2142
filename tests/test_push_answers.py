"""Live updates in-process: what a change costs however many wait on the queue.

Held requests are the raw WSGI app called from threads of the test, as a
server's threads would call it (no sockets needed to count what is made).
"""

import json
import os
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


def health(app):
    response = Request.blank("/api/v1/health").get_response(app)
    return response.status_int, json.loads(response.body)


def test_a_full_process_says_so_once_in_the_log_and_in_its_health(make_app, caplog):
    app = make_app(push_max_held="2")
    now = time.time()
    app.store.create_queue("busy", "Busy", "not-a-real-hash", now)
    quiet = {"held": 0, "capacity": 2, "full": False, "full_since": None, "refused": 0}
    assert health(app) == (
        200,
        {"status": "ok", "push": quiet, "processes": [dict(quiet, pid=os.getpid())]},
    )
    threads, answers = hold_all(app, ["/busy", "/busy/board"], app.store.queue_version("busy"))
    turned_away = [updates(app, "/busy", since=1) for _ in range(3)]
    assert all(view["retry_after"] == 5 for _, view in turned_away)
    full = [r for r in caplog.records if r.getMessage().startswith("push is full")]
    assert len(full) == 1 and full[0].levelname == "WARNING"
    status, said = health(app)
    assert (status, said["status"], said["push"]["full"], said["push"]["refused"]) == (
        200,
        "full",
        True,
        3,
    )
    assert said["push"]["full_since"].endswith("Z")
    assert said["processes"] == [dict(said["push"], pid=os.getpid())]

    app.store.take_ticket("busy", "a-token", time.time())  # the held pages are answered
    for thread in threads:
        thread.join(PATIENCE)
    assert health(app)[1]["status"] == "ok"


def test_the_health_of_serves_workers_is_the_whole_servers(make_app):
    """serve's workers share their push counts (prefork.SharedPush): any worker's health says
    that another is full, sums them, and lists each live worker's own."""
    import subprocess
    import sys

    from take_a_number import prefork

    shared = prefork.SharedPush(3)
    roomy, packed = make_app(push_max_held="5"), make_app(push_max_held="1")  # two workers
    shared.join(0, [roomy])
    shared.join(1, [packed])
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], stdout=-1)
    # Slot 2: a worker that has ended (not yet replaced): not shown.
    prefork.SharedPush.RECORD.pack_into(
        shared.memory, shared._offset(2, 0), int(ended.stdout), 7, 9, 3, 0.0
    )
    roomy.store.create_queue("busy", "Busy", "not-a-real-hash", time.time())
    threads, _ = hold_all(packed, ["/busy"], roomy.store.queue_version("busy"))
    assert updates(packed, "/busy/board", since=1)[1]["retry_after"] == 5  # told to poll
    status, said = health(roomy)
    assert (status, said["status"]) == (200, "full")
    push = said["push"]
    assert (push["held"], push["capacity"], push["full"], push["refused"]) == (1, 6, True, 1)
    assert push["full_since"].endswith("Z")
    assert [(p["capacity"], p["held"], p["full"]) for p in said["processes"]] == [
        (5, 0, False),
        (1, 1, True),
    ]
    assert said["processes"][1]["full_since"] == push["full_since"]
    roomy.store.take_ticket("busy", "a-token", time.time())  # the held page is answered
    for thread in threads:
        thread.join(PATIENCE)
    deadline = time.monotonic() + PATIENCE
    while health(roomy)[1]["status"] != "ok":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert health(roomy)[1]["push"]["held"] == 0


def test_a_process_at_capacity_still_tells_a_called_customer_within_a_second(make_app):
    app = make_app(push_max_held="1")
    now = time.time()
    app.store.create_queue("packed", "Packed", "not-a-real-hash", now)
    desk = app.store.sign_in("packed", "Desk 1", now)
    tokens = [app.store.take_ticket("packed", f"packed-{n}", now)["token"] for n in range(5)]
    threads, _ = hold_all(app, ["/packed/board"], app.store.queue_version("packed"))
    # Far back in line: told to poll every push_retry_seconds.
    _, far_back = updates(app, f"/packed/ticket/{tokens[4]}", since=0)
    assert far_back["retry_after"] == 5
    # Next in line: told to ask again within a second, as live.js does, until called.
    seen = {}

    def page_of_the_next_customer():
        path, since = f"/packed/ticket/{tokens[0]}", 0
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            _, view = updates(app, path, since)
            if view["state"] == "called":
                seen["called"] = time.monotonic()
                return
            since = view["version"]
            assert view["retry_after"] == 1
            time.sleep(view["retry_after"])

    customer = threading.Thread(target=page_of_the_next_customer, daemon=True)
    customer.start()
    time.sleep(0.7)
    app.store.call_next(desk, time.time())
    called = time.monotonic()
    customer.join(PATIENCE)
    for thread in threads:
        thread.join(PATIENCE)
    assert seen["called"] - called < 1.0


def test_health_is_a_503_while_the_database_does_not_answer(app, monkeypatch):
    monkeypatch.setattr(app.store, "reachable", lambda: False)
    response = Request.blank("/api/v1/health").get_response(app)
    assert response.status_int == 503
    assert json.loads(response.body)["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"] == "2"
