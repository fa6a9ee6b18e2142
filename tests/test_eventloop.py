"""The epoll loop serve runs waitress with (eventloop.py): every request answered,
with the once-a-second full pass turned off, so that a state change the loop
failed to note would hang a request instead of being picked up by the safety net."""

import concurrent.futures
import http.client
import random
import socket
import threading
import time

import pytest

from take_a_number import eventloop

pytestmark = pytest.mark.skipif(not eventloop.AVAILABLE, reason="epoll is Linux's")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/slow":  # answered by the thread while the loop sleeps
        time.sleep(random.uniform(0, 0.005))
    if path == "/big":
        body = b"x" * (4 * 1024 * 1024)
    elif path == "/held":
        disconnected = environ["waitress.client_disconnected"]
        while not disconnected():
            time.sleep(0.01)
        HELD_GONE.set()
        body = b""
    else:
        body = path.encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


HELD_GONE = threading.Event()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(eventloop, "FULL_PASS_SECONDS", 10**9)  # no safety net
    started = []

    def start(**settings):
        server = eventloop.make_server(
            app, host="127.0.0.1", port=0, threads=8, channel_request_lookahead=5, **settings
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.task_dispatcher.shutdown(timeout=1)
        server.close()


def get(connection, path):
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def test_every_request_on_many_kept_alive_connections_is_answered(server):
    port = server().effective_port

    def client(n):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            return [get(connection, f"/slow?{n}-{i}") for i in range(20)]
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(client, range(40)))
    assert all(answer == [(200, b"/slow")] * 20 for answer in answers)


def test_the_loop_only_made_its_first_full_pass(server):
    running = server()
    connection = http.client.HTTPConnection("127.0.0.1", running.effective_port, timeout=10)
    for _ in range(50):
        assert get(connection, "/slow") == (200, b"/slow")
    assert running.asyncore.full_passes == 1


def test_pipelined_requests_are_answered_in_order(server):
    port = server().effective_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"".join(f"GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(4)))
        received = b""
        while received.count(b"HTTP/1.1 200") < 4 or not received.endswith(b"/3"):
            chunk = s.recv(65536)
            assert chunk, received
            received += chunk
    bodies = [part.rsplit(b"\r\n\r\n", 1)[-1] for part in received.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [b"/0", b"/1", b"/2", b"/3"]


def test_a_big_answer_to_a_reader_that_waits_arrives_whole(server):
    # More than the sockets' buffers hold: the loop writes the rest when it can.
    port = server().effective_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)
        received = b""
        while len(received.partition(b"\r\n\r\n")[2]) < 4 * 1024 * 1024:
            chunk = s.recv(1 << 20)
            assert chunk
            received += chunk
    assert received.split(b"\r\n\r\n", 1)[1] == b"x" * (4 * 1024 * 1024)


def test_a_held_request_learns_that_its_client_went_away(server):
    HELD_GONE.clear()
    port = server().effective_port
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    s.close()
    assert HELD_GONE.wait(10)


def test_the_connection_limit_holds_and_frees_again(server):
    # waitress counts its listening socket and its trigger among the connections.
    port = server(connection_limit=5).effective_port
    first = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(3)]
    for connection in first:
        assert get(connection, "/a") == (200, b"/a")
    # A fourth connection waits in the backlog until one of the three closes.
    waiting = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        later = pool.submit(get, waiting, "/b")
        time.sleep(0.5)
        assert not later.done()
        first[0].close()
        assert later.result(timeout=10) == (200, b"/b")
    for connection in first[1:] + [waiting]:
        connection.close()


def test_a_pass_looks_at_the_connections_that_moved_not_at_every_open_one(server):
    running = server()
    port, loop = running.effective_port, running.asyncore
    idle = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(60)]
    for connection in idle:
        assert get(connection, "/a") == (200, b"/a")
    looked_at = []
    update = loop._update
    loop._update = lambda fd, obj: (looked_at.append(fd), update(fd, obj))
    busy = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(5):
        assert get(busy, "/b") == (200, b"/b")
    # The busy connection, the listening socket and the trigger, pass after pass;
    # waitress's own loop would have asked all 61 connections, every pass.
    assert len(set(looked_at)) <= 4
    for connection in [*idle, busy]:
        connection.close()
