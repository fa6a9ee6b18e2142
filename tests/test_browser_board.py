"""The display board on a TV, a laptop and a phone: it fills the screen, the
newest number reads from across the room, nothing spills over or overlaps,
and a recall flashes the number already shown instead of listing it twice."""

import os
import sqlite3

import pytest
from axe_playwright_python.sync_playwright import Axe
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LANDSCAPE,
    LAPTOP,
    PASSWORD,
    PORTRAIT,
    SCREENSHOT_DIR,
    WRITE_SCREENSHOTS,
    layout_problems,
)
from playwright.sync_api import expect
from test_browser_views import Queue

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("server_stays_healthy")]

TV = {"width": 1920, "height": 1080}
SCREENS = {
    "phone": PORTRAIT,
    "phone-landscape": LANDSCAPE,
    "laptop": LAPTOP,
    "tv": TV,
    "tv-4k": {"width": 3840, "height": 2160},
    "tv-portrait": {"width": 1080, "height": 1920},
}
SCREENSHOTS = {
    ("two desks serving", "phone"): "board-360.png",
    ("two desks serving", "laptop"): "board-1280.png",
    ("two desks serving", "tv"): "board-1920.png",
}

# What a person across the room sees, as boxes: each must lie inside the
# screen and clear of the others; and how tall the newest number is.
BOARD_BOXES = """
() => {
  const parts = '.board-title, .board-banner, .board-label, .board-number, .board-desk, ' +
    '.board-recalled, .board-empty, .board-side h2, .board-calls li, .board-qr, ' +
    '.board-link, .board-waiting, .board-chime-hint';
  const boxes = [...document.querySelectorAll(parts)].filter(e => e.checkVisibility())
    .map(e => {
      const r = e.getBoundingClientRect();
      return {name: e.className || e.tagName.toLowerCase(), text: e.innerText.trim().slice(0, 20),
              left: r.left, top: r.top, right: r.right, bottom: r.bottom};
    });
  const number = document.querySelector('.board-number');
  return {
    boxes, width: innerWidth, height: innerHeight,
    scrolls: document.documentElement.scrollHeight > innerHeight,
    number: number && number.checkVisibility() ? number.getBoundingClientRect().height : null,
    controls: [...document.querySelectorAll('a, button, input, select, textarea, header')]
      .map(e => e.outerHTML.slice(0, 60)),
  };
}
"""


def board_problems(page, share=1 / 4):
    """What does not fit, overlaps, or is too small to read from afar: the newest
    number must take ``share`` of the screen's height."""
    seen = page.evaluate(BOARD_BOXES)
    problems = [f"a control or header on the board: {c}" for c in seen["controls"]]
    if seen["scrolls"]:
        problems.append("the board scrolls: it is taller than the screen")
    boxes = seen["boxes"]
    for box in boxes:
        inside = box["left"] >= -0.5 and box["top"] >= -0.5
        if not inside or box["right"] > seen["width"] + 0.5 or box["bottom"] > seen["height"] + 0.5:
            problems.append(f"{box['name']} {box['text']!r} leaves the screen: {box}")
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            across = min(a["right"], b["right"]) - max(a["left"], b["left"])
            down = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
            if across > 0.5 and down > 0.5:
                problems.append(f"{a['name']} {a['text']!r} overlaps {b['name']} {b['text']!r}")
    if seen["number"] is not None and seen["number"] < seen["height"] * share:
        problems.append(f"the newest number is {seen['number']}px of {seen['height']}px")
    return problems


def fresh_queue(server, queue_id):
    queue = Queue(server, queue_id)
    queue.second = queue("/servicers", token="", password=PASSWORD, name="Desk 2")["token"]
    return queue


STATES = {
    "nobody waiting": lambda queue: None,
    "customers waiting": lambda queue: [queue.take() for _ in range(3)],
    "one desk serving": lambda queue: [queue.take(), queue.take(), queue("/next")],
    "two desks serving": lambda queue: [
        *[queue.take() for _ in range(5)],
        queue("/next"),
        queue("/done"),
        queue("/next"),
        queue("/next", token=queue.second),
    ],
    "recalled": lambda queue: [
        queue.take(),
        queue.take(),
        queue("/next"),
        queue("/next", token=queue.second),
        queue("/recall"),
    ],
    "everyone done": lambda queue: [
        queue.take(),
        queue("/next"),
        queue("/done"),
    ],
    "paused with an announcement": lambda queue: [
        queue.take(),
        queue.take(),
        queue("/next"),
        queue.status("paused"),
        queue.announce("Back at 2 – the lab closes early today for the staff meeting"),
    ],
}


@pytest.fixture(scope="module")
def boards(server):
    """A queue in each state, made once: its board's address."""
    addresses = {}
    for state, make in STATES.items():
        queue_id = "-".join(state.split()[:2])  # "two-desks"
        make(fresh_queue(server, queue_id))
        addresses[state] = f"/{queue_id}/board"
    return addresses


@pytest.mark.parametrize("screen", list(SCREENS))
@pytest.mark.parametrize("state", list(STATES))
def test_the_board_fills_every_screen_and_reads_from_across_the_room(
    new_page, boards, state, screen
):
    page = new_page(javascript=True, viewport=SCREENS[screen])
    page.goto(boards[state])
    expect(page.get_by_role("heading", name="Now serving")).to_be_visible()
    page.evaluate("document.getAnimations().forEach(a => a.finish())")
    if WRITE_SCREENSHOTS and (state, screen) in SCREENSHOTS:
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, SCREENSHOTS[state, screen]))
    assert layout_problems(page) == []
    assert board_problems(page) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("screen", ["phone", "tv"])
