"""The JSON API, each response checked against the OpenAPI document it serves."""

import datetime
import threading
import time

import pytest
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_spec_validator import validate
from webtest import TestApp
from werkzeug.datastructures import Headers, ImmutableMultiDict

from take_a_number import routing

PASSWORD = "correct horse"


class _Request:
    """A WebOb request as openapi-core sees one."""

    def __init__(self, request):
        self.host_url = request.host_url
        self.path = request.path
        self.method = request.method.lower()
        self.body = request.body or None
        self.content_type = (request.content_type or "application/json").lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.GET.items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(list(request.cookies.items())),
        )


class _Response:
    def __init__(self, response):
        self.status_code = response.status_int
        self.content_type = response.content_type or ""
        self.headers = Headers(list(response.headers.items()))
        self.data = response.body


class Api:
    """A client of the API that checks every answer against /api/v1/openapi.json."""

    def __init__(self, app, prefix=""):
        self.client = TestApp(app)
        self.prefix = prefix
        document = self.client.get(f"{prefix}/api/v1/openapi.json").json
        validate(document)
        self.document = document
        self.openapi = OpenAPI.from_dict(document)

    def __call__(
        self, method, path, json=None, token=None, status=200, documented=True, headers=(), **kwargs
    ):
        headers = dict(headers, **({"Authorization": f"Bearer {token}"} if token else {}))
        url = f"{self.prefix}/api/v1{path}"
        if json is not None:
            send = getattr(self.client, f"{method.lower()}_json")
            response = send(url, json, headers=headers, status=status)
        elif "body" in kwargs:  # raw bytes, sent exactly as given
            response = self.client.request(
                url, method=method.upper(), headers=headers, status=status, **kwargs
            )
        else:
            send = getattr(self.client, method.lower())
            response = send(url, headers=headers, status=status, **kwargs)
        assert response.content_type == "application/json", response
        if documented:
            self.openapi.validate_response(_Request(response.request), _Response(response))
        else:  # no operation to check against: at least the error's shape
            assert set(response.json) == {"error"}
            assert set(response.json["error"]) == {"code", "message"}
        return response


@pytest.fixture
def api(app):
    return Api(app)


def moment(text):
    """An ISO 8601 time of an answer, which must say it is UTC."""
    parsed = datetime.datetime.fromisoformat(text)
    assert parsed.utcoffset() == datetime.timedelta(0), text
    return parsed


def create_queue(api, queue_id="lab"):
    body = {"queue_id": queue_id, "title": "Lab help", "password": PASSWORD, "name": "Desk 1"}
    return api("post", "/queues", json=body, status=201).json


def test_a_name_or_title_with_a_control_character_is_refused_by_name_not_stored(api):
    # A NUL cannot be stored in PostgreSQL at all; an escape has no place in a title.
    body = {"queue_id": "lab", "title": "Lab\u0000help", "password": PASSWORD, "name": "\u001b[31m"}
    refused = api("post", "/queues", json=body, status=400).json["error"]
    assert refused["fields"] == {
        "title": "Please remove the control characters from this text.",
        "name": "Please remove the control characters from this text.",
    }
    api("get", "/queues/lab", status=404)


def test_the_openapi_document_is_valid_and_describes_every_api_route(app, api):
    documented = {
        (method.upper(), path)
        for path, operations in api.document["paths"].items()
        for method in operations
    }
    routed = set()
    for route in app.mapper.matchlist:
        if route.routepath.startswith(routing.API):
            for method in route.conditions["method"]:
                if method != "HEAD":
                    routed.add((method, route.routepath[len(routing.API) :]))
    assert documented == routed
    assert api.document["servers"] == [{"url": "http://localhost/api/v1"}]


def test_a_queue_is_created_and_its_creator_gets_a_token(api):
    created = create_queue(api)
    assert created["queue"]["queue_id"] == "lab"
    assert created["servicer_name"] == "Desk 1"
    assert len(created["token"]) >= 32
    status = api("get", "/queues/lab").json
    assert status == {
        "queue_id": "lab",
        "title": "Lab help",
        "version": status["version"],
        "now_serving": None,
        "now_serving_text": "–",
        "serving_desks": "nobody yet",
        "waiting": 0,
        "status": "open",
        "announcement": "",
        "accepting": True,
        "notice": "",
        "serving": [],
    }


