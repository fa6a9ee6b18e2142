"""Many instances as one service (issue 14): SQLite, PostgreSQL with one instance and
with two behind nginx, in one run, beside the same run's hello-world.

    .venv/bin/python benchmarks/instances.py [--duration 15] [--waiters 100] [--calls 10]

Starts a throwaway PostgreSQL cluster (tests/pg_support.py: initdb in a temporary
folder, fsync off as for the tests) and nginx (deploy/nginx/nginx.conf, the
recipe's ``location /`` of deploy/nginx/take-a-number.conf on plain http, and
deploy/nginx/upstream-instances.conf with the instances' ports), then measures
with wrk and the load benchmark's clients (benchmarks/run.py):

* hello:        the hello-world WSGI app, straight and behind nginx (the baselines);
* sqlite-1:     one ``take-a-number serve`` on a SQLite file, behind nginx;
* postgresql-1: one instance on a fresh PostgreSQL database, behind nginx;
* postgresql-2: two instances on one fresh database, nginx round-robin between them;

each app layout with run.py's two scenarios, ``take`` (100 new browsers taking a
number) and ``ticket`` (100 browsers reloading their ticket page). Every layout
gets the same upstream file and nginx, so they differ only in the database and the
number of instances. For each: requests/s, latency percentiles, the percentage of
hello-world (behind nginx and straight), and the CPU time per request of each
instance, of PostgreSQL (postmaster and backends) and of nginx (/proc/<pid>/stat).

Then push across instances, on postgresql-2: ``--waiters`` customers hold their
ticket's live update on instance A (push.py's waiting clients, a process of their
own), and a servicer, signed in once, presses Next ``--calls`` times, alternately on
instance B (the wake-up crosses instances: NOTIFY, then A's listener) and on A (the
same instance). Latency of the called customer: from the end of the servicer's POST
to the customer's whole answer (negative when the customer had it before the servicer
had read the 303), and from the start of the POST; against an update answered at
once by A.

Last, on postgresql-2's database: what a notification costs each instance (a few
thousand pg_notify about a queue nobody waits for there), and what each instance's
push watcher asks of PostgreSQL when it hears one: the versions of every queue
someone waits for on it (``--watched`` queues), in one read.

Writes the figures as JSON to benchmarks/results/instances-<time>.json. About three
minutes with the defaults. Every process it starts is stopped on exit, error or Ctrl-C.
"""

import argparse
import datetime
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

import harness  # noqa: E402  benchmarks/harness.py: what every benchmark shares
import push  # noqa: E402  benchmarks/push.py: the waiting customers and the servicer
import run  # noqa: E402  benchmarks/run.py: wrk, the take and ticket clients

NGINX_DIR = os.path.join(harness.ROOT, "deploy", "nginx")
LAYOUTS = {
    "sqlite-1": "SQLite, 1 instance",
    "postgresql-1": "PostgreSQL, 1 instance",
    "postgresql-2": "PostgreSQL, 2 instances",
}
# The servicer signs in once per run, and every browser of a scenario takes a number.
OVERRIDES = {"rate_limit_sign_in": "off"}


# -- nginx ------------------------------------------------------------------------


def nginx_site(listen_port, backend_ports):
    """The recipe's upstream and ``location /`` on plain http: the instances' ports in
    deploy/nginx/upstream-instances.conf, and take-a-number.conf's proxy settings
    (live-update timeouts, headers) with proxy_pass to the upstream, as the upstream
    file says to write it."""
    with open(os.path.join(NGINX_DIR, "upstream-instances.conf"), encoding="utf-8") as f:
        upstream = f.read()
    with open(os.path.join(NGINX_DIR, "take-a-number.conf"), encoding="utf-8") as f:
        site = f.read()
    location = re.search(r"\n    location / \{\n.*?\n    \}\n", site, re.S)
    recipe_servers = re.findall(r"^    server 127\.0\.0\.1:\d+;\n", upstream, re.M)
    proxy_pass = "proxy_pass http://127.0.0.1:8080;"
    if not (location and proxy_pass in location.group(0) and recipe_servers):
        raise harness.BenchmarkError(
            "deploy/nginx/take-a-number.conf or upstream-instances.conf changed shape"
        )
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in backend_ports)
    upstream = upstream.replace(recipe_servers[0], servers, 1)
    for line in recipe_servers[1:]:
        upstream = upstream.replace(line, "", 1)
    # The lines the upstream file's comment says to write instead of proxy_pass.
    instead = re.findall(r"^#     (proxy_.*;)$", upstream, re.M)
    location = location.group(0).replace(proxy_pass, "\n        ".join(instead))
    return f"{upstream}\nserver {{\n    listen 127.0.0.1:{listen_port};{location}}}\n"


