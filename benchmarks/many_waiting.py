"""Thousands waiting on one machine (issue 15): every live page told within a second.

    .venv/bin/python benchmarks/many_waiting.py                      # 5,000 over 100 queues
    .venv/bin/python benchmarks/many_waiting.py --scenario one-queue # 1,000 in one queue
    .venv/bin/python benchmarks/many_waiting.py --waiters 500 --queues 10 --minutes 1 --idle 30
    .venv/bin/python benchmarks/many_waiting.py --long-poll          # pages long-poll instead

Starts ``take-a-number serve`` on a temporary ini that reuses app.ini (its own
database, rate limits off: benchmarks/harness.py), with ``--waiters`` waiting
tickets spread over ``--queues`` queues and a servicer signed in to each. Then:

1. Baseline, nobody waiting: an updates request answered at once (``?since=0``,
   keep-alive) and a ticket page (fresh connection).
2. The crowd, in a child process (this file with ``--crowd-child``; asyncio, raw
   HTTP/1.1, one connection at a time per live page: harness.LongPoll): every
   ticket page, a board and the servicer's console per queue, each following its
   updates URL as static/live.js does. By default as a stream (``Accept:
   text/event-stream``; a data event per new view; when a stream ends, the page
   asks again with ``?since=`` its last version on a new connection, at once, or
   after ``retry_after`` when the server is full); a server that answers JSON
   instead is long-polled on the same connection. ``--long-poll``: every page
   long-polls (``Accept: application/json``, one keep-alive connection, asked
   again at once with ``?since=``; after ``retry_after`` when the server is full).
3. Idle: ``--idle`` seconds with nothing changing: the server's CPU (the window
   holds at least one hold time-out of every page), RSS, threads, open files.
4. Calls, ``--minutes`` long: each queue's servicer presses Next every
   ``--call-every`` seconds on average (0.5 to 1.5 times it, at random), and a
   new customer takes a number in that queue after each call (a new browser:
   the queue page, then POST take) and follows their ticket from then on.
   Every few hundred milliseconds a ticket page is fetched on a new connection.

Figures, beside the baseline: the called customer (the end of the servicer's POST
to the answer saying "called"); every page of the queue after each change (Next
or take: the POST's end to the first answer showing that version or a later
one), per minute too; pages and takes; answers that told a page to poll
(``retry_after``: nobody should be); errors (a stream's end is none: a page
whose connection ends otherwise, a failed reconnection or an error status is);
streams opened and ended, reconnections, heartbeats and JSON answers (the
server did not stream), over the whole run and the idle window; the server's
and the load generator's CPU. ``--json PATH`` writes everything. Every process it
starts is stopped on exit, error, Ctrl-C or ``--timeout``.
"""

import argparse
import asyncio
import bisect
import datetime
import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import (  # noqa: E402  benchmarks/harness.py: what every benchmark shares
    APP_INI,
    PASSWORD,
    BenchmarkError,
    ClientProcess,
    KeepAlive,
    LongPoll,
    Meter,
    Processes,
    Sampler,
    app_settings,
    child_env,
    connect_all,
    fmt,
    http_request,
    machine,
    new_browser,
    new_store,
    nofile_limit,
    obey,
    print_log_tails,
    proc_status,
    read_app_ini,
    say,
    server_description,
    server_log_summary,
    server_settings,
    sign_in_servicer,
    start_app,
    stop_on_signals,
    summary,
    timed_fresh,
    wait_for_idle,
)

from take_a_number.cli import THREAD_MALLOC_CACHES_OFF  # noqa: E402

SCENARIOS = {
    # waiters, queues, call_every, minutes, idle, a new customer after each call
    "crowd": (5000, 100, 5.0, 3.0, 60.0, True),
    "one-queue": (1000, 1, 1.0, 5.0, 35.0, False),
}
GOALS = {"called_p99_ms": 100.0, "updated_p99_ms": 1000.0, "page_p99_ms": 200.0}
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
ENDED = ("served", "left", "no_show", "cleared")
# harness.LongPoll's counts, summed over the pages (stream mode; fallbacks: JSON
# answers to requests with ``since``, from a server that did not stream).
STREAM_COUNTS = ("streams", "stream_ends", "reconnections", "events", "heartbeats", "fallbacks")