def test_the_main_flow_over_the_api(api):
    owner = create_queue(api)["token"]
    ticket = api("post", "/queues/lab/tickets", status=201).json
    assert (ticket["number"], ticket["state"], ticket["position"]) == (1, "waiting", 1)
    assert ticket["links"]["page"] == f"http://localhost/lab/ticket/{ticket['token']}"
    second = api("post", "/queues/lab/tickets", status=201).json
    assert second["ahead"] == 1

    console = api("post", "/queues/lab/next", token=owner).json
    assert (console["current_number"], console["waiting"]) == (1, 1)
    mine = api("get", f"/tickets/{ticket['token']}").json
    assert mine["state"] == "called"
    assert mine["message"] == "It's your turn — go to Desk 1."

    assert api("post", "/queues/lab/recall", token=owner).json["called"].endswith("recalled 1×")
    assert api("post", "/queues/lab/done", token=owner).json["has_current"] is False
    assert api("get", f"/tickets/{ticket['token']}").json["state"] == "served"
    api("post", "/queues/lab/next", token=owner)
    api("post", "/queues/lab/no-show", token=owner)
    assert api("get", f"/tickets/{second['token']}").json["state"] == "no_show"
    assert api("get", "/queues/lab").json["serving"] == []


def test_leaving_and_leaving_again(api):
    create_queue(api)
    ticket = api("post", "/queues/lab/tickets", status=201).json
    left = api("delete", f"/tickets/{ticket['token']}").json
    assert left["state"] == "left"
    again = api("delete", f"/tickets/{ticket['token']}", status=409).json
    assert again["error"]["code"] == "closed"


def test_servicers_sign_in_with_the_password_and_out_again(api):
    create_queue(api)
    wrong = api(
        "post", "/queues/lab/servicers", json={"name": "D2", "password": "nope"}, status=401
    )
    assert wrong.json["error"]["code"] == "wrong_password"
    assert wrong.json["error"]["fields"]["password"].startswith("That is not this queue's password")
    signed_in = api(
        "post", "/queues/lab/servicers", json={"name": "Desk 2", "password": PASSWORD}, status=201
    ).json
    token = signed_in["token"]
    assert api("get", "/queues/lab/console", token=token).json["servicer_name"] == "Desk 2"
    signed_out = api("delete", "/queues/lab/servicers/me", token=token).json
    assert signed_out == {"signed_out": "Desk 2", "put_back": None, "served": None}
    refused = api("get", "/queues/lab/console", token=token, status=401).json
    assert refused["error"]["code"] == "signed_out"


def test_signing_out_over_the_api_puts_the_called_customer_back_at_the_front(api):
    owner = create_queue(api)["token"]
    desk2 = api(
        "post", "/queues/lab/servicers", json={"name": "Desk 2", "password": PASSWORD}, status=201
    ).json["token"]
    first, second = (api("post", "/queues/lab/tickets", status=201).json for _ in range(2))
    api("post", "/queues/lab/next", token=desk2)
    api("delete", "/queues/lab/servicers/me?customer=nonsense", token=desk2, status=400)
    signed_out = api("delete", "/queues/lab/servicers/me", token=desk2).json
    assert signed_out["put_back"] == 1
    ticket = api("get", f"/tickets/{first['token']}").json
    assert (ticket["number"], ticket["state"], ticket["position"]) == (1, "waiting", 1)
    assert api("get", f"/tickets/{second['token']}").json["position"] == 2
    # The next call is #1 again; a servicer who says so finishes them as served.
    assert api("post", "/queues/lab/next", token=owner).json["current_number"] == 1
    finished = api("delete", "/queues/lab/servicers/me?customer=served", token=owner)
    assert finished.json["served"] == 1
    assert api("get", f"/tickets/{first['token']}").json["state"] == "served"


