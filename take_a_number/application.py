"""The configured WSGI application: one request in, one response out."""

import functools
import itertools
import logging
import time
import weakref

from webob import Response, exc
from webob.dec import wsgify

from . import (
    actions,
    answers,
    api,
    board,
    cors,
    customer,
    forms,
    idempotency,
    limits,
    mounts,
    owner,
    push,
    routing,
    security,
    servicer,
    templating,
    urls,
    views,
)
from .cache import BoundedCache
from .request import Request, UnreadableForm
from .static_files import StaticFiles

log = logging.getLogger(__name__)
# A 503's Retry-After, while the database cannot be reached.
UNAVAILABLE_RETRY_SECONDS = 2

# Rendered pages kept (Application.render's cache_key): a few MiB at most.
PAGE_CACHE_SIZE = 2_000

# Every app built in this process (a composite ini builds several).
LIVE = weakref.WeakSet()
# Numbers the apps in the order they are built: the same in every serve worker.
BUILT = itertools.count()


def stop_holding():
    """Answer at once the held live updates of every app of this process (a
    stopping serve worker); returns a function: whether any is still held."""
    hubs = [app.updates.hub for app in list(LIVE)]
    for hub in hubs:
        hub.close()
    return lambda: any(hub.holding() for hub in hubs)


