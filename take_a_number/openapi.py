"""The OpenAPI 3.1 description of the JSON API, served at /api/v1/openapi.json.

tests/test_api.py checks real responses against it, so it cannot drift.
"""

from . import __version__


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "The request or one of its fields is not valid."),
    "404": _json(_ref("Error"), "No such queue or ticket."),
    "429": _json(_ref("Error"), "Too many requests; see Retry-After."),
}
UNAUTHORIZED = {
    "401": _json(
        _ref("Error"),
        "No valid servicer token. The code says why: `unauthorized` (no such token), "
        "`signed_out`, `revoked` (the owner revoked this servicer) or `released` (the desk "
        "was idle for servicer_idle_minutes). A token never works again once its servicer "
        "left; the customer they had called is back at the front of the line.",
    )
}

QUEUE_ID = {
    "name": "queue_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{1,18}[a-z0-9]$"},
}
TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
SINCE = {
    "name": "since",
    "in": "query",
    "required": False,
    "description": (
        "The version the client has. Without it, the answer comes at once; with it, the "
        "request is held until the queue's version is past it, or for push_hold_seconds."
    ),
    "schema": {"type": "integer"},
}
BEARER = [{"servicerToken": []}]


def _updates(schema, description):
    return {
        "200": _json(
            schema,
            description + " When the server holds too many requests already, it answers at "
            "once with `retry_after` seconds (also in Retry-After): ask again then.",
        ),
        "204": {"description": "The client went away while the request was held."},
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
            "queue_id": {"type": "string"},
            "title": {"type": "string", "maxLength": 80},
            "password": {"type": "string", "minLength": 8},
            "name": {"type": "string", "maxLength": 40},
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
            "name": {"type": "string", "minLength": 1, "maxLength": 40},
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
            "max_waiting": {"type": ["integer", "null"], "minimum": 1},
            "no_show_policy": {"type": "string", "enum": ["end", "requeue"]},
        },
    },
    "Hours": {
        "type": "object",
        "required": ["timezone"],
        "properties": {
            "always_open": {"type": "boolean"},
            "days": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": 6},
                "description": "0 is Monday.",
            },
            "opens": {"type": "string", "description": "HH:MM"},
            "closes": {"type": "string", "description": "HH:MM"},
            "timezone": {"type": "string", "description": "An IANA zone, like Europe/London."},
        },
    },
    "Staff": {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "maxLength": 40}},
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
    "403": _json(_ref("Error"), "The token is a staff member's, not the owner's."),
}


def _owner_change(summary, body):
    return {
        "post": {
            "summary": summary,
            "security": BEARER,
            "parameters": [QUEUE_ID],
            **({"requestBody": _body(body)} if body else {}),
            "responses": {
                "200": _json(_ref("Settings"), "The queue's settings afterwards."),
                "400": _json(_ref("Error"), "A field is not valid."),
                **OWNER_ONLY,
            },
        }
    }


def _servicer_action(summary):
    return {
        "post": {
            "summary": summary,
            "security": BEARER,
            "parameters": [QUEUE_ID],
            "responses": {
                "200": _json(_ref("Console"), "The servicer's console afterwards."),
                **UNAUTHORIZED,
            },
        }
    }


