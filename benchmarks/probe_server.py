"""``take-a-number`` with every write transaction timed, for ``run.py --probe``.

    python benchmarks/probe_server.py --config CONFIG.ini serve

Runs the app's own command line after replacing the store's write lock (the
Python lock every write of the process takes before SQLite's: ``BEGIN
IMMEDIATE`` ... ``COMMIT``, a take written alone, takes written together) with
one that records, per write, how long it waited for the lock and how long it
then held it, until its commit returned.

Signals: SIGUSR1 forgets what was recorded; SIGUSR2 writes a summary as JSON to
the file named by $TAN_PROBE_OUT (written to a temporary name, then renamed).
"""

import json
import os
import signal
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

_records = {"waits": [], "holds": []}
_lock = threading.Lock()


def _summary(values):
    if not values:
        return {"count": 0}
    ms = sorted(1000 * v for v in values)
    summary = {
        "count": len(ms),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(ms[-1], 1),
    }
    if len(ms) >= 2:
        q = statistics.quantiles(ms, n=100, method="inclusive")
        summary.update(p50_ms=round(q[49], 3), p90_ms=round(q[89], 3), p99_ms=round(q[98], 2))
    return summary


def _reset(signum, frame):
    with _lock:
        for values in _records.values():
            values.clear()


def _write(signum, frame):
    with _lock:
        data = {
            "wait_for_write_lock": _summary(_records["waits"]),
            "write_lock_held": _summary(_records["holds"]),
        }
    path = os.environ["TAN_PROBE_OUT"]
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


class _TimedLock:
    """A lock that records how long each acquire waited and each hold lasted."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entered = threading.local()

    def __enter__(self):
        started = time.perf_counter()
        self._lock.acquire()
        self._entered.at = time.perf_counter()
        with _lock:
            _records["waits"].append(self._entered.at - started)
        return self

    def __exit__(self, *exc_info):
        held = time.perf_counter() - self._entered.at
        self._lock.release()
        with _lock:
            _records["holds"].append(held)
        return False

    def acquire(self, *args, **kwargs):  # what tests and the store may call
        return self._lock.acquire(*args, **kwargs)

    def release(self):
        self._lock.release()


def install():
    from take_a_number import store

    original = store.Store.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.engine.write_lock = _TimedLock()

    store.Store.__init__ = __init__
    signal.signal(signal.SIGUSR1, _reset)
    signal.signal(signal.SIGUSR2, _write)


def main():
    install()
    from take_a_number import cli

    sys.exit(cli.main(sys.argv[1:]))


if __name__ == "__main__":
    main()
