"""Every action a person can take, written once for the pages and the JSON API.

Each action validates its input (forms.py), applies the rules, calls the store,
and returns what came of it or raises ``Refused``, whose message is defined
here once. Who may act is checked here too: the adapter finds the servicer
(``actor_of_session`` from the cookie, ``actor_of_token`` from a bearer token)
and ``@servicer_only`` or ``@owner_only`` refuses one who may not act.
"""

import collections
import functools
import zoneinfo

from . import forms, rules, security, statistics, store


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
CANNOT_MOVE_BACK = (
    "Only a number still waiting, with someone behind it, can let the next person go "
    f"first, and at most {rules.MAX_MOVES_BACK} times."
)

# The code of a refusal of a servicer who is no longer signed in, by left_reason.
LEFT_CODES = {rules.SIGNED_OUT: "signed_out", rules.REVOKED: "revoked", rules.IDLE: "released"}
# The codes of "who are you?": the API answers them with WWW-Authenticate.
ACTOR_CODES = frozenset({"unauthorized", *LEFT_CODES.values()})

# The owner's changes to a queue: name -> (FormEncode schema, apply(store, queue_id, values, now)).
CHANGES = {
    "status": (
        forms.StatusForm,
        lambda store, queue_id, values, now: store.set_status(queue_id, values["status"], now),
    ),
    "options": (
        forms.OptionsForm,
        lambda store, queue_id, values, now: store.set_options(queue_id, now, **values),
    ),
    "hours": (
        forms.HoursForm,
        lambda store, queue_id, values, now: store.set_opening_hours(
            queue_id, now, forms.hours_json(values), values["timezone"]
        ),
    ),
    "clear": (
        forms.EmptyForm,
        lambda store, queue_id, values, now: store.clear_line(queue_id, now),
    ),
}

# The servicer console's buttons (routing.BUTTONS): name -> press(store, servicer, now,
# expected), ``expected`` the customer the console showed (Actions.press).
BUTTONS = {
    "call_next": lambda store, servicer, now, expected: store.call_next(servicer, now, expected),
    "done": lambda store, servicer, now, expected: store.finish_current(
        servicer, rules.SERVED, now, expected
    ),
    "no_show": lambda store, servicer, now, expected: store.finish_current(
        servicer, rules.NO_SHOW, now, expected
    ),
    "recall": lambda store, servicer, now, expected: store.recall(servicer, now, expected),
}

# A queue's history, for its statistics and its CSV file.
History = collections.namedtuple("History", "queue tickets tz starts")
# One page of a queue's tickets (Actions.ticket_page): the history of those on it,
# whether more follow, the number to ask for the next page after, and the query read.
TicketPage = collections.namedtuple("TicketPage", "history has_more next_after query")
# What the owner manages: the queue, its servicers signed in and its invitations.
Settings = collections.namedtuple("Settings", "owner queue servicers invitations")


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


