"""What every benchmark shares: the server, the clients, the meters and the figures.

* The server: ``start_app`` runs ``take-a-number serve`` in a child process on a
  temporary ini that reuses app.ini through PasteDeploy (own database, rate
  limits off, app.ini's ``[server:main]`` and logging on a free loopback port)
  and waits until it answers; ``serve`` does the same for any other command
  (hello.py, floors.py). ``Processes`` stops every child on exit, whatever happens.
* The clients: ``http_request`` and ``KeepAlive`` (one request, timed),
  ``new_browser``/``take_number``/``sign_in_servicer`` (a customer's and a
  servicer's first steps), ``LongPoll`` (a live page following its updates, as
  asyncio long-polls on one keep-alive connection or, ``stream=True``, as a stream
  of Server-Sent Events, on a new connection after each stream's end).
* The meters: CPU time of a process and of the whole machine (/proc), ``Meter``
  over a stretch of time, ``Sampler`` once a second, RSS/threads/files,
  ``wait_for_idle``.
* The figures: ``percentile``, ``summary``, ``fmt``, ``ratio`` against a baseline
  measured in the same run, ``machine`` and ``server_log_summary``.
"""

import asyncio
import configparser
import contextlib
import http.client
import json
import math
import os
import platform
import queue
import re
import resource
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APP_INI = os.path.join(ROOT, "app.ini")

sys.path.insert(0, ROOT)

SERVER_START_TIMEOUT = 30.0
# Other processes using more than this % of one core make a run unreliable.
OTHER_CPU_WARNING = 10.0
PASSWORD = "benchmark-password"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
RATE_LIMITS_OFF = {
    "rate_limit_take_ticket": "off",
    "rate_limit_take_ticket_per_address": "off",
    "rate_limit_create_queue": "off",
}


class BenchmarkError(Exception):
    """The benchmark could not run; the message says why."""


# -- configuration ---------------------------------------------------------------


def read_app_ini():
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    if not parser.read(APP_INI, encoding="utf-8"):
        raise BenchmarkError(f"cannot read {APP_INI}")
    return parser


def server_settings(app_ini):
    """app.ini's [server:main], as written there (threads, connection_limit, ...)."""
    if not app_ini.has_section("server:main"):
        raise BenchmarkError(f"{APP_INI} has no [server:main]")
    return dict(app_ini.items("server:main"))


def server_description(settings):
    return ", ".join(f"{k}={v}" for k, v in settings.items() if k not in ("use", "host", "port"))


def write_ini(path, app_ini, port, database=None, secret=None, overrides=None, workers=None):
    """A PasteDeploy file: app.ini's app with overrides, its server on ``port``.

    Without ``database``, the file has no app (for hello.py and floors.py).
    ``secret`` lets a benchmark sign session cookies as the app does.
    """
    out = configparser.ConfigParser(interpolation=None)
    out.optionxform = str
    if database:
        out["app:main"] = {
            "use": "config:" + APP_INI,
            "database": database,
            "secret": secret,
            **RATE_LIMITS_OFF,
            **(overrides or {}),
        }
    out["server:main"] = dict(server_settings(app_ini), host="127.0.0.1", port=str(port))
    if app_ini.has_section("serve"):  # take-a-number serve's own: its workers
        out["serve"] = dict(app_ini.items("serve"))
    if workers is not None:
        out["serve"] = {"workers": str(workers)}
    # app.ini's logging, so that `take-a-number serve` sets it up the same way.
    for section in app_ini.sections():
        if section in ("loggers", "handlers", "formatters") or section.startswith(
            ("logger_", "handler_", "formatter_")
        ):
            out[section] = dict(app_ini.items(section))
    with open(path, "w", encoding="utf-8") as f:
        out.write(f)


