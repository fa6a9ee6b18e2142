"""The servicer console: sign in, call the next number, done, no show, recall."""

from . import forms, security, store, views


class ServicerController:
    def __init__(self, app):
        self.app = app
        self.store = app.store

    def signed_in(self, req, queue_id):
        """The servicer this browser is signed in as on this queue, or None."""
        servicer_id = req.session.servicer_id(queue_id)
        if servicer_id is None:
            return None
        servicer = self.store.active_servicer(queue_id, servicer_id)
        if servicer is None:
            req.session.sign_out(queue_id)
        return servicer

    def console(self, req, queue_id):
        queue = self.store.get_queue(queue_id)
        if queue is None:
            return self.app.not_found(req, queue_id)
        servicer = self.signed_in(req, queue_id)
        if servicer is None:
            # An invite link carries the staff code: /<queue>/serve?code=K7P2-X9QM
            return self._sign_in_form(req, queue, {}, {"password": req.GET.get("code", "")})
        now = self.app.now()
        view = views.console_view(self.app.snapshots.get(queue_id, now), servicer, now)
        return self.app.render(
            req,
            "console.html",
            f"Serving – {queue['title']}",
            view=view,
            live_url=req.urls("console_updates", queue_id=queue_id),
            live_page="console",
            join_url=req.host_url + req.urls("join", queue_id=queue_id),
            refresh_seconds=self.app.settings["refresh_seconds"],
        )

    def updates(self, req, queue_id):
        """Live updates of the console."""
        if self.signed_in(req, queue_id) is None:
            return self.app.json_error(req, 403, "signed_out", "Sign in to serve this queue.")

        def view(snapshot):
            servicer = self.store.active_servicer(queue_id, req.session.servicer_id(queue_id))
            return servicer and views.console_view(snapshot, servicer, self.app.now())

        return self.app.live(req, queue_id, view)

    def _sign_in_form(self, req, queue, errors, defaults=None, status=200):
        return self.app.render_form(
            req,
            "sign_in.html",
            f"Sign in – {queue['title']}",
            defaults or {},
            errors,
            status=status,
            queue=queue,
        )

    def sign_in(self, req, queue_id):
        queue = self.store.get_queue(queue_id)
        if queue is None:
            return self.app.not_found(req, queue_id)
        values, errors = forms.validate(forms.SignInForm, req.POST)
        role = None
        if not errors:
            role, refused = self.app.checked_sign_in(
                req, queue_id, lambda: security.sign_in_role(queue, values["password"])
            )
            if refused:
                return refused
        if not errors and role is None:
            errors = {"password": "That is neither this queue's password nor its staff code."}
        if not errors:
            try:
                servicer = self.store.sign_in(
                    queue_id, values["name"], self.app.now(), is_owner=role == "owner"
                )
            except store.NameInUse:
                errors = {"name": "Someone else is signed in under this name; choose another."}
        if errors:
            defaults = {"name": req.POST.get("name", "")}
            return self._sign_in_form(req, queue, errors, defaults, status=400)
        req.session.sign_in(queue_id, servicer["id"])
        return self.app.redirect(req, "console", queue_id=queue_id)

    def sign_out(self, req, queue_id):
        servicer = self.signed_in(req, queue_id)
        if servicer is not None:
            self.store.sign_out(servicer["id"], self.app.now())
        req.session.sign_out(queue_id)
        return self.app.redirect(req, "console", queue_id=queue_id)

    def press(self, req, queue_id, button):
        """A console button for the signed-in servicer, then back to the console."""
        servicer = self.signed_in(req, queue_id)
        if servicer is not None:
            self.store.press(button, servicer, self.app.now())
        return self.app.redirect(req, "console", queue_id=queue_id)
