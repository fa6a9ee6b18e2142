"""Every URL of the app: one named route each, restricted by method."""

from routes import Mapper

GET = {"method": ["GET", "HEAD"]}
POST = {"method": ["POST"]}
DELETE = {"method": ["DELETE"]}
API = "/api/v1"
# The owner's changes (owner_actions.CHANGES) and their paths, on the pages and in the API.
OWNER_CHANGES = [
    ("status", "status"),
    ("options", "options"),
    ("hours", "hours"),
    ("clear", "clear"),
]
# Revoking a servicer or an invitation: action and path.
REVOCATIONS = [
    ("revoke", "servicers/{servicer_id}"),
    ("revoke_invitation", "invitations/{invitation_id}"),
]
# The servicer console's buttons: route name and path (actions.BUTTONS).
BUTTONS = [
    ("call_next", "next"),
    ("done", "done"),
    ("no_show", "no-show"),
    ("recall", "recall"),
    ("call_number", "call"),
    ("undo", "undo"),
]
QUEUE = {"queue_id": r"[a-z0-9][a-z0-9-]{1,18}[a-z0-9]"}
# A servicer's id: at most 18 digits, so that every id that matches fits in
# SQLite's 64-bit integers (a longer one is no servicer's: 404).
SERVICER_ID = r"\d{1,18}"
# What each path variable must be, or the path matches no route (404). A
# ticket's token is looked up as it stands.
REQUIREMENTS = {
    **QUEUE,
    "servicer_id": SERVICER_ID,
    "invitation_id": SERVICER_ID,  # the same
    "path": r"[A-Za-z0-9._-]+",  # a static file
}


def make_mapper():
    mapper = Mapper(explicit=True)
    mapper.minimization = False

    def route(name, path, controller, action, conditions, **defaults):
        mapper.connect(
            name,
            path,
            controller=controller,
            action=action,
            conditions=conditions,
            requirements={k: v for k, v in REQUIREMENTS.items() if f"{{{k}}}" in path},
            **defaults,
        )

    # The JSON API first: "api" is a reserved word, never a queue id.
    queue = API + "/queues/{queue_id}"
    route("api_openapi", API + "/openapi.json", "api", "openapi", GET)
    route("api_health", API + "/health", "api", "health", GET)
    route("api_create_queue", API + "/queues", "api", "create_queue", POST)
    route("api_queue", queue, "api", "queue", GET)
    route("api_queue_updates", queue + "/updates", "api", "queue_updates", GET)
    route("api_board", queue + "/board", "api", "board", GET)
    route("api_board_updates", queue + "/board/updates", "api", "board_updates", GET)
    route("api_take", queue + "/tickets", "api", "take", POST)
    route("api_ticket", API + "/tickets/{token}", "api", "ticket", GET)
    route("api_leave", API + "/tickets/{token}", "api", "leave", DELETE)
    route("api_ticket_updates", API + "/tickets/{token}/updates", "api", "ticket_updates", GET)
    route("api_move_back", API + "/tickets/{token}/later", "api", "move_back", POST)
    route("api_sign_in", queue + "/servicers", "api", "sign_in", POST)
    route("api_sign_out", queue + "/servicers/me", "api", "sign_out", DELETE)
    route("api_console", queue + "/console", "api", "console", GET)
    route("api_console_updates", queue + "/console/updates", "api", "console_updates", GET)
    for button, path in BUTTONS:
        route(f"api_{button}", f"{queue}/{path}", "api", "press", POST, button=button)
    route("api_settings", queue + "/settings", "api", "settings", GET)
    route("api_tokens", queue + "/tokens", "api", "issue_token", POST)
    route("api_statistics", queue + "/statistics", "api", "statistics", GET)
    route("api_tickets", queue + "/tickets", "api", "tickets", GET)
    for change, path in OWNER_CHANGES:
        route(f"api_{change}", f"{queue}/{path}", "api", "change", POST, change=change)
    for action, path in REVOCATIONS:
        route(f"api_{action}", f"{queue}/{path}", "api", action, DELETE)
    route("api_invite", queue + "/invitations", "api", "invite", POST)
    route("api_password", queue + "/password", "api", "change_password", POST)

    route("home", "/", "owner", "home", GET)
    route("create_queue", "/", "owner", "create_queue", POST)
    route("static", "/static/{path}", "static", "serve", GET)
    # Where browsers look for an icon when a page names none (pages do name it).
    # (route() has a parameter "path" of its own.)
    mapper.connect(
        "favicon",
        "/favicon.ico",
        controller="static",
        action="serve",
        conditions=GET,
        path="favicon.ico",
    )

    route("join", "/{queue_id}", "customer", "join", GET)
    route("queue_updates", "/{queue_id}/updates", "customer", "queue_updates", GET)
    route("take", "/{queue_id}/take", "customer", "take", POST)
    route("ticket", "/{queue_id}/ticket/{token}", "customer", "ticket", GET)
    route("ticket_updates", "/{queue_id}/ticket/{token}/updates", "customer", "updates", GET)
    route("leave", "/{queue_id}/ticket/{token}/leave", "customer", "leave", POST)
    route("move_back", "/{queue_id}/ticket/{token}/later", "customer", "move_back", POST)

    route("console", "/{queue_id}/serve", "servicer", "console", GET)
    route("console_updates", "/{queue_id}/serve/updates", "servicer", "updates", GET)
    route("sign_in", "/{queue_id}/sign-in", "servicer", "sign_in", POST)
    route("confirm_sign_out", "/{queue_id}/serve/sign-out", "servicer", "confirm_sign_out", GET)
    route("sign_out", "/{queue_id}/sign-out", "servicer", "sign_out", POST)
    for button, path in BUTTONS:
        route(button, f"/{{queue_id}}/serve/{path}", "servicer", "press", POST, button=button)

    manage = "/{queue_id}/manage"
    route("manage", manage, "owner", "manage", GET)
    route("manage_stats", manage + "/stats", "owner", "statistics", GET)
    route("manage_csv", manage + "/tickets.csv", "owner", "tickets_csv", GET)
    for change, path in OWNER_CHANGES:
        if change != "clear":  # clearing has its confirmation page first, below
            route(f"manage_{change}", f"{manage}/{path}", "owner", "change", POST, change=change)
    route("manage_invite", manage + "/invitations", "owner", "invite", POST)
    route("manage_password", manage + "/password", "owner", "change_password", POST)
    for action, path in REVOCATIONS:
        route(f"manage_{action}", f"{manage}/{path}/revoke", "owner", action, POST)
    route("manage_clear", manage + "/clear", "owner", "confirm_clear", GET)
    route("manage_clear_line", manage + "/clear", "owner", "change", POST, change="clear")

    route("board", "/{queue_id}/board", "board", "board", GET)
    route("poster", "/{queue_id}/poster", "board", "poster", GET)
    route("qr", "/{queue_id}/qr.svg", "board", "qr_code", GET)
    route("board_updates", "/{queue_id}/board/updates", "board", "updates", GET)

    mapper.create_regs()
    return mapper


def invitation_link(req, queue_id, code):
    """The link that signs an invited servicer in: the console, with their code."""
    return f"{req.host_url}{req.urls('console', queue_id=queue_id)}?code={code}"
