"""Push: held update requests against a real waitress server in a child process."""

import bisect
import http.client
import json
import math
import re
import socket
import threading
import time
import types
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
from hosting_support import Processes, free_port, program, server_env
from server_support import PASSWORD, Server

from take_a_number.push import HOLD_JITTER
from take_a_number.store import Store

pytestmark = pytest.mark.slow

HOLD_SECONDS = 3
MAX_HELD = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(
        tmp_path_factory.mktemp("push"),
        settings={"push_max_held": MAX_HELD, "push_hold_seconds": HOLD_SECONDS},
        threads=MAX_HELD + 8,
    ).start()
    yield server
    server.stop()


class Client:
    """A browser without JavaScript: cookies, forms and JSON, over real sockets."""

    def __init__(self, server):
        self.url = server.url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, path):
        with self.opener.open(self.url + path, timeout=30) as response:
            return response.geturl(), response.read().decode()

    def post(self, path, form_page, **fields):
        token = re.search(r'name="csrf_token" value="([^"]+)"', form_page).group(1)
        data = urllib.parse.urlencode(dict(fields, csrf_token=token)).encode()
        with self.opener.open(self.url + path, data=data, timeout=30) as response:
            return response.geturl(), response.read().decode()

    def updates(self, path, since=None):
        query = "" if since is None else f"?since={since}"
        started = time.monotonic()
        try:
            with self.opener.open(self.url + path + "/updates" + query, timeout=60) as response:
                body, headers = json.loads(response.read()), response.headers
        except urllib.error.HTTPError as error:
            body, headers = json.loads(error.read()), error.headers
        return body, headers, time.monotonic() - started


def create_queue(server, queue_id):
    owner = Client(server)
    _, home = owner.get("/")
    owner.post(
        "/", home, queue_id=queue_id, title=f"Queue {queue_id}", password=PASSWORD, name="Desk 1"
    )
    return owner


def take_number(server, queue_id):
    customer = Client(server)
    _, page = customer.get(f"/{queue_id}")
    ticket_url, _ = customer.post(f"/{queue_id}/take", page)
    return customer, urllib.parse.urlsplit(ticket_url).path


def press_next(owner, queue_id):
    _, console = owner.get(f"/{queue_id}/serve")
    owner.post(f"/{queue_id}/serve/next", console)
    return time.monotonic()