def test_servicer_actions_need_a_valid_token_for_that_queue(api):
    owner = create_queue(api, "lab")["token"]
    create_queue(api, "other")
    response = api("post", "/queues/lab/next", status=401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    api("post", "/queues/lab/next", token="forged", status=401)
    api("post", "/queues/other/next", token=owner, status=401)


def test_bad_input_gets_one_error_shape(api):
    invalid = api("post", "/queues", json={"queue_id": "API"}, status=400).json["error"]
    assert invalid["code"] == "invalid"
    assert set(invalid["fields"]) == {"queue_id", "title", "password", "name"}
    not_json = api("post", "/queues", params="{oops", content_type="application/json", status=400)
    assert not_json.json["error"]["code"] == "bad_request"
    assert api("get", "/queues/nosuch", status=404).json["error"]["code"] == "not_found"
    assert api("get", "/tickets/nosuch", status=404).json["error"]["code"] == "not_found"
    nowhere = api("get", "/nothing/here", status=404, documented=False)
    assert nowhere.json["error"]["code"] == "not_found"
    wrong_method = api("put", "/queues", status=405, documented=False)
    assert wrong_method.json["error"]["code"] == "method_not_allowed"
    assert wrong_method.headers["Allow"] == "POST"
    create_queue(api)
    taken = api("post", "/queues", json={**_queue_body("lab")}, status=409).json["error"]
    assert taken["fields"] == {"queue_id": "That name is taken; choose another."}
    assert api("get", "/queues/lab/updates?since=soon", status=400).json["error"]["code"]


def _queue_body(queue_id):
    return {"queue_id": queue_id, "title": "Lab", "password": PASSWORD, "name": "Desk 1"}


def test_updates_answer_at_once_without_since_and_after_a_change(api):
    owner = create_queue(api)["token"]
    ticket = api("post", "/queues/lab/tickets", status=201).json
    now = api("get", f"/tickets/{ticket['token']}/updates").json
    api("post", "/queues/lab/next", token=owner)
    changed = api("get", f"/tickets/{ticket['token']}/updates?since={now['version']}").json
    assert changed["state"] == "called"
    assert changed["version"] > now["version"]
    queue = api("get", f"/queues/lab/updates?since={now['version']}").json
    assert (queue["now_serving"], queue["now_serving_text"]) == (1, "1")
    console = api("get", f"/queues/lab/console/updates?since={now['version']}", token=owner)
    assert console.json["current_number"] == 1


def test_without_room_to_hold_updates_say_when_to_ask_again(make_app):
    api = Api(make_app(push_max_held="0"))
    create_queue(api)
    status = api("get", "/queues/lab").json
    full = api("get", f"/queues/lab/updates?since={status['version']}")
    assert full.json["retry_after"] == 5
    assert full.headers["Retry-After"] == "5"


def test_the_api_works_under_a_path_prefix(app):
    from test_prefix import mounted

    api = Api(mounted(app, "/tools/tan"), prefix="/tools/tan")
    assert api.document["servers"] == [{"url": "http://localhost/tools/tan/api/v1"}]
    created = api("post", "/queues", json=_queue_body("lab"), status=201)
    assert created.location == "http://localhost/tools/tan/api/v1/queues/lab"
    ticket = api("post", "/queues/lab/tickets", status=201).json
    assert ticket["links"] == {
        "page": f"http://localhost/tools/tan/lab/ticket/{ticket['token']}",
        "api": f"http://localhost/tools/tan/api/v1/tickets/{ticket['token']}",
        "updates": f"http://localhost/tools/tan/api/v1/tickets/{ticket['token']}/updates",
    }


def test_the_owner_runs_the_queue_over_the_api(api):
    owner = create_queue(api)["token"]
    settings = api("get", "/queues/lab/settings", token=owner).json
    assert settings["status"] == "open" and settings["opening_hours"] is None
    assert [s["name"] for s in settings["servicers"]] == ["Desk 1"]

    paused = api("post", "/queues/lab/status", json={"status": "paused"}, token=owner).json
    assert paused["status"] == "paused"
    refused = api("post", "/queues/lab/tickets", status=409).json["error"]
    assert refused["code"] == "not_taking" and "paused" in refused["message"]
    api("post", "/queues/lab/status", json={"status": "open"}, token=owner)

    options = {"announcement": "Back at 2", "max_waiting": 1, "no_show_policy": "requeue"}
    assert api("post", "/queues/lab/options", json=options, token=owner).json["max_waiting"] == 1
    assert api("get", "/queues/lab").json["announcement"] == "Back at 2"
    api("post", "/queues/lab/tickets", status=201)
    assert api("post", "/queues/lab/tickets", status=409).json["error"]["code"] == "not_taking"
    cleared = api("post", "/queues/lab/clear", token=owner).json
    assert cleared["status"] == "open"
    assert api("get", "/queues/lab").json["waiting"] == 0

    hours = {"days": [0, 1, 2], "opens": "09:00", "closes": "17:00", "timezone": "Europe/London"}
    with_hours = api("post", "/queues/lab/hours", json=hours, token=owner).json
    assert with_hours["opening_hours"] == {"days": [0, 1, 2], "opens": "09:00", "closes": "17:00"}
    bad = api(
        "post", "/queues/lab/hours", json={**hours, "closes": "09:00"}, token=owner, status=400
    )
    assert bad.json["error"]["fields"]["closes"] == "Closing time must differ from opening time."
    always = api(
        "post", "/queues/lab/hours", json={"always_open": True, "timezone": "UTC"}, token=owner
    )
    assert always.json["opening_hours"] is None


def test_the_owner_invites_and_revokes_servicers_over_the_api(api):
    owner = create_queue(api)["token"]
    made = api("post", "/queues/lab/invitations", json={"name": "Desk 2"}, token=owner, status=201)
    code = made.json["code"]
    assert made.json["link"] == f"http://localhost/lab/serve?code={code}"
    assert made.json["expires_at"] is None
    again = api("post", "/queues/lab/invitations", json={"name": "desk 2"}, token=owner, status=409)
    assert again.json["error"]["code"] == "name_in_use"
    listed = api("get", "/queues/lab/settings", token=owner).json["invitations"]
    assert listed == [{**{k: made.json[k] for k in listed[0]}, "signed_in": False}]
    assert "code" not in listed[0]
    # The invitation signs Desk 2 in, under its name, on one device and another.
    phone = api("post", "/queues/lab/servicers", json={"code": code}, status=201).json
    laptop = api("post", "/queues/lab/servicers", json={"code": code.lower()}, status=201).json
    assert phone["servicer_name"] == laptop["servicer_name"] == "Desk 2"
    forbidden = api("post", "/queues/lab/clear", token=phone["token"], status=403)
    assert forbidden.json["error"]["code"] == "not_owner"
    ticket = api("post", "/queues/lab/tickets", status=201).json
    api("post", "/queues/lab/next", token=phone["token"])
    # Revoking ends both devices' tokens at once and puts the customer back in front.
    invitation_id = made.json["id"]
    api("delete", f"/queues/lab/invitations/{invitation_id}", token=owner)
    for token in (phone["token"], laptop["token"]):
        refused = api("get", "/queues/lab/console", token=token, status=401).json["error"]
        assert refused["code"] == "revoked"
        assert refused["message"].startswith("The owner revoked your access to this queue.")
    after = api("get", f"/tickets/{ticket['token']}").json
    assert (after["state"], after["position"]) == ("waiting", 1)
    refused = api("post", "/queues/lab/servicers", json={"code": code}, status=401).json
    assert refused["error"]["code"] == "invitation_refused"
    assert "revoked" in refused["error"]["message"]
    api("delete", f"/queues/lab/invitations/{invitation_id}", token=owner, status=404)
    assert api("get", "/queues/lab/settings", token=owner).json["invitations"] == []


def test_the_owner_revokes_a_servicer_by_id_over_the_api(api):
    owner = create_queue(api)["token"]
    staff = api("post", "/queues/lab/tokens", json={"name": "Desk 2"}, token=owner, status=201)
    staff_token = staff.json["token"]
    assert api("get", "/queues/lab/console", token=staff_token).json["servicer_name"] == "Desk 2"
    code = api(
        "post", "/queues/lab/invitations", json={"name": "Desk 3"}, token=owner, status=201
    ).json["code"]
    desk3 = api("post", "/queues/lab/servicers", json={"code": code}, status=201).json["token"]
    servicers = api("get", "/queues/lab/settings", token=owner).json["servicers"]
    ids = {s["name"]: s["id"] for s in servicers}
    api("delete", f"/queues/lab/servicers/{ids['Desk 2']}", token=owner)
    api("delete", f"/queues/lab/servicers/{ids['Desk 3']}", token=owner)
    for token in (staff_token, desk3):
        refused = api("get", "/queues/lab/console", token=token, status=401)
        assert refused.json["error"]["code"] == "revoked"
    # Revoking Desk 3 killed their invitation too.
    api("post", "/queues/lab/servicers", json={"code": code}, status=401)
    api("delete", f"/queues/lab/servicers/{ids['Desk 1']}", token=owner, status=409)
    api("delete", f"/queues/lab/servicers/{ids['Desk 2']}", token=owner, status=404)


def test_an_expiring_invitation_stops_signing_in_when_it_expires(app, api):
    owner = create_queue(api)["token"]
    body = {"name": "Desk 2", "valid_for_hours": 8}
    made = api("post", "/queues/lab/invitations", json=body, token=owner, status=201).json
    made_at, expires_at = (moment(made[key]) for key in ("created_at", "expires_at"))
    assert expires_at - made_at == datetime.timedelta(hours=8)
    api("post", "/queues/lab/servicers", json={"code": made["code"]}, status=201)
    later = app.clock() + 8 * 3600 + 1
    app.clock = lambda: later
    refused = api("post", "/queues/lab/servicers", json={"code": made["code"]}, status=401).json
    assert "expired" in refused["error"]["message"]


def test_the_owner_reads_statistics_over_the_api(api):
    owner = create_queue(api)["token"]
    for _ in range(3):
        api("post", "/queues/lab/tickets", status=201)
    for _ in range(3):
        api("post", "/queues/lab/next", token=owner)
    report = api("get", "/queues/lab/statistics", token=owner).json
    assert report["overall"]["tickets"] == 3
    assert report["overall"]["served"] == 2
    assert [s["servicer_name"] for s in report["servicers"]] == ["Desk 1"]


@pytest.mark.parametrize(
    "body",
    [
        {"code": ""},
        {"code": "x" * 41},
        {"code": ["K7P2", "X9QM"]},
        {"code": {"nested": 1}},
        {"code": 12345},
        {"code": "K7P2-X9QM-4RTD"},
        {"code": "\u00e9\u0000\ud7ff"},
    ],
)
def test_hostile_invitation_codes_are_refused_plainly(api, body):
    create_queue(api)
    response = api("post", "/queues/lab/servicers", json=body, status="*")
    assert response.status_int in (400, 401), response
    assert response.json["error"]["code"] in ("invalid", "invitation_refused")


def test_hostile_invitations_are_refused_plainly(api):
    owner = create_queue(api)["token"]
    for body in (
        {"name": ""},
        {"name": "x" * 41},
        {"name": "Desk", "valid_for_hours": 0},
        {"name": "Desk", "valid_for_hours": 10**30},
        {"name": "Desk", "valid_for_hours": "soon"},
        {"name": "Desk", "valid_for_hours": True},
    ):
        response = api("post", "/queues/lab/invitations", json=body, token=owner, status=400)
        assert response.json["error"]["code"] == "invalid", body
    api("delete", "/queues/lab/invitations/999999999999999999", token=owner, status=404)
    api(
        "delete",
        "/queues/lab/invitations/9999999999999999999999",
        token=owner,
        status=404,
        documented=False,
    )


def test_a_console_update_held_while_the_servicer_is_revoked_ends_and_says_so(app, api):
    owner = create_queue(api)["token"]
    code = api(
        "post", "/queues/lab/invitations", json={"name": "Desk 2"}, token=owner, status=201
    ).json["code"]
    staff = api("post", "/queues/lab/servicers", json={"code": code}, status=201).json["token"]
    version = api("get", "/queues/lab/console", token=staff).json["version"]
    answers = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            api("get", f"/queues/lab/console/updates?since={version}", token=staff, status="*")
        )
    )
    waiter.start()
    time.sleep(0.2)
    servicers = api("get", "/queues/lab/settings", token=owner).json["servicers"]
    desk2 = next(s["id"] for s in servicers if s["name"] == "Desk 2")
    api("delete", f"/queues/lab/servicers/{desk2}", token=owner)
    waiter.join(10)
    assert answers[0].status_int == 404
    refused = api("get", "/queues/lab/console", token=staff, status=401)
    assert refused.json["error"]["code"] == "revoked"


