"""The epoll loop serve runs waitress with (eventloop.py): every request answered,
with the once-a-second full pass turned off, so that a state change the loop
failed to note would hang a request instead of being picked up by the safety net."""

import concurrent.futures
import http.client
import logging
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
    elif path == "/park":
        assert environ[eventloop.PARK_KEY]
        return Parking(environ["QUERY_STRING"])
    elif path == "/stream":
        assert environ[eventloop.PARK_KEY]
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return Streaming(environ["QUERY_STRING"])
    elif path == "/park-once-gone":  # parked only after its client has gone
        disconnected = environ["waitress.client_disconnected"]
        while not disconnected():
            time.sleep(0.01)
        return Parking(environ["QUERY_STRING"])
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


class Parking:
    """An answer parked by the server (eventloop's protocol): waits in PARKED until a
    test resumes it; says what happened to it."""

    def __init__(self, name):
        self.name = name
        self.resume = None
        self.events = []

    def park(self, resume):
        self.resume = resume
        self.events.append("parked")
        PARKED.append(self)

    def respond(self, environ, start_response):
        self.events.append(("respond", threading.current_thread().name))
        body = f"answer {self.name}".encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    def cancel(self):
        self.events.append("cancel")

    def close(self):
        self.events.append("close")


PARKED = []


class Streaming:
    """A streamed answer (eventloop's protocol): ``first``, then parked; each resume gives
    the next of ``parts`` and parks again, until the parts run out; says what happened."""

    streams = True

    def __init__(self, name):
        self.name = name
        self.parts = [f"{name} {n}\n".encode() for n in range(1, 4)]
        self.given = 0
        self.resume = None
        self.events = []
        self.parkable = False
        self.threads = set()

    def __iter__(self):
        return self

    def __next__(self):
        self.threads.add(threading.current_thread().name)
        if self.given == len(self.parts):
            raise StopIteration
        if self.given == 0 or self.resume is not None:
            self.resume = None
            self.given += 1
            return self.parts[self.given - 1]
        raise eventloop.Parked(self)

    def park(self, resume):
        self.events.append("parked")
        self.resume = resume
        PARKED.append(self)

    def cancel(self):
        self.events.append("cancel")

    def end(self):
        self.events.append("end")

    def close(self):  # waitress's task calls it as the stream first parks: not the end
        self.events.append("close")


def streamed(s, until):
    """What a streamed answer sent on socket ``s``, up to ``until``."""
    received = b""
    while until not in received:
        chunk = s.recv(4096)
        assert chunk, received
        received += chunk
    return received


def parked(count, seconds=10):
    """The first ``count`` answers parked, once they are."""
    deadline = time.monotonic() + seconds
    while len(PARKED) < count:
        assert time.monotonic() < deadline, f"{len(PARKED)} of {count} parked"
        time.sleep(0.01)
    return PARKED[:count]


def park_many(connections):
    """A /park request on each connection; their answers, once all are parked."""
    for n, s in enumerate(connections):
        s.sendall(f"GET /park?{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return parked(len(connections))


def park_answers(connections):
    """What each connection of ``park_many`` received, up to its answer; each then closed."""
    answers = []
    for n, s in enumerate(connections):
        received = b""
        while not received.endswith(f"answer {n}".encode()):
            chunk = s.recv(4096)
            assert chunk, received
            received += chunk
        s.close()
        answers.append(received)
    return answers


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(eventloop, "FULL_PASS_SECONDS", 10**9)  # no safety net
    PARKED.clear()
    started = []

    def start(**settings):
        settings = dict({"threads": 8, "channel_request_lookahead": 5}, **settings)
        server = eventloop.make_server(app, host="127.0.0.1", port=0, **settings)
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


def test_parked_requests_take_no_thread_and_are_answered_when_resumed(server):
    # Two threads, a hundred parked requests: pages are still answered meanwhile.
    port = server(threads=2, connection_limit=200).effective_port
    waiting = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(100)]
    answers = park_many(waiting)
    page = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert get(page, "/a") == (200, b"/a")
    for held in answers:
        threading.Thread(target=held.resume, args=(False,)).start()
    assert all(received.startswith(b"HTTP/1.1 200 OK") for received in park_answers(waiting))
    assert all(held.events[0] == "parked" and held.events[1][0] == "respond" for held in answers)
    assert all(held.events[1][1].startswith("waitress-") for held in answers)


