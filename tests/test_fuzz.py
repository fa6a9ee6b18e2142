"""Fuzzing: schemathesis against the API's own OpenAPI document, and hypothesis
against every form and every page's query. Bounded and seeded, so that a failure
can be run again and a 500 cannot come back unnoticed."""

import json
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from webob import Request
from webtest import TestApp

from take_a_number import openapi, routing, security

PASSWORD = "correct horse"
SEED = 20261201
# Examples per API operation, for each of: valid requests to the fixture's queue and
# ticket, valid requests anywhere, and requests the document refuses.
API_EXAMPLES = 200
OPERATIONS = [
    (method.upper(), path) for path, operations in openapi.PATHS.items() for method in operations
]


# On PostgreSQL a quarter as many: the same app, only the database's side differs (what
# it refuses to store, as a NUL), and the whole suite stays near its time budget.
POSTGRESQL_SHARE = 4


def bounded(examples, app):
    if app.store.engine.dialect == "postgresql":
        examples = max(examples // POSTGRESQL_SHARE, 10)
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture
def fuzzed_app(make_app, monkeypatch):
    """The app with a queue, a staff member, an invitation and a ticket, and quick password hashes.

    Nothing is held: live updates answer at once (push_max_held 0).
    """
    monkeypatch.setattr(security, "PBKDF2_ITERATIONS", 1)
    app = make_app(push_max_held="0")
    client = TestApp(app)
    body = {"queue_id": "lab", "title": "Lab", "password": PASSWORD, "name": "Desk 1"}
    app.fuzz_owner = client.post_json("/api/v1/queues", body).json["token"]
    staff = {"name": "Desk 2"}
    headers = {"Authorization": f"Bearer {app.fuzz_owner}"}
    client.post_json("/api/v1/queues/lab/tokens", staff, headers=headers)
    invitation = client.post_json(
        "/api/v1/queues/lab/invitations", {"name": "Desk 3"}, headers=headers
    ).json["id"]
    ticket = client.post("/api/v1/queues/lab/tickets").json["token"]
    app.fuzz_path = {
        "queue_id": "lab",
        "token": ticket,
        "servicer_id": 2,
        "invitation_id": invitation,
    }
    return app


@pytest.fixture
def api_schema(fuzzed_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzed_app)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_the_api_answers_every_request_as_its_document_says(api_schema, fuzzed_app, method, path):
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {fuzzed_app.fuzz_owner}"}
    names = {p["name"] for p in operation.definition.raw.get("parameters", []) if p["in"] == "path"}
    fixed = {name: fuzzed_app.fuzz_path[name] for name in names}
    runs = [(GenerationMode.POSITIVE, None)]
    if fixed:
        runs.append((GenerationMode.POSITIVE, fixed))
    if operation.definition.raw.get("parameters") or operation.body:
        runs.append((GenerationMode.NEGATIVE, None))  # else there is nothing to get wrong
    for mode, path_parameters in runs:
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

        @seed(SEED)
        @bounded(API_EXAMPLES, fuzzed_app)
        @given(case=strategy)
        def run(case):
            # Every check but one: a request the document allows may still be refused
            # for what a schema cannot say (a taken queue id, an unknown time zone).
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        run()


# -- every form route, with any body ---------------------------------------------------

POST_ROUTES = [
    route.name for route in routing.make_mapper().matchlist if "POST" in route.conditions["method"]
]
FORM_EXAMPLES = 300
FIELDS = sorted(
    {name for form in openapi.FORM_BODIES for name in form.fields} | {"csrf_token", "code"}
)
CONTENT_TYPES = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=b",
    "application/json",
    "text/plain",
    "",
]


@pytest.fixture
def signed_in_owner(fuzzed_app):
    """The owner's browser: its session cookie and CSRF token, signed in on the pages."""
    browser = TestApp(fuzzed_app)
    form = browser.get("/lab/serve").forms[0]
    form["name"], form["password"] = "Desk 1", PASSWORD
    form.submit()
    return browser.cookies["tan_session"], browser.get("/").forms[0]["csrf_token"].value


def _urlencoded(parts):
    return "&".join(f"{quote(name)}={quote(value)}" for name, value, _file in parts).encode()


def _multipart(parts, boundary="b"):
    lines = []
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        lines += [f"--{boundary}", f"Content-Disposition: {disposition}", "", value]
    return "\r\n".join([*lines, f"--{boundary}--", ""]).encode()


