"""The OpenAPI 3.1 description of the JSON API, served at /api/v1/openapi.json.

tests/test_api.py checks real responses against it, so it cannot drift, and
tests/test_fuzz.py runs schemathesis against it. The API refuses every JSON
body the document refuses (``refusals``), before its forms' own checks.
"""

import re

from . import forms, routing
from .version import __version__


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description):
    return _json(_ref("Error"), description)


# Every operation can be sent an address (path or query) that is not UTF-8.
BAD_REQUEST = {
    "400": _error(
        "`bad_request`: the address is not UTF-8, or the body cannot be read (not a JSON "
        "object, a multipart body without a boundary, a file). `invalid`: see `fields`."
    )
}
# A path parameter that breaks its pattern matches no route.
NOT_FOUND = {"404": _error("No such queue, ticket or servicer, or an id that breaks its pattern.")}


def _retry_after(required):
    return {
        "Retry-After": {
            "description": "Seconds to wait before asking again.",
            "required": required,
            "schema": {"type": "integer", "minimum": 1},
        }
    }


RATE_LIMITED = {
    "429": {**_error("Too many requests; wait as Retry-After says."), "headers": _retry_after(True)}
}
UNAUTHORIZED = {
    "401": _error(
        "No valid servicer token. The code says why: `unauthorized` (no such token), "
        "`signed_out`, `revoked` (the owner revoked this servicer) or `released` (the desk "
        "was idle for servicer_idle_minutes). A token never works again once its servicer "
        "left; the customer they had called is back at the front of the line."
    )
}

QUEUE_ID = {
    "name": "queue_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": f"^{routing.QUEUE['queue_id']}$"},
}
# A ticket's token: URL-safe base64 (security.new_token); anything else is no ticket's.
TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
}
SERVICER_ID = {
    "name": "servicer_id",
    "in": "path",
    "required": True,
    # routing.SERVICER_ID: at most 18 digits.
    "schema": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
}
INVITATION_ID = dict(SERVICER_ID, name="invitation_id")
SINCE = {
    "name": "since",
    "in": "query",
    "required": False,
    "description": (
        "The version the client has. Without it, the answer comes at once; with it, the "
        "request is held until the queue's version is past it, or for push_hold_seconds. "
        "Anything else is a 400."
    ),
    "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},  # application.MAX_VERSION
}
BEARER = [{"servicerToken": []}]


def _updates(schema, description):
    return {
        "200": {
            **_json(
                schema,
                description + " When the server holds too many requests already, it answers "
                "at once with `retry_after` seconds (also in Retry-After): ask again then.",
            ),
            "headers": _retry_after(False),
        },
        "204": {"description": "The client went away while the request was held."},
    }


# Text that is more than spaces: the forms strip it, then require something.
NOT_BLANK = r"\S"


