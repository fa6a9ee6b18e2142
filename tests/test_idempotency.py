"""Retrying an API POST with its Idempotency-Key never acts twice, in any process."""

import json
import threading
import urllib.request

import browser_support
import pytest
from test_api import Api, create_queue

KEY = {"Idempotency-Key": "5f0c1d9e-7a3b-4c2e-9f1a-0b8d6e4c2a71"}
OTHER_KEY = {"Idempotency-Key": "a7e3c9b1-2d4f-4e6a-8c0b-1f3e5d7a9c2b"}


@pytest.fixture
def api(app):
    return Api(app)


@pytest.fixture
def two_processes(make_app):
    """Two apps on one database file: what two server processes share is the file."""
    first, second = make_app(), make_app()
    yield Api(first), Api(second)
    first.close()
    second.close()


def options(announcement):
    return {"announcement": announcement, "max_waiting": 5, "no_show_policy": "end"}


def waiting(api):
    return api("get", "/queues/lab").json["waiting"]


def test_a_retried_take_gets_the_same_ticket_even_from_another_process(two_processes):
    one, other = two_processes
    create_queue(one)
    taken = one("post", "/queues/lab/tickets", headers=KEY, status=201)
    retried = other("post", "/queues/lab/tickets", headers=KEY, status=201)
    assert retried.json == taken.json
    assert retried.location == taken.location
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in taken.headers
    assert waiting(one) == 1
    # Without a key, or with another, a take is a new number.
    assert one("post", "/queues/lab/tickets", status=201).json["number"] == 2
    assert other("post", "/queues/lab/tickets", headers=OTHER_KEY, status=201).json["number"] == 3


def test_a_retried_next_calls_one_customer_even_from_another_process(two_processes):
    one, other = two_processes
    token = create_queue(one)["token"]
    for _ in range(3):
        one("post", "/queues/lab/tickets", status=201)
    pressed = one("post", "/queues/lab/next", token=token, headers=KEY)
    retried = other("post", "/queues/lab/next", token=token, headers=KEY)
    assert retried.json == pressed.json
    assert pressed.json["current_number"] == 1
    console = other("get", "/queues/lab/console", token=token).json
    assert (console["current_number"], console["waiting"]) == (1, 2)


def test_the_answer_is_kept_across_a_restart(make_app):
    first = make_app()
    api = Api(first)
    create_queue(api)
    taken = api("post", "/queues/lab/tickets", headers=KEY, status=201).json
    first.close()
    restarted = Api(make_app())
    assert restarted("post", "/queues/lab/tickets", headers=KEY, status=201).json == taken
    assert waiting(restarted) == 1


def test_a_key_sent_again_with_another_body_is_refused_and_changes_nothing(two_processes):
    one, other = two_processes
    token = create_queue(one)["token"]
    one("post", "/queues/lab/options", json=options("Back at 2"), token=token, headers=KEY)
    refused = other(
        "post",
        "/queues/lab/options",
        json=options("Closed today"),
        token=token,
        headers=KEY,
        status=409,
    ).json["error"]
    assert refused["code"] == "idempotency_key_reused"
    assert "another request body" in refused["message"]
    assert other("get", "/queues/lab/settings", token=token).json["announcement"] == "Back at 2"


def test_the_same_json_spaced_or_ordered_otherwise_is_the_same_body(api):
    token = create_queue(api)["token"]
    body = options("Back at 2")
    first = api("post", "/queues/lab/options", json=body, token=token, headers=KEY)
    retried = api(
        "post",
        "/queues/lab/options",
        token=token,
        headers=dict(KEY, **{"Content-Type": "application/json"}),
        body=b'{ "no_show_policy": "end",\n  "max_waiting": 5, "announcement": "Back at 2" }',
    )
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json == first.json


def test_one_client_never_gets_another_clients_answer_under_the_same_key(api, new_browser):
    owner = create_queue(api)["token"]
    staff = api("post", "/queues/lab/tokens", json={"name": "Desk 2"}, token=owner, status=201)
    for _ in range(3):
        api("post", "/queues/lab/tickets", status=201)
    # Two servicers (two tokens), one key: each presses Next once.
    mine = api("post", "/queues/lab/next", token=owner, headers=KEY).json
    theirs = api("post", "/queues/lab/next", token=staff.json["token"], headers=KEY).json
    assert (mine["current_number"], theirs["current_number"]) == (1, 2)
    # Two customers at two addresses, one key: two tickets, neither sees the other's token.
    first = api("post", "/queues/lab/tickets", headers=KEY, status=201).json
    elsewhere = Api(api.client.app)
    elsewhere.client.extra_environ = {"REMOTE_ADDR": "192.0.2.7"}
    second = elsewhere("post", "/queues/lab/tickets", headers=KEY, status=201).json
    assert second["token"] != first["token"]
    # The same key on another path is another request.
    create_queue(api, "lab-two")
    assert api("post", "/queues/lab-two/tickets", headers=KEY, status=201).json["number"] == 1


@pytest.mark.parametrize(
    "key, problem",
    [("", "empty"), ("   ", "empty"), ("k" * 256, "255"), ("clé-1", "ASCII"), ("a\tb", "ASCII")],
)
def test_a_bad_key_is_a_400_and_nothing_is_taken(api, key, problem):
    create_queue(api)
    refused = api("post", "/queues/lab/tickets", headers={"Idempotency-Key": key}, status=400).json[
        "error"
    ]
    assert refused["code"] == "bad_request"
    assert problem in refused["message"]
    assert waiting(api) == 0