# -- the crowd (child process) ----------------------------------------------------------


async def fetch(port, method, path, cookie=None, body=None):
    """One request on a new connection: (status, headers as (name, value) pairs, body, ms)."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    if cookie:
        head += f"Cookie: {cookie}\r\n"
    data = b""
    if body is not None:
        data = body.encode("ascii")
        head += "Content-Type: application/x-www-form-urlencoded\r\n"
        head += f"Content-Length: {len(data)}\r\n"
    writer.write(head.encode("latin-1") + b"\r\n" + data)
    answer = await reader.read()
    writer.close()
    header, _, content = answer.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if ":" in line]
    return int(lines[0].split()[1]), headers, content, 1000 * (time.monotonic() - started)


def cookies_set(headers):
    pairs = [value for name, value in headers if name.lower() == "set-cookie"]
    return dict(value.split(";", 1)[0].split("=", 1) for value in pairs)


class Page(LongPoll):
    """A live page: records (page, version, state, kind, received) per answer."""

    def __init__(self, crowd, page_id, queue_id, path, cookie=None):
        super().__init__(crowd.host, path, cookie, stream=crowd.plan["stream"])
        self.crowd, self.page_id, self.queue_id = crowd, page_id, queue_id
        crowd.live.append(self)
        self.ended = False
        self.ready = asyncio.get_running_loop().create_future()

    def answered(self, status, body, received):
        crowd = self.crowd
        if status != 200:
            crowd.errors.append((self.page_id, status, received))
            if status != 204 and not self.ready.done():
                self.ready.set_exception(RuntimeError(f"{self.request_path} answered {status}"))
            asyncio.get_running_loop().call_later(1.0, self.send_if_open)
            return
        view = json.loads(body)
        full = "retry_after" in view
        self.version = view["version"]
        state = view.get("state")
        crowd.answers.append((self.page_id, self.version, state, full, received))
        if not self.ready.done():
            self.ready.set_result(True)
        if state in ENDED:
            self.ended = True
            self.transport.close()  # the customer's page has nothing more to wait for
        elif full:
            asyncio.get_running_loop().call_later(view["retry_after"], self.send_if_open)
        else:
            self.send()

    def connection_lost(self, exc):
        # Not called for a connection the server closed after a stream (LongPoll).
        if not self.crowd.stopping and not self.ended:
            self.crowd.errors.append((self.page_id, "lost", time.monotonic()))
        self.transport = None


class Crowd:
    def __init__(self, port, plan):
        self.port, self.host, self.plan = port, f"127.0.0.1:{port}", plan
        self.answers, self.errors, self.pages, self.live = [], [], {}, []
        self.changes, self.calls, self.timings = [], [], []
        self.stopping = False
        self.db = sqlite3.connect(f"file:{plan['database']}?mode=ro", uri=True)

    def page(self, queue_id, kind, path, cookie=None):
        page_id = len(self.pages)
        self.pages[page_id] = (queue_id, kind, time.monotonic())
        return lambda: Page(self, page_id, queue_id, path, cookie)

    async def connect(self):
        factories = []
        for queue in self.plan["queues"]:
            q = queue["id"]
            # Browsers send their session cookie with every request, as live.js does.
            browser = self.plan["browser_cookie"]
            factories.append(self.page(q, "board", f"/{q}/board", browser))
            factories.append(self.page(q, "console", f"/{q}/serve", queue["cookie"]))
            factories += [
                self.page(q, "ticket", f"/{q}/ticket/{t}", browser) for t in queue["tokens"]
            ]
        pages = await connect_all(self.port, factories)
        await asyncio.wait_for(asyncio.gather(*(p.ready for p in pages)), timeout=120)

    def version(self, queue_id):
        return self.db.execute("SELECT version FROM queues WHERE id = ?", (queue_id,)).fetchone()[0]

    async def servicer(self, queue, seconds, every):
        """Next at human pace, and a new customer after each call, until ``seconds`` pass."""
        q, end = queue["id"], time.monotonic() + seconds
        body = urllib.parse.urlencode({"csrf_token": queue["csrf"]})
        await asyncio.sleep(random.uniform(0, every))
        while time.monotonic() < end:
            started = time.monotonic()
            status, headers, _, ms = await fetch(
                self.port, "POST", f"/{q}/serve/next", queue["cookie"], body
            )
            ended = time.monotonic()
            self.timings.append(("next", ms, status, ended))
            if status == 303:
                queue["cookie"] = _session(headers) or queue["cookie"]
                self.calls.append((q, started, ended))
                self.changes.append((q, self.version(q), ended, "next"))
            if self.plan["takes"]:
                await self.new_customer(q)
            await asyncio.sleep(random.uniform(0.5, 1.5) * every)

    async def new_customer(self, q):
        status, headers, page, ms = await fetch(self.port, "GET", f"/{q}")
        self.timings.append(("queue page", ms, status, time.monotonic()))
        match = CSRF_INPUT.search(page.decode("utf-8", "replace"))
        session = _session(headers)
        if status != 200 or not match or not session:
            return
        body = urllib.parse.urlencode({"csrf_token": match.group(1)})
        status, headers, _, ms = await fetch(self.port, "POST", f"/{q}/take", session, body)
        ended = time.monotonic()
        self.timings.append(("take", ms, status, ended))
        location = {k.lower(): v for k, v in headers}.get("location")
        if status != 303 or not location:
            return
        self.changes.append((q, self.version(q), ended, "take"))
        path = urllib.parse.urlsplit(location).path
        await connect_all(self.port, [self.page(q, "ticket", path, session)])

    async def ticket_pages(self, seconds, interval=0.25):
        """A ticket page on a new connection every ``interval`` s (as a reload would)."""
        tickets = [
            (queue["id"], token) for queue in self.plan["queues"] for token in queue["tokens"]
        ]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            q, token = random.choice(tickets)
            status, _, _, ms = await fetch(self.port, "GET", f"/{q}/ticket/{token}")
            self.timings.append(("ticket page", ms, status, time.monotonic()))
            await asyncio.sleep(interval)

    async def calls_phase(self, seconds, every):
        await asyncio.gather(
            self.ticket_pages(seconds),
            *(self.servicer(queue, seconds, every) for queue in self.plan["queues"]),
        )

    def stats(self):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "pages": len(self.pages),
            "answers": len(self.answers),
            "full": sum(1 for a in self.answers if a[3]),
            "errors": len(self.errors),
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            **{key: sum(getattr(page, key) for page in self.live) for key in STREAM_COUNTS},
        }


def _session(headers):
    session = cookies_set(headers).get("tan_session")
    return f"tan_session={session}" if session else None


def crowd_child(args):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.plan, encoding="utf-8") as f:
        plan = json.load(f)

    async def main():
        crowd = Crowd(args.port, plan)
        try:
            await crowd.connect()
        except Exception as error:  # reported to the parent, which gives up
            say("ERROR", f"{type(error).__name__}: {error}")
            return
        say("READY", crowd.stats())
        calls = {}

        def go():
            calls["task"] = asyncio.ensure_future(
                crowd.calls_phase(plan["seconds"], plan["call_every"])
            )
            return crowd.stats()

        def calls_done():
            return {"done": calls["task"].done(), **crowd.stats()}

        await obey({"STATS": crowd.stats, "GO": go, "CALLS": calls_done}, args.child_timeout)
        crowd.stopping = True
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "pages": crowd.pages,
                    "answers": crowd.answers,
                    "errors": crowd.errors,
                    "changes": crowd.changes,
                    "calls": crowd.calls,
                    "timings": crowd.timings,
                    "stats": crowd.stats(),
                },
                f,
            )
        say("DONE", crowd.stats())

    asyncio.run(main())


# -- setting up --------------------------------------------------------------------------


def profiled(path):
    """start_app's command and environment for a server sampled by py-spy, 10 times a second."""
    if not path:
        return {}
    spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    cli = os.path.join(os.path.dirname(sys.executable), "take-a-number")
    command = [spy, "record", "--nonblocking", "-r", "10", "-f", "raw", "-o", path, "--", cli]
    # As serve would set it, so that serve does not start itself again (py-spy follows one).
    env = dict(child_env(), GLIBC_TUNABLES=THREAD_MALLOC_CACHES_OFF)
    return {"command": command, "env": env}