ENCODINGS = {"urlencoded": _urlencoded, "multipart": _multipart}
texts = st.text(max_size=30) | st.sampled_from(["", "lab", "Desk 1", PASSWORD, "09:00", "UTC"])
names = st.sampled_from(FIELDS) | st.text(max_size=10)
# Fields of a form; one with a file name is a file.
parts = st.lists(st.tuples(names, texts, st.none() | st.just("f.txt")), max_size=8)
jsons = st.dictionaries(names, st.none() | st.booleans() | st.integers() | texts).map(
    lambda value: json.dumps(value).encode()
)
# (content type, how the fields are encoded or None, the fields or the body's bytes)
bodies = st.one_of(
    st.tuples(st.just(CONTENT_TYPES[0]), st.just("urlencoded"), parts),
    st.tuples(st.just("multipart/form-data; boundary=b"), st.just("multipart"), parts),
    st.tuples(st.sampled_from(CONTENT_TYPES), st.sampled_from(sorted(ENCODINGS)), parts),
    st.tuples(st.just("application/json"), st.none(), jsons),
    # Multipart without a boundary to read it by, and any bytes as anything.
    st.tuples(st.sampled_from(CONTENT_TYPES[2:4]), st.none(), st.binary(max_size=50)),
    st.tuples(st.sampled_from(CONTENT_TYPES), st.none(), st.binary(max_size=200)),
)


@pytest.mark.parametrize("route_name", POST_ROUTES)
def test_no_form_post_is_a_server_error(fuzzed_app, signed_in_owner, route_name, caplog):
    route = next(route for route in fuzzed_app.mapper.matchlist if route.name == route_name)
    cookie, token = signed_in_owner

    @seed(SEED)
    @bounded(FORM_EXAMPLES, fuzzed_app)
    @given(
        path=st.fixed_dictionaries(
            {
                "queue_id": st.sampled_from(["lab", "lab", "nosuch"]),
                "token": st.sampled_from([fuzzed_app.fuzz_path["token"], "nosuch"]),
                "servicer_id": st.sampled_from(["1", "2", "999999999999999999"]),
                "invitation_id": st.sampled_from(
                    [str(fuzzed_app.fuzz_path["invitation_id"]), "999999999999999999"]
                ),
            }
        ),
        body=bodies,
        csrf=st.sampled_from([None, "valid"]) | texts,
        with_session=st.booleans(),
    )
    def post(path, body, csrf, with_session):
        content_type, encoding, payload = body
        if encoding is not None:
            if csrf is not None:
                payload = [("csrf_token", token if csrf == "valid" else csrf, None), *payload]
            payload = ENCODINGS[encoding](payload)
        request = Request.blank(route.routepath.format(**path), method="POST", body=payload)
        request.content_type = content_type
        if with_session:  # the owner's browser, and the owner's token for the API
            request.headers["Cookie"] = f"tan_session={cookie}"
            request.authorization = ("Bearer", fuzzed_app.fuzz_owner)
        response = request.get_response(fuzzed_app)
        assert response.status_int < 500, (request, response.text[:500])

    post()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


# -- every page, with any query ----------------------------------------------------------

GET_ROUTES = [
    route.name for route in routing.make_mapper().matchlist if "GET" in route.conditions["method"]
]
QUERY_EXAMPLES = 100
queries = st.lists(
    st.tuples(st.sampled_from(["since", "v", "day", "code", "queue_id"]), texts)
).map(lambda pairs: urlencode(pairs).encode()) | st.binary(max_size=40)


@pytest.mark.parametrize("route_name", GET_ROUTES)
def test_no_page_is_a_server_error_whatever_its_query(
    fuzzed_app, signed_in_owner, route_name, caplog
):
    route = next(route for route in fuzzed_app.mapper.matchlist if route.name == route_name)
    cookie, _token = signed_in_owner
    path = route.routepath.format(**fuzzed_app.fuzz_path, path="style.css")

    @seed(SEED)
    @bounded(QUERY_EXAMPLES, fuzzed_app)
    @given(query=queries, with_session=st.booleans())
    def get(query, with_session):
        request = Request.blank(path)
        request.environ["QUERY_STRING"] = query.decode("latin-1")  # as a server passes bytes
        if with_session:
            request.headers["Cookie"] = f"tan_session={cookie}"
            request.authorization = ("Bearer", fuzzed_app.fuzz_owner)
        response = request.get_response(fuzzed_app)
        assert response.status_int < 500, (request, response.text[:500])

    get()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