def test_a_key_of_255_characters_is_taken(api):
    create_queue(api)
    api("post", "/queues/lab/tickets", headers={"Idempotency-Key": "k" * 255}, status=201)


def test_while_the_first_request_acts_a_retry_is_told_to_wait_then_gets_its_answer(make_app):
    first_app, second_app = make_app(), make_app()
    one, other = Api(first_app), Api(second_app)
    create_queue(one)
    started, finish = threading.Event(), threading.Event()
    take = first_app.actions.take

    def slow_take(*args, **kwargs):
        started.set()
        assert finish.wait(10)
        return take(*args, **kwargs)

    first_app.actions.take = slow_take
    answers = []
    thread = threading.Thread(
        target=lambda: answers.append(
            one("post", "/queues/lab/tickets", headers=KEY, status=201).json
        )
    )
    thread.start()
    try:
        assert started.wait(10)
        busy = other("post", "/queues/lab/tickets", headers=KEY, status=409)
        assert busy.json["error"]["code"] == "in_progress"
        assert busy.headers["Retry-After"] == "1"
    finally:
        finish.set()
        thread.join(10)
    assert other("post", "/queues/lab/tickets", headers=KEY, status=201).json == answers[0]
    assert waiting(other) == 1


def test_a_key_whose_request_died_unanswered_can_be_used_again_a_minute_later(app, api):
    create_queue(api)
    now = [1_000_000.0]
    app.clock = lambda: now[0]
    app.store.keep_idempotent_answer = lambda *args: None  # the process died before keeping it
    api("post", "/queues/lab/tickets", headers=KEY, status=201)
    api("post", "/queues/lab/tickets", headers=KEY, status=409)
    now[0] += 61
    assert api("post", "/queues/lab/tickets", headers=KEY, status=201).json["number"] == 2


def test_a_key_expires_after_a_day(app, api):
    create_queue(api)
    now = [1_000_000.0]
    app.clock = lambda: now[0]
    api("post", "/queues/lab/tickets", headers=KEY, status=201)
    now[0] += 24 * 3600 - 1
    assert api("post", "/queues/lab/tickets", headers=KEY, status=201).json["number"] == 1
    now[0] += 2
    assert api("post", "/queues/lab/tickets", headers=KEY, status=201).json["number"] == 2
    # The expired row is gone, not only ignored.
    assert app.store.engine.scalar("SELECT count(*) FROM idempotency_keys") == 1


def test_a_refusal_is_kept_but_a_rate_limit_is_not(make_app):
    app = make_app(rate_limit_take_ticket_per_address="1/hour")
    api = Api(app)
    token = create_queue(api)["token"]
    api("post", "/queues/lab/status", json={"status": "paused"}, token=token)
    api("post", "/queues/lab/tickets", headers=KEY, status=409)
    api("post", "/queues/lab/status", json={"status": "open"}, token=token)
    # The same request is the same answer: a refusal too (send a new key to try anew).
    kept = api("post", "/queues/lab/tickets", headers=KEY, status=409)
    assert kept.headers["Idempotent-Replayed"] == "true"
    api("post", "/queues/lab/tickets", headers=OTHER_KEY, status=201)
    limited = {"Idempotency-Key": "third"}
    api("post", "/queues/lab/tickets", headers=limited, status=429)
    retried = api("post", "/queues/lab/tickets", headers=limited, status=429)
    assert "Idempotent-Replayed" not in retried.headers  # it asked again, and was counted again


def test_a_key_on_other_methods_is_ignored(api):
    create_queue(api)
    ticket = api("post", "/queues/lab/tickets", status=201).json
    api("delete", f"/tickets/{ticket['token']}", headers=KEY)
    api("delete", f"/tickets/{ticket['token']}", headers=KEY, status=409)
    api("get", "/queues/lab", headers={"Idempotency-Key": ""})


def test_every_post_of_the_document_takes_an_idempotency_key(api):
    for path, operations in api.document["paths"].items():
        for method, operation in operations.items():
            if method == "post":
                names = {p["name"] for p in operation.get("parameters", [])}
                assert "Idempotency-Key" in names, path
                assert "409" in operation["responses"], path


def test_a_retry_sent_to_another_server_process_gets_the_first_answer(server, make_app, queue_id):
    """The first request to a waitress server in its own process, its retry to this one."""

    def post(path, token=None, headers=()):
        request = urllib.request.Request(
            f"{server.url}/api/v1{path}",
            data=b"{}",
            method="POST",
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {token}"} if token else {}),
                **dict(headers),
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    body = {"queue_id": queue_id, "title": "Lab", "password": "correct horse", "name": "Desk 1"}
    token = browser_support.api(server, "/api/v1/queues", **body)["token"]
    taken = post(f"/queues/{queue_id}/tickets", headers=KEY)
    browser_support.api(server, f"/api/v1/queues/{queue_id}/tickets")
    pressed = post(f"/queues/{queue_id}/next", token, KEY)
    here = Api(make_app(database=server.database))
    here.client.extra_environ = {"REMOTE_ADDR": "127.0.0.1"}  # the same client as above
    again = here("post", f"/queues/{queue_id}/tickets", json={}, headers=KEY, status=201)
    assert (again.json, again.headers["Idempotent-Replayed"]) == (taken, "true")
    assert here("post", f"/queues/{queue_id}/next", json={}, token=token, headers=KEY).json == (
        pressed
    )
    console = here("get", f"/queues/{queue_id}/console", token=token).json
    assert (console["current_number"], console["waiting"]) == (1, 1)
