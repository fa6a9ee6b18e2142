"""The owner's actions: the changes to a queue, invitations, revoking, settings, history.

Mixed into ``actions.Actions`` (they need its ``store``, ``now()``, ``owner()``
and ``queue()``); each is ``@owner_only``.
"""

import collections
import zoneinfo

from . import forms, security, statistics, store
from .refusals import (
    INVITATION_NAME_IN_USE,
    NO_INVITATION,
    NO_SERVICER,
    STAFF_NAME_IN_USE,
    TOO_MANY_SIGN_INS,
    WRONG_OLD_PASSWORD,
    YOURSELF,
    Refused,
    owner_only,
    validate,
)

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

# A queue's history, for its statistics and its CSV file.
History = collections.namedtuple("History", "queue tickets tz starts")
# One page of a queue's tickets (Actions.ticket_page): the history of those on it,
# whether more follow, the number to ask for the next page after, and the query read.
TicketPage = collections.namedtuple("TicketPage", "history has_more next_after query")
# What the owner manages: the queue, its servicers signed in and its invitations.
Settings = collections.namedtuple("Settings", "owner queue servicers invitations")


class OwnerActions:
    """The owner's actions (a mixin of ``actions.Actions``)."""

    @owner_only
    def change(self, owner, queue_id, name, fields, refused=None):
        """One of the owner's changes (CHANGES) from its form's fields."""
        schema, apply = CHANGES[name]
        apply(self.store, queue_id, validate(schema, fields, refused), self.now())

    def queues_owned(self, session):
        """The queues this browser's session is signed in to as their owner, still signed in,
        by title: the home page's "Your queues"."""
        owned = []
        for queue_id in session["servicers"]:
            servicer = self.actor_of_session(session, queue_id)
            if servicer and servicer["is_owner"] and servicer["signed_out_at"] is None:
                owned.append(self.store.get_queue(queue_id))
        return sorted(owned, key=lambda queue: (queue["title"].casefold(), queue["id"]))

    @owner_only
    def change_password(
        self, owner, queue_id, fields, address, form=forms.ChangePasswordForm, refused=None
    ):
        """A new password for the queue, given the old one (``form``'s fields).

        A wrong old password counts against the sign-in limit of this queue and
        address (limits.Limits.sign_in) as a wrong password at sign-in does: the
        owner's desk left open must not become a way to guess the password."""
        values = validate(form, fields, refused)
        queue = self.queue(queue_id)

        def check():
            return security.verify_password(values["old_password"], queue["password_hash"])

        right, wait = self.limits.sign_in(queue_id, address, check, self.now())
        if wait:
            raise Refused(429, "rate_limited", TOO_MANY_SIGN_INS, retry_after=wait)
        if not right:
            raise Refused(401, "wrong_password", WRONG_OLD_PASSWORD, field="old_password")
        new_hash = security.hash_password(values["new_password"])
        self.store.set_password(queue_id, new_hash, self.now())

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
