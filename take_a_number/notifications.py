"""Push: hold a long-poll request until its queue changes, in any process.

Each held request waits on its queue's condition. One watcher thread per
process notices every commit to the database, from this process or another
(gunicorn and mod_wsgi workers, the command line), through SQLite's
``PRAGMA data_version``, reads the versions of the queues someone waits on,
and wakes the waiters of the queues that changed. Waiters never poll the
database themselves. Commits made by this process poke the watcher so they
are seen at once; other processes' commits within ``watch_interval``.
"""

import logging
import sqlite3
import threading
import time

log = logging.getLogger(__name__)

CHANGED, TIMEOUT, FULL, GONE = "changed", "timeout", "full", "gone"

# How often a held request checks whether its client went away.
DISCONNECT_CHECK_SECONDS = 2.0


class _Watched:
    """The waiters of one queue and the latest version the hub knows of it."""

    def __init__(self, lock):
        self.condition = threading.Condition(lock)
        self.version = None
        self.waiters = 0


class Hub:
    """Holds at most ``max_held`` requests of this process until their queue changes."""

    def __init__(self, store, max_held, watch_interval):
        self.store = store
        self.max_held = max_held
        self.watch_interval = watch_interval
        self.held = 0
        self._lock = threading.Lock()
        self._queues = {}
        self._poke = threading.Event()
        self._stopped = threading.Event()
        self._watcher = None
        store.after_commit.append(self._poke.set)

    def wait(self, queue_id, since, hold_seconds, client_disconnected=None):
        """Wait until the queue's version is past ``since``.

        Returns CHANGED, TIMEOUT after ``hold_seconds``, FULL at once when this
        process already holds ``max_held`` requests, or GONE when the client
        disconnected.
        """
        with self._lock:
            if self.held >= self.max_held:
                return FULL
            self.held += 1
            watched = self._queues.get(queue_id)
            if watched is None:
                watched = self._queues[queue_id] = _Watched(self._lock)
            watched.waiters += 1
            self._ensure_watcher()
        try:
            # Read after registering, so no commit can slip between the two unseen.
            self._learn(watched, self.store.queue_version(queue_id))
            deadline = time.monotonic() + hold_seconds
            with self._lock:
                while watched.version is not None and watched.version <= since:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return TIMEOUT
                    if client_disconnected is not None and client_disconnected():
                        return GONE
                    watched.condition.wait(min(remaining, DISCONNECT_CHECK_SECONDS))
                return CHANGED
        finally:
            with self._lock:
                self.held -= 1
                watched.waiters -= 1
                if watched.waiters == 0 and self._queues.get(queue_id) is watched:
                    del self._queues[queue_id]

    def _learn(self, watched, version):
        """Record a version read from the database; wake waiters if it moved on."""
        with self._lock:
            if version is None or watched.version is None or version > watched.version:
                watched.version = version
                watched.condition.notify_all()

    def _ensure_watcher(self):
        # Started on first use, so that a server which forks workers after
        # loading the app gives each worker its own watcher.
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(
                target=self._watch, name="take-a-number-watcher", daemon=True
            )
            self._watcher.start()

    def _watch(self):
        last_data_version = None
        while not self._stopped.is_set():
            self._poke.wait(self.watch_interval)
            self._poke.clear()
            with self._lock:
                queue_ids = list(self._queues)
            if not queue_ids:
                continue
            try:
                # This thread's own connection: its data_version moves with
                # every commit made through any other connection.
                data_version = self.store.data_version()
                if data_version == last_data_version:
                    continue
                last_data_version = data_version
                versions = self.store.queue_versions(queue_ids)
            except sqlite3.Error:
                log.exception("push watcher could not read %s; retrying", self.store.path)
                self._stopped.wait(1)
                continue
            with self._lock:
                watched_now = list(self._queues.items())
            for queue_id, watched in watched_now:
                self._learn(watched, versions.get(queue_id))
        self.store.close()

    def close(self):
        self._stopped.set()
        self._poke.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