def test_requests_waiting_for_a_thread_are_logged_once_a_minute_not_each(server, caplog):
    # A burst of 100 requests on 2 threads, and 100 parked answers resumed at once: waitress
    # alone wrote "Task queue depth" for nearly each; over serve's 4 workers, a burst of
    # 2,000 pages wrote 56-62 KB, enough to fill the pipe of a supervisor that reads the
    # log late (64 KiB) and stop each worker at its next line, with the hub's lock held.
    caplog.set_level(logging.WARNING, logger="waitress.queue")
    port = server(threads=2, connection_limit=200).effective_port
    waiting = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(100)]
    for held in park_many(waiting):
        threading.Thread(target=held.resume, args=(False,)).start()
    park_answers(waiting)
    said = [r.getMessage() for r in caplog.records if r.name == "waitress.queue"]
    assert len(said) <= 1, said
    assert all(line.startswith("Task queue depth is ") for line in said)


def test_the_queue_depth_is_said_with_the_deepest_since_it_was_last_said():
    said, now = [], [0.0]

    class Logger:
        def warning(self, message, *args):
            said.append(message % args)

    log = eventloop.QueueDepthLog(Logger(), seconds=60, clock=lambda: now[0])
    log.warning("Task queue depth is %d", 1)
    for depth, at in ((5, 10.0), (30, 20.0), (2, 59.0), (4, 60.0), (3, 61.0)):
        now[0] = at
        log.warning("Task queue depth is %d", depth)
    assert said == [
        "Task queue depth is 1 (the deepest of 1 requests that waited for a thread since "
        "this was last said; said at most every 60 s)",
        "Task queue depth is 30 (the deepest of 4 requests that waited for a thread since "
        "this was last said; said at most every 60 s)",
    ]


def test_a_request_pipelined_behind_a_parked_one_waits_for_it(server):
    port = server().effective_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(
            b"GET /park?first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        [held] = parked(1)
        s.settimeout(0.5)
        with pytest.raises(TimeoutError):
            s.recv(4096)  # nothing answered before the parked request
        s.settimeout(10)
        held.resume(True)
        received = b""
        while not received.endswith(b"/second"):
            chunk = s.recv(4096)
            assert chunk, received
            received += chunk
    assert received.index(b"answer first") < received.index(b"/second")


def test_a_parked_request_whose_client_leaves_is_cancelled_or_closed(server):
    port = server().effective_port
    deadline = time.monotonic() + 10
    gone = []
    for n in range(2):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"GET /park?gone-{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        gone.append(parked(n + 1)[n])
        s.close()
        while "cancel" not in gone[n].events:
            assert time.monotonic() < deadline, gone[n].events
            time.sleep(0.01)
    assert gone[0].events == ["parked", "cancel"]  # never asked to respond
    # One resumed all the same (its outcome was decided as its client left): closed.
    gone[1].resume(False)
    while "close" not in gone[1].events:
        assert time.monotonic() < deadline, gone[1].events
        time.sleep(0.01)
    assert gone[1].events == ["parked", "cancel", "close"]


def test_a_request_parked_after_its_client_left_is_cancelled_at_once(server):
    # The client leaves while the app is still building the parked answer: the connection
    # closes before the channel knows of it. Before, it stayed held until its hold ended.
    port = server().effective_port
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /park-once-gone?late HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.1)
    s.close()
    [late] = parked(1)
    deadline = time.monotonic() + 2
    while "cancel" not in late.events:
        assert time.monotonic() < deadline, late.events
        time.sleep(0.01)
    assert late.events == ["parked", "cancel"]


