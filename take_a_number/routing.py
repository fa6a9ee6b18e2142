"""Every URL of the app: one named route each, restricted by method."""

from routes import Mapper

GET = {"method": ["GET", "HEAD"]}
POST = {"method": ["POST"]}
DELETE = {"method": ["DELETE"]}
API = "/api/v1"
# The owner's changes (actions.CHANGES) and their paths, on the pages and in the API.
OWNER_CHANGES = [
    ("status", "status"),
    ("options", "options"),
    ("hours", "hours"),
    ("clear", "clear"),
]
# The servicer console's buttons: route name and path.
BUTTONS = [("call_next", "next"), ("done", "done"), ("no_show", "no-show"), ("recall", "recall")]
QUEUE = {"queue_id": r"[a-z0-9][a-z0-9-]{1,18}[a-z0-9]"}
# A servicer's id: at most 18 digits, so that every id that matches fits in
# SQLite's 64-bit integers (a longer one is no servicer's: 404).
SERVICER_ID = r"\d{1,18}"
# An invitation's id: the same.
INVITATION = dict(QUEUE, invitation_id=SERVICER_ID)


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
            requirements=QUEUE if "{queue_id}" in path else {},
            **defaults,
        )

    # The JSON API first: "api" is a reserved word, never a queue id.
    route("api_openapi", API + "/openapi.json", "api", "openapi", GET)
    route("api_queues", API + "/queues", "api", "create_queue", POST)
    route("api_queue", API + "/queues/{queue_id}", "api", "queue", GET)
    route("api_queue_updates", API + "/queues/{queue_id}/updates", "api", "queue_updates", GET)
    route("api_take", API + "/queues/{queue_id}/tickets", "api", "take", POST)
    route("api_ticket", API + "/tickets/{token}", "api", "ticket", GET)
    route("api_leave", API + "/tickets/{token}", "api", "leave", DELETE)
    route("api_ticket_updates", API + "/tickets/{token}/updates", "api", "ticket_updates", GET)
    route("api_sign_in", API + "/queues/{queue_id}/servicers", "api", "sign_in", POST)
    route("api_sign_out", API + "/queues/{queue_id}/servicers/me", "api", "sign_out", DELETE)
    route("api_console", API + "/queues/{queue_id}/console", "api", "console", GET)
    route(
        "api_console_updates",
        API + "/queues/{queue_id}/console/updates",
        "api",
        "console_updates",
        GET,
    )
    route("api_settings", API + "/queues/{queue_id}/settings", "api", "settings", GET)
    route("api_tokens", API + "/queues/{queue_id}/tokens", "api", "issue_token", POST)
    route("api_statistics", API + "/queues/{queue_id}/statistics", "api", "statistics", GET)
    for change, path in OWNER_CHANGES:
        route(
            f"api_{change}",
            f"{API}/queues/{{queue_id}}/{path}",
            "api",
            "change",
            POST,
            change=change,
        )
    mapper.connect(
        "api_revoke",
        API + "/queues/{queue_id}/servicers/{servicer_id}",
        controller="api",
        action="revoke",
        conditions=DELETE,
        requirements=dict(QUEUE, servicer_id=SERVICER_ID),
    )
    route("api_invite", API + "/queues/{queue_id}/invitations", "api", "invite", POST)
    mapper.connect(
        "api_revoke_invitation",
        API + "/queues/{queue_id}/invitations/{invitation_id}",
        controller="api",
        action="revoke_invitation",
        conditions=DELETE,
        requirements=INVITATION,
    )
    for button, path in BUTTONS:
        route(
            f"api_{button}",
            f"{API}/queues/{{queue_id}}/{path}",
            "api",
            "press",
            POST,
            button=button,
        )

    route("home", "/", "owner", "home", GET)
    route("create_queue", "/", "owner", "create_queue", POST)
    mapper.connect(
        "static",
        "/static/{path}",
        controller="static",
        action="serve",
        conditions=GET,
        requirements={"path": r"[A-Za-z0-9._-]+"},
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

    route("manage", "/{queue_id}/manage", "owner", "manage", GET)
    for change, path in OWNER_CHANGES:
        if change != "clear":  # clearing has its confirmation page first, below
            route(
                f"manage_{change}",
                f"/{{queue_id}}/manage/{path}",
                "owner",
                "change",
                POST,
                change=change,
            )
    mapper.connect(
        "manage_revoke",
        "/{queue_id}/manage/servicers/{servicer_id}/revoke",
        controller="owner",
        action="revoke",
        conditions=POST,
        requirements=dict(QUEUE, servicer_id=SERVICER_ID),
    )
    route("manage_invite", "/{queue_id}/manage/invitations", "owner", "invite", POST)
    mapper.connect(
        "manage_revoke_invitation",
        "/{queue_id}/manage/invitations/{invitation_id}/revoke",
        controller="owner",
        action="revoke_invitation",
        conditions=POST,
        requirements=INVITATION,
    )
    route("manage_stats", "/{queue_id}/manage/stats", "owner", "statistics", GET)
    route("manage_csv", "/{queue_id}/manage/tickets.csv", "owner", "tickets_csv", GET)
    route("manage_clear", "/{queue_id}/manage/clear", "owner", "confirm_clear", GET)
    route("manage_clear_line", "/{queue_id}/manage/clear", "owner", "change", POST, change="clear")

    route("board", "/{queue_id}/board", "board", "board", GET)
    route("poster", "/{queue_id}/poster", "board", "poster", GET)
    route("qr", "/{queue_id}/qr.svg", "board", "qr_code", GET)
    route("board_updates", "/{queue_id}/board/updates", "board", "updates", GET)

    mapper.create_regs()
    return mapper


def invitation_link(req, queue_id, code):
    """The link that signs an invited servicer in: the console, with their code."""
    return f"{req.host_url}{req.urls('console', queue_id=queue_id)}?code={code}"
