"""Idempotency-Key: a retried API POST gets its first answer again instead of acting twice.

A client sends ``Idempotency-Key: <a text of its own, unique per request>``
(a UUID) with a POST. The first request with the key acts, and its answer
(status, headers, body) is kept in the database, so that every process, and a
restarted one, knows it, for KEPT_SECONDS. A request with the same key, path,
credentials and body gets that answer again, marked ``Idempotent-Replayed:
true``, without acting; with another body it is refused (409
``idempotency_key_reused``). While the first request is still acting, another
with its key gets 409 ``in_progress`` with ``Retry-After``.

Every answer is kept, refusals (4xx) too, as Stripe does, except a 5xx or a
429: those say "try again", and the retry then acts. A key is scoped by the
credentials (the Authorization header; without one, the client's address) and
the path, and kept only as an HMAC of them all: one client never gets another's
answer.
"""

import contextlib
import hashlib
import json

from webob import Response

HEADER = "Idempotency-Key"
KEPT_SECONDS = 24 * 3600
# A key claimed this long ago without an answer was abandoned (its process
# died while acting): a request with it acts again.
ABANDONED_SECONDS = 60
# What a request that finds its key still in progress is told to wait.
IN_PROGRESS_RETRY_AFTER = 1
MAX_KEY_LENGTH = 255
# The headers never given again with a kept answer.
NOT_KEPT = frozenset({"content-length", "set-cookie"})

KEY_REUSED = (
    "This Idempotency-Key came before with another request body. Send a new key with a new "
    "request; the same key only with the same request, to retry it."
)
IN_PROGRESS = (
    "A request with this Idempotency-Key is still being answered; ask again in a moment "
    "for its answer."
)


def key_problem(key):
    """Why an Idempotency-Key's value cannot be used, or None."""
    if not key.strip():
        return "The Idempotency-Key is empty: send a text unique to this request, such as a UUID."
    if len(key) > MAX_KEY_LENGTH:
        return f"The Idempotency-Key has more than {MAX_KEY_LENGTH} characters."
    if not key.isascii() or not key.isprintable():
        return "The Idempotency-Key must be printable ASCII, such as a UUID."
    return None


def fingerprint(req):
    """What makes two requests with one key the same: content type, query and body.

    A JSON body counts as the value it holds, so that its spacing and the order
    of its fields do not matter; any other body byte for byte.
    """
    body = req.body
    if req.content_type == "application/json":
        # An unreadable one (its answer is a 400) counts byte for byte.
        with contextlib.suppress(ValueError, RecursionError):
            body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256()
    for part in (req.content_type, req.query_string):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    digest.update(body)
    return digest.hexdigest()


def credentials(req):
    """Whose request it is: its Authorization header, or without one the client's address."""
    return req.headers.get("Authorization") or f"address {req.remote_addr}"


class IdempotentPosts:
    """Answers API POSTs once per Idempotency-Key (``answer``), over the app's store."""

    def __init__(self, app):
        self.app = app
        self.store = app.store

    def answer(self, req, respond):
        """``respond()``'s answer to an API request; for a POST with a key, given once."""
        key = req.headers.get(HEADER)
        if req.method != "POST" or key is None:
            return respond()
        problem = key_problem(key)
        if problem:
            return self.app.bad_request(req, problem)
        key_hash = self.app.limits.subject("idempotency", credentials(req), req.path, key)
        request_hash = fingerprint(req)
        claim_id, kept = self.store.claim_idempotency_key(
            key_hash, request_hash, self.app.now(), KEPT_SECONDS, ABANDONED_SECONDS
        )
        if kept is not None:
            return self._kept(req, kept, request_hash)
        try:
            response = respond()
        except BaseException:
            self.store.release_idempotency_key(claim_id)
            raise
        if response.status_code >= 500 or response.status_code == 429:
            self.store.release_idempotency_key(claim_id)
        else:
            headers = [[k, v] for k, v in response.headerlist if k.lower() not in NOT_KEPT]
            self.store.keep_idempotent_answer(
                claim_id, response.status_code, json.dumps(headers), response.body
            )
        return response

    def _kept(self, req, kept, request_hash):
        """The answer kept under a key; or 409, for another body or one not answered yet."""
        if kept["request_hash"] != request_hash:
            return self.app.json_error(req, 409, "idempotency_key_reused", KEY_REUSED)
        if kept["status"] is None:
            response = self.app.json_error(req, 409, "in_progress", IN_PROGRESS)
            response.retry_after = IN_PROGRESS_RETRY_AFTER
            return response
        response = Response(
            status=kept["status"],
            headerlist=[(k, v) for k, v in json.loads(kept["headers"])],
            body=kept["body"],
        )
        response.headers["Idempotent-Replayed"] = "true"
        return response
