"""The queue owner's pages: the home page, creating a queue, and managing it."""

import zoneinfo

import tempita
from webob import Response, exc

from . import charts, forms, limits, owner_actions, refusals, routing, rules, statistics
from .refusals import Refused

# The Manage page's fields in the order they come: the first in error gets the focus.
MANAGE_FIELDS = (
    *forms.OptionsForm.fields,
    *forms.HoursForm.fields,
    "old_password",
    "new_password",
    "new_password_again",
)


# A page only the queue's owner may see or post to (OwnerController.refused).
owner_page = refusals.answered_by("refused")


class OwnerController:
    def __init__(self, app):
        self.app = app
        self.actions = app.actions

    # -- creating a queue ------------------------------------------------------

    def home(self, req):
        defaults = {"queue_id": req.GET.get("queue_id", ""), "name": "Desk 1"}
        return self._form(req, defaults, {})

    def _form(self, req, defaults, errors, status=200):
        return self.app.render_form(
            req,
            "home.html",
            "Take A Number",
            defaults,
            errors,
            status=status,
            your_queues=self.actions.queues_owned(req.session),
        )

    def create_queue(self, req):
        try:
            servicer = self.actions.create_queue(req.remote_addr, lambda: (req.POST, None))
        except Refused as refusal:
            if refusal.code == "rate_limited":
                return self.app.too_many(req, refusal.retry_after, refusal.message)
            errors = refusal.fields
            if refusal.retry_after:
                wait = limits.wait_text(refusal.retry_after)
                errors = {"form": f"{refusal.message} Please wait {wait} before creating another."}
            # What was typed stays, but the password.
            defaults = {k: req.POST.get(k, "") for k in ("queue_id", "title", "name", "timezone")}
            response = self._form(req, defaults, errors, status=429 if refusal.retry_after else 400)
            if refusal.retry_after:
                response.retry_after = refusal.retry_after
            return response
        req.session.sign_in(servicer["queue_id"], servicer["id"])
        return self.app.redirect(req, "console", queue_id=servicer["queue_id"])

    # -- managing a queue --------------------------------------------------------

    def _actor(self, req, queue_id):
        """The servicer this browser's session names; Refused (404) if there is no such queue."""
        self.actions.queue(queue_id)
        return self.actions.actor_of_session(req.session, queue_id)

    def refused(self, req, refusal, queue_id, *_args, **_kwargs):
        """What the owner's browser is shown instead of a page refused.

        Not the owner: the console's sign-in, or a 403 page. Any other refusal
        (revoking oneself, a servicer already gone) leaves the Manage page as it is.
        """
        if refusal.message == refusals.NO_QUEUE:
            return self.app.not_found(req, queue_id)
        if refusal.status == 401:
            return self.app.redirect(req, "console", queue_id=queue_id)
        if refusal.status == 403:
            return self.app.error_page(
                req,
                exc.HTTPForbidden,
                "Only the owner can do this",
                refusal.message,
                join_queue_id=queue_id,
            )
        return self.app.redirect(req, "manage", queue_id=queue_id)

    @owner_page
    def manage(self, req, queue_id, errors=None, status=200, defaults=None):
        servicer, queue, servicers, invitations = self.actions.settings(
            self._actor(req, queue_id), queue_id
        )
        hours = rules.parse_hours(queue["opening_hours"])
        filled = {
            "announcement": queue["announcement"],
            "max_waiting": queue["max_waiting"] or "",
            "no_show_policy": queue["no_show_policy"],
            "always_open": "on" if hours is None else "",
            "days": [str(d) for d in hours["days"]] if hours else ["0", "1", "2", "3", "4"],
            "opens": hours["opens"].strftime("%H:%M") if hours else "09:00",
            "closes": hours["closes"].strftime("%H:%M") if hours else "17:00",
            "timezone": queue["timezone"],
        }
        filled.update(defaults or {})
        new_invitation = req.session.pop("new_invitation", None)
        if new_invitation:
            req.session.changed = True
            new_invitation["link"] = routing.invitation_link(req, queue_id, new_invitation["code"])
        now = self.app.now()
        return self.app.render_form(
            req,
            "manage.html",
            f"Manage – {queue['title']}",
            filled,
            errors,
            status=status,
            queue=queue,
            servicer=servicer,
            servicers=servicers,
            status_words=rules.describe_status(queue, now),
            has_hours=hours is not None,
            # Which change went through, after its 303: that section says "Saved".
            saved=None if errors else req.GET.get("saved"),
            first_error=next((name for name in MANAGE_FIELDS if name in (errors or {})), None),
            invitations=[
                dict(i, expired=i["expires_at"] is not None and i["expires_at"] <= now)
                for i in invitations
            ],
            new_invitation=new_invitation,
            invitation_hours=forms.INVITATION_HOURS,
            describe_time=lambda moment: statistics.local_time(
                moment, zoneinfo.ZoneInfo(queue["timezone"])
            ).strftime("%Y-%m-%d %H:%M"),
            day_names=list(enumerate(rules.DAY_NAMES)),
            timezones=forms.TIMEZONES,
        )

    @owner_page
    def change(self, req, queue_id, change):
        """One of the owner's changes (owner_actions.CHANGES), from the Manage page."""
        try:
            self.actions.change(self._actor(req, queue_id), queue_id, change, req.POST)
        except Refused as refusal:
            if refusal.status != 400:
                raise
            defaults = forms.as_typed(owner_actions.CHANGES[change][0], req.POST)
            return self.manage(req, queue_id, errors=refusal.fields, status=400, defaults=defaults)
        return self.app.redirect(req, "manage", queue_id=queue_id, saved=change, _anchor=change)

    @owner_page
    def invite(self, req, queue_id):
        """The owner makes a personal invitation; the Manage page shows its link once."""
        try:
            invitation, code = self.actions.invite(self._actor(req, queue_id), queue_id, req.POST)
        except Refused as refusal:
            if not refusal.fields:
                raise
            defaults = {k: req.POST.get(k, "") for k in ("name", "valid_for_hours")}
            return self.manage(req, queue_id, errors=refusal.fields, status=400, defaults=defaults)
        # Shown once, on the page this redirects to; never stored but as a hash.
        req.session["new_invitation"] = {"name": invitation["name"], "code": code}
        req.session.changed = True
        return self.app.redirect(req, "manage", queue_id=queue_id)

    @owner_page
    def change_password(self, req, queue_id):
        """The owner changes the queue's password, giving the old one."""
        try:
            self.actions.change_password(
                self._actor(req, queue_id),
                queue_id,
                req.POST,
                req.remote_addr,
                form=forms.ConfirmedChangePasswordForm,
            )
        except Refused as refusal:
            if refusal.retry_after:
                return self.app.too_many(req, refusal.retry_after, refusal.message)
            if not refusal.fields:
                raise
            # Passwords are never typed back into the page.
            return self.manage(req, queue_id, errors=refusal.fields, status=400)
        return self.app.redirect(
            req, "manage", queue_id=queue_id, saved="password", _anchor="password"
        )

    @owner_page
    def revoke(self, req, queue_id, servicer_id):
        """Revoke a servicer: signed out at once, their invitation dead."""
        self.actions.revoke(self._actor(req, queue_id), queue_id, int(servicer_id))
        return self.app.redirect(req, "manage", queue_id=queue_id)

    @owner_page
    def revoke_invitation(self, req, queue_id, invitation_id):
        """Revoke an invitation, and sign out whoever it signed in."""
        self.actions.revoke_invitation(self._actor(req, queue_id), queue_id, int(invitation_id))
        return self.app.redirect(req, "manage", queue_id=queue_id)

    @owner_page
    def confirm_clear(self, req, queue_id):
        self.actions.owner(self._actor(req, queue_id), queue_id)
        queue = self.actions.queue(queue_id)
        snapshot = self.app.snapshots.get(queue_id, self.app.now())
        return self.app.render(
            req,
            "clear.html",
            f"Clear the line? – {queue['title']}",
            queue=queue,
            waiting=len(snapshot.waiting),
        )

    # -- statistics -----------------------------------------------------------------

    @owner_page
    def statistics(self, req, queue_id):
        queue, tickets, tz, starts = self.actions.history(self._actor(req, queue_id), queue_id)
        report = statistics.report(tickets, tz, starts)
        day = next(
            (d for d in report["days"] if d["date"] == req.GET.get("day")),
            report["days"][-1] if report["days"] else None,
        )
        day_tickets = [t for t in tickets if day and _local_day(t, tz) == day["date"]]
        waits = [statistics.ticket_times(t, starts)["wait"] for t in (day_tickets or tickets)]
        svg = {
            "waits": charts.waiting_times_chart(waits),
            "length": charts.queue_length_chart(day, tz) if day else charts.no_data("Queue length"),
            "arrivals": charts.arrivals_chart(
                day["arrivals_per_hour"] if day else report["overall"]["arrivals_per_hour"]
            ),
            "service": charts.service_time_chart(report["servicers"]),
        }
        return self.app.render(
            req,
            "stats.html",
            f"Statistics – {queue['title']}",
            queue=queue,
            report=report,
            day=day,
            # Markup the app built itself (and escaped inside): safe to insert as is.
            charts={name: tempita.html(markup) for name, markup in svg.items()},
            duration=statistics.duration_text,
        )

    @owner_page
    def tickets_csv(self, req, queue_id):
        _queue, tickets, tz, starts = self.actions.history(self._actor(req, queue_id), queue_id)
        response = Response(text=statistics.tickets_csv(tickets, tz, starts), charset="utf-8")
        response.content_type = "text/csv"
        response.content_disposition = f'attachment; filename="{queue_id}-tickets.csv"'
        response.cache_control = "no-store"
        return response


def _local_day(ticket, tz):
    return statistics.local_time(ticket["taken_at"], tz).date().isoformat()
