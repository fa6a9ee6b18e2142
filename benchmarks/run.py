"""Load benchmark of Take A Number against a real waitress server (issue 2).

    .venv/bin/python benchmarks/run.py [--duration 30]
        [--only hello|take|ticket|floor-webob|floor-store]

Starts ``take-a-number serve`` on a temporary ini that reuses app.ini through
PasteDeploy (own database, rate limits for taking tickets and creating queues
off) and with app.ini's ``[server:main]`` settings on a free port, then drives it
with wrk and benchmarks/replay.lua:

* take:   100 concurrent clients taking a number in one queue: every request
          is a new browser's first ticket (POST /<queue>/take with its own
          session cookie and CSRF token, no ticket cookie).
* ticket: 100 concurrent browsers reading their ticket page
          (GET /<queue>/ticket/<token>, 100 distinct tickets, with their cookies).
* hello:  the baseline, a hello-world WSGI app (benchmarks/hello.py) served by
          waitress with the same settings, same wrk, same connections and duration.
* floor-webob, floor-store: the take scenario's requests against the two
          reference apps of benchmarks/floors.py, on the same settings: a take
          written by the app's store inside WebOb and Routes only, and inside a
          bare WSGI callable. How fast a take can be on this stack before any of
          the app's own work (sessions, CSRF, headers, URLs).

Prints requests/s, p50 and p99 latency per scenario, each scenario's throughput
as a percentage of hello-world, and the issue's goals; writes the figures as
JSON to benchmarks/results/. Every server it starts is stopped on exit, error or
Ctrl-C.
"""

import argparse
import configparser
import contextlib
import datetime
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APP_INI = os.path.join(ROOT, "app.ini")
LUA = os.path.join(HERE, "replay.lua")
HELLO = os.path.join(HERE, "hello.py")
FLOORS = os.path.join(HERE, "floors.py")
PROBE = os.path.join(HERE, "probe_server.py")
RESULTS_DIR = os.path.join(HERE, "results")

sys.path.insert(0, ROOT)

CONNECTIONS = 100
WRK_THREADS = 2
WRK_TIMEOUT = "10s"  # a slower response counts as a timeout error, not a latency
SERVER_START_TIMEOUT = 30.0
TAKE_QUEUE = "bench-take"
TICKET_QUEUE = "bench-ticket"
PASSWORD = "benchmark-password"

# New browsers made for the take scenario, per second of load: more than it
# can serve (floor-store included), so that no browser takes twice.
FRESH_BROWSERS_PER_SECOND = 6000
# Other processes using more than this % of one core make a run unreliable.
OTHER_CPU_WARNING = 10.0

# The goals.
GOAL_RATIO = 50.0  # % of hello-world requests/s
GOAL_P99_MS = 100.0

SCENARIOS = {
    "hello": "hello-world WSGI app (baseline)",
    "take": f"take a number: POST /{TAKE_QUEUE}/take",
    "ticket": f"read ticket page: GET /{TICKET_QUEUE}/ticket/<token>",
    "floor-webob": "floor: the write inside WebOb + Routes only",
    "floor-store": "floor: the write alone (bare WSGI)",
}
# Run and reported in this order.
ORDER = ("hello", "take", "floor-webob", "floor-store", "ticket")


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


def write_ini(path, app_ini, port, database=None, secret=None):
    """A PasteDeploy file: app.ini's app with overrides, its server on ``port``.

    Without ``database``, the file has no app (for hello.py). ``secret`` lets
    run.py sign session cookies as the app does.
    """
    out = configparser.ConfigParser(interpolation=None)
    out.optionxform = str
    if database:
        out["app:main"] = {
            "use": "config:" + APP_INI,
            "database": database,
            "secret": secret,
            "rate_limit_take_ticket": "off",
            "rate_limit_take_ticket_per_address": "off",
            "rate_limit_create_queue": "off",
        }
    out["server:main"] = dict(server_settings(app_ini), host="127.0.0.1", port=str(port))
    # app.ini's logging, so that `take-a-number serve` sets it up the same way.
    for section in app_ini.sections():
        if section in ("loggers", "handlers", "formatters") or section.startswith(
            ("logger_", "handler_", "formatter_")
        ):
            out[section] = dict(app_ini.items(section))
    with open(path, "w", encoding="utf-8") as f:
        out.write(f)


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