def test_a_multipart_body_without_a_boundary_or_with_a_file_is_a_400(api):
    for content_type in ("multipart/form-data", "multipart/form-data; boundary="):
        response = api("post", "/queues", body=b"x", content_type=content_type, status=400)
        assert response.json["error"] == {
            "code": "bad_request",
            "message": "The form could not be read; send it urlencoded.",
        }
    fields = {"queue_id": "lab", "password": PASSWORD, "name": "Desk 1"}
    upload = [("title", "hostname", b"box\n")]
    response = api("post", "/queues", params=fields, upload_files=upload, status=400)
    assert response.json["error"]["message"] == "This form takes no files."


def test_revoking_a_servicer_id_too_long_for_the_database_is_a_404(api):
    owner = create_queue(api)["token"]
    for servicer_id in ("99999999999999999999", "9" * 19):
        response = api("delete", f"/queues/lab/servicers/{servicer_id}", token=owner, status=404)
        assert response.json["error"]["code"] == "not_found"
    api("delete", "/queues/lab/servicers/999999999999999999", token=owner, status=404)


def test_a_field_with_several_wrong_values_gets_one_message(api):
    owner = create_queue(api)["token"]
    hours = {"days": [1, 9, 12], "opens": "09:00", "closes": "17:00", "timezone": "UTC"}
    bad = api("post", "/queues/lab/hours", json=hours, token=owner, status=400).json["error"]
    assert bad["fields"] == {"days": "At most 6."}
    form = {"days": ["1", "x"], "opens": "09:00", "closes": "17:00", "timezone": "UTC"}
    bad = api("post", "/queues/lab/hours", params=form, token=owner, status=400).json["error"]
    assert bad["fields"] == {"days": "Please enter an integer value"}


