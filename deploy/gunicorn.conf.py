"""gunicorn settings for Take A Number: several processes, each holding live updates.

    .venv/bin/gunicorn --config deploy/gunicorn.conf.py

Settings given on the command line win over these (the Procfile sets another
--bind). The app's own settings come from app.ini and TAKE_A_NUMBER_* variables.
"""

import os
import signal
import threading

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# runner.py builds the app from the app.ini beside it.
wsgi_app = "runner:application"
chdir = CHECKOUT
bind = "127.0.0.1:8080"

# Processes share the one SQLite file: numbers stay unique, and a change made in
# one process wakes the held live-update requests of every other.
workers = 3
# A held live-update request keeps its thread for up to push_hold_seconds, so
# sync workers (one thread each) would stall. Each gthread worker holds at most
# push_max_held of its threads, leaving 10 for pages.
worker_class = "gthread"
threads = 40
os.environ.setdefault("TAKE_A_NUMBER_PUSH_MAX_HELD", "30")
# Outside the code directory, so that a new release never replaces it.
os.environ.setdefault("TAKE_A_NUMBER_DATABASE", "/var/lib/take-a-number/take-a-number.sqlite")

# Each worker builds its own app: its SQLite connections and its push watcher
# thread must not be shared across a fork.
preload_app = False

# nginx on this machine: trust its X-Forwarded-Proto (https gives Secure
# cookies and https links).
forwarded_allow_ips = "127.0.0.1"
accesslog = "-"


def post_worker_init(worker):
    """On a graceful stop (SIGTERM), answer the worker's held live updates at once.

    gunicorn lets a stopping worker finish the requests it is answering: held
    ones would keep it up to push_hold_seconds. The app's close() answers them
    (their pages ask again after push_retry_seconds, of the next server).
    """
    stop = signal.getsignal(signal.SIGTERM)

    def stop_holding(signum, frame):
        if callable(stop):
            stop(signum, frame)
        close = getattr(worker.wsgi, "close", None)
        if close is not None:  # another app than Take A Number's has none
            threading.Thread(target=close, name="take-a-number-close").start()

    signal.signal(signal.SIGTERM, stop_holding)
