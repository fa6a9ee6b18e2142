"""The JSON API under /api/v1: everything the pages do, for scripts and integrators.

Customers need no credentials: a ticket's token is its capability, as on the
pages. Servicers send ``Authorization: Bearer <token>``, a token issued when
they sign in (or create a queue) through the API. Errors are always
``{"error": {"code": ..., "message": ..., "fields": {...}}}``.
"""

import json

from . import forms, openapi, owner, rules, security, statistics, store, views


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
        """The servicer the bearer token acts as on this queue, or an error response."""
        token = security.bearer_token(req)
        servicer = token and self.store.servicer_by_api_token(security.token_hash(token))
        if not servicer or servicer["queue_id"] != queue_id:
            response = self.app.json_error(
                req, 401, "unauthorized", "Send a servicer's token: Authorization: Bearer <token>."
            )
            response.www_authenticate = ("Bearer", {"realm": "take-a-number"})
            return None, response
        return servicer, None

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
        refused = self.app.rate_limited(req, "create_queue", req.remote_addr)
        if refused:
            return self.app.json_error(req, 429, "rate_limited", "Too many queues created; wait.")
        values, error = self._validate(req, forms.CreateQueueForm)
        if error:
            return error
        try:
            servicer = owner.create_queue(self.store, values, self.app.now())
        except store.QueueExists:
            return self.app.json_error(
                req,
                409,
                "queue_exists",
                "That queue id is taken.",
                fields={"queue_id": "That name is taken; choose another."},
            )
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
        refused = self.app.rate_limited(req, "take_ticket", f"api:{req.remote_addr}")
        if refused:
            return self.app.json_error(req, 429, "rate_limited", "Too many tickets taken; wait.")
        try:
            ticket = self.store.take_ticket(queue_id, security.new_token(), self.app.now())
        except LookupError:
            return self._no_queue(req)
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
        refused = self.app.rate_limited(req, "sign_in", req.remote_addr)
        if refused:
            return self.app.json_error(req, 429, "rate_limited", "Too many sign-in attempts; wait.")
        values, error = self._validate(req, forms.SignInForm)
        if error:
            return error
        role = security.sign_in_role(queue, values["password"])
        if role is None:
            message = "That is neither this queue's password nor its staff code."
            return self.app.json_error(
                req, 401, "wrong_password", message, fields={"password": message}
            )
        try:
            servicer = self.store.sign_in(
                queue_id, values["name"], self.app.now(), is_owner=role == "owner"
            )
        except store.NameInUse:
            message = "Someone else is signed in under this name; choose another."
            return self.app.json_error(req, 409, "name_in_use", message, fields={"name": message})
        body = {"servicer_name": servicer["name"], "token": self._issue_token(servicer)}
        return self.app.json(req, body, status=201)

    def sign_out(self, req, queue_id):
        servicer, error = self._servicer(req, queue_id)
        if error:
            return error
        self.store.sign_out(servicer["id"], self.app.now())
        return self.app.json(req, {"signed_out": servicer["name"]})

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
            lambda snapshot: views.console_view(
                snapshot, self.store.get_servicer(servicer["id"]), self.app.now()
            ),
        )

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
                "staff_code": queue["staff_code"],
                "servicers": [
                    {"id": s["id"], "name": s["name"], "is_owner": bool(s["is_owner"])}
                    for s in self.store.active_servicers(queue_id)
                ],
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
        owner, error = self._owner(req, queue_id)
        if error:
            return error
        target = self.store.active_servicer(queue_id, int(servicer_id))
        if target is None:
            return self.app.json_error(req, 404, "not_found", "No such servicer is signed in.")
        if target["id"] == owner["id"]:
            return self.app.json_error(
                req, 409, "yourself", "Sign out instead of revoking yourself."
            )
        self.store.sign_out(target["id"], self.app.now())
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
