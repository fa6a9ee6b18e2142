"""Push benchmark: 500 customers wait at once while a servicer calls the next number.

    .venv/bin/python benchmarks/push.py [--waiters 500] [--calls 20] [--wait-idle 300]

Starts ``take-a-number serve`` on a temporary ini that reuses app.ini through
PasteDeploy (own database, rate limits off, app.ini's ``[server:main]`` on a free
loopback port: benchmarks/harness.py), makes one queue with
``--waiters`` waiting tickets, signs a servicer in over HTTP, then:

1. Baselines, with nobody waiting: the ticket page and the queue page on fresh
   connections; ``/static/style.css`` and an updates request the server answers
   at once (``?since=0``) on a keep-alive connection; a few servicer POSTs to
   ``/<queue>/serve/next``.
2. Starts the waiting customers in a child process (this file with
   ``--waiter-child``): one asyncio keep-alive HTTP/1.1 connection per ticket,
   each looping ``GET /<queue>/ticket/<token>/updates?since=<its last version>``
   and recording, per response, ``time.monotonic()`` at receipt, the version and
   the ticket's state, then asking again at once.
3. Idle: nothing changes for ``--idle`` seconds (default push_hold_seconds + 7,
   so that the window includes every held request timing out and being asked
   again). The server's CPU time (utime + stime from /proc/<pid>/stat), sampled
   each second: over the whole window, over its quiet part before the timeouts,
   and as a steady state (quiet part + one timeout burst per push_hold_seconds);
   the server's RSS, threads and open files.
4. Pages while all wait: the ticket page and the queue page, fresh connections.
5. Calls: the servicer presses Next ``--calls`` times, ``--interval`` apart and
   only once every customer is waiting again. Latency of a call = receipt time
   of the new version by a client - the time the servicer had read the whole
   303 answer (the same CLOCK_MONOTONIC, system-wide on Linux). Reported for the
   customer whose ticket became "called" and for every woken client. Just after
   each call, a ticket page and the queue page are fetched at once, each on a new
   connection (pages during calls).

Prints the figures, ratios against the baselines and the issue's goals; with
``--json PATH`` writes them as JSON. The machine's other CPU use is measured too
(/proc/stat): a run where other processes used more than 10 % of a core is
flagged, and ``--wait-idle`` first waits for a quiet machine. Takes about 75 s
(plus the wait). Every process it starts is stopped on exit, error, Ctrl-C,
SIGTERM or ``--timeout`` (default 300 s).
"""

import argparse
import asyncio
import contextlib
import datetime
import http.client
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import (  # noqa: E402  benchmarks/harness.py: what every benchmark shares
    APP_INI,
    OTHER_CPU_WARNING,
    PASSWORD,
    BenchmarkError,
    ClientProcess,
    KeepAlive,
    LongPoll,
    Meter,
    Processes,
    ReadOnly,
    app_settings,
    connect_all,
    cpu_seconds,
    fmt,
    http_request,
    machine,
    new_store,
    nofile_limit,
    obey,
    percentile,
    print_log_tails,
    proc_status,
    ratio,
    read_app_ini,
    say,
    server_description,
    server_log_summary,
    server_settings,
    set_cookies,
    sign_in_servicer,
    start_app,
    stop_on_signals,
    summary,
    timed_fresh,
    wait_for_idle,
)

QUEUE = "bench-push"

# The goals.
GOAL_P99_MS = 100.0  # notification latency with 500 waiting
GOAL_IDLE_CPU = 5.0  # % of one core, 500 waiting, nothing changing
GOAL_PAGE_P99_MS = 100.0  # "pages stay fast": the page goal of issue 2 (run.py)

HOLD_SECONDS_DEFAULT = 25  # take_a_number/config.py, if app.ini does not set it


# -- the waiting customers (child process) ----------------------------------------


