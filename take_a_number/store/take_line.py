"""The take line: takes that arrive together are written together (group commit).

While one thread writes, the takes of the others wait in line, and the next
of them writes all those that came meanwhile as one batch. Each caller waits
for its own take to be answered, and gets its ticket only once it is written.
The line knows nothing of SQL: the store gives it the two ways to write.
"""

import logging
import threading

log = logging.getLogger(__name__)


class Take:
    """A take of a number, waiting in line for its ``ticket`` (or ``error``)."""

    __slots__ = (
        "queue_id",
        "token",
        "now",
        "browser",
        "address",
        "ready",
        "lead",
        "ticket",
        "error",
    )

    def __init__(self, queue_id, token, now, browser, address):
        self.queue_id, self.token, self.now = queue_id, token, now
        self.browser, self.address = browser, address
        self.ready = threading.Lock()
        self.ready.acquire()  # released when answered, or when it is to write next
        self.lead = False
        self.ticket = self.error = None


class TakeLine:
    """Writes the takes of many threads in batches, one batch at a time.

    ``write_together(batch)`` is called first with every batch and sets the
    ``ticket`` of the takes it could write together (it may leave any, or
    raise: then it is logged); ``write_alone(take)`` then writes each take
    left and returns its ticket, or raises what the take's caller is to get.
    An error for which ``fails_all(error)`` is true (the database cannot be
    reached) is given at once to every take of the batch not yet written,
    instead of each trying in turn and waiting as long to fail.
    """

    def __init__(self, write_together, write_alone, fails_all=lambda error: False):
        self.write_together = write_together
        self.write_alone = write_alone
        self.fails_all = fails_all
        self._takes = []  # waiting for the next batch
        self._lock = threading.Lock()
        self._writing = False

    def waiting(self):
        """How many takes wait for the batch being written to end."""
        with self._lock:
            return len(self._takes)

    def take(self, take):
        """Put ``take`` in line and wait for it; return its ticket or raise its error."""
        with self._lock:
            self._takes.append(take)
            lead = not self._writing
            if lead:
                self._writing = take.lead = True
        # Whether to wait is decided with the line locked: the writer may make this
        # take the next writer (``take.lead``) the moment the line is unlocked, and
        # then releases ``ready`` for it, which it must acquire all the same.
        if not lead:
            take.ready.acquire()  # answered by the writer, or asked to write next
        if take.lead:
            self._write_waiting()
        if take.error is not None:
            raise take.error
        return take.ticket

    def write(self, batch):
        """Write ``batch`` in this thread: together where it can, the rest alone."""
        try:
            self.write_together(batch)
        except Exception as error:
            if self._failed_all(batch, error):
                return
            log.exception("could not write %d takes together; one by one", len(batch))
        for take in batch:
            if take.ticket is None and take.error is None:
                try:
                    take.ticket = self.write_alone(take)
                except BaseException as error:  # raised in its own thread
                    take.error = error
                    if self._failed_all(batch, error):
                        return

    def _failed_all(self, batch, error):
        """Whether ``error`` fails every take; if so, given to those not yet written."""
        if not self.fails_all(error):
            return False
        for take in batch:
            if take.ticket is None and take.error is None:
                take.error = error
        return True

    def _write_waiting(self):
        with self._lock:
            batch, self._takes = self._takes, []
        try:
            self.write(batch)
        finally:
            for take in batch:
                take.ready.release()
            with self._lock:
                if self._takes:  # came while this batch was written: the next writes
                    following = self._takes[0]
                    following.lead = True
                    following.ready.release()
                else:
                    self._writing = False