def server_process(pid, profiled):
    """The server's pid: py-spy's child when it is profiled."""
    if not profiled:
        return pid
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            children = f.read().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise BenchmarkError("py-spy started no server")


def prepare(database, queues, waiters):
    """The queues and their waiting tickets, written before the server starts."""
    from take_a_number.security import hash_password, new_token

    store = new_store(database)
    try:
        now, password = time.time(), hash_password(PASSWORD)
        plan = []
        for i in range(queues):
            queue_id = f"wait-{i:03d}"
            store.create_queue(queue_id, f"Queue {i}", password, now)
            share = waiters // queues + (1 if i < waiters % queues else 0)
            tokens = [
                store.take_ticket(queue_id, new_token(), now + n / 1000)["token"]
                for n in range(share)
            ]
            plan.append({"id": queue_id, "tokens": tokens})
        return plan
    finally:
        store.close()


def baseline(port, plan, count=200):
    queue = plan[0]
    since0 = f"/{queue['id']}/ticket/{queue['tokens'][-1]}/updates?since=0"
    http = KeepAlive(port)
    try:
        for _ in range(20):
            http.request("GET", since0)
        at_once = []
        for _ in range(count):
            response, data, started, ended = http.request("GET", since0)
            if response.status != 200:
                raise BenchmarkError(f"GET {since0} answered {response.status}")
            at_once.append(1000 * (ended - started))
    finally:
        http.close()
    page = f"/{queue['id']}/ticket/{queue['tokens'][-1]}"
    pages = [timed_fresh(port, page)[0] for _ in range(40)]
    return {"updates_at_once": summary(at_once), "ticket_page": summary(pages)}


