"""Waitress, with an event loop that looks only at the connections something happened to.

Waitress's own loop (wasyncore.poll2) builds a new poll set of every open
connection each time it wakes, asking each whether it is readable and
writable; it wakes after every answer and every request. With thousands of
live pages held open, a pass took 1.8-3.9 ms at 5,000 connections, most of
the server's CPU (docs/benchmarks.md, "Issue 15").

This loop keeps one epoll set and changes it only for the connections whose
state may have changed since the last pass:

- a connection the kernel reported (read, written, closed) in the last pass;
- a connection a request thread finished a request on: ``service()`` runs in
  the thread, changes what the connection waits for, and ends by waking the
  loop (``ServiceMarking`` notes the connection first, then wakes the loop);
  not a stream that sent its event at once and parked again, which waits for
  just what it waited for before;
- a connection just opened or closed (``WatchedMap`` notes changes to
  waitress's map of connections);
- the listening sockets and the trigger, every pass: the server's
  ``readable()`` also enforces ``connection_limit`` and runs its maintenance.

Whatever else could change a connection's state (waitress's maintenance closing
an idle connection, a stopping server) is seen by a full pass over every
connection once a second, as a safety net: so a state change it missed costs
at most a second, never a hang. Requests are handled by waitress's own code
(``wasyncore.readwrite``); only the choice of whom to poll is this module's.

epoll is Linux's; elsewhere ``serve`` runs waitress's own loop.

Parked requests
---------------

A live update held until its queue changes needs no thread while it waits.
Under this module's server the app may park it: the environ has ``PARK_KEY``,
and an app that parks a request returns an app_iter with a ``park(resume)``
method instead of a body. The request's thread goes back to the pool at once;
the request stays first on its connection (nothing after it is answered
before it), and the app calls ``resume(urgent)`` once, from any thread, when
the answer can be built. Then the connection is served again: a thread calls
the app_iter's ``respond(environ, start_response)``, a WSGI answer. Urgent
resumes go to the front of the threads' queue. If the connection closes while
parked, the app_iter's ``cancel()`` is called: ``resume`` need not come then.
When it comes for a connection that can no longer be answered, the app_iter's
``close()`` is called instead of ``respond()``.
(``push.ParkedAnswer`` is the app's side.)

Streamed answers
----------------

An answer may also park between its parts: a live page's stream of updates
(``push.LiveStream``), one answer that goes on for as long as the page stays
open. Its app_iter has ``streams = True`` as well as ``park``, ``cancel`` and
``end`` (below); ``ParkingApp`` hands it to waitress's task as it is and marks it
``parkable``, and the task writes the status, the headers and the first parts
as usual. When the app_iter has nothing more to say for now, its ``__next__``
raises ``Parked(itself)``: the thread goes back to the pool, and the task
(what it wrote, how it frames the parts) is kept on the connection. The app
calls ``resume(urgent)`` once the next part can be made; a thread then goes on
iterating the same app_iter with the same task. When the app_iter ends, the
answer ends (a chunked answer's last chunk) and the connection is closed, as
waitress closes it after any answer without a length. ``cancel()`` keeps its
meaning above. Instead of ``close()`` (which waitress's task would call as the
answer parks) it has ``end()``, called once the stream has ended, or when it
was resumed for a connection that can no longer be answered. A client that
reads nothing while the parts pile up (over ``STREAM_BACKLOG`` bytes not yet
sent) has its stream ended.

Few threads serve many requests here, and requests wait for a thread by design
(a burst of pages, a change resuming hundreds of parked answers). Waitress
warns "Task queue depth is N" for each request queued beyond the idle threads:
this server says it at most once a minute (``QueueDepthLog``), with the
deepest queue and how many requests waited since, not a line per request
(over 1,000 lines for one burst of 2,000 pages: enough to fill a pipe that a
supervisor reads late, and stop the process on its next write).
"""

import collections
import contextlib
import functools
import select
import time

from waitress import wasyncore
from waitress.channel import ClientDisconnected, HTTPChannel
from waitress.server import BaseWSGIServer, create_server
from waitress.task import WSGITask
from waitress.utilities import queue_logger

AVAILABLE = hasattr(select, "epoll")
# Every connection is looked at this often whatever happened (see above).
FULL_PASS_SECONDS = 1.0
READ = select.POLLIN | select.POLLPRI
WRITE = select.POLLOUT
# Waitress's "Task queue depth" warning, under this module's server: at most this often.
QUEUE_LOG_SECONDS = 60.0
# In the environ of every request of this module's server: it may be parked.
PARK_KEY = "take_a_number.park"
# In the environ of a parked request served again: its app_iter, to respond.
_RESUMED_KEY = "take_a_number.resumed"
# A streamed answer whose client has not read this many of its bytes yet is ended.
STREAM_BACKLOG = 64 * 1024


class Parked(BaseException):
    """The app parked the request (``ParkingApp``), or a streamed answer parked between two
    parts: raised through waitress's task up to the channel, past waitress's own ``except
    Exception``, so the request stays first in line."""

    def __init__(self, held):
        super().__init__()
        self.held = held
        self.task = None  # the task it was raised in (ParkingTask.execute)


