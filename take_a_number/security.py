"""Passwords, signed session cookies, CSRF tokens, rate limits and headers."""

import base64
import collections
import hashlib
import hmac
import json
import os
import secrets
import threading

from webob.cookies import SignedSerializer

PBKDF2_ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256
SESSION_COOKIE = "tan_session"
# Session cookies whose signature was checked, kept (about 0.7 KiB each: 3.5 MiB).
VERIFIED_COOKIES = 5_000


def hash_password(password):
    """PBKDF2-SHA256 with a random salt, as ``pbkdf2_sha256$iterations$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
    return "$".join(
        ["pbkdf2_sha256", str(PBKDF2_ITERATIONS), _b64(salt), _b64(digest)],
    )


def verify_password(password, stored):
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    actual = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(iterations))
    return hmac.compare_digest(actual, _unb64(digest))


def _b64(raw):
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_token():
    """A random, unguessable token for tickets, sessions and CSRF.

    The operating system's random bytes are read 64 tokens at a time, per
    thread: each read is a system call, during which another thread takes the
    GIL, and getting it back costs more than the read. A process started by
    fork() reads its own (the pool remembers whose it is).
    """
    pool = _tokens.__dict__.setdefault("pool", [])
    if not pool or _tokens.pid != os.getpid():
        _tokens.pid = os.getpid()
        random = secrets.token_bytes(TOKEN_BYTES * TOKENS_PER_READ)
        pool[:] = [
            base64.urlsafe_b64encode(random[i : i + TOKEN_BYTES]).decode("ascii")
            for i in range(0, len(random), TOKEN_BYTES)
        ]
    return pool.pop()


TOKEN_BYTES = 24  # 32 characters, none of them padding
TOKENS_PER_READ = 64
_tokens = threading.local()


STAFF_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


def new_staff_code():
    """A code the owner hands to staff, like 'K7P2-X9QM' (40 bits)."""
    letters = "".join(secrets.choice(STAFF_CODE_ALPHABET) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def staff_code_matches(given, staff_code):
    """Compare codes ignoring case, spaces and dashes, in constant time."""
    if not staff_code:
        return False

    def normal(code):
        return "".join(code.split()).replace("-", "").upper()

    return hmac.compare_digest(normal(given).encode(), normal(staff_code).encode())


def sign_in_role(queue, secret):
    """Who the queue's password or staff code makes you: 'owner', 'staff', or None."""
    if verify_password(secret, queue["password_hash"]):
        return "owner"
    if staff_code_matches(secret, queue["staff_code"]):
        return "staff"
    return None


def token_hash(token):
    """How a bearer token is stored: its SHA-256, so a stolen database holds no tokens."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(request):
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def browser_key(session):
    """A stable, non-secret name for a browser: a hash of its session's CSRF token."""
    return hashlib.sha256(session["csrf"].encode()).hexdigest()[:32]


def load_secret(secret, secret_file):
    """The configured secret, else the one in ``secret_file``, made on first start."""
    if secret:
        return secret
    os.makedirs(os.path.dirname(os.path.abspath(secret_file)), exist_ok=True)
    try:
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    # Another process may have created it a moment ago: wait for its content.
    for _ in range(100):
        with open(secret_file) as f:
            value = f.read().strip()
        if value:
            return value
        threading.Event().wait(0.01)
    raise RuntimeError(f"secret file {secret_file} is empty")


class Session(dict):
    """A browser's session, kept in a signed cookie.

    ``csrf`` is the browser's CSRF token (and its identity for rate limits);
    ``servicers`` maps queue id to the servicer this browser is signed in as.
    """

    def __init__(self, data=None):
        data = data or {}
        self.is_new = "csrf" not in data
        super().__init__(data)
        self.changed = self.is_new
        if self.is_new:
            self["csrf"] = new_token()
            self["servicers"] = {}

    def servicer_id(self, queue_id):
        return self["servicers"].get(queue_id)

    def sign_in(self, queue_id, servicer_id):
        self["servicers"][queue_id] = servicer_id
        self.changed = True

    def sign_out(self, queue_id):
        self["servicers"].pop(queue_id, None)
        self.changed = True

    def csrf_ok(self, token):
        return bool(token) and hmac.compare_digest(str(token), self["csrf"])


class SessionCookies:
    """Reads and writes the signed session cookie."""

    def __init__(self, secret, max_age):
        self.secret = secret
        self.max_age = max_age
        self._serializers = {}
        # Cookies whose signature was checked, by their exact text: a browser
        # sends the same cookie on every request.
        self._verified = {}

    def serializer(self, request):
        """Signs for one mount path: a session made under /a is refused under /b."""
        serializer = self._serializers.get(request.script_name)
        if serializer is None:
            serializer = self._serializers[request.script_name] = SignedSerializer(
                self.secret,
                salt="take-a-number.session:" + request.script_name,
                hashalg="sha512",
                serializer=_Json(),
            )
        return serializer

    def load(self, request):
        raw = request.cookies.get(SESSION_COOKIE)
        key = (request.script_name, raw)
        data = self._verified.get(key) if raw else None
        if raw and data is None:
            try:
                data = self.serializer(request).loads(raw.encode("ascii"))
            except (ValueError, UnicodeError):
                data = None
            if isinstance(data, dict) and isinstance(data.get("servicers"), dict):
                if len(self._verified) >= VERIFIED_COOKIES:
                    self._verified.clear()
                self._verified[key] = data
            else:
                data = None
        if data is None:
            return Session()
        return Session(dict(data, servicers=dict(data["servicers"])))

    def save(self, request, response, session):
        if session.changed:
            response.set_cookie(
                SESSION_COOKIE,
                self.serializer(request).dumps(dict(session)).decode("ascii"),
                max_age=self.max_age,
                **cookie_options(request),
            )


class _Json:
    def dumps(self, value):
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(self, raw):
        return json.loads(raw)


def cookie_options(request):
    """Cookies are scoped to where the app is mounted, and Secure over https."""
    return {
        "path": request.script_name or "/",
        "httponly": True,
        "samesite": "lax",
        "secure": request.scheme == "https",
    }


class RateLimiter:
    """At most ``limit`` hits per key in any ``period`` seconds, in this process."""

    def __init__(self, limit, period):
        self.limit = limit
        self.period = period
        self._hits = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def hit(self, key, now):
        """Record a hit; return 0 if allowed, else the seconds until one is."""
        if not self.limit:
            return 0
        with self._lock:
            hits = self._hits[key]
            while hits and hits[0] <= now - self.period:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, int(hits[0] + self.period - now) + 1)
            hits.append(now)
            if len(self._hits) > 10_000:
                self._forget_idle(now)
            return 0

    def _forget_idle(self, now):
        for key in [k for k, hits in self._hits.items() if hits[-1] <= now - self.period]:
            del self._hits[key]


def parse_rate(text):
    """'10/hour', '5/minute', '30/60' (per seconds) or 'off' as (limit, seconds)."""
    text = str(text).strip().lower()
    if text in ("", "off", "0", "none"):
        return 0, 1
    count, _, per = text.partition("/")
    units = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
    period = units.get(per.strip()) or int(per)
    return int(count), period


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


_HEADERS = [
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Ticket links carry their token: never leak them in a Referer.
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
]
_HTTPS_HEADERS = [*_HEADERS, ("Strict-Transport-Security", "max-age=31536000")]


def security_headers(request):
    """The headers every response gets, as (name, value) pairs."""
    return _HTTPS_HEADERS if request.scheme == "https" else _HEADERS