def _text(max_length):
    return {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": NOT_BLANK}


TIME_OF_DAY = {
    "type": ["string", "null"],
    "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
    "description": "Use hours and minutes, like 09:00; null or left out with always_open.",
}

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "retry_after": {
                        "type": "integer",
                        "description": "With 429: seconds to wait, as in Retry-After.",
                    },
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "A message per invalid field.",
                    },
                },
            }
        },
    },
    "Queue": {
        "type": "object",
        "required": [
            "queue_id",
            "title",
            "version",
            "now_serving",
            "waiting",
            "status",
            "announcement",
            "accepting",
            "notice",
        ],
        "properties": {
            "queue_id": {"type": "string"},
            "title": {"type": "string"},
            "version": {"type": "integer", "description": "Moves on with every change."},
            "now_serving": {"type": "string", "description": "'41, 42', or '–'."},
            "waiting": {"type": "integer"},
            "status": {"type": "string", "enum": ["open", "paused", "closed"]},
            "announcement": {"type": "string"},
            "accepting": {"type": "boolean", "description": "Whether numbers can be taken."},
            "notice": {"type": "string", "description": "Why not, in words."},
            "retry_after": {"type": "integer"},
        },
    },
    "QueueStatus": {
        "allOf": [
            _ref("Queue"),
            {
                "type": "object",
                "required": ["serving"],
                "properties": {
                    "serving": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["number", "servicer_name"],
                            "properties": {
                                "number": {"type": "integer"},
                                "servicer_name": {"type": "string"},
                            },
                        },
                    }
                },
            },
        ]
    },
    "Ticket": {
        "allOf": [
            _ref("Queue"),
            {
                "type": "object",
                "required": [
                    "token",
                    "number",
                    "state",
                    "message",
                    "detail",
                    "is_open",
                    "can_leave",
                    "links",
                ],
                "properties": {
                    "token": {"type": "string", "description": "The ticket's capability."},
                    "number": {"type": "integer"},
                    "state": {
                        "type": "string",
                        "enum": ["waiting", "called", "served", "no_show", "left", "cleared"],
                    },
                    "message": {"type": "string"},
                    "detail": {"type": "string"},
                    "servicer_name": NULLABLE_STRING,
                    "recalls": {"type": "integer"},
                    "ahead": NULLABLE_INT,
                    "position": NULLABLE_INT,
                    "estimate": NULLABLE_STRING,
                    "is_open": {"type": "boolean"},
                    "can_leave": {"type": "boolean"},
                    "can_move_back": {"type": "boolean"},
                    "can_take_new": {"type": "boolean"},
                    "your_turn": {"type": "boolean"},
                    "is_next": {"type": "boolean"},
                    "links": {
                        "type": "object",
                        "required": ["page", "api"],
                        "properties": {
                            "page": {"type": "string", "description": "The ticket page."},
                            "api": {"type": "string"},
                        },
                    },
                },
            },
        ]
    },
    "Console": {
        "allOf": [
            _ref("Queue"),
            {
                "type": "object",
                "required": [
                    "servicer_name",
                    "has_current",
                    "current_number",
                    "called",
                    "waiting_detail",
                    "others",
                ],
                "properties": {
                    "servicer_name": {"type": "string"},
                    "is_owner": {"type": "boolean"},
                    "next_label": {"type": "string", "enum": ["Next", "Start serving"]},
                    "has_current": {"type": "boolean"},
                    "current_number": {"type": ["integer", "string"]},
                    "called_at": {"type": ["number", "null"]},
                    "called": {"type": "string"},
                    "waiting_detail": {"type": "string"},
                    "nobody_waiting": {"type": "boolean"},
                    "others": {"type": "string"},
                    "flow": {
                        "type": "string",
                        "enum": ["", "growing", "shrinking", "steady"],
                        "description": "Whether the line grows: arrivals vs services per minute.",
                    },
                    "flow_headline": {"type": "string"},
                    "flow_detail": {"type": "string"},
                },
            },
        ]
    },
    "CreateQueue": {
        "type": "object",
        "required": ["queue_id", "title", "password", "name"],
        "properties": {
            "queue_id": {
                "type": "string",
                "pattern": f"^{routing.QUEUE['queue_id']}$",
                "not": {"enum": sorted(forms.RESERVED_QUEUE_IDS)},
                "description": forms.QueueId().message("format", None)
                + " Some words are reserved, such as api and static.",
            },
            "title": _text(80),
            "password": {"type": "string", "minLength": 8, "maxLength": 200},
            "name": _text(40),
        },
    },
    "SignIn": {
        "description": "With `code`, an invitation signs its servicer in; else the password.",
        "anyOf": [
            {
                "type": "object",
                "description": "The owner: the queue's password and a name or desk.",
                "required": ["password", "name"],
                "properties": {
                    "password": {"type": "string", "minLength": 1, "maxLength": 200},
                    "name": {"type": "string", "minLength": 1, "maxLength": 40},
                },
            },
            {
                "type": "object",
                "description": (
                    "An invited servicer: the code of their invitation. They are signed in "
                    "under the invitation's name, on any device, until it is revoked or expires."
                ),
                "required": ["code"],
                "properties": {"code": {"type": "string", "minLength": 1, "maxLength": 40}},
            },
        ],
    },
    "Invite": {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": _text(40),
            "valid_for_hours": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": 8760,
                "description": "How long the link works; without it, until revoked.",
            },
        },
    },
    "Invitation": {
        "type": "object",
        "required": ["id", "name", "created_at", "expires_at", "signed_in"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "created_at": {"type": "number"},
            "expires_at": {"type": ["number", "null"]},
            "signed_in": {"type": "boolean"},
        },
    },
    "NewInvitation": {
        "allOf": [
            _ref("Invitation"),
            {
                "type": "object",
                "required": ["code", "link"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": "Shown in this answer only; the server keeps a hash.",
                    },
                    "link": {"type": "string", "description": "The console, with the code."},
                },
            },
        ]
    },
    "QueueCreated": {
        "type": "object",
        "required": ["queue", "servicer_name", "token"],
        "properties": {
            "queue": _ref("Queue"),
            "servicer_name": {"type": "string"},
            "token": {"type": "string", "description": "The owner's bearer token."},
        },
    },
    "SignedIn": {
        "type": "object",
        "required": ["servicer_name", "token"],
        "properties": {"servicer_name": {"type": "string"}, "token": {"type": "string"}},
    },
    "Settings": {
        "type": "object",
        "required": [
            "status",
            "announcement",
            "max_waiting",
            "no_show_policy",
            "opening_hours",
            "timezone",
            "servicers",
            "invitations",
        ],
        "properties": {
            "status": {"type": "string", "enum": ["open", "paused", "closed"]},
            "announcement": {"type": "string"},
            "max_waiting": {"type": ["integer", "null"]},
            "no_show_policy": {"type": "string", "enum": ["end", "requeue"]},
            "opening_hours": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["days", "opens", "closes"],
                        "properties": {
                            "days": {"type": "array", "items": {"type": "integer"}},
                            "opens": {"type": "string"},
                            "closes": {"type": "string"},
                        },
                    },
                ]
            },
            "timezone": {"type": "string"},
            "servicers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "name", "is_owner", "invitation_id"],
                    "properties": {
                        "id": {"type": "integer"},
                        "name": {"type": "string"},
                        "is_owner": {"type": "boolean"},
                        "invitation_id": {"type": ["integer", "null"]},
                    },
                },
            },
            "invitations": {
                "type": "array",
                "description": "Invitations not revoked (expired ones too), without codes.",
                "items": _ref("Invitation"),
            },
        },
    },
    "StatusChange": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["open", "paused", "closed"]}},
    },
    "Options": {
        "type": "object",
        "required": ["no_show_policy"],
        "properties": {
            "announcement": {"type": "string", "maxLength": 200},
            "max_waiting": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": 100_000,
                "description": "The most people waiting; null for no limit.",
            },
            "no_show_policy": {"type": "string", "enum": ["end", "requeue"]},
        },
    },
    "Hours": {
        "type": "object",
        "required": ["timezone"],
        "description": "Without always_open, days, opens and closes are required.",
        "properties": {
            "always_open": {"type": "boolean"},
            "days": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 6},
                "description": "0 is Monday.",
            },
            "opens": TIME_OF_DAY,
            "closes": TIME_OF_DAY,
            "timezone": {
                "type": "string",
                "minLength": 1,
                "pattern": NOT_BLANK,
                "description": "An IANA zone, like Europe/London.",
            },
        },
    },
    "Staff": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": _text(40)},
    },
    "Statistics": {
        "type": "object",
        "required": ["overall", "servicers", "days"],
        "description": "Counts, and mean/median/p90 of wait, service and total seconds.",
        "properties": {
            "overall": {"type": "object"},
            "servicers": {"type": "array", "items": {"type": "object"}},
            "days": {"type": "array", "items": {"type": "object"}},
        },
    },
    "SignedOut": {
        "type": "object",
        "required": ["signed_out", "put_back", "served"],
        "properties": {
            "signed_out": {"type": "string"},
            "put_back": {
                "type": ["integer", "null"],
                "description": "The number put back at the front of the line, if any.",
            },
            "served": {
                "type": ["integer", "null"],
                "description": "The number finished as served (customer=served), if any.",
            },
        },
    },
}


