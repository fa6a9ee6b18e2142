"""Cross-origin use of the API: off unless configured, then for the API only, never with cookies."""

import http.server
import json
import threading
import urllib.request

import pytest
from server_support import PASSWORD, Server
from test_api import Api, create_queue
from test_prefix import mounted
from webtest import TestApp

from take_a_number import config, cors

ALLOWED = "https://a.example"
ORIGINS = f"{ALLOWED} https://b.example"
ELSEWHERE = "https://evil.example"


def cors_headers(response):
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def preflight(client, path, origin=ALLOWED, method="POST", status=204, **headers):
    asked = {"Origin": origin, "Access-Control-Request-Method": method, **headers}
    return client.options(path, headers=asked, status=status)


@pytest.fixture
def lab(make_app):
    """An app allowing ORIGINS, with the queue lab; ``(client, owner token)``."""
    app = make_app(cors_allowed_origins=ORIGINS)
    return TestApp(app), create_queue(Api(app))["token"]


def test_without_origins_configured_no_answer_carries_cors_and_options_stays_405(app):
    client = TestApp(app)
    create_queue(Api(app))
    answer = client.get("/api/v1/queues/lab", headers={"Origin": ALLOWED})
    assert cors_headers(answer) == {} and "Vary" not in answer.headers
    refused = preflight(client, "/api/v1/queues/lab/tickets", status=405)
    assert refused.json["error"]["code"] == "method_not_allowed"
    assert set(refused.headers["Allow"].split(", ")) == {"GET", "POST"}
    assert cors_headers(refused) == {}


def test_an_allowed_origin_reads_the_api_and_no_other_does(lab):
    client, _owner = lab
    answer = client.get("/api/v1/queues/lab", headers={"Origin": ALLOWED})
    assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert answer.headers["Vary"] == "Origin"
    assert "Retry-After" in answer.headers["Access-Control-Expose-Headers"]
    assert "Location" in answer.headers["Access-Control-Expose-Headers"]
    other = client.get("/api/v1/queues/lab", headers={"Origin": "https://b.example"})
    assert other.headers["Access-Control-Allow-Origin"] == "https://b.example"
    for origin in (ELSEWHERE, "null", f"{ALLOWED}.evil.example", "http://a.example"):
        refused = client.get("/api/v1/queues/lab", headers={"Origin": origin})
        assert cors_headers(refused) == {}, origin
        assert refused.headers["Vary"] == "Origin"  # a cache must not hand it to another
    assert "Access-Control-Allow-Origin" not in client.get("/api/v1/queues/lab").headers