class Waiter(LongPoll):
    """One customer's page: long-polls its ticket's updates URL on one connection."""

    def __init__(self, crowd, index, token):
        super().__init__(crowd.host, f"/{crowd.queue_id}/ticket/{token}")
        self.crowd = crowd
        self.index = index
        self.since = None
        self.sent_at = None
        self.outstanding = False
        self.ready = asyncio.get_running_loop().create_future()

    def send(self):
        self.since = self.version
        self.sent_at = time.monotonic()
        self.outstanding = True
        super().send()

    def answered(self, status, body, received):
        self.outstanding = False
        crowd = self.crowd
        delay = 0.0
        if status == 200:
            view = json.loads(body)
            version, state = view.get("version"), view.get("state")
            if "retry_after" in view:
                kind, delay = "full", float(view["retry_after"])
            elif self.since is None:
                kind = "initial"
            elif version > self.since:
                kind = "changed"
            else:
                kind = "timeout"
            self.version = version
        elif status == 204:
            kind, version, state = "gone", self.version, None
        else:
            kind, version, state, delay = f"http {status}", self.version, None, 1.0
        crowd.records.append((self.index, self.since, version, state, kind, self.sent_at, received))
        if not self.ready.done():
            if kind == "initial":
                self.ready.set_result(True)
            elif kind.startswith("http"):
                self.ready.set_exception(RuntimeError(f"first updates request answered {status}"))
        if delay:
            asyncio.get_running_loop().call_later(delay, self.send_if_open)
        else:
            self.send()

    def connection_lost(self, exc):
        if not self.crowd.stopping:
            self.crowd.records.append(
                (self.index, self.since, self.version, None, "lost", self.sent_at, time.monotonic())
            )
            self.crowd.lost += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection {self.index} lost: {exc}"))
        self.transport = None


class Crowd:
    def __init__(self, port, queue_id, tokens):
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.queue_id = queue_id
        self.tokens = tokens
        self.records = []
        self.waiters = []
        self.lost = 0
        self.stopping = False

    async def connect(self):
        self.waiters = await connect_all(
            self.port,
            [lambda i=i, t=token: Waiter(self, i, t) for i, token in enumerate(self.tokens)],
        )
        await asyncio.wait_for(asyncio.gather(*(w.ready for w in self.waiters)), timeout=60)
        # Every client got its first answer and has asked again with ``since``.

    def stats(self):
        kinds = {}
        for record in self.records:
            kinds[record[4]] = kinds.get(record[4], 0) + 1
        return {
            "connected": sum(1 for w in self.waiters if w.transport is not None),
            "outstanding": sum(1 for w in self.waiters if w.outstanding),
            "responses": len(self.records),
            "kinds": kinds,
            "lost": self.lost,
        }

    def close(self):
        self.stopping = True
        for waiter in self.waiters:
            if waiter.transport is not None:
                waiter.transport.close()


def waiter_child(args):
    """The child process: the crowd, driven by the parent's commands (ClientProcess)."""
    with open(args.tokens, encoding="ascii") as f:
        tokens = f.read().split()

    async def main():
        crowd = Crowd(args.port, args.queue, tokens)
        try:
            await crowd.connect()
        except Exception as error:  # reported to the parent, which gives up
            say("ERROR", f"{type(error).__name__}: {error}")
            crowd.close()
            return
        say("READY", crowd.stats())
        await obey({"STATS": crowd.stats}, args.child_timeout)
        stats = crowd.stats()
        crowd.close()
        await asyncio.sleep(0.1)
        with open(args.out, "w", encoding="ascii") as f:
            json.dump({"records": crowd.records, "stats": stats}, f)
        say("DONE", stats)

    asyncio.run(main())


def start_waiters(procs, port, tokens, workdir, timeout):
    """The waiting customers' process (this file with --waiter-child)."""
    tokens_path = os.path.join(workdir, "tokens.txt")
    with open(tokens_path, "w", encoding="ascii") as f:
        f.write("\n".join(tokens) + "\n")
    return ClientProcess(
        procs,
        [sys.executable, os.path.abspath(__file__), "--waiter-child", "--port", str(port)]
        + ["--queue", QUEUE, "--tokens", tokens_path, "--child-timeout", str(timeout)]
        + ["--out", os.path.join(workdir, "waiters.json")],
        os.path.join(workdir, "waiters.log"),
    )


def stop_waiters(crowd, workdir):
    """Their records and their last stats."""
    stats = crowd.stop()
    with open(os.path.join(workdir, "waiters.json"), encoding="ascii") as f:
        return json.load(f)["records"], stats


# -- setting up ----------------------------------------------------------------------


def prepare_database(database, tickets):
    """The queue and its tickets, written before the server starts; returns the tokens."""
    from take_a_number.security import hash_password, new_token

    store = new_store(database)
    try:
        now = time.time()
        store.create_queue(QUEUE, "Benchmark: push", hash_password(PASSWORD), now)
        return [
            store.take_ticket(QUEUE, new_token(), now + i / 1000)["token"] for i in range(tickets)
        ]
    finally:
        store.close()


def start_server(procs, workdir, app_ini, tickets):
    """The app with ``tickets`` waiting in QUEUE; the servicer's sign-in limit off too."""
    return start_app(
        procs,
        workdir,
        app_ini,
        lambda database: prepare_database(database, tickets),
        overrides={"rate_limit_sign_in": "off"},
    )


