"""The OpenAPI document, take_a_number/openapi.json, against what the server accepts.

tests/test_api.py checks real answers against the document, and tests/test_fuzz.py
sends it every request the document allows; these check what a real answer
cannot show: that the limits written in the file are those of the routes and
the forms.
"""

import json
import os
import re

from take_a_number import forms, openapi, push, routing, security
from take_a_number.version import __version__

SERVED = openapi.document("http://localhost/api/v1")


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
