"""``take-a-number serve`` as several processes behind one port.

Why: one process has one GIL, so however many threads hold its live pages,
they answer on one core; and with thousands of pages held, every change wakes
hundreds of them at once in that process. Several processes use every core
and split the wake-ups between them (docs/benchmarks.md, "Issue 15").

How: the parent binds the listening sockets, builds the app once (settings
checked, schema migrated, secret written: errors are said once, before any
worker starts), then forks the workers and does nothing but watch them. Each
worker builds its own app (its own connections and push threads) and runs one
waitress server on the inherited sockets; the kernel hands each new connection
to whichever worker accepts it first, so a busy worker takes fewer, and one
at its connection_limit none. Workers share what they must through the
database, as gunicorn's do (limits and revocations are rows), and, to be as
quick as one process: each one's commits in shared memory (SharedCommits) and
a pipe that wakes the others' push watchers (Siblings).

A worker that dies is started again (after a second, if it died young). On
SIGTERM or SIGINT the parent tells every worker to stop; a stopping worker
answers its held live updates at once (their pages ask again, of whichever
process serves next), lets those answers go out, then stops its server. A
worker whose parent is gone (killed with -9) stops in the same way.
"""

import _thread
import contextlib
import functools
import gc
import itertools
import logging
import mmap
import os
import signal
import socket
import struct
import threading
import time

from waitress.adjustments import Adjustments

from . import application, config, eventloop, push

log = logging.getLogger(__name__)

# A worker that lived less than YOUNG_SECONDS is started again only after a pause;
# after this many such deaths in a row, serve gives up (something is wrong
# that a restart does not mend: say so, and let systemd or the operator act).
YOUNG_SECONDS = 1.0
RESTART_PAUSE_SECONDS = 1.0
YOUNG_DEATHS = 5
# How long the parent waits for stopping workers before it kills them.
STOP_SECONDS = 10
# How long a stopping worker waits for its held updates' answers to be built,
# then to be written, before it closes its connections.
DRAIN_SECONDS = 3.0
FLUSH_SECONDS = 0.3
# How often a worker checks that its parent still runs.
PARENT_CHECK_SECONDS = 1.0


def settle_collector():
    """Before serving: what is built so far (the app, its modules) lives as long as the
    process, so Python's cyclic garbage collector leaves it alone from now on (fewer
    objects to visit each time it runs, and their pages are not written to)."""
    gc.collect()
    gc.freeze()


def listening_sockets(server_conf):
    """Bound, listening sockets for [server:main]'s host/port or listen, as waitress binds them."""
    try:
        adj = Adjustments(**server_conf)
    except ValueError as error:
        raise config.SettingsError(f"[server:main]: {error}") from None
    if adj.unix_socket:
        raise config.SettingsError(
            "workers > 1 serve on host and port (or listen), not unix_socket: "
            "set workers = 1 to serve on a unix socket"
        )
    sockets = []
    for family, socktype, proto, address in adj.listen:
        sock = socket.socket(family, socktype, proto)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            sock.close()
            for other in sockets:
                other.close()
            where = f"{address[0]}:{address[1]}"
            raise config.SettingsError(f"cannot listen on {where}: {error}") from None
        sock.listen(adj.backlog)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def url_of(sock):
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if sock.family == socket.AF_INET6 else f"http://{host}:{port}"


def without_address(server_conf):
    """[server:main]'s waitress settings without where to listen: the workers get the sockets."""
    return {
        key: value
        for key, value in server_conf.items()
        if key not in ("host", "port", "listen", "unix_socket", "unix_socket_perms")
    }


def several_processes(app):
    """The app told, as PEP 3333 says, that other processes serve it too.

    The app then asks the database on every request whether another process
    changed something (Application.__call__), so nothing is answered from a
    copy older than another worker's commit.
    """

    def in_one_of_several_processes(environ, start_response):
        environ["wsgi.multiprocess"] = True
        return app(environ, start_response)

    return in_one_of_several_processes


