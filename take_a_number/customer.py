"""Customer pages: join a queue, take a number, watch the ticket, leave."""

from webob import exc

from . import answers, rules, security, views
from .refusals import Refused


def ticket_cookie(queue_id):
    """One ticket cookie per queue: a browser holds one open ticket per queue."""
    return f"tan_ticket_{queue_id}"


class CustomerController:
    def __init__(self, app):
        self.app = app
        self.actions = app.actions

    def _open_ticket(self, req, queue_id):
        """The open ticket this browser holds in this queue, or None."""
        token = req.cookies.get(ticket_cookie(queue_id))
        ticket = self.app.snapshots.ticket(token) if token else None
        if ticket and ticket["queue_id"] == queue_id and rules.is_open(ticket["state"]):
            return ticket
        return None

    def join(self, req, queue_id):
        snapshot = self.app.snapshots.get(queue_id, self.app.now())
        if snapshot is None:
            return self.app.not_found(req, queue_id)
        # A browser holding a number is shown it, in place of the Take button.
        ticket = self._open_ticket(req, queue_id)
        view = views.queue_view(snapshot)
        response = self.app.render(
            req,
            "join.html",
            view["title"],
            cache_key=(views.frozen(view), ticket and ticket["token"]),
            view=view,
            ticket=ticket,
            live_url=req.urls("queue_updates", queue_id=queue_id),
            live_page="queue",
            refresh_seconds=self.app.settings["refresh_seconds"],
        )
        # Not kept by the browser: Back after taking a number asks again, and
        # then says which number this browser holds (a kept page would offer
        # "Take a number" still).
        response.cache_control = "no-store"
        return response

    def take(self, req, queue_id):
        ticket = self._open_ticket(req, queue_id)
        if ticket is None:
            try:
                ticket = self.actions.take(
                    queue_id, req.remote_addr, browser=security.browser_key(req.session)
                )
            except Refused as refusal:
                if refusal.status == 404:
                    return self.app.not_found(req, queue_id)
                if refusal.retry_after:
                    return self.app.too_many(req, refusal.retry_after, refusal.message)
                # Paused, closed, outside opening hours or full: the page says which.
                response = self.join(req, queue_id)
                response.status = 409
                return response
        response = self.app.redirect(req, "ticket", queue_id=queue_id, token=ticket["token"])
        self._remember(req, response, ticket)
        return response

    def _remember(self, req, response, ticket):
        response.set_cookie(
            ticket_cookie(ticket["queue_id"]),
            ticket["token"],
            max_age=self.app.settings["ticket_cookie_max_age"],
            **security.cookie_options(req),
        )

    def _ticket(self, queue_id, token, snapshot=None):
        """The ticket with this token, if it is one of this queue's; else None."""
        ticket = self.app.snapshots.ticket_of(snapshot, token)
        return ticket if ticket is not None and ticket["queue_id"] == queue_id else None

    def ticket(self, req, queue_id, token):
        ticket = self._ticket(queue_id, token)
        if ticket is None:
            return self.app.error_page(
                req,
                exc.HTTPNotFound,
                "No such ticket",
                "This ticket does not exist. Take a new number from the queue's page.",
                join_queue_id=queue_id,
            )
        view = views.ticket_view(self.app.snapshots.get(queue_id, self.app.now()), ticket)
        response = self.app.render(
            req,
            "ticket.html",
            f"Number {ticket['number']} – {view['title']}",
            cache_key=(token, views.frozen(view)),
            view=view,
            token=token,
            live_url=req.urls("ticket_updates", queue_id=queue_id, token=token),
            live_page="ticket",
            refresh_seconds=self.app.settings["refresh_seconds"],
        )
        # A ticket link opened on another device keeps the place there too.
        if rules.is_open(ticket["state"]) and req.cookies.get(ticket_cookie(queue_id)) != token:
            self._remember(req, response, ticket)
        # The same browser reloading gets the same page while nothing changes.
        answers.may_remember(req)
        return response

    def queue_updates(self, req, queue_id):
        return self.app.live(req, queue_id, shared=views.queue_view, stream=True)

    def updates(self, req, queue_id, token):
        """Live updates of a ticket page: the queue's view, shared by every waiter, and the
        ticket's own part (from the snapshot while the ticket is open: no query)."""

        def own_part(snapshot):
            ticket = self._ticket(queue_id, token, snapshot)
            return views.ticket_part(snapshot, ticket) if ticket is not None else None

        snapshot = self.app.snapshots.get(queue_id, self.app.now())
        ticket = self.app.snapshots.ticket_of(snapshot, token)
        if ticket is None:
            return self.app.json_error(req, 404, "not_found", "There is no such ticket.")
        return self.app.live(
            req, queue_id, own_part, ticket_id=ticket["id"], shared=views.queue_view, stream=True
        )

    def move_back(self, req, queue_id, token):
        """Not ready: let the next person go first."""
        return self._on_ticket(req, queue_id, token, self.actions.move_back)

    def leave(self, req, queue_id, token):
        return self._on_ticket(req, queue_id, token, self.actions.leave)

    def _on_ticket(self, req, queue_id, token, action):
        """A customer's action on their ticket, then back to its page."""
        try:
            action(token, queue_id)
        except Refused as refusal:
            if refusal.status == 404:
                return self.app.not_found(req)
            # Already closed: the ticket's page says so.
        return self.app.redirect(req, "ticket", queue_id=queue_id, token=token)
