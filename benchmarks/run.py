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
import contextlib
import datetime
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402  benchmarks/harness.py: what every benchmark shares

LUA = os.path.join(HERE, "replay.lua")
HELLO = os.path.join(HERE, "hello.py")
FLOORS = os.path.join(HERE, "floors.py")
PROBE = os.path.join(HERE, "probe_server.py")
RESULTS_DIR = os.path.join(HERE, "results")

CONNECTIONS = 100
WRK_THREADS = 2
WRK_TIMEOUT = "10s"  # a slower response counts as a timeout error, not a latency
TAKE_QUEUE = "bench-take"
TICKET_QUEUE = "bench-ticket"

# New browsers made for the take scenario, per second of load: more than it
# can serve (floor-store included), so that no browser takes twice.
FRESH_BROWSERS_PER_SECOND = 6000

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


def start_probed_app(procs, workdir, app_ini, probe=False):
    """The app, through benchmarks/probe_server.py with ``probe``."""
    if not probe:
        return harness.start_app(procs, workdir, app_ini, prepare_database)
    env = dict(harness.child_env(), TAN_PROBE_OUT=os.path.join(workdir, "probe.json"))
    app = harness.start_app(
        procs, workdir, app_ini, prepare_database, command=[sys.executable, PROBE], env=env
    )
    app.proc.probe_out = env["TAN_PROBE_OUT"]
    return app


def start_hello(procs, workdir, app_ini):
    port = harness.free_port()
    ini = os.path.join(workdir, "hello.ini")
    harness.write_ini(ini, app_ini, port)
    return harness.serve(procs, workdir, "hello", [sys.executable, HELLO, ini], port)[0], port


def start_floor(procs, workdir, app_ini, kind):
    """benchmarks/floors.py's ``kind`` app on its own database, prepared as the app's."""
    port = harness.free_port()
    ini = os.path.join(workdir, f"{kind}.ini")
    harness.write_ini(ini, app_ini, port)
    database = os.path.join(workdir, "var", f"{kind}.sqlite")
    prepare_database(database)
    args = [sys.executable, FLOORS, kind, ini, database]
    return harness.serve(procs, workdir, kind, args, port)[0], port


# -- data: queues, sessions and tickets ----------------------------------------


def prepare_database(database):
    """Both queues, made through the store before the server starts.

    The ticket queue gets a servicer and 19 served customers, so that ticket
    pages show "now serving" and compute a wait estimate as in real use.
    """
    from take_a_number.security import hash_password, new_token

    store = harness.new_store(database)
    try:
        now = time.time()
        password_hash = hash_password(harness.PASSWORD)
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


