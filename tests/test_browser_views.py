"""A page updated live shows exactly what the same page reloaded shows.

Each page is loaded in Chromium in one state, its live update held; then the
queue moves on. The server's HTML of the new state, and live.js applying the
new state's JSON to the page still showing the old one, must show and hide the
same elements, with the same words. A template and live.js that disagree on
any flag or text of the view (views.py) fail here.
"""

import re
import time

import pytest
from browser_support import PASSWORD, api, press, sign_in
from support import hours_ahead

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("server_stays_healthy")]

LIVE_UPDATES = re.compile(r"/updates(\?|$)")

# What a person sees of each element the live updates may change: whether it
# shows, its words when it does, its state class, the items of its list.
SEEN = """
() => {
  const words = text => text.replace(/\\s+/g, ' ').trim();
  const live = '[data-show], [data-text], [data-class], [data-list], [data-js-only]';
  return [...document.querySelectorAll('main ' + live)].map(e => {
    const shown = e.checkVisibility();
    return {
      element: e.tagName.toLowerCase() + [...e.attributes]
        .filter(a => a.name.startsWith('data-'))
        .map(a => `[${a.name}=${a.value}]`).join(''),
      shown,
      text: shown ? words(e.innerText) : '',
      class: e.hasAttribute('data-class') ? e.className : '',
      items: e.hasAttribute('data-list')
        ? [...e.children].map(li => `${li.className}: ${words(li.innerText)}`) : [],
    };
  });
}
"""


class HeldPage:
    """A page with JavaScript whose live updates wait until the test answers them."""

    def __init__(self, new_page, url, storage_state=None):
        self.polls = []
        self.page = new_page(javascript=True, storage_state=storage_state)
        self.page.route(LIVE_UPDATES, lambda route: self.polls.append(route))
        self.page.goto(url)
        self._wait_for_polls(1)  # live.js has run: its JavaScript-only controls show
        self.seen = self.page.evaluate(SEEN)

    def _wait_for_polls(self, count):
        deadline = time.monotonic() + 10
        while len(self.polls) < count:
            assert time.monotonic() < deadline, f"live.js asked {len(self.polls)} times"
            self.page.wait_for_timeout(20)

    def view(self):
        """The JSON the server sends this page's live updates now."""
        return self.page.request.get(self.page.evaluate("document.body.dataset.liveUrl")).json()

    def apply(self, view):
        """What the page shows once live.js has applied ``view`` to it."""
        count = len(self.polls)
        self.polls[-1].fulfill(json=view)
        self._wait_for_polls(count + 1)  # it renders, then asks again
        return self.page.evaluate(SEEN)

    def close(self, view):
        # A quiet end: the held update answered, nothing asked for ten minutes.
        self.polls[-1].fulfill(json=dict(view, retry_after=600))
        self.page.close()


def watch(new_page, url, steps, storage_state=None):
    """Load ``url``; after each ``(name, change)`` step, the live page must show
    what a fresh load shows. Every ``data-show`` element must have been seen
    both shown and hidden, so that each flag was put to the test."""
    page = HeldPage(new_page, url, storage_state)
    seen = [page.seen]
    for name, change in steps:
        change()
        fresh = HeldPage(new_page, url, storage_state)
        view = fresh.view()
        updated = page.apply(view)
        differences = [(a, b) for a, b in zip(updated, fresh.seen, strict=True) if a != b]
        assert not differences, f"after {name!r}, live.js (left) and the server (right) differ"
        page.close(view)
        page, seen = fresh, [*seen, fresh.seen]
    toggles = {}
    for elements in seen:
        for i, element in enumerate(elements):
            if "[data-show=" in element["element"]:
                toggles.setdefault((i, element["element"]), set()).add(element["shown"])
    assert [element for element, shown in toggles.items() if len(shown) < 2] == []


class Queue:
    """A queue on the test server, run over the API by its owner (Desk 1)."""

    def __init__(self, server, queue_id):
        self.server, self.queue_id = server, queue_id
        body = {"queue_id": queue_id, "title": "Lab help", "password": PASSWORD, "name": "Desk 1"}
        self.owner = api(server, "/api/v1/queues", **body)["token"]

    def __call__(self, path, token=None, method="POST", **body):
        path = f"/api/v1/queues/{self.queue_id}{path}"
        return api(self.server, path, self.owner if token is None else token, method, **body)

    def take(self):
        """A customer takes a number; their ticket page's address."""
        return api(self.server, f"/api/v1/queues/{self.queue_id}/tickets")["links"]["page"]

    def move_back(self, ticket_url):
        """The customer lets the next person go first."""
        token = ticket_url.rsplit("/", 1)[1]
        api(self.server, f"/api/v1/tickets/{token}/later")

    def leave(self, ticket_url):
        token = ticket_url.rsplit("/", 1)[1]
        api(self.server, f"/api/v1/tickets/{token}", method="DELETE")

    def status(self, status):
        self("/status", status=status)

    def announce(self, text):
        self("/options", announcement=text, max_waiting=None, no_show_policy="end")

    def outside_hours(self):
        opens, closes = hours_ahead()
        hours = {"days": list(range(7)), "timezone": "UTC"}
        hours["opens"], hours["closes"] = opens.strftime("%H:%M"), closes.strftime("%H:%M")
        self("/hours", **hours)

    def always_open(self):
        self("/hours", always_open=True, timezone="UTC")


def steps(**changes):
    """``name=change`` in order, each change a function or a tuple of them."""
    return [
        (name.replace("_", " "), lambda c=c: [f() for f in (c if isinstance(c, tuple) else (c,))])
        for name, c in changes.items()
    ]


# -- the ticket page ------------------------------------------------------------