PATHS = {
    "/queues": {
        "post": {
            "summary": "Create a queue; the creator is signed in as its first servicer.",
            "requestBody": _body("CreateQueue"),
            "responses": {
                "201": _json(_ref("QueueCreated"), "Created."),
                "409": _json(_ref("Error"), "The queue id is taken."),
                **ERRORS,
            },
        }
    },
    "/queues/{queue_id}": {
        "get": {
            "summary": "A queue's status.",
            "parameters": [QUEUE_ID],
            "responses": {"200": _json(_ref("QueueStatus"), "The status."), **ERRORS},
        }
    },
    "/queues/{queue_id}/updates": {
        "get": {
            "summary": "Wait for the queue's status to change.",
            "parameters": [QUEUE_ID, SINCE],
            "responses": {**_updates(_ref("QueueStatus"), "The status."), **ERRORS},
        }
    },
    "/queues/{queue_id}/tickets": {
        "post": {
            "summary": "Take a number.",
            "parameters": [QUEUE_ID],
            "responses": {
                "201": _json(_ref("Ticket"), "The new ticket."),
                "409": _json(_ref("Error"), "Paused, closed, outside opening hours, or full."),
                **ERRORS,
            },
        }
    },
    "/tickets/{token}": {
        "get": {
            "summary": "A ticket: number, state, place in line, estimated wait.",
            "parameters": [TOKEN],
            "responses": {"200": _json(_ref("Ticket"), "The ticket."), **ERRORS},
        },
        "delete": {
            "summary": "Leave the queue.",
            "parameters": [TOKEN],
            "responses": {
                "200": _json(_ref("Ticket"), "The ticket, now left."),
                "409": _json(_ref("Error"), "The ticket is already closed."),
                **ERRORS,
            },
        },
    },
    "/tickets/{token}/updates": {
        "get": {
            "summary": "Wait for the ticket to change: called, place in line, and so on.",
            "parameters": [TOKEN, SINCE],
            "responses": {**_updates(_ref("Ticket"), "The ticket."), **ERRORS},
        }
    },
    "/queues/{queue_id}/servicers": {
        "post": {
            "summary": "Sign in as a servicer; returns a bearer token.",
            "parameters": [QUEUE_ID],
            "requestBody": _body("SignIn"),
            "responses": {
                "201": _json(_ref("SignedIn"), "Signed in."),
                "401": _json(
                    _ref("Error"),
                    "`wrong_password`, or `invitation_refused`: an unknown, revoked or "
                    "expired invitation code (the message says which).",
                ),
                "409": _json(_ref("Error"), "Another servicer is signed in under the name."),
                **ERRORS,
            },
        }
    },
    "/queues/{queue_id}/servicers/me": {
        "delete": {
            "summary": (
                "Sign out. The customer this servicer called goes back to the front of the "
                "line (waiting, first, same number), unless customer=served."
            ),
            "security": BEARER,
            "parameters": [
                QUEUE_ID,
                {
                    "name": "customer",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": ["front", "served"], "default": "front"},
                    "description": "What became of the customer called: put back, or served.",
                },
            ],
            "responses": {
                "200": _json(_ref("SignedOut"), "Signed out."),
                "400": _json(_ref("Error"), "customer is neither front nor served."),
                **UNAUTHORIZED,
            },
        }
    },
    "/queues/{queue_id}/console": {
        "get": {
            "summary": "The servicer's console: their customer and the line.",
            "security": BEARER,
            "parameters": [QUEUE_ID],
            "responses": {"200": _json(_ref("Console"), "The console."), **UNAUTHORIZED},
        }
    },
    "/queues/{queue_id}/console/updates": {
        "get": {
            "summary": "Wait for the console to change.",
            "security": BEARER,
            "parameters": [QUEUE_ID, SINCE],
            "responses": {
                **_updates(_ref("Console"), "The console."),
                "404": _json(
                    _ref("Error"),
                    "The servicer left while the request was held (signed out, revoked or "
                    "released); the next request says which, with 401.",
                ),
                **UNAUTHORIZED,
            },
        }
    },
    "/queues/{queue_id}/next": _servicer_action(
        "Next: finish the current customer and call the next one."
    ),
    "/queues/{queue_id}/done": _servicer_action("Done: finish without calling anyone."),
    "/queues/{queue_id}/no-show": _servicer_action("No show: the current customer wasn't there."),
    "/queues/{queue_id}/recall": _servicer_action("Recall: signal the current customer again."),
    "/queues/{queue_id}/settings": {
        "get": {
            "summary": "The owner's view: status, rules, opening hours, servicers, invitations.",
            "security": BEARER,
            "parameters": [QUEUE_ID],
            "responses": {"200": _json(_ref("Settings"), "The settings."), **OWNER_ONLY},
        }
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
        "post": {
            "summary": "The owner signs a staff member in and gets their bearer token.",
            "security": BEARER,
            "parameters": [QUEUE_ID],
            "requestBody": _body("Staff"),
            "responses": {
                "201": _json(_ref("SignedIn"), "Signed in."),
                "400": _json(_ref("Error"), "A field is not valid."),
                "409": _json(_ref("Error"), "The owner is signed in under this name."),
                **OWNER_ONLY,
            },
        }
    },
    "/queues/{queue_id}/invitations": {
        "post": {
            "summary": (
                "Invite a servicer: one link with a code, shown in this answer only, that "
                "signs them in under this name until revoked or expired."
            ),
            "security": BEARER,
            "parameters": [QUEUE_ID],
            "requestBody": _body("Invite"),
            "responses": {
                "201": _json(_ref("NewInvitation"), "The invitation, with its code and link."),
                "400": _json(_ref("Error"), "A field is not valid."),
                "409": _json(_ref("Error"), "A live invitation has this name."),
                **OWNER_ONLY,
            },
        }
    },
    "/queues/{queue_id}/invitations/{invitation_id}": {
        "delete": {
            "summary": (
                "Revoke an invitation: its code stops working and whoever it signed in is "
                "signed out at once (sessions and tokens), their customer back at the front."
            ),
            "security": BEARER,
            "parameters": [
                QUEUE_ID,
                {
                    "name": "invitation_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                },
            ],
            "responses": {
                "200": _json(_ref("Settings"), "The settings afterwards."),
                "404": _json(_ref("Error"), "No such invitation is live."),
                **OWNER_ONLY,
            },
        }
    },
    "/queues/{queue_id}/servicers/{servicer_id}": {
        "delete": {
            "summary": (
                "Revoke a servicer: signed out at once, sessions and tokens refused (401 "
                "revoked), their invitation dead, the customer they called back at the front."
            ),
            "security": BEARER,
            "parameters": [
                QUEUE_ID,
                {
                    "name": "servicer_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                },
            ],
            "responses": {
                "200": _json(_ref("Settings"), "The settings afterwards."),
                "404": _json(_ref("Error"), "No such servicer is signed in."),
                "409": _json(_ref("Error"), "The owner cannot revoke themselves."),
                **OWNER_ONLY,
            },
        }
    },
    "/queues/{queue_id}/statistics": {
        "get": {
            "summary": "Statistics of every ticket: per queue, per servicer, per day.",
            "security": BEARER,
            "parameters": [QUEUE_ID],
            "responses": {"200": _json(_ref("Statistics"), "The report."), **OWNER_ONLY},
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document.",
            "responses": {"200": {"description": "The OpenAPI document."}},
        }
    },
}


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
