"""Cross-origin use of the JSON API (CORS): off unless ``cors_allowed_origins`` names origins.

Only the API's answers ever carry CORS headers, never a page's or a static file's: the
pages act on cookies, which another site must not be able to use. The API acts on bearer
tokens, so credentials are never allowed across origins (no
``Access-Control-Allow-Credentials``): a browser on another site sends no cookie with its
requests, and the token is the script's own.

With origins configured, an API answer to an allowed ``Origin`` says so
(``Access-Control-Allow-Origin``, and ``Vary: Origin`` unless any origin is allowed), and
a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) to an API
address is answered 204 with the methods that address takes, the headers a request may send
and how long the browser may keep the answer. Any other ``OPTIONS`` (no CORS configured, an
origin not allowed, no preflight, a page) is answered as before: 405 with ``Allow``.
"""

import re

from webob import Response

# The headers a request from another origin may send, and those its script may read.
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")
EXPOSED_HEADERS = ("Location", "Retry-After")
# Seconds a browser may keep a preflight's answer (Chromium keeps it 2 hours at most).
MAX_AGE = 600
ANY = "*"
# scheme://host[:port], as a browser sends it in Origin: no path, no user.
ORIGIN_PATTERN = re.compile(r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:[0-9]{1,5})?")


def parse_origins(text):
    """``cors_allowed_origins`` (origins apart by spaces or commas, or ``*``) as a frozenset.

    Raises ValueError for an entry that is not an origin (a path, ``null``, no scheme).
    """
    origins = set()
    for entry in re.split(r"[\s,]+", str(text).strip().lower()):
        origin = entry.removesuffix("/")
        if not origin:
            continue
        if origin != ANY and not ORIGIN_PATTERN.fullmatch(origin):
            raise ValueError(f"{entry!r} is not an origin: write scheme://host[:port], or *")
        origins.add(origin)
    return frozenset(origins)


class Cors:
    """The CORS of one application: the origins its API answers across."""

    def __init__(self, origins):
        self.origins = origins
        self.vary = [] if ANY in origins else [("Vary", "Origin")]

    def allowed_origin(self, req):
        """What Access-Control-Allow-Origin says to this request: its origin, ``*``, or None."""
        origin = req.headers.get("Origin")
        if not origin or not self.origins:
            return None
        if ANY in self.origins:
            return ANY
        return origin if origin.lower() in self.origins else None

    def headers(self, req):
        """The CORS headers of an API answer to ``req``, as (name, value) pairs."""
        if not self.origins:
            return []
        origin = self.allowed_origin(req)
        if origin is None:
            return self.vary
        expose = ("Access-Control-Expose-Headers", ", ".join(EXPOSED_HEADERS))
        return [*self.vary, ("Access-Control-Allow-Origin", origin), expose]

    def preflight(self, req, methods):
        """The 204 to an allowed origin's preflight of an API address taking ``methods``;
        None for any other OPTIONS (then it is answered as without CORS)."""
        if self.allowed_origin(req) is None or "Access-Control-Request-Method" not in req.headers:
            return None
        response = Response(status=204)
        del response.content_type
        response.allow = methods
        response.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
        response.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOWED_HEADERS)
        response.headers["Access-Control-Max-Age"] = str(MAX_AGE)
        return response