def customer_cookies(port, token):
    """A customer's browser: (cookie for the queue page, cookie for the ticket page)."""
    status, _, cookies, _ = http_request(port, "GET", f"/{QUEUE}")
    if status != 200 or "tan_session" not in cookies:
        raise BenchmarkError(f"GET /{QUEUE} answered {status} without a session")
    session = f"tan_session={cookies['tan_session']}"
    return session, f"{session}; tan_ticket_{QUEUE}={token}"


class Servicer:
    """The servicer's console on its own keep-alive connection."""

    def __init__(self, port, cookie, csrf, database):
        self.http = KeepAlive(port)
        self.cookie = cookie
        self.body = urllib.parse.urlencode({"csrf_token": csrf})
        self.db = ReadOnly(database)

    def call_next(self):
        """Press Next; returns (POST sent, whole 303 read, version after, called token)."""
        response, _, started, ended = self.http.request(
            "POST",
            f"/{QUEUE}/serve/next",
            {"Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded"},
            self.body,
        )
        if response.status != 303:
            raise BenchmarkError(f"POST /{QUEUE}/serve/next answered {response.status}")
        cookies = set_cookies(response)
        if "tan_session" in cookies:
            self.cookie = f"tan_session={cookies['tan_session']}"
        version = self.db.query("SELECT version FROM queues WHERE id = ?", (QUEUE,))[0]
        called = self.db.query(
            "SELECT token FROM tickets WHERE queue_id = ? AND state = 'called'", (QUEUE,)
        )
        if len(called) != 1:
            raise BenchmarkError(f"after Next, {len(called)} tickets are called, not 1")
        return started, ended, version[0], called[0][0]

    def close(self):
        self.http.close()
        self.db.close()


# -- phases ----------------------------------------------------------------------------


def page_probes(port, pages, count, pause=0.02):
    """``count`` ticket pages and queue pages, alternating, on fresh connections."""
    times = {"ticket": [], "queue": []}
    for _ in range(count):
        for kind in ("ticket", "queue"):
            path, cookie = pages[kind]
            times[kind].append(timed_fresh(port, path, cookie)[0])
            time.sleep(pause)
    return times


