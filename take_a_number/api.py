"""The JSON API under /api/v1: everything the pages do, for scripts and integrators.

Customers need no credentials: a ticket's token is its capability, as on the
pages. Servicers send ``Authorization: Bearer <token>``, a token issued when
they sign in (or create a queue) through the API. Errors are always
``{"error": {"code": ..., "message": ..., "fields": {...}}}``.
"""

import functools
import json
import math
import urllib.parse

from . import (
    actions,
    api_values,
    forms,
    openapi,
    owner_actions,
    refusals,
    routing,
    rules,
    security,
    statistics,
    views,
)
from .refusals import Refused

# An API endpoint whose refusals become the one JSON error shape (ApiController.refused).
answers_refusals = refusals.answered_by("refused")
JSON = "application/json"
# The bodies read besides JSON: forms, as the pages send them.
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class ApiController:
    def __init__(self, app):
        self.app = app
        self.store = app.store
        self.actions = app.actions

    # -- helpers ---------------------------------------------------------------

    def refused(self, req, refusal, *_args, **_kwargs):
        """A refusal (refusals.Refused) as the API's one error shape; a 429 says the wait."""
        if refusal.retry_after:
            return self.app.too_many(req, refusal.retry_after, refusal.message)
        fields = refusal.fields and {name: _message(e) for name, e in refusal.fields.items()}
        response = self.app.json_error(
            req, refusal.status, refusal.code, refusal.message, fields=fields
        )
        if refusal.status == 401:  # "who are you?", or a wrong password: say how to sign in
            response.www_authenticate = ("Bearer", {"realm": "take-a-number"})
        return response

    def _json(self, req):
        """The JSON object sent, or Refused for a body that is not one, or holds
        text no database can store (an unpaired surrogate, which JSON can escape)."""
        try:
            body = json.loads(req.body or b"{}")
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError):  # UnicodeError is a ValueError
            body = None
        if not isinstance(body, dict):
            raise Refused(400, "bad_request", "Send a JSON object.")
        return body

    def _fields(self, req, form):
        """The body's fields for an action, and messages for those the document refuses.

        ``form`` is the form the body comes in, or a function of the fields that
        says which (refusals.sign_in_form). A JSON body must fit the OpenAPI
        document (``openapi.refusals``: ``false`` is no title, a field it does
        not have is refused); the action's form checks the fields that do, and
        finds a refused one empty. A body of any other type than JSON or a
        form is refused (415), not read as an empty form.
        """
        if req.content_type != JSON:
            if req.content_type not in FORMS and (req.content_length or req.body):
                raise Refused(415, "unsupported_media_type", _unsupported(req.content_type))
            return req.POST, {}
        body = self._json(req)
        if not isinstance(form, type):  # a function of the fields
            form = form(body)
        refused = openapi.refusals(form, body)
        return {k: "" if k in refused else _field(v) for k, v in body.items()}, refused

    def _actor(self, req):
        return self.actions.actor_of_token(security.bearer_token(req))

    def _owner_form(self, req, queue_id, schema):
        """The owner (checked before the body is read) and the body's fields for ``schema``."""
        actor = self.actions.owner(self._actor(req), queue_id)
        return (actor, *self._fields(req, schema))

    def _ticket(self, req, snapshot, ticket):
        """A ticket as the API answers it: its page's view, typed, with absolute links."""
        token = ticket["token"]
        view = views.ticket_view(snapshot, ticket)
        estimate = view["position"] and snapshot.estimate(view["position"])
        return dict(
            view,
            **api_values.queue_values(snapshot),
            token=token,
            estimate=estimate
            and {"low_seconds": math.floor(estimate[0]), "high_seconds": math.ceil(estimate[1])},
            estimate_text=view["estimate"],
            links={
                "page": _absolute(req, "ticket", queue_id=ticket["queue_id"], token=token),
                "api": _absolute(req, "api_ticket", token=token),
                "updates": _absolute(req, "api_ticket_updates", token=token),
            },
        )

    def _snapshot(self, queue_id):
        return self.app.snapshots.get(queue_id, self.app.now())

    def _no_queue(self, req):
        return self.refused(req, Refused(404, "not_found", refusals.NO_QUEUE))

    def _no_ticket(self, req):
        return self.refused(req, Refused(404, "not_found", refusals.NO_TICKET))

    # -- the description --------------------------------------------------------

    def openapi(self, req):
        return self.app.json(req, openapi.document(req.application_url + "/api/v1"))

    def health(self, req):
        """How full push is, while the database answers (else a 503): the whole server's
        (all of serve's workers), and each process's."""
        if not self.store.reachable():
            return self.app.unavailable(req, "the health check's query failed")
        push, processes = self.app.updates.health()
        body = {
            "status": "full" if push["full"] else "ok",
            "push": dict(push, full_since=api_values.utc_time(push["full_since"])),
            "processes": [
                dict(process, full_since=api_values.utc_time(process["full_since"]))
                for process in processes
            ],
        }
        return self.app.json(req, body)

    # -- queues -----------------------------------------------------------------

    @answers_refusals
    def create_queue(self, req):
        servicer = self.actions.create_queue(
            req.remote_addr, lambda: self._fields(req, forms.CreateQueueForm)
        )
        queue_id = servicer["queue_id"]
        body = {
            "queue": api_values.queue_answer(self._snapshot(queue_id)),
            "servicer_name": servicer["name"],
            "token": self.actions.new_api_token(servicer),
        }
        response = self.app.json(req, body, status=201)
        response.location = _absolute(req, "api_queue", queue_id=queue_id)
        return response

    def queue(self, req, queue_id, make_view=None):
        """The queue's status, or the view ``make_view(snapshot)`` makes of it (the board's)."""
        snapshot = self._snapshot(queue_id)
        if snapshot is None:
            return self._no_queue(req)
        return self.app.json(req, (make_view or api_values.queue_status)(snapshot))

    def queue_updates(self, req, queue_id):
        return self.app.live(req, queue_id, shared=api_values.queue_status)

    def board(self, req, queue_id):
        """What the display board shows: each desk's number and the last calls."""
        return self.queue(req, queue_id, api_values.board_answer)

    def board_updates(self, req, queue_id):
        return self.app.live(req, queue_id, shared=api_values.board_answer)

    # -- tickets ----------------------------------------------------------------

    @answers_refusals
    def take(self, req, queue_id):
        token = security.bearer_token(req)
        ticket = self.actions.take(queue_id, req.remote_addr, token=token)
        ticket = self.app.snapshots.ticket(ticket["token"])
        response = self.app.json(req, self._ticket(req, self._snapshot(queue_id), ticket), 201)
        response.location = _absolute(req, "api_ticket", token=ticket["token"])
        return response

    def ticket(self, req, token):
        ticket = self.app.snapshots.ticket(token)
        if ticket is None:
            return self._no_ticket(req)
        return self.app.json(req, self._ticket(req, self._snapshot(ticket["queue_id"]), ticket))

    def ticket_updates(self, req, token):
        ticket = self.app.snapshots.ticket(token)
        if ticket is None:
            return self._no_ticket(req)
        return self.app.live(
            req,
            ticket["queue_id"],
            lambda snapshot: self._ticket(
                req, snapshot, self.app.snapshots.ticket_of(snapshot, token)
            ),
            ticket_id=ticket["id"],
        )

    @answers_refusals
    def leave(self, req, token):
        self.actions.leave(token)
        return self.ticket(req, token)

    @answers_refusals
    def move_back(self, req, token):
        """Not ready: let the next person go first (409 when the ticket cannot)."""
        self.actions.move_back(token, refuse=True)
        return self.ticket(req, token)

    # -- servicers ----------------------------------------------------------------

    @answers_refusals
    def sign_in(self, req, queue_id):
        self.actions.queue(queue_id)  # no such queue: 404 before the body is read
        fields, refused = self._fields(req, refusals.sign_in_form)
        signed_in = self.actions.sign_in(queue_id, fields, req.remote_addr, refused)
        body = {"servicer_name": signed_in["name"], "token": self.actions.new_api_token(signed_in)}
        return self.app.json(req, body, status=201)

    @answers_refusals
    def sign_out(self, req, queue_id):
        """Sign out; the customer called goes back to the front unless ``?customer=served``."""
        me = self.actions.servicer(self._actor(req), queue_id)
        choice = req.GET.get("customer", rules.PUT_BACK)
        current = self.actions.sign_out(me, queue_id, customer=choice)
        return self.app.json(
            req,
            {
                "signed_out": me["name"],
                "put_back": current["number"] if current and choice == rules.PUT_BACK else None,
                "served": current["number"] if current and choice == rules.FINISH else None,
            },
        )

    @answers_refusals
    def console(self, req, queue_id):
        return self.app.json(req, self._console_now(req, queue_id))

    def _console_now(self, req, queue_id):
        servicer = self.actions.servicer(self._actor(req), queue_id)
        return api_values.console_answer(self._snapshot(queue_id), servicer, self.app.now())

    @answers_refusals
    def console_updates(self, req, queue_id):
        servicer = self.actions.servicer(self._actor(req), queue_id)
        return self.app.live(
            req,
            queue_id,
            lambda snapshot: self._console_view(snapshot, queue_id, servicer["id"]),
        )

    def _console_view(self, snapshot, queue_id, servicer_id):
        """The console as it is now; None once the servicer left (the answer is then a 404)."""
        now_signed_in = self.store.active_servicer(queue_id, servicer_id)
        return now_signed_in and api_values.console_answer(snapshot, now_signed_in, self.app.now())

    @answers_refusals
    def press(self, req, queue_id, button):
        """A console button (actions.BUTTONS): call_next, done, no_show, recall,
        call_number or undo.

        Refused as ``stale`` (``expected_current`` is not the servicer's customer):
        409, with the console as it is now in the error's ``console``."""
        read_fields = functools.partial(self._fields, req, actions.BUTTONS[button][0])
        try:
            self.actions.press(self._actor(req), queue_id, button, read_fields)
        except Refused as refusal:
            if refusal.code != "stale":
                raise
            error = {"code": "stale", "message": refusal.message}
            error["console"] = self._console_now(req, queue_id)
            return self.app.json(req, {"error": error}, status=refusal.status)
        return self.console(req, queue_id)

    # -- the owner ----------------------------------------------------------------------

    @answers_refusals
    def settings(self, req, queue_id):
        _owner, queue, servicers, invitations = self.actions.settings(self._actor(req), queue_id)
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
                    for s in servicers
                ],
                "invitations": [api_values.invitation(i) for i in invitations],
            },
        )

    @answers_refusals
    def change(self, req, queue_id, change):
        """One of the owner's changes (owner_actions.CHANGES), as on the Manage page."""
        actor, fields, refused = self._owner_form(req, queue_id, owner_actions.CHANGES[change][0])
        self.actions.change(actor, queue_id, change, fields, refused)
        return self.settings(req, queue_id)

    @answers_refusals
    def issue_token(self, req, queue_id):
        """The owner signs a staff member in and hands them the token."""
        actor, fields, refused = self._owner_form(req, queue_id, forms.StaffForm)
        servicer = self.actions.sign_in_staff(actor, queue_id, fields, refused)
        body = {"servicer_name": servicer["name"], "token": self.actions.new_api_token(servicer)}
        return self.app.json(req, body, status=201)

    @answers_refusals
    def invite(self, req, queue_id):
        """The owner makes a personal invitation; its code is in this answer only."""
        actor, fields, refused = self._owner_form(req, queue_id, forms.InvitationForm)
        invitation, code = self.actions.invite(actor, queue_id, fields, refused)
        body = dict(
            api_values.invitation(dict(invitation, signed_in=False)),
            code=code,
            link=routing.invitation_link(req, queue_id, code),
        )
        return self.app.json(req, body, status=201)

    @answers_refusals
    def change_password(self, req, queue_id):
        """The owner changes the queue's password, giving the old one."""
        actor, fields, refused = self._owner_form(req, queue_id, forms.ChangePasswordForm)
        self.actions.change_password(actor, queue_id, fields, req.remote_addr, refused=refused)
        return self.app.json(req, {"password_changed": True})

    @answers_refusals
    def revoke(self, req, queue_id, servicer_id):
        """Revoke a servicer: signed out, tokens and invitation dead, customer back in front."""
        self.actions.revoke(self._actor(req), queue_id, int(servicer_id))
        return self.settings(req, queue_id)

    @answers_refusals
    def revoke_invitation(self, req, queue_id, invitation_id):
        """Revoke an invitation and sign out whoever it signed in."""
        self.actions.revoke_invitation(self._actor(req), queue_id, int(invitation_id))
        return self.settings(req, queue_id)

    @answers_refusals
    def statistics(self, req, queue_id):
        """The report of the tickets taken from ``?from=`` to ``?to=`` (dates), or of all."""
        _queue, tickets, tz, starts = self.actions.history(self._actor(req), queue_id, req.GET)
        return self.app.json(req, api_values.jsonable(statistics.report(tickets, tz, starts)))

    @answers_refusals
    def tickets(self, req, queue_id):
        """The queue's tickets, the CSV's rows, a page at a time: ``?from=&to=&limit=&after=``."""
        page = self.actions.ticket_page(self._actor(req), queue_id, req.GET)
        _queue, tickets, tz, starts = page.history
        query = {
            **{day: page.query[day].isoformat() for day in ("from", "to") if page.query[day]},
            "limit": page.query["limit"],
            "after": page.next_after,
        }
        following = req.urls("api_tickets", queue_id=queue_id) + "?" + urllib.parse.urlencode(query)
        return self.app.json(
            req,
            {
                "tickets": [statistics.ticket_record(t, tz, starts) for t in tickets],
                "has_more": page.has_more,
                "next_after": page.next_after,
                "links": {"next": req.host_url + following if page.has_more else None},
            },
        )


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


def _absolute(req, route, **kwargs):
    """The absolute URL of a route, as seen by the client (behind any mount prefix)."""
    return req.host_url + req.urls(route, **kwargs)


def _unsupported(content_type):
    sent = f"as {content_type}" if content_type else "without a Content-Type"
    return f"The body was sent {sent}: send JSON with Content-Type: {JSON} (or a form, {FORMS[0]})."


def _message(error):
    """One message for a field: a list field's errors come as a list, one per item."""
    if isinstance(error, list):
        return next((_message(item) for item in error if item), "Not valid.")
    if isinstance(error, dict):
        return next((_message(item) for item in error.values() if item), "Not valid.")
    return str(error)