class SharedCommits:
    """How many changes each worker committed, in memory all the workers share.

    Made before the first fork: a slot of 8 bytes per worker, which only that
    worker writes, after each of its commits and before it answers. Any worker
    then reads all the slots (no call to the database, no lock) before it
    answers from memory: a page asked for after another worker's answer, a
    redirect after a POST, never shows what was before that worker's commit.
    (A process outside serve, the command line say, is seen within
    FOREIGN_CHECK_SECONDS, store/engine.py.)
    """

    def __init__(self, count):
        self.memory = mmap.mmap(-1, 8 * count)  # anonymous, shared with the children
        self.size = 8 * count

    def join(self, slot, apps):
        """In worker ``slot``: its apps' commits count in its slot; they read every slot."""
        offset = 8 * slot
        # A restarted worker goes on from its slot's count: a value never comes back.
        (start,) = struct.unpack_from("Q", self.memory, offset)
        counter = itertools.count(start + 1)  # next() is atomic: each commit its own value

        def bump():
            struct.pack_into("Q", self.memory, offset, next(counter))

        for app in apps:
            app.store.after_commit.insert(0, bump)
            app.store.engine.siblings_commits = self.seen

    def seen(self):
        return self.memory[: self.size]


class SharedPush:
    """What each worker's push holds, in memory all the workers share, for
    ``GET /api/v1/health``: the whole server's, whichever worker answers.

    Made before the first fork: a record per worker and app (the apps in the order
    each worker builds them), which only that worker writes, whenever its hub's
    counts change (``Hub.publish``), and any worker reads. A record of a worker that
    has ended is not shown; its slot's next worker writes over it as it starts.
    (A reader may see one record half written: health is a glance, nothing counts
    on it.)
    """

    RECORD = struct.Struct("qqqqd")  # pid, held, capacity, refused, full since (0: none)
    MOST_APPS = 64  # of a composite ini, per worker: more are served, not shown

    def __init__(self, count):
        self.count = count
        self.memory = mmap.mmap(-1, self.RECORD.size * self.MOST_APPS * count)

    def _offset(self, slot, index):
        return self.RECORD.size * (slot * self.MOST_APPS + index)

    def join(self, slot, apps):
        """In worker ``slot``: its apps' hubs write their records; their health reads all."""
        pid = os.getpid()
        for index, app in enumerate(apps[: self.MOST_APPS]):
            offset = self._offset(slot, index)

            def publish(hub, offset=offset):
                full_since = hub.full_since or 0.0
                self.RECORD.pack_into(
                    self.memory, offset, pid, hub.held, hub.max_held, hub.refused, full_since
                )

            app.updates.hub.publish_to(publish)
            app.updates.processes = functools.partial(self.processes, index)

    def processes(self, index):
        """Every live worker's push, for its app ``index``."""
        found = []
        for slot in range(self.count):
            pid, held, capacity, refused, since = self.RECORD.unpack_from(
                self.memory, self._offset(slot, index)
            )
            if pid and _alive(pid):
                found.append(push.push_health(held, capacity, refused, since or None, pid))
        return found


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Siblings:
    """Tells the other workers the moment this one commits a change.

    A pipe per worker's slot, made before the first fork: a commit writes a
    byte to every other worker's, and each worker's reader thread pokes its
    push watcher, which then finds the change in the database as it would have
    at its next look (push_watch_interval later). Only quicker, never needed:
    a byte lost to a full pipe leaves its reader with bytes still to read.
    Told so, the watchers look by themselves less often (``Hub.told_of_siblings``),
    for the commits of processes outside the server only.
    """

    def __init__(self, count):
        self.pipes = [os.pipe() for _ in range(count)]
        for _, write in self.pipes:
            os.set_blocking(write, False)

    def join(self, slot, apps):
        """In worker ``slot``: its apps' commits tell the others; theirs poke its apps."""
        others = [write for i, (_, write) in enumerate(self.pipes) if i != slot]

        def tell():
            for write in others:
                with contextlib.suppress(BlockingIOError):
                    os.write(write, b".")

        for app in apps:
            app.store.after_commit.append(tell)
        hubs = [app.updates.hub for app in apps]
        for hub in hubs:
            hub.told_of_siblings()
        threading.Thread(
            target=self._hear,
            args=(self.pipes[slot][0], hubs),
            name="take-a-number-siblings",
            daemon=True,
        ).start()

    @staticmethod
    def _hear(read, hubs):
        while os.read(read, 4096):
            for hub in hubs:
                hub.poke()


