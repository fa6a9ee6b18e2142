"""Instructions per request, counted by valgrind: a figure a busy machine does not move.

    .venv/bin/python benchmarks/instructions.py [--tree DIR ...] [--only ticket|ticket-render|take]
                                                [--requests 400]

Timing on a shared machine moves by 10 points from run to run; the number of
machine instructions the server's process executes per request does not (to
within a fraction of a percent). For each checkout (``--tree``, default this
one; each with its own ``.venv``, else this Python), this runs the app in-process under
``valgrind --tool=callgrind`` twice, with ``--requests`` and with three times
as many requests of one kind, on a database prepared as benchmarks/run.py
prepares it, and prints the difference divided by the extra requests: start-up
and preparation cancel out. The first tree is the baseline; each other tree's
figure is printed as a ratio to it, measured in the same run.

The requests are those of benchmarks/profile_app.py (the WSGI app called in one
thread): ``ticket``, a reload of a waiting ticket page (100 tickets, round
robin) answered from the remembered answers (answers.py), ``ticket-render``,
the same made anew each time (as every page is once after each change), and
``take``, a new browser's first number.
"""

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
KINDS = ("ticket", "ticket-render", "take")


def drive(kind, requests):
    """Run in the tree's own Python (cwd = the tree): ``requests`` requests of ``kind``."""
    sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "benchmarks")]
    import urllib.parse

    import profile_app
    import run
    import webob

    from take_a_number import main as make_app
    from take_a_number.security import Session

    workdir = tempfile.mkdtemp(prefix="tan-instructions-")
    database = os.path.join(workdir, "var", "benchmark.sqlite")
    run.prepare_database(database)
    app = make_app(
        {"here": workdir},
        database=database,
        rate_limit_take_ticket="off",
        rate_limit_take_ticket_per_address="off",
        rate_limit_create_queue="off",
    )
    # What time would change is held still, so that only the code counts: no
    # check for other processes' commits (a probe per 50 ms of a slowed-down
    # run), no snapshot growing old, and for "ticket" no remembered answer
    # expiring, for "ticket-render" none given again. Each name is looked for
    # where the architecture change put it, and where it was before.
    remembered_for = 1e9 if kind == "ticket" else -1.0
    hold("take_a_number.store.engine", "FOREIGN_CHECK_SECONDS", 1e9)
    hold("take_a_number.store", "FOREIGN_CHECK_SECONDS", 1e9)
    hold("take_a_number.views", "SNAPSHOT_MAX_AGE", 1e9)
    hold("take_a_number.answers", "MAX_AGE", remembered_for)
    hold("take_a_number.application", "RESPONSE_MAX_AGE", remembered_for)
    if kind != "take":
        tickets = []
        for _ in range(100):
            cookie, csrf = profile_app.browser(app, run.TICKET_QUEUE)
            body = urllib.parse.urlencode({"csrf_token": csrf}).encode()
            _, location, cookies, _ = profile_app.call(
                app, "POST", f"/{run.TICKET_QUEUE}/take", cookie, body
            )
            name = f"tan_ticket_{run.TICKET_QUEUE}"
            tickets.append(
                (urllib.parse.urlsplit(location).path, f"{cookie}; {name}={cookies[name]}")
            )
        for path, cookie in tickets:  # every page once before counting starts
            profile_app.call(app, "GET", path, cookie)
        for i in range(requests):
            path, cookie = tickets[i % 100]
            status, _, _, _ = profile_app.call(app, "GET", path, cookie)
            assert status == 200, status
    else:
        signer = app.sessions.serializer(webob.Request.blank("/"))
        fresh = []
        for _ in range(requests + 1):
            session = Session()
            cookie = signer.dumps(dict(session)).decode("ascii")
            body = urllib.parse.urlencode({"csrf_token": session["csrf"]}).encode()
            fresh.append((f"tan_session={cookie}", body))
        for cookie, body in fresh:
            status, _, _, _ = profile_app.call(app, "POST", f"/{run.TAKE_QUEUE}/take", cookie, body)
            assert status == 303, status


def hold(module, name, value):
    """Set ``module.name`` to ``value`` if the tree's package has that name there."""
    try:
        module = importlib.import_module(module)
    except ImportError:
        return
    if hasattr(module, name):
        setattr(module, name, value)


def count(tree, kind, requests):
    """Instructions the tree's process executes for ``requests`` requests (and its set-up)."""
    python = os.path.join(tree, ".venv", "bin", "python")
    if not os.path.exists(python):
        python = sys.executable
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}/callgrind.out",
                python,
                os.path.abspath(__file__),
                "--drive",
                kind,
                str(requests),
            ],
            cwd=tree,
            # The same hashes of strings in every run: dicts and sets do the same work.
            env=dict(os.environ, PYTHONHASHSEED="0"),
            check=True,
            capture_output=True,
        )
        with open(f"{out}/callgrind.out") as results:
            totals = re.search(r"^totals: (\d+)", results.read(), re.MULTILINE)
    return int(totals.group(1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", help="a checkout with its own .venv")
    parser.add_argument("--only", choices=KINDS, action="append")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--drive", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.drive:
        return drive(args.drive[0], int(args.drive[1]))
    trees = [os.path.abspath(t) for t in args.tree or [os.path.dirname(HERE)]]
    n = args.requests
    print(f"instructions per request (valgrind callgrind; {3 * n} minus {n} requests)")
    for kind in args.only or KINDS:
        baseline = None
        for tree in trees:
            per_request = (count(tree, kind, 3 * n) - count(tree, kind, n)) / (2 * n)
            baseline = baseline or per_request
            print(
                f"{kind:7} {per_request / 1e6:8.3f} M instructions/request "
                f"x{per_request / baseline:.3f} of the first tree  {tree}",
                flush=True,
            )


if __name__ == "__main__":
    main()
