"""The JSON API, each response checked against the OpenAPI document it serves."""

import pytest
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_spec_validator import validate
from webtest import TestApp
from werkzeug.datastructures import Headers, ImmutableMultiDict

from take_a_number import main, routing

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

    def __call__(self, method, path, json=None, token=None, status=200, documented=True, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"{self.prefix}/api/v1{path}"
        if json is not None:
            send = getattr(self.client, f"{method.lower()}_json")
            response = send(url, json, headers=headers, status=status)
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


def create_queue(api, queue_id="lab"):
    body = {"queue_id": queue_id, "title": "Lab help", "password": PASSWORD, "name": "Desk 1"}
    return api("post", "/queues", json=body, status=201).json


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
        "now_serving": "–",
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
    assert wrong.json["error"]["fields"] == {
        "password": "That is neither this queue's password nor its staff code."
    }
    signed_in = api(
        "post", "/queues/lab/servicers", json={"name": "Desk 2", "password": PASSWORD}, status=201
    ).json
    token = signed_in["token"]
    assert api("get", "/queues/lab/console", token=token).json["servicer_name"] == "Desk 2"
    assert api("delete", "/queues/lab/servicers/me", token=token).json == {"signed_out": "Desk 2"}
    api("get", "/queues/lab/console", token=token, status=401)


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
    assert queue["now_serving"] == "1"
    console = api("get", f"/queues/lab/console/updates?since={now['version']}", token=owner)
    assert console.json["current_number"] == 1


def test_without_room_to_hold_updates_say_when_to_ask_again(tmp_path, settings):
    settings["push_max_held"] = "0"
    api = Api(main({"here": str(tmp_path)}, **settings))
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
        "api": f"/tools/tan/api/v1/tickets/{ticket['token']}",
    }
