"""Take A Number embedded in a plain Python WSGI app: two instances side by side.

    python examples/embed.py [DATA_DIR] [--port 8080]    # http://127.0.0.1:8080/a/ and /b/

Each instance is built by the app factory with its own database, and so its own
secret (generated beside the database): sessions and sign-ins never carry over
from one to the other. The parent hands each request under /a or /b to its
instance, moving the prefix from PATH_INFO to SCRIPT_NAME; from SCRIPT_NAME the
app makes every link, redirect, form action, static and live-update URL, API URL
and cookie path. A bare /a goes to its instance too, which redirects it to /a/.
"""

import argparse
import os

import waitress

from take_a_number import main


def mount(apps, fallback):
    """A WSGI app that hands each request under a prefix of ``apps`` to its app."""

    def parent(environ, start_response):
        path = environ.get("PATH_INFO", "")
        for prefix, app in apps.items():
            if path == prefix or path.startswith(prefix + "/"):
                environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                environ["PATH_INFO"] = path[len(prefix) :]
                return app(environ, start_response)
        return fallback(environ, start_response)

    return parent


def front_page(environ, start_response):
    """The parent's own page."""
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [b'<!doctype html><title>Queues</title><a href="a/">A</a> <a href="b/">B</a>']


# Each instance holds at most this many live-update requests; waitress needs a
# thread for each of them, and some more for pages.
PUSH_MAX_HELD = 50


def make_site(data_dir):
    def instance(name):
        database = os.path.join(data_dir, name, "queues.sqlite")
        return main({}, database=database, push_max_held=str(PUSH_MAX_HELD))

    return mount({"/a": instance("a"), "/b": instance("b")}, front_page)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Two Take A Number instances, at /a/ and /b/.")
    parser.add_argument("data_dir", nargs="?", default="var/embedded", metavar="DATA_DIR")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    waitress.serve(
        make_site(os.path.abspath(args.data_dir)),
        host="127.0.0.1",
        port=args.port,
        threads=2 * PUSH_MAX_HELD + 20,
    )