def app_settings(ini):
    """The settings the app runs with from ``ini`` (app.ini's, else the defaults)."""
    from paste.deploy import appconfig

    from take_a_number import config

    conf = appconfig("config:" + ini)
    return config.read_settings(
        dict(conf.local_conf), here=conf.global_conf.get("here"), environ={}
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- processes ---------------------------------------------------------------------


class Processes:
    """Every child process started, stopped on exit whatever happens."""

    def __init__(self):
        self.running = []

    def start(self, args, log_path, **kwargs):
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kwargs,
            )
        self.running.append(proc)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self):
        for proc in list(self.running):
            with contextlib.suppress(Exception):
                self.stop(proc)


def child_env():
    """Our environment without TAKE_A_NUMBER_* overrides, which would beat the ini."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAKE_A_NUMBER_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def stop_on_signals():
    """Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt, so that ``finally`` stops servers."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def wait_until_serving(proc, port, log_path):
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchmarkError(
                f"server exited with status {proc.returncode}; its log:\n{read_log(log_path)}"
            )
        try:
            status, _, _, _ = http_request(port, "GET", "/", timeout=2)
        except OSError:
            time.sleep(0.1)
            continue
        if status == 200:
            return
        raise BenchmarkError(f"server answered GET / with {status}")
    raise BenchmarkError(f"server did not answer within {SERVER_START_TIMEOUT:.0f} s")


def read_log(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def log_tail(path, lines=30, size=65536):
    """The last lines of a log that may have grown huge."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def print_log_tails(workdir, names):
    for name in names:
        tail = log_tail(os.path.join(workdir, name))
        if tail:
            print(f"last lines of {name}:", *tail, sep="\n  ", file=sys.stderr)


def serve(procs, workdir, name, args, port, env=None):
    """Start ``args`` (a server on ``port``) logging to <workdir>/<name>.log; wait for it."""
    log_path = os.path.join(workdir, f"{name}.log")
    proc = procs.start(args, log_path, cwd=workdir, env=env or child_env())
    wait_until_serving(proc, port, log_path)
    return proc, log_path


class App:
    """``take-a-number serve`` in a child process, on its own database and port."""

    def __init__(self, proc, port, log_path, ini, database, secret, prepared):
        self.proc, self.port, self.log_path, self.ini = proc, port, log_path, ini
        self.database, self.secret, self.prepared = database, secret, prepared


def start_app(
    procs,
    workdir,
    app_ini,
    prepare,
    overrides=None,
    command=None,
    env=None,
    database=None,
    secret=None,
    name="take-a-number",
    workers=1,
):
    """The app from a temporary ini made of app.ini; ``prepare(database)`` writes its
    data through the store before it starts (what it returns is ``App.prepared``).
    ``command`` replaces ``take-a-number`` (e.g. probe_server.py). ``database`` (a
    path or a PostgreSQL URL) and ``secret`` let several instances share both; each
    is then started with its own ``name`` (its ini and log) and ``prepare`` may do
    nothing for all but the first. ``workers``: serve's worker processes, 1 (one
    process, as the benchmarks measured before serve had workers) unless a
    benchmark asks for more, or None for app.ini's (many_waiting.py)."""
    port = free_port()
    ini = os.path.join(workdir, f"{name}.ini" if name != "take-a-number" else "app.ini")
    database = database or os.path.join(workdir, "var", "benchmark.sqlite")
    secret = secret or secrets.token_urlsafe(48)
    write_ini(ini, app_ini, port, database, secret, overrides, workers)
    prepared = prepare(database)
    if command is None:
        cli = os.path.join(os.path.dirname(sys.executable), "take-a-number")
        command = [cli] if os.path.exists(cli) else [sys.executable, "-m", "take_a_number.cli"]
    proc, log_path = serve(procs, workdir, name, command + ["--config", ini, "serve"], port, env)
    return App(proc, port, log_path, ini, database, secret, prepared)


def new_store(database):
    """The app's store on ``database``, migrated: for preparing a benchmark's data."""
    from take_a_number.store import Store

    store = Store(database)
    store.migrate()
    return store