def start_nginx(procs, workdir, name, backend_ports):
    """nginx (deploy/nginx/nginx.conf unchanged) in front of ``backend_ports``: its
    process and port."""
    program = shutil.which("nginx") or "/usr/sbin/nginx"
    directory = os.path.join(workdir, f"nginx-{name}")
    prefix = os.path.join(directory, "prefix")
    os.makedirs(prefix)
    port = harness.free_port()
    with open(os.path.join(directory, "take-a-number.conf"), "w", encoding="utf-8") as f:
        f.write(nginx_site(port, backend_ports))
    conf = shutil.copy(os.path.join(NGINX_DIR, "nginx.conf"), directory)
    # As root, nginx's workers would run as nobody, who cannot enter the private workdir.
    globals_ = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    args = [program, "-p", prefix, "-c", conf, "-e", "stderr", "-g", globals_]
    return harness.serve(procs, workdir, f"nginx-{name}", args, port)[0], port


# -- the app's instances -------------------------------------------------------------


def start_instances(procs, workdir, app_ini, layout, database, count, prepare):
    """``count`` instances on ``database`` sharing one secret: their harness.App."""
    apps = []
    for i in range(count):
        apps.append(
            harness.start_app(
                procs,
                workdir,
                app_ini,
                prepare if i == 0 else (lambda database: None),
                overrides=OVERRIDES,
                database=database,
                secret=apps[0].secret if apps else None,
                name=f"{layout}-{i + 1}",
            )
        )
    return apps


def prepare_database(database, waiters):
    """run.py's two queues, and push.py's queue with ``waiters`` tickets: their tokens."""
    run.prepare_database(database)
    return push.prepare_database(database, waiters)


def postmaster_pid(cluster):
    with open(os.path.join(cluster.data_dir, "postmaster.pid"), encoding="ascii") as f:
        return int(f.readline())


def meters(apps, nginx, cluster):
    """What serves a layout: each instance, PostgreSQL and nginx, as CPU-second meters."""
    out = {
        f"instance {i + 1}": (lambda pid=app.proc.pid: harness.tree_cpu_seconds(pid))
        for i, app in enumerate(apps)
    }
    if cluster is not None:
        pid = postmaster_pid(cluster)
        out["postgresql"] = lambda: harness.tree_cpu_seconds(pid)
    out["nginx"] = lambda: harness.tree_cpu_seconds(nginx.pid)
    return out


def load_layout(procs, workdir, app_ini, layout, database, count, cluster, args):
    """Take and ticket load through nginx on ``count`` instances: results, and the
    instances and nginx, left running (for push)."""
    print(f"[{layout}] {count} instance(s) on {database_kind(database)} ...", flush=True)
    apps = start_instances(
        procs,
        workdir,
        app_ini,
        layout,
        database,
        count,
        lambda database: prepare_database(database, args.waiters),
    )
    nginx, port = start_nginx(procs, workdir, layout, [app.port for app in apps])
    serving = meters(apps, nginx, cluster)
    results = {}
    for name, method, clients, expected, mode in (
        ("take", "POST", run.take_clients(port, workdir, apps[0].secret), 303, "once"),
        ("ticket", "GET", run.ticket_clients(port, workdir), 200, "cycle"),
    ):
        description = f"{LAYOUTS[layout]}: {run.SCENARIOS[name]}"
        print(f"[{layout} {name}] {description}", flush=True)
        results[name] = run.measure(
            f"{layout}-{name}",
            apps[0].proc,
            port,
            method,
            clients,
            expected,
            mode,
            args,
            description=description,
            meters=serving,
        )
    results["server_logs"] = {
        f"instance {i + 1}": harness.server_log_summary(app.log_path) for i, app in enumerate(apps)
    }
    return results, apps, nginx


def database_kind(database):
    return "PostgreSQL" if "://" in database else "a SQLite file"