# -- analysis ----------------------------------------------------------------------------


def analyse(out, calls_started):
    pages = {int(k): v for k, v in out["pages"].items()}
    by_page, ended_at, called_at = {}, {}, {}
    for page_id, version, state, _full, received in out["answers"]:
        versions, times = by_page.setdefault(page_id, ([], []))
        versions.append(version)
        times.append(received)
        if state == "called" and page_id not in called_at:
            called_at[page_id] = received
        if state in ENDED:
            ended_at[page_id] = received
    queue_pages = {}
    for page_id, (queue_id, _kind, _) in pages.items():
        queue_pages.setdefault(queue_id, []).append(page_id)
    # Every page of the queue, live when the change was made, after each change.
    updated, missed, per_minute = [], [], {}
    for queue_id, version, made, _kind in out["changes"]:
        bucket = _minute(per_minute, made - calls_started)
        for page_id in queue_pages.get(queue_id, ()):
            versions, times = by_page.get(page_id, ([], []))
            if not times or times[0] > made or ended_at.get(page_id, made) < made:
                continue  # not following yet, or its ticket ended before
            i = bisect.bisect_left(versions, version)
            if i == len(versions) and page_id in ended_at:
                # Its customer was served (or left) and the page closed: its last
                # answer, made before this change, arrived just after it.
                continue
            if i == len(versions):
                recent = zip(versions[-3:], times[-3:], strict=True)
                last = [(v, round(t - calls_started, 3)) for v, t in recent]
                missed.append(
                    (pages[page_id][1], queue_id, _kind, version, round(made - calls_started, 3))
                    + (page_id, last)
                )
                continue
            latency = 1000 * (max(times[i], made) - made)
            updated.append(latency)
            bucket["updated"].append(latency)
    # The called customer: from the end of the POST of the call that called them.
    calls_by_queue = {}
    for queue_id, started, ended in out["calls"]:
        calls_by_queue.setdefault(queue_id, []).append((started, ended))
    called = []
    for page_id, seen in called_at.items():
        queue_id = pages[page_id][0]
        calls = calls_by_queue.get(queue_id, [])
        i = bisect.bisect_right([c[0] for c in calls], seen) - 1
        if i < 0:
            continue
        latency = 1000 * (seen - calls[i][1])
        called.append(latency)
        _minute(per_minute, calls[i][1] - calls_started)["called"].append(latency)
    timings = {}
    errors = [t for t in out["timings"] if t[2] not in (200, 303)]
    for kind, ms, _status, at in out["timings"]:
        timings.setdefault(kind, []).append(ms)
        _minute(per_minute, at - calls_started)["pages"].append(ms)
    return {
        "called": summary(called),
        "updated": summary(updated),
        "missed_updates": len(missed),
        # (page, queue, change, its version, seconds into the calls, page id, its last answers)
        "missed": missed[:20],
        "requests": {kind: summary(values) for kind, values in timings.items()},
        "request_errors": len(errors),
        "page_errors": len(out["errors"]),
        "told_to_poll": sum(1 for a in out["answers"] if a[3]),
        "per_minute": {
            minute: {
                "updated": summary(b["updated"]),
                "called": summary(b["called"]),
                "pages_and_takes": summary(b["pages"]),
            }
            for minute, b in sorted(per_minute.items())
            if minute >= 0
        },
    }


