"""Profile the two benchmarked endpoints in-process, without a server.

    .venv/bin/python benchmarks/profile_app.py [--requests 2000] [--top 25]
                                               [--only take|floor|ticket]

Builds the app with its own factory on a temporary database prepared like
benchmarks/run.py's (same queues, sessions and tickets), calls the WSGI app
directly in one thread, and prints the CPU time per request and cProfile's top
functions (CPU time, so other processes on the machine do not skew it). ``floor``
sends the take requests to benchmarks/floors.py's WebOb app on the same store:
the difference from ``take`` is the app's own work.
"""

import argparse
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
import urllib.parse

import webob

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import run  # noqa: E402  (benchmarks/run.py: same data as the load test)
from harness import CSRF_INPUT  # noqa: E402


def call(app, method, path, cookie=None, body=b""):
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8080",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    if body:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
        environ["CONTENT_LENGTH"] = str(len(body))
    result = {}

    def start_response(status, headers, exc_info=None):
        result["status"] = int(status.split()[0])
        result["headers"] = headers

    chunks = app(environ, start_response)
    text = b"".join(chunks).decode()
    if hasattr(chunks, "close"):
        chunks.close()
    cookies = {}
    for name, value in result["headers"]:
        if name.lower() == "set-cookie":
            key, _, val = value.split(";", 1)[0].partition("=")
            cookies[key] = val
    location = {k.lower(): v for k, v in result["headers"]}.get("location")
    return result["status"], location, cookies, text


def browser(app, queue_id):
    _, _, cookies, page = call(app, "GET", f"/{queue_id}")
    csrf = CSRF_INPUT.search(page).group(1)
    return f"tan_session={cookies['tan_session']}", csrf


def profile(label, n, fn, top):
    fn(0)  # first call outside the profile (lazy compiles, connections)
    start = time.thread_time()
    wall = time.perf_counter()
    for i in range(n):
        fn(i)
    cpu = time.thread_time() - start
    wall = time.perf_counter() - wall
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    for i in range(n):
        fn(i)
    profiler.disable()
    print(
        f"\n=== {label}: {n} requests, unprofiled {1000 * cpu / n:.3f} ms CPU/request "
        f"({1000 * wall / n:.3f} ms wall), one thread => at most {n / cpu:.0f} req/s per core"
    )
    stats = pstats.Stats(profiler)
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats(key).print_stats(top)
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print(f"--- by {key} (seconds of CPU over {n} requests)")
        print("\n".join(lines[start:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", choices=("take", "floor", "ticket"), action="append")
    args = parser.parse_args(argv)
    from take_a_number import main as make_app

    workdir = tempfile.mkdtemp(prefix="tan-profile-")
    try:
        database = os.path.join(workdir, "var", "benchmark.sqlite")
        run.prepare_database(database)
        app = make_app(
            {"here": workdir},
            database=database,
            rate_limit_take_ticket="off",
            rate_limit_take_ticket_per_address="off",
            rate_limit_create_queue="off",
        )
        selected = args.only or ["take", "floor", "ticket"]
        if "take" in selected or "floor" in selected:
            # Every take comes from a new browser (a browser holds one ticket):
            # sessions signed as the app signs them, made before profiling.
            from take_a_number.security import Session

            def minted():
                session = Session()
                signer = app.sessions.serializer(webob.Request.blank("/"))
                cookie = signer.dumps(dict(session)).decode("ascii")
                body = urllib.parse.urlencode({"csrf_token": session["csrf"]}).encode()
                return f"tan_session={cookie}", body

            fresh = iter([minted() for _ in range(6 * args.requests + 2)])

            def take(i):
                cookie, body = next(fresh)
                status, _, _, _ = call(app, "POST", f"/{run.TAKE_QUEUE}/take", cookie, body)
                assert status == 303, status

            if "take" in selected:
                profile("take a number (POST /bench-take/take)", args.requests, take, args.top)
            if "floor" in selected:
                import floors

                floor = floors.webob_app(app.store)

                def floor_take(i):
                    cookie, body = next(fresh)
                    status, _, _, _ = call(floor, "POST", f"/{run.TAKE_QUEUE}/take", cookie, body)
                    assert status == 303, status

                profile(
                    "floor-webob: the same take in WebOb + Routes only",
                    args.requests,
                    floor_take,
                    args.top,
                )
        if "ticket" in selected:
            tickets = []
            for _ in range(100):
                cookie, csrf = browser(app, run.TICKET_QUEUE)
                body = urllib.parse.urlencode({"csrf_token": csrf}).encode()
                _, location, cookies, _ = call(
                    app, "POST", f"/{run.TICKET_QUEUE}/take", cookie, body
                )
                ticket_cookie = f"tan_ticket_{run.TICKET_QUEUE}"
                tickets.append(
                    (
                        urllib.parse.urlsplit(location).path,
                        f"{cookie}; {ticket_cookie}={cookies[ticket_cookie]}",
                    )
                )

            def ticket(i):
                path, cookie = tickets[i % 100]
                status, _, cookies, _ = call(app, "GET", path, cookie)
                assert status == 200 and not cookies, (status, cookies)

            profile(
                "ticket page (GET /bench-ticket/ticket/<token>)", args.requests, ticket, args.top
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