def load_hello(procs, workdir, app_ini, args):
    """hello-world straight, then behind nginx with the same upstream file."""
    results = {}
    hello, port = run.start_hello(procs, workdir, app_ini)
    clients = run.hello_clients(workdir)
    print("[hello] hello-world WSGI app (baseline), straight", flush=True)
    results["hello"] = run.measure("hello", hello, port, "GET", clients, 200, "cycle", args)
    nginx, nginx_port = start_nginx(procs, workdir, "hello", [port])
    print("[hello-nginx] hello-world behind nginx (baseline of the layouts)", flush=True)
    results["hello-nginx"] = run.measure(
        "hello",
        hello,
        nginx_port,
        "GET",
        clients,
        200,
        "cycle",
        args,
        description="hello-world WSGI app behind nginx",
        meters={
            "hello": lambda: harness.cpu_seconds(hello.pid),
            "nginx": lambda: harness.tree_cpu_seconds(nginx.pid),
        },
    )
    procs.stop(nginx)
    procs.stop(hello)
    return results


# -- push across instances -----------------------------------------------------------


def push_across(procs, workdir, apps, tokens, args):
    """The called customer's latency, customers on instance A, Next pressed on B and on A."""
    a, b = apps
    waiter_tokens = tokens[: args.waiters]
    since0 = f"/{push.QUEUE}/ticket/{waiter_tokens[-1]}/updates?since=0"
    http = harness.KeepAlive(a.port)
    try:
        at_once = []
        for i in range(60 + args.calls * 4):
            response, data, started, ended = http.request("GET", since0)
            if response.status != 200 or b'"version"' not in data:
                raise harness.BenchmarkError(f"GET {since0} answered {response.status}")
            if i >= 60:  # after the threads' first connections
                at_once.append(1000 * (ended - started))
    finally:
        http.close()
    cookie, csrf = harness.sign_in_servicer(a.port, push.QUEUE)
    # Signed in on A, pressing on both: sessions are valid on every instance.
    servicers = {"B": push.Servicer(b.port, cookie, csrf, a.database)}
    servicers["A"] = push.Servicer(a.port, cookie, csrf, a.database)
    print(f"[push] {args.waiters} customers wait on instance A ...", flush=True)
    crowd = push.start_waiters(procs, a.port, waiter_tokens, workdir, args.timeout)
    try:
        crowd.expect("READY", timeout=90)
        calls = []
        print(f"[push] {args.calls} calls, alternately on B and on A ...", flush=True)
        for k in range(args.calls):
            time.sleep(args.interval)
            via = "B" if k % 2 == 0 else "A"
            idle = push.wait_all_waiting(crowd, args.waiters)
            started, ended, version, token = servicers[via].call_next()
            calls.append(
                {
                    "via": via,
                    "post_started": started,
                    "post_ended": ended,
                    "version": version,
                    "called_token": token,
                    "started_idle": idle,
                    "server_cpu_ms": None,
                }
            )
        time.sleep(max(1.0, args.interval))
        push.wait_all_waiting(crowd, args.waiters)
        records, stats = push.stop_waiters(crowd, workdir)
    finally:
        for servicer in servicers.values():
            servicer.close()
    index = {token: i for i, token in enumerate(waiter_tokens)}
    result = {"updates_at_once": harness.summary(at_once), "client": stats}
    for via in ("B", "A"):
        latency = push.analyse_calls([c for c in calls if c["via"] == via], records, index)
        result[f"pressed_on_{via}"] = {
            "called": latency["called"],
            "called_from_post_start": latency["called_from_post_start"],
            "all_woken": latency["all"],
            "called_state": [c["called_state"] for c in latency["per_call"]],
            "woken": [c["woken"] for c in latency["per_call"]],
        }
    return result


def notify_cost(apps, database, count):
    """What a notification costs every instance: ``count`` pg_notify about a queue
    nobody waits for here, as another instance's writes send them. CPU per
    notification of each instance (its idle CPU over the same time taken off), and
    how many one connection sends per second (one transaction each)."""
    import psycopg

    from take_a_number.store.postgresql import CHANNEL

    pids = {f"instance {i + 1}": app.proc.pid for i, app in enumerate(apps)}

    def cpu():
        return {label: harness.cpu_seconds(pid) for label, pid in pids.items()}, time.monotonic()

    idle_before, t0 = cpu()
    time.sleep(2.0)
    idle_after, t1 = cpu()
    idle_rate = {k: (idle_after[k] - idle_before[k]) / (t1 - t0) for k in pids}
    with psycopg.connect(database, autocommit=True) as conn:
        before, started = cpu()
        for _ in range(count):
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, run.TAKE_QUEUE))
        sent = time.monotonic()
    time.sleep(1.0)  # the listeners hear the last ones
    after, ended = cpu()
    return {
        "notifications": count,
        "sent_per_second": round(count / (sent - started)),
        "cpu_us_per_notification": {
            k: round(
                1e6 * max(0.0, after[k] - before[k] - idle_rate[k] * (ended - started)) / count, 1
            )
            for k in pids
        },
    }


