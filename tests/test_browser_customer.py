"""The customer's pages in Chromium: every state of a ticket told apart at a
glance, at every size, light and dark, with nothing overflowing or overlapping
and nothing axe-core finds; leaving asks first; the join page's words."""

import os
import re

import playwright.sync_api as playwright_api
import pytest
from browser_support import (
    LANDSCAPE,
    LAPTOP,
    PASSWORD,
    PORTRAIT,
    SCREENSHOT_DIR,
    WRITE_SCREENSHOTS,
    api,
    arrive,
    axe_problems,
    contrast_problems,
    layout_problems,
    open_page,
)

expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("server_stays_healthy")]

TV = {"width": 1920, "height": 1080}
SIZES = {"360x740": PORTRAIT, "740x360": LANDSCAPE, "1280x800": LAPTOP, "1920x1080": TV}
THEMES = ["light", "dark"]
STATES = ["waiting", "next", "called", "served", "left", "no_show", "cleared"]
ENDED = ["served", "left", "no_show", "cleared"]

# Two boxes with words, neither inside the other, that cover each other.
OVERLAPS = """
() => {
  const shown = e => e.checkVisibility() && e.getBoundingClientRect().width > 0;
  const worded = [...document.querySelectorAll('main *')].filter(e => shown(e) &&
    ([...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()) ||
     e.matches('button, summary, .button, img')));
  const problems = [];
  for (let i = 0; i < worded.length; i++) {
    for (let j = i + 1; j < worded.length; j++) {
      const [a, b] = [worded[i], worded[j]];
      if (a.contains(b) || b.contains(a)) continue;
      // An inline element that wraps has a box for each of its lines.
      const cover = (p, q) => Math.min(p.right, q.right) - Math.max(p.left, q.left) > 1 &&
        Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top) > 1;
      const [ps, qs] = [[...a.getClientRects()], [...b.getClientRects()]];
      if (ps.some(p => qs.some(q => cover(p, q)))) {
        const name = e => e.tagName.toLowerCase() + '.' + e.className + ' "' +
          e.textContent.trim().slice(0, 20) + '"';
        problems.push(`${name(a)} overlaps ${name(b)}`);
      }
    }
  }
  return problems;
}
"""

# How many lines the words of an element take.
LINES = """
e => {
  const range = document.createRange();
  range.selectNodeContents(e);
  return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
}
"""


def overlaps(page):
    return page.evaluate(OVERLAPS)


class Line:
    """A queue run over the API by its owner at Desk 1, with a Desk 5 beside."""

    def __init__(self, server, queue_id, title="CET236 lab help — room B204"):
        self.server, self.queue_id = server, queue_id
        body = {"queue_id": queue_id, "title": title, "password": PASSWORD, "name": "Desk 1"}
        self.desk_1 = api(server, "/api/v1/queues", **body)["token"]
        self.desk_5 = self("/servicers", token="", password=PASSWORD, name="Desk 5")["token"]

    def __call__(self, path, token=None, **body):
        path = f"/api/v1/queues/{self.queue_id}{path}"
        return api(self.server, path, self.desk_1 if token is None else token, **body)

    def take(self):
        """A customer takes a number: their ticket page's address."""
        return api(self.server, f"/api/v1/queues/{self.queue_id}/tickets")["links"]["page"]

    def leave(self, ticket):
        api(self.server, f"/api/v1/tickets/{ticket.rsplit('/', 1)[1]}", method="DELETE")


@pytest.fixture(scope="module")
def tickets(server):
    """A ticket's address in each state: served, left and no-show at Desk 1; 4
    called at Desk 1 while 5 is at Desk 5; 6 next, 7 waiting; one cleared."""
    line = Line(server, "looks")
    served, left, no_show = line.take(), line.take(), line.take()
    line("/next")
    line("/done")
    line.leave(left)
    line("/next")
    line("/no-show")
    called = line.take()
    line("/next")
    line.take()
    line("/next", token=line.desk_5)
    pages = {"served": served, "left": left, "no_show": no_show, "called": called}
    pages["next"], pages["waiting"] = line.take(), line.take()
    line.take()
    emptied = Line(server, "looks-cleared")
    pages["cleared"] = emptied.take()
    emptied("/clear")
    return pages


@pytest.fixture(scope="module")
def look(chromium, server, tickets):
    """A ticket page in a state, at a size, in a theme, with or without JavaScript:
    one context for each."""
    contexts = {}

    def load(state, size, theme, javascript=False):
        key = (size, theme, javascript)
        if key not in contexts:
            contexts[key] = open_page(
                chromium, server, viewport=SIZES[size], theme=theme, javascript=javascript
            )
        contexts[key].context.clear_cookies()
        page, response = arrive(contexts[key], tickets[state])
        contexts[key] = page
        assert response.status == 200
        return page

    yield load
    for page in contexts.values():
        page.context.close()


SCREENSHOTS = {
    ("called", "360x740", "light"): "ticket-360.png",
    ("waiting", "360x740", "light"): "ticket-waiting-360.png",
    ("called", "740x360", "light"): "ticket-740x360.png",
    ("next", "360x740", "dark"): "ticket-dark-360.png",
}


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("state", STATES)
def test_every_ticket_state_fits_every_screen_in_both_themes(look, state, size, theme):
    page = look(state, size, theme)
    if WRITE_SCREENSHOTS and (state, size, theme) in SCREENSHOTS:
        page.screenshot(
            path=os.path.join(SCREENSHOT_DIR, SCREENSHOTS[state, size, theme]), full_page=True
        )
    expect(page.locator(".my-number .number")).to_be_in_viewport()
    assert layout_problems(page) == []
    assert overlaps(page) == []
    assert contrast_problems(page) == []
    assert page.problems == []


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("state", STATES)
def test_every_ticket_state_is_axe_clean_in_both_themes(look, state, theme):
    # With JavaScript: its controls are checked too, and no refresh cuts axe-core short.
    page = look(state, "360x740", theme, javascript=True)
    assert axe_problems(page) == []
    assert contrast_problems(page) == []


