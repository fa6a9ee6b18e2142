"""Soak: every kind of live page followed while the queue changes for minutes on end.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--rate 5] [--json PATH]

Starts ``take-a-number serve`` as benchmarks/push.py does (app.ini through
PasteDeploy, own database, rate limits off, a free loopback port) with one queue
of ``--tickets`` waiting customers and a servicer signed in over HTTP. A child
process (this file with ``--follower-child``) follows, as live.js does, every
kind of live page on keep-alive connections: each waiting customer's ticket,
the servicer's console, ``--boards`` display boards and ``--queue-pages`` queue
pages (``GET .../updates?since=<last version>``, asked again at once).

For ``--minutes``, ``--rate`` times a second, the queue changes: a new browser
takes a number, then the servicer presses Next, and so on (the line keeps its
length). Latency of a change to a page = the moment that page receives an answer
with the change's version or a later one - the moment the change's answer had
come back (the same CLOCK_MONOTONIC, system-wide on Linux). Reported over the
whole run and per minute (so that a drift shows), for every page and per kind,
with the server's RSS, threads and open files per minute. Takes ``--minutes``
plus about 10 s; every process it starts is stopped on exit, error or Ctrl-C.
"""

import argparse
import asyncio
import bisect
import json
import math
import os
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402  benchmarks/harness.py: what every benchmark shares
from push import QUEUE, Servicer, start_server  # noqa: E402  benchmarks/push.py: its queue

# -- the child: pages following their updates ---------------------------------------


class Follower(harness.LongPoll):
    """One page: record each answer (index, version, receipt) and ask again at once."""

    def __init__(self, port, index, path, cookie, records, problems):
        super().__init__(f"127.0.0.1:{port}", path, cookie)
        self.index, self.records, self.problems = index, records, problems

    def answered(self, status, body, received):
        if status != 200:
            self.problems.append(f"{self.request_path} answered {status}: {body[:200]!r}")
            return
        view = json.loads(body)
        if "retry_after" in view:
            self.problems.append(f"{self.request_path} was told to poll: push_max_held reached")
            return
        self.version = view["version"]
        self.records.append((self.index, self.version, received))
        self.send()


def follower_child(args):
    """The child process: every page, until the parent says STOP (ClientProcess)."""
    with open(args.paths, encoding="utf-8") as f:
        pages = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    records, problems = [], []

    async def main():
        followers = await harness.connect_all(
            args.port,
            [
                lambda i=i, path=path, cookie=cookie: Follower(
                    args.port, i, path, cookie, records, problems
                )
                for i, (path, cookie) in enumerate(pages)
            ],
        )
        harness.say("READY", len(followers))
        await harness.obey({}, args.child_timeout)
        for follower in followers:
            if follower.transport is not None:
                follower.transport.close()
        with open(args.out, "w", encoding="ascii") as f:
            json.dump(records, f)
        harness.say("DONE", problems[:10])

    asyncio.run(main())


# -- the parent ------------------------------------------------------------------------


def make_changes(port, servicer, started, seconds, rate):
    """Alternately a new browser's take and a Next, ``rate`` a second: [(version, made)]."""
    changes = []
    pause = 1.0 / rate
    ends = started + seconds
    next_at = started
    while next_at < ends:
        time.sleep(max(0.0, next_at - time.monotonic()))
        # A server slower than ``rate`` is given no burst to catch up.
        next_at = max(next_at + pause, time.monotonic())
        if len(changes) % 2:
            _, made, version, _ = servicer.call_next()
        else:
            harness.take_number(port, QUEUE, *harness.new_browser(port, QUEUE))
            made = time.monotonic()
            version = servicer.db.query("SELECT version FROM queues WHERE id = ?", (QUEUE,))[0][0]
        changes.append((version, made))
    return changes


def latencies(changes, records, pages):
    """Per page kind: [(made, ms)] from each change to each page's first answer showing it."""
    heard = {}
    for index, version, received in records:
        heard.setdefault(index, []).append((version, received))
    out = {}
    for index, (_, kind) in enumerate(pages):
        answers = heard.get(index, [])
        versions = [version for version, _ in answers]
        for version, made in changes:
            first = bisect.bisect_left(versions, version)
            ms = (answers[first][1] - made) * 1000 if first < len(answers) else float("inf")
            out.setdefault(kind, []).append((made, ms))
    return out


