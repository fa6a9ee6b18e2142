"""The servicer console: sign in, call the next number (or one from the list), done,
no show, recall, undo, sign out."""

from . import rules, security, views
from .refusals import CONSOLE_REFUSALS, Refused, left_reason

# The console after a press refused as stale (actions.Actions.press).
STALE_PRESS = (
    "That press did nothing: it was made on a console that was out of date (a second click, "
    "an old page or another tab). This is what is current now."
)


def _refusal_shown(req):
    """What the console says of the press it was redirected from (``press``), or ''."""
    if "stale" in req.GET:
        return STALE_PRESS
    return CONSOLE_REFUSALS.get(req.GET.get("refused"), "")


class ServicerController:
    def __init__(self, app):
        self.app = app
        self.store = app.store
        self.actions = app.actions

    def _actor(self, req, queue_id):
        return self.actions.actor_of_session(req.session, queue_id)

    def signed_in(self, req, queue_id):
        """The servicer this browser is signed in as on this queue, or None (actions.servicer)."""
        try:
            return self.actions.servicer(self._actor(req, queue_id), queue_id)
        except Refused:
            return None

    def left(self, req, queue_id):
        """Why this browser's servicer is no longer signed in, in words; None if it never was."""
        servicer = self._actor(req, queue_id)
        if not servicer or servicer["signed_out_at"] is None:
            return None
        return left_reason(servicer)

    def console(self, req, queue_id):
        queue = self.store.get_queue(queue_id)
        if queue is None:
            return self.app.not_found(req, queue_id)
        servicer = self.signed_in(req, queue_id)
        if servicer is None:
            # An invitation link carries its code: /<queue>/serve?code=K7P2-X9QM-4RTD
            return self._sign_in_page(req, queue, code=req.GET.get("code", ""))
        now = self.app.now()
        view = views.console_view(self.app.snapshots.get(queue_id, now), servicer, now)
        return self.app.render(
            req,
            "console.html",
            f"Serving – {queue['title']}",
            view=view,
            refused=_refusal_shown(req),
            live_url=req.urls("console_updates", queue_id=queue_id),
            live_page="console",
            join_url=req.host_url + req.urls("join", queue_id=queue_id),
            refresh_seconds=self.app.settings["refresh_seconds"],
        )

    def updates(self, req, queue_id):
        """Live updates of the console."""
        try:
            self.actions.servicer(self._actor(req, queue_id), queue_id)
        except Refused as refusal:
            return self.app.json_error(req, 403, "signed_out", refusal.message)

        def view(snapshot):
            # Checked for each update: a stream goes on for as long as the console is open,
            # and the console keeps its servicer seen (not idle) as its requests did.
            servicer = self.signed_in(req, queue_id)
            return servicer and views.console_view(snapshot, servicer, self.app.now())

        return self.app.live(req, queue_id, view, stream=True)

    def _sign_in_page(self, req, queue, errors=None, code="", name="", status=200):
        """The sign-in page: an invitation's button, or the owner's form, and why one left."""
        invitation = refusal = None
        if code:
            invitation = self.store.invitation_by_code(
                queue["id"], security.invitation_code_hash(code)
            )
            refusal = rules.invitation_refusal(invitation, self.app.now())
        return self.app.render_form(
            req,
            "sign_in.html",
            f"Sign in – {queue['title']}",
            {"name": name, "code": code},
            errors,
            status=status,
            queue=queue,
            invitation=None if refusal else invitation,
            invitation_refusal=None if errors else refusal,
            left_reason=self.left(req, queue["id"]),
        )

    def sign_in(self, req, queue_id):
        try:
            servicer = self.actions.sign_in(queue_id, req.POST, req.remote_addr)
        except Refused as refusal:
            if refusal.status == 404:
                return self.app.not_found(req, queue_id)
            if refusal.retry_after:
                return self.app.too_many(req, refusal.retry_after, refusal.message)
            # A refused invitation says why on its own (rules.invitation_refusal).
            errors = {} if refusal.code == "invitation_refused" else refusal.fields
            return self._sign_in_page(
                req,
                self.store.get_queue(queue_id),
                errors,
                code=req.POST.get("code", ""),
                name=req.POST.get("name", ""),
                status=refusal.status if refusal.status != 401 else 400,
            )
        req.session.sign_in(queue_id, servicer["id"])
        return self.app.redirect(req, "console", queue_id=queue_id)

    def confirm_sign_out(self, req, queue_id):
        """Before signing out with a customer called: finish them, or put them back?"""
        servicer = self.signed_in(req, queue_id)
        current = servicer and self.store.current_ticket(servicer["id"])
        if not current:
            return self.app.redirect(req, "console", queue_id=queue_id)
        queue = self.store.get_queue(queue_id)
        return self.app.render(
            req,
            "sign_out.html",
            f"Sign out – {queue['title']}",
            queue=queue,
            number=current["number"],
            finish=rules.FINISH,
            put_back=rules.PUT_BACK,
        )

    def sign_out(self, req, queue_id):
        """Sign out; with a customer called, first ask what became of them."""
        try:
            self.actions.sign_out(
                self._actor(req, queue_id),
                queue_id,
                customer=req.POST.get("customer"),
                number=req.POST.get("number", ""),
            )
        except Refused as refusal:
            if refusal.status != 401:
                return self.app.redirect(req, "confirm_sign_out", queue_id=queue_id)
        return self.app.redirect(req, "console", queue_id=queue_id)

    def press(self, req, queue_id, button):
        """A console button for the signed-in servicer, then back to the console.

        The form sends the customer its console showed (``expected_current``): a
        second click, or a press on an old page or in another tab, does nothing,
        and the console says so."""
        try:
            self.actions.press(
                self._actor(req, queue_id), queue_id, button, lambda: (req.POST, None)
            )
        except Refused as refusal:
            if refusal.code == "stale":
                return self.app.redirect(req, "console", queue_id=queue_id, stale=1)
            if refusal.code in CONSOLE_REFUSALS:
                return self.app.redirect(req, "console", queue_id=queue_id, refused=refusal.code)
            # Signed out meanwhile: the console says so.
        return self.app.redirect(req, "console", queue_id=queue_id)