def test_each_state_of_a_ticket_looks_different_at_a_glance(look):
    def seen(state):
        page = look(state, "360x740", "light")
        ticket = page.locator(".ticket")
        return {
            "background": ticket.evaluate("e => getComputedStyle(e).backgroundColor"),
            "heading": page.locator(".ticket-heading").all_inner_texts(),
            "struck": page.locator(".number").evaluate(
                "e => getComputedStyle(e).textDecorationLine"
            ),
            "label": page.locator(".my-number .figure-label").inner_text(),
        }

    looks = {state: seen(state) for state in STATES}
    backgrounds = {looks[s]["background"] for s in ("waiting", "next", "called")}
    assert len(backgrounds) == 3  # neutral, amber, green
    assert looks["next"]["heading"] == ["GET READY"]  # shown in capitals
    assert looks["waiting"]["struck"] == looks["called"]["struck"] == "none"
    for state in ENDED:
        assert looks[state]["struck"] == "line-through", state
        assert looks[state]["label"] == "This number is no longer valid", state
        assert looks[state]["background"] not in backgrounds, state


def test_now_serving_names_each_desk_and_wraps_between_desks_only(look):
    page = look("next", "360x740", "light")
    facts = page.locator(".queue-facts")
    expect(facts).to_have_text(
        re.compile(r"^Now\sserving\s5\sat\sDesk\s5\s·\s4\sat\sDesk\s1\s+Waiting\s3$")
    )
    desks = page.locator("[data-text=serving_desks]")
    words = desks.inner_text()
    for desk in words.split(" \u00b7 "):
        start = words.index(desk)
        lines = desks.evaluate(
            """(e, [start, end]) => { const r = document.createRange();
                 r.setStart(e.firstChild, start); r.setEnd(e.firstChild, end);
                 return new Set([...r.getClientRects()].map(b => Math.round(b.top))).size; }""",
            [start, start + len(desk)],
        )
        assert lines == 1, desk


def test_take_a_new_number_fits_its_button_on_a_phone(look):
    page = look("served", "360x740", "light")
    button = page.get_by_role("button", name="Take a new number")
    assert button.evaluate(LINES) == 1


def test_alerts_look_like_settings_and_leave_comes_last_and_asks_first(new_page, server, queue_id):
    line = Line(server, queue_id)
    ticket = line.take()
    line.take()  # one behind: "let the next person go first" shows too
    page = new_page(javascript=True)
    page.goto(ticket)
    alerts = page.get_by_role("group", name="Alerts on this device")
    sound = alerts.get_by_role("button", name="Enable sound")
    expect(sound).to_be_visible()
    move_back = page.get_by_role("button", name="Not ready – let the next person go first")
    style = "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e).borderRadius]"
    assert sound.evaluate(style) != move_back.evaluate(style)
    # Leaving is the last control, and asks before it acts.
    controls = page.locator("main button:visible, main summary").all_inner_texts()
    assert controls[-1] == "Leave the queue…"
    confirm = page.get_by_role("button", name="Yes, leave the queue")
    expect(confirm).to_be_hidden()
    page.get_by_text("Leave the queue…").click()
    expect(page.get_by_text("You lose your place in line")).to_be_visible()
    assert layout_problems(page) == [] and overlaps(page) == []
    confirm.click()
    expect(page.locator(".status-message")).to_have_text("You left the queue.")
    expect(page.locator(".ticket-look")).to_have_class(re.compile(r"\blook-left\b"))


def test_leaving_without_javascript_asks_first_too(new_page, server, queue_id):
    line = Line(server, queue_id)
    page = new_page()
    page.goto(line.take())
    page.get_by_text("Leave the queue…").click()
    page.get_by_role("button", name="Yes, leave the queue").click()
    expect(page.locator(".status-message")).to_have_text("You left the queue.")


@pytest.mark.parametrize("theme", THEMES)
@pytest.mark.parametrize("size", list(SIZES))
def test_the_join_page_fits_every_screen_and_is_axe_clean(chromium, server, tickets, size, theme):
    page = open_page(chromium, server, viewport=SIZES[size], theme=theme, javascript=True)
    try:
        page.goto("/looks")
        if WRITE_SCREENSHOTS and (size, theme) == ("360x740", "light"):
            page.screenshot(path=os.path.join(SCREENSHOT_DIR, "join-360.png"), full_page=True)
        expect(page.get_by_role("button", name="Take a number")).to_be_visible()
        assert layout_problems(page) == [] and overlaps(page) == []
        assert contrast_problems(page) == []
        assert axe_problems(page) == []
        assert page.problems == []
    finally:
        page.context.close()


def test_the_page_follows_the_dark_theme_of_the_system(look):
    dark, light = look("waiting", "360x740", "dark"), look("waiting", "1280x800", "light")
    background = "() => getComputedStyle(document.documentElement).backgroundColor"
    assert dark.evaluate(background) == "rgb(18, 20, 23)"
    assert light.evaluate(background) == "rgb(255, 255, 255)"
    # A rule written with a colour's older name follows the theme too.
    old_name = "() => getComputedStyle(document.body).getPropertyValue('--paper').trim()"
    assert (dark.evaluate(old_name), light.evaluate(old_name)) == ("#121417", "#ffffff")
    # Printed (the poster), a dark screen's page is black on white all the same.
    dark.emulate_media(media="print")
    try:
        assert dark.evaluate(background) == "rgb(255, 255, 255)"
    finally:
        dark.emulate_media(media="screen")