def test_a_ticket_updated_live_shows_what_a_reload_shows_from_waiting_to_served(
    new_page, server, queue_id
):
    queue = Queue(server, queue_id)
    queue.take()
    ticket = queue.take()  # one ahead, and one behind: it may move back
    queue.take()
    watch(
        new_page,
        ticket,
        steps(
            paused_while_in_line=lambda: queue.status("paused"),
            open_and_next=(lambda: queue.status("open"), lambda: queue("/next")),
            announcement=lambda: queue.announce("Back in 5 minutes"),
            your_turn=(lambda: queue.announce(""), lambda: queue("/next")),
            called_again=lambda: queue("/recall"),
            served=lambda: queue("/next"),
            paused_after=lambda: queue.status("paused"),
            closed=lambda: queue.status("closed"),
            outside_opening_hours=(lambda: queue.status("open"), queue.outside_hours),
            open_again=queue.always_open,
        ),
    )


def test_a_ticket_updated_live_shows_what_a_reload_shows_when_its_customer_leaves(
    new_page, server, queue_id
):
    queue = Queue(server, queue_id)
    queue.take()  # one ahead: it waits, then it is next
    ticket = queue.take()
    queue.take()  # one behind: it may move back, until it leaves
    watch(
        new_page,
        ticket,
        steps(
            you_are_next=lambda: queue("/next"),
            left=lambda: queue.leave(ticket),
            paused=lambda: queue.status("paused"),
            outside_opening_hours=(lambda: queue.status("open"), queue.outside_hours),
            open_with_an_announcement=(queue.always_open, lambda: queue.announce("Hello")),
        ),
    )


def test_a_ticket_updated_live_shows_what_a_reload_shows_for_a_no_show(new_page, server, queue_id):
    queue = Queue(server, queue_id)
    ticket = queue.take()
    queue.take()
    watch(
        new_page,
        ticket,
        steps(
            your_turn=lambda: queue("/next"),
            no_show=lambda: queue("/no-show"),
            closed=lambda: queue.status("closed"),
            paused_with_an_announcement=(
                lambda: queue.status("paused"),
                lambda: queue.announce("Back soon"),
            ),
        ),
    )


def test_a_ticket_updated_live_shows_what_a_reload_shows_when_the_line_is_cleared(
    new_page, server, queue_id
):
    queue = Queue(server, queue_id)
    queue.take()  # one ahead: it waits, no heading above its number
    ticket = queue.take()
    queue.take()
    watch(
        new_page,
        ticket,
        steps(
            cleared=lambda: queue("/clear"),
            paused=lambda: queue.status("paused"),
            open_with_an_announcement=(
                lambda: queue.status("open"),
                lambda: queue.announce("Sorry about that"),
            ),
        ),
    )


def test_the_queue_page_updated_live_shows_what_a_reload_shows(new_page, server, queue_id):
    queue = Queue(server, queue_id)
    watch(
        new_page,
        f"/{queue_id}",
        steps(
            someone_takes_a_number=queue.take,
            paused=lambda: queue.status("paused"),
            closed=lambda: queue.status("closed"),
            outside_opening_hours=(lambda: queue.status("open"), queue.outside_hours),
            open_with_an_announcement=(queue.always_open, lambda: queue.announce("Hello")),
            served=lambda: queue("/next"),
        ),
    )


# -- the console and the board -----------------------------------------------------


def test_the_console_updated_live_shows_what_a_reload_shows(new_page, server, queue_id):
    queue = Queue(server, queue_id)
    taken = []
    desk = sign_in(new_page(), queue_id, name="Desk 2")  # no JavaScript: it presses buttons
    desk.wait_for_selector(".signed-in")
    watch(
        new_page,
        f"/{queue_id}/serve",
        steps(
            customers_wait=(queue.take, queue.take),
            serving=lambda: press(desk, "Next"),
            another_desk_serves=lambda: queue("/next"),
            recalled=lambda: press(desk, "Recall"),
            done_and_the_line_empty=lambda: press(desk, "Done"),
            the_line_flows=(queue.take, lambda: queue("/next"), lambda: queue("/done")),
            paused_with_an_announcement=(
                lambda: queue.status("paused"),
                lambda: queue.announce("Lunch at 12"),
            ),
            one_lets_others_go_first=(
                lambda: queue.status("open"),
                lambda: taken.append(queue.take()),
                queue.take,
                lambda: queue.move_back(taken[-1]),
            ),
            called_from_the_list=lambda: call_from_the_list(desk),
            undone=lambda: press(desk, re.compile("^Undo calling")),
            recalled_so_no_undo=(lambda: press(desk, "Next"), lambda: press(desk, "Recall")),
        ),
        storage_state=desk.context.storage_state(),
    )


def call_from_the_list(desk):
    """The desk (without JavaScript) reloads its console and calls the last number listed."""
    desk.reload()
    desk.locator(".line-list li button").last.click()
    desk.wait_for_load_state()


def test_the_board_updated_live_shows_what_a_reload_shows(new_page, server, queue_id):
    queue = Queue(server, queue_id)
    second = queue("/servicers", token="", password=PASSWORD, name="Desk 2")["token"]
    watch(
        new_page,
        f"/{queue_id}/board",
        steps(
            customers_wait=(queue.take, queue.take, queue.take),
            a_desk_calls=lambda: queue("/next"),
            two_desks_call=lambda: queue("/next", token=second),
            recalled=lambda: queue("/recall"),
            recalled_again=lambda: queue("/recall"),
            the_other_desk_recalls=lambda: queue("/recall", token=second),
            everyone_done=(lambda: queue("/done"), lambda: queue("/done", token=second)),
            paused_with_an_announcement=(
                lambda: queue.status("paused"),
                lambda: queue.announce("Back at 2"),
            ),
        ),
    )
