"""Passwords, signed session cookies, CSRF tokens and headers (rate limits: limits.py)."""

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading

from webob.cookies import SignedSerializer

from .cache import BoundedCache

PBKDF2_ITERATIONS = 600_000  # OWASP's figure for PBKDF2-HMAC-SHA256
SESSION_COOKIE = "tan_session"
# Session cookies whose signature was checked, kept (about 0.7 KiB each: 3.5 MiB).
VERIFIED_COOKIES = 5_000


def hash_password(password):
    """PBKDF2-SHA256 with a random salt, as ``pbkdf2_sha256$iterations$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(digest)}"


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


INVITATION_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


def new_invitation_code():
    """A servicer's invitation code, like 'K7P2-X9QM-4RTD' (60 bits): shown once, stored hashed."""
    letters = "".join(secrets.choice(INVITATION_CODE_ALPHABET) for _ in range(12))
    return f"{letters[:4]}-{letters[4:8]}-{letters[8:]}"


def invitation_code_hash(code):
    """How an invitation code is stored and looked up: case, spaces and dashes ignored."""
    return token_hash("".join(str(code).split()).replace("-", "").upper())


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
        super().__init__(data)
        self.changed = "csrf" not in data  # a new session, to be sent
        if self.changed:
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
        """Whether a form's token is this session's; any other text is simply wrong.

        Compared as bytes: compare_digest refuses text that is not ASCII.
        """
        if not token or not isinstance(token, str):
            return False
        return hmac.compare_digest(token.encode("utf-8", "replace"), self["csrf"].encode())


class SessionCookies:
    """Reads and writes the signed session cookie."""

    def __init__(self, secret, max_age):
        self.secret = secret
        self.max_age = max_age
        self._serializers = {}
        # Cookies whose signature was checked, by their exact text: a browser
        # sends the same cookie on every request.
        self._verified = BoundedCache(VERIFIED_COOKIES)

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
                self._verified.put(key, data)
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
