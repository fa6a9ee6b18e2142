"""The OpenAPI 3.1 description of the JSON API, served at /api/v1/openapi.json.

The document is the data file ``openapi.json`` beside this module, loaded once.
There, an operation names each parameter and error answer it shares with others
by a ``$ref`` to ``components``; the document served has them written out in
place, with this server's URL and the package's version. It cannot drift:
tests/test_openapi.py checks its patterns and limits against routing.py and
forms.py, tests/test_api.py checks real answers against it, and
tests/test_fuzz.py runs schemathesis against it. The API refuses every JSON body
the document refuses (``refusals``), before its forms' own checks.
"""

import json
import os
import re

from . import forms
from .version import __version__

# Shared parts that operations name with a $ref, and that the served document has in place.
SHARED = ("parameters", "responses", "headers")


def _in_place(value, components):
    """``value`` with each $ref to a shared part replaced by that part."""
    if isinstance(value, list):
        return [_in_place(item, components) for item in value]
    if not isinstance(value, dict):
        return value
    kind, _, name = value.get("$ref", "").removeprefix("#/components/").partition("/")
    if kind in SHARED:
        return _in_place(components[kind][name], components)
    return {key: _in_place(item, components) for key, item in value.items()}


def _load():
    with open(os.path.join(os.path.dirname(__file__), "openapi.json"), encoding="utf-8") as f:
        written = json.load(f)
    components = written["components"]
    return {
        **written,
        "paths": _in_place(written["paths"], components),
        "components": {kind: part for kind, part in components.items() if kind not in SHARED},
    }


DOCUMENT = _load()
PATHS = DOCUMENT["paths"]
SCHEMAS = DOCUMENT["components"]["schemas"]

# The body each form of the API comes in (api.ApiController._fields); a form not
# here (forms.EmptyForm, a button) takes no fields at all.
FORM_BODIES = {
    forms.CreateQueueForm: "CreateQueue",
    forms.SignInForm: "PasswordSignIn",
    forms.InvitedSignInForm: "InvitedSignIn",
    forms.StaffForm: "Staff",
    forms.StatusForm: "StatusChange",
    forms.OptionsForm: "Options",
    forms.HoursForm: "Hours",
    forms.PressForm: "Press",
    forms.CallNumberForm: "CallNumber",
    forms.InvitationForm: "Invite",
    forms.ChangePasswordForm: "PasswordChange",
}


def refusals(form, body):
    """``{field: message}`` for each field of a JSON body that this document refuses.

    A field the body's schema does not have is refused (every body schema has
    ``additionalProperties: false``: a misspelt field is never ignored). The
    keywords the request bodies use (type, enum, not enum, lengths, pattern,
    minimum, maximum, items) are checked as JSON Schema checks them; a missing
    field is left to the form, which says what to fill in.
    """
    name = FORM_BODIES.get(form)
    properties = SCHEMAS[name]["properties"] if name else {}
    errors = {}
    for field, value in body.items():
        if field in properties:
            message = _refusal(properties[field], value)
        else:
            message = _unknown_field(properties)
        if message:
            errors[field] = message
    return errors


def _unknown_field(properties):
    if not properties:
        return "No such field: this request takes no fields."
    return "No such field: this request takes " + ", ".join(sorted(properties)) + "."


_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list",
    "null": "null",
}


def _json_type(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"  # JSON Schema: 1.0 is an integer
    return {str: "string", float: "number", list: "array", dict: "object"}[type(value)]


def _pattern(pattern):
    # JSON Schema's $ is the end of the text; Python's also matches before a final newline.
    return re.compile(pattern.replace("$", r"\Z"))


def _resolved(schema):
    """A schema, or the named one (an enum's) that it refers to."""
    if "$ref" in schema:
        return SCHEMAS[schema["$ref"].removeprefix("#/components/schemas/")]
    return schema


def _refusal(schema, value):
    """Why ``value`` does not fit ``schema``, or None."""
    schema = _resolved(schema)
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    kind = _json_type(value)
    if kind not in types:
        return "Send " + " or ".join(_TYPE_WORDS[t] for t in types) + "."
    if kind == "string":
        if len(value) < schema.get("minLength", 0):
            minimum = schema["minLength"]
            return "Please fill this in." if minimum == 1 else f"Use at least {minimum} characters."
        if len(value) > schema.get("maxLength", len(value)):
            return f"At most {schema['maxLength']} characters."
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            return schema.get("description", "Please fill this in.")
        if value in schema.get("not", {}).get("enum", ()):
            return f"'{value}' is reserved; choose another."
        if "enum" in schema and value not in schema["enum"]:
            return "Use one of: " + ", ".join(schema["enum"]) + "."
    if kind == "integer":
        if value < schema.get("minimum", value):
            return f"At least {schema['minimum']}."
        if value > schema.get("maximum", value):
            return f"At most {schema['maximum']}."
    if kind == "array":
        for item in value:
            message = _refusal(schema["items"], item)
            if message:
                return message
    return None


def document(server_url):
    """The OpenAPI document, with the server URL of the request that asked for it."""
    return {
        **DOCUMENT,
        "info": {**DOCUMENT["info"], "version": __version__},
        "servers": [{"url": server_url}],
    }
