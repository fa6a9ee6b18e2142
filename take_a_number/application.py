"""The configured WSGI application: one request in, one response out."""

import collections
import functools
import hashlib
import html
import logging
import os
import re
import time
import urllib.parse

import tempita
import webob
from formencode import htmlfill
from routes.util import URLGenerator
from webob import Response, exc
from webob.dec import wsgify
from webob.multidict import MultiDict
from webob.static import FileApp

from . import api, board, customer, notifications, owner, routing, security, servicer, views

log = logging.getLogger(__name__)

# A versioned static URL never changes content, so browsers may keep it a year.
IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def _compile(code, mode):
    return compile(code, "<template>", mode)


class Template(tempita.HTMLTemplate):
    """An auto-escaping Tempita template whose expressions are compiled once.

    Tempita compiles each expression's source text again on every render;
    caching the code objects, and escaping by the shortest path, makes
    rendering several times faster. Errors still get Tempita's messages.
    """

    def _eval(self, code, ns, pos):
        try:
            return eval(_compile(code.strip(), "eval"), self.default_namespace, ns)
        except Exception:
            return super()._eval(code, ns, pos)  # raises again, with the line

    def _exec(self, code, ns, pos):
        return super()._exec(_compile(code, "exec"), ns, pos)

    def _repr(self, value, pos):
        if value is None:
            return ""
        if hasattr(value, "__html__"):
            return value.__html__()
        return html.escape(value if isinstance(value, str) else str(value), quote=True)


# A form body read into memory at once; a longer one is left to WebOb.
MAX_FORM_BYTES = 1 << 20


class Request(webob.Request):
    """WebOb's request, reading the body of an urlencoded form with parse_qsl.

    WebOb parses every form through cgi.FieldStorage, which is made for
    multipart uploads and takes longer than the rest of taking a number.
    Every form of the app is urlencoded; anything else goes to WebOb.
    """

    @property
    def POST(self):
        if (
            self.method != "POST"
            or self.content_type != "application/x-www-form-urlencoded"
            or (self.content_length or 0) > MAX_FORM_BYTES  # WebOb spools it to a file
        ):
            return super().POST
        form = self.environ.get("take_a_number.form")
        if form is None:
            length = self.content_length
            if length is not None and not self.is_body_seekable:
                # Read once, as is: WebOb would first copy it to be seekable.
                body = self.body = self.body_file_raw.read(length)
            else:
                body = self.body
            # Bytes that are not UTF-8 become U+FFFD, as WebOb makes them:
            # the form's validation then says what is wrong with the field.
            pairs = urllib.parse.parse_qsl(
                body.decode("utf-8", "replace"), keep_blank_values=True, errors="replace"
            )
            form = self.environ["take_a_number.form"] = MultiDict(pairs)
        return form


class Templates:
    """Every template in a directory, compiled once at start-up."""

    def __init__(self, directory):
        self.directory = directory
        self._templates = {
            name: Template.from_filename(os.path.join(directory, name), encoding="utf-8")
            for name in sorted(os.listdir(directory))
            if name.endswith(".html")
        }

    def render(self, name, values):
        return self._templates[name].substitute(values)


class StaticFiles:
    """Files under ``static/``, served with caching headers and versioned URLs."""

    def __init__(self, directory, max_age):
        self.directory = directory
        self.max_age = max_age
        self.versions = {}
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.versions[name] = hashlib.sha256(f.read()).hexdigest()[:12]

    def url(self, req, name):
        return req.urls("static", path=name) + "?v=" + self.versions[name]

    def serve(self, req, path):
        if path not in self.versions:
            return None
        response = req.get_response(FileApp(os.path.join(self.directory, path)))
        if response.status_int in (200, 304):
            versioned = req.GET.get("v") == self.versions[path]
            response.cache_control = IMMUTABLE if versioned else f"public, max-age={self.max_age}"
        return response