def test_json_of_the_wrong_type_is_refused_not_stored_as_text(api):
    refused = api("post", "/queues", json={**_queue_body("lab"), "title": False}, status=400).json[
        "error"
    ]
    assert refused == {
        "code": "invalid",
        "message": "Some fields are not valid.",
        "fields": {"title": "Send text."},
    }
    for field, value in (("name", 42), ("password", ["correct horse"]), ("title", {"a": 1})):
        api("post", "/queues", json={**_queue_body("lab"), field: value}, status=400)
    owner = create_queue(api)["token"]
    for options in (
        {"no_show_policy": "end", "max_waiting": "5"},
        {"no_show_policy": "end", "max_waiting": True},
        {"no_show_policy": "end", "announcement": False},
        {"no_show_policy": True},
    ):
        api("post", "/queues/lab/options", json=options, token=owner, status=400)
    whole = {"no_show_policy": "end", "max_waiting": 5.0}
    assert api("post", "/queues/lab/options", json=whole, token=owner).json["max_waiting"] == 5
    for hours in ({"always_open": "yes"}, {"always_open": 1}, {"days": "1"}, {"days": [True]}):
        body = {"days": [0], "opens": "09:00", "closes": "17:00", "timezone": "UTC", **hours}
        api("post", "/queues/lab/hours", json=body, token=owner, status=400)
    settings = api("get", "/queues/lab/settings", token=owner).json
    assert (settings["announcement"], settings["opening_hours"]) == ("", None)