# -- clients -------------------------------------------------------------------------


def set_cookies(response):
    cookies = {}
    for name, value in response.getheaders():
        if name.lower() == "set-cookie":
            key, _, val = value.split(";", 1)[0].partition("=")
            cookies[key.strip()] = val.strip()
    return cookies


def http_request(port, method, path, cookie=None, body=None, timeout=10):
    """One request on a new connection: (status, Location, cookies set, text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        if cookie:
            headers["Cookie"] = cookie
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", errors="replace")
        return response.status, response.getheader("Location"), set_cookies(response), text
    finally:
        conn.close()


class KeepAlive:
    """One keep-alive HTTP/1.1 connection, timed per request."""

    def __init__(self, port, timeout=30):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method, path, headers=None, body=None):
        started = time.monotonic()
        self.conn.request(method, path, body=body, headers=headers or {})
        response = self.conn.getresponse()
        data = response.read()
        ended = time.monotonic()
        return response, data, started, ended

    def close(self):
        self.conn.close()


def timed_fresh(port, path, cookie=None, expected=200):
    """Milliseconds for one GET on a new connection (connect, request, whole answer)."""
    started = time.monotonic()
    status, _, _, text = http_request(port, "GET", path, cookie=cookie)
    elapsed = 1000 * (time.monotonic() - started)
    if status != expected:
        raise BenchmarkError(f"GET {path} answered {status}, expected {expected}")
    return elapsed, text


def new_browser(port, queue_id):
    """A new browser opens the queue page: its session cookie and CSRF token."""
    status, _, cookies, page = http_request(port, "GET", f"/{queue_id}")
    match = CSRF_INPUT.search(page)
    if status != 200 or "tan_session" not in cookies or not match:
        raise BenchmarkError(f"GET /{queue_id} gave no session and CSRF token (status {status})")
    return f"tan_session={cookies['tan_session']}", match.group(1)


def take_number(port, queue_id, cookie, csrf):
    """POST /<queue>/take; returns (ticket path, ticket cookie)."""
    body = urllib.parse.urlencode({"csrf_token": csrf})
    status, location, cookies, _ = http_request(port, "POST", f"/{queue_id}/take", cookie, body)
    ticket_cookie = f"tan_ticket_{queue_id}"
    if status != 303 or ticket_cookie not in cookies or not location:
        raise BenchmarkError(f"POST /{queue_id}/take answered {status}, not 303 with a ticket")
    return urllib.parse.urlsplit(location).path, f"{ticket_cookie}={cookies[ticket_cookie]}"


def console(port, queue_id, cookie):
    """The servicer's console: its CSRF token."""
    status, _, _, page = http_request(port, "GET", f"/{queue_id}/serve", cookie)
    match = CSRF_INPUT.search(page)
    if status != 200 or not match or "serve/next" not in page:
        raise BenchmarkError(f"GET /{queue_id}/serve after signing in gave no console ({status})")
    return match.group(1)


def sign_in_servicer(port, queue_id, name="Desk 1", password=PASSWORD):
    """Sign a servicer in as a browser does; returns (cookie, csrf token)."""
    status, _, cookies, page = http_request(port, "GET", f"/{queue_id}/serve")
    match = CSRF_INPUT.search(page)
    if status != 200 or "tan_session" not in cookies or not match:
        raise BenchmarkError(f"GET /{queue_id}/serve gave no sign-in form (status {status})")
    cookie = f"tan_session={cookies['tan_session']}"
    body = urllib.parse.urlencode(
        {"csrf_token": match.group(1), "name": name, "password": password}
    )
    status, _, cookies, _ = http_request(port, "POST", f"/{queue_id}/sign-in", cookie, body)
    if status != 303 or "tan_session" not in cookies:
        raise BenchmarkError(f"POST /{queue_id}/sign-in answered {status}, not 303 with a session")
    cookie = f"tan_session={cookies['tan_session']}"
    return cookie, console(port, queue_id, cookie)