def write_clients(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            if any("\t" in field or "\n" in field for field in row):
                raise harness.BenchmarkError(f"unexpected tab or newline in {row!r}")
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
    for cookie, csrf in [harness.new_browser(port, TAKE_QUEUE), minted(), minted()]:
        ticket_path, _ = harness.take_number(port, TAKE_QUEUE, cookie, csrf)
        status, _, _, page = harness.http_request(port, "GET", ticket_path, cookie)
        match = re.search(r'class="number">\s*(\d+)', page)
        numbers.add(match.group(1) if match else ticket_path)
    if len(numbers) != 3:
        raise harness.BenchmarkError("three new browsers did not get three new numbers")
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
        session, csrf = harness.new_browser(port, TICKET_QUEUE)
        ticket_path, ticket_cookie = harness.take_number(port, TICKET_QUEUE, session, csrf)
        rows.append((ticket_path, f"{session}; {ticket_cookie}", ""))
    status, _, cookies, page = harness.http_request(port, "GET", rows[-1][0], rows[-1][1])
    if status != 200 or 'class="number"' not in page:
        raise harness.BenchmarkError(
            f"GET {rows[-1][0]} answered {status}, not a waiting ticket page"
        )
    if cookies:
        raise harness.BenchmarkError(
            f"a ticket page reload set cookies {sorted(cookies)}; expected none"
        )
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
    raise harness.BenchmarkError(f"wrk exited with {proc.returncode} and no result:\n{out}\n{err}")


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
    raise harness.BenchmarkError("the probe server wrote no transaction summary")


def measure(
    name, server, port, method, clients, expected, mode, args, description=None, meters=None
):
    """Warm up, then measure one scenario; ``clients(seconds, label)`` gives the file.

    ``meters``: {label: a function giving CPU seconds so far} of the processes that
    serve (default: ``server`` alone); each one's CPU time per request is in
    ``cpu_ms_per_request``, and all of them together in ``server_cpu_ms_per_request``.
    """
    meters = meters or {"server": lambda: harness.cpu_seconds(server.pid)}
    if args.wait_idle:
        harness.wait_for_idle(args.wait_idle)
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
    busy_before, wrk_before = harness.busy_cpu_seconds(), harness.children_cpu_seconds()
    before = {label: meter() for label, meter in meters.items()}
    raw = run_wrk(port, method, measured_clients, expected, mode, args.duration, args.duration + 60)
    after = {label: meter() for label, meter in meters.items()}
    busy_after, wrk_after = harness.busy_cpu_seconds(), harness.children_cpu_seconds()
    spent = {
        label: after[label] - before[label]
        for label in meters
        if before[label] is not None and after[label] is not None
    }
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    errors = raw["errors"]
    result = {
        "scenario": name,
        "description": description or SCENARIOS[name],
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
    result["cpu_ms_per_request"] = {
        label: round(1000 * cpu / max(1, raw["requests"]), 3) for label, cpu in spent.items()
    }
    result["cpu_percent"] = {label: round(100 * cpu / seconds, 1) for label, cpu in spent.items()}
    if len(spent) == len(meters):  # every serving process together
        cpu = sum(spent.values())
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
    if len(meters) > 1:
        print(
            "  CPU ms/request: "
            + ", ".join(f"{label} {ms}" for label, ms in result["cpu_ms_per_request"].items()),
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
    if result.get("other_processes_cpu_percent", 0) > harness.OTHER_CPU_WARNING:
        print(
            f"  warning: other processes used {result['other_processes_cpu_percent']}% of a "
            "core during this run; figures are low and noisy",
            flush=True,
        )
    return result


# -- machine and report --------------------------------------------------------------


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


def main(argv=None):
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print(
            "error: wrk is not installed; install it with: apt-get install -y wrk", file=sys.stderr
        )
        return 2
    harness.stop_on_signals()
    selected = [name for name in ORDER if name in (args.only or ORDER)]
    app_ini = harness.read_app_ini()
    settings = harness.server_settings(app_ini)
    server = harness.server_description(settings)
    info = harness.machine()
    print(
        f"Take A Number load benchmark: {', '.join(selected)}; {info['nproc']} CPUs, "
        f"Python {info['python']}; server {server}",
        flush=True,
    )
    procs = harness.Processes()
    results = {}
    server_log = None
    workdir = tempfile.mkdtemp(prefix="tan-bench-")
    try:
        if "hello" in selected:
            print(f"[hello] {SCENARIOS['hello']}", flush=True)
            proc, port = start_hello(procs, workdir, app_ini)
            clients = hello_clients(workdir)
            results["hello"] = measure("hello", proc, port, "GET", clients, 200, "cycle", args)
            procs.stop(proc)
        if "take" in selected or "ticket" in selected:
            print("[app] starting take-a-number serve ...", flush=True)
            app = start_probed_app(procs, workdir, app_ini, args.probe)
            proc, port, log_path, secret = app.proc, app.port, app.log_path, app.secret
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
            server_log = harness.server_log_summary(log_path)
        for name in ("floor-webob", "floor-store"):
            if name in selected:
                print(f"[{name}] {SCENARIOS[name]}", flush=True)
                kind = name.split("-", 1)[1]
                proc, port = start_floor(procs, workdir, app_ini, kind)
                # Same requests as the take scenario's; these apps do not check the signature.
                _, clients = new_browsers(workdir, secrets.token_urlsafe(48))
                results[name] = measure(name, proc, port, "POST", clients, 303, "once", args)
                procs.stop(proc)
    except harness.BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        harness.print_log_tails(
            workdir, ("take-a-number.log", "hello.log", "webob.log", "store.log")
        )
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
    harness.write_json(
        path,
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
    )
    print(f"\nResults written to {os.path.relpath(path)}")
    if args.check and not all(met for _, _, met in goals):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