class Application:
    """Take A Number, configured: routes, templates, store, sessions and limits."""

    def __init__(self, store, secret, settings, template_dir, static_dir):
        self.store = store
        self.snapshots = views.Snapshots(store)
        self.settings = settings
        self.mapper = routing.make_mapper()
        self.url_cache = BoundedCache(urls.URL_CACHE_SIZE)  # see urls.Urls
        self.url_paths = urls.fillable_paths(self.mapper)
        self.pages = BoundedCache(PAGE_CACHE_SIZE)  # rendered pages, see render()
        self.answers = answers.Answers(store)
        self.templates = templating.Templates(template_dir)
        self.static = StaticFiles(static_dir, settings["static_max_age"])
        self.sessions = security.SessionCookies(secret, settings["session_max_age"])
        self.limits = limits.Limits(store, secret, limits.rates(settings))
        self.cors = cors.Cors(cors.parse_origins(settings["cors_allowed_origins"]))
        self.actions = actions.Actions(store, self.limits, self.now)
        # Live updates: self.live(req, queue_id, make_view) answers a page's updates URL.
        self.updates = push.LiveUpdates(self)
        self.live = self.updates.answer
        self.controllers = {
            "owner": owner.OwnerController(self),
            "customer": customer.CustomerController(self),
            "servicer": servicer.ServicerController(self),
            "board": board.BoardController(self),
            "api": api.ApiController(self),
        }
        # The API's POSTs answered once per Idempotency-Key (idempotency.py).
        self.idempotent = idempotency.IdempotentPosts(self)
        self.clock = time.time
        self.mount = None  # the SCRIPT_NAME of the first request (mounts.py)
        LIVE.add(self)
        self.built = next(BUILT)

    def close(self):
        """Answer held live updates at once, stop the push watcher, close the connections kept.

        A graceful stop calls it (deploy/gunicorn.conf.py on SIGTERM), so that the
        server does not wait up to push_hold_seconds for the held requests.
        """
        self.updates.hub.close()
        self.store.close_all()
        mounts.MOUNTS.forget(self)

    def __call__(self, environ, start_response):
        if self.mount is None:
            self.mount = environ.get("SCRIPT_NAME", "")
            mounts.MOUNTS.note(self, self.store.path, self.mount)
        if (
            environ.get("wsgi.multiprocess")
            and not self.store.exact
            and self.store.engine.siblings_commits is None
        ):
            # Other processes serve too (gunicorn, mod_wsgi): ask SQLite on
            # every request whether they changed something (store.generation).
            # serve's own workers tell each other in shared memory instead.
            self.store.exact = True
        if environ.get("REQUEST_METHOD") == "GET":
            remembered = self.answers.recall(environ)
            if remembered is not None:
                start_response(remembered.status, list(remembered.headers))
                return [remembered.body]
        return self.handle(environ, start_response)

    @wsgify(RequestClass=Request)
    def handle(self, req):
        """Answer one request (``__call__`` first looks for a remembered answer, answers.py)."""
        try:
            try:
                response = self.dispatch(req)
            finally:
                self.store.release()
        except Exception as error:
            response = self.failure(req, error)
        return self.finish(req, response)

    def failure(self, req, error):
        """The answer to a request whose handling raised ``error``: 503 when the database
        cannot be reached, 400 when it refused a value, else 500, logged."""
        if self.store.engine.unavailable(error):
            return self.unavailable(req, error)
        if self.store.engine.bad_input(error):
            log.warning("database refused a value: %s %r: %s", req.method, req.path, error)
            return self.bad_request(req, "This request holds text that cannot be stored.")
        # The raw address: one that is not UTF-8 must not break the log line too.
        log.exception("error answering %s %r", req.method, _raw_address(req.environ))
        if is_api(req):
            return self.json_error(
                req, 500, "server_error", "The server hit an error; it has been logged."
            )
        return self.error_page(
            req,
            exc.HTTPInternalServerError,
            "Something went wrong",
            "The server hit an error it did not expect. It has been logged; "
            "please try again in a moment.",
        )

    def finish(self, req, response):
        """What every answer gets: security headers, CORS, and perhaps to be remembered."""
        # No response sets these itself: appended, not looked up one by one.
        response.headerlist.extend(security.security_headers(req))
        if is_api(req):
            response.headerlist.extend(self.cors.headers(req))  # none unless configured
        self.answers.keep(req, response)  # if the controller said it may be given again
        return response

    def dispatch(self, req):
        environ = req.environ
        req.urls = urls.Urls(self.mapper, environ, self.url_cache, self.url_paths)
        if not _is_utf8(_raw_address(environ)):
            return self.bad_request(req, "This address is not valid UTF-8.")
        if not req.path_info:
            # Mounted at /lab and asked for /lab: the home page is /lab/.
            return exc.HTTPMovedPermanently(location=req.script_name + "/")
        match = self.mapper.routematch(environ=environ)
        if match is None:
            return self.unmatched(req)
        args = dict(match[0])  # match is (args, route)
        controller, action = args.pop("controller"), args.pop("action")
        if controller == "static":
            return self.static.serve(req, args["path"]) or self.not_found(req)
        try:
            if controller == "api":
                # Bearer tokens, not cookies: no session, so no CSRF to guard against.
                respond = functools.partial(getattr(self.controllers["api"], action), req, **args)
                return self.idempotent.answer(req, respond)
            req.session = self.sessions.load(req)
            if req.method == "POST" and not req.session.csrf_ok(req.POST.get("csrf_token")):
                response = self.error_page(
                    req,
                    exc.HTTPForbidden,
                    "This form has expired",
                    "Go back, reload the page and try again.",
                )
            else:
                response = getattr(self.controllers[controller], action)(req, **args)
        except UnicodeDecodeError:
            what = "body" if controller == "api" else "form"
            response = self.bad_request(req, f"The {what} was not valid UTF-8.")
        except UnreadableForm as error:
            response = self.bad_request(req, str(error))
        if controller != "api":
            self.sessions.save(req, response, req.session)
        return response

    def unmatched(self, req):
        """404, or 405 when the path exists for another method."""
        allowed = [
            method
            for method in ("GET", "POST", "DELETE")
            if method != req.method
            and self.mapper.match(environ=dict(req.environ, REQUEST_METHOD=method))
        ]
        if is_api(req):
            preflight = allowed and req.method == "OPTIONS" and self.cors.preflight(req, allowed)
            if preflight:
                return preflight
            if allowed:
                response = self.json_error(
                    req, 405, "method_not_allowed", f"Use {' or '.join(allowed)} here."
                )
                response.allow = allowed
                return response
            return self.json_error(req, 404, "not_found", "There is no such API address.")
        if "GET" in allowed or "POST" in allowed:
            response = self.error_page(
                req,
                exc.HTTPMethodNotAllowed,
                "Method not allowed",
                f"This address does not accept {req.method} requests.",
            )
            response.allow = ["GET", "HEAD"] if "GET" in allowed else ["POST"]
            return response
        return self.not_found(req)

    # -- helpers for controllers ---------------------------------------------

    def now(self):
        return self.clock()

    def page_values(self, req, title, values):
        session = getattr(req, "session", None)
        return dict(
            values,
            title=title,
            url=req.urls,
            absolute_url=lambda path: req.host_url + path,
            static=functools.partial(self.static.url, req),
            csrf_token=session["csrf"] if session else "",
            refresh_seconds=values.get("refresh_seconds"),
            live_url=values.get("live_url"),
            live_page=values.get("live_page"),
            page_class=values.get("page_class", ""),
        )

    def render(self, req, template, title, status=200, cache_key=None, **values):
        """A full HTML page: ``template`` inside the layout.

        With ``cache_key`` (hashable, and standing for everything in
        ``values``), the page is rendered once and then served from memory
        for as long as nothing it shows changes: the key also holds what
        comes from the request (mount path, host, the session's CSRF token).
        """
        key = None
        if cache_key is not None:
            session = getattr(req, "session", None)
            csrf = session["csrf"] if session else ""
            key = (template, title, cache_key, req.script_name, req.host_url, csrf)
            text = self.pages.get(key)
        if key is None or text is None:
            text = self.templates.page(template, self.page_values(req, title, values))
            if key is not None:
                self.pages.put(key, text)
        cache_control = "no-store" if req.method != "GET" else "no-cache"
        return Response(charset="utf-8", status=status, text=text, cache_control=cache_control)

    def render_form(self, req, template, title, defaults, errors=None, status=200, **values):
        """A page whose form is filled from ``defaults`` and marked with ``errors``."""
        response = self.render(req, template, title, status=status, errors=errors, **values)
        response.text = templating.fill_form(
            response.text, dict(defaults, csrf_token=req.session["csrf"]), errors
        )
        return response

    def json(self, req, body, status=200):
        return self.json_text(req, push.dumps(body), status)

    def json_text(self, req, text, status=200):
        """A JSON answer whose body is already encoded (``push.joined_json``)."""
        response = Response(
            body=text.encode("ascii"),
            status=status,
            content_type="application/json",
            charset="utf-8",
            cache_control="no-store",
        )
        # nginx would otherwise buffer a held response.
        response.headers["X-Accel-Buffering"] = "no"
        return response

    def unavailable(self, req, error):
        """503: the database cannot be reached now (restarting, or every connection busy)."""
        log.warning("database unavailable answering %s %r: %s", req.method, req.path, error)
        message = "The queue's database cannot be reached just now. Please try again in a moment."
        if is_api(req):
            response = self.json_error(req, 503, "unavailable", message)
        else:
            response = self.error_page(req, exc.HTTPServiceUnavailable, "Back in a moment", message)
            if req.method == "GET":  # a customer's page comes back by itself
                response.headers["Refresh"] = str(UNAVAILABLE_RETRY_SECONDS * 3)
        response.retry_after = UNAVAILABLE_RETRY_SECONDS
        return response

    def json_error(self, req, status, code, message, fields=None):
        """Errors of the JSON endpoints all have this one shape."""
        error = {"code": code, "message": message}
        if fields:
            error["fields"] = fields  # a message per invalid field
        return self.json(req, {"error": error}, status=status)

    def redirect(self, req, route, **kwargs):
        """303 See Other, the answer to every successful POST."""
        location = req.host_url + req.urls(route, **kwargs)
        # A plain Response with an absolute Location: webob.exc's would render
        # an HTML body from a template and make the Location absolute on the
        # way out, which takes longer than the rest of taking a number.
        return Response(
            f"See Other: {location}",
            status=303,
            location=location,
            content_type="text/plain",
            charset="utf-8",
        )

    def error_page(self, req, status_class, title, message, **values):
        response = status_class(content_type="text/html", charset="utf-8", cache_control="no-store")
        values = dict({"create_queue_id": None, "join_queue_id": None}, **values)
        response.text = self.render(req, "error.html", title, message=message, **values).text
        return response

    def bad_request(self, req, message):
        """400 for a request the app cannot read: JSON in the API, else a page."""
        if is_api(req):
            return self.json_error(req, 400, "bad_request", message)
        return self.error_page(req, exc.HTTPBadRequest, "Bad request", message)

    def not_found(self, req, queue_id=None):
        """404; for a queue id, say there is no such queue and to check the link.

        Most who follow a queue link are customers with a typo, so creating
        the queue is only a small link, and only for a name one could create.
        """
        if not queue_id:
            return self.error_page(
                req, exc.HTTPNotFound, "Not found", "There is nothing at this address."
            )
        return self.error_page(
            req,
            exc.HTTPNotFound,
            "No such queue",
            f"There is no queue called “{queue_id}”. Check the link or the address you "
            "were given: a letter may be missing or mistyped.",
            create_queue_id=None if queue_id in forms.RESERVED_QUEUE_IDS else queue_id,
        )

    def too_many(self, req, retry_after, message="Too many attempts from this address."):
        """429 with Retry-After, as a page or, for the API, a JSON error that says the wait."""
        text = f"{message} Please wait {limits.wait_text(retry_after)} and try again."
        if is_api(req):
            error = {"code": "rate_limited", "message": text, "retry_after": retry_after}
            response = self.json(req, {"error": error}, status=429)
        else:
            response = self.error_page(req, exc.HTTPTooManyRequests, "Too many attempts", text)
        response.retry_after = retry_after
        return response


def is_api(req):
    # The raw PATH_INFO: its API prefix is ASCII, and the rest need not be UTF-8.
    path = req.environ.get("PATH_INFO", "")
    return path.startswith(routing.API + "/") or path == routing.API


def _is_utf8(text):
    """Whether a WSGI string (bytes as latin-1) holds UTF-8, as WebOb will decode it.

    Path and query joined by "?" (``_raw_address``) are UTF-8 only if each is.
    """
    if text.isascii():
        return True
    try:
        text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return False
    return True


def _raw_address(environ):
    query = environ.get("QUERY_STRING", "")
    return environ.get("PATH_INFO", "") + ("?" + query if query else "")
