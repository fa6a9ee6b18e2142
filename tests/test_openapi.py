"""The OpenAPI document, take_a_number/openapi.json, against what the server accepts.

tests/test_api.py checks real answers against the document, and tests/test_fuzz.py
sends it every request the document allows; these check what a real answer
cannot show: that the limits written in the file are those of the routes and
the forms.
"""

import json
import os
import re

import jsonschema

from take_a_number import forms, openapi, push, refusals, routing, security
from take_a_number.version import __version__

SERVED = openapi.document("http://localhost/api/v1")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAGS = {"queues", "tickets", "servicers", "owner", "meta"}
# Codes in the code that the API never answers, and why.
NOT_ANSWERED = {
    "too_many_queues": "answered as rate_limited, as every refusal that says a wait",
    "say_what_became": "only the pages ask what became of the customer; the API puts them back",
}


def operations():
    for path, methods in SERVED["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def parameters(name):
    found = [p for _, op in operations() for p in op.get("parameters", ()) if p["name"] == name]
    assert found, name
    return found


def refs(value):
    if isinstance(value, dict):
        yield from ([value["$ref"]] if "$ref" in value else [])
        for item in value.values():
            yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def test_the_served_document_has_every_shared_parameter_and_answer_written_in_place():
    assert {ref.rsplit("/", 1)[0] for ref in refs(SERVED)} == {"#/components/schemas"}
    assert set(SERVED["components"]) == {"schemas", "securitySchemes"}
    assert SERVED["info"]["version"] == __version__


def test_every_shared_part_the_file_holds_is_used():
    with open(os.path.join(os.path.dirname(openapi.__file__), "openapi.json"), "rb") as f:
        written = json.load(f)
    used = set(refs(written["paths"]))
    for kind in openapi.SHARED:
        for name in written["components"][kind]:
            assert f"#/components/{kind}/{name}" in used, (kind, name)


def test_every_operation_can_answer_400_and_404_when_it_has_a_path_parameter():
    for name, operation in operations():
        answers = set(operation["responses"])
        assert "400" in answers, name
        in_path = any(p["in"] == "path" for p in operation.get("parameters", ()))
        assert ("404" in answers) == in_path, name


def test_a_queue_id_is_documented_as_the_routes_and_the_form_accept_it():
    pattern = f"^{routing.QUEUE['queue_id']}$"
    assert {p["schema"]["pattern"] for p in parameters("queue_id")} == {pattern}
    created = openapi.SCHEMAS["CreateQueue"]["properties"]["queue_id"]
    assert created["pattern"] == pattern
    assert created["not"]["enum"] == sorted(forms.RESERVED_QUEUE_IDS)
    # The message the API gives for a queue id that breaks the pattern.
    assert created["description"].startswith(forms.QueueId().message("format", None))


def test_servicer_and_invitation_ids_are_documented_as_the_routes_accept_them():
    for name in ("servicer_id", "invitation_id"):
        for parameter in parameters(name):
            schema = parameter["schema"]
            assert schema["type"] == "integer" and schema["minimum"] == 0
            assert re.fullmatch(routing.SERVICER_ID, str(schema["maximum"]))
            assert not re.fullmatch(routing.SERVICER_ID, str(schema["maximum"] + 1))


def test_a_ticket_token_is_documented_as_the_server_makes_them():
    (pattern,) = {p["schema"]["pattern"] for p in parameters("token")}
    assert all(re.fullmatch(pattern, security.new_token()) for _ in range(100))


def test_since_is_documented_up_to_the_largest_version_the_server_reads():
    assert {p["schema"]["maximum"] for p in parameters("since")} == {push.MAX_VERSION}


def test_the_documented_limits_of_each_body_are_its_forms():
    limits = {"minLength": "min", "maxLength": "max", "minimum": "min", "maximum": "max"}
    for form, name in openapi.FORM_BODIES.items():
        for field, schema in openapi.SCHEMAS[name].get("properties", {}).items():
            validator = form.fields[field]
            if "items" in schema:
                (validator,), schema = validator.validators, schema["items"]
            for keyword, attribute in limits.items():
                if keyword in schema and (keyword, schema[keyword]) != ("minLength", 1):
                    assert getattr(validator, attribute) == schema[keyword], (name, field)


def named(ref):
    return ref.removeprefix("#/components/schemas/")


def error_codes():
    return set(SERVED["components"]["schemas"]["ErrorCode"]["enum"])


def test_every_operation_is_named_for_its_route_and_has_one_tag():
    routes = {
        (method, route.routepath[len(routing.API) :]): route.name
        for route in routing.make_mapper().matchlist
        if route.routepath.startswith(routing.API + "/")
        for method in route.conditions["method"]
    }
    names = []
    for path, methods in SERVED["paths"].items():
        for method, operation in methods.items():
            route = routes[(method.upper(), path)]
            assert operation["operationId"] == route.removeprefix("api_"), path
            assert len(operation["tags"]) == 1 and operation["tags"][0] in TAGS, path
            assert operation["summary"] and operation["responses"], path
            names.append(operation["operationId"])
    assert len(names) == len(set(names))
    assert {tag["name"] for tag in SERVED["tags"]} == TAGS


def walk(value, where=()):
    if isinstance(value, dict):
        yield where, value
        for key, item in value.items():
            yield from walk(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, (*where, index))


def test_every_enum_is_a_named_component_so_generated_clients_cannot_clash():
    """An inline enum makes a generator invent a name (Queue.status: QueueStatus) that may
    be another component's: openapi-python-client then dropped the models of every answer."""
    for where, schema in walk(SERVED):
        if "enum" in schema and "not" not in where:  # not: the reserved queue ids
            assert where[:2] == ("components", "schemas") and len(where) == 3, where


def test_every_nested_object_of_an_answer_is_a_named_component():
    for where, schema in walk(SERVED["components"]["schemas"]):
        if schema.get("type") == "object" and len(where) > 1 and "properties" in schema:
            assert where[-2:] in (("allOf", 1),), where


def codes_in_the_code():
    """Every error code the package's modules write: a status and a code, or a "code"."""
    found = set(refusals.LEFT_CODES.values())
    package = os.path.join(ROOT, "take_a_number")
    for folder, _dirs, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    text = f.read()
                found |= set(re.findall(r'\b[1-5]\d\d, *"([a-z_]+)"', text))
                found |= set(re.findall(r'"code":\s*"([a-z_]+)"', text))
    return found


def test_the_error_code_enum_holds_every_code_the_api_can_answer():
    """A generated client parses ``code`` into its enum: a code left out would break it."""
    found = codes_in_the_code()
    assert set(NOT_ANSWERED) <= found
    assert error_codes() == found - set(NOT_ANSWERED)
    schemas = SERVED["components"]["schemas"]
    assert schemas["Error"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorDetail"}
    assert schemas["ErrorDetail"]["properties"]["code"] == {
        "$ref": "#/components/schemas/ErrorCode"
    }


def test_the_docs_say_what_each_error_code_means_and_its_status():
    with open(os.path.join(ROOT, "docs", "api.md"), encoding="utf-8") as f:
        section = f.read().split("## Error codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \| (.+) \|$", section, re.M)
    assert {code for code, _status, _meaning in rows} == error_codes()
    statuses = {}
    for _name, operation in operations():
        for status, answer in operation["responses"].items():
            content = answer.get("content", {}).get("application/json", {})
            for example in [content.get("example"), *content.get("examples", {}).values()]:
                if example and "error" in example.get("value", example):
                    code = example.get("value", example)["error"]["code"]
                    statuses.setdefault(code, set()).add(status)
    documented = {code: status for code, status, _meaning in rows}
    for code, seen in statuses.items():
        assert seen == {documented[code]}, code


def media_types():
    """Every request body's and answer's media type: (where, its value)."""
    for name, operation in operations():
        body = operation.get("requestBody", {}).get("content", {})
        for media_type in body.values():
            yield f"{name} body", media_type
        for status, answer in operation["responses"].items():
            for media_type in answer.get("content", {}).values():
                yield f"{name} {status}", media_type


def test_every_example_fits_its_schema():
    checked = 0
    for where, media_type in media_types():
        examples = [item["value"] for item in media_type.get("examples", {}).values()]
        if "example" in media_type:
            examples.append(media_type["example"])
        schema = {**media_type["schema"], "components": SERVED["components"]}
        for example in examples:
            errors = jsonschema.Draft202012Validator(schema).iter_errors(example)
            assert not [error.message for error in errors], where
            checked += 1
    assert checked >= 20


def test_every_operation_declares_the_errors_and_headers_it_can_answer():
    body_taking = {"create_queue", "sign_in", "status", "options", "hours", "clear", "tokens"}
    body_taking |= {"invite", "call_next", "done", "no_show", "recall", "undo"}  # buttons: Press
    body_taking |= {"call_number", "password"}
    with_location = {"create_queue", "take"}
    conflicts = {"create_queue", "take", "leave", "sign_in", "tokens", "invite", "revoke"}
    for name, operation in operations():
        answers = operation["responses"]
        op = operation["operationId"]
        for status, answer in answers.items():
            if status.startswith(("4", "5")):
                assert named(answer["content"]["application/json"]["schema"]["$ref"]) == "Error"
            if status == "429":
                assert answer["headers"]["Retry-After"]["required"], name
            if status == "201":
                assert ("Location" in answer.get("headers", {})) == (op in with_location), name
        if operation.get("security") and {} not in operation["security"]:
            assert answers["401"]["headers"]["WWW-Authenticate"]["required"], name
        assert ("403" in answers) == (operation["tags"] == ["owner"]), name
        assert ("415" in answers) == (op in body_taking), name
        # Any POST may be a retry whose Idempotency-Key came with another body (409).
        assert "409" not in answers or op in conflicts or name.startswith("POST "), name
        assert "409" in answers or not name.startswith("POST "), name
    assert "404" not in dict(operations())["POST /queues"]["responses"]


def test_every_body_refuses_fields_it_does_not_have():
    for name in (*openapi.FORM_BODIES.values(),):
        assert openapi.SCHEMAS[name]["additionalProperties"] is False, name