def start_app(procs, workdir, app_ini, probe=False):
    port = free_port()
    ini = os.path.join(workdir, "app.ini")
    database = os.path.join(workdir, "var", "benchmark.sqlite")
    secret = secrets.token_urlsafe(48)
    write_ini(ini, app_ini, port, database, secret)
    prepare_database(database)
    log_path = os.path.join(workdir, "take-a-number.log")
    command = os.path.join(os.path.dirname(sys.executable), "take-a-number")
    args = [command] if os.path.exists(command) else [sys.executable, "-m", "take_a_number.cli"]
    env = child_env()
    if probe:
        args = [sys.executable, PROBE]
        env["TAN_PROBE_OUT"] = os.path.join(workdir, "probe.json")
    proc = procs.start(args + ["--config", ini, "serve"], log_path, cwd=workdir, env=env)
    proc.probe_out = env.get("TAN_PROBE_OUT")
    wait_until_serving(proc, port, log_path)
    return proc, port, log_path, secret


def start_hello(procs, workdir, app_ini):
    port = free_port()
    ini = os.path.join(workdir, "hello.ini")
    write_ini(ini, app_ini, port)
    log_path = os.path.join(workdir, "hello.log")
    proc = procs.start([sys.executable, HELLO, ini], log_path, cwd=workdir, env=child_env())
    wait_until_serving(proc, port, log_path)
    return proc, port, log_path


def start_floor(procs, workdir, app_ini, kind):
    """benchmarks/floors.py's ``kind`` app on its own database, prepared as the app's."""
    port = free_port()
    ini = os.path.join(workdir, f"{kind}.ini")
    write_ini(ini, app_ini, port)
    database = os.path.join(workdir, "var", f"{kind}.sqlite")
    prepare_database(database)
    log_path = os.path.join(workdir, f"{kind}.log")
    proc = procs.start(
        [sys.executable, FLOORS, kind, ini, database], log_path, cwd=workdir, env=child_env()
    )
    wait_until_serving(proc, port, log_path)
    return proc, port, log_path


# -- data: queues, sessions and tickets ----------------------------------------


def prepare_database(database):
    """Both queues, made through the store before the server starts.

    The ticket queue gets a servicer and 19 served customers, so that ticket
    pages show "now serving" and compute a wait estimate as in real use.
    """
    from take_a_number.security import hash_password, new_token
    from take_a_number.store import Store

    store = Store(database)
    try:
        store.migrate()
        now = time.time()
        password_hash = hash_password(PASSWORD)
        store.create_queue(TAKE_QUEUE, "Benchmark: take a number", password_hash, now)
        store.create_queue(TICKET_QUEUE, "Benchmark: ticket pages", password_hash, now)
        start = now - 1200
        servicer = store.sign_in(TICKET_QUEUE, "Desk 1", start)
        for i in range(20):
            store.take_ticket(TICKET_QUEUE, new_token(), start + i)
        for i in range(20):
            store.call_next(servicer, start + 60 * i)
    finally:
        store.close()


def http_request(port, method, path, cookie=None, body=None, timeout=10):
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
        cookies = {}
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, val = value.split(";", 1)[0].partition("=")
                cookies[key.strip()] = val.strip()
        return response.status, response.getheader("Location"), cookies, text
    finally:
        conn.close()


CSRF_INPUT = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]+)">')


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


