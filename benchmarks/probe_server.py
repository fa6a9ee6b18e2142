"""``take-a-number`` with every write transaction timed, for ``run.py --probe``.

    python benchmarks/probe_server.py --config CONFIG.ini serve

Runs the app's own command line after wrapping ``Store.immediate`` (the
``BEGIN IMMEDIATE`` ... ``COMMIT`` of every change) to record, per transaction,
how long it waited to start (SQLite's write lock, taken by ``BEGIN IMMEDIATE``)
and how long it then held the lock until its commit returned.

Signals: SIGUSR1 forgets what was recorded; SIGUSR2 writes a summary as JSON to
the file named by $TAN_PROBE_OUT (written to a temporary name, then renamed).
"""

import contextlib
import json
import os
import signal
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

_records = {"waits": [], "holds": [], "failed_waits": []}
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
            "failed_to_start": _summary(_records["failed_waits"]),
        }
    path = os.environ["TAN_PROBE_OUT"]
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


def install():
    from take_a_number import store

    original = store.Store.immediate

    @contextlib.contextmanager
    def immediate(self, *args, **kwargs):
        manager = original(self, *args, **kwargs)
        started = time.perf_counter()
        try:
            db = manager.__enter__()
        except BaseException:
            with _lock:
                _records["failed_waits"].append(time.perf_counter() - started)
            raise
        entered = time.perf_counter()
        try:
            yield db
        except BaseException:
            if not manager.__exit__(*sys.exc_info()):
                raise
        else:
            manager.__exit__(None, None, None)
            done = time.perf_counter()
            with _lock:
                _records["waits"].append(entered - started)
                _records["holds"].append(done - entered)

    store.Store.immediate = immediate
    signal.signal(signal.SIGUSR1, _reset)
    signal.signal(signal.SIGUSR2, _write)


def main():
    install()
    from take_a_number import cli

    sys.exit(cli.main(sys.argv[1:]))


if __name__ == "__main__":
    main()
