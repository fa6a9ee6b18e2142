"""The queue owner's pages: the home page, creating a queue, and managing it."""

import zoneinfo

import tempita
from webob import Response, exc

from . import charts, forms, limits, rules, security, statistics, store

# The owner's changes to a queue, shared by the Manage page and the JSON API:
# name -> (FormEncode schema, apply(store, queue_id, values, now)).
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


# The Manage page's fields in the order they come: the first in error gets the focus.
MANAGE_FIELDS = (*forms.OptionsForm.fields, *forms.HoursForm.fields)


def create_queue(store, values, now):
    """Create a queue from CreateQueueForm's values; its creator is signed in as owner.

    Returns the owner's servicer row; raises store.QueueExists.
    """
    store.create_queue(
        values["queue_id"],
        values["title"],
        security.hash_password(values["password"]),
        now,
    )
    return store.sign_in(values["queue_id"], values["name"], now, is_owner=True)


TOO_MANY_QUEUES = "This address has created as many queues as it may for now."


def create_counted(app, req, values):
    """create_queue, counted against the creation limit of the client's address.

    Returns ``(the owner's servicer row, 0)``, or ``(None, seconds to wait)``
    when the limit is reached; raises store.QueueExists (which does not count).
    """
    now = app.now()
    return app.limits.counted_if_done(
        "create_queue",
        req.remote_addr,
        now=now,
        action=lambda: create_queue(app.store, values, now),
    )


def invite(store, queue_id, values, now):
    """A personal invitation from InvitationForm's values: ``(invitation, code)``.

    The code is shown to the owner this once; only its hash is kept. Raises
    store.NameInUse when a live invitation has that name.
    """
    code = security.new_invitation_code()
    hours = values["valid_for_hours"]
    invitation = store.create_invitation(
        queue_id,
        values["name"],
        security.invitation_code_hash(code),
        now,
        expires_at=now + hours * 3600 if hours else None,
    )
    return invitation, code


def invitation_link(req, queue_id, code):
    """The link that signs an invited servicer in: the console, with their code."""
    return f"{req.host_url}{req.urls('console', queue_id=queue_id)}?code={code}"


INVITATION_NAME_IN_USE = "There is already an invitation under this name; choose another."


