"""The display board: now serving at each desk, for a TV. No controls, no sign-in."""

from . import views


class BoardController:
    def __init__(self, app):
        self.app = app

    def board(self, req, queue_id):
        snapshot = self.app.snapshots.get(queue_id, self.app.now())
        if snapshot is None:
            return self.app.not_found(req, queue_id)
        view = views.board_view(snapshot)
        return self.app.render(
            req,
            "board.html",
            f"Now serving – {view['title']}",
            view=view,
            page_class="board-page",
            live_url=req.urls("board_updates", queue_id=queue_id),
            live_page="board",
            join_url=req.host_url + req.urls("join", queue_id=queue_id),
            refresh_seconds=self.app.settings["refresh_seconds"],
        )

    def updates(self, req, queue_id):
        return self.app.live(req, queue_id, views.board_view)