def watch_cost(database, cluster, count, reads=200):
    """What each instance's push watcher asks of PostgreSQL when it hears a
    notification: the versions of every queue someone waits for on it, in one read
    (``Store.queue_versions``). ``count`` queues made, then ``reads`` such reads:
    milliseconds and PostgreSQL CPU per read."""
    from take_a_number.security import hash_password

    store = harness.new_store(database)
    try:
        password_hash, now = hash_password(harness.PASSWORD), time.time()
        ids = [f"watched-{i}" for i in range(count)]
        for queue_id in ids:
            store.create_queue(queue_id, queue_id, password_hash, now)
        store.queue_versions(ids)
        pid = postmaster_pid(cluster)
        cpu, started = harness.tree_cpu_seconds(pid), time.monotonic()
        for _ in range(reads):
            if len(store.queue_versions(ids)) != count:
                raise harness.BenchmarkError("queue_versions did not find every queue")
        elapsed, cpu = time.monotonic() - started, harness.tree_cpu_seconds(pid) - cpu
    finally:
        store.close()
    return {
        "queues": count,
        "reads": reads,
        "ms_per_read": round(1000 * elapsed / reads, 2),
        "postgresql_cpu_ms_per_read": round(1000 * cpu / reads, 2),
    }


# -- report ---------------------------------------------------------------------------


def percent(value, base):
    return round(100 * value / base, 1) if base else None


def per_request_costs(r):
    """CPU ms per request: all instances together, PostgreSQL, nginx."""
    costs = r.get("cpu_ms_per_request", {})
    instances = [v for k, v in costs.items() if k.startswith("instance")]
    return round(sum(instances), 3), costs.get("postgresql"), costs.get("nginx")