def write_clients(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            if any("\t" in field or "\n" in field for field in row):
                raise BenchmarkError(f"unexpected tab or newline in {row!r}")
            f.write("\t".join(row) + "\n")


def take_clients(port, workdir, secret):
    """New browsers about to take their first number: ``make(seconds, label)``.

    A browser holds one open ticket per queue (the app answers a second take
    with the ticket it holds), so every request must come from a new browser.
    A browser's session is made when it opens the queue page; fetching
    thousands of pages before the run would take long, so the sessions are
    signed here, with the app's own code and the secret of the temporary ini,
    after checking that the app accepts them as it accepts real ones.
    """
    minted, make = new_browsers(workdir, secret)
    # The real flow once, then minted sessions: each must get a new number.
    numbers = set()
    for cookie, csrf in [new_browser(port, TAKE_QUEUE), minted(), minted()]:
        ticket_path, _ = take_number(port, TAKE_QUEUE, cookie, csrf)
        status, _, _, page = http_request(port, "GET", ticket_path, cookie)
        match = re.search(r'class="number">\s*(\d+)', page)
        numbers.add(match.group(1) if match else ticket_path)
    if len(numbers) != 3:
        raise BenchmarkError("three new browsers did not get three new numbers")
    return make


def new_browsers(workdir, secret):
    """``minted()``: a new browser's session cookie and CSRF token, signed with
    ``secret`` as the app signs them; ``make(seconds, label)``: a wrk clients
    file of that many seconds' worth of new browsers taking a number."""
    from webob import Request

    from take_a_number.security import Session, SessionCookies

    # Sessions are signed for the path the app is mounted at: here, the root.
    serializer = SessionCookies(secret, 3600).serializer(Request.blank("/"))

    def minted():
        session = Session()
        return f"tan_session={serializer.dumps(dict(session)).decode('ascii')}", session["csrf"]

    def make(seconds, label):
        path = os.path.join(workdir, f"take-clients-{label}.tsv")
        count = FRESH_BROWSERS_PER_SECOND * seconds
        rows = []
        for _ in range(count):
            cookie, csrf = minted()
            body = urllib.parse.urlencode({"csrf_token": csrf})
            rows.append((f"/{TAKE_QUEUE}/take", cookie, body))
        write_clients(path, rows)
        return path

    return minted, make


def ticket_clients(port, workdir):
    """100 browsers that each took a number and now reload their ticket page."""
    rows = []
    for _ in range(CONNECTIONS):
        session, csrf = new_browser(port, TICKET_QUEUE)
        ticket_path, ticket_cookie = take_number(port, TICKET_QUEUE, session, csrf)
        rows.append((ticket_path, f"{session}; {ticket_cookie}", ""))
    status, _, cookies, page = http_request(port, "GET", rows[-1][0], rows[-1][1])
    if status != 200 or 'class="number"' not in page:
        raise BenchmarkError(f"GET {rows[-1][0]} answered {status}, not a waiting ticket page")
    if cookies:
        raise BenchmarkError(f"a ticket page reload set cookies {sorted(cookies)}; expected none")
    path = os.path.join(workdir, "ticket-clients.tsv")
    write_clients(path, rows)
    return lambda seconds, label: path


def hello_clients(workdir):
    path = os.path.join(workdir, "hello-clients.tsv")
    write_clients(path, [("/", "", "")])
    return lambda seconds, label: path


# -- wrk ---------------------------------------------------------------------------


def run_wrk(port, method, clients, expected, mode, duration, procs_timeout):
    args = [
        "wrk",
        f"--threads={WRK_THREADS}",
        f"--connections={CONNECTIONS}",
        f"--duration={duration}s",
        f"--timeout={WRK_TIMEOUT}",
        "--script",
        LUA,
        f"http://127.0.0.1:{port}",
        "--",
        method,
        clients,
        str(expected),
        mode,
        str(WRK_THREADS),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=procs_timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise BenchmarkError(f"wrk exited with {proc.returncode} and no result:\n{out}\n{err}")


def cpu_seconds(pid):
    """User + system CPU time of a process so far, from /proc (None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def read_probe(server):
    """The probe server's summary of the write transactions since the last reset."""
    path = server.probe_out
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
    os.kill(server.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as f:
            return json.load(f)
        time.sleep(0.05)
    raise BenchmarkError("the probe server wrote no transaction summary")


def measure(name, server, port, method, clients, expected, mode, args):
    """Warm up, then measure one scenario; ``clients(seconds, label)`` gives the file."""
    if args.wait_idle:
        wait_for_idle(args.wait_idle)
    if args.warmup:
        print(f"  warm-up {args.warmup} s ...", flush=True)
        run_wrk(
            port,
            method,
            clients(args.warmup, "warmup"),
            expected,
            mode,
            args.warmup,
            args.warmup + 30,
        )
    measured_clients = clients(args.duration, "measure")
    print(f"  measuring {args.duration} s with {CONNECTIONS} connections ...", flush=True)
    if args.probe and name != "hello":
        os.kill(server.pid, signal.SIGUSR1)  # forget the warm-up's transactions
    busy_before, wrk_before = busy_cpu_seconds(), children_cpu_seconds()
    cpu_before = cpu_seconds(server.pid)
    raw = run_wrk(port, method, measured_clients, expected, mode, args.duration, args.duration + 60)
    cpu_after = cpu_seconds(server.pid)
    busy_after, wrk_after = busy_cpu_seconds(), children_cpu_seconds()
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    errors = raw["errors"]
    result = {
        "scenario": name,
        "description": SCENARIOS[name],
        "expected_status": expected,
        "seconds": round(seconds, 2),
        "requests": raw["requests"],
        "ok": raw["ok"],
        "ok_per_second": round(raw["ok"] / seconds, 1),
        "requests_per_second": round(raw["requests"] / seconds, 1),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "p99_9_ms": round(lat["p99_9"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "mean_ms": round(lat["mean"] / 1000, 2),
        "unexpected_statuses": raw["unexpected"],
        "repeated_browsers": raw["reused"],
        "socket_errors": {k: v for k, v in errors.items() if k != "status"},
        "non_2xx_3xx": errors["status"],
        "wrk_cpu_percent": round(100 * (wrk_after - wrk_before) / seconds, 1),
    }
    if cpu_before is not None and cpu_after is not None:
        cpu = cpu_after - cpu_before
        result["server_cpu_percent"] = round(100 * cpu / seconds, 1)
        result["server_cpu_ms_per_request"] = round(1000 * cpu / max(1, raw["requests"]), 3)
        if busy_before is not None:
            other = busy_after - busy_before - cpu - (wrk_after - wrk_before)
            result["other_processes_cpu_percent"] = round(100 * max(0.0, other) / seconds, 1)
    print(
        f"  {result['ok_per_second']:.1f} req/s ({expected}), p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms, other statuses {result['unexpected_statuses'] or 'none'}, "
        f"socket errors {sum(result['socket_errors'].values())}; server CPU "
        f"{result.get('server_cpu_percent', '?')}% of one core, "
        f"{result.get('server_cpu_ms_per_request', '?')} ms/request; wrk CPU "
        f"{result['wrk_cpu_percent']}%; other processes "
        f"{result.get('other_processes_cpu_percent', '?')}%",
        flush=True,
    )
    if args.probe and name != "hello":
        result["write_transactions"] = read_probe(server)
        wait, held = (
            result["write_transactions"][k] for k in ("wait_for_write_lock", "write_lock_held")
        )
        if wait["count"]:
            print(
                f"  writes: {wait['count']}; wait for the write lock p50 "
                f"{wait.get('p50_ms')} p99 {wait.get('p99_ms')} max {wait['max_ms']} ms; "
                f"lock held p50 {held.get('p50_ms')} p99 {held.get('p99_ms')} max "
                f"{held['max_ms']} ms (mean {held['mean_ms']} ms)",
                flush=True,
            )
    if raw["reused"]:
        print(
            f"  warning: {raw['reused']} requests reused a browser (raise "
            "FRESH_BROWSERS_PER_SECOND); those got the ticket the browser held",
            flush=True,
        )
    if result.get("other_processes_cpu_percent", 0) > OTHER_CPU_WARNING:
        print(
            f"  warning: other processes used {result['other_processes_cpu_percent']}% of a "
            "core during this run; figures are low and noisy",
            flush=True,
        )
    return result


# -- machine and report --------------------------------------------------------------


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

    commit = version(["git", "-C", ROOT, "describe", "--always", "--dirty"])
    return {
        "app_commit": commit,
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version() + " (" + platform.python_implementation() + ")",
        "sqlite": sqlite3.sqlite_version,
        "waitress": package_version("waitress"),
        "wrk": version(["wrk", "-v"]),
    }


def report(results, info, args, server):
    print()
    print("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"Server: waitress from app.ini [server:main] ({server}); wrk {WRK_THREADS} threads, "
        f"{CONNECTIONS} connections, {args.duration} s per scenario, warm-up {args.warmup} s"
    )
    hello = results.get("hello")
    print()
    header = (
        f"{'scenario':<52} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'% hello':>7} "
        f"{'errors':>6} {'srv CPU ms/req':>14} {'other CPU %':>11}"
    )
    print(header)
    print("-" * len(header))
    for name in ORDER:
        r = results.get(name)
        if r is None:
            continue
        if hello and name != "hello":
            r["percent_of_hello"] = round(100 * r["ok_per_second"] / hello["ok_per_second"], 1)
        ratio = f"{r['percent_of_hello']:.1f}" if "percent_of_hello" in r else "-"
        errors = sum(r["unexpected_statuses"].values()) + sum(r["socket_errors"].values())
        print(
            f"{r['description']:<52} {r['ok_per_second']:>8.1f} {r['p50_ms']:>7.1f} "
            f"{r['p99_ms']:>7.1f} {ratio:>7} {errors:>6} "
            f"{r.get('server_cpu_ms_per_request', '?'):>14} "
            f"{r.get('other_processes_cpu_percent', '?'):>11}"
        )
    print(
        "(req/s: responses with the expected status per second; errors: other statuses and "
        "socket errors; srv CPU: the server process's CPU time per request; other CPU: "
        "% of one core used by other processes during the run)"
    )
    goals = []
    for name, label in (("take", "taking a number"), ("ticket", "reading a ticket page")):
        r = results.get(name)
        if r is None:
            continue
        if "percent_of_hello" in r:
            goals.append(
                (
                    f"{label} >= {GOAL_RATIO:.0f}% of hello-world",
                    f"{r['percent_of_hello']:.1f}%",
                    r["percent_of_hello"] >= GOAL_RATIO,
                )
            )
        goals.append(
            (
                f"{label} p99 < {GOAL_P99_MS:.0f} ms",
                f"{r['p99_ms']:.1f} ms",
                r["p99_ms"] < GOAL_P99_MS,
            )
        )
    if goals:
        print()
        print("Goals (issue 2):")
        for label, value, met in goals:
            print(f"  {'MET    ' if met else 'NOT MET'}  {label}: {value}")
    if "floor-webob" in results or "floor-store" in results:
        print()
        print(
            "Floors: the same takes written by the same store, inside WebOb and Routes only "
            "(floor-webob) and inside a bare WSGI callable (floor-store); a take through the "
            "app can reach neither."
        )
    print()
    print(
        "Reference: the original system served 2-3 requests/s with ~50 s responses at "
        "100 clients; a plain Flask+sqlite3 version reached about 37% (take) and 10% "
        "(ticket) of hello-world."
    )
    return goals


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


# -- main --------------------------------------------------------------------------


def duration_arg(text):
    value = int(text)
    if not 30 <= value <= 60:
        raise argparse.ArgumentTypeError("duration must be 30 to 60 seconds")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=duration_arg,
        default=30,
        help="seconds of load per scenario, 30 to 60 (default 30)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="seconds of unmeasured load before each scenario (default 3)",
    )
    parser.add_argument(
        "--only",
        choices=sorted(SCENARIOS),
        action="append",
        help="run only this scenario (repeatable); ratios need hello",
    )
    parser.add_argument(
        "--wait-idle",
        type=int,
        default=0,
        metavar="SECONDS",
        help="before each scenario, wait up to this long for other processes "
        "to stop using the CPUs (default 0: do not wait)",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="serve through benchmarks/probe_server.py and report how long "
        "writes wait for and hold the process's write lock",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="3 s per scenario, to check the harness (not a measurement)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="write results here (default benchmarks/results/<time>.json)"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 if a goal is not met"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.duration, args.warmup = 3, 1
    if not 0 <= args.warmup <= 30:
        parser.error("--warmup must be 0 to 30 seconds")
    if not 0 <= args.wait_idle <= 600:
        parser.error("--wait-idle must be 0 to 600 seconds")
    return args


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "error: wrk is not installed; install it with: apt-get install -y wrk", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    selected = [name for name in ORDER if name in (args.only or ORDER)]
    app_ini = read_app_ini()
    settings = server_settings(app_ini)
    server = ", ".join(f"{k}={v}" for k, v in settings.items() if k not in ("use", "host", "port"))
    info = machine()
    print(
        f"Take A Number load benchmark: {', '.join(selected)}; {info['nproc']} CPUs, "
        f"Python {info['python']}; server {server}",
        flush=True,
    )
    procs = Processes()
    results = {}
    server_log = None
    workdir = tempfile.mkdtemp(prefix="tan-bench-")
    try:
        if "hello" in selected:
            print(f"[hello] {SCENARIOS['hello']}", flush=True)
            proc, port, _ = start_hello(procs, workdir, app_ini)
            clients = hello_clients(workdir)
            results["hello"] = measure("hello", proc, port, "GET", clients, 200, "cycle", args)
            procs.stop(proc)
        if "take" in selected or "ticket" in selected:
            print("[app] starting take-a-number serve ...", flush=True)
            proc, port, log_path, secret = start_app(procs, workdir, app_ini, args.probe)
            if "take" in selected:
                print(f"[take] {SCENARIOS['take']}", flush=True)
                clients = take_clients(port, workdir, secret)
                results["take"] = measure("take", proc, port, "POST", clients, 303, "once", args)
            if "ticket" in selected:
                print(f"[ticket] {SCENARIOS['ticket']}", flush=True)
                clients = ticket_clients(port, workdir)
                results["ticket"] = measure(
                    "ticket", proc, port, "GET", clients, 200, "cycle", args
                )
            procs.stop(proc)
            server_log = server_log_summary(log_path)
        for name in ("floor-webob", "floor-store"):
            if name in selected:
                print(f"[{name}] {SCENARIOS[name]}", flush=True)
                kind = name.split("-", 1)[1]
                proc, port, _ = start_floor(procs, workdir, app_ini, kind)
                # Same requests as the take scenario's; these apps do not check the signature.
                _, clients = new_browsers(workdir, secrets.token_urlsafe(48))
                results[name] = measure(name, proc, port, "POST", clients, 303, "once", args)
                procs.stop(proc)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        for name in ("take-a-number.log", "hello.log", "webob.log", "store.log"):
            tail = read_log(os.path.join(workdir, name)).splitlines()[-30:]
            if tail:
                print(f"last lines of the {name}:", *tail, sep="\n  ", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    goals = report(results, info, args, server)
    if server_log and (server_log["queue_depth_warnings"] or server_log["other_warnings"]):
        print(
            f"App server log: {server_log['queue_depth_warnings']} waitress 'Task queue depth' "
            f"warnings (max depth {server_log['max_queue_depth']}), "
            f"{len(server_log['other_warnings'])} other warnings/errors"
        )
        seen = set()
        for entry in server_log["other_warnings"]:
            lines = entry.splitlines()
            key = (lines[0][24:], lines[-1])  # message and exception, without the time
            if key not in seen:
                seen.add(key)
                print(
                    "  "
                    + "\n  ".join(lines if len(lines) < 8 else [*lines[:2], "  ...", *lines[-5:]])
                )
        server_log["other_warnings"] = server_log["other_warnings"][:20]
    path = args.json or os.path.join(
        RESULTS_DIR, datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json"
    )
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(
            {
                "machine": info,
                "server": settings,
                "wrk": {"threads": WRK_THREADS, "connections": CONNECTIONS, "timeout": WRK_TIMEOUT},
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "smoke": args.smoke,
                "probe": args.probe,
                "results": results,
                "goals": [{"goal": g, "value": v, "met": m} for g, v, m in goals],
                "server_log": server_log,
            },
            f,
            indent=2,
        )
    print(f"\nResults written to {os.path.relpath(path)}")
    if args.check and not all(met for _, _, met in goals):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
