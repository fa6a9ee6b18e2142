"""Rate limits, kept in the database so that they hold across processes.

Each limit allows COUNT hits per PERIOD seconds to one subject: a client
address, a queue and an address. What is stored is an HMAC of the subject with
the app's secret, never an address. Takes are counted from the tickets
themselves, inside the statement that writes them (``Store.take_ticket``); the
other limits count rows of ``rate_limit_hits``.

The rules, as app.ini sets them:

- ``take_ticket``: numbers a browser takes in a queue; ``take_ticket_per_address``:
  numbers taken in a queue from one address, pages and API together (the API
  has no browser: only this one holds it).
- ``create_queue``: queues created from one address (only those created count);
  ``create_attempts``: every attempt, valid or not, against scripts.
- ``sign_in``: wrong passwords for one queue from one address. Once it is
  reached, that address may still try that queue, at ``sign_in_slowed``'s pace:
  the right password still gets in, and guessing goes on at that pace only
  (see ``Limits.sign_in``).
- ``token_take_ticket``: numbers taken in a queue with one bearer token of a
  servicer signed in to it (a kiosk, a script). Such a take counts against its
  token, not its address, so that the customers behind the kiosk's address do
  not hold it back (nor it them). Queue creation and sign-in stay per address:
  every queue created hands out a new token, and signing in needs none.
"""

import hashlib
import hmac
import typing

NAMES = (
    "create_queue",
    "create_attempts",
    "sign_in",
    "sign_in_slowed",
    "take_ticket",
    "take_ticket_per_address",
    "token_take_ticket",
)


class Rate(typing.NamedTuple):
    """At most ``count`` hits in any ``period`` seconds; a count of 0 is no limit."""

    count: int
    period: int


def parse_rate(text):
    """'10/hour', '5/minute', '30/60' (per seconds) or 'off' as a Rate."""
    text = str(text).strip().lower()
    if text in ("", "off", "0", "none"):
        return Rate(0, 1)
    count, _, per = text.partition("/")
    units = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
    try:
        rate = Rate(int(count), units.get(per.strip()) or int(per))
    except ValueError:
        raise ValueError(f"{text!r} is not COUNT/PERIOD") from None
    if rate.count < 0 or rate.period <= 0:
        raise ValueError(f"{text!r}: the count must not be negative, the period positive")
    return rate


def wait_text(seconds):
    """How long to wait, as people say it: '30 seconds', 'about 54 minutes'."""
    if seconds < 60:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = -(-seconds // 60)
    if minutes < 120:
        return "about 1 minute" if minutes == 1 else f"about {minutes} minutes"
    return f"about {-(-minutes // 60)} hours"


def rates(settings):
    """Every limit's Rate, from the ``rate_limit_<name>`` settings."""
    return {name: parse_rate(settings[f"rate_limit_{name}"]) for name in NAMES}


def take_limits(settings):
    """The limits Store.take_ticket holds takes to."""
    parsed = rates(settings)
    return {"browser": parsed["take_ticket"], "address": parsed["take_ticket_per_address"]}


class Limits:
    """The app's rate limits over its store."""

    def __init__(self, store, secret, rates):
        self.store = store
        self.rates = rates
        self._key = hashlib.sha256(b"take-a-number.limits:" + secret.encode()).digest()

    def subject(self, *parts):
        """What stands for a subject in the database: an HMAC, not the address."""
        text = "\x00".join(str(part) for part in parts)
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:32]

    def hit(self, name, *subject, now, always=False):
        """Count one hit; return ``(hit id, 0)``, or ``(None, seconds to wait)`` if over.

        With ``always``, the hit is counted even over the limit (its id comes with the wait).
        """
        rate = self.rates[name]
        if not rate.count:
            return None, 0
        key = f"{name}:{self.subject(*subject)}"
        return self.store.limit_hit(key, rate, now, always=always)

    def forget(self, hit_id):
        if hit_id is not None:
            self.store.limit_forget(hit_id)

    def counted_if_done(self, name, *subject, now, action):
        """Run ``action()`` if the limit allows one more; it counts only if it returns.

        Returns ``(what action returned, 0)`` or ``(None, seconds to wait)``.
        The hit is counted before ``action`` runs, so that two at once cannot
        both take the last one, and forgotten if it raises.
        """
        hit_id, wait = self.hit(name, *subject, now=now)
        if wait:
            return None, wait
        try:
            return action(), 0
        except BaseException:
            self.forget(hit_id)
            raise

    def sign_in(self, queue_id, address, check, now):
        """Brute-force protection of a queue's sign-in around ``check()``, the password check.

        Returns ``(what check returned, 0)``, or ``(None, seconds to wait)``
        without calling it. A falsy result is a failure. Failures are counted
        per queue and address, so guesses from elsewhere never hold the owner
        back. Each attempt is counted as a failure before it is checked (two
        at once cannot both take the last one) and forgotten if it succeeds.

        Over ``sign_in``, one attempt per ``sign_in_slowed`` period is still
        checked: the owner who shares an address with the guesser, or who
        mistyped too often, gets in after that wait. Those failures count too,
        so that guessing stays at that pace for as long as it goes on. A success
        does not clear the failures: an invited servicer's code must not buy
        another round of guesses at the owner's password.
        """
        failure, wait = self.hit("sign_in", queue_id, address, now=now)
        if wait:
            if not self.rates["sign_in_slowed"].count:
                return None, wait
            _paced, paced_wait = self.hit("sign_in_slowed", queue_id, address, now=now)
            if paced_wait:
                return None, min(wait, paced_wait)
            failure, _wait = self.hit("sign_in", queue_id, address, now=now, always=True)
        result = check()
        if result:
            self.forget(failure)
        return result, 0
