"""The servicer console: sign in, call the next number, done, no show, recall, sign out."""

from . import forms, rules, security, views
from .store import InvitationRefused, NameInUse

NAME_IN_USE = "Someone else is signed in under this name; choose another."
WRONG_PASSWORD = (
    "That is not this queue's password. Servicers sign in with the invitation link "
    "the owner made for them."
)


class SignInRefused(Exception):
    """A sign-in that failed: the HTTP status, an error code and a message per field."""

    def __init__(self, status, code, fields):
        super().__init__(code)
        self.status, self.code, self.fields = status, code, fields


def sign_in_servicer(store, queue, fields, now):
    """Sign in from a form or a JSON body; return the servicer or raise SignInRefused.

    With ``code``, the servicer an invitation was made for (under its name);
    else the owner, with the queue's password and a name of their choice.
    """
    if "code" in fields:
        values, errors = forms.validate(forms.InvitedSignInForm, fields)
        if errors:
            raise SignInRefused(400, "invalid", errors)
        try:
            return store.sign_in_invited(
                queue["id"], security.invitation_code_hash(values["code"]), now
            )
        except InvitationRefused as refusal:
            raise SignInRefused(401, "invitation_refused", {"code": str(refusal)}) from None
        except NameInUse:
            message = "Someone else is signed in under this invitation's name; ask the owner."
            raise SignInRefused(409, "name_in_use", {"code": message}) from None
    values, errors = forms.validate(forms.SignInForm, fields)
    if errors:
        raise SignInRefused(400, "invalid", errors)
    if not security.verify_password(values["password"], queue["password_hash"]):
        raise SignInRefused(401, "wrong_password", {"password": WRONG_PASSWORD})
    try:
        return store.sign_in(queue["id"], values["name"], now, is_owner=True)
    except NameInUse:
        raise SignInRefused(409, "name_in_use", {"name": NAME_IN_USE}) from None


def attempt_sign_in(app, req, queue, fields):
    """sign_in_servicer behind the brute-force limits (limits.Limits.sign_in).

    Returns ``(servicer, None)``, or ``(None, a 429)`` when this address must
    wait before it tries this queue again; raises SignInRefused. Only a wrong
    password or invitation code counts as a failed attempt.
    """
    refusals = []

    def check():
        try:
            return sign_in_servicer(app.store, queue, fields, app.now())
        except SignInRefused as refusal:
            refusals.append(refusal)
            return refusal.status != 401

    servicer, refused = app.checked_sign_in(req, queue["id"], check)
    if refusals:
        raise refusals[0]
    return servicer, refused


def left_reason(servicer):
    """Why a servicer who is no longer signed in left, in words (rules.LEFT_REASONS)."""
    return rules.LEFT_REASONS[servicer["left_reason"] or rules.SIGNED_OUT]


class ServicerController:
    def __init__(self, app):
        self.app = app
        self.store = app.store

    def signed_in(self, req, queue_id):
        """The servicer this browser is signed in as on this queue, or None.

        The signed cookie only names the servicer: the database says, on every
        request, whether they are still signed in (not signed out, revoked or
        released), so a revocation holds at once in every process.
        """
        servicer_id = req.session.servicer_id(queue_id)
        if servicer_id is None:
            return None
        servicer = self.store.active_servicer(queue_id, servicer_id)
        if servicer is not None:
            self.store.seen(servicer, self.app.now())
        return servicer

    def left(self, req, queue_id):
        """Why this browser's servicer is no longer signed in, in words; None if it never was."""
        servicer_id = req.session.servicer_id(queue_id)
        servicer = servicer_id and self.store.servicer_of_queue(queue_id, servicer_id)
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
        queue = self.store.get_queue(queue_id)
        if queue is None:
            return self.app.not_found(req, queue_id)
        try:
            servicer, refused = attempt_sign_in(self.app, req, queue, req.POST)
        except SignInRefused as refusal:
            # A refused invitation says why on its own (rules.invitation_refusal).
            errors = {} if refusal.code == "invitation_refused" else refusal.fields
            return self._sign_in_page(
                req,
                queue,
                errors,
                code=req.POST.get("code", ""),
                name=req.POST.get("name", ""),
                status=refusal.status if refusal.status != 401 else 400,
            )
        if refused:
            return refused
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
        servicer = self.signed_in(req, queue_id)
        if servicer is not None:
            current = self.store.current_ticket(servicer["id"])
            choice = req.POST.get("customer")
            # The answer must be about the customer called now (another tab may have
            # pressed Next meanwhile).
            if current is not None and (
                choice not in rules.LEAVING_CHOICES
                or req.POST.get("number") != str(current["number"])
            ):
                return self.app.redirect(req, "confirm_sign_out", queue_id=queue_id)
            self.store.sign_out(servicer["id"], self.app.now(), choice or rules.PUT_BACK)
        return self.app.redirect(req, "console", queue_id=queue_id)

    def press(self, req, queue_id, button):
        """A console button for the signed-in servicer, then back to the console."""
        servicer = self.signed_in(req, queue_id)
        if servicer is not None:
            self.store.press(button, servicer, self.app.now())
        return self.app.redirect(req, "console", queue_id=queue_id)