def test_the_server_refuses_what_the_document_refuses(api):
    schemas = api.document["components"]["schemas"]
    assert schemas["CreateQueue"]["properties"]["queue_id"]["pattern"]
    assert schemas["CreateQueue"]["properties"]["title"]["minLength"] == 1
    assert schemas["Options"]["properties"]["max_waiting"]["maximum"] == 100_000
    assert schemas["Hours"]["properties"]["timezone"]["minLength"] == 1
    for queue_id in ("LAB", " lab", "lab\n", "api"):
        refused = api("post", "/queues", json=_queue_body(queue_id), status=400).json["error"]
        assert set(refused["fields"]) == {"queue_id"}, queue_id
    owner = create_queue(api)["token"]
    too_many = {"no_show_policy": "end", "max_waiting": 100_001}
    refused = api("post", "/queues/lab/options", json=too_many, token=owner, status=400)
    assert refused.json["error"]["fields"] == {"max_waiting": "At most 100000."}
    for hours in ({"opens": "09:00+05:00"}, {"closes": "1700"}, {"timezone": ""}):
        body = {"days": [0], "opens": "09:00", "closes": "17:00", "timezone": "UTC", **hours}
        refused = api("post", "/queues/lab/hours", json=body, token=owner, status=400)
        assert set(refused.json["error"]["fields"]) == set(hours)