class Urls:
    """``url(name, **args)`` for one request: Routes' URLGenerator, remembered.

    A URL depends only on the route, its arguments and SCRIPT_NAME, and
    Routes takes long to build one, so each is built once. A URL whose every
    argument fills a path variable with characters no URL quotes is filled in
    directly (``paths``), as Routes would.
    """

    def __init__(self, mapper, environ, cache, paths):
        self.mapper = mapper
        self.environ = environ
        self.cache = cache
        self.paths = paths
        self.generator = None

    def __call__(self, name, **args):
        key = (self.environ.get("SCRIPT_NAME", ""), name, *sorted(args.items()))
        url = self.cache.get(key)
        if url is None:
            url = self._fill(name, args)
            if url is None:
                if self.generator is None:
                    self.generator = URLGenerator(self.mapper, self.environ)
                url = self.generator(name, **args)
            if len(self.cache) >= URL_CACHE_SIZE:
                self.cache.clear()
            self.cache[key] = url
        return url

    def _fill(self, name, args):
        path = self.paths.get(name)
        if path is None:
            return None
        template, requirements = path
        if args.keys() != requirements.keys():
            return None
        values = {}
        for arg, value in args.items():
            value = str(value)
            if not requirements[arg].fullmatch(value):
                return None
            values[arg] = value
        return self.environ.get("SCRIPT_NAME", "") + template.format(**values)


# Characters a URL path never quotes: a value made of them is filled in as is.
_UNQUOTED = "[A-Za-z0-9_.~-]+"


def fillable_paths(mapper):
    """``{route name: (path template, {variable: pattern})}`` for Urls._fill.

    A value must match the route's requirement and hold only characters that
    URLs never quote, so that filling it in gives the URL Routes would build.
    """
    paths = {}
    for route in mapper.matchlist:
        if route.name is None or route.name in paths:
            continue
        variables = re.findall(r"{(\w+)}", route.routepath)
        if route.routepath.count("{") != len(variables):
            continue  # a pattern inside the path: leave it to Routes
        patterns = {}
        for variable in variables:
            requirement = route.reqs.get(variable)
            pattern = f"(?=(?:{requirement})\\Z){_UNQUOTED}" if requirement else _UNQUOTED
            patterns[variable] = re.compile(pattern)
        paths[route.name] = (route.routepath, patterns)
    return paths


URL_CACHE_SIZE = 20_000
# Rendered pages kept (Application.render's cache_key): a few MiB at most.
PAGE_CACHE_SIZE = 2_000
# Whole answers kept (Application._remember), and for how long at most.
RESPONSE_CACHE_SIZE = 2_000
RESPONSE_MAX_AGE = 5.0
# A live update held until the queue opens or closes by its hours is answered
# this long after that moment, so that its page is made after it.
HOURS_MARGIN = 0.25
# The store's generation when a GET came in, in its environ.
GENERATION = "take_a_number.generation"


class _Remembered(collections.namedtuple("_Remembered", "generation expires status headers body")):
    """A whole answer to a GET, valid for one generation of the store."""


def _response_key(environ):
    """Everything a remembered answer depends on besides the database."""
    return (
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", ""),
        environ.get("QUERY_STRING", ""),
        environ.get("HTTP_HOST", ""),
        environ.get("wsgi.url_scheme", ""),
        environ.get("HTTP_COOKIE", ""),
    )