def fetch_together(port, pages):
    """Every page of ``pages`` at the same moment, each on its own connection: {kind: ms}."""
    times, errors = {}, []

    def fetch(kind):
        try:
            times[kind] = timed_fresh(port, *pages[kind])[0]
        except Exception as error:  # re-raised below, in the calling thread
            errors.append(error)

    threads = [threading.Thread(target=fetch, args=(kind,)) for kind in pages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return times


def baselines(port, pages, tokens, servicer, args):
    """Nobody waiting: pages, round trips and servicer POSTs."""
    http = KeepAlive(port)
    try:
        # Waitress hands each request to the thread idle longest, and each thread
        # opens its own SQLite connection on first use: warm every thread first.
        since0 = f"/{QUEUE}/ticket/{tokens[-1]}/updates?since=0"
        for _ in range(int(args.threads) + 40):
            http.request("GET", since0)
        for kind in ("ticket", "queue"):
            for _ in range(5):
                timed_fresh(port, *pages[kind])
        result = {"pages": page_probes(port, pages, args.pages)}
        trips = {"static_keepalive": [], "updates_at_once_keepalive": [], "static_fresh": []}
        for _ in range(args.pages):
            response, _, started, ended = http.request("GET", "/static/style.css")
            if response.status != 200:
                raise BenchmarkError(f"GET /static/style.css answered {response.status}")
            trips["static_keepalive"].append(1000 * (ended - started))
            response, data, started, ended = http.request("GET", since0)
            if response.status != 200 or b'"version"' not in data:
                raise BenchmarkError(f"GET {since0} answered {response.status}")
            trips["updates_at_once_keepalive"].append(1000 * (ended - started))
            trips["static_fresh"].append(timed_fresh(port, "/static/style.css")[0])
        result["round_trips"] = trips
    finally:
        http.close()
    posts = []
    for _ in range(args.baseline_calls):
        started, ended, _, _ = servicer.call_next()
        posts.append(1000 * (ended - started))
        time.sleep(0.2)
    result["post_next"] = posts
    return result


def idle_phase(server_pid, crowd, seconds):
    """CPU of the server, sampled each second, while every client waits and nothing changes."""
    meter = Meter(server_pid, crowd.proc.pid)
    samples = [(time.monotonic(), cpu_seconds(server_pid))]
    end = samples[0][0] + seconds
    while time.monotonic() < end:
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        samples.append((time.monotonic(), cpu_seconds(server_pid)))
    return samples, meter.stop()


def wait_all_waiting(crowd, waiters, limit=10.0):
    """Until every client has a request out again (answers read, new ones sent)."""
    deadline = time.monotonic() + limit
    while True:
        stats = crowd.command("STATS", "STATS")
        if stats["outstanding"] >= waiters or time.monotonic() >= deadline:
            return stats["outstanding"] >= waiters
        time.sleep(0.05)


def calls_phase(port, servicer, crowd, server_pid, pages, args):
    """Next, ``calls`` times; a ticket page and the queue page just after each."""
    calls, page_times = [], {"ticket": [], "queue": []}
    for k in range(args.calls):
        if k:
            time.sleep(args.interval)
        idle = wait_all_waiting(crowd, args.waiters)
        cpu_before = cpu_seconds(server_pid)
        started, ended, version, token = servicer.call_next()
        # Both pages 5 ms after the change, at once, while the server answers the woken
        # clients (one after the other, the second would mostly miss the burst).
        time.sleep(0.005)
        for kind, elapsed in fetch_together(port, pages).items():
            page_times[kind].append(elapsed)
        calls.append(
            {
                "post_started": started,
                "post_ended": ended,
                "version": version,
                "called_token": token,
                "started_idle": idle,
                "cpu_before": cpu_before,
            }
        )
    time.sleep(max(1.0, args.interval))
    wait_all_waiting(crowd, args.waiters)
    # Server CPU per call: from just before the POST to just before the next one.
    for k, call in enumerate(calls):
        after = calls[k + 1]["cpu_before"] if k + 1 < len(calls) else cpu_seconds(server_pid)
        call["server_cpu_ms"] = round(1000 * (after - call.pop("cpu_before")), 1)
    return calls, page_times


# -- analysis ----------------------------------------------------------------------------


def analyse_calls(calls, records, tokens_index):
    """Per call: who was woken with its version and when, relative to the POST."""
    by_version = {}
    for index, since, version, state, kind, _sent, received in records:
        if kind == "changed":
            by_version.setdefault(version, []).append((index, since, state, received))
    called_ms, called_from_start_ms, all_ms, all_from_start_ms, per_call = [], [], [], [], []
    for call in calls:
        wakes = by_version.get(call["version"], [])
        latencies = sorted(1000 * (r - call["post_ended"]) for _, _, _, r in wakes)
        all_ms.extend(latencies)
        all_from_start_ms.extend(1000 * (r - call["post_started"]) for _, _, _, r in wakes)
        called_index = tokens_index.get(call["called_token"])
        mine = [w for w in wakes if w[0] == called_index]
        entry = {
            "version": call["version"],
            "post_ms": round(1000 * (call["post_ended"] - call["post_started"]), 2),
            "woken": len(wakes),
            "started_idle": call["started_idle"],
            "server_cpu_ms": call["server_cpu_ms"],
            "first_ms": round(latencies[0], 2) if latencies else None,
            "last_ms": round(latencies[-1], 2) if latencies else None,
        }
        if mine:
            _, _, state, received = mine[0]
            latency = 1000 * (received - call["post_ended"])
            called_ms.append(latency)
            called_from_start_ms.append(1000 * (received - call["post_started"]))
            entry.update(
                called_ms=round(latency, 2),
                called_state=state,
                called_rank=sum(1 for x in latencies if x < latency) + 1,
            )
        else:
            entry.update(called_ms=None, called_state=None)
        per_call.append(entry)
    return {
        "called": summary(called_ms),
        "called_from_post_start": summary(called_from_start_ms),
        "all": summary(all_ms),
        "all_from_post_start": summary(all_from_start_ms),
        "per_call": per_call,
    }


def analyse_idle(samples, records, hold_seconds):
    """CPU % of one core over the window, and over its part before any hold timed out."""
    (t0, c0), (t1, c1) = samples[0], samples[-1]
    result = {"seconds": round(t1 - t0, 1), "cpu_percent": round(100 * (c1 - c0) / (t1 - t0), 2)}
    in_window = [r for r in records if t0 <= r[6] <= t1]
    timeouts = [r[6] for r in in_window if r[4] == "timeout"]
    result["answers_in_window"] = len(in_window)
    result["hold_timeouts_in_window"] = len(timeouts)
    result["other_answers_in_window"] = {
        kind: sum(1 for r in in_window if r[4] == kind)
        for kind in sorted({r[4] for r in in_window} - {"timeout"})
    }
    quiet_end = min(timeouts) if timeouts else t1
    quiet = [s for s in samples if s[0] <= quiet_end]
    if len(quiet) >= 3:
        (q0, d0), (q1, d1) = quiet[0], quiet[-1]
        result["quiet_seconds"] = round(q1 - q0, 1)
        result["quiet_cpu_percent"] = round(100 * (d1 - d0) / (q1 - q0), 2)
    if timeouts:
        result["timeout_burst_ms"] = round(1000 * (max(timeouts) - min(timeouts)), 1)
        # CPU of the seconds around the burst of re-asked requests.
        burst = [s for s in samples if min(timeouts) - 1.0 <= s[0] <= max(timeouts) + 2.0]
        if len(burst) >= 2:
            result["timeout_burst_server_cpu_ms"] = round(1000 * (burst[-1][1] - burst[0][1]), 0)
    result["per_second_cpu_percent"] = [
        round(100 * (b[1] - a[1]) / (b[0] - a[0]), 1)
        for a, b in zip(samples, samples[1:], strict=False)
    ]
    result["covers_hold_timeout"] = (t1 - t0) >= hold_seconds
    return result


# -- report ----------------------------------------------------------------------------


def report(r):
    base, lat, idle = r["baseline"], r["latency"], r["idle"]
    print()
    print(
        f"Machine: nproc {r['machine']['nproc']}, Python {r['machine']['python']}, "
        f"SQLite {r['machine']['sqlite']}"
    )
    print(
        f"Server: {r['server']}; push_max_held {r['push']['push_max_held']}, "
        f"push_hold_seconds {r['push']['push_hold_seconds']}"
    )
    print(
        f"{r['waiters']} waiting clients (asyncio, one keep-alive connection each, separate "
        f"process); {r['calls']} calls {r['interval']} s apart"
    )
    print()
    print("Baselines (nobody waiting):")
    print(f"  ticket page (fresh connection):       {fmt(base['ticket'])}")
    print(f"  queue page (fresh connection):        {fmt(base['queue'])}")
    print(f"  /static/style.css (keep-alive):       {fmt(base['static_keepalive'])}")
    print(f"  /static/style.css (fresh connection): {fmt(base['static_fresh'])}")
    print(f"  updates answered at once (keep-alive): {fmt(base['updates_at_once_keepalive'])}")
    print(f"  servicer POST serve/next:             {fmt(base['post_next'])}")
    print()
    print(
        f"Notification latency, {r['waiters']} waiting (end of the servicer's POST -> "
        "client has the whole answer):"
    )
    print(f"  called customer: {fmt(lat['called'])}")
    print(f"  every woken client: {fmt(lat['all'])}")
    print(
        f"  from the start of the POST: called {fmt(lat['called_from_post_start'])}; "
        f"all {fmt(lat['all_from_post_start'])}"
    )
    print(f"  servicer POST with {r['waiters']} waiting: {fmt(r['post_with_waiters'])}")
    print(
        f"  woken per call: {r['woken_min']}..{r['woken_max']} of {r['waiters']}; "
        f"burst (first..last answer) p50 {r['burst_ms_p50']} ms; server CPU per call "
        f"p50 {r['cpu_per_call_ms_p50']} ms = {r['cpu_per_wake_ms']} ms per woken client"
    )
    print(f"  called customer's place among the woken: {r['called_ranks']}")
    m = r["calls_meter"]
    print(
        f"  calls phase: server CPU {m['server_cpu_percent']}% of a core "
        f"({m['server_system_share_percent']}% of it in the kernel), "
        f"{m['server_context_switches_per_second']} context switches/s; waiting clients' "
        f"process {m['clients_cpu_percent']}%, this process {m['benchmark_cpu_percent']}%, "
        f"other processes {m.get('other_processes_cpu_percent', '?')}%"
    )
    print(
        f"  ratios: called p50 / updates-at-once p50 = {r['ratios']['called_p50_vs_updates']}"
        f"x; all p50 / static p50 = {r['ratios']['all_p50_vs_static']}x"
    )
    print()
    print(
        f"Idle, {r['waiters']} waiting, nothing changing, {idle['seconds']} s "
        f"(push_hold_seconds {r['push']['push_hold_seconds']}):"
    )
    burst = f", burst {idle['timeout_burst_ms']} ms" if "timeout_burst_ms" in idle else ""
    print(
        f"  server CPU {idle['cpu_percent']}% of one core over the whole window "
        f"({idle['hold_timeouts_in_window']} held requests timed out and were asked "
        f"again{burst})"
    )
    if "quiet_cpu_percent" in idle:
        print(
            f"  server CPU {idle['quiet_cpu_percent']}% over the {idle['quiet_seconds']} s "
            "before any timeout"
        )
    if "timeout_burst_server_cpu_ms" in idle:
        print(f"  the timeout burst cost about {idle['timeout_burst_server_cpu_ms']:.0f} ms CPU")
    if "steady_state_cpu_percent" in idle:
        print(
            f"  steady state (quiet {r['push']['push_hold_seconds']} s"
            f" + one timeout burst per hold): {idle['steady_state_cpu_percent']}% of one core"
        )
    m = idle["meter"]
    print(
        f"  ({m['server_system_share_percent']}% of the server's CPU in the kernel, "
        f"{m['server_context_switches_per_second']} context switches/s; other processes "
        f"{m.get('other_processes_cpu_percent', '?')}% of a core)"
    )
    print(f"  per-second CPU %: {idle['per_second_cpu_percent']}")
    mem = r["memory"]
    print(
        f"  server memory: RSS {mem['waiting'].get('VmRSS_MiB')} MiB with {r['waiters']} "
        f"waiting (before they came: {mem['before'].get('VmRSS_MiB')} MiB; after the calls "
        f"{mem['after'].get('VmRSS_MiB')} MiB, peak {mem['after'].get('VmHWM_MiB')} MiB); "
        f"threads {mem['waiting'].get('threads')}, open fds {mem['waiting'].get('open_fds')} "
        f"(its limit {mem.get('nofile_limit')})"
    )
    print()
    pages = r["pages"]
    print("Pages (fresh connections):")
    for kind in ("ticket", "queue"):
        w, c = pages["waiting"][kind], pages["during_calls"][kind]
        print(
            f"  {kind} page while {r['waiters']} wait: {fmt(w)}; "
            f"x{ratio(w.get('p50_ms'), base[kind].get('p50_ms'))} of baseline p50"
        )
        print(
            f"  {kind} page just after a call:  {fmt(c)}; "
            f"x{ratio(c.get('p50_ms'), base[kind].get('p50_ms'))} of baseline p50"
        )
    print()
    print("Goals:")
    for goal in r["goals"]:
        verdict = {True: "MET    ", False: "NOT MET", None: "UNKNOWN"}[goal["met"]]
        print(f"  {verdict}  {goal['goal']}: {goal['value']}")
    if r["server_log"]["queue_depth_warnings"] or r["server_log"]["other_warnings"]:
        print(
            f"Server log: {r['server_log']['queue_depth_warnings']} 'Task queue depth' "
            f"warnings (max {r['server_log']['max_queue_depth']}); "
            f"{len(r['server_log']['other_warnings'])} other warnings/errors"
        )
        for entry in r["server_log"]["other_warnings"][:5]:
            print("  " + entry.splitlines()[0])
    if r["client"]["errors"]:
        print(f"Client problems: {r['client']['errors']}")
    busy = max(
        r["idle"]["meter"].get("other_processes_cpu_percent", 0),
        r["calls_meter"].get("other_processes_cpu_percent", 0),
    )
    if busy > OTHER_CPU_WARNING:
        print(
            f"warning: other processes used up to {busy}% of a core during the run; "
            "figures are high and noisy (try --wait-idle 120)"
        )


def goals(r):
    lat, idle, pages = r["latency"], r["idle"], r["pages"]
    out = [
        ("called customer notified, p99 < 100 ms", lat["called"].get("p99_ms"), GOAL_P99_MS),
        ("every woken client notified, p99 < 100 ms", lat["all"].get("p99_ms"), GOAL_P99_MS),
    ]
    result = [
        {"goal": g, "value": f"{v:.1f} ms", "met": v is not None and v < limit}
        for g, v, limit in out
    ]
    worst_idle = max(idle["cpu_percent"], idle.get("steady_state_cpu_percent", 0))
    result.append(
        {
            "goal": f"idle CPU < {GOAL_IDLE_CPU:.0f}% (the {idle['seconds']} s window, "
            + (
                "with one hold timeout, and the steady state per hold cycle)"
                if idle["hold_timeouts_in_window"]
                else "which includes no hold timeout: too short)"
            ),
            "value": f"{idle['cpu_percent']}% / {idle.get('steady_state_cpu_percent', '?')}%",
            # Without a hold timeout in the window, the idle cost is not known.
            "met": worst_idle < GOAL_IDLE_CPU if idle["hold_timeouts_in_window"] else None,
        }
    )
    worst = max(
        pages[when][kind]["p99_ms"]
        for when in ("waiting", "during_calls")
        for kind in ("ticket", "queue")
    )
    result.append(
        {
            "goal": f"pages stay fast: ticket and queue page p99 < {GOAL_PAGE_P99_MS:.0f}"
            " ms while waiting and just after calls",
            "value": f"worst p99 {worst:.1f} ms",
            "met": worst < GOAL_PAGE_P99_MS,
        }
    )
    return result


# -- main --------------------------------------------------------------------------------


class Timeout(Exception):
    pass


def _raise_timeout(signum, frame):
    raise Timeout()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=500, help="waiting clients (500)")
    parser.add_argument("--calls", type=int, default=20, help="servicer calls measured (20)")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between calls, from idle (1.0)"
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=None,
        help="idle window, seconds (default push_hold_seconds + 7)",
    )
    parser.add_argument(
        "--pages", type=int, default=40, help="page fetches of each kind per phase (40)"
    )
    parser.add_argument(
        "--baseline-calls",
        type=int,
        default=5,
        help="servicer calls with nobody waiting, for the baseline (5)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=300,
        help="give up and stop everything after this many seconds (300)",
    )
    parser.add_argument(
        "--wait-idle",
        type=int,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to leave the "
        "CPUs alone (default 0: do not wait)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is not met")
    # The child process of the waiting clients.
    parser.add_argument("--waiter-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--queue", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--child-timeout", type=float, default=300, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.waiter_child:
        if not 1 <= args.waiters <= 2000 or not 1 <= args.calls <= args.waiters:
            parser.error("--waiters must be 1 to 2000 and --calls 1 to --waiters")
        if not 0.2 <= args.interval <= 10 or not 2 <= args.pages <= 500:
            parser.error("--interval must be 0.2 to 10 s and --pages 2 to 500")
        if not 30 <= args.timeout <= 1800:
            parser.error("--timeout must be 30 to 1800 s")
        if args.idle is not None and not 1 <= args.idle <= 300:
            parser.error("--idle must be 1 to 300 s")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.waiter_child:
        waiter_child(args)
        return 0
    stop_on_signals()
    signal.signal(signal.SIGALRM, _raise_timeout)
    if args.wait_idle:
        wait_for_idle(args.wait_idle)  # before the --timeout clock starts
    signal.alarm(args.timeout)
    app_ini = read_app_ini()
    settings = server_settings(app_ini)
    args.threads = settings.get("threads", "4")
    server_desc = server_description(settings)
    info = machine()
    print(
        f"Take A Number push benchmark: {args.waiters} waiting, {args.calls} calls; "
        f"nproc {info['nproc']}; server {server_desc}",
        flush=True,
    )
    procs = Processes()
    workdir = tempfile.mkdtemp(prefix="tan-push-")
    servicer = crowd = None
    try:
        tickets = args.baseline_calls + args.waiters
        print(f"[setup] queue with {tickets} tickets, server from {APP_INI} ...", flush=True)
        app = start_server(procs, workdir, app_ini, tickets)
        server, port, log_path, tokens = app.proc, app.port, app.log_path, app.prepared
        push = {k: v for k, v in app_settings(app.ini).items() if k.startswith("push_")}
        if args.idle is None:
            args.idle = push["push_hold_seconds"] + 7
        if args.waiters > push["push_max_held"]:
            raise BenchmarkError(
                f"--waiters {args.waiters} is more than push_max_held = "
                f"{push['push_max_held']}: the others would be told to poll, not held"
            )
        waiter_tokens = tokens[args.baseline_calls :]
        cookie, csrf = sign_in_servicer(port, QUEUE)
        servicer = Servicer(port, cookie, csrf, app.database)
        queue_cookie, ticket_cookie = customer_cookies(port, waiter_tokens[-1])
        pages = {
            "ticket": (f"/{QUEUE}/ticket/{waiter_tokens[-1]}", ticket_cookie),
            "queue": (f"/{QUEUE}", queue_cookie),
        }

        print("[baseline] nobody waiting: pages, round trips, servicer POSTs ...", flush=True)
        base = baselines(port, pages, tokens, servicer, args)
        memory = {"before": proc_status(server.pid), "nofile_limit": nofile_limit(server.pid)}

        print(f"[waiters] {args.waiters} clients connect and wait ...", flush=True)
        crowd = start_waiters(procs, port, waiter_tokens, workdir, args.timeout)
        ready = crowd.expect("READY", timeout=90)
        time.sleep(1.0)
        settled = crowd.command("STATS", "STATS")
        if settled["outstanding"] != args.waiters or settled["responses"] != ready["responses"]:
            raise BenchmarkError(f"the {args.waiters} clients are not all held: {settled}")
        memory["waiting"] = proc_status(server.pid)

        print(
            f"[idle] {args.idle:.0f} s with {args.waiters} held, nothing changing ...", flush=True
        )
        samples, idle_meter = idle_phase(server.pid, crowd, args.idle)
        memory["idle_end"] = proc_status(server.pid)

        print(f"[pages] {args.pages} ticket and queue pages while they wait ...", flush=True)
        waiting_pages = page_probes(port, pages, args.pages, pause=0.05)

        print(f"[calls] {args.calls} calls, {args.interval} s apart ...", flush=True)
        calls_meter = Meter(server.pid, crowd.proc.pid)
        calls, call_pages = calls_phase(port, servicer, crowd, server.pid, pages, args)
        calls_meter = calls_meter.stop()
        memory["after"] = proc_status(server.pid)
        records, client_stats = stop_waiters(crowd, workdir)
        servicer.close()
        servicer = None
        procs.stop(server)
        server_log = server_log_summary(log_path)
    except (BenchmarkError, OSError, http.client.HTTPException) as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        print_log_tails(workdir, ("take-a-number.log", "waiters.log"))
        return 1
    except Timeout:
        print(
            f"error: gave up after --timeout {args.timeout} s; processes stopped", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print("interrupted; processes stopped", file=sys.stderr)
        return 130
    finally:
        signal.alarm(0)
        if servicer is not None:
            with contextlib.suppress(Exception):
                servicer.close()
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    tokens_index = {token: i for i, token in enumerate(waiter_tokens)}
    latency = analyse_calls(calls, records, tokens_index)
    per_call = latency["per_call"]
    idle = analyse_idle(samples, records, push["push_hold_seconds"])
    idle["meter"] = idle_meter
    if "quiet_cpu_percent" in idle and "timeout_burst_server_cpu_ms" in idle:
        # One hold cycle: quiet for push_hold_seconds, then every held request re-asked.
        hold = push["push_hold_seconds"]
        idle["steady_state_cpu_percent"] = round(
            (idle["quiet_cpu_percent"] * hold / 100 + idle["timeout_burst_server_cpu_ms"] / 1000)
            / hold
            * 100,
            2,
        )
    baseline = {
        "ticket": summary(base["pages"]["ticket"]),
        "queue": summary(base["pages"]["queue"]),
        **{k: summary(v) for k, v in base["round_trips"].items()},
        "post_next": summary(base["post_next"]),
    }
    wakes = [c["woken"] for c in per_call]
    bursts = [c["last_ms"] - c["first_ms"] for c in per_call if c["last_ms"] is not None]
    cpu_calls = [c["server_cpu_ms"] for c in per_call]
    problems = {
        k: v for k, v in client_stats["kinds"].items() if k not in ("initial", "changed", "timeout")
    }
    if client_stats["lost"]:
        problems["connections lost"] = client_stats["lost"]
    not_called = [c for c in per_call if c.get("called_state") != "called"]
    if not_called:
        problems["called customer did not see 'called'"] = len(not_called)
    results = {
        "command": "python benchmarks/push.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": info,
        "server": server_desc,
        "push": push,
        "waiters": args.waiters,
        "calls": args.calls,
        "interval": args.interval,
        "baseline": baseline,
        "latency": latency,
        "post_with_waiters": summary([c["post_ms"] for c in per_call]),
        "woken_min": min(wakes),
        "woken_max": max(wakes),
        "burst_ms_p50": round(percentile(bursts, 50), 1) if bursts else None,
        "cpu_per_call_ms_p50": percentile(cpu_calls, 50),
        "cpu_per_wake_ms": round(percentile(cpu_calls, 50) / max(1, args.waiters), 2),
        "called_ranks": [c.get("called_rank") for c in per_call],
        "ratios": {
            "called_p50_vs_updates": ratio(
                latency["called"].get("p50_ms"), baseline["updates_at_once_keepalive"]["p50_ms"]
            ),
            "all_p50_vs_static": ratio(
                latency["all"].get("p50_ms"), baseline["static_keepalive"]["p50_ms"]
            ),
        },
        "idle": idle,
        "memory": memory,
        "pages": {
            "waiting": {k: summary(v) for k, v in waiting_pages.items()},
            "during_calls": {k: summary(v) for k, v in call_pages.items()},
        },
        "calls_meter": calls_meter,
        "client": {"stats": client_stats, "errors": problems},
        "raw": {
            "baseline": base,
            "pages_waiting": waiting_pages,
            "pages_during_calls": call_pages,
            "idle_cpu_samples": samples,
        },
        "server_log": server_log,
    }
    results["goals"] = goals(results)
    report(results)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        print(f"\nResults written to {args.json}")
    if args.check and not all(g["met"] for g in results["goals"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