def test_a_parked_live_update_is_let_go_once_answered(tmp_path):
    """The app's own parked answers, through rounds of changes: each round's answers (and
    the requests they hold) are freed once given, not kept until their hold would have
    ended."""
    import gc
    import json

    from support import create_queue
    from webtest import TestApp

    from take_a_number import main, push

    app = main({}, database=str(tmp_path / "queue.sqlite"))
    create_queue(TestApp(app), "lab")
    running = eventloop.make_server(
        app, host="127.0.0.1", port=0, threads=4, channel_request_lookahead=5
    )
    threading.Thread(target=running.run, daemon=True).start()
    pages = [
        http.client.HTTPConnection("127.0.0.1", running.effective_port, timeout=10)
        for _ in range(20)
    ]
    try:
        version = json.loads(get(pages[0], "/lab/updates")[1])["version"]
        for round_ in range(10):
            for page in pages:
                page.request("GET", f"/lab/updates?since={version}")
            deadline = time.monotonic() + 10
            while app.updates.hub.held < len(pages):
                assert time.monotonic() < deadline, app.updates.hub.held
                time.sleep(0.005)
            app.store.take_ticket("lab", f"round-{round_}", time.time())
            for page in pages:
                response = page.getresponse()
                assert response.status == 200
                assert json.loads(response.read())["version"] > version
            version = app.store.queue_version("lab")
        gc.collect()
        kept = [o for o in gc.get_objects() if isinstance(o, push.ParkedAnswer)]
        assert len(kept) == 0, f"{len(kept)} answers given are still kept"
    finally:
        for page in pages:
            page.close()
        app.close()
        running.task_dispatcher.shutdown(timeout=1)
        running.close()


def test_a_streamed_answer_parks_between_its_parts_and_ends_with_its_connection(server):
    port = server(threads=2).effective_port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /stream?s HTTP/1.1\r\nHost: x\r\n\r\n")
        head = streamed(s, b"s 1\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Transfer-Encoding: chunked" in head
        [stream] = parked(1)
        assert stream.parkable  # handed to waitress's task as it is
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(4096)  # nothing until it is resumed
        # Meanwhile the server's two threads are free for pages.
        page = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert get(page, "/a") == (200, b"/a")
        s.settimeout(10)
        stream.resume(False)
        assert streamed(s, b"s 2\n\r\n").endswith(b"4\r\ns 2\n\r\n")
        assert parked(2)[1] is stream  # parked again
        stream.resume(True)
        # The last part, the chunked answer's end, and the connection closed.
        rest = streamed(s, b"0\r\n\r\n")
        assert b"s 3\n" in rest
        assert s.recv(4096) == b""
    # Closed by waitress's task as it first parked (not the end), then ended once.
    assert stream.events == ["close", "parked", "parked", "end"]
    assert all(name.startswith("waitress-") for name in stream.threads)


def test_a_streamed_answer_whose_client_leaves_is_cancelled_and_ended_if_resumed(server):
    port = server().effective_port
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /stream?gone HTTP/1.1\r\nHost: x\r\n\r\n")
    streamed(s, b"gone 1\n")
    [stream] = parked(1)
    s.close()
    deadline = time.monotonic() + 10
    while "cancel" not in stream.events:
        assert time.monotonic() < deadline, stream.events
        time.sleep(0.01)
    stream.resume(False)  # decided as its client left: ended, never iterated again
    while "end" not in stream.events:
        assert time.monotonic() < deadline, stream.events
        time.sleep(0.01)
    assert stream.events == ["close", "parked", "cancel", "end"]
    assert stream.given == 1


def test_many_streams_on_two_threads_each_get_every_part(server):
    port = server(threads=2, connection_limit=200).effective_port
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
    for n, s in enumerate(sockets):
        s.sendall(f"GET /stream?{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    streams = parked(50)
    for round_ in (2, 3):
        resumed = list(PARKED)
        PARKED.clear()
        for stream in resumed:
            threading.Thread(target=stream.resume, args=(False,)).start()
        if round_ == 2:
            parked(50)
    for s in sockets:
        received = streamed(s, b"0\r\n\r\n")
        s.close()
        name = received.split(b"\r\n\r\n", 1)[1].split(b"\r\n")[1].split(b" ")[0]
        assert [f"{name.decode()} {n}".encode() in received for n in (1, 2, 3)] == [True] * 3
    assert all(stream.events[-1] == "end" for stream in streams)