class _Retired(asyncio.Protocol):
    """Takes over a connection the server closes after its last answer, so that its
    end (expected) does not reach the page's ``connection_lost``."""


class LongPoll(asyncio.Protocol):
    """A live page following ``path``/updates as live.js does: ``GET
    <path>/updates?since=<version>``, asked again by ``answered``. Subclasses say
    what an answer means in ``answered(status, body, received)`` (``received``: when
    its last bytes arrived) and ask again with ``send()``, now, or later with
    ``send_if_open()``.

    Long-poll (``stream=False``): ``Accept: application/json``, one JSON answer
    (Content-Length, or chunked) per request, on one keep-alive connection.

    ``stream=True``: ``Accept: text/event-stream``. A streamed answer (chunked
    Server-Sent Events) calls ``answered(200, <its data>, received)`` once per data
    event; comments are skipped (``heartbeats`` counts those after the stream's
    first line). While a stream is open, ``send()`` only notes that the page wants
    more: the stream's next event is its next answer. The server closes the
    connection when the stream ends; the protocol then leaves that connection
    (its end is not a ``connection_lost``) and, if the page asked again after the
    last event (it does not after ``retry_after``), opens a new one itself with
    ``loop.create_connection`` to the same address, which sends ``?since=`` the
    last version: ``stream_ends`` and ``reconnections`` count both. A JSON answer
    (a server that cannot stream, 204, 4xx) is taken as in long-poll mode, on the
    same keep-alive connection unless it says ``Connection: close`` (then as at a
    stream's end); ``fallbacks`` counts those to requests with ``since``.
    ``connection_lost`` is only called for a connection that ends otherwise."""

    def __init__(self, host, path, cookie=None, stream=False):
        self.host = host
        self.request_path = f"{path}/updates"
        self.extra_headers = f"Cookie: {cookie}\r\n" if cookie else ""
        self.accept = "text/event-stream" if stream else "application/json"
        self.stream = stream
        self.transport = None
        self.address = None  # the server's (host, port), for the next connection
        self.version = None
        self._sent_since = None  # the ?since= of the last request sent (None: none)
        self._again = False  # the page asked again since its last answer
        self._last_answer = False  # the connection ends after the answer being read
        self.retired = False  # its connection left after a stream's end, a new one not yet open
        self._connecting = None  # the task opening the next connection
        self.streams = self.stream_ends = self.reconnections = 0
        self.events = self.heartbeats = self.fallbacks = 0
        self._start_reading()

    def _start_reading(self):
        self.buffer = bytearray()
        self.header = None  # (status, content_length, chunked, is_stream) of the answer
        self._chunk_size = None  # chunked: the current chunk's size, once its line is read
        self._body = bytearray()  # chunked, not a stream: the body so far
        self._text = bytearray()  # a stream: what is not yet split into lines
        self._lines = 0  # a stream: lines read so far
        self._data = None  # a stream: the event's data lines so far

    def connection_made(self, transport):
        if self.address is not None:
            self.reconnections += 1
        self.address = transport.get_extra_info("peername")[:2]
        self.transport, self.retired, self._connecting = transport, False, None
        self._start_reading()
        self.send()

    def send(self):
        self._again = True
        if self.stream and (self._last_answer or self.transport is None):
            # The next request goes on a new connection, once this one's answer ends.
            if self.retired and not self._last_answer:
                self.reconnect()
            return
        self._sent_since = self.version
        query = "" if self.version is None else f"?since={self.version}"
        self.transport.write(
            f"GET {self.request_path}{query} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Accept: {self.accept}\r\n{self.extra_headers}\r\n".encode("latin-1")
        )

    def send_if_open(self):
        """``send()``, unless the page's connection was closed or lost meanwhile."""
        if self.retired or (self.transport is not None and not self.transport.is_closing()):
            self.send()

    def reconnect(self):
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self):
        try:
            await asyncio.get_running_loop().create_connection(lambda: self, *self.address)
        except OSError as error:
            self._connecting, self.retired = None, False
            self.connection_lost(error)

    def data_received(self, data):
        received = time.monotonic()
        self.buffer += data
        # Until the buffer is used up, or the page or a stream's end closed the connection.
        while self.transport is not None and not self.transport.is_closing():
            if self.header is None:
                if not self._read_header():
                    return
            elif self.header[2]:
                if not self._read_chunk(received):
                    return
            else:
                status, length, _, _ = self.header
                if len(self.buffer) < length:
                    return
                body = bytes(self.buffer[:length])
                del self.buffer[:length]
                self._ended(body, received)

    def _read_header(self):
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        status = int(lines[0].split()[1])
        length, chunked, content_type, close = 0, False, "", False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "content-type":
                content_type = value
            elif name == "connection":
                close = "close" in value
        is_stream = content_type.startswith("text/event-stream")
        if is_stream and not self.stream:
            raise RuntimeError(f"{self.request_path} answered a long-poll with a stream")
        if is_stream and not chunked:
            raise RuntimeError(f"{self.request_path} streamed without chunked framing")
        self.header = (status, length, chunked, is_stream)
        if self.stream:
            # The server closes the connection after a stream, or when it says so.
            self._last_answer = is_stream or close
            if is_stream:
                self.streams += 1
            elif self._sent_since is not None:
                self.fallbacks += 1
        return True

    def _read_chunk(self, received):
        """One piece of a chunked body: a chunk's size line, its data, or after the
        last chunk (size 0) its trailer lines and the blank line that ends the body."""
        if self._chunk_size is None or self._chunk_size == 0:
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return False
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            if self._chunk_size is None:
                self._chunk_size = int(line.split(b";")[0], 16)
            elif not line:  # the end of the body
                self._chunk_size = None
                self._ended(bytes(self._body), received)
            return True
        size = self._chunk_size
        if len(self.buffer) < size + 2:
            return False
        if self.buffer[size : size + 2] != b"\r\n":
            raise RuntimeError(f"{self.request_path}: a chunk not ended by CRLF")
        data = bytes(self.buffer[:size])
        del self.buffer[: size + 2]
        self._chunk_size = None
        if self.header[3]:
            self._read_events(data, received)
        else:
            self._body += data
        return True

    def _read_events(self, data, received):
        """Server-Sent Events: lines end with CRLF, LF or CR; a blank line ends an
        event, whose ``data:`` lines (one space after the colon dropped) joined with
        LF are its data; lines beginning with a colon are comments."""
        self._text += data
        while self.transport is not None and not self.transport.is_closing():
            match = re.search(rb"[\r\n]", self._text)
            if match is None:
                return
            end = match.start()
            if self._text[end] == 13 and end + 1 == len(self._text):
                return  # CR last: the next chunk may begin with its LF
            skip = 2 if self._text[end : end + 2] == b"\r\n" else 1
            line = bytes(self._text[:end])
            del self._text[: end + skip]
            self._lines += 1
            if not line:
                data, self._data = self._data, None
                if data:
                    self.events += 1
                    self._answer(self.header[0], b"\n".join(data), received)
            elif line.startswith(b":"):
                if self._lines > 1:  # the first (": live") opens the stream
                    self.heartbeats += 1
            else:
                name, _, value = line.partition(b":")
                if name == b"data":
                    if self._data is None:
                        self._data = []
                    self._data.append(value[1:] if value[:1] == b" " else value)

    def _answer(self, status, body, received):
        self._again = False
        self.answered(status, body, received)

    def _ended(self, body, received):
        """The answer being read is whole: a JSON body, or a stream's terminator."""
        status, _, _, is_stream = self.header
        self.header, self._body = None, bytearray()
        if is_stream:
            self.stream_ends += 1
        else:
            self._answer(status, body, received)
        if self._last_answer:
            self._last_answer = False
            transport = self.transport
            if transport is None or transport.is_closing():
                return  # the page closed it itself
            self.transport, self.retired = None, True
            transport.set_protocol(_Retired())
            transport.close()
            if self._again:
                self.reconnect()

    def answered(self, status, body, received):
        raise NotImplementedError


