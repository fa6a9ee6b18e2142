"""Instances of the app in one process that share a database under different mount points.

Two instances on one database file are one site: the same queues, the same
generated secret, so a servicer's token or cookie from one mount point acts at
the other. Mounted at /a and /b, that is most likely a settings mistake (each
was meant to have its own ``database``), so it is logged, once per file.
"""

import logging
import threading
import weakref

log = logging.getLogger(__name__)


class Mounts:
    """The mount point (``SCRIPT_NAME``) each live instance was first asked under."""

    def __init__(self):
        self.lock = threading.Lock()
        self.seen = weakref.WeakKeyDictionary()  # app -> (database, mount point)
        self.warned = set()

    def note(self, app, database, mount):
        """Remember ``app``'s mount point; warn if another instance on ``database`` has another."""
        with self.lock:
            self.seen[app] = (database, mount)
            points = sorted({point for file, point in self.seen.values() if file == database})
            if len(points) < 2 or database in self.warned:
                return
            self.warned.add(database)
        log.warning(
            "Take A Number instances mounted at %s share the database %s: they are one site "
            "(the same queues, sign-ins and tokens); give each its own database setting",
            " and ".join(repr(point or "/") for point in points),
            database,
        )

    def forget(self, app):
        with self.lock:
            self.seen.pop(app, None)


# The one registry of this process: what it checks is the process's instances.
MOUNTS = Mounts()