def test_errors_and_429s_of_the_api_can_be_read_across_origins(make_app):
    app = make_app(cors_allowed_origins=ALLOWED, rate_limit_take_ticket_per_address="1/minute")
    client = TestApp(app)
    create_queue(Api(app))
    origin = {"Origin": ALLOWED}
    refused = client.get("/api/v1/queues/lab/console", headers=origin, status=401)
    assert refused.headers["Access-Control-Allow-Origin"] == ALLOWED
    client.post("/api/v1/queues/lab/tickets", headers=origin, status=201)
    limited = client.post("/api/v1/queues/lab/tickets", headers=origin, status=429)
    assert limited.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert limited.headers["Retry-After"] == "60"
    assert "Retry-After" in limited.headers["Access-Control-Expose-Headers"]
    missing = client.get("/api/v1/nothing-here", headers=origin, status=404)
    assert missing.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_a_preflight_from_an_allowed_origin_is_answered_with_what_it_may_send(lab):
    client, _owner = lab
    asked = {"Access-Control-Request-Headers": "authorization, content-type, idempotency-key"}
    answer = preflight(client, "/api/v1/queues/lab/tickets", **asked)
    assert answer.body == b""
    assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert set(answer.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST"}
    allowed_headers = answer.headers["Access-Control-Allow-Headers"].lower().split(", ")
    assert set(allowed_headers) == {"authorization", "content-type", "idempotency-key"}
    assert answer.headers["Access-Control-Max-Age"] == str(cors.MAX_AGE)
    assert answer.headers["Vary"] == "Origin"
    ticket = preflight(client, "/api/v1/tickets/some-token", method="DELETE")
    assert set(ticket.headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "DELETE"}


def test_any_other_options_is_answered_as_without_cors(lab):
    client, _owner = lab
    path = "/api/v1/queues/lab/tickets"
    assert cors_headers(preflight(client, path, origin=ELSEWHERE, status=405)) == {}
    client.options(path, headers={"Origin": ALLOWED}, status=405)  # no preflight
    client.options(path, status=405)
    preflight(client, "/api/v1/no-such-address", status=404)


def test_credentials_are_never_allowed_across_origins(make_app):
    for origins in (ORIGINS, "*"):
        client = TestApp(make_app(cors_allowed_origins=origins))
        answers = [
            client.get("/api/v1/openapi.json", headers={"Origin": ALLOWED}),
            preflight(client, "/api/v1/queues", method="POST"),
        ]
        for answer in answers:
            assert "Access-Control-Allow-Credentials" not in answer.headers


def test_any_origin_with_a_star(make_app):
    client = TestApp(make_app(cors_allowed_origins="*"))
    answer = client.get("/api/v1/openapi.json", headers={"Origin": ELSEWHERE})
    assert answer.headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in answer.headers
    assert preflight(client, "/api/v1/queues", origin=ELSEWHERE).status_int == 204


def test_pages_and_static_files_never_carry_cors_headers(make_app):
    app = make_app(cors_allowed_origins="*")
    client = TestApp(app)
    create_queue(Api(app))
    origin = {"Origin": ALLOWED}
    answers = [
        client.get("/", headers=origin),
        client.get("/lab", headers=origin),
        client.get("/lab/board/updates", headers=origin),
        client.get("/lab/qr.svg", headers=origin),
        client.get("/no-such-queue", headers=origin, status=404),
        preflight(client, "/lab/take", status=405),
        preflight(client, "/", status=405),
    ]
    static = client.get("/").html.select_one("link[rel=stylesheet]")["href"]
    answers.append(client.get(static, headers=origin))
    for answer in answers:
        assert cors_headers(answer) == {}, answer.request.path


def test_cors_holds_for_the_api_under_a_path_prefix(make_app):
    client = TestApp(mounted(make_app(cors_allowed_origins=ALLOWED), "/tools/tan"))
    answer = client.get("/tools/tan/api/v1/openapi.json", headers={"Origin": ALLOWED})
    assert answer.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert preflight(client, "/tools/tan/api/v1/queues").status_int == 204
    assert cors_headers(client.get("/tools/tan/", headers={"Origin": ALLOWED})) == {}


@pytest.mark.parametrize(
    "origins", ["null", "a.example", "https://a.example/path", "https://user@a.example", "ftp://x"]
)
def test_an_entry_that_is_no_origin_is_refused_at_start_up(make_app, origins):
    with pytest.raises(config.SettingsError, match="cors_allowed_origins"):
        make_app(cors_allowed_origins=origins)


def test_origins_are_read_as_browsers_send_them():
    assert cors.parse_origins("https://A.example/, http://[::1]:8080,https://b.example") == {
        "https://a.example",
        "http://[::1]:8080",
        "https://b.example",
    }
    assert cors.parse_origins("") == frozenset()


# -- in a real browser ------------------------------------------------------------------

# A script on a site: takes a number with a token and the headers a client sends, then
# leaves; says what it could read, or the error the browser gave it.
SCRIPT = """async ([api, token]) => {
  try {
    const headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json",
                     "Idempotency-Key": "k-1"};
    const taken = await fetch(api + "/queues/lab/tickets", {method: "POST", headers, body: "{}"});
    const ticket = await taken.json();
    const left = await fetch(api + "/tickets/" + ticket.token, {method: "DELETE", headers});
    return [taken.status, taken.headers.get("Location"), left.status, (await left.json()).state];
  } catch (error) {
    return String(error);
  }
}"""


class _Site(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<p>another site</p>")

    def log_message(self, *_args):
        pass


@pytest.fixture
def sites():
    """Two other sites on this machine: ``(allowed, not allowed)`` origins."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{server.server_address[1]}" for server in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_script_on_an_allowed_site_uses_the_api_from_chromium_and_no_other_site_can(
    chromium, sites, tmp_path
):
    site, other_site = sites
    server = Server(tmp_path, settings={"cors_allowed_origins": site}).start()
    try:
        api = server.url + "/api/v1"
        body = {"queue_id": "lab", "title": "Lab", "password": PASSWORD, "name": "Kiosk"}
        request = urllib.request.Request(
            api + "/queues", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request) as created:
            token = json.load(created)["token"]
        context = chromium.new_context()
        page = context.new_page()
        page.goto(site + "/")
        answer = page.evaluate(SCRIPT, [api, token])
        assert isinstance(answer, list), answer
        taken, location, left, state = answer
        assert (taken, left, state) == (201, 200, "left")
        assert location.startswith(api + "/tickets/")  # a header exposed to the script
        page.goto(other_site + "/")
        assert "Failed to fetch" in page.evaluate(SCRIPT, [api, token])
        context.close()
    finally:
        server.stop()