def test_every_updates_route_documents_the_400_for_a_bad_since(api):
    owner = create_queue(api)["token"]
    ticket = api("post", "/queues/lab/tickets", status=201).json["token"]
    for path in (
        "/queues/lab/updates",
        f"/tickets/{ticket}/updates",
        "/queues/lab/console/updates",
    ):
        for since in ("soon", "%205", "1_0", "%D9%A5"):  # "٥" is a digit to int()
            response = api("get", f"{path}?since={since}", token=owner, status=400)
            assert response.json["error"]["code"] == "bad_request"


def test_ids_that_break_their_path_pattern_are_documented_404s(api):
    owner = create_queue(api)["token"]
    for method, path in (
        ("get", "/queues/UPPER/console"),
        ("post", "/queues/a/next"),
        ("get", "/queues/-lab-/settings"),
        ("delete", "/queues/lab/servicers/-1"),
        ("delete", "/queues/lab/servicers/one"),
    ):
        response = api(method, path, token=owner, status=404)
        assert response.json["error"]["code"] == "not_found"


def test_json_no_database_can_store_or_nested_too_deep_is_a_400(api):
    for body in (
        b'{"queue_id": "lab", "title": "\\ud800", "password": "correct horse", "name": "D"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"title": ' + b"1" * 5000 + b"}",
    ):
        response = api("post", "/queues", body=body, content_type="application/json", status=400)
        assert response.json["error"] == {"code": "bad_request", "message": "Send a JSON object."}


# -- errors that say what is wrong ----------------------------------------------------


def test_a_valid_token_on_a_queue_that_does_not_exist_is_told_there_is_no_such_queue(api):
    owner = create_queue(api)["token"]
    for method, path, body in (
        ("get", "/queues/nosuch/console", None),
        ("post", "/queues/nosuch/next", None),
        ("get", "/queues/nosuch/settings", None),
        ("post", "/queues/nosuch/options", {"no_show_policy": "end"}),
        ("delete", "/queues/nosuch/servicers/me", None),
    ):
        for token in (owner, None):
            refused = api(method, path, json=body, token=token, status=404).json["error"]
            assert refused == {"code": "not_found", "message": "There is no such queue."}, path
    # Another queue's token on a queue that exists is still a 401.
    create_queue(api, "other")
    assert api("get", "/queues/other/console", token=owner, status=401).json["error"]["code"] == (
        "unauthorized"
    )


def test_a_json_field_the_operation_does_not_take_is_refused_by_name(api):
    misspelt = {**_queue_body("lab"), "titel": "Lab"}
    refused = api("post", "/queues", json=misspelt, status=400).json["error"]
    assert refused["code"] == "invalid"
    assert refused["fields"] == {
        "titel": "No such field: this request takes name, password, queue_id, timezone, title."
    }
    api("get", "/queues/lab", status=404)  # nothing was made
    owner = create_queue(api)["token"]
    typo = {"no_show_policy": "requeue", "max_wating": 3}
    refused = api("post", "/queues/lab/options", json=typo, token=owner, status=400).json["error"]
    assert set(refused["fields"]) == {"max_wating"}
    settings = api("get", "/queues/lab/settings", token=owner).json
    assert (settings["no_show_policy"], settings["max_waiting"]) == ("end", None)
    cleared = api("post", "/queues/lab/clear", json={"really": True}, token=owner, status=400)
    assert cleared.json["error"]["fields"] == {
        "really": "No such field: this request takes no fields."
    }
    # An invitation's code signs in alone; a password beside it is not read.
    code = api(
        "post", "/queues/lab/invitations", json={"name": "Desk 2"}, token=owner, status=201
    ).json["code"]
    both = {"code": code, "password": PASSWORD}
    refused = api("post", "/queues/lab/servicers", json=both, status=400).json["error"]
    assert refused["fields"] == {"password": "No such field: this request takes code."}
    wrong_type = api("post", "/queues/lab/servicers", json={"code": 42}, status=400).json["error"]
    assert wrong_type["fields"] == {"code": "Send text."}


def test_a_form_may_still_carry_fields_the_api_does_not_read(api):
    form = {**_queue_body("lab"), "csrf_token": "from a page", "submit": "Create"}
    assert api("post", "/queues", params=form, status=201).json["queue"]["queue_id"] == "lab"