def report(results, info, args):
    hello, hello_nginx = results["hello"], results["hello-nginx"]
    print()
    print("Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"wrk {run.WRK_THREADS} threads, {run.CONNECTIONS} connections, {args.duration} s per "
        f"scenario, warm-up {args.warmup} s; every app layout behind the same nginx"
    )
    print()
    header = (
        f"{'layout':<24} {'scenario':<7} {'req/s':>7} {'p50':>6} {'p90':>6} {'p99':>6} "
        f"{'%hello':>6} {'%h+ngx':>6} {'err':>4} {'app ms':>7} {'pg ms':>6} {'ngx ms':>6}"
    )
    print(header)
    print("-" * len(header))
    rows = [
        ("hello-world, straight", "GET /", hello),
        ("hello-world + nginx", "GET /", hello_nginx),
    ]
    for layout, description in LAYOUTS.items():
        for scenario in ("take", "ticket"):
            if layout in results:
                rows.append((description, scenario, results[layout][scenario]))
    for label, scenario, r in rows:
        r["percent_of_hello"] = percent(r["ok_per_second"], hello["ok_per_second"])
        r["percent_of_hello_nginx"] = percent(r["ok_per_second"], hello_nginx["ok_per_second"])
        app_ms, pg_ms, nginx_ms = per_request_costs(r)
        if label.startswith("hello"):
            app_ms = r["cpu_ms_per_request"].get("hello", r["cpu_ms_per_request"].get("server"))
        errors = sum(r["unexpected_statuses"].values()) + sum(r["socket_errors"].values())
        print(
            f"{label:<24} {scenario:<7} {r['ok_per_second']:>7.0f} {r['p50_ms']:>6.1f} "
            f"{r['p90_ms']:>6.1f} {r['p99_ms']:>6.1f} {r['percent_of_hello']:>6.1f} "
            f"{r['percent_of_hello_nginx']:>6.1f} {errors:>4} {app_ms if app_ms else '-':>7} "
            f"{pg_ms if pg_ms is not None else '-':>6} "
            f"{nginx_ms if nginx_ms is not None else '-':>6}"
        )
    print(
        "(req/s: answers with the expected status per second; p50/p90/p99: latency in ms; "
        "%hello, %h+ngx: of hello-world's req/s straight and behind nginx; err: other "
        "statuses and socket errors; app/pg/ngx ms: CPU ms per request of all the app's "
        "instances together, of PostgreSQL, of nginx)"
    )
    print()
    print("Per instance (CPU ms per request it answered, its share of one core):")
    for layout in LAYOUTS:
        if layout not in results:
            continue
        for scenario in ("take", "ticket"):
            r = results[layout][scenario]
            shares = {
                k: (r["cpu_ms_per_request"][k], r["cpu_percent"][k])
                for k in r["cpu_ms_per_request"]
                if k.startswith("instance")
            }
            n = len(shares)
            text = "; ".join(
                f"{k}: {round(ms * n, 3)} ms/request, {pct}% of a core"
                for k, (ms, pct) in shares.items()
            )
            print(f"  {LAYOUTS[layout]}, {scenario}: {text}")
    if "postgresql-1" in results and "postgresql-2" in results:
        print()
        for scenario in ("take", "ticket"):
            one = results["postgresql-1"][scenario]["ok_per_second"]
            two = results["postgresql-2"][scenario]["ok_per_second"]
            print(
                f"Two instances / one, {scenario}: x{round(two / one, 2)} "
                f"({two:.0f} / {one:.0f} req/s) on {info['nproc']} CPUs shared with wrk, "
                "nginx and PostgreSQL"
            )
    two = results.get("postgresql-2")
    if two:
        print()
        print("One instance on one core of this machine (1000 / its CPU ms per request answered):")
        for scenario in ("take", "ticket"):
            costs = two[scenario]["cpu_ms_per_request"]
            n = sum(1 for k in costs if k.startswith("instance"))
            app_ms = per_request_costs(two[scenario])[0]
            print(
                f"  {scenario}: {round(1000 / app_ms):.0f} requests/s per instance-core "
                f"({app_ms} ms each, over {n} instances); PostgreSQL "
                f"{costs.get('postgresql')} ms/request"
            )
    n = results.get("notify")
    if n:
        print(
            "A notification heard by each instance: "
            + ", ".join(f"{k} {v} us CPU" for k, v in n["cpu_us_per_notification"].items())
            + f"; one connection sent {n['sent_per_second']} pg_notify/s"
        )
    w = results.get("watch")
    if w:
        print(
            f"A watcher's read of {w['queues']} queues' versions: {w['ms_per_read']} ms, "
            f"PostgreSQL CPU {w['postgresql_cpu_ms_per_read']} ms"
        )
    p = results.get("push")
    if p:
        base = p["updates_at_once"]
        print()
        print(
            f"Push across instances: {args.waiters} customers held on instance A "
            f"(update answered at once by A: {harness.fmt(base)})"
        )
        for via, words in (("B", "Next on instance B"), ("A", "Next on instance A")):
            called = p[f"pressed_on_{via}"]["called"]
            from_start = p[f"pressed_on_{via}"]["called_from_post_start"]
            print(
                f"  {words}: called customer {harness.fmt(called)} "
                f"(from the start of the POST: {harness.fmt(from_start)}); "
                f"x{harness.ratio(called.get('p50_ms'), base.get('p50_ms'))} of the "
                f"update answered at once; every woken client "
                f"{harness.fmt(p[f'pressed_on_{via}']['all_woken'])}"
            )
        problems = {
            k: v
            for k, v in p["client"]["kinds"].items()
            if k not in ("initial", "changed", "timeout")
        }
        if problems or p["client"]["lost"]:
            print(f"  client problems: {problems}, connections lost {p['client']['lost']}")
    for layout in LAYOUTS:
        for name, log in results.get(layout, {}).get("server_logs", {}).items():
            if log["other_warnings"]:
                print(f"{LAYOUTS[layout]}, {name} logged {len(log['other_warnings'])} warnings:")
                print("  " + log["other_warnings"][0].splitlines()[0])