@pytest.mark.parametrize("state", list(STATES))
def test_axe_finds_nothing_on_the_board(new_page, boards, state, screen, scheme):
    page = new_page(javascript=True, viewport=SCREENS[screen])
    page.emulate_media(color_scheme=scheme)
    page.goto(boards[state])
    page.evaluate("document.getAnimations().forEach(a => a.finish())")
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_longest_words_and_four_digit_numbers_still_fit_every_screen(new_page, server, screen):
    """The longest title and desk name allowed, without spaces, a long announcement:
    the title and desks are cut short, the number gives way (a quarter of the height
    is for numbers of up to three digits), nothing spills over."""
    queue_id = f"longest-{list(SCREENS).index(screen)}"
    queue = Queue(server, queue_id)
    queue.announce("A" * 200)
    with sqlite3.connect(server.database) as db:
        db.execute(
            "UPDATE queues SET last_number = 9990, title = ? WHERE id = ?", ("W" * 80, queue_id)
        )
    second = queue("/servicers", token="", password=PASSWORD, name="D" * 40)["token"]
    for _ in range(8):
        queue.take()
    for _ in range(3):
        queue("/next", token=second)
        queue("/next")
    page = new_page(javascript=True, viewport=SCREENS[screen])
    page.goto(f"/{queue_id}/board")
    expect(page.locator(".board-number")).to_have_text("9996")
    page.evaluate("document.getAnimations().forEach(a => a.finish())")
    assert layout_problems(page) == []
    assert board_problems(page, share=1 / 8) == []


def test_the_board_says_who_is_served_and_lists_each_number_once(new_page, server, queue_id):
    queue = fresh_queue(server, queue_id)
    for _ in range(3):
        queue.take()
    queue("/next")
    queue("/next", token=queue.second)
    queue("/recall")  # number 1, at Desk 1, again
    page = new_page(viewport=TV)
    page.goto(f"/{queue_id}/board")
    expect(page.locator(".board-number")).to_have_text("1")
    expect(page.locator(".board-desk")).to_have_text("at Desk 1")
    expect(page.locator(".board-recalled")).to_have_text("Called again")
    expect(page.locator(".board-calls li")).to_have_text(["2 Desk 2"])
    expect(page.locator(".board-waiting")).to_have_text("Waiting: 1")
    join = f"{server.url}/{queue_id}"
    expect(page.locator(".board-qr")).to_have_attribute("alt", f"QR code of {join}")
    expect(page.locator(".board-link")).to_contain_text(f"/{queue_id}")


def test_a_recall_flashes_the_number_already_shown(new_page, server, queue_id):
    queue = fresh_queue(server, queue_id)
    queue.take()
    queue.take()
    queue("/next")
    page = new_page(javascript=True, viewport=TV)
    page.goto(f"/{queue_id}/board")
    newest = page.locator(".board-newest")
    expect(newest).to_be_visible()
    page.evaluate("document.getAnimations().forEach(a => a.finish())")
    assert newest.evaluate("e => e.getAnimations().length") == 0
    queue("/next", token=queue.second)  # number 2 at Desk 2: a new call
    expect(page.locator(".board-number")).to_have_text("2")
    assert newest.evaluate("e => e.getAnimations().length") == 1
    page.evaluate("document.getAnimations().forEach(a => a.finish())")
    queue("/recall")  # number 1 again: it comes back to the top, flashing, listed once
    expect(page.locator(".board-recalled")).to_be_visible()
    expect(page.locator(".board-number")).to_have_text("1")
    expect(page.locator(".board-calls li")).to_have_text(["2 Desk 2"])
    assert newest.evaluate("e => e.getAnimations().length") == 1


def test_the_board_keeps_still_for_who_asks_for_less_motion(new_page, server, queue_id):
    queue = fresh_queue(server, queue_id)
    queue.take()
    queue("/next")
    page = new_page(javascript=True, viewport=TV)
    page.emulate_media(reduced_motion="reduce")
    page.goto(f"/{queue_id}/board")
    newest = page.locator(".board-newest")
    expect(newest).to_be_visible()
    assert newest.evaluate("e => e.getAnimations().length") == 0
    page.emulate_media(reduced_motion="no-preference")
    page.reload()
    assert page.locator(".board-newest").evaluate("e => e.getAnimations().length") == 1


def test_the_chime_prompt_goes_once_a_click_turns_the_sound_on(new_page, server, queue_id):
    Queue(server, queue_id)
    page = new_page(javascript=True, viewport=TV)
    page.goto(f"/{queue_id}/board")
    hint = page.locator(".board-chime-hint")
    expect(hint).to_be_visible()  # Chromium keeps sound off until someone clicks
    page.mouse.click(10, 10)
    expect(hint).to_be_hidden()


def test_a_kiosk_browser_that_allows_sound_shows_no_chime_prompt(chromium, server, queue_id):
    Queue(server, queue_id)
    kiosk = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=[*CHROMIUM_ARGS, "--autoplay-policy=no-user-gesture-required"],
    )
    try:
        page = kiosk.new_page(base_url=server.url, viewport=TV)
        page.goto(f"/{queue_id}/board")
        expect(page.locator(".board-number")).to_be_attached()
        expect(page.locator(".board-chime-hint")).to_be_hidden()
    finally:
        kiosk.close()