def in_background(function, *args):
    """Run ``function`` in a thread; the returned dict gets its result and receipt time."""
    outcome = {}

    def run():
        outcome["result"] = function(*args)
        outcome["received"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    outcome["thread"] = thread
    return outcome


def test_a_waiting_customer_is_woken_the_moment_they_are_called(server):
    owner = create_queue(server, "wake")
    customer, ticket = take_number(server, "wake")
    view, _, _ = customer.updates(ticket)
    assert view["state"] == "waiting"
    held = in_background(customer.updates, ticket, view["version"])
    time.sleep(0.5)
    assert held["thread"].is_alive(), "the update request should be held until a change"
    pressed = press_next(owner, "wake")
    held["thread"].join(timeout=5)
    woken, _, _ = held["result"]
    assert woken["state"] == "called"
    assert woken["message"] == "It's your turn — go to Desk 1."
    assert woken["version"] > view["version"]
    assert held["received"] - pressed < 1.0


def test_a_change_made_by_another_process_wakes_waiters(server):
    create_queue(server, "cross")
    customer, ticket = take_number(server, "cross")
    view, _, _ = customer.updates(ticket)
    held = in_background(customer.updates, ticket, view["version"])
    time.sleep(0.5)
    assert held["thread"].is_alive()
    # This test process is not the server: it writes to the same file directly.
    store = Store(server.database)
    servicer = store.sign_in("cross", "Desk 9", time.time())
    store.call_next(servicer, time.time())
    changed = time.monotonic()
    held["thread"].join(timeout=5)
    woken, _, _ = held["result"]
    assert woken["state"] == "called"
    assert woken["servicer_name"] == "Desk 9"
    assert held["received"] - changed < 1.0
    store.close()


def test_without_a_change_the_hold_ends_after_push_hold_seconds(server):
    create_queue(server, "quiet")
    customer, ticket = take_number(server, "quiet")
    view, _, _ = customer.updates(ticket)
    again, headers, elapsed = customer.updates(ticket, view["version"])
    # Holds end at a random moment in their last fifth, so they don't end together.
    assert HOLD_SECONDS * (1 - HOLD_JITTER) - 0.3 < elapsed < HOLD_SECONDS + 2
    assert again["version"] == view["version"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Accel-Buffering"] == "no"


def test_beyond_the_cap_updates_answer_at_once_and_pages_stay_fast(server):
    owner = create_queue(server, "full")
    customer, ticket = take_number(server, "full")
    view, _, _ = customer.updates(ticket)
    held = [in_background(customer.updates, ticket, view["version"]) for _ in range(MAX_HELD)]
    time.sleep(0.5)
    assert all(h["thread"].is_alive() for h in held)

    refused, headers, elapsed = customer.updates(ticket, view["version"])
    assert elapsed < 1.0
    assert refused["retry_after"] == 5
    assert headers["Retry-After"] == "5"
    assert refused["state"] == "waiting"  # the view comes all the same

    for path in ("/", "/full", ticket, "/full/board", "/static/style.css"):
        started = time.monotonic()
        Client(server).get(path)
        assert time.monotonic() - started < 1.0, path

    press_next(owner, "full")
    for h in held:
        h["thread"].join(timeout=5)
        assert h["result"][0]["state"] == "called"


def hold_raw(server, path):
    """Send a held request on a raw socket, and return the socket (still open)."""
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def test_clients_that_hang_up_are_released(server):
    create_queue(server, "gone")
    customer, ticket = take_number(server, "gone")
    view, _, _ = customer.updates(ticket)
    sockets = [
        hold_raw(server, f"{ticket}/updates?since={view['version']}") for _ in range(MAX_HELD)
    ]
    time.sleep(0.5)
    full, _, _ = customer.updates(ticket, view["version"])
    assert full.get("retry_after") == 5, "the cap should be reached"
    for sock in sockets:
        sock.close()
    # Within the disconnect check interval, their threads and places come back.
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        held = in_background(customer.updates, ticket, view["version"])
        time.sleep(0.3)
        if held["thread"].is_alive():
            break
    else:
        raise AssertionError("hung-up requests were never released")
    held["thread"].join(timeout=HOLD_SECONDS + 2)


def test_bad_since_and_unknown_tickets_get_json_errors(server):
    create_queue(server, "errors")
    customer, ticket = take_number(server, "errors")
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(server.url).netloc, timeout=10)
    conn.request("GET", f"{ticket}/updates?since=soon")
    response = conn.getresponse()
    assert response.status == 400
    assert json.loads(response.read())["error"]["code"] == "bad_request"
    conn.request("GET", "/errors/ticket/nope/updates")
    response = conn.getresponse()
    assert response.status == 404
    assert json.loads(response.read()) == {
        "error": {"code": "not_found", "message": "There is no such ticket."}
    }
    conn.close()


# -- a busy server -----------------------------------------------------------------

BUSY_SECONDS = 20
CHANGE_PAUSE = 0.02  # between one change's answer and the next change


class Follower:
    """A live page following its updates, as live.js does: each answer's moment and version."""

    def __init__(self, client, path):
        self.client, self.path = client, path
        self.heard = []  # (time.monotonic() at receipt, version)
        self.failures = []

    def follow(self, stop):
        try:
            since = None
            while not stop.is_set():
                view, _, _ = self.client.updates(self.path, since)
                self.heard.append((time.monotonic(), view["version"]))
                since = view["version"]
        except Exception as error:  # noqa: BLE001 - reported by the test
            self.failures.append(error)

    def delay(self, version, made):
        """Seconds from a change made at ``made`` to the first answer with its version."""
        versions = [heard_version for _, heard_version in self.heard]
        first = bisect.bisect_left(versions, version)
        return self.heard[first][0] - made if first < len(self.heard) else math.inf


def test_on_a_busy_server_every_live_page_hears_each_change_within_a_second(tmp_path):
    server = Server(tmp_path, settings={"push_max_held": 60}, threads=80).start()
    store = Store(server.database)
    try:
        owner = create_queue(server, "busy")
        customers = [take_number(server, "busy") for _ in range(20)]
        followers = {
            "ticket": [Follower(customer, ticket) for customer, ticket in customers],
            "console": [Follower(owner, "/busy/serve")],
            "board": [Follower(Client(server), "/busy/board") for _ in range(4)],
            "queue page": [Follower(Client(server), "/busy") for _ in range(4)],
        }
        stop = threading.Event()
        threads = [
            threading.Thread(target=follower.follow, args=(stop,), daemon=True)
            for kind in followers.values()
            for follower in kind
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)

        changes = []  # (version, when its answer had come back)
        ends = time.monotonic() + BUSY_SECONDS
        while time.monotonic() < ends:
            if len(changes) % 2:
                press_next(owner, "busy")
            else:
                take_number(server, "busy")
            changes.append((store.queue_version("busy"), time.monotonic()))
            time.sleep(CHANGE_PAUSE)
        time.sleep(1.5)
        stop.set()
        press_next(owner, "busy")  # answers everyone still held
        for thread in threads:
            thread.join(timeout=10)

        assert len(changes) > 5 * BUSY_SECONDS
        for kind, some in followers.items():
            for follower in some:
                assert not follower.failures, (kind, follower.failures)
                delays = [follower.delay(version, made) for version, made in changes]
                late = [(n, round(d, 2)) for n, d in enumerate(delays) if d > 1.0]
                assert not late, f"{kind} {follower.path}: changes heard late: {late[:10]}"
    finally:
        store.close()
        server.stop()


# -- a server with few threads -------------------------------------------------------

# What an integrator writes to serve the app with a bare waitress-serve.
WAITRESS_SERVE_MODULE = """\
from take_a_number import main

application = main({})
"""


@pytest.fixture
def waitress_serve(tmp_path):
    """``waitress-serve --threads=4`` (waitress's default) serving the app with its
    default settings (push_max_held = 500); yields its URL and its process."""
    (tmp_path / "site_app.py").write_text(WAITRESS_SERVE_MODULE)
    port = free_port()
    with Processes() as start:
        process = start(
            [program("waitress-serve"), "--threads=4", f"--port={port}", "site_app:application"],
            tmp_path / "waitress.log",
            cwd=tmp_path,
            env=server_env(
                PYTHONPATH=tmp_path, TAKE_A_NUMBER_DATABASE=tmp_path / "var" / "queues.sqlite"
            ),
        )
        url = f"http://127.0.0.1:{port}"
        process.wait_until_it_answers(url + "/")
        yield types.SimpleNamespace(url=url), process


def test_under_waitress_serve_with_four_threads_held_updates_leave_threads_for_pages(
    waitress_serve,
):
    server, process = waitress_serve
    owner = create_queue(server, "few")
    customer, ticket = take_number(server, "few")
    view, _, _ = customer.updates(ticket)
    # Four live pages, as many as the server has threads.
    pages = [in_background(customer.updates, ticket, view["version"]) for _ in range(4)]
    time.sleep(1)
    started = time.monotonic()
    for path in ("/", "/few", ticket):
        Client(server).get(path)
    assert time.monotonic() - started < 1.0, "pages waited for the held live updates"

    # Two are held (4 threads, half kept for pages); the others were told to ask again.
    assert sum(page["thread"].is_alive() for page in pages) == 2
    assert [page["result"][0]["retry_after"] for page in pages if "result" in page] == [5, 5]
    assert (
        "the server has 4 threads: push_max_held = 500 held live updates could take them all, "
        "so this process holds at most 2" in process.log()
    )
    assert "give the server at least 508 threads" in process.log()

    press_next(owner, "few")
    for page in pages:
        page["thread"].join(timeout=5)
        assert page["result"][0]["state"] == "called" or page["result"][0]["retry_after"] == 5
