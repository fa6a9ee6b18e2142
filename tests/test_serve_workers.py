"""``take-a-number serve`` as several worker processes behind one port (prefork.py),
run as an operator runs it: real processes, real sockets, a real database."""

import concurrent.futures
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from instances_support import api, call_next, create_queue, held_update, take, wait_for

from take_a_number import cli, push
from take_a_number.store import Store

COMMAND = os.path.join(os.path.dirname(sys.executable), "take-a-number")
# Held live updates each worker holds: few, so that its threads are few.
HELD = 40


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_ini(directory, database, workers="3", extra_server=""):
    port = free_port()
    path = directory / "site.ini"
    serve = "" if workers is None else f"[serve]\nworkers = {workers}\n\n"
    path.write_text(
        f"[app:main]\nuse = egg:take-a-number\ndatabase = {database}\n"
        f"push_max_held = {HELD}\npush_hold_seconds = 30\nrate_limit_create_queue = off\n"
        "rate_limit_take_ticket = off\nrate_limit_take_ticket_per_address = off\n"
        "rate_limit_sign_in = off\n\n"
        f"{serve}"
        f"[server:main]\nuse = egg:waitress#main\nhost = 127.0.0.1\nport = {port}\n"
        f"threads = {HELD + 20}\nchannel_request_lookahead = 5\n{extra_server}"
    )
    return path, f"http://127.0.0.1:{port}"


class Serving:
    """``take-a-number serve`` of an ini, its output in a file; stopped (SIGTERM) at the end."""

    def __init__(self, path, *options):
        self.log_path = path.parent / "serve.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [COMMAND, "--config", str(path), "serve", *options],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self):
        return self.log_path.read_text()

    def workers(self):
        """The pids of the serve process's children, its workers."""
        pid = self.process.pid
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
        return []

    def wait_until_serving(self, url, workers, timeout=60):
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"serve ended: {self.output()}")
            if len(self.workers()) != workers:
                return False
            try:
                return api(url, "GET", "/api/v1/health", timeout=2).status == 200
            except OSError:
                return False

        assert wait_for(ready, timeout, interval=0.1) is not None, self.output()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for pid in self.workers():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture
