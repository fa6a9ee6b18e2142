"""The JSON API under /api/v1: everything the pages do, for scripts and integrators.

Customers need no credentials: a ticket's token is its capability, as on the
pages. Servicers send ``Authorization: Bearer <token>``, a token issued when
they sign in (or create a queue) through the API. Errors are always
``{"error": {"code": ..., "message": ..., "fields": {...}}}``.
"""

import json

from . import customer, forms, openapi, owner, rules, security, statistics, store, views
from .servicer import SignInRefused, attempt_sign_in, left_reason

# The error code of a token whose servicer is no longer signed in, by left_reason.
LEFT_CODES = {rules.SIGNED_OUT: "signed_out", rules.REVOKED: "revoked", rules.IDLE: "released"}


class ApiController:
    def __init__(self, app):
        self.app = app
        self.store = app.store

    # -- helpers ---------------------------------------------------------------

    def _body(self, req):
        """The request's fields: a JSON object (a dict), a form (a MultiDict), or None.

        None for a body that is not a JSON object, or holds text no database
        can store (an unpaired surrogate, which JSON can escape).
        """
        if req.content_type != "application/json":
            return req.POST
        try:
            body = json.loads(req.body or b"{}")
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError):  # UnicodeError is a ValueError
            return None
        return body if isinstance(body, dict) else None

    def _validate(self, req, schema):
        """The form's values, or a 400 naming each field that is not valid.

        A JSON body must first fit the OpenAPI document (``openapi.refusals``:
        ``false`` is no title); the form checks the fields that do.
        """
        body = self._body(req)
        if body is None:
            return None, self.app.json_error(req, 400, "bad_request", "Send a JSON object.")
        refused = {}
        if isinstance(body, dict):
            refused = openapi.refusals(schema, body)
            body = {name: _field(value) for name, value in body.items() if name not in refused}
        values, errors = forms.validate(schema, body)
        errors = {**{name: _message(error) for name, error in errors.items()}, **refused}
        if errors:
            return None, self.app.json_error(
                req, 400, "invalid", "Some fields are not valid.", fields=errors
            )
        return values, None

    def _servicer(self, req, queue_id):
        """The servicer the bearer token acts as on this queue, or an error response.

        Checked in the database on every request: a token of a servicer who
        signed out, was revoked or released stops working at once, everywhere.
        """
        token = security.bearer_token(req)
        found = token and self.store.servicer_of_api_token(security.token_hash(token))
        if not found or found["queue_id"] != queue_id:
            code = "unauthorized"
            message = "Send a servicer's token: Authorization: Bearer <token>."
        elif found["signed_out_at"] is not None:
            code = LEFT_CODES[found["left_reason"] or rules.SIGNED_OUT]
            message = left_reason(found) + " This token no longer works."
        else:
            self.store.seen(found, self.app.now())
            return found, None
        response = self.app.json_error(req, 401, code, message)
        response.www_authenticate = ("Bearer", {"realm": "take-a-number"})
        return None, response

    def _issue_token(self, servicer):
        token = security.new_token()
        self.store.add_api_token(servicer["id"], security.token_hash(token), self.app.now())
        return token

    def _ticket(self, req, snapshot, ticket):
        links = {
            "page": req.host_url
            + req.urls("ticket", queue_id=ticket["queue_id"], token=ticket["token"]),
            "api": req.urls("api_ticket", token=ticket["token"]),
        }
        return dict(views.ticket_view(snapshot, ticket), token=ticket["token"], links=links)

    def _snapshot(self, queue_id):
        return self.app.snapshots.get(queue_id, self.app.now())

    def _no_queue(self, req):
        return self.app.json_error(req, 404, "not_found", "There is no such queue.")

    # -- the description --------------------------------------------------------

    def openapi(self, req):
        return self.app.json(req, openapi.document(req.application_url + "/api/v1"))

    # -- queues -----------------------------------------------------------------

    def create_queue(self, req):
        refused = self.app.rate_limited(req, "create_attempts", req.remote_addr)
        if refused:
            return refused
        values, error = self._validate(req, forms.CreateQueueForm)
        if error:
            return error
        try:
            servicer, retry_after = owner.create_counted(self.app, req, values)
        except store.QueueExists:
            return self.app.json_error(
                req,
                409,
                "queue_exists",
                "That queue id is taken.",
                fields={"queue_id": "That name is taken; choose another."},
            )
        if retry_after:
            return self.app.too_many(req, retry_after, owner.TOO_MANY_QUEUES)
        body = {
            "queue": views.queue_view(self._snapshot(values["queue_id"])),
            "servicer_name": servicer["name"],
            "token": self._issue_token(servicer),
        }
        response = self.app.json(req, body, status=201)
        response.location = req.urls("api_queue", queue_id=values["queue_id"])
        return response

    def queue(self, req, queue_id):
        snapshot = self._snapshot(queue_id)
        if snapshot is None:
            return self._no_queue(req)
        return self.app.json(req, _queue_status(snapshot))

    def queue_updates(self, req, queue_id):
        return self.app.live(req, queue_id, _queue_status)

    # -- tickets ----------------------------------------------------------------

    def take(self, req, queue_id):
        try:
            ticket = self.store.take_ticket(
                queue_id,
                security.new_token(),
                self.app.now(),
                address=self.app.limits.subject(req.remote_addr),
            )
        except LookupError:
            return self._no_queue(req)
        except store.TooManyTakes as refusal:
            return self.app.too_many(req, refusal.retry_after, customer.TOO_MANY_TAKES)
        except store.NotTaking as refusal:
            return self.app.json_error(req, 409, "not_taking", str(refusal))
        ticket = self.app.snapshots.ticket(ticket["token"])
        response = self.app.json(req, self._ticket(req, self._snapshot(queue_id), ticket), 201)
        response.location = req.urls("api_ticket", token=ticket["token"])
        return response

    def ticket(self, req, token):
        ticket = self.app.snapshots.ticket(token)
        if ticket is None:
            return self.app.json_error(req, 404, "not_found", "There is no such ticket.")
        return self.app.json(req, self._ticket(req, self._snapshot(ticket["queue_id"]), ticket))

    def ticket_updates(self, req, token):
        ticket = self.app.snapshots.ticket(token)
        if ticket is None:
            return self.app.json_error(req, 404, "not_found", "There is no such ticket.")
        return self.app.live(
            req,
            ticket["queue_id"],
            lambda snapshot: self._ticket(req, snapshot, self.app.snapshots.ticket(token)),
            ticket_id=ticket["id"],
        )

    def leave(self, req, token):
        ticket = self.store.ticket_by_token(token)
        if ticket is None:
            return self.app.json_error(req, 404, "not_found", "There is no such ticket.")
        if not rules.can_leave(ticket["state"]):
            return self.app.json_error(
                req, 409, "closed", f"This ticket is already {ticket['state']}."
            )
        self.store.leave(token, self.app.now())
        return self.ticket(req, token)

    # -- servicers ----------------------------------------------------------------

    def sign_in(self, req, queue_id):
        queue = self.store.get_queue(queue_id)
        if queue is None:
            return self._no_queue(req)
        body = self._body(req)
        if body is None:
            return self.app.json_error(req, 400, "bad_request", "Send a JSON object.")
        fields = {k: _field(v) for k, v in body.items()}
        try:
            signed_in, refused = attempt_sign_in(self.app, req, queue, fields)
        except SignInRefused as refusal:
            messages = {
                400: "Some fields are not valid.",
                401: next(iter(refusal.fields.values())),
                409: next(iter(refusal.fields.values())),
            }
            return self.app.json_error(
                req, refusal.status, refusal.code, messages[refusal.status], fields=refusal.fields
            )
        if refused:
            return refused
        body = {"servicer_name": signed_in["name"], "token": self._issue_token(signed_in)}
        return self.app.json(req, body, status=201)

    def sign_out(self, req, queue_id):
        """Sign out; the customer called goes back to the front unless ``?customer=served``."""
        me, error = self._servicer(req, queue_id)
        if error:
            return error
        choice = req.GET.get("customer", rules.PUT_BACK)
        if choice not in rules.LEAVING_CHOICES:
            return self.app.json_error(
                req, 400, "bad_request", "customer must be 'front' or 'served'."
            )
        current = self.store.current_ticket(me["id"])
        self.store.sign_out(me["id"], self.app.now(), choice)
        return self.app.json(
            req,
            {
                "signed_out": me["name"],
                "put_back": current["number"] if current and choice == rules.PUT_BACK else None,
                "served": current["number"] if current and choice == rules.FINISH else None,
            },
        )

    def console(self, req, queue_id):
        servicer, error = self._servicer(req, queue_id)
        if error:
            return error
        now = self.app.now()
        return self.app.json(req, views.console_view(self._snapshot(queue_id), servicer, now))

    def console_updates(self, req, queue_id):
        servicer, error = self._servicer(req, queue_id)
        if error:
            return error
        return self.app.live(
            req,
            queue_id,
            lambda snapshot: self._console_view(snapshot, queue_id, servicer["id"]),
        )

    def _console_view(self, snapshot, queue_id, servicer_id):
        """The console as it is now; None once the servicer left (the answer is then a 404)."""
        now_signed_in = self.store.active_servicer(queue_id, servicer_id)
        return now_signed_in and views.console_view(snapshot, now_signed_in, self.app.now())

    # -- the owner ----------------------------------------------------------------------

    def _owner(self, req, queue_id):
        servicer, error = self._servicer(req, queue_id)
        if error:
            return None, error
        if not servicer["is_owner"]:
            return None, self.app.json_error(
                req, 403, "not_owner", "Only the owner's token can do this."
            )
        return servicer, None

    def _owner_change(self, req, queue_id, schema, apply):
        """Validate an owner's change, apply it, and answer with the queue's settings."""
        _owner, error = self._owner(req, queue_id)
        if error:
            return error
        values, error = self._validate(req, schema)
        if error:
            return error
        apply(values, self.app.now())
        return self.settings(req, queue_id)

    def settings(self, req, queue_id):
        _owner, error = self._owner(req, queue_id)
        if error:
            return error
        queue = self.store.get_queue(queue_id)
        hours = rules.parse_hours(queue["opening_hours"])
        return self.app.json(
            req,
            {
                "status": queue["status"],
                "announcement": queue["announcement"],
                "max_waiting": queue["max_waiting"],
                "no_show_policy": queue["no_show_policy"],
                "opening_hours": hours
                and {
                    "days": hours["days"],
                    "opens": hours["opens"].strftime("%H:%M"),
                    "closes": hours["closes"].strftime("%H:%M"),
                },
                "timezone": queue["timezone"],
                "servicers": [
                    {
                        "id": s["id"],
                        "name": s["name"],
                        "is_owner": bool(s["is_owner"]),
                        "invitation_id": s["invitation_id"],
                    }
                    for s in self.store.active_servicers(queue_id)
                ],
                "invitations": [_invitation(i) for i in self.store.invitations(queue_id)],
            },
        )

    def change(self, req, queue_id, change):
        """One of the owner's changes, shared with the Manage page (owner.CHANGES)."""
        schema, apply = owner.CHANGES[change]
        return self._owner_change(
            req, queue_id, schema, lambda values, now: apply(self.store, queue_id, values, now)
        )

    def issue_token(self, req, queue_id):
        """The owner signs a staff member in and hands them the token."""
        _owner, error = self._owner(req, queue_id)
        if error:
            return error
        values, error = self._validate(req, forms.StaffForm)
        if error:
            return error
        try:
            servicer = self.store.sign_in(queue_id, values["name"], self.app.now())
        except store.NameInUse:
            message = "The owner is signed in under this name; choose another."
            return self.app.json_error(req, 409, "name_in_use", message, fields={"name": message})
        body = {"servicer_name": servicer["name"], "token": self._issue_token(servicer)}
        return self.app.json(req, body, status=201)

    def revoke(self, req, queue_id, servicer_id):
        """Revoke a servicer: signed out, tokens and invitation dead, customer back in front."""
        owner, error = self._owner(req, queue_id)
        if error:
            return error
        if int(servicer_id) == owner["id"]:
            return self.app.json_error(
                req, 409, "yourself", "Sign out instead of revoking yourself."
            )
        if not self.store.revoke_servicer(queue_id, int(servicer_id), self.app.now()):
            return self.app.json_error(req, 404, "not_found", "No such servicer is signed in.")
        return self.settings(req, queue_id)

    def invite(self, req, queue_id):
        """The owner makes a personal invitation; its code is in this answer only."""
        _owner, error = self._owner(req, queue_id)
        if error:
            return error
        values, error = self._validate(req, forms.InvitationForm)
        if error:
            return error
        try:
            invitation, code = owner.invite(self.store, queue_id, values, self.app.now())
        except store.NameInUse:
            message = owner.INVITATION_NAME_IN_USE
            return self.app.json_error(req, 409, "name_in_use", message, fields={"name": message})
        body = dict(
            _invitation(dict(invitation, signed_in=False)),
            code=code,
            link=owner.invitation_link(req, queue_id, code),
        )
        return self.app.json(req, body, status=201)

    def revoke_invitation(self, req, queue_id, invitation_id):
        """Revoke an invitation and sign out whoever it signed in."""
        _owner, error = self._owner(req, queue_id)
        if error:
            return error
        if not self.store.revoke_invitation(queue_id, int(invitation_id), self.app.now()):
            return self.app.json_error(req, 404, "not_found", "No such invitation is live.")
        return self.settings(req, queue_id)

    def statistics(self, req, queue_id):
        _owner, error = self._owner(req, queue_id)
        if error:
            return error
        queue = self.store.get_queue(queue_id)
        tickets, tz, starts = self.app.controllers["owner"].history(queue)
        report = statistics.report(tickets, tz, starts)
        return self.app.json(req, _jsonable(report))

    def press(self, req, queue_id, button):
        """A console button: call_next, done, no_show or recall."""
        servicer, error = self._servicer(req, queue_id)
        if error:
            return error
        self.store.press(button, servicer, self.app.now())
        return self.console(req, queue_id)


def _field(value):
    """A JSON value as the form validators expect it: text, or a list of texts."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 5.0 is the whole number 5, as the document says
    if isinstance(value, list):
        return [_field(item) for item in value]
    return str(value)


def _invitation(invitation):
    """An invitation as the API shows it (never its code, but once when made)."""
    return {
        "id": invitation["id"],
        "name": invitation["name"],
        "created_at": invitation["created_at"],
        "expires_at": invitation["expires_at"],
        "signed_in": bool(invitation["signed_in"]),
    }


def _message(error):
    """One message for a field: a list field's errors come as a list, one per item."""
    if isinstance(error, list):
        return next((_message(item) for item in error if item), "Not valid.")
    if isinstance(error, dict):
        return next((_message(item) for item in error.values() if item), "Not valid.")
    return str(error)


def _queue_status(snapshot):
    """A queue's public status: title, who is served by whom, how many wait."""
    return dict(
        views.queue_view(snapshot),
        serving=[
            {"number": s["number"], "servicer_name": s["servicer_name"]} for s in snapshot.serving
        ],
    )


def _jsonable(value):
    """The statistics report as JSON: tuples become lists, keys become text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