class ParkingApp:
    """The WSGI app as this server calls it: an answer with ``park()`` is parked."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        held = environ.pop(_RESUMED_KEY, None)
        if held is not None:
            return held.respond(environ, start_response)
        result = self.app(environ, start_response)
        if callable(getattr(result, "park", None)):
            if getattr(result, "streams", False):
                result.parkable = True  # it is the app_iter the task iterates, not wrapped
                return result
            raise Parked(result)
        return result


class ParkingTask(WSGITask):
    """Waitress's task, saying in the environ that the request may be parked, or which
    parked answer it is to give now."""

    def get_environment(self):
        environ = super().get_environment()
        environ[PARK_KEY] = True
        held, self.channel.resumed = self.channel.resumed, None
        if held is not None:
            environ[_RESUMED_KEY] = held
        return environ

    def execute(self):
        try:
            super().execute()
        except Parked as parked:
            parked.task = self  # a streamed answer goes on with this task once resumed
            raise


def add_task(dispatcher, task, first=False):
    """Queue a resumed ``task`` for waitress's threads: at the end, or ``first``, before the
    others. Not through ``dispatcher.add_task``, which logs a warning ("Task queue depth")
    for each task queued beyond the idle threads: a burst of parked answers resumed by one
    change waits for a few threads by design (the hub's waker), and this is called with the
    hub's lock held, where a log line written to a full pipe (a supervisor's stderr read
    late) would stop every live update of the process."""
    with dispatcher.lock:
        if first:
            dispatcher.queue.appendleft(task)
        else:
            dispatcher.queue.append(task)
        dispatcher.queue_cv.notify()


class QueueDepthLog:
    """Waitress's ``queue_logger`` for this module's server: its warning that requests wait
    for a thread, at most once per ``seconds``, with the deepest queue and how many
    requests waited since it last said so. (Called with the dispatcher's lock held.)"""

    def __init__(self, logger=queue_logger, seconds=QUEUE_LOG_SECONDS, clock=time.monotonic):
        self.logger, self.seconds, self.clock = logger, seconds, clock
        self.said_at = None
        self.deepest = self.waited = 0

    def warning(self, message, depth):
        self.deepest = max(self.deepest, depth)
        self.waited += 1
        now = self.clock()
        if self.said_at is not None and now - self.said_at < self.seconds:
            return
        self.logger.warning(
            "Task queue depth is %d (the deepest of %d requests that waited for a thread "
            "since this was last said; said at most every %.0f s)",
            self.deepest,
            self.waited,
            self.seconds,
        )
        self.said_at, self.deepest, self.waited = now, 0, 0


class ParkingChannel(HTTPChannel):
    """Waitress's channel, whose first request may wait parked, without a thread."""

    task_class = ParkingTask
    parked = None  # the parked answer of the first request, while it waits
    resumed = None  # that answer, once it is to be given: for the next task
    streaming = None  # the task of a streamed answer begun, while it goes on

    def service(self):
        """Serve the first request (or go on with a stream). True when the connection waits
        for just what it waited for before, with nothing left to send: a stream that wrote
        its event and parked again (the loop need not look at it)."""
        if self.streaming is not None:
            return self._stream_on()
        resuming = self.resumed
        try:
            super().service()
        except Parked as parked:
            if getattr(parked.held, "streams", False):
                self.streaming = parked.task
                self._wake_loop_if_unsent()
            self._park(parked.held)
        finally:
            if resuming is not None and self.resumed is resuming:
                self.resumed = None  # served again, but closed meanwhile: never answered
                resuming.close()

    def _park(self, held):
        self.parked = held
        held.park(functools.partial(self._resume, held))  # may resume at once
        if not self.connected and self.parked is held:
            # Closed while the app parked it, before handle_close could know of it.
            self.parked = None
            held.cancel()

    def _stream_on(self):
        """Go on with a streamed answer, resumed: its next parts, until it parks again or
        ends; once it ends (or cannot go on), the connection closes."""
        task, held = self.streaming, self.resumed
        if held is None:
            return  # not resumed (a request pipelined behind it): it waits
        self.resumed = None
        try:
            if not self.connected or self.total_outbufs_len > STREAM_BACKLOG:
                raise ClientDisconnected
            for part in held:
                if part:
                    task.write(part)
            task.finish()
        except Parked:
            sent = not self._wake_loop_if_unsent()
            self._park(held)
            return sent
        except (ClientDisconnected, OSError):
            pass
        except Exception:
            self.logger.exception("Exception while streaming %s", task.request.path)
        self.streaming = None
        held.end()
        with self.requests_lock:
            self.close_when_flushed = True
            for request in self.requests:
                request.close()
            self.requests = []
        if self.connected:
            self.server.pull_trigger()
        self.last_activity = time.time()
        return False

    def _wake_loop_if_unsent(self):
        """Whether what a stream wrote is still to be sent (waitress sends it at once if it
        can): then the loop is woken to send the rest, as after any answer."""
        if not self.total_outbufs_len:
            return False
        self.server.pull_trigger()
        return True

    def _resume(self, held, urgent):
        if self.parked is held:
            self.parked = None
        self.resumed = held
        add_task(self.server.task_dispatcher, self, first=urgent)

    def handle_close(self):
        held, self.parked = self.parked, None
        super().handle_close()
        if held is not None:
            held.cancel()  # it leaves the hub now, unless it is on its way back already


class WatchedMap(dict):
    """Waitress's map of fd -> dispatcher, noting which fds came or went."""

    def __init__(self):
        super().__init__()
        # fds to look at in the next pass; a deque, as request threads append to it.
        self.touched = collections.deque()
        # The fds of what is not a connection (listening sockets, the trigger).
        self.always = set()

    def __setitem__(self, fd, obj):
        super().__setitem__(fd, obj)
        if isinstance(obj, HTTPChannel):
            self.always.discard(fd)
        else:
            self.always.add(fd)
        self.touched.append(fd)

    def __delitem__(self, fd):
        super().__delitem__(fd)
        self.always.discard(fd)
        self.touched.append(fd)

    def clear(self):
        self.touched.extend(self.keys())
        self.always.clear()
        super().clear()


class ServiceMarking(ParkingChannel):
    """The parking channel, telling the loop which connection a request thread changed."""

    def service(self):
        unchanged = False
        try:
            unchanged = super().service()
        finally:
            fd = self._fileno
            if fd is not None and not unchanged:
                self._map.touched.append(fd)
                self.server.pull_trigger()
        return unchanged


class EpollLoop:
    """``loop()`` as waitress's server calls it (``server.asyncore.loop``), with epoll."""

    def __init__(self):
        self.epoll = select.epoll()
        self.registered = {}  # fd -> (dispatcher, events) as the epoll set has it
        self.next_full_pass = 0.0
        self.full_passes = 0  # for the tests

    def __getattr__(self, name):
        return getattr(wasyncore, name)  # the rest of waitress's asyncore module

    def loop(self, timeout=30.0, use_poll=False, map=None, count=None):
        while map and (count is None or count > 0):
            self.once(timeout, map)
            if count is not None:
                count -= 1

    def once(self, timeout, map):
        now = time.monotonic()
        if now >= self.next_full_pass:
            self.next_full_pass = now + FULL_PASS_SECONDS
            self.full_passes += 1
            map.touched.clear()
            look_at = set(map) | set(self.registered)
        else:
            look_at = set()
            touched = map.touched
            while touched:
                look_at.add(touched.popleft())
            # The listening sockets and the trigger: every pass.
            look_at.update(map.always)
        for fd in look_at:
            self._update(fd, map.get(fd))
        wait = min(timeout, max(0.0, self.next_full_pass - time.monotonic()))
        try:
            events = self.epoll.poll(wait)
        except InterruptedError:
            events = []
        for fd, flags in events:
            obj = map.get(fd)
            map.touched.append(fd)  # its state may change now: looked at next pass
            if obj is None:
                continue
            wasyncore.readwrite(obj, flags)

    def _update(self, fd, obj):
        events = 0
        if obj is not None:
            if obj.readable():
                events |= READ
            if obj.writable() and not obj.accepting:
                events |= WRITE
        known = self.registered.get(fd)
        if known is not None and known[0] is obj:
            if known[1] == events:
                return
            if events:
                try:
                    self.epoll.modify(fd, events)
                except FileNotFoundError:  # the kernel dropped it: register again
                    self.epoll.register(fd, events)
                self.registered[fd] = (obj, events)
                return
        if known is not None:
            # Gone, waiting for nothing, or another socket now has its number.
            with contextlib.suppress(OSError):
                self.epoll.unregister(fd)
            del self.registered[fd]
        if events:  # as poll2: a dispatcher that waits for nothing is not polled
            try:
                self.epoll.register(fd, events)
            except FileExistsError:
                self.epoll.modify(fd, events)
            self.registered[fd] = (obj, events)


def make_server(app, **settings):
    """waitress.create_server(app, **settings), its servers run by an ``EpollLoop``
    (waitress's own loop where there is no epoll), their requests parked as the app asks."""
    app = ParkingApp(app)
    if not AVAILABLE:
        server = create_server(app, **settings)
        server.task_dispatcher.queue_logger = QueueDepthLog()
        for dispatcher in _servers(server):
            dispatcher.channel_class = ParkingChannel
        return server
    connections = WatchedMap()
    server = create_server(app, map=connections, **settings)
    server.task_dispatcher.queue_logger = QueueDepthLog()
    loop = EpollLoop()
    server.asyncore = loop
    for dispatcher in _servers(server):
        dispatcher.channel_class = ServiceMarking
        dispatcher.asyncore = loop
    return server


def _servers(server):
    """The listening servers of what create_server made (one, or a MultiSocketServer's)."""
    connections = server._map if isinstance(server, BaseWSGIServer) else server.map
    return [d for d in list(connections.values()) if isinstance(d, BaseWSGIServer)]
