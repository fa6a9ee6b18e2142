"""What a queue shows the room: the display board, the QR code and the poster.

None of these needs a sign-in: they show only what the queue's page shows.
"""

import functools
import io

import segno
from webob import Response

from . import views


@functools.lru_cache(maxsize=1024)
def qr_svg(url):
    """The QR code of a URL as SVG, made once per URL."""
    out = io.BytesIO()
    segno.make(url, error="m").save(
        out,
        kind="svg",
        scale=10,
        border=2,
        xmldecl=False,
        omitsize=True,
        title=url,
        light="#fff",
    )
    return out.getvalue()


class BoardController:
    def __init__(self, app):
        self.app = app

    def board(self, req, queue_id):
        snapshot = self.app.snapshots.get(queue_id, self.app.now())
        if snapshot is None:
            return self.app.not_found(req, queue_id)
        view = views.board_view(snapshot)
        join_url = self._join_url(req, queue_id)
        return self.app.render(
            req,
            "board.html",
            f"Now serving – {view['title']}",
            view=view,
            page_class="board-page",
            live_url=req.urls("board_updates", queue_id=queue_id),
            live_page="board",
            join_url=join_url,
            # The short link as one types it (no scheme), apt to break before its path.
            join_host=req.host,
            join_path=req.urls("join", queue_id=queue_id),
            bare=True,  # a screen on the wall: no site header
            refresh_seconds=self.app.settings["refresh_seconds"],
        )

    def updates(self, req, queue_id):
        return self.app.live(req, queue_id, shared=views.board_view, stream=True)

    def _join_url(self, req, queue_id):
        return req.host_url + req.urls("join", queue_id=queue_id)

    def qr_code(self, req, queue_id):
        if self.app.store.get_queue(queue_id) is None:
            return self.app.not_found(req, queue_id)
        response = Response(body=qr_svg(self._join_url(req, queue_id)))
        response.content_type = "image/svg+xml"
        response.cache_control = "public, max-age=86400"
        return response

    def poster(self, req, queue_id):
        snapshot = self.app.snapshots.get(queue_id, self.app.now())
        if snapshot is None:
            return self.app.not_found(req, queue_id)
        return self.app.render(
            req,
            "poster.html",
            f"Poster – {snapshot.queue['title']}",
            view=views.queue_view(snapshot),
            page_class="poster-page",
            join_url=self._join_url(req, queue_id),
        )
