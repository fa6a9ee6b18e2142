"""Servicers: signing in and out, invitations, revoking, idle desks, API tokens."""

from .. import rules
from .errors import InvitationRefused, NameInUse
from .events import record

# A servicer's last_seen_at is written at most this often (Store.seen).
SEEN_EVERY_SECONDS = 60


class Servicers:
    """Store methods about servicers and their invitations (mixed into Store; needs
    ``self.engine`` and ``self.servicer_idle_seconds``)."""

    # -- signing in ------------------------------------------------------------------

    def sign_in(self, queue_id, name, now, is_owner=False):
        """Sign a servicer in by name; the same name (any case) and role resumes an active one.

        The owner signs in so, with the queue's password; invited servicers
        through sign_in_invited. Raises NameInUse when another kind of servicer
        is signed in under that name: nobody can resume the owner's desk.
        """
        with self.engine.immediate(queue_id) as db:
            row = self._active_by_name(queue_id, name)
            if row is not None:
                if bool(row["is_owner"]) != is_owner or row["invitation_id"] is not None:
                    raise NameInUse(name)
                return row
            return self._new_servicer(db, queue_id, name, now, is_owner=is_owner)

    def sign_in_invited(self, queue_id, code_hash, now):
        """Sign in the servicer an invitation was made for, on this device too.

        While one is signed in with the invitation, another device resumes the
        same desk. Raises InvitationRefused (revoked, expired, unknown) or
        NameInUse (someone else took the invitation's name meanwhile).
        """
        with self.engine.immediate(queue_id) as db:
            invitation = self.invitation_by_code(queue_id, code_hash)
            refusal = rules.invitation_refusal(invitation, now)
            if refusal:
                raise InvitationRefused(refusal)
            signed_in = self._signed_in_with(invitation["id"])
            if signed_in:
                return signed_in[0]
            if self._active_by_name(queue_id, invitation["name"]) is not None:
                raise NameInUse(invitation["name"])
            return self._new_servicer(
                db, queue_id, invitation["name"], now, invitation_id=invitation["id"]
            )

    def _signed_in_with(self, invitation_id):
        """The servicers signed in with this invitation, oldest first."""
        return self.engine.rows(
            "SELECT * FROM servicers WHERE invitation_id = ? AND signed_out_at IS NULL ORDER BY id",
            (invitation_id,),
        )

    def _active_by_name(self, queue_id, name):
        return self.engine.row(
            "SELECT * FROM servicers WHERE queue_id = ? AND signed_out_at IS NULL "
            "AND lower(name) = lower(?) ORDER BY id LIMIT 1",
            (queue_id, name),
        )

    def _new_servicer(self, db, queue_id, name, now, is_owner=False, invitation_id=None):
        servicer_id = db.execute(
            "INSERT INTO servicers "
            "(queue_id, name, signed_in_at, is_owner, invitation_id, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (queue_id, name, now, int(is_owner), invitation_id, now),
        ).fetchone()[0]
        record(db, queue_id, "sign_in", now, servicer_id=servicer_id)
        return self.get_servicer(servicer_id)

    # -- reading them --------------------------------------------------------------------

    def get_servicer(self, servicer_id):
        return self.engine.row("SELECT * FROM servicers WHERE id = ?", (servicer_id,))

    def active_servicer(self, queue_id, servicer_id):
        """The servicer if still signed in to this queue, else None."""
        return self.engine.row(
            "SELECT * FROM servicers WHERE id = ? AND queue_id = ? AND signed_out_at IS NULL",
            (servicer_id, queue_id),
        )

    def servicer_of_queue(self, queue_id, servicer_id):
        """The servicer of this queue, signed in or not (to say why they left), or None."""
        return self.engine.row(
            "SELECT * FROM servicers WHERE id = ? AND queue_id = ?", (servicer_id, queue_id)
        )

    def active_servicers(self, queue_id):
        return self.engine.rows(
            "SELECT * FROM servicers WHERE queue_id = ? AND signed_out_at IS NULL ORDER BY id",
            (queue_id,),
        )

    # -- leaving -------------------------------------------------------------------------

    def sign_out(self, servicer_id, now, choice=rules.PUT_BACK):
        """Sign out; the customer they called goes back to the front unless ``choice`` is FINISH.

        Their sessions and API tokens stop working at once: both are checked
        against ``signed_out_at`` on every request.
        """
        servicer = self.get_servicer(servicer_id)
        if servicer is None:
            return
        with self.engine.immediate(servicer["queue_id"]) as db:
            servicer = self.get_servicer(servicer_id)  # as it is now
            self._leave(db, servicer, now, rules.SIGNED_OUT, choice)

    def _leave(self, db, servicer, now, reason, choice=rules.PUT_BACK):
        """The servicer leaves their desk (rules.customer_of_leaving_servicer); True if they did."""
        if servicer["signed_out_at"] is not None:
            return False
        ticket = self.current_ticket(servicer["id"])
        if ticket is not None:
            if rules.customer_of_leaving_servicer(choice) == rules.SERVED:
                self._set_state(db, ticket, rules.SERVED, now)
            else:
                self._put_back_at_the_front(db, ticket, now)
        db.execute(
            "UPDATE servicers SET signed_out_at = ?, left_reason = ? WHERE id = ?",
            (now, reason, servicer["id"]),
        )
        record(db, servicer["queue_id"], "sign_out", now, servicer_id=servicer["id"])
        return True

    def revoke_servicer(self, queue_id, servicer_id, now):
        """The owner revokes a servicer: signed out, their invitation dead. True if found."""
        with self.engine.immediate(queue_id) as db:
            servicer = self.active_servicer(queue_id, servicer_id)
            if servicer is None:
                return False
            if servicer["invitation_id"] is not None:
                self._revoke_invitation(db, queue_id, servicer["invitation_id"], now)
            else:
                self._leave(db, servicer, now, rules.REVOKED)
        return True

    def seen(self, servicer, now, every=SEEN_EVERY_SECONDS):
        """The servicer's console is open or they pressed a button: not idle.

        Written at most once per ``every`` seconds per servicer, so that
        the console's live updates cost no write each time. Changes no page.
        """
        if servicer["last_seen_at"] is not None and now - servicer["last_seen_at"] < every:
            return
        self.engine.write_statement(
            "UPDATE servicers SET last_seen_at = ? WHERE id = ?", (now, servicer["id"])
        )

    def release_idle_desks(self, queue_id, now):
        """Sign out the queue's servicers idle for servicer_idle_seconds (rules.is_idle).

        Their customers go back to the front of the line. Returns how many.
        """
        idle = self.servicer_idle_seconds
        if not idle or not self.engine.scalar(
            "SELECT count(*) FROM servicers WHERE queue_id = ? AND signed_out_at IS NULL "
            "AND coalesce(last_seen_at, signed_in_at) <= ?",
            (queue_id, now - idle),
        ):
            return 0
        released = 0
        with self.engine.immediate(queue_id) as db:
            for servicer in self.active_servicers(queue_id):
                if rules.is_idle(servicer, now, idle):
                    released += self._leave(db, servicer, now, rules.IDLE)
        return released

    # -- invitations ---------------------------------------------------------------------

    def create_invitation(self, queue_id, name, code_hash, now, expires_at=None):
        """A personal invitation for the servicer ``name``; return it.

        Raises NameInUse when a live invitation of the queue has that name.
        """
        with self.engine.immediate(queue_id) as db:
            if self.engine.row(
                "SELECT id FROM invitations WHERE queue_id = ? AND revoked_at IS NULL "
                "AND (expires_at IS NULL OR expires_at > ?) AND lower(name) = lower(?)",
                (queue_id, now, name),
            ):
                raise NameInUse(name)
            invitation_id = db.execute(
                "INSERT INTO invitations (queue_id, name, code_hash, created_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (queue_id, name, code_hash, now, expires_at),
            ).fetchone()[0]
            record(db, queue_id, "invite", now, moves_version=False)
        return self.engine.row("SELECT * FROM invitations WHERE id = ?", (invitation_id,))

    def invitation_by_code(self, queue_id, code_hash):
        return self.engine.row(
            "SELECT * FROM invitations WHERE code_hash = ? AND queue_id = ?",
            (code_hash, queue_id),
        )

    def invitations(self, queue_id):
        """The queue's invitations not revoked, oldest first, with ``signed_in`` (0 or 1)."""
        return self.engine.rows(
            "SELECT i.*, CASE WHEN EXISTS (SELECT 1 FROM servicers s "
            "WHERE s.invitation_id = i.id AND s.signed_out_at IS NULL) THEN 1 ELSE 0 END "
            "AS signed_in FROM invitations i "
            "WHERE i.queue_id = ? AND i.revoked_at IS NULL ORDER BY i.id",
            (queue_id,),
        )

    def revoke_invitation(self, queue_id, invitation_id, now):
        """The owner revokes an invitation and whoever it signed in. True if it was live."""
        with self.engine.immediate(queue_id) as db:
            return self._revoke_invitation(db, queue_id, invitation_id, now)

    def _revoke_invitation(self, db, queue_id, invitation_id, now):
        revoked = db.execute(
            "UPDATE invitations SET revoked_at = ? "
            "WHERE id = ? AND queue_id = ? AND revoked_at IS NULL",
            (now, invitation_id, queue_id),
        ).rowcount
        for servicer in self._signed_in_with(invitation_id):
            self._leave(db, servicer, now, rules.REVOKED)
        if revoked:
            record(db, queue_id, "revoke", now)
        return bool(revoked)

    # -- API tokens ----------------------------------------------------------------------

    def add_api_token(self, servicer_id, token_hash, now):
        with self.engine.immediate(shown=False) as db:  # no page shows it
            db.execute(
                "INSERT INTO api_tokens (token_hash, servicer_id, created_at) VALUES (?, ?, ?)",
                (token_hash, servicer_id, now),
            )

    def servicer_of_api_token(self, token_hash):
        """The servicer a bearer token acts as, signed in or not (``signed_out_at``), or None.

        A token is good while its servicer is signed in; once they sign out
        or are revoked it never works again (left_reason says why).
        """
        return self.engine.row(
            "SELECT s.* FROM api_tokens a JOIN servicers s ON s.id = a.servicer_id "
            "WHERE a.token_hash = ?",
            (token_hash,),
        )