class Supervisor:
    """The parent: starts ``count`` workers, each ``work()`` in a fork, until told to stop."""

    def __init__(self, count, work):
        self.count = count
        self.work = work
        self.children = {}  # pid -> (slot, started at)
        self.stopping = False
        self.status = 0

    def run(self):
        """Returns the exit status: 0 once stopped by a signal, 1 if workers kept dying."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._stop)
        signal.signal(signal.SIGALRM, self._kill)
        for slot in range(self.count):
            self._start(slot)
        young_deaths = 0
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in self.children:
                continue
            slot, started = self.children.pop(pid)
            if self.stopping:
                continue
            young = time.monotonic() - started < YOUNG_SECONDS
            young_deaths = young_deaths + 1 if young else 0
            if young_deaths >= YOUNG_DEATHS:
                log.error(
                    "worker %s (pid %s) ended (%s), the %sth worker in a row to end within "
                    "%s s of starting: serve stops",
                    *(slot, pid, _ending(status), young_deaths, YOUNG_SECONDS),
                )
                self.status = 1
                self._stop(signal.SIGTERM, None)
                continue
            log.warning(
                "worker %s (pid %s) ended (%s); starting another", slot, pid, _ending(status)
            )
            if young:
                time.sleep(RESTART_PAUSE_SECONDS)
            if not self.stopping:
                self._start(slot)
        signal.alarm(0)
        return self.status

    def _start(self, slot):
        parent = os.getpid()
        gc.freeze()  # the parent's objects: never scanned, so their pages stay shared
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
                    signal.signal(signum, signal.SIG_DFL)
                status = self.work(parent, slot)
            except BaseException:
                log.exception("worker %s failed", slot)
            finally:
                logging.shutdown()
                os._exit(status)
        self.children[pid] = (slot, time.monotonic())

    def _stop(self, signum, frame):
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping %s workers (%s)", len(self.children), signal.Signals(signum).name)
        for pid in self.children:
            _signal(pid, signal.SIGTERM)
        signal.alarm(STOP_SECONDS)

    def _kill(self, signum, frame):
        for pid in self.children:
            log.warning("worker pid %s did not stop within %s s: killed", pid, STOP_SECONDS)
            _signal(pid, signal.SIGKILL)


def _signal(pid, signum):
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _ending(status):
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class Worker:
    """One worker: the app, built in this process, served by waitress on the parent's sockets."""

    def __init__(self, load_app, sockets, server_conf, count):
        self.load_app = load_app
        self.commits = SharedCommits(count)
        self.siblings = Siblings(count)
        self.push = SharedPush(count)
        self.sockets = sockets
        self.server_conf = server_conf
        self.drained = False
        self.stop_started = threading.Lock()

    def __call__(self, parent, slot):
        built_before = set(application.LIVE)  # the parent's, if not yet collected
        app = self.load_app()
        # In the order they were built: the same in every worker.
        apps = sorted(
            (one for one in application.LIVE if one not in built_before), key=lambda a: a.built
        )
        self.commits.join(slot, apps)
        self.siblings.join(slot, apps)
        self.push.join(slot, apps)
        app = several_processes(app)
        server = eventloop.make_server(app, sockets=self.sockets, **self.server_conf)
        settle_collector()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        threading.Thread(
            target=self._watch_parent, args=(parent,), name="take-a-number-parent", daemon=True
        ).start()
        server.run()  # until KeyboardInterrupt, raised by _on_signal once drained
        return 0

    def _on_signal(self, signum, frame):
        if self.drained:
            raise KeyboardInterrupt  # waitress's run() stops its loop and its threads
        self._begin_stop()

    def _begin_stop(self):
        if self.stop_started.acquire(blocking=False):
            threading.Thread(target=self._drain, name="take-a-number-stop", daemon=True).start()

    def _drain(self):
        # The listening sockets stay open: shutting one down would stop it for
        # every worker. A connection accepted while this one drains is closed
        # with it, and its page asks again.
        still_held = application.stop_holding()  # every app's hub of this process
        deadline = time.monotonic() + DRAIN_SECONDS
        while still_held() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(FLUSH_SECONDS)
        self.drained = True
        _thread.interrupt_main(signal.SIGTERM)

    def _watch_parent(self, parent):
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        log.warning("the serve process %s is gone: worker %s stops", parent, os.getpid())
        self._begin_stop()