def _body(name):
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


OWNER_ONLY = {
    **UNAUTHORIZED,
    "403": _error("The token is a staff member's, not the owner's."),
}


def _operation(summary, parameters, responses, body=None, security=None):
    """One operation; every one can answer 400, and 404 when it has a path parameter."""
    return {
        "summary": summary,
        **({"security": security} if security else {}),
        **({"parameters": parameters} if parameters else {}),
        **({"requestBody": _body(body)} if body else {}),
        "responses": {
            **responses,
            **BAD_REQUEST,
            **(NOT_FOUND if any(p["in"] == "path" for p in parameters) else {}),
        },
    }


def _owner_change(summary, body):
    responses = {"200": _json(_ref("Settings"), "The queue's settings afterwards."), **OWNER_ONLY}
    return {"post": _operation(summary, [QUEUE_ID], responses, body, BEARER)}


def _servicer_action(summary):
    responses = {
        "200": _json(_ref("Console"), "The servicer's console afterwards."),
        **UNAUTHORIZED,
    }
    return {"post": _operation(summary, [QUEUE_ID], responses, security=BEARER)}


PATHS = {
    "/queues": {
        "post": _operation(
            "Create a queue; the creator is signed in as its first servicer.",
            [],
            {
                "201": _json(_ref("QueueCreated"), "Created."),
                "409": _error("The queue id is taken."),
                **RATE_LIMITED,
            },
            "CreateQueue",
        )
    },
    "/queues/{queue_id}": {
        "get": _operation(
            "A queue's status.", [QUEUE_ID], {"200": _json(_ref("QueueStatus"), "The status.")}
        )
    },
    "/queues/{queue_id}/updates": {
        "get": _operation(
            "Wait for the queue's status to change.",
            [QUEUE_ID, SINCE],
            _updates(_ref("QueueStatus"), "The status."),
        )
    },
    "/queues/{queue_id}/tickets": {
        "post": _operation(
            "Take a number.",
            [QUEUE_ID],
            {
                "201": _json(_ref("Ticket"), "The new ticket."),
                "409": _error("Paused, closed, outside opening hours, or full."),
                **RATE_LIMITED,
            },
        )
    },
    "/tickets/{token}": {
        "get": _operation(
            "A ticket: number, state, place in line, estimated wait.",
            [TOKEN],
            {"200": _json(_ref("Ticket"), "The ticket.")},
        ),
        "delete": _operation(
            "Leave the queue.",
            [TOKEN],
            {
                "200": _json(_ref("Ticket"), "The ticket, now left."),
                "409": _error("The ticket is already closed."),
            },
        ),
    },
    "/tickets/{token}/updates": {
        "get": _operation(
            "Wait for the ticket to change: called, place in line, and so on.",
            [TOKEN, SINCE],
            _updates(_ref("Ticket"), "The ticket."),
        )
    },
    "/queues/{queue_id}/servicers": {
        "post": _operation(
            "Sign in as a servicer; returns a bearer token.",
            [QUEUE_ID],
            {
                "201": _json(_ref("SignedIn"), "Signed in."),
                "401": _error(
                    "`wrong_password`, or `invitation_refused`: an unknown, revoked or "
                    "expired invitation code (the message says which)."
                ),
                "409": _error("Another servicer is signed in under the name."),
                **RATE_LIMITED,
            },
            "SignIn",
        )
    },
    "/queues/{queue_id}/servicers/me": {
        "delete": _operation(
            "Sign out. The customer this servicer called goes back to the front of the "
            "line (waiting, first, same number), unless customer=served.",
            [
                QUEUE_ID,
                {
                    "name": "customer",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": ["front", "served"], "default": "front"},
                    "description": "What became of the customer called: put back, or served.",
                },
            ],
            {"200": _json(_ref("SignedOut"), "Signed out."), **UNAUTHORIZED},
            security=BEARER,
        )
    },
    "/queues/{queue_id}/console": {
        "get": _operation(
            "The servicer's console: their customer and the line.",
            [QUEUE_ID],
            {"200": _json(_ref("Console"), "The console."), **UNAUTHORIZED},
            security=BEARER,
        )
    },
    "/queues/{queue_id}/console/updates": {
        "get": _operation(
            "Wait for the console to change.",
            [QUEUE_ID, SINCE],
            {**_updates(_ref("Console"), "The console."), **UNAUTHORIZED},
            security=BEARER,
        )
    },
    "/queues/{queue_id}/next": _servicer_action(
        "Next: finish the current customer and call the next one."
    ),
    "/queues/{queue_id}/done": _servicer_action("Done: finish without calling anyone."),
    "/queues/{queue_id}/no-show": _servicer_action("No show: the current customer wasn't there."),
    "/queues/{queue_id}/recall": _servicer_action("Recall: signal the current customer again."),
    "/queues/{queue_id}/settings": {
        "get": _operation(
            "The owner's view: status, rules, opening hours, servicers, invitations.",
            [QUEUE_ID],
            {"200": _json(_ref("Settings"), "The settings."), **OWNER_ONLY},
            security=BEARER,
        )
    },
    "/queues/{queue_id}/status": _owner_change(
        "Open, pause (no new numbers; the line is kept) or close the queue.", "StatusChange"
    ),
    "/queues/{queue_id}/options": _owner_change(
        "The announcement, the most people waiting, and the no-show rule.", "Options"
    ),
    "/queues/{queue_id}/hours": _owner_change(
        "Opening hours (days, times, time zone), or always open.", "Hours"
    ),
    "/queues/{queue_id}/clear": _owner_change("Clear the waiting line.", None),
    "/queues/{queue_id}/tokens": {
        "post": _operation(
            "The owner signs a staff member in and gets their bearer token.",
            [QUEUE_ID],
            {
                "201": _json(_ref("SignedIn"), "Signed in."),
                "409": _error("The owner is signed in under this name."),
                **OWNER_ONLY,
            },
            "Staff",
            BEARER,
        )
    },
    "/queues/{queue_id}/invitations": {
        "post": _operation(
            "Invite a servicer: one link with a code, shown in this answer only, that "
            "signs them in under this name until revoked or expired.",
            [QUEUE_ID],
            {
                "201": _json(_ref("NewInvitation"), "The invitation, with its code and link."),
                "409": _error("A live invitation has this name."),
                **OWNER_ONLY,
            },
            "Invite",
            BEARER,
        )
    },
    "/queues/{queue_id}/invitations/{invitation_id}": {
        "delete": _operation(
            "Revoke an invitation: its code stops working and whoever it signed in is "
            "signed out at once (sessions and tokens), their customer back at the front.",
            [QUEUE_ID, INVITATION_ID],
            {"200": _json(_ref("Settings"), "The settings afterwards."), **OWNER_ONLY},
            security=BEARER,
        )
    },
    "/queues/{queue_id}/servicers/{servicer_id}": {
        "delete": _operation(
            "Revoke a servicer: signed out at once, sessions and tokens refused (401 "
            "revoked), their invitation dead, the customer they called back at the front.",
            [QUEUE_ID, SERVICER_ID],
            {
                "200": _json(_ref("Settings"), "The settings afterwards."),
                "409": _error("The owner cannot revoke themselves."),
                **OWNER_ONLY,
            },
            security=BEARER,
        )
    },
    "/queues/{queue_id}/statistics": {
        "get": _operation(
            "Statistics of every ticket: per queue, per servicer, per day.",
            [QUEUE_ID],
            {"200": _json(_ref("Statistics"), "The report."), **OWNER_ONLY},
            security=BEARER,
        )
    },
    "/openapi.json": {
        "get": _operation("This document.", [], {"200": {"description": "The OpenAPI document."}})
    },
}

