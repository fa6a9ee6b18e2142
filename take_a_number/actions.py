"""Every action a person can take, written once for the pages and the JSON API.

Each action validates its input (forms.py), applies the rules, calls the store,
and returns what came of it or raises ``Refused`` with its message (both in
refusals.py). Who may act is checked here too: the adapter finds the servicer
(``actor_of_session`` from the cookie, ``actor_of_token`` from a bearer token)
and ``@servicer_only`` or ``@owner_only`` refuses one who may not act. The
owner's actions are in owner_actions.py, mixed into ``Actions``.
"""

from . import forms, refusals, rules, security, store
from .owner_actions import OwnerActions
from .refusals import (
    LEFT_CODES,
    Refused,
    left_reason,
    servicer_only,
    sign_in_form,
    stale_press,
    validate,
)

# The servicer console's buttons (routing.BUTTONS): name -> (form, press(store, servicer,
# now, expected, values)), ``expected`` the customer the console showed and ``values``
# the form's (Actions.press).
BUTTONS = {
    "call_next": (
        forms.PressForm,
        lambda store, servicer, now, expected, values: store.call_next(servicer, now, expected),
    ),
    "done": (
        forms.PressForm,
        lambda store, servicer, now, expected, values: store.finish_current(
            servicer, rules.SERVED, now, expected
        ),
    ),
    "no_show": (
        forms.PressForm,
        lambda store, servicer, now, expected, values: store.finish_current(
            servicer, rules.NO_SHOW, now, expected
        ),
    ),
    "recall": (
        forms.PressForm,
        lambda store, servicer, now, expected, values: store.recall(servicer, now, expected),
    ),
    "call_number": (
        forms.CallNumberForm,
        lambda store, servicer, now, expected, values: store.call_next(
            servicer, now, expected, values["number"]
        ),
    ),
    "undo": (
        forms.PressForm,
        lambda store, servicer, now, expected, values: store.undo(servicer, now, expected),
    ),
}


