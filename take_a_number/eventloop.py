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
"""

import collections
import contextlib
import select
import time

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server

AVAILABLE = hasattr(select, "epoll")
# Every connection is looked at this often whatever happened (see above).
FULL_PASS_SECONDS = 1.0
READ = select.POLLIN | select.POLLPRI
WRITE = select.POLLOUT


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


class ServiceMarking(HTTPChannel):
    """Waitress's channel, telling the loop which connection a request thread changed."""

    def service(self):
        try:
            super().service()
        finally:
            fd = self._fileno
            if fd is not None:
                self._map.touched.append(fd)
                self.server.pull_trigger()


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
    (waitress's own loop where there is no epoll)."""
    if not AVAILABLE:
        return create_server(app, **settings)
    connections = WatchedMap()
    server = create_server(app, map=connections, **settings)
    loop = EpollLoop()
    server.asyncore = loop
    for dispatcher in list(connections.values()):
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = ServiceMarking
            dispatcher.asyncore = loop
    return server