async def connect_all(port, factories, batch=50):
    """Open a connection for each protocol factory, ``batch`` at a time: the protocols."""
    loop = asyncio.get_running_loop()
    protocols = []
    for start in range(0, len(factories), batch):
        made = await asyncio.gather(
            *(
                loop.create_connection(factory, "127.0.0.1", port)
                for factory in factories[start : start + batch]
            )
        )
        protocols.extend(protocol for _, protocol in made)
        await asyncio.sleep(0.02)
    return protocols


class ClientProcess:
    """Clients in a child process (``args``: a benchmark file and its child options),
    driven line by line: a command word on its stdin, ``WORD <json>`` on its stdout."""

    def __init__(self, procs, args, log_path):
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                start_new_session=True,
                env=child_env(),
            )
        procs.running.append(self.proc)  # stopped with the server, whatever happens
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, word, timeout):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchmarkError(f"the clients did not say {word} within {timeout} s") from None
        if line is None:
            raise BenchmarkError(
                f"the clients exited ({self.proc.poll()}); their log:\n"
                + read_log(self.log_path)[-3000:]
            )
        head, _, rest = line.partition(" ")
        if head != word:
            raise BenchmarkError(f"the clients said {line!r}, expected {word}")
        return json.loads(rest)

    def command(self, word, answer, timeout=30):
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()
        return self.expect(answer, timeout)

    def stop(self):
        """STOP: the child's last word (DONE), once it has exited."""
        done = self.command("STOP", "DONE", timeout=60)
        self.proc.wait(timeout=30)
        return done