def per_minute(started, items, last):
    """{minute: [values]} from (moment, value) pairs; what came after ``last`` counts in it."""
    minutes = {}
    for moment, value in items:
        minutes.setdefault(min(last, int((moment - started) // 60)), []).append(value)
    return minutes


def report(r):
    print(
        f"\nsoak: {r['minutes']} min, {r['changes']} changes ({r['rate']}/s), pages: {r['pages']}"
    )
    every = r["latency_ms"]["every"]
    print(
        f"latency to every page, whole run: n={every['n']} p50 {every['p50_ms']} ms, "
        f"p99 {every['p99_ms']} ms, max {every['max_ms']} ms"
    )
    for kind, s in r["latency_ms"].items():
        if kind != "every":
            print(f"  {kind:10} p50 {s['p50_ms']:8} p99 {s['p99_ms']:8} max {s['max_ms']:8}")
    print("minute  p50 ms  p99 ms  max ms  RSS MiB  threads  fds  server CPU %")
    for m in r["per_minute"]:
        print(
            f"{m['minute']:6} {m['p50_ms']:7} {m['p99_ms']:7} {m['max_ms']:7} "
            f"{m.get('VmRSS_MiB', '-'):8} {m.get('threads', '-'):8} {m.get('open_fds', '-'):4} "
            f"{m.get('cpu_percent', '-'):6}"
        )
    print(f"RSS: {r['rss_start_MiB']} MiB at the start, {r['rss_end_MiB']} MiB at the end")


def soak(args):
    procs = harness.Processes()
    workdir = tempfile.mkdtemp(prefix="tan-soak-")
    servicer = None
    try:
        app = start_server(procs, workdir, harness.read_app_ini(), args.tickets)
        server, port, tokens = app.proc, app.port, app.prepared
        cookie, csrf = harness.sign_in_servicer(port, QUEUE)
        servicer = Servicer(port, cookie, csrf, app.database)
        pages = [(f"/{QUEUE}/ticket/{token}", "ticket") for token in tokens]
        pages += [(f"/{QUEUE}/serve", "console")]
        pages += [(f"/{QUEUE}/board", "board")] * args.boards
        pages += [(f"/{QUEUE}", "queue page")] * args.queue_pages
        paths = os.path.join(workdir, "pages.tsv")
        with open(paths, "w", encoding="utf-8") as f:
            for path, kind in pages:
                f.write(f"{path}\t{cookie if kind == 'console' else ''}\n")
        out = os.path.join(workdir, "records.json")
        child = harness.ClientProcess(
            procs,
            [sys.executable, __file__, "--follower-child", "--port", str(port)]
            + ["--paths", paths, "--out", out]
            + ["--child-timeout", str(args.minutes * 60 + 120)],
            os.path.join(workdir, "followers.log"),
        )
        child.expect("READY", timeout=60)
        sampler = harness.Sampler(server.pid)
        time.sleep(2.0)  # the pages are held
        sampler.start()
        started = time.monotonic()
        changes = make_changes(port, servicer, started, args.minutes * 60, args.rate)
        time.sleep(2.0)  # the last answers come in
        sampler.stop.set()
        problems = child.stop()
        if problems:
            raise harness.BenchmarkError(f"pages stopped following: {problems}")
        with open(out, encoding="ascii") as f:
            records = json.load(f)
        if not records:
            raise harness.BenchmarkError(f"no answers recorded; see {workdir}/followers.log")
        by_kind = latencies(changes, records, pages)
        everything = [item for items in by_kind.values() for item in items]
        samples = sampler.samples
        last = math.ceil(args.minutes) - 1
        minutes = per_minute(started, everything, last)
        sampled = per_minute(started, [(sample["t"], sample) for sample in samples], last)
        memory = {minute: in_minute[-1] for minute, in_minute in sampled.items()}
        rows = []
        for minute, values in sorted(minutes.items()):
            s = harness.summary(values)
            row = {"minute": minute + 1, **{k: s[k] for k in ("n", "p50_ms", "p99_ms", "max_ms")}}
            sample = memory.get(minute)
            if sample:
                before = next(x for x in samples if x["t"] >= started + 60 * minute)
                span = sample["t"] - before["t"]
                row.update({k: sample.get(k) for k in ("VmRSS_MiB", "threads", "open_fds")})
                row["cpu_percent"] = (
                    round(100 * (sample["cpu"] - before["cpu"]) / span, 1) if span else None
                )
            rows.append(row)
        return {
            "minutes": args.minutes,
            "rate": args.rate,
            "changes": len(changes),
            "pages": {kind: sum(1 for _, k in pages if k == kind) for kind in by_kind},
            "latency_ms": {
                "every": harness.summary([ms for _, ms in everything]),
                **{
                    kind: harness.summary([ms for _, ms in items])
                    for kind, items in by_kind.items()
                },
            },
            "per_minute": rows,
            "rss_start_MiB": samples[0].get("VmRSS_MiB"),
            "rss_end_MiB": samples[-1].get("VmRSS_MiB"),
            "rss_samples_MiB": [s.get("VmRSS_MiB") for s in samples],
        }
    finally:
        if servicer is not None:
            servicer.close()
        procs.stop_all()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="how long (10)")
    parser.add_argument("--rate", type=float, default=5, help="changes a second (5)")
    parser.add_argument("--tickets", type=int, default=20, help="customers following (20)")
    parser.add_argument("--boards", type=int, default=4, help="display boards (4)")
    parser.add_argument("--queue-pages", type=int, default=4, help="queue pages (4)")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--follower-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--child-timeout", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.follower_child:
        follower_child(args)
        return 0
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the server on the way out
    results = soak(args)
    report(results)
    if args.json:
        harness.write_json(args.json, results, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