class Actions:
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
            raise Refused(401, "unauthorized", SIGN_IN_FIRST)
        if actor["signed_out_at"] is not None:
            code = LEFT_CODES[actor["left_reason"] or rules.SIGNED_OUT]
            raise Refused(401, code, left_reason(actor) + " This sign-in no longer works.")
        self.store.seen(actor, self.now())
        return actor

    def owner(self, actor, queue_id):
        """``actor`` if the owner of this queue, signed in; else Refused (401 or 403)."""
        servicer = self.servicer(actor, queue_id)
        if not servicer["is_owner"]:
            raise Refused(403, "not_owner", NOT_OWNER)
        return servicer

    def queue(self, queue_id):
        """The queue, or Refused (404)."""
        queue = self.store.get_queue(queue_id)
        if queue is None:
            raise Refused(404, "not_found", NO_QUEUE)
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
            raise Refused(429, "rate_limited", TOO_MANY_ATTEMPTS, retry_after=wait)
        values = validate(forms.CreateQueueForm, *read_fields())

        def create():
            self.store.create_queue(
                values["queue_id"], values["title"], security.hash_password(values["password"]), now
            )
            return self.store.sign_in(values["queue_id"], values["name"], now, is_owner=True)

        try:
            owner, wait = self.limits.counted_if_done(
                "create_queue", address, now=now, action=create
            )
        except store.QueueExists:
            fields = {"queue_id": QUEUE_ID_TAKEN}
            raise Refused(409, "queue_exists", QUEUE_EXISTS, fields=fields) from None
        if wait:
            raise Refused(429, "too_many_queues", TOO_MANY_QUEUES, retry_after=wait)
        return owner

    def sign_in(self, queue_id, fields, address, refused=None):
        """Sign in with an invitation's ``code``, or as the owner with the password and a name.

        Behind limits.Limits.sign_in: only a wrong password or code counts as a failure.
        ``refused``: messages for fields the caller could not read (``validate``)."""
        queue = self.queue(queue_id)
        refusals = []

        def check():
            try:
                return self._sign_in(queue, fields, refused)
            except Refused as refusal:
                refusals.append(refusal)
                return refusal.status != 401

        servicer, wait = self.limits.sign_in(queue_id, address, check, self.now())
        if wait:
            raise Refused(429, "rate_limited", TOO_MANY_SIGN_INS, retry_after=wait)
        if refusals:
            raise refusals[0]
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
                raise Refused(409, "name_in_use", INVITED_NAME_IN_USE, field="code") from None
        if not security.verify_password(values["password"], queue["password_hash"]):
            raise Refused(401, "wrong_password", WRONG_PASSWORD, field="password")
        try:
            return self.store.sign_in(queue["id"], values["name"], now, is_owner=True)
        except store.NameInUse:
            raise Refused(409, "name_in_use", NAME_IN_USE, field="name") from None

    @servicer_only
    def sign_out(self, servicer, queue_id, customer=rules.PUT_BACK, number=None):
        """Sign out; the customer called goes back to the front, or is served (``customer``).

        ``number``, if given, must be the one called now (another tab may have
        pressed Next). Returns the ticket of the customer who was called, or None."""
        current = self.store.current_ticket(servicer["id"])
        if customer is None and current is None:
            customer = rules.PUT_BACK
        if customer is None:
            raise Refused(409, "say_what_became", SAY_WHAT_BECAME)
        if customer not in rules.LEAVING_CHOICES:
            raise Refused(400, "bad_request", CUSTOMER_CHOICE)
        if current is not None and number is not None and number != str(current["number"]):
            raise Refused(409, "say_what_became", SAY_WHAT_BECAME)
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
                raise Refused(429, "rate_limited", TOO_MANY_TOKEN_TAKES, retry_after=wait)
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
            raise Refused(404, "not_found", NO_QUEUE) from None
        except store.TooManyTakes as refusal:
            wait = refusal.retry_after
            raise Refused(429, "rate_limited", TOO_MANY_TAKES, retry_after=wait) from None
        except store.NotTaking as refusal:
            raise Refused(409, "not_taking", str(refusal)) from None

    def _ticket(self, token, queue_id=None):
        """The ticket with this token (one of this queue's if given), or Refused (404)."""
        ticket = self.store.ticket_by_token(token)
        if ticket is None or queue_id not in (None, ticket["queue_id"]):
            raise Refused(404, "not_found", NO_TICKET)
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
            raise Refused(409, "cannot_move_back", CANNOT_MOVE_BACK)
        return moved

    # -- the servicer's buttons ------------------------------------------------------------

    @servicer_only
    def press(self, servicer, queue_id, button, read_fields=None):
        """A console button (BUTTONS): call_next, done, no_show or recall.

        ``read_fields()`` (``(fields, refused)``, read once the servicer is known)
        may hold PressForm's ``expected_current``: the customer the console
        showed as theirs. Pressed for another (a second click, an old page, another
        tab), the press does nothing and is refused: 409 ``stale``. Without it,
        the press acts on whoever is called now.
        """
        fields, refused = read_fields() if read_fields else ({}, None)
        expected = store.ANY_CURRENT
        if "expected_current" in fields or refused:
            expected = validate(forms.PressForm, fields, refused)["expected_current"]
        try:
            return BUTTONS[button](self.store, servicer, self.now(), expected)
        except store.Stale as stale:
            raise Refused(409, "stale", stale_press(expected, stale.current)) from None

    # -- the owner -------------------------------------------------------------------------

    @owner_only
    def change(self, owner, queue_id, name, fields, refused=None):
        """One of the owner's changes (CHANGES) from its form's fields."""
        schema, apply = CHANGES[name]
        apply(self.store, queue_id, validate(schema, fields, refused), self.now())

    @owner_only
    def invite(self, owner, queue_id, fields, refused=None):
        """A personal invitation: ``(invitation, code)``; only the code's hash is kept."""
        values = validate(forms.InvitationForm, fields, refused)
        code = security.new_invitation_code()
        now = self.now()
        hours = values["valid_for_hours"]
        try:
            invitation = self.store.create_invitation(
                queue_id,
                values["name"],
                security.invitation_code_hash(code),
                now,
                expires_at=now + hours * 3600 if hours else None,
            )
        except store.NameInUse:
            raise Refused(409, "name_in_use", INVITATION_NAME_IN_USE, field="name") from None
        return invitation, code

    @owner_only
    def sign_in_staff(self, owner, queue_id, fields, refused=None):
        """The owner signs a staff member in under StaffForm's name; return the servicer."""
        values = validate(forms.StaffForm, fields, refused)
        try:
            return self.store.sign_in(queue_id, values["name"], self.now())
        except store.NameInUse:
            raise Refused(409, "name_in_use", STAFF_NAME_IN_USE, field="name") from None

    @owner_only
    def revoke(self, owner, queue_id, servicer_id):
        """Revoke a servicer: signed out, tokens and invitation dead, customer back in front."""
        if servicer_id == owner["id"]:
            raise Refused(409, "yourself", YOURSELF)
        if not self.store.revoke_servicer(queue_id, servicer_id, self.now()):
            raise Refused(404, "not_found", NO_SERVICER)

    @owner_only
    def revoke_invitation(self, owner, queue_id, invitation_id):
        """Revoke an invitation and sign out whoever it signed in."""
        if not self.store.revoke_invitation(queue_id, invitation_id, self.now()):
            raise Refused(404, "not_found", NO_INVITATION)

    @owner_only
    def settings(self, owner, queue_id):
        """The queue, its servicers signed in and its invitations, for the owner."""
        return Settings(
            owner,
            self.queue(queue_id),
            self.store.active_servicers(queue_id),
            self.store.invitations(queue_id),
        )

    @owner_only
    def history(self, owner, queue_id, fields=None):
        """Every ticket of the queue with its time zone and serving starts (statistics.report);
        with ``fields`` (DateRangeForm's ``from`` and ``to``), those taken on those days."""
        if fields is None:
            queue, tz, starts = self._history_of(queue_id)
            return History(queue, self.store.queue_tickets(queue_id), tz, starts)
        values = validate(forms.DateRangeForm, fields)
        return self._tickets_taken(queue_id, values)

    @owner_only
    def ticket_page(self, owner, queue_id, fields):
        """One page of the queue's tickets in number order (TicketListForm's fields)."""
        values = validate(forms.TicketListForm, fields)
        limit = values["limit"]
        history = self._tickets_taken(queue_id, values, after=values["after"], limit=limit + 1)
        tickets = history.tickets[:limit]
        return TicketPage(
            history._replace(tickets=tickets),
            has_more=len(history.tickets) > limit,
            next_after=tickets[-1]["number"] if tickets else values["after"],
            query=values,
        )

    def _history_of(self, queue_id):
        queue = self.queue(queue_id)
        tz = zoneinfo.ZoneInfo(queue["timezone"])
        starts = statistics.serving_started_by_day(self.store.serving_starts(queue_id), tz)
        return queue, tz, starts

    def _tickets_taken(self, queue_id, days, **page):
        """The History of the tickets taken on ``days`` (``from``, ``to``), one page if asked."""
        queue, tz, starts = self._history_of(queue_id)
        start, end = statistics.day_bounds(days["from"], days["to"], tz)
        return History(queue, self.store.tickets_taken(queue_id, start, end, **page), tz, starts)