class Application:
    """Take A Number, configured: routes, templates, store, sessions and limits."""

    def __init__(self, store, secret, settings, template_dir, static_dir):
        self.store = store
        self.snapshots = views.Snapshots(store)
        self.settings = settings
        self.hub = notifications.Hub(
            store,
            settings["push_max_held"],
            settings["push_watch_interval"],
            version=self.snapshots.version,
        )
        self.mapper = routing.make_mapper()
        self.url_cache = {}
        self.url_paths = fillable_paths(self.mapper)
        self.pages = {}  # rendered pages, see render()
        self.responses = {}  # whole answers, see _remember()
        self._responses_generation = None
        self.templates = Templates(template_dir)
        self.static = StaticFiles(static_dir, settings["static_max_age"])
        self.sessions = security.SessionCookies(secret, settings["session_max_age"])
        self.limits = {
            name: security.RateLimiter(*security.parse_rate(settings[f"rate_limit_{name}"]))
            for name in ("create_queue", "sign_in", "take_ticket")
        }
        self.controllers = {
            "owner": owner.OwnerController(self),
            "customer": customer.CustomerController(self),
            "servicer": servicer.ServicerController(self),
            "board": board.BoardController(self),
            "api": api.ApiController(self),
        }
        self.clock = time.time

    def close(self):
        """Stop the push watcher and close the database connections kept open."""
        self.hub.close()
        self.store.close_all()

    def __call__(self, environ, start_response):
        if environ.get("wsgi.multiprocess") and not self.store.exact:
            # Other processes serve too (gunicorn, mod_wsgi): ask SQLite on
            # every request whether they changed something (store.generation).
            self.store.exact = True
        if environ.get("REQUEST_METHOD") == "GET":
            # Read before the answer is made: what it is remembered for (_remember).
            generation = environ[GENERATION] = self.store.generation()
            cached = self.responses.get(_response_key(environ))
            if (
                cached is not None
                and cached.generation == generation
                and cached.expires > time.monotonic()
            ):
                start_response(cached.status, list(cached.headers))
                return [cached.body]
        return self.handle(environ, start_response)

    @wsgify(RequestClass=Request)
    def handle(self, req):
        """Answer one request (``__call__`` first looks for a remembered answer)."""
        try:
            try:
                response = self.dispatch(req)
            finally:
                self.store.release()
        except Exception:
            log.exception("error answering %s %s", req.method, req.path_qs)
            if is_api(req):
                response = self.json_error(
                    req, 500, "server_error", "The server hit an error; it has been logged."
                )
            else:
                response = self.error_page(
                    req,
                    exc.HTTPInternalServerError,
                    "Something went wrong",
                    "The server hit an error it did not expect. It has been logged; "
                    "please try again in a moment.",
                )
        # No response sets these itself: appended, not looked up one by one.
        response.headerlist.extend(security.security_headers(req))
        if req.environ.get(views.REMEMBER) and GENERATION in req.environ:
            self._remember(req, response, req.environ[GENERATION])
        return response

    def _remember(self, req, response, generation):
        """Keep a page to answer the same request again while nothing changes.

        Only a 200 that sets no cookie (a Set-Cookie would hand one browser's
        session to another) and only for the generation it was made in (read
        before the page was), for RESPONSE_MAX_AGE at most.
        """
        if response.status_int != 200 or "Set-Cookie" in response.headers:
            return
        if generation != self._responses_generation or len(self.responses) >= RESPONSE_CACHE_SIZE:
            # Answers of an older generation are never given again.
            self.responses.clear()
            self._responses_generation = generation
        self.responses[_response_key(req.environ)] = _Remembered(
            generation,
            time.monotonic() + RESPONSE_MAX_AGE,
            response.status,
            tuple(response.headerlist),
            response.body,
        )

    def dispatch(self, req):
        if not req.path_info:
            # Mounted at /lab and asked for /lab: the home page is /lab/.
            return exc.HTTPMovedPermanently(location=req.script_name + "/")
        req.urls = Urls(self.mapper, req.environ, self.url_cache, self.url_paths)
        match = self.mapper.routematch(environ=req.environ)
        if match is None:
            return self.unmatched(req)
        args, _route = match
        args = dict(args)
        controller, action = args.pop("controller"), args.pop("action")
        if controller == "static":
            return self.static.serve(req, args["path"]) or self.not_found(req)
        if controller == "api":
            # Bearer tokens, not cookies: no session, so no CSRF to guard against.
            try:
                return getattr(self.controllers["api"], action)(req, **args)
            except UnicodeDecodeError:
                return self.json_error(req, 400, "bad_request", "The body was not valid UTF-8.")
        try:
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
            response = self.error_page(
                req, exc.HTTPBadRequest, "Bad request", "The form was not valid UTF-8."
            )
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
            if allowed:
                response = self.json_error(
                    req, 405, "method_not_allowed", f"Use {' or '.join(allowed)} here."
                )
                response.allow = allowed
                return response
            return self.json_error(req, 404, "not_found", "There is no such API address.")
        for method in allowed:
            if method in ("GET", "POST"):
                response = self.error_page(
                    req,
                    exc.HTTPMethodNotAllowed,
                    "Method not allowed",
                    f"This address does not accept {req.method} requests.",
                )
                response.allow = ["GET", "HEAD"] if method == "GET" else ["POST"]
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
            key = (
                template,
                title,
                cache_key,
                req.script_name,
                req.host_url,
                session["csrf"] if session else "",
            )
            text = self.pages.get(key)
        if key is None or text is None:
            values = self.page_values(req, title, values)
            values["body"] = tempita.html(self.templates.render(template, dict(values)))
            text = self.templates.render("layout.html", values)
            if key is not None:
                if len(self.pages) >= PAGE_CACHE_SIZE:
                    self.pages.clear()
                self.pages[key] = text
        response = Response(charset="utf-8", status=status)
        response.text = text
        response.cache_control = "no-store" if req.method != "GET" else "no-cache"
        return response

    def render_form(self, req, template, title, defaults, errors=None, status=200, **values):
        """A page whose form is filled from ``defaults`` and marked with ``errors``."""
        response = self.render(req, template, title, status=status, errors=errors, **values)
        response.text = htmlfill.render(
            response.text,
            defaults=dict(defaults, csrf_token=req.session["csrf"]),
            errors=errors or {},
            auto_error_formatter=htmlfill.escape_formatter,
            error_formatters={"default": _error_formatter},
            force_defaults=False,
        )
        return response

    def live(self, req, queue_id, make_view, ticket_id=None):
        """A page's live update as JSON, held until the queue is past ``?since=``.

        Without ``since`` it answers at once. When this process already holds
        its most requests, it answers at once too, with ``retry_after`` seconds:
        the client polls until push has room again.
        """
        if "since" not in req.GET:
            return self._live_answer(req, queue_id, make_view, notifications.CHANGED)
        try:
            since = int(req.GET["since"])
        except ValueError:
            return self.json_error(req, 400, "bad_request", "since must be a whole number.")
        hold, jitter = self.settings["push_hold_seconds"], True
        snapshot = self.snapshots.get(queue_id, self.now())
        if snapshot is not None and snapshot.changes_at is not None:
            until_change = max(0.0, snapshot.changes_at - self.now()) + HOURS_MARGIN
            if until_change < hold:
                # The queue opens or closes by its hours sooner: answer
                # then, with what the page says from that moment.
                hold, jitter = until_change, False
        with self.hub.hold(  # gives back the connection while it holds
            queue_id,
            since,
            hold,
            req.environ.get("waitress.client_disconnected"),
            ticket_id=ticket_id,
            jitter=jitter,
        ) as outcome:
            # Inside the hold: the hub wakes the next waiters as answers are built.
            return self._live_answer(req, queue_id, make_view, outcome)

    def _live_answer(self, req, queue_id, make_view, outcome):
        if outcome == notifications.GONE:
            return Response(status=204)
        snapshot = self.snapshots.get(queue_id, self.now())
        view = make_view(snapshot) if snapshot is not None else None
        if view is None:
            return self.json_error(req, 404, "not_found", "There is no such queue or ticket.")
        response = self.json(req, view)
        if outcome == notifications.FULL:
            retry = self.settings["push_retry_seconds"]
            response.json_body = dict(view, retry_after=retry)
            response.retry_after = retry
        return response

    def json(self, req, body, status=200):
        response = Response(json_body=body, status=status, charset="utf-8")
        response.cache_control = "no-store"
        # nginx would otherwise buffer a held response.
        response.headers["X-Accel-Buffering"] = "no"
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
        response = status_class()
        values = dict({"create_queue_id": None, "join_queue_id": None}, **values)
        page = self.render(req, "error.html", title, message=message, **values)
        response.content_type = "text/html"
        response.charset = "utf-8"
        response.text = page.text
        response.cache_control = "no-store"
        return response

    def not_found(self, req, queue_id=None):
        """404; for a free queue id, offer to create it."""
        return self.error_page(
            req,
            exc.HTTPNotFound,
            "Not found",
            f"There is no queue called “{queue_id}”."
            if queue_id
            else "There is nothing at this address.",
            create_queue_id=queue_id,
        )

    def rate_limited(self, req, limit_name, key):
        """A 429 page if ``key`` went over the named limit, else None."""
        retry_after = self.limits[limit_name].hit(key, self.now())
        if not retry_after:
            return None
        response = self.error_page(
            req,
            exc.HTTPTooManyRequests,
            "Too many attempts",
            f"Please wait {retry_after} seconds and try again.",
        )
        response.retry_after = retry_after
        return response


def is_api(req):
    return req.path_info.startswith(routing.API + "/") or req.path_info == routing.API


def _error_formatter(error):
    return f'<span class="error-message" role="alert">{htmlfill.html_quote(error)}</span>'
