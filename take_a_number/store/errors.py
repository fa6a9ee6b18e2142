"""What the store refuses, as exceptions the controllers catch."""


class QueueExists(Exception):
    """The queue id is already taken."""


class NameInUse(Exception):
    """A servicer of the other role is signed in under this name."""


class InvitationRefused(Exception):
    """An invitation code that signs nobody in; the message says why."""


class NotTaking(Exception):
    """The queue gives no numbers now; the message says why."""


class TooManyTakes(Exception):
    """This browser or address took as many numbers as its limit allows for now."""

    def __init__(self, retry_after):
        super().__init__(f"too many tickets taken; wait {retry_after} s")
        self.retry_after = retry_after


class Stale(Exception):
    """A button pressed for another customer than the servicer's current one.

    ``current`` is the number they serve now, or None. The press did nothing.
    """

    def __init__(self, current):
        super().__init__(f"the servicer's current customer is {current}")
        self.current = current


# A button's precondition when none is sent: the press acts whoever is called.
ANY_CURRENT = object()


class NotWaiting(Exception):
    """A number called from the waiting list that no longer waits (called, or gone)."""


class CannotUndo(Exception):
    """Undo refused; ``reason`` is "nothing", "too_late" or "changed" (store/steps.py)."""

    def __init__(self, reason):
        super().__init__(f"cannot undo: {reason}")
        self.reason = reason
