"""Whole answers to GETs, given again from memory while nothing in the store changed.

The protocol, all of it here: ``Answers.recall`` notes the store's generation
in the environ before the answer is made and gives a remembered answer made in
that same generation; a controller whose answer may be given again calls
``may_remember(req)``; ``Answers.keep`` then keeps it, for the generation
noted (read before the page was, so a change made meanwhile is never hidden).
"""

import collections
import time

from .cache import BoundedCache

# Whole answers kept, and for how long at most.
SIZE = 2_000
MAX_AGE = 5.0
# In the environ: the store's generation when the GET came in, and the flag.
_GENERATION = "take_a_number.generation"
_MAY_REMEMBER = "take_a_number.remember"


# A whole answer to a GET, valid for one generation of the store.
Remembered = collections.namedtuple("Remembered", "generation expires status headers body")


def may_remember(req):
    """Say that the whole answer to this GET may be given again while nothing changes.

    Only for an answer that depends on nothing but the request's address,
    host, scheme and cookies, and on the database.
    """
    req.environ[_MAY_REMEMBER] = True


class Answers:
    """The answers remembered by one application, by :func:`_key`."""

    def __init__(self, store):
        self.store = store
        self.kept = BoundedCache(SIZE)

    def recall(self, environ):
        """The ``Remembered`` answer to this GET, or None (then it is made, and maybe kept)."""
        generation = environ[_GENERATION] = self.store.generation()
        remembered = self.kept.get(_key(environ))
        if remembered is None or remembered.generation != generation:
            return None
        return remembered if remembered.expires > time.monotonic() else None

    def keep(self, req, response):
        """Keep the answer to a GET that ``may_remember``, for the generation recalled.

        Only a 200 that sets no cookie: a Set-Cookie would hand one browser's
        session to another.
        """
        environ = req.environ
        if not environ.get(_MAY_REMEMBER) or _GENERATION not in environ:
            return
        if response.status_int != 200 or "Set-Cookie" in response.headers:
            return
        # Answers of an older generation are never given again.
        self.kept.only_for(environ[_GENERATION])
        self.kept.put(
            _key(environ),
            Remembered(
                environ[_GENERATION],
                time.monotonic() + MAX_AGE,
                response.status,
                tuple(response.headerlist),
                response.body,
            ),
        )


def _key(environ):
    """Everything a remembered answer depends on besides the database."""
    return (
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
        environ.get("HTTP_HOST", ""),
        environ.get("wsgi.url_scheme", ""),
        environ.get("HTTP_COOKIE", ""),
    )