class Actions(OwnerActions):
    """The actions over one store, its rate limits and its clock (``now()``)."""

    def __init__(self, store, limits, now):
        self.store = store
        self.limits = limits
        self.now = now

    # -- who acts ------------------------------------------------------------------

    def actor_of_session(self, session, queue_id):
        """The servicer a browser's session names on this queue (signed in or not), or None."""
        servicer_id = session.servicer_id(queue_id)
        return servicer_id and self.store.servicer_of_queue(queue_id, servicer_id)

    def actor_of_token(self, token):
        """The servicer a bearer token names (signed in or not), or None."""
        return token and self.store.servicer_of_api_token(security.token_hash(token))

    def new_api_token(self, servicer):
        """A bearer token that acts as this servicer while they are signed in (the API)."""
        token = security.new_token()
        self.store.add_api_token(servicer["id"], security.token_hash(token), self.now())
        return token

    def servicer(self, actor, queue_id):
        """``actor`` if still signed in to this queue (and now seen), else Refused (401;
        404 for a queue that does not exist, whoever asks).

        Checked in the database each time: a revocation holds at once, everywhere."""
        if not actor or actor["queue_id"] != queue_id:
            self.queue(queue_id)
            raise Refused(401, "unauthorized", refusals.SIGN_IN_FIRST)
        if actor["signed_out_at"] is not None:
            code = LEFT_CODES[actor["left_reason"] or rules.SIGNED_OUT]
            raise Refused(401, code, left_reason(actor) + " This sign-in no longer works.")
        self.store.seen(actor, self.now())
        return actor

    def owner(self, actor, queue_id):
        """``actor`` if the owner of this queue, signed in; else Refused (401 or 403)."""
        servicer = self.servicer(actor, queue_id)
        if not servicer["is_owner"]:
            raise Refused(403, "not_owner", refusals.NOT_OWNER)
        return servicer

    def queue(self, queue_id):
        """The queue, or Refused (404)."""
        queue = self.store.get_queue(queue_id)
        if queue is None:
            raise Refused(404, "not_found", refusals.NO_QUEUE)
        return queue

    # -- creating a queue and signing in -------------------------------------------------

    def create_queue(self, address, read_fields):
        """Create a queue from CreateQueueForm's fields; return its owner, signed in.

        Every attempt counts toward ``create_attempts``, even one whose body
        ``read_fields()`` (``(fields, refused)``) cannot read; only a queue
        created counts toward ``create_queue``."""
        now = self.now()
        _hit, wait = self.limits.hit("create_attempts", address, now=now)
        if wait:
            raise Refused(429, "rate_limited", refusals.TOO_MANY_ATTEMPTS, retry_after=wait)
        values = validate(forms.CreateQueueForm, *read_fields())

        def create():
            self.store.create_queue(
                values["queue_id"],
                values["title"],
                security.hash_password(values["password"]),
                now,
                timezone=values["timezone"],
            )
            return self.store.sign_in(values["queue_id"], values["name"], now, is_owner=True)

        try:
            owner, wait = self.limits.counted_if_done(
                "create_queue", address, now=now, action=create
            )
        except store.QueueExists:
            fields = {"queue_id": refusals.QUEUE_ID_TAKEN}
            raise Refused(409, "queue_exists", refusals.QUEUE_EXISTS, fields=fields) from None
        if wait:
            raise Refused(429, "too_many_queues", refusals.TOO_MANY_QUEUES, retry_after=wait)
        return owner

    def sign_in(self, queue_id, fields, address, refused=None):
        """Sign in with an invitation's ``code``, or as the owner with the password and a name.

        Behind limits.Limits.sign_in: only a wrong password or code counts as a failure.
        ``refused``: messages for fields the caller could not read (``validate``)."""
        queue = self.queue(queue_id)
        refused_here = []

        def check():
            try:
                return self._sign_in(queue, fields, refused)
            except Refused as refusal:
                refused_here.append(refusal)
                return refusal.status != 401

        servicer, wait = self.limits.sign_in(queue_id, address, check, self.now())
        if wait:
            raise Refused(429, "rate_limited", refusals.TOO_MANY_SIGN_INS, retry_after=wait)
        if refused_here:
            raise refused_here[0]
        return servicer

    def _sign_in(self, queue, fields, refused=None):
        now = self.now()
        values = validate(sign_in_form(fields), fields, refused)
        if "code" in values:
            code_hash = security.invitation_code_hash(values["code"])
            try:
                return self.store.sign_in_invited(queue["id"], code_hash, now)
            except store.InvitationRefused as refusal:
                raise Refused(401, "invitation_refused", str(refusal), field="code") from None
            except store.NameInUse:
                message = refusals.INVITED_NAME_IN_USE
                raise Refused(409, "name_in_use", message, field="code") from None
        if not security.verify_password(values["password"], queue["password_hash"]):
            raise Refused(401, "wrong_password", refusals.WRONG_PASSWORD, field="password")
        try:
            return self.store.sign_in(queue["id"], values["name"], now, is_owner=True)
        except store.NameInUse:
            raise Refused(409, "name_in_use", refusals.NAME_IN_USE, field="name") from None

    @servicer_only
    def sign_out(self, servicer, queue_id, customer=rules.PUT_BACK, number=None):
        """Sign out; the customer called goes back to the front, or is served (``customer``).

        ``number``, if given, must be the one called now (another tab may have
        pressed Next). Returns the ticket of the customer who was called, or None."""
        current = self.store.current_ticket(servicer["id"])
        if customer is None and current is None:
            customer = rules.PUT_BACK
        if customer is None:
            raise Refused(409, "say_what_became", refusals.SAY_WHAT_BECAME)
        if customer not in rules.LEAVING_CHOICES:
            raise Refused(400, "bad_request", refusals.CUSTOMER_CHOICE)
        if current is not None and number is not None and number != str(current["number"]):
            raise Refused(409, "say_what_became", refusals.SAY_WHAT_BECAME)
        self.store.sign_out(servicer["id"], self.now(), customer)
        return current

    # -- customers -----------------------------------------------------------------------

    def take(self, queue_id, address, browser=None, token=None):
        """A number in this queue, behind the take limits; a browser's open one if it has one.

        With the bearer ``token`` of a servicer signed in to this queue (a kiosk),
        the take counts against that token's limit (``token_take_ticket``) instead
        of the address's. Any other token counts as none."""
        if token and self._signed_in_with(token, queue_id):
            ticket, wait = self.limits.counted_if_done(
                "token_take_ticket",
                security.token_hash(token),
                now=self.now(),
                action=lambda: self._take(queue_id, browser, address=None),
            )
            if wait:
                raise Refused(429, "rate_limited", refusals.TOO_MANY_TOKEN_TAKES, retry_after=wait)
            return ticket
        return self._take(queue_id, browser, address=self.limits.subject(address))

    def _signed_in_with(self, token, queue_id):
        """Whether ``token`` is that of a servicer signed in to this queue."""
        try:
            return self.servicer(self.actor_of_token(token), queue_id)
        except Refused:
            return None

    def _take(self, queue_id, browser, address):
        """Store.take_ticket, its refusals said as Refused; ``address`` (a subject) is counted."""
        try:
            return self.store.take_ticket(
                queue_id, security.new_token(), self.now(), browser=browser, address=address
            )
        except LookupError:
            raise Refused(404, "not_found", refusals.NO_QUEUE) from None
        except store.TooManyTakes as refusal:
            wait = refusal.retry_after
            raise Refused(429, "rate_limited", refusals.TOO_MANY_TAKES, retry_after=wait) from None
        except store.NotTaking as refusal:
            raise Refused(409, "not_taking", str(refusal)) from None

    def _ticket(self, token, queue_id=None):
        """The ticket with this token (one of this queue's if given), or Refused (404)."""
        ticket = self.store.ticket_by_token(token)
        if ticket is None or queue_id not in (None, ticket["queue_id"]):
            raise Refused(404, "not_found", refusals.NO_TICKET)
        return ticket

    def leave(self, token, queue_id=None):
        """The customer leaves the line; Refused (409) for a ticket already closed."""
        ticket = self._ticket(token, queue_id)
        if not rules.can_leave(ticket["state"]):
            raise Refused(409, "closed", f"This ticket is already {ticket['state']}.")
        self.store.leave(token, self.now())

    def move_back(self, token, queue_id=None, refuse=False):
        """Not ready: let the next person go first. True if it moved; with ``refuse``,
        Refused (409) if it could not (rules.can_move_back)."""
        self._ticket(token, queue_id)
        moved = self.store.move_back(token, self.now())
        if refuse and not moved:
            raise Refused(409, "cannot_move_back", refusals.CANNOT_MOVE_BACK)
        return moved

    # -- the servicer's buttons ------------------------------------------------------------

    @servicer_only
    def press(self, servicer, queue_id, button, read_fields=None):
        """A console button (BUTTONS): call_next, done, no_show, recall, call_number
        (``number``, one waiting) or undo (the last Next, Done or No show).

        ``read_fields()`` (``(fields, refused)``, read once the servicer is known)
        may hold PressForm's ``expected_current``: the customer the console
        showed as theirs. Pressed for another (a second click, an old page, another
        tab), the press does nothing and is refused: 409 ``stale``. Without it,
        the press acts on whoever is called now.
        """
        fields, refused = read_fields() if read_fields else ({}, None)
        form, act = BUTTONS[button]
        values = validate(form, fields, refused)
        expected = store.ANY_CURRENT
        if "expected_current" in fields or refused:
            expected = values["expected_current"]
        try:
            return act(self.store, servicer, self.now(), expected, values)
        except store.Stale as stale:
            raise Refused(409, "stale", stale_press(expected, stale.current)) from None
        except store.NotWaiting:
            raise Refused(409, "not_waiting", refusals.NOT_WAITING, field="number") from None
        except store.CannotUndo as refusal:
            raise refusals.cannot_undo(refusal.reason) from None
