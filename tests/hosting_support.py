"""Hosting helpers: browsers over real sockets, the main flow every host must serve,
and server processes started and stopped by the tests."""

import concurrent.futures
import html
import http.client
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple

VENV_BIN = os.path.dirname(sys.executable)
PASSWORD = "correct horse"


# -- browsers ------------------------------------------------------------------


class Answer(NamedTuple):
    status: int
    headers: object
    text: str

    @property
    def location(self):
        return self.headers.get("Location")

    @property
    def cookies(self):
        return self.headers.get_all("Set-Cookie") or []

    def json(self):
        return json.loads(self.text)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 3xx comes back as an answer, to be looked at


class Browser:
    """A browser without JavaScript, over real sockets: cookies, forms with their
    CSRF token, live updates as JSON. Redirects are followed by hand."""

    def __init__(self, url, ssl_context=None):
        self.url = url
        handlers = [urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirects()]
        if ssl_context is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
        self.opener = urllib.request.build_opener(*handlers)

    def request(self, path, data=None, headers=None):
        url = path if "://" in path else self.url + path
        request = urllib.request.Request(url, data=data, headers=headers or {})
        try:
            with self.opener.open(request, timeout=60) as response:
                return Answer(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as error:
            try:
                body = error.read()
            except http.client.IncompleteRead as cut:  # the server died mid-answer
                body = cut.partial
            return Answer(error.code, error.headers, body.decode(errors="replace"))

    def get(self, path, **headers):
        return self.request(path, headers=headers)

    def post(self, path, page, **fields):
        """Submit a form of ``page`` to ``path``, with the page's CSRF token."""
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        return self.request(path, urllib.parse.urlencode(dict(fields, csrf_token=token)).encode())

    def updates(self, path, since=None):
        """A page's live update; returns it with the time it arrived."""
        query = "" if since is None else f"?since={since}"
        answer = self.get(f"{path}/updates{query}")
        assert answer.status == 200, answer.text
        return answer.json(), time.monotonic()


def first_streamed_view(url, path, since, ssl_context=None, timeout=30):
    """``path``'s live update asked for as live.js asks after its first: a stream where
    the server can. Sends the request at once and returns ``wait()``, which gives the
    first view (the stream's first event, or the long-poll's answer), when it arrived,
    and whether it was streamed."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl_context
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    connection.request(
        "GET", f"{path}/updates?since={since}", headers={"Accept": "text/event-stream"}
    )

    def wait():
        try:
            response = connection.getresponse()
            assert response.status == 200, response.read()
            if not response.getheader("Content-Type", "").startswith("text/event-stream"):
                return json.loads(response.read()), time.monotonic(), False
            text = ""
            while True:
                data = response.read1(65536)  # each part as it comes, as a browser reads it
                assert data, f"the stream ended before a view: {text!r}"
                text += data.decode()
                for block in text.split("\n\n")[:-1]:
                    if block.startswith("data: "):
                        return json.loads(block[6:]), time.monotonic(), True
        finally:
            connection.close()

    return wait


def text_of(page):
    return html.unescape(re.sub(r"<[^>]+>", " ", page.text))


class Flow(NamedTuple):
    owner: Browser
    customer: Browser
    home: Answer
    created: Answer
    console: Answer
    ticket_path: str
    streamed: bool  # whether the server streamed the live update (serve does)


def main_flow(url, queue_id, ssl_context=None, held=6):
    """Create a queue, take a number, hold live updates, press Next: what a host must do.

    Each held update has its own connection, so under several processes some are
    held by another process than the one that answers Next.
    """
    owner = Browser(url, ssl_context)
    home = owner.get("/")
    assert home.status == 200, home.text
    assert "Create a queue" in home.text
    created = owner.post(
        "/", home, queue_id=queue_id, title="Lab help", password=PASSWORD, name="Desk 1"
    )
    assert created.status == 303, created.text
    assert created.location == f"{url}/{queue_id}/serve"
    console = owner.get(created.location)
    assert "Now serving" in console.text

    customer = Browser(url, ssl_context)
    taken = customer.post(f"/{queue_id}/take", customer.get(f"/{queue_id}"))
    assert taken.status == 303, taken.text
    ticket_path = urllib.parse.urlsplit(taken.location).path
    view, _ = customer.updates(ticket_path)
    assert (view["number"], view["state"]) == (1, "waiting")

    with concurrent.futures.ThreadPoolExecutor(held + 1) as pool:
        waiting = [
            pool.submit(Browser(url, ssl_context).updates, ticket_path, view["version"])
            for _ in range(held)
        ]
        # And a page asking for a stream: under serve it is one, through any proxy in front.
        stream = pool.submit(first_streamed_view(url, ticket_path, view["version"], ssl_context))
        time.sleep(1)
        assert not any(w.done() for w in [*waiting, stream]), (
            "live updates should be held until a change"
        )
        pressed = owner.post(f"/{queue_id}/serve/next", console)
        pressed_at = time.monotonic()
        assert pressed.status == 303, pressed.text
        for wait in waiting:
            woken, arrived = wait.result(timeout=10)
            assert woken["state"] == "called"
            assert woken["message"] == "It's your turn — go to Desk 1."
            assert arrived - pressed_at < 2, "the held request was not woken by the call"
        woken, arrived, streamed = stream.result(timeout=10)
        assert woken["state"] == "called"
        assert arrived - pressed_at < 2, "the stream's event did not come on time"

    page = customer.get(ticket_path)
    assert "It's your turn — go to Desk 1." in text_of(page)
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page.text).group(1)
    assert customer.get(stylesheet).status == 200
    return Flow(owner, customer, home, created, console, ticket_path, streamed)


def take_numbers_at_once(url, queue_id, count, ssl_context=None):
    """``count`` customers take a number, eight at a time; returns their numbers."""

    def take_one(_):
        customer = Browser(url, ssl_context)
        taken = customer.post(f"/{queue_id}/take", customer.get(f"/{queue_id}"))
        assert taken.status == 303, taken.text
        view, _ = customer.updates(urllib.parse.urlsplit(taken.location).path)
        return view["number"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return list(pool.map(take_one, range(count)))


# -- servers -------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(**settings):
    """This environment, plus ``settings``, without what would change what a server runs:
    TAKE_A_NUMBER_* settings and PYTHONPATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TAKE_A_NUMBER_") and k != "PYTHONPATH"
    }
    env.update({name: str(value) for name, value in settings.items()})
    return env


def program(name):
    """A server program the test needs: missing is a failure, never a skip."""
    path = shutil.which(name, path=f"{VENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin")
    assert path, f"{name} is not installed: bash scripts/test installs it"
    return path


class Process:
    """A server in a child process, its output in a log file."""

    def __init__(self, args, log_path, **kwargs):
        self.log_path = str(log_path)
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            [str(arg) for arg in args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **kwargs,
        )

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_until_it_answers(self, url, ssl_context=None, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5, context=ssl_context) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{url} does not answer:\n{self.log()}")
            time.sleep(0.1)

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()


class Processes:
    """Start servers with ``start(args, log_path, ...)``; all are stopped on exit."""

    def __init__(self):
        self.started = []

    def start(self, args, log_path, **kwargs):
        self.started.append(Process(args, log_path, **kwargs))
        return self.started[-1]

    def __enter__(self):
        return self.start

    def __exit__(self, *exc_info):
        for process in reversed(self.started):
            process.stop()