def test_a_json_body_sent_as_another_type_is_told_the_content_type_is_wrong(api):
    body = b'{"queue_id": "lab", "title": "Lab", "password": "correct horse", "name": "Desk 1"}'
    for content_type, sent in (
        ("text/plain", "as text/plain"),
        ("application/jsonx", "as application/jsonx"),
        ("", "without a Content-Type"),
    ):
        response = api("post", "/queues", body=body, content_type=content_type, status=415)
        assert response.json["error"] == {
            "code": "unsupported_media_type",
            "message": f"The body was sent {sent}: send JSON with Content-Type: "
            "application/json (or a form, application/x-www-form-urlencoded).",
        }
    api("get", "/queues/lab", status=404)
    owner = create_queue(api)["token"]
    api("post", "/queues/lab/status", body=b'{"status": "paused"}', token=owner, status=415)
    code = b'{"code": "x"}'
    api("post", "/queues/lab/servicers", body=code, content_type="text/plain", status=415)
    assert api("get", "/queues/lab").json["status"] == "open"
    api("post", "/queues/lab/tickets", status=201)
    press = b'{"expected_current": null}'
    api("post", "/queues/lab/next", body=press, content_type="text/plain", token=owner, status=415)
    assert api("get", "/queues/lab/console", token=owner).json["current_number"] is None


# -- typed values --------------------------------------------------------------------


def test_answers_carry_numbers_seconds_and_utc_times_with_words_beside_them(app, api):
    now = [1_800_000_000.0]
    app.clock = lambda: now[0]
    owner = create_queue(api)["token"]
    tickets = [api("post", "/queues/lab/tickets", status=201).json for _ in range(5)]
    first = tickets[0]
    assert (first["estimate"], first["estimate_text"]) == (None, None)
    console = api("get", "/queues/lab/console", token=owner).json
    assert (console["current_number"], console["called_at"], console["flow"]) == (None, None, None)
    assert console["now_serving"] is None and console["now_serving_text"] == "–"
    for _ in range(4):  # three services of two minutes each: the wait can be estimated
        api("post", "/queues/lab/next", token=owner)
        now[0] += 120
    console = api("get", "/queues/lab/console", token=owner).json
    assert (console["current_number"], console["now_serving"]) == (4, 4)
    assert moment(console["called_at"]).timestamp() == now[0] - 120
    assert console["called"] == "called 2 min ago"
    last = api("get", f"/tickets/{tickets[4]['token']}").json
    assert last["estimate"] == {"low_seconds": 120, "high_seconds": 120}
    assert last["estimate_text"] == "about 2–3 minutes"
    assert "Estimated wait: about 2–3 minutes" in last["detail"]
    status = api("get", "/queues/lab").json
    assert (status["now_serving"], status["now_serving_text"]) == (4, "4")
    made = api("post", "/queues/lab/invitations", json={"name": "Desk 2"}, token=owner, status=201)
    assert made.json["created_at"] == "2027-01-15T08:08:00Z"
    assert made.json["expires_at"] is None


def test_with_several_desks_now_serving_is_the_number_called_last(api):
    owner = create_queue(api)["token"]
    desk2 = api(
        "post", "/queues/lab/servicers", json={"name": "Desk 2", "password": PASSWORD}, status=201
    ).json["token"]
    for _ in range(2):
        api("post", "/queues/lab/tickets", status=201)
    api("post", "/queues/lab/next", token=owner)
    api("post", "/queues/lab/next", token=desk2)
    status = api("get", "/queues/lab").json
    assert (status["now_serving"], status["now_serving_text"]) == (2, "2, 1")
    assert [desk["number"] for desk in status["serving"]] == [2, 1]


def test_every_link_and_location_in_an_answer_is_absolute(api):
    created = api("post", "/queues", json=_queue_body("lab"), status=201)
    assert created.headers["Location"] == "http://localhost/api/v1/queues/lab"
    taken = api("post", "/queues/lab/tickets", status=201)
    token = taken.json["token"]
    assert taken.headers["Location"] == f"http://localhost/api/v1/tickets/{token}"
    assert taken.json["links"] == {
        "page": f"http://localhost/lab/ticket/{token}",
        "api": f"http://localhost/api/v1/tickets/{token}",
        "updates": f"http://localhost/api/v1/tickets/{token}/updates",
    }
    assert (
        api("get", taken.json["links"]["api"].removeprefix("http://localhost/api/v1")).json[
            "number"
        ]
        == 1
    )