def _minute(per_minute, seconds):
    return per_minute.setdefault(int(seconds // 60), {"updated": [], "called": [], "pages": []})


def cpu_per_minute(samples, started):
    minutes = {}
    for before, after in zip(samples, samples[1:], strict=False):
        if before["t"] < started or before["cpu"] is None or after["cpu"] is None:
            continue
        minute = minutes.setdefault(int((before["t"] - started) // 60), [0.0, 0.0, 0.0, 0.0])
        minute[0] += after["cpu"] - before["cpu"]
        minute[1] += after["t"] - before["t"]
        minute[2] = max(minute[2], after.get("VmRSS_MiB", 0))
        minute[3] = max(minute[3], after.get("Pss_MiB", 0))
    return {
        m: {"server_cpu_percent": round(100 * cpu / wall, 1), "rss_mib": rss, "pss_mib": pss}
        for m, (cpu, wall, rss, pss) in sorted(minutes.items())
        if wall
    }


def streams(ready, after_idle, done):
    """The pages' stream counts over the whole run, and over the idle window (from the
    crowd's READY to the idle phase's end)."""
    whole = {key: done[key] for key in STREAM_COUNTS}
    whole["idle"] = {key: after_idle[key] - ready[key] for key in STREAM_COUNTS}
    return whole


# -- report ------------------------------------------------------------------------------


def report(r):
    a, base = r["results"], r["baseline"]
    print()
    print(f"Server: {r['server']}; push {r['push']}")
    follow = {"stream": "streams (Accept: text/event-stream)", "long-poll": "long-polls"}
    print(f"Live pages follow their updates URL by {follow[r['follow']]}")
    print(
        f"{r['waiters']} waiting over {r['queues']} queues, a board and a console each "
        f"({r['live_pages']} live pages); Next every {r['call_every']} s per queue "
        f"({'and' if r['takes'] else 'without'} a new customer after each) for {r['minutes']} min"
    )
    print()
    print(f"Baseline: updates answered at once (keep-alive): {fmt(base['updates_at_once'])}")
    print(f"          ticket page (fresh connection):      {fmt(base['ticket_page'])}")
    print()
    idle = r["idle"]
    print(
        f"Idle, all {r['live_pages']} held, {idle['seconds']} s: server CPU "
        f"{idle['server_cpu_percent']}% of one core; load generator {idle['clients_cpu_percent']}%"
        f"; other processes {idle.get('other_processes_cpu_percent', '?')}%"
    )
    mem = r["memory"]
    print(
        f"  RSS {mem['held'].get('VmRSS_MiB')} MiB held (PSS {mem['held'].get('Pss_MiB')}; "
        f"before the crowd {mem['before'].get('VmRSS_MiB')}, peak {mem['end'].get('VmHWM_MiB')}"
        f"; {mem['held'].get('processes')} processes; calls peak RSS "
        f"{mem['peak'].get('VmRSS_MiB')}, PSS {mem['peak'].get('Pss_MiB')}); threads "
        f"{mem['held'].get('threads')}; open files {mem['held'].get('open_fds')} "
        f"(limit {mem['nofile_limit']})"
    )
    print()
    calls = r["calls_meter"]
    print(
        f"Calls phase: server CPU {calls['server_cpu_percent']}% of one core "
        f"({calls['server_system_share_percent']}% in the kernel); load generator "
        f"{calls['clients_cpu_percent']}%; other processes "
        f"{calls.get('other_processes_cpu_percent', '?')}%"
    )
    print(f"  called customer (POST end -> 'called'): {fmt(a['called'])}")
    print(f"  every page after each change:           {fmt(a['updated'])}")
    print(f"  pages never updated: {a['missed_updates']}; told to poll: {a['told_to_poll']}")
    if a["missed"]:
        print(f"    e.g. (page, queue, change, s into the calls): {a['missed'][:5]}")
    for kind, s in a["requests"].items():
        print(f"  {kind + ':':14s} {fmt(s)}")
    print(f"  errors: {a['request_errors']} requests, {a['page_errors']} live pages")
    if r["follow"] == "stream":
        st, idle_st = r["streams"], r["streams"]["idle"]
        print(
            f"  streams (whole run): {st['streams']} opened, {st['stream_ends']} ended, "
            f"{st['reconnections']} reconnections, {st['events']} events, "
            f"{st['heartbeats']} heartbeats; {st['fallbacks']} JSON answers (not streamed)"
        )
        print(
            f"    idle window: {idle_st['stream_ends']} ended, {idle_st['reconnections']} "
            f"reconnections, {idle_st['heartbeats']} heartbeats, "
            f"{idle_st['fallbacks']} JSON answers"
        )
    print()
    print("Per minute: every page updated p50/p99/max ms | called p99 | pages+takes p99 ms")
    print("            | server CPU | RSS (PSS) of all its processes")
    for minute, m in a["per_minute"].items():
        cpu = r["cpu_per_minute"].get(minute, {})
        u, c, p = m["updated"], m["called"], m["pages_and_takes"]
        updated = "/".join(str(u.get(k, "-")) for k in ("p50_ms", "p99_ms", "max_ms"))
        print(
            f"  {minute + 1:>2}: {updated} | {c.get('p99_ms', '-')} | {p.get('p99_ms', '-')}"
            f" | {cpu.get('server_cpu_percent', '-')}% | {cpu.get('rss_mib', '-')} "
            f"({cpu.get('pss_mib', '-')}) MiB"
        )
    print()
    print("Goals:")
    for goal in r["goals"]:
        print(f"  {'MET    ' if goal['met'] else 'NOT MET'}  {goal['goal']}: {goal['value']}")


def goals(r):
    a = r["results"]
    request_p99 = max((s.get("p99_ms") or 0) for s in a["requests"].values())
    rows = [
        ("called customer p99 < 100 ms", a["called"].get("p99_ms"), GOALS["called_p99_ms"]),
        ("every changed page p99 < 1 s", a["updated"].get("p99_ms"), GOALS["updated_p99_ms"]),
        ("pages and takes p99 < 200 ms", request_p99, GOALS["page_p99_ms"]),
        ("idle CPU < 5 % of one core", r["idle"]["server_cpu_percent"], 5.0),
        (
            "server memory (PSS of all its processes) < 600 MB",
            r["memory"]["peak"].get("Pss_MiB"),
            600 / 1.048576,
        ),
    ]
    out = [{"goal": g, "value": v, "met": v is not None and v < limit} for g, v, limit in rows]
    out.append(
        {
            "goal": "zero errors, nobody told to poll, every page updated",
            "value": f"{a['request_errors']} + {a['page_errors']} errors, "
            f"{a['told_to_poll']} told to poll, {a['missed_updates']} missed",
            "met": not (a["request_errors"] or a["page_errors"] or a["told_to_poll"])
            and not a["missed_updates"],
        }
    )
    return out


# -- main --------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="crowd")
    parser.add_argument("--waiters", type=int, help="waiting customers (5000; one-queue: 1000)")
    parser.add_argument("--queues", type=int, help="queues (100; one-queue: 1)")
    parser.add_argument("--call-every", type=float, help="seconds between calls per queue (5; 1)")
    parser.add_argument("--minutes", type=float, help="length of the calls phase (3; 5)")
    parser.add_argument("--idle", type=float, help="idle window, seconds (60; 35)")
    parser.add_argument(
        "--takes",
        action=argparse.BooleanOptionalAction,
        help="a new customer takes a number after each call (crowd: yes; one-queue: no)",
    )
    parser.add_argument("--timeout", type=int, default=1500, help="give up after (1500 s)")
    parser.add_argument("--wait-idle", type=int, default=0, metavar="SECONDS")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument(
        "--threads",
        type=int,
        help="waitress threads of each process instead of app.ini's (held requests take none)",
    )
    parser.add_argument(
        "--workers", type=int, help="serve's worker processes instead of app.ini's or its default"
    )
    parser.add_argument(
        "--long-poll",
        action="store_true",
        help="live pages long-poll (Accept: application/json) instead of following streams",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="run the server under py-spy (pip install py-spy): its samples, raw, to PATH",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an [app:main] setting for this run (push_watch_interval=0.05, say), for A/B runs",
    )
    parser.add_argument("--crowd-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--child-timeout", type=float, default=1500, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = ("waiters", "queues", "call_every", "minutes", "idle", "takes")
    defaults = dict(zip(names, SCENARIOS[args.scenario], strict=True))
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not args.crowd_child:
        if not 1 <= args.queues <= args.waiters <= 10_000:
            parser.error("--queues must be 1 to --waiters, --waiters at most 10,000")
        if not 0.2 <= args.call_every <= 60 or not 0.1 <= args.minutes <= 15:
            parser.error("--call-every must be 0.2 to 60 s and --minutes 0.1 to 15")
        if not 1 <= args.idle <= 300:
            parser.error("--idle must be 1 to 300 s")
        if not all("=" in setting for setting in args.set):
            parser.error("--set takes NAME=VALUE")
    return args


def _raise_timeout(signum, frame):
    raise TimeoutError("--timeout")


def main(argv=None):
    args = parse_args(argv)
    if args.crowd_child:
        crowd_child(args)
        return 0
    stop_on_signals()
    if args.wait_idle:
        wait_for_idle(args.wait_idle)
    signal.signal(signal.SIGALRM, _raise_timeout)
    signal.alarm(args.timeout)
    app_ini = read_app_ini()
    if args.threads:
        app_ini.set("server:main", "threads", str(args.threads))
    if args.workers:
        if not app_ini.has_section("serve"):
            app_ini.add_section("serve")
        app_ini.set("serve", "workers", str(args.workers))
    server = server_description(server_settings(app_ini))
    if app_ini.has_option("serve", "workers"):
        server += f"; workers={app_ini.get('serve', 'workers')}"
    print(
        f"Thousands waiting: {args.waiters} over {args.queues} queues; server {server}", flush=True
    )
    procs, workdir = Processes(), tempfile.mkdtemp(prefix="tan-many-")
    try:
        print(f"[setup] {args.queues} queues, {args.waiters} tickets, {APP_INI} ...", flush=True)
        app = start_app(
            procs,
            workdir,
            app_ini,
            lambda database: prepare(database, args.queues, args.waiters),
            overrides={"rate_limit_sign_in": "off", **dict(s.split("=", 1) for s in args.set)},
            workers=None,  # serve's own: app.ini's, or --workers
            **profiled(args.profile),
        )
        push = {k: v for k, v in app_settings(app.ini).items() if k.startswith("push_")}
        plan = app.prepared
        for queue in plan:
            queue["cookie"], queue["csrf"] = sign_in_servicer(app.port, queue["id"])
        print("[baseline] nobody waiting ...", flush=True)
        base = baseline(app.port, plan)
        server_pid = server_process(app.proc.pid, args.profile)
        memory = {"before": proc_status(server_pid), "nofile_limit": nofile_limit(server_pid)}
        plan_path = os.path.join(workdir, "plan.json")
        with open(plan_path, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "queues": plan,
                    "database": app.database,
                    "seconds": 60 * args.minutes,
                    "call_every": args.call_every,
                    "takes": args.takes,
                    "stream": not args.long_poll,
                    # One browser's session for the prepared tickets' pages (signed, valid).
                    "browser_cookie": new_browser(app.port, plan[0]["id"])[0],
                },
                f,
            )
        live_pages = args.waiters + 2 * args.queues
        print(f"[crowd] {live_pages} live pages connect ...", flush=True)
        crowd = ClientProcess(
            procs,
            [sys.executable, os.path.abspath(__file__), "--crowd-child", "--port", str(app.port)]
            + ["--plan", plan_path, "--out", os.path.join(workdir, "crowd.json")]
            + ["--child-timeout", str(args.timeout)],
            os.path.join(workdir, "crowd.log"),
        )
        ready = crowd.expect("READY", timeout=180)
        time.sleep(1.0)
        # What the whole server holds (serve sizes push_max_held to its connection_limit),
        # read once every page is held: a worker still starting is not in health yet.
        push["push_max_held"] = json.loads(http_request(app.port, "GET", "/api/v1/health")[3])[
            "push"
        ]["capacity"]
        memory["held"] = proc_status(server_pid)
        print(f"[idle] {args.idle:.0f} s, nothing changing ...", flush=True)
        meter = Meter(server_pid, crowd.proc.pid)
        time.sleep(args.idle)
        idle = meter.stop()
        after_idle = crowd.command("STATS", "STATS")
        print(f"[calls] {args.minutes} min of calls and takes ...", flush=True)
        sampler = Sampler(server_pid)
        sampler.start()
        meter = Meter(server_pid, crowd.proc.pid)
        calls_started = time.monotonic()
        crowd.command("GO", "GO")
        while not crowd.command("CALLS", "CALLS")["done"]:
            time.sleep(2)
        time.sleep(2)  # the last changes reach their pages
        calls_meter = meter.stop()
        sampler.stop.set()
        memory["end"] = proc_status(server_pid)
        # Of all serve's processes together, sampled each second: RSS counts the
        # pages they share once per process, PSS divides them among them.
        memory["peak"] = {
            key: max((sample.get(key, 0) for sample in sampler.samples), default=None)
            for key in ("VmRSS_MiB", "Pss_MiB")
        }
        crowd.stop()
        if args.profile:  # py-spy writes its samples once the server has stopped
            os.kill(server_pid, signal.SIGTERM)
            app.proc.wait(timeout=120)
        with open(os.path.join(workdir, "crowd.json"), encoding="utf-8") as f:
            out = json.load(f)
        server_log = server_log_summary(app.log_path)
    except (BenchmarkError, OSError, TimeoutError) as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        print_log_tails(workdir, ("take-a-number.log", "crowd.log"))
        return 1
    finally:
        signal.alarm(0)
        procs.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    results = {
        "command": "python benchmarks/many_waiting.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "server": server,
        "push": push,
        "waiters": args.waiters,
        "queues": args.queues,
        "live_pages": live_pages,
        "call_every": args.call_every,
        "takes": args.takes,
        "minutes": args.minutes,
        "follow": "long-poll" if args.long_poll else "stream",
        "baseline": base,
        "idle": idle,
        "calls_meter": calls_meter,
        "memory": memory,
        "results": analyse(out, calls_started),
        "streams": streams(ready, after_idle, out["stats"]),
        "cpu_per_minute": cpu_per_minute(sampler.samples, calls_started),
        "server_log": server_log,
    }
    results["goals"] = goals(results)
    report(results)
    if server_log["other_warnings"]:
        print(f"Server log: {len(server_log['other_warnings'])} warnings, e.g.")
        for line in server_log["other_warnings"][:3]:
            print("  " + line.splitlines()[0])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        print(f"\nResults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
