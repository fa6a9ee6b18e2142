"""Two reference apps that take numbers, for benchmarks/run.py's floor scenarios.

    python benchmarks/floors.py store|webob CONFIG.ini DATABASE

Each is served by waitress with CONFIG's ``[server:main]`` through PasteDeploy,
as hello.py and ``take-a-number serve`` are, and answers ``POST /<queue>/take``
by writing a ticket with the app's own ``Store.take_ticket`` (group commit, the
real SQLite file) and a 303 that sets the ticket cookie. They show how fast a
take can be on this stack before any of the app's own work:

* store: a bare WSGI callable around the store's write. Nothing else.
* webob: what every page of the app is built on, as the issue's design card
  asks: ``webob.dec.wsgify`` with the app's Request class, the app's Routes
  mapper matching the path, the urlencoded form and the cookies read, and a
  WebOb Response setting the ticket cookie. The session cookie is read but its
  signature is not checked, and there is no CSRF check, rate limit, security
  header or URL generation: those are the app's own.

Every other request (run.py's readiness check) gets a plain 200.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from take_a_number import routing  # noqa: E402
from take_a_number.request import Request  # noqa: E402
from take_a_number.security import new_token  # noqa: E402
from take_a_number.store import Store  # noqa: E402

HELLO = b"Hello, World!\n"
TICKET_COOKIE_MAX_AGE = 86400


def _queue_of(path):
    """``/<queue>/take`` -> queue id, else None."""
    parts = path.strip("/").split("/")
    return parts[0] if len(parts) == 2 and parts[1] == "take" else None


def _take(store, queue_id):
    token = new_token()
    try:
        # The token doubles as the browser: every request is a new browser.
        return store.take_ticket(queue_id, token, time.time(), browser=token)
    finally:
        store.release()


def store_app(store):
    """The store's write and nothing else."""

    def application(environ, start_response):
        queue_id = _queue_of(environ.get("PATH_INFO", ""))
        if environ["REQUEST_METHOD"] != "POST" or queue_id is None:
            start_response("200 OK", [("Content-Length", str(len(HELLO)))])
            return [HELLO]
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        token = _take(store, queue_id)["token"]
        host = environ.get("HTTP_HOST", "localhost")
        start_response(
            "303 See Other",
            [
                ("Location", f"http://{host}/{queue_id}/ticket/{token}"),
                (
                    "Set-Cookie",
                    f"tan_ticket_{queue_id}={token}; Max-Age={TICKET_COOKIE_MAX_AGE}; "
                    "Path=/; HttpOnly; SameSite=Lax",
                ),
                ("Content-Length", "0"),
            ],
        )
        return [b""]

    return application


def webob_app(store):
    """The store's write inside the parts every page of the app is made of."""
    from webob import Response
    from webob.dec import wsgify

    mapper = routing.make_mapper()

    @wsgify(RequestClass=Request)
    def application(req):
        match = mapper.routematch(environ=req.environ)
        args = match[0] if match else {}
        if (args.get("controller"), args.get("action")) != ("customer", "take"):
            return Response(HELLO, content_type="text/plain")
        queue_id = args["queue_id"]
        req.cookies.get("tan_session")
        req.POST.get("csrf_token")
        token = _take(store, queue_id)["token"]
        location = f"{req.host_url}{req.script_name}/{queue_id}/ticket/{token}"
        response = Response(
            f"See Other: {location}",
            status=303,
            location=location,
            content_type="text/plain",
            charset="utf-8",
        )
        response.set_cookie(
            f"tan_ticket_{queue_id}",
            token,
            max_age=TICKET_COOKIE_MAX_AGE,
            path=req.script_name or "/",
            httponly=True,
            samesite="lax",
        )
        return response

    return application


APPS = {"store": store_app, "webob": webob_app}


def main(argv):
    if len(argv) != 4 or argv[1] not in APPS:
        raise SystemExit("usage: python benchmarks/floors.py store|webob CONFIG.ini DATABASE")
    from paste.deploy import loadserver

    store = Store(argv[3])
    store.migrate()
    server = loadserver("config:" + os.path.abspath(argv[2]))
    server(APPS[argv[1]](store))


if __name__ == "__main__":
    main(sys.argv)
