"""Every benchmark still runs and prints its figures (smallest options, a few seconds each).

Not a measurement: these check that the harness and each scenario work, so that a
benchmark cannot break quietly between the runs that docs/benchmarks.md reports.
The harness's live-page client (LongPoll) is also checked without a server: the
bytes of streams and JSON answers fed to it, and one stream's end over loopback.
"""

import asyncio
import json
import os
import subprocess
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import harness  # noqa: E402  benchmarks/harness.py


def run_benchmark(name, *options, timeout=90):
    """Run benchmarks/<name> as docs/benchmarks.md says; its output (it must exit 0)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKE_A_NUMBER_")}
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", name), *options],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_load_benchmark_prints_each_scenario_beside_hello_world(tmp_path):
    out = run_benchmark(
        "run.py",
        "--smoke",
        *("--only", "hello", "--only", "take", "--only", "floor-store"),
        *("--json", str(tmp_path / "run.json")),
    )
    for scenario in ("hello-world WSGI app (baseline)", "take a number:", "floor: the write alone"):
        assert scenario in out
    assert "taking a number >= 50% of hello-world" in out
    assert (tmp_path / "run.json").exists()


@pytest.mark.slow
def test_push_benchmark_prints_latency_idle_cpu_memory_and_ratios():
    out = run_benchmark(
        "push.py",
        *("--waiters", "20", "--calls", "2", "--idle", "1", "--pages", "2"),
        *("--baseline-calls", "1", "--timeout", "60"),
    )
    for figure in (
        "called customer: p50",
        "every woken client: p50",
        "ratios: called p50 / updates-at-once p50",
        "server memory: RSS",
        "Goals:",
    ):
        assert figure in out
    assert "woken per call: 20..20 of 20" in out


@pytest.mark.slow
def test_thousands_waiting_benchmark_prints_each_goal_beside_the_baseline(tmp_path):
    out = run_benchmark(
        "many_waiting.py",
        *("--waiters", "40", "--queues", "4", "--minutes", "0.2", "--idle", "1"),
        *("--call-every", "1", "--json", str(tmp_path / "many.json")),
    )
    for figure in (
        "Baseline: updates answered at once",
        "called customer (POST end -> 'called'): p50",
        "every page after each change:",
        "take:",
        "load generator",
        "Per minute:",
        "Goals:",
    ):
        assert figure in out
    assert "told to poll: 0" in out
    assert (tmp_path / "many.json").exists()


@pytest.mark.slow
def test_soak_benchmark_prints_latency_per_minute_and_memory():
    out = run_benchmark(
        "soak.py", *("--minutes", "0.05", "--tickets", "2", "--boards", "1", "--queue-pages", "1")
    )
    assert "latency to every page, whole run: n=" in out
    for kind in ("ticket", "console", "board", "queue page"):
        assert f"  {kind}" in out
    assert "RSS:" in out


@pytest.mark.slow
def test_profile_prints_cpu_per_request_of_each_endpoint():
    out = run_benchmark("profile_app.py", "--requests", "20", "--top", "3")
    for endpoint in ("=== take a number", "=== floor-webob", "=== ticket page"):
        assert endpoint in out
    assert "ms CPU/request" in out


@pytest.mark.slow
@pytest.mark.browser
def test_browser_benchmark_prints_your_turn_latency_beside_a_static_fetch():
    out = run_benchmark("browser_push.py", "--trials", "1")
    assert "'your turn' shown after Next:" in out
    assert "ratio p50 / baseline p50:" in out


@pytest.mark.slow
def test_instruction_counts_print_a_per_request_figure_as_a_ratio_to_the_first_tree():
    out = run_benchmark("instructions.py", "--requests", "3", "--only", "ticket", timeout=240)
    lines = [line for line in out.splitlines() if line.startswith("ticket ")]
    assert len(lines) == 1, out
    assert " M instructions/request x1.000 of the first tree" in lines[0], out


@pytest.mark.slow
def test_instances_benchmark_prints_each_layout_beside_hello_world_and_push_across_instances(
    tmp_path,
):
    out = run_benchmark("instances.py", "--smoke", "--json", str(tmp_path / "instances.json"))
    for layout in ("SQLite, 1 instance", "PostgreSQL, 1 instance", "PostgreSQL, 2 instances"):
        for scenario in ("take", "ticket"):
            assert f"{layout:<24} {scenario:<7}" in out
    assert "hello-world + nginx" in out
    assert "Two instances / one, take: x" in out
    assert "instance 2:" in out and "ms/request" in out
    assert "Next on instance B: called customer p50" in out
    assert "client problems" not in out
    assert (tmp_path / "instances.json").exists()


# -- harness.LongPoll: streams and their JSON fallback, without a server -----------------


class Transport:
    """What LongPoll uses of an asyncio transport: the requests written to it."""

    def __init__(self):
        self.written, self.closed, self.protocol = [], False, None

    def get_extra_info(self, name):
        return ("127.0.0.1", 8080) if name == "peername" else None

    def write(self, data):
        self.written.append(data.decode("latin-1"))

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def set_protocol(self, protocol):
        self.protocol = protocol


class Page(harness.LongPoll):
    """Records each answer and asks again at once, or after retry_after (not here)."""

    def __init__(self, stream=True):
        super().__init__("127.0.0.1:8080", "/q/ticket/t", stream=stream)
        self.answers, self.reconnects, self.lost, self.later = [], 0, [], []

    def answered(self, status, body, received):
        self.answers.append((status, body, received))
        view = json.loads(body) if body else {}
        self.version = view.get("version", self.version)
        if "retry_after" in view:
            self.later.append(view["retry_after"])  # as call_later(..., send_if_open)
        else:
            self.send()

    def reconnect(self):  # loop.create_connection in the benchmarks
        self.reconnects += 1

    def connection_lost(self, exc):
        self.lost.append(exc)


def request_line_and_accept(request):
    lines = request.split("\r\n")
    accept = [line for line in lines if line.startswith("Accept:")]
    return lines[0], accept


def feed(page, pieces, clock):
    """Each piece arrives at its own time: 1.0, 2.0, ..."""
    for n, piece in enumerate(pieces, 1):
        clock.now = float(n)
        page.data_received(piece)


@pytest.fixture
def clock(monkeypatch):
    fake = types.SimpleNamespace(now=0.0)
    fake.monotonic = lambda: fake.now
    monkeypatch.setattr(harness, "time", fake)
    return fake


def json_answer(view, *headers):
    body = json.dumps(view).encode()
    head = [
        "HTTP/1.1 200 OK",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def chunked(*chunks):
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=UTF-8\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
)


def test_a_stream_split_anywhere_gives_one_answer_per_data_event_then_a_new_connection(clock):
    page, transport = Page(), Transport()
    page.connection_made(transport)
    assert request_line_and_accept(transport.written[0]) == (
        "GET /q/ticket/t/updates HTTP/1.1",
        ["Accept: text/event-stream"],
    )
    feed(page, [json_answer({"version": 1})], clock)  # the first answer: JSON, at once
    assert request_line_and_accept(transport.written[1])[0] == (
        "GET /q/ticket/t/updates?since=1 HTTP/1.1"
    )
    body = chunked(
        b": live\n\n",
        b'data: {"version": 2}\n\ndata: {"version": 3}\n\n',  # two events in one chunk
        b":\n\n",  # a heartbeat
        b'data: {"vers',  # an event over three chunks, its lines ended by CRLF
        b'ion":\r',
        b"\ndata: 4}\r\n\r\n",
        b'data:{"version":\ndata: 5}\n\n',  # two data lines, joined by LF
        b":\n\n",
    )
    stream = STREAM_HEAD + body
    # Cut mid header, mid chunk-size lines, mid event, between a chunk's CR and LF.
    cuts = [30, stream.index(b"2c\r\n") + 1, stream.index(b'": 2}'), stream.index(b'{"vers\r') + 3]
    cuts += [stream.index(b'ion":\r\r\n') + 7, stream.index(b"1b\r\n") + 1, len(stream) - 3]
    assert cuts == sorted(set(cuts))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    feed(page, pieces, clock)
    assert [(status, body) for status, body, _ in page.answers] == [
        (200, b'{"version": 1}'),
        (200, b'{"version": 2}'),
        (200, b'{"version": 3}'),
        (200, b'{"version":\n4}'),
        (200, b'{"version":\n5}'),
    ]
    # Each event when the chunk holding the blank line that ends it had come whole.
    ends = [stream.index(b"3}\n\n\r\n") + 6, stream.index(b"4}\r\n\r\n\r\n") + 8]
    ends.append(stream.index(b"5}\n\n\r\n") + 6)
    piece_of = [1 + sum(1 for c in cuts if c < end) for end in ends]
    assert [received for _, _, received in page.answers[2:]] == [float(n) for n in piece_of]
    assert page.answers[1][2] == page.answers[2][2]
    # While the stream was open, asking again wrote nothing: the next event is the answer.
    assert len(transport.written) == 2
    assert (page.streams, page.events, page.heartbeats, page.stream_ends) == (1, 4, 2, 1)
    assert page.fallbacks == 0
    # The stream ended: that connection left (its end is not the page's), a new one asked.
    assert transport.closed and isinstance(transport.protocol, harness._Retired)
    assert page.transport is None and page.reconnects == 1 and page.lost == []
    again = Transport()
    page.connection_made(again)
    assert request_line_and_accept(again.written[0]) == (
        "GET /q/ticket/t/updates?since=5 HTTP/1.1",
        ["Accept: text/event-stream"],
    )
    assert page.reconnections == 1
    # Full: the stream ends after retry_after; nothing is asked until the page asks.
    feed(
        page,
        [STREAM_HEAD + chunked(b": live\n\n", b'data: {"version": 5, "retry_after": 2}\n\n')],
        clock,
    )
    assert page.later == [2] and page.reconnects == 1 and again.closed
    page.send_if_open()
    assert page.reconnects == 2 and page.lost == []


def test_json_answers_to_a_stream_request_are_long_polled_on_the_same_connection(clock):
    page, transport = Page(), Transport()
    page.connection_made(transport)
    answer = json_answer({"version": 7})
    feed(page, [answer[:20], answer[20:]], clock)  # the first answer: no since
    # A server that does not stream: its JSON (split mid header), a 204, chunked JSON.
    answer = json_answer({"version": 8})
    feed(page, [answer[:40], answer[40:-3], answer[-3:]], clock)
    feed(page, [b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"], clock)
    feed(
        page,
        [
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked(b'{"vers', b'ion": 9}')
        ],
        clock,
    )
    assert [(status, body) for status, body, _ in page.answers] == [
        (200, b'{"version": 7}'),
        (200, b'{"version": 8}'),
        (204, b""),
        (200, b'{"version": 9}'),
    ]
    assert [request_line_and_accept(r) for r in transport.written] == [
        (f"GET /q/ticket/t/updates{since} HTTP/1.1", ["Accept: text/event-stream"])
        for since in ("", "?since=7", "?since=8", "?since=8", "?since=9")
    ]
    assert (page.fallbacks, page.streams, page.reconnects, transport.closed) == (3, 0, 0, False)
    # One that says Connection: close: the page asks again on a new connection.
    feed(page, [json_answer({"version": 10}, "Connection: close")], clock)
    assert page.answers[-1][:2] == (200, b'{"version": 10}')
    assert len(transport.written) == 5 and transport.closed and page.reconnects == 1
    assert page.lost == []
    # Long-poll mode is as before: application/json, and a stream is refused.
    old, transport = Page(stream=False), Transport()
    old.connection_made(transport)
    assert request_line_and_accept(transport.written[0])[1] == ["Accept: application/json"]
    with pytest.raises(RuntimeError, match="stream"):
        old.data_received(STREAM_HEAD)


def test_after_a_stream_ends_the_page_asks_again_on_a_new_loopback_connection():
    """Over a stub on loopback: JSON, then a stream that ends and closes; the page's
    next request (since its last version) comes on a second connection."""
    requests = []

    async def stub(reader, writer):
        connection = len({n for n, _ in requests}) + 1
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            requests.append((connection, head.split(b"\r\n")[0].decode()))
            if len(requests) == 1:
                writer.write(json_answer({"version": 1}))
            elif len(requests) == 2:
                writer.write(STREAM_HEAD + b"8\r\n: live\n\n\r\n")
                await writer.drain()
                writer.write(chunked(b'data: {"version": 2}\n\n'))
                await writer.drain()
                writer.close()
                return
            else:
                return  # the third request: enough

    class Live(Page):
        reconnect = harness.LongPoll.reconnect

    async def main():
        server = await asyncio.start_server(stub, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        _, page = await loop.create_connection(lambda: Live(), "127.0.0.1", port)
        for _ in range(200):
            if len(requests) == 3:
                break
            await asyncio.sleep(0.01)
        lost = list(page.lost)
        page.transport.close()
        server.close()
        return page, lost

    page, lost = asyncio.run(asyncio.wait_for(main(), 10))
    assert requests == [
        (1, "GET /q/ticket/t/updates HTTP/1.1"),
        (1, "GET /q/ticket/t/updates?since=1 HTTP/1.1"),
        (2, "GET /q/ticket/t/updates?since=2 HTTP/1.1"),
    ]
    assert [body for _, body, _ in page.answers] == [b'{"version": 1}', b'{"version": 2}']
    assert (page.stream_ends, page.reconnections) == (1, 1)
    assert lost == []  # the first connection's end did not reach the page