def serving():
    started = []

    def start(path, *options):
        started.append(Serving(path, *options))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def sockets_of(pid):
    """How many sockets the process has open (its connections and its listening one)."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    return False


def queue_version(url, queue_id):
    answer = api(url, "GET", f"/api/v1/queues/{queue_id}")
    assert answer.status == 200, answer.text
    return answer.json()["version"]


def test_a_change_through_one_worker_reaches_the_pages_held_by_every_other(
    tmp_path, database, serving
):
    path, url = write_ini(tmp_path, database, workers="3")
    server = serving(path)
    server.wait_until_serving(url, workers=3)
    workers = server.workers()
    before = {pid: sockets_of(pid) for pid in workers}
    token = create_queue(url, "lab")
    assert take(url, "lab").status == 201
    version = queue_version(url, "lab")
    updates = "/api/v1/queues/lab/updates"
    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        # Each on a connection of its own: the workers accept them between them.
        held = [pool.submit(held_update, url, updates, version) for _ in range(30)]

        def spread():
            return sum(sockets_of(pid) > before[pid] for pid in workers) >= 2

        assert wait_for(spread, 20) is not None, "the connections all went to one worker"
        time.sleep(0.5)  # every request held, not only connected
        assert not any(future.done() for future in held)
        called_at = time.monotonic()
        assert call_next(url, "lab", token).status == 200
        answers = [future.result(timeout=20) for future in held]
    for answer, arrived in answers:
        assert answer.status == 200, answer.text
        assert answer.json()["version"] > version
        # Told of the change, not answered by the hold's end 30 s later.
        assert arrived - called_at < 10
    assert set(server.workers()) == set(workers)


def test_a_change_from_outside_the_server_reaches_every_worker_within_the_watchers_look(
    tmp_path, database, serving
):
    # The workers tell each other of their own commits; those of another process (here
    # this test, as another server on the same file would) each worker's watcher finds
    # by itself, every TOLD_WATCH_SECONDS under serve.
    path, url = write_ini(tmp_path, database, workers="3")
    server = serving(path)
    server.wait_until_serving(url, workers=3)
    workers = server.workers()
    before = {pid: sockets_of(pid) for pid in workers}
    create_queue(url, "lab")
    version = queue_version(url, "lab")
    updates = "/api/v1/queues/lab/updates"
    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        held = [pool.submit(held_update, url, updates, version) for _ in range(30)]

        def spread():
            return sum(sockets_of(pid) > before[pid] for pid in workers) >= 2

        assert wait_for(spread, 20) is not None, "the connections all went to one worker"
        time.sleep(0.5)
        assert not any(future.done() for future in held)
        other = Store(database)
        other.take_ticket("lab", "from-outside", time.time())
        committed_at = time.monotonic()
        other.close()
        answers = [future.result(timeout=40) for future in held]
    for answer, arrived in answers:
        assert answer.status == 200, answer.text
        assert answer.json()["waiting"] == 1
        # Found by the watchers' look, not answered by the hold's end 30 s later.
        assert arrived - committed_at < push.TOLD_WATCH_SECONDS + 2


def test_takes_through_several_workers_get_every_number_once(tmp_path, database, serving):
    path, url = write_ini(tmp_path, database, workers="3")
    server = serving(path)
    server.wait_until_serving(url, workers=3)
    create_queue(url, "lab")
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: take(url, "lab"), range(60)))
    assert [answer.status for answer in answers] == [201] * 60
    numbers = sorted(answer.json()["number"] for answer in answers)
    assert numbers == list(range(1, 61))


def test_what_one_worker_answers_after_another_commits_shows_the_commit(
    tmp_path, database, serving
):
    # Each request on a connection of its own, so any worker may answer it: the
    # queue's status asked for after a take was answered counts that take.
    path, url = write_ini(tmp_path, database, workers="3")
    server = serving(path)
    server.wait_until_serving(url, workers=3)
    create_queue(url, "lab")
    for waiting in range(1, 41):
        assert take(url, "lab").status == 201
        status = api(url, "GET", "/api/v1/queues/lab").json()
        assert status["waiting"] == waiting


@pytest.mark.sqlite_only
def test_serve_without_a_workers_setting_runs_the_default_number(tmp_path, database, serving):
    path, url = write_ini(tmp_path, database, workers=None)
    server = serving(path)
    server.wait_until_serving(url, workers=cli.DEFAULT_WORKERS)
    assert f"Serving on {url} ({cli.DEFAULT_WORKERS} worker processes)" in server.output()


@pytest.mark.sqlite_only
def test_the_workers_option_wins_over_the_ini_and_one_is_a_single_process(
    tmp_path, database, serving
):
    path, url = write_ini(tmp_path, database, workers="3")
    server = serving(path, "--workers", "1")

    def answers():
        try:
            return api(url, "GET", "/api/v1/health", timeout=2).status == 200
        except OSError:
            return False

    assert wait_for(answers, 60, interval=0.1) is not None, server.output()
    assert server.workers() == []  # waitress in the serve process itself, as before


@pytest.mark.sqlite_only
def test_a_worker_that_dies_is_replaced_and_the_site_goes_on(tmp_path, database, serving):
    path, url = write_ini(tmp_path, database, workers="2")
    server = serving(path)
    server.wait_until_serving(url, workers=2)
    create_queue(url, "lab")
    dead, survivor = server.workers()
    os.kill(dead, signal.SIGKILL)

    def replaced():
        now = server.workers()
        return len(now) == 2 and dead not in now

    assert wait_for(replaced, 20) is not None, server.output()
    assert survivor in server.workers()
    server.wait_until_serving(url, workers=2)
    numbers = [take(url, "lab").json()["number"] for _ in range(6)]
    assert numbers == list(range(1, 7))
    assert f"(pid {dead}) ended (signal SIGKILL); starting another" in server.output()


@pytest.mark.sqlite_only
def test_sigterm_answers_the_held_pages_then_stops_every_process(tmp_path, database, serving):
    path, url = write_ini(tmp_path, database, workers="2")
    server = serving(path)
    server.wait_until_serving(url, workers=2)
    workers = server.workers()
    create_queue(url, "lab")
    version = queue_version(url, "lab")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        held = [
            pool.submit(held_update, url, "/api/v1/queues/lab/updates", version) for _ in range(8)
        ]
        time.sleep(1.0)
        assert not any(future.done() for future in held)
        server.process.send_signal(signal.SIGTERM)
        answers = [future.result(timeout=20) for future in held]
        assert server.process.wait(timeout=20) == 0
    # Each page got an answer (ask again), not a connection closed under it.
    assert [answer.status for answer, _ in answers] == [200] * 8
    assert not any(alive(pid) for pid in workers)


def whole_stream(url, path, since):
    """A page's live updates asked for as a stream, read to its end: its events' views."""
    host, port = url.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request(
        "GET", f"{path}/updates?since={since}", headers={"Accept": "text/event-stream"}
    )
    response = connection.getresponse()
    assert response.getheader("Content-Type").startswith("text/event-stream")
    body = response.read().decode()  # up to the stream's end
    connection.close()
    blocks = body.split("\n\n")
    return [json.loads(block[6:]) for block in blocks if block.startswith("data: ")]


def test_sigterm_ends_every_stream_with_when_to_ask_again(tmp_path, database, serving):
    path, url = write_ini(tmp_path, database, workers="2")
    server = serving(path)
    server.wait_until_serving(url, workers=2)
    create_queue(url, "lab")
    version = queue_version(url, "lab")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        streams = [pool.submit(whole_stream, url, "/lab", version) for _ in range(6)]
        time.sleep(1.0)
        assert not any(future.done() for future in streams)
        server.process.send_signal(signal.SIGTERM)
        ended = [future.result(timeout=20) for future in streams]
        assert server.process.wait(timeout=20) == 0
    # Each stream's last event says when to ask again (of the server that replaces this one).
    assert all(views and views[-1]["retry_after"] >= 1 for views in ended), ended


@pytest.mark.sqlite_only
def test_workers_stop_when_the_serve_process_is_killed(tmp_path, database, serving):
    path, url = write_ini(tmp_path, database, workers="2")
    server = serving(path)
    server.wait_until_serving(url, workers=2)
    workers = server.workers()
    server.process.kill()
    server.process.wait()
    assert wait_for(lambda: not any(alive(pid) for pid in workers), 20) is not None
    with pytest.raises(OSError):
        api(url, "GET", "/api/v1/health", timeout=2)


def run(path, *options):
    return subprocess.run(
        [COMMAND, "--config", str(path), "serve", *options],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("value", ["0", "many", "65", "-2"])
def test_a_workers_option_that_is_no_count_is_refused(tmp_path, value):
    path, _ = write_ini(tmp_path, tmp_path / "site.sqlite")
    result = run(path, "--workers", value)
    assert result.returncode == 2
    assert f"--workers must be a whole number from 1 to {cli.MAX_WORKERS}" in result.stderr


@pytest.mark.parametrize("value", ["0", "many", "2.5", ""])
def test_a_workers_setting_that_is_no_count_is_refused(tmp_path, value):
    path, _ = write_ini(tmp_path, tmp_path / "site.sqlite", workers=value)
    result = run(path)
    assert result.returncode == 1
    assert f"[serve] workers must be a whole number from 1 to {cli.MAX_WORKERS}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_said_plainly(tmp_path):
    path, url = write_ini(tmp_path, tmp_path / "site.sqlite")
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = run(path)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_on_a_unix_socket_are_refused_with_what_to_do(tmp_path):
    path, _ = write_ini(tmp_path, tmp_path / "site.sqlite")
    text = path.read_text()
    text = "\n".join(
        line for line in text.splitlines() if not line.startswith(("host =", "port ="))
    )
    path.write_text(text + f"\nunix_socket = {tmp_path}/serve.sock\n")
    result = run(path)
    assert result.returncode == 1
    assert "set workers = 1 to serve on a unix socket" in result.stderr


def test_serve_gives_up_when_its_workers_keep_dying_as_they_start(monkeypatch, caplog):
    from take_a_number import prefork

    monkeypatch.setattr(prefork, "YOUNG_SECONDS", 30)  # each death counts as young
    monkeypatch.setattr(prefork, "RESTART_PAUSE_SECONDS", 0.01)
    supervisor = prefork.Supervisor(2, lambda parent, slot: 3)  # every worker exits at once
    started = time.monotonic()
    assert supervisor.run() == 1
    assert time.monotonic() - started < 20
    assert "in a row to end within" in caplog.text
    assert supervisor.children == {}
