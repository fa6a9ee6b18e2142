"""Rate-limit hits: a row per hit until it expires, so limits hold across processes."""

import math

# How often each process deletes rate-limit hits that have expired, and forgets
# the address hashes of tickets older than the per-address take period.
PRUNE_SECONDS = 60


def whole_seconds(seconds):
    """A wait as a Retry-After gives it: whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


class RateLimits:
    """Store methods for rate-limit hits (mixed into Store; needs ``self.engine``,
    ``self.take_limits`` and ``self._pruned_at``)."""

    def limit_hit(self, key, rate, now, always=False):
        """Count a hit of ``key`` if fewer than ``rate`` = (count, seconds) are counted.

        Returns ``(hit id, 0)``, or ``(None, seconds to wait)`` when the limit
        is reached; with ``always``, the hit is counted either way (and its id
        given with the wait). Hits expire ``seconds`` after they are counted.
        """
        count, period = rate
        self.prune_limits(now)
        with self.engine.immediate(f"rate:{key}", shown=False) as db:
            row = db.execute(
                "SELECT expires FROM rate_limit_hits WHERE key = ? AND expires > ? "
                "ORDER BY expires DESC LIMIT 1 OFFSET ?",
                (key, now, count - 1),
            ).fetchone()
            wait = whole_seconds(row[0] - now) if row is not None else 0
            hit_id = None
            if always or not wait:
                hit_id = db.execute(
                    "INSERT INTO rate_limit_hits (key, expires) VALUES (?, ?) RETURNING id",
                    (key, now + period),
                ).fetchone()[0]
        return hit_id, wait

    def limit_forget(self, hit_id):
        """Un-count a hit (what it counted did not happen after all)."""
        with self.engine.immediate(shown=False) as db:
            db.execute("DELETE FROM rate_limit_hits WHERE id = ?", (hit_id,))

    def prune_limits(self, now):
        """Delete expired hits, and forget the addresses of tickets that no longer count.

        At most once per PRUNE_SECONDS in each process, by whichever caller comes.
        """
        if now - self._pruned_at < PRUNE_SECONDS:
            return
        self._pruned_at = now
        _count, period = self.take_limits["address"]
        with self.engine.immediate(shown=False) as db:
            db.execute("DELETE FROM rate_limit_hits WHERE expires <= ?", (now,))
            db.execute(
                "UPDATE tickets SET address = NULL WHERE address IS NOT NULL AND taken_at <= ?",
                (now - period,),
            )