# -- main --------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=int, default=15, help="seconds of load per scenario (15)"
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="unmeasured seconds before each scenario (2)"
    )
    parser.add_argument(
        "--waiters", type=int, default=100, help="customers held on instance A (100)"
    )
    parser.add_argument("--calls", type=int, default=20, help="servicer calls, half on each (20)")
    parser.add_argument(
        "--notifications",
        type=int,
        default=5000,
        help="pg_notify sent to measure what one costs each instance (5000)",
    )
    parser.add_argument(
        "--watched",
        type=int,
        default=1000,
        help="queues whose versions one read asks for, as a watcher hearing a notification (1000)",
    )
    parser.add_argument(
        "--fsync",
        action="store_true",
        help="PostgreSQL with fsync and full_page_writes on, as in production (default: off, "
        "as the tests' cluster; SQLite runs with synchronous=normal, no fsync per commit)",
    )
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between calls (0.5)")
    parser.add_argument(
        "--wait-idle",
        type=int,
        default=0,
        metavar="SECONDS",
        help="before each scenario, wait up to this long for a quiet machine (0: do not)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="2 s per scenario, 10 waiters, 2 calls: a check"
    )
    parser.add_argument(
        "--json", metavar="PATH", help="default benchmarks/results/instances-<time>.json"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.duration, args.warmup, args.waiters, args.calls = 2, 0, 10, 2
        args.notifications, args.watched = 200, 20
    if not 1 <= args.duration <= 60 or not 0 <= args.warmup <= 30:
        parser.error("--duration must be 1 to 60 s and --warmup 0 to 30 s")
    if not 2 <= args.calls <= args.waiters <= 1000:
        parser.error("--calls must be 2 to --waiters, and --waiters at most 1000")
    if not 0.1 <= args.interval <= 10:
        parser.error("--interval must be 0.1 to 10 s")
    args.probe = False  # run.measure's option, not this benchmark's
    args.timeout = 120 + 2 * args.calls * args.interval
    return args


def main(argv=None):
    args = parse_args(argv)
    for program in ("wrk", "nginx"):
        if shutil.which(program) is None and not os.path.exists(f"/usr/sbin/{program}"):
            print(
                f"error: {program} is not installed: apt-get install -y {program}", file=sys.stderr
            )
            return 2
    import pg_support  # tests/pg_support.py: the throwaway cluster

    harness.stop_on_signals()
    app_ini = harness.read_app_ini()
    info = harness.machine()
    print(
        f"Take A Number on many instances: {info['nproc']} CPUs, Python {info['python']}; "
        f"server {harness.server_description(harness.server_settings(app_ini))}",
        flush=True,
    )
    procs = harness.Processes()
    workdir = tempfile.mkdtemp(prefix="tan-instances-")
    cluster = None
    results = {}
    try:
        print("[postgresql] a throwaway cluster (initdb) ...", flush=True)
        cluster = pg_support.start_postgresql()
        if args.fsync:
            for setting in ("fsync", "full_page_writes"):
                cluster.admin_execute(f"ALTER SYSTEM SET {setting} = on")
            cluster.admin().execute("SELECT pg_reload_conf()")
            time.sleep(0.5)
        admin = cluster.admin()
        info["postgresql"] = admin.execute("SHOW server_version").fetchone()[0]
        info["postgresql_fsync"] = admin.execute("SHOW fsync").fetchone()[0]
        results.update(load_hello(procs, workdir, app_ini, args))
        plans = (
            ("sqlite-1", os.path.join(workdir, "var", "sqlite-1.sqlite"), 1, None),
            ("postgresql-1", cluster.url(cluster.create_database()), 1, cluster),
            ("postgresql-2", cluster.url(cluster.create_database()), 2, cluster),
        )
        for layout, database, count, serving_cluster in plans:
            results[layout], apps, nginx = load_layout(
                procs, workdir, app_ini, layout, database, count, serving_cluster, args
            )
            procs.stop(nginx)
            if count == 2:
                results["push"] = push_across(procs, workdir, apps, apps[0].prepared, args)
                print(f"[notify] {args.notifications} notifications heard by both ...", flush=True)
                results["notify"] = notify_cost(apps, database, args.notifications)
                print(
                    f"[watch] the versions of {args.watched} queues, read at once ...", flush=True
                )
                results["watch"] = watch_cost(database, cluster, args.watched)
            for app in apps:
                procs.stop(app.proc)
    except (harness.BenchmarkError, pg_support.PostgreSQLUnavailable, OSError) as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        names = sorted(n for n in os.listdir(workdir) if n.endswith(".log"))
        harness.print_log_tails(workdir, names)
        return 1
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, info, args)
    path = args.json or os.path.join(
        run.RESULTS_DIR,
        "instances-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json",
    )
    harness.write_json(
        path,
        {
            "command": "python benchmarks/instances.py " + " ".join(argv or sys.argv[1:]),
            "machine": info,
            "wrk": {"threads": run.WRK_THREADS, "connections": run.CONNECTIONS},
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "results": results,
        },
    )
    print(f"\nResults written to {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
