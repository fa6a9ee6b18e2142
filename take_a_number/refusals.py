"""What is refused, and why in words: ``Refused``, every message defined once.

An action (actions.py, owner_actions.py) raises ``Refused``; the adapters turn it
into a form showing the message (the pages) or the one JSON error (the API). Here
too: the check of a form's fields (``validate``), the decorators that say who may
act (``@servicer_only``, ``@owner_only``) and the adapters' one way to answer a
refusal (``answered_by``).
"""

import functools

from . import forms, rules


class Refused(Exception):
    """What a person asked for is refused: an HTTP status, a code, and what to tell them.

    ``fields`` holds a message per form field at fault (``field``: the message
    is about that one); ``retry_after`` the seconds to wait of a rate limit (a 429).
    """

    def __init__(self, status, code, message, fields=None, retry_after=None, field=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = {field: message} if field else fields
        self.retry_after = retry_after


NO_QUEUE = "There is no such queue."
NO_TICKET = "There is no such ticket."
INVALID = "Some fields are not valid."
SIGN_IN_FIRST = "Sign in to serve this queue (the API: Authorization: Bearer <token>)."
NOT_OWNER = "Only the owner, who signs in with the queue's password, can manage it."
NAME_IN_USE = "Someone else is signed in under this name; choose another."
INVITED_NAME_IN_USE = "Someone else is signed in under this invitation's name; ask the owner."
STAFF_NAME_IN_USE = "The owner is signed in under this name; choose another."
INVITATION_NAME_IN_USE = "There is already an invitation under this name; choose another."
WRONG_PASSWORD = (
    "That is not this queue's password. Servicers sign in with the invitation link "
    "the owner made for them."
)
QUEUE_EXISTS = "That queue id is taken."
QUEUE_ID_TAKEN = "That name is taken; choose another."
TOO_MANY_ATTEMPTS = "Too many attempts from this address."
TOO_MANY_QUEUES = "This address has created as many queues as it may for now."
TOO_MANY_SIGN_INS = "Too many wrong passwords from this address."
TOO_MANY_TAKES = "Too many numbers were taken from this browser or address."
TOO_MANY_TOKEN_TAKES = "Too many numbers were taken with this token."
CUSTOMER_CHOICE = "customer must be 'front' or 'served'."
SAY_WHAT_BECAME = "Say what became of the customer called: served, or back to the front."
YOURSELF = "Sign out instead of revoking yourself."
NO_SERVICER = "No such servicer is signed in."
NO_INVITATION = "No such invitation is live."
# -- the owner's password (issue 13) --
WRONG_OLD_PASSWORD = (
    "That is not the queue's password as it is now; nothing was changed. "
    "Forgot it? Whoever runs the server can set a new one: take-a-number reset-password QUEUE."
)
CANNOT_MOVE_BACK = (
    "Only a number still waiting, with someone behind it, can let the next person go "
    f"first, and at most {rules.MAX_MOVES_BACK} times."
)
NOT_WAITING = (
    "That number is no longer waiting: it was called at another desk, or its customer left."
)
NOTHING_TO_UNDO = "There is nothing to undo: only your last Next, Done or No show can be undone."
TOO_LATE_TO_UNDO = f"Too late to undo: a step can be undone for {rules.UNDO_SECONDS} seconds."
UNDO_OVERTAKEN = (
    "That can no longer be undone: its customer's ticket changed since "
    "(recalled, left, put back or cleared)."
)
# What the console says of a press refused (servicer.py: ``?refused=<code>``).
CONSOLE_REFUSALS = {
    "not_waiting": NOT_WAITING,
    "nothing_to_undo": NOTHING_TO_UNDO,
    "too_late_to_undo": TOO_LATE_TO_UNDO,
    "undo_overtaken": UNDO_OVERTAKEN,
}


def cannot_undo(reason):
    """The refusal of an undo for ``reason`` (store.CannotUndo's)."""
    if reason == "too_late":
        return Refused(409, "too_late_to_undo", TOO_LATE_TO_UNDO)
    if reason == "changed":
        return Refused(409, "undo_overtaken", UNDO_OVERTAKEN)
    return Refused(409, "nothing_to_undo", NOTHING_TO_UNDO)


# The code of a refusal of a servicer who is no longer signed in, by left_reason.
LEFT_CODES = {rules.SIGNED_OUT: "signed_out", rules.REVOKED: "revoked", rules.IDLE: "released"}
# The codes of "who are you?": the API answers them with WWW-Authenticate.
ACTOR_CODES = frozenset({"unauthorized", *LEFT_CODES.values()})


def validate(schema, fields, refused=None):
    """The schema's values from ``fields``, or Refused (400) with a message per field.

    ``refused`` holds messages for fields the caller could not even read (the
    API's check of JSON types): they are reported with the form's own.
    """
    values, errors = forms.validate(schema, fields)
    errors = {**errors, **(refused or {})}
    if errors:
        raise Refused(400, "invalid", INVALID, fields=errors)
    return values


def sign_in_form(fields):
    """The form a sign-in comes in: an invitation's ``code``, or the owner's password and name."""
    return forms.InvitedSignInForm if "code" in fields else forms.SignInForm


def left_reason(servicer):
    """Why a servicer who is no longer signed in left, in words (rules.LEFT_REASONS)."""
    return rules.LEFT_REASONS[servicer["left_reason"] or rules.SIGNED_OUT]


def stale_press(expected, current):
    """What a servicer is told of a press made for another customer than theirs now."""

    def customer(number):
        return "nobody" if number is None else f"number {number}"

    return (
        f"Nothing was done: this was pressed for {customer(expected)}, but you are serving "
        f"{customer(current)} now (pressed twice, or on an old page or in another tab)."
    )


def answered_by(name):
    """A controller method whose Refused is answered by its controller's method ``name``,
    ``(req, refusal, *the method's arguments)``: the adapter's one way to show refusals."""

    def decorate(method):
        @functools.wraps(method)
        def answered(self, req, *args, **kwargs):
            try:
                return method(self, req, *args, **kwargs)
            except Refused as refusal:
                return getattr(self, name)(req, refusal, *args, **kwargs)

        return answered

    return decorate


def servicer_only(action):
    """The action's ``actor`` must be a signed-in servicer of ``queue_id``; it gets them."""

    @functools.wraps(action)
    def checked(self, actor, queue_id, *args, **kwargs):
        return action(self, self.servicer(actor, queue_id), queue_id, *args, **kwargs)

    return checked


def owner_only(action):
    """The action's ``actor`` must be the owner of ``queue_id``, signed in; it gets the owner."""

    @functools.wraps(action)
    def checked(self, actor, queue_id, *args, **kwargs):
        return action(self, self.owner(actor, queue_id), queue_id, *args, **kwargs)

    return checked