# The body each form of the API comes in (api.ApiController._validate).
FORM_BODIES = {
    forms.CreateQueueForm: "CreateQueue",
    forms.SignInForm: "SignIn",
    forms.StaffForm: "Staff",
    forms.StatusForm: "StatusChange",
    forms.OptionsForm: "Options",
    forms.HoursForm: "Hours",
}


def refusals(form, body):
    """``{field: message}`` for each field of a JSON body that this document refuses.

    The keywords the request bodies use (type, enum, not enum, lengths,
    pattern, minimum, maximum, items) are checked as JSON Schema checks them;
    a missing field is left to the form, which says what to fill in.
    """
    name = FORM_BODIES.get(form)
    properties = SCHEMAS[name]["properties"] if name else {}
    errors = {}
    for field, value in body.items():
        if field in properties:
            message = _refusal(properties[field], value)
            if message:
                errors[field] = message
    return errors


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


def _refusal(schema, value):
    """Why ``value`` does not fit ``schema``, or None."""
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
        "openapi": "3.1.0",
        "info": {
            "title": "Take A Number",
            "version": __version__,
            "description": (
                "A deli-counter queue: take a number, be told when it is your turn. "
                'Errors are always {"error": {"code", "message", "fields"?}}.'
            ),
        },
        "servers": [{"url": server_url}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"servicerToken": {"type": "http", "scheme": "bearer"}},
        },
    }
