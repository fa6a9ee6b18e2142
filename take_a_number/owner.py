"""The queue owner's pages: the home page and creating a queue."""

from . import forms, security, store


class OwnerController:
    def __init__(self, app):
        self.app = app
        self.store = app.store

    def home(self, req):
        defaults = {"queue_id": req.GET.get("queue_id", ""), "name": "Desk 1"}
        return self._form(req, defaults, {})

    def _form(self, req, defaults, errors, status=200):
        return self.app.render_form(
            req, "home.html", "Take A Number", defaults, errors, status=status
        )

    def create_queue(self, req):
        refused = self.app.rate_limited(req, "create_queue", req.remote_addr)
        if refused:
            return refused
        values, errors = forms.validate(forms.CreateQueueForm, req.POST)
        if not errors:
            now = self.app.now()
            try:
                self.store.create_queue(
                    values["queue_id"],
                    values["title"],
                    security.hash_password(values["password"]),
                    now,
                )
            except store.QueueExists:
                errors = {"queue_id": "That name is taken; choose another."}
        if errors:
            defaults = {k: req.POST.get(k, "") for k in ("queue_id", "title", "name")}
            return self._form(req, defaults, errors, status=400)
        servicer = self.store.sign_in(values["queue_id"], values["name"], now)
        req.session.sign_in(values["queue_id"], servicer["id"])
        return self.app.redirect(req, "console", queue_id=values["queue_id"])