class OwnerController:
    def __init__(self, app):
        self.app = app
        self.store = app.store

    # -- creating a queue ------------------------------------------------------

    def home(self, req):
        defaults = {"queue_id": req.GET.get("queue_id", ""), "name": "Desk 1"}
        return self._form(req, defaults, {})

    def _form(self, req, defaults, errors, status=200):
        return self.app.render_form(
            req, "home.html", "Take A Number", defaults, errors, status=status
        )

    def create_queue(self, req):
        refused = self.app.rate_limited(req, "create_attempts", req.remote_addr)
        if refused:
            return refused
        values, errors = forms.validate(forms.CreateQueueForm, req.POST)
        retry_after = 0
        if not errors:
            try:
                servicer, retry_after = create_counted(self.app, req, values)
            except store.QueueExists:
                errors = {"queue_id": "That name is taken; choose another."}
        if retry_after:
            wait = limits.wait_text(retry_after)
            errors = {"form": f"{TOO_MANY_QUEUES} Please wait {wait} before creating another."}
        if errors:
            # What was typed stays, but the password.
            defaults = {k: req.POST.get(k, "") for k in ("queue_id", "title", "name")}
            response = self._form(req, defaults, errors, status=429 if retry_after else 400)
            if retry_after:
                response.retry_after = retry_after
            return response
        req.session.sign_in(values["queue_id"], servicer["id"])
        return self.app.redirect(req, "console", queue_id=values["queue_id"])

    # -- managing a queue --------------------------------------------------------

    def _owner(self, req, queue_id):
        """The owner this browser is signed in as, or the response to give instead."""
        queue = self.store.get_queue(queue_id)
        if queue is None:
            return None, None, self.app.not_found(req, queue_id)
        servicer = self.app.controllers["servicer"].signed_in(req, queue_id)
        if servicer is None:
            return None, None, self.app.redirect(req, "console", queue_id=queue_id)
        if not servicer["is_owner"]:
            return (
                None,
                None,
                self.app.error_page(
                    req,
                    exc.HTTPForbidden,
                    "Only the owner can do this",
                    "Only the owner, who signs in with the queue's password, can manage it.",
                    join_queue_id=queue_id,
                ),
            )
        return queue, servicer, None

    def manage(self, req, queue_id, errors=None, status=200, defaults=None):
        queue, servicer, refusal = self._owner(req, queue_id)
        if refusal:
            return refusal
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
            new_invitation["link"] = invitation_link(req, queue_id, new_invitation["code"])
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
            servicers=self.store.active_servicers(queue_id),
            status_words=rules.describe_status(queue, now),
            has_hours=hours is not None,
            # Which change went through, after its 303: that section says "Saved".
            saved=None if errors else req.GET.get("saved"),
            first_error=next((name for name in MANAGE_FIELDS if name in (errors or {})), None),
            invitations=[
                dict(i, expired=i["expires_at"] is not None and i["expires_at"] <= now)
                for i in self.store.invitations(queue_id)
            ],
            new_invitation=new_invitation,
            invitation_hours=forms.INVITATION_HOURS,
            describe_time=lambda moment: statistics.local_time(
                moment, zoneinfo.ZoneInfo(queue["timezone"])
            ).strftime("%Y-%m-%d %H:%M"),
            day_names=list(enumerate(rules.DAY_NAMES)),
            timezones=forms.TIMEZONES,
        )

    def _change(self, req, queue_id, name, schema, apply):
        """Validate a management form and apply it, or show the page with the errors."""
        queue, _servicer, refusal = self._owner(req, queue_id)
        if refusal:
            return refusal
        values, errors = forms.validate(schema, req.POST)
        if errors:
            defaults = forms.as_typed(schema, req.POST)
            return self.manage(req, queue_id, errors=errors, status=400, defaults=defaults)
        apply(values, self.app.now())
        return self.app.redirect(req, "manage", queue_id=queue_id, saved=name, _anchor=name)

    def change(self, req, queue_id, change):
        """One of the owner's changes (see CHANGES), from the Manage page."""
        schema, apply = CHANGES[change]
        return self._change(
            req,
            queue_id,
            change,
            schema,
            lambda values, now: apply(self.store, queue_id, values, now),
        )

    def invite(self, req, queue_id):
        """The owner makes a personal invitation; the Manage page shows its link once."""
        queue, _owner, refusal = self._owner(req, queue_id)
        if refusal:
            return refusal
        values, errors = forms.validate(forms.InvitationForm, req.POST)
        if not errors:
            try:
                invitation, code = invite(self.store, queue_id, values, self.app.now())
            except store.NameInUse:
                errors = {"name": INVITATION_NAME_IN_USE}
        if errors:
            defaults = {k: req.POST.get(k, "") for k in ("name", "valid_for_hours")}
            return self.manage(req, queue_id, errors=errors, status=400, defaults=defaults)
        # Shown once, on the page this redirects to; never stored but as a hash.
        req.session["new_invitation"] = {"name": invitation["name"], "code": code}
        req.session.changed = True
        return self.app.redirect(req, "manage", queue_id=queue_id)

    def revoke(self, req, queue_id, servicer_id):
        """Revoke a servicer: signed out at once, their invitation dead."""
        queue, owner, refusal = self._owner(req, queue_id)
        if refusal:
            return refusal
        if int(servicer_id) != owner["id"]:
            self.store.revoke_servicer(queue_id, int(servicer_id), self.app.now())
        return self.app.redirect(req, "manage", queue_id=queue_id)

    def revoke_invitation(self, req, queue_id, invitation_id):
        """Revoke an invitation, and sign out whoever it signed in."""
        queue, _owner, refusal = self._owner(req, queue_id)
        if refusal:
            return refusal
        self.store.revoke_invitation(queue_id, int(invitation_id), self.app.now())
        return self.app.redirect(req, "manage", queue_id=queue_id)

    def confirm_clear(self, req, queue_id):
        queue, _servicer, refusal = self._owner(req, queue_id)
        if refusal:
            return refusal
        snapshot = self.app.snapshots.get(queue_id, self.app.now())
        return self.app.render(
            req,
            "clear.html",
            f"Clear the line? – {queue['title']}",
            queue=queue,
            waiting=len(snapshot.waiting),
        )

    # -- statistics -----------------------------------------------------------------

    def history(self, queue):
        tz = zoneinfo.ZoneInfo(queue["timezone"])
        starts = statistics.serving_started_by_day(self.store.serving_starts(queue["id"]), tz)
        return self.store.queue_tickets(queue["id"]), tz, starts

    def statistics(self, req, queue_id):
        queue, _servicer, refusal = self._owner(req, queue_id)
        if refusal:
            return refusal
        tickets, tz, starts = self.history(queue)
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
            minutes=_minutes,
        )

    def tickets_csv(self, req, queue_id):
        queue, _servicer, refusal = self._owner(req, queue_id)
        if refusal:
            return refusal
        tickets, tz, starts = self.history(queue)
        response = Response(text=statistics.tickets_csv(tickets, tz, starts), charset="utf-8")
        response.content_type = "text/csv"
        response.content_disposition = f'attachment; filename="{queue_id}-tickets.csv"'
        response.cache_control = "no-store"
        return response


def _local_day(ticket, tz):
    return statistics.local_time(ticket["taken_at"], tz).date().isoformat()


def _minutes(seconds):
    """'2.5 min', or '–' for no value."""
    return "–" if seconds is None else f"{seconds / 60:.1f} min"
