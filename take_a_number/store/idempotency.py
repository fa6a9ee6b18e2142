"""Idempotency keys: the answer to an API POST, kept so that a retry gets it again."""


class IdempotencyKeys:
    """Store methods for the answers kept under idempotency keys (mixed into Store;
    needs ``self.engine``). A row is claimed before its request acts and holds no
    answer (``status`` NULL) until the request is answered."""

    def claim_idempotency_key(self, key_hash, request_hash, now, kept_seconds, abandoned_seconds):
        """Claim ``key_hash`` for a request, or say what became of it.

        Returns ``(claim id, None)`` when the request may act (a new key, or one
        whose claim was abandoned ``abandoned_seconds`` ago without an answer:
        its process died), else ``(None, row)``: the row of the key, with
        ``request_hash``, ``created_at``, and ``status`` (None while the first
        request is still acting), ``headers`` and ``body``. Keys older than
        ``kept_seconds`` are deleted on the way, in the same transaction: an
        index on ``created_at`` makes that cheap.
        """
        with self.engine.immediate(f"idempotency:{key_hash}", shown=False) as db:
            db.execute("DELETE FROM idempotency_keys WHERE created_at <= ?", (now - kept_seconds,))
            row = self.engine.row(
                "SELECT request_hash, created_at, status, headers, body FROM idempotency_keys "
                "WHERE key_hash = ?",
                (key_hash,),
            )
            abandoned = (
                row is not None
                and row["status"] is None
                and (now - row["created_at"] >= abandoned_seconds)
            )
            if row is not None and not abandoned:
                return None, row
            # A new row, with a new id: an abandoned claim's request, if it
            # comes back after all, keeps no answer under this one.
            db.execute("DELETE FROM idempotency_keys WHERE key_hash = ?", (key_hash,))
            claim_id = db.execute(
                "INSERT INTO idempotency_keys (key_hash, request_hash, created_at) "
                "VALUES (?, ?, ?) RETURNING id",
                (key_hash, request_hash, now),
            ).fetchone()[0]
        return claim_id, None

    def keep_idempotent_answer(self, claim_id, status, headers, body):
        """Keep the answer of the request that claimed ``claim_id`` (headers as JSON text)."""
        with self.engine.immediate(shown=False) as db:  # no page shows it
            db.execute(
                "UPDATE idempotency_keys SET status = ?, headers = ?, body = ? "
                "WHERE id = ? AND status IS NULL",
                (status, headers, body, claim_id),
            )

    def release_idempotency_key(self, claim_id):
        """Forget a claim whose request kept no answer (a 5xx, a 429): a retry acts again."""
        with self.engine.immediate(shown=False) as db:
            db.execute("DELETE FROM idempotency_keys WHERE id = ?", (claim_id,))