def say(word, value):
    """The child's side of ClientProcess: one answer line."""
    sys.stdout.write(f"{word} {json.dumps(value)}\n")
    sys.stdout.flush()


async def obey(answers, timeout):
    """The child's side of ClientProcess: answer each command ``answers[word]()`` as
    ``say(word, ...)`` until STOP, the end of stdin or ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    commands = asyncio.Queue()

    def read_stdin():
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "STOP")

    threading.Thread(target=read_stdin, daemon=True).start()
    deadline = loop.time() + timeout
    while True:
        try:
            command = await asyncio.wait_for(commands.get(), deadline - loop.time())
        except TimeoutError:
            return
        if command == "STOP":
            return
        if command in answers:
            say(command, answers[command]())


# -- /proc -----------------------------------------------------------------------


def cpu_seconds(pid):
    """User + system CPU time of a process so far, from /proc (None elsewhere)."""
    times = user_system_seconds(pid)
    return None if times is None else sum(times)


def _stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command's name, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def user_system_seconds(pid):
    fields = _stat_fields(pid)
    if fields is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _children_of():
    """{pid: [its children's pids]} of every process, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat", encoding="ascii") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry))
    return children


def process_tree(pid):
    """``pid`` and all its living descendants (a serve's workers, say)."""
    children, tree = _children_of(), [pid]
    for member in tree:
        tree.extend(children.get(member, []))
    return tree


def tree_user_system_seconds(pid):
    """User and system CPU time of a process and of all its children, living and
    ended (the children it waited for): PostgreSQL's postmaster and its backends,
    nginx's master and its workers, serve and its worker processes. None if it
    is gone."""
    if _stat_fields(pid) is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0.0
    for member in process_tree(pid):
        fields = _stat_fields(member)
        if fields is not None:  # utime stime cutime cstime
            user += (int(fields[11]) + int(fields[13])) / tick
            system += (int(fields[12]) + int(fields[14])) / tick
    return user, system


def tree_cpu_seconds(pid):
    """User + system CPU time of a process and its children (tree_user_system_seconds)."""
    times = tree_user_system_seconds(pid)
    return None if times is None else sum(times)


class ReadOnly:
    """Rows read from the app's database (a SQLite path or a PostgreSQL URL), on a
    connection of the benchmark's own; SQL written as the store writes it (``?``)."""

    def __init__(self, database):
        from take_a_number.store.postgresql import is_postgresql_url, placeholders

        if is_postgresql_url(database):
            import psycopg

            self.conn = psycopg.connect(database, autocommit=True)
            self.sql = placeholders
        else:
            self.conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
            self.sql = str

    def query(self, sql, params=()):
        return self.conn.execute(self.sql(sql), params).fetchall()

    def close(self):
        self.conn.close()


def busy_cpu_seconds():
    """CPU time all processes of the machine have used, from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_idle(limit):
    """Wait up to ``limit`` seconds for other processes to leave the CPUs alone."""
    deadline = time.monotonic() + limit
    while True:
        before = busy_cpu_seconds()
        time.sleep(2)
        after = busy_cpu_seconds()
        if before is None:
            return
        busy = 100 * (after - before) / 2
        if busy <= OTHER_CPU_WARNING:
            return
        if time.monotonic() >= deadline:
            print(
                f"  the machine is still busy ({busy:.0f}% of a core); measuring anyway", flush=True
            )
            return
        print(f"  waiting for an idle machine: {busy:.0f}% of a core busy", flush=True)


def proc_status(pid):
    """Of a process and its descendants together (serve's workers): VmRSS, VmHWM
    (the sum of each one's peak) and Pss (shared pages counted once) in MiB,
    Threads, open file descriptors, and how many processes."""
    out = {}
    tree = process_tree(pid)
    for member in tree:
        with contextlib.suppress(OSError), open(f"/proc/{member}/status", encoding="ascii") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    key = key + "_MiB"
                    out[key] = round(out.get(key, 0) + int(value.split()[0]) / 1024, 1)
                elif key == "Threads":
                    out["threads"] = out.get("threads", 0) + int(value)
        with (
            contextlib.suppress(OSError),
            open(f"/proc/{member}/smaps_rollup", encoding="ascii") as f,
        ):
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss_MiB"] = round(out.get("Pss_MiB", 0) + int(line.split()[1]) / 1024, 1)
        with contextlib.suppress(OSError):
            out["open_fds"] = out.get("open_fds", 0) + len(os.listdir(f"/proc/{member}/fd"))
    out["processes"] = len(tree)
    return out


def nofile_limit(pid):
    """The soft limit on open files of a process (/proc/<pid>/limits)."""
    with contextlib.suppress(OSError), open(f"/proc/{pid}/limits", encoding="ascii") as f:
        for line in f:
            if line.startswith("Max open files"):
                value = line.split()[3]
                return int(value) if value.isdigit() else value
    return None


def context_switches(pid):
    """Voluntary and involuntary context switches so far of all the threads of a
    process and its descendants."""
    voluntary = involuntary = 0
    for member in process_tree(pid):
        tasks = []
        with contextlib.suppress(OSError):
            tasks = os.listdir(f"/proc/{member}/task")
        for task in tasks:
            with (
                contextlib.suppress(OSError),
                open(f"/proc/{member}/task/{task}/status", encoding="ascii") as f,
            ):
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        involuntary += int(line.split()[1])
    return voluntary, involuntary


class Meter:
    """CPU use over a stretch of time: the server (user, system, context switches),
    the clients' process, this process, and everything else on the machine."""

    def __init__(self, server_pid, client_pid):
        self.server_pid, self.client_pid = server_pid, client_pid
        self.start = self.read()

    def read(self):
        user, system = tree_user_system_seconds(self.server_pid) or (0.0, 0.0)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "time": time.monotonic(),
            "server_user": user,
            "server_system": system,
            "switches": context_switches(self.server_pid),
            "client": cpu_seconds(self.client_pid) or 0.0,
            "own": own.ru_utime + own.ru_stime,
            "busy": busy_cpu_seconds(),
        }

    def stop(self):
        a, b = self.start, self.read()
        seconds = b["time"] - a["time"]

        def pct(x):
            return round(100 * x / seconds, 2)

        server = (b["server_user"] - a["server_user"]) + (b["server_system"] - a["server_system"])
        result = {
            "seconds": round(seconds, 2),
            "server_cpu_percent": pct(server),
            "server_system_share_percent": round(
                100 * (b["server_system"] - a["server_system"]) / server, 1
            )
            if server
            else None,
            "server_context_switches_per_second": round(
                (b["switches"][0] + b["switches"][1] - a["switches"][0] - a["switches"][1])
                / seconds
            ),
            "clients_cpu_percent": pct(b["client"] - a["client"]),
            "benchmark_cpu_percent": pct(b["own"] - a["own"]),
        }
        if a["busy"] is not None and b["busy"] is not None:
            other = (
                (b["busy"] - a["busy"])
                - server
                - (b["client"] - a["client"])
                - (b["own"] - a["own"])
            )
            result["other_processes_cpu_percent"] = pct(max(0.0, other))
        return result


class Sampler(threading.Thread):
    """A process's RSS, threads, open files and CPU time, once a second."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.wait(1.0):
            self.samples.append(
                dict(proc_status(self.pid), t=time.monotonic(), cpu=tree_cpu_seconds(self.pid))
            )


# -- figures ---------------------------------------------------------------------


def percentile(values, p):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(values):
    """n, min, p50, p90, p99, max and mean of milliseconds."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min_ms": round(min(values), 2),
        "p50_ms": round(percentile(values, 50), 2),
        "p90_ms": round(percentile(values, 90), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "max_ms": round(max(values), 2),
        "mean_ms": round(sum(values) / len(values), 2),
    }


def fmt(s, keys=("p50_ms", "p99_ms", "max_ms")):
    if not s.get("n"):
        return "no samples"
    return ", ".join(f"{k[:-3]} {s[k]:.1f} ms" for k in keys) + f" (n={s['n']})"


def ratio(a, b):
    """``a`` as a multiple of the baseline ``b``, one decimal."""
    return round(a / b, 1) if a is not None and b else None


def machine():
    def version(args):
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return (proc.stdout + proc.stderr).strip().splitlines()[0]

    cpu = None
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version as package_version

    return {
        "app_commit": version(["git", "-C", ROOT, "describe", "--always", "--dirty"]),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version() + " (" + platform.python_implementation() + ")",
        "sqlite": sqlite3.sqlite_version,
        "waitress": package_version("waitress"),
        "wrk": version(["wrk", "-v"]),
    }


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def server_log_summary(path):
    """What the app server logged: waitress's "Task queue depth" warnings (a
    request waited for a free thread) counted, and any other warning or error
    kept whole, with its traceback."""
    depth_warnings, max_depth, others = 0, 0, []
    keeping = False
    for line in read_log(path).splitlines():
        if LOG_LINE.match(line):
            keeping = False
            match = re.search(r"Task queue depth is (\d+)", line)
            if match:
                depth_warnings += 1
                max_depth = max(max_depth, int(match.group(1)))
            elif " WARNI " in line or " ERROR " in line or " CRITI " in line:
                others.append(line)
                keeping = True
        elif keeping:
            others[-1] += "\n" + line
    return {
        "queue_depth_warnings": depth_warnings,
        "max_queue_depth": max_depth,
        "other_warnings": others,
    }


def write_json(path, results, indent=2):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=indent)
