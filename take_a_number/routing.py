"""Every URL of the app: one named route each, restricted by method."""

from routes import Mapper

GET = {"method": ["GET", "HEAD"]}
POST = {"method": ["POST"]}
QUEUE = {"queue_id": r"[a-z0-9][a-z0-9-]{1,18}[a-z0-9]"}


def make_mapper():
    mapper = Mapper(explicit=True)
    mapper.minimization = False

    def route(name, path, controller, action, conditions):
        mapper.connect(
            name,
            path,
            controller=controller,
            action=action,
            conditions=conditions,
            requirements=QUEUE if "{queue_id}" in path else {},
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

    route("console", "/{queue_id}/serve", "servicer", "console", GET)
    route("console_updates", "/{queue_id}/serve/updates", "servicer", "updates", GET)
    route("sign_in", "/{queue_id}/sign-in", "servicer", "sign_in", POST)
    route("sign_out", "/{queue_id}/sign-out", "servicer", "sign_out", POST)
    route("call_next", "/{queue_id}/serve/next", "servicer", "call_next", POST)
    route("done", "/{queue_id}/serve/done", "servicer", "done", POST)
    route("no_show", "/{queue_id}/serve/no-show", "servicer", "no_show", POST)
    route("recall", "/{queue_id}/serve/recall", "servicer", "recall", POST)

    route("board", "/{queue_id}/board", "board", "board", GET)
    route("board_updates", "/{queue_id}/board/updates", "board", "updates", GET)

    mapper.create_regs()
    return mapper
