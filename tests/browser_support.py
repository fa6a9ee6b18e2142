"""Helpers for the browser tests: Chromium's launch options, the flows a person
clicks through, and page checks."""

import importlib.util
import json
import os
import re
import urllib.request

from server_support import PASSWORD, Server  # noqa: F401 - the browser tests' server

# Debian's Chromium: no browser download, no sandbox (we run as root), no network.
# Screenshots are kept in docs/screenshots; they are only rewritten when asked:
# TAKE_A_NUMBER_SCREENSHOTS=1 bash scripts/test -k test_layout
SCREENSHOT_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "screenshots"
)
WRITE_SCREENSHOTS = os.environ.get("TAKE_A_NUMBER_SCREENSHOTS") == "1"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

PORTRAIT = {"width": 360, "height": 740}
LANDSCAPE = {"width": 740, "height": 360}
LAPTOP = {"width": 1280, "height": 800}
VIEWPORTS = {"portrait": PORTRAIT, "landscape": LANDSCAPE, "laptop": LAPTOP}

# -- the flows, as a person does them -----------------------------------------


def arrive(page, url):
    """A fresh tab in ``page``'s context, sent to ``url``: the tab and ``goto``'s
    response. ``page`` is closed.

    A live page without JavaScript reloads itself every refresh_seconds (its
    ``<noscript>`` meta refresh). Sending the same tab elsewhere raced that
    reload: when it fired as the test navigated, Playwright failed the
    navigation as "interrupted by another navigation", and going again at once
    was interrupted again (three times running, in a CI run). A new tab has no
    reload pending, so the fixtures keep their contexts (and cookies) but not
    their tabs. The old tab is closed without waiting: ``page.close()`` hung
    when it came as that tab reloaded itself (run_before_unload returns at once;
    these pages have no beforeunload handler).
    """
    fresh = watch(page.context.new_page())
    page.close(run_before_unload=True)
    return fresh, fresh.goto(url)


def create_queue(page, queue_id, title="CET236 lab help", name="Desk 1", password=PASSWORD):
    """The owner fills in the home page form by its labels; lands on the console."""
    page.goto("/")
    page.get_by_label("Link name").fill(queue_id)
    page.get_by_label("Title shown to customers").fill(title)
    page.get_by_label("Your password").fill(password)
    page.get_by_label("Your name or desk").fill(name)
    page.get_by_role("button", name="Create a queue").click()
    page.wait_for_url(f"**/{queue_id}/serve")
    return page


def sign_in(page, queue_id, name="Desk 2", password=PASSWORD):
    """The owner opens the console address and signs in with the labelled form."""
    page.goto(f"/{queue_id}/serve")
    page.get_by_label("Your name or desk").fill(name)
    page.get_by_label("Queue password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    return page


def invite(owner, queue_id, name="Desk 2"):
    """The owner makes a personal invitation on the Manage page; returns its link."""
    owner.goto(f"/{queue_id}/manage")
    owner.get_by_label("Their name or desk").fill(name)
    owner.get_by_role("button", name="Make an invitation").click()
    return owner.locator(".new-invitation .invite-link").get_attribute("href")


def accept(page, link, name="Desk 2"):
    """An invited servicer opens their link and signs in; lands on the console."""
    page.goto(link)
    page.get_by_role("button", name=f"Sign in as {name}").click()
    page.wait_for_selector(".signed-in")
    return page


def take_number(page, join_url):
    """A customer opens the queue's link and takes a number; returns their number."""
    page.goto(join_url)
    page.get_by_role("button", name="Take a number").click()
    page.wait_for_url("**/ticket/*")
    return my_number(page)


def my_number(page):
    return int(page.locator(".my-number .number").inner_text())


def press(page, button):
    """Press a console button (Next, Done, No show, Recall, Sign out).

    A servicer's first Next is labelled "Start serving"; "Next" presses either.
    """
    if button == "Next":
        page.get_by_role("button", name=re.compile("^(Next|Start serving)$")).click()
    else:
        page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state()


def join_url(console_page):
    return console_page.locator("a.join-link").get_attribute("href")


def api(server, path, token=None, method="POST", **body):
    """Call the server's JSON API (``path`` such as ``/api/v1/queues``); its JSON, or None."""
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode() if method != "DELETE" else None,
        method=method,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else None


# -- page checks: each returns a list of problems, empty when all is well -----

LAYOUT_PROBLEMS = """
() => {
  const problems = [];
  const width = window.innerWidth;
  const doc = document.documentElement;
  if (doc.scrollWidth > width) {
    const wide = [...document.querySelectorAll('body *')]
      .filter(e => e.getBoundingClientRect().right > width + 0.5 ||
                   e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0)
      .map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : ''));
    problems.push(`scrolls sideways: ${doc.scrollWidth}px > ${width}px (${wide.join(', ')})`);
  }
  const big = '.my-number .number, .now-serving, .waiting-count, .board-number';
  // A figure the view hides (the board's, while nobody is served) is not checked.
  for (const e of [...document.querySelectorAll(big)].filter(e => !e.closest('[hidden]'))) {
    const box = e.getBoundingClientRect();
    const style = getComputedStyle(e);
    if (!box.width || !box.height || style.visibility === 'hidden' || style.display === 'none') {
      problems.push(`${e.className} is not visible`);
    } else if (box.left < 0 || box.right > width + 0.5 || e.scrollWidth > e.clientWidth + 1) {
      problems.push(`${e.className} does not fit: ${box.left}..${box.right} of ${width}px`);
    }
    if (box.height > parseFloat(style.fontSize) * 1.6) {
      problems.push(`${e.className} wraps onto several lines: "${e.textContent.trim()}"`);
    }
    if (parseFloat(style.fontSize) < 40) {
      problems.push(`${e.className} is not a big figure: ${style.fontSize}`);
    }
  }
  for (const e of document.querySelectorAll('button, .button, input[type=submit]')) {
    const box = e.getBoundingClientRect();
    if (box.width && box.height < 44) {
      problems.push(`"${e.textContent.trim()}" is only ${box.height}px tall`);
    }
    if (box.width && (box.left < 0 || box.right > width + 0.5)) {
      problems.push(`"${e.textContent.trim()}" sticks out: ${box.left}..${box.right}`);
    }
  }
  return problems;
}
"""

STRUCTURE_PROBLEMS = """
() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push('<html> has no lang');
  if (!document.title.trim()) problems.push('no <title>');
  const h1s = document.querySelectorAll('h1').length;
  if (h1s !== 1) problems.push(`${h1s} <h1> elements`);
  if (!document.querySelector('meta[name=viewport]')) problems.push('no viewport meta');
  for (const e of document.querySelectorAll('input, select, textarea')) {
    if (e.type === 'hidden') continue;
    const named = e.labels.length || e.getAttribute('aria-label') ||
      e.getAttribute('aria-labelledby');
    if (!named) problems.push(`<${e.tagName.toLowerCase()} name=${e.name}> has no label`);
  }
  return problems;
}
"""

# WCAG contrast of every piece of text against the first opaque background behind it.
CONTRAST_PROBLEMS = """
() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = e => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0.5) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const problems = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const e = n.parentElement;
    if (!n.textContent.trim() || seen.has(e)) continue;
    seen.add(e);
    const box = e.getBoundingClientRect();
    if (!box.width || box.right < 0) continue;
    const style = getComputedStyle(e);
    const [a, b] = [lum(rgb(style.color).slice(0, 3)), lum(background(e))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      problems.push(`"${n.textContent.trim().slice(0, 30)}": contrast ${ratio.toFixed(2)}`);
    }
  }
  return problems;
}
"""

# What the keyboard focus looks like now: is there a visible ring, and is it on screen?
FOCUS_STATE = """
() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  if (e.tabStopSeen) return null;
  e.tabStopSeen = true;
  const style = getComputedStyle(e);
  const box = e.getBoundingClientRect();
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow !== 'none';
  return {
    element: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
      ' "' + (e.textContent || e.name || '').trim().slice(0, 30) + '"',
    ring: outline || shadow,
    onScreen: box.width > 0 && box.height > 0 && box.right > 0 && box.left < innerWidth,
  };
}
"""


# axe-core, as shipped by the axe-playwright-python package (no download).
AXE_SCRIPT = os.path.join(
    os.path.dirname(importlib.util.find_spec("axe_playwright_python").origin), "axe.min.js"
)


def axe_problems(page):
    """What axe-core finds on the page against WCAG 2.1 A and AA, one line per
    rule broken: its id, the first element, and how many."""
    with open(AXE_SCRIPT, encoding="utf-8") as script:
        source = script.read()
    found = page.evaluate(
        "async source => { (0, eval)(source); const r = await axe.run(document, "
        "{runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}); "
        "return r.violations.map(v => `${v.id}: ${v.nodes[0].target} (${v.nodes.length})`); }",
        source,
    )
    return found


def layout_problems(page):
    return page.evaluate(LAYOUT_PROBLEMS)


def structure_problems(page):
    return page.evaluate(STRUCTURE_PROBLEMS)


def contrast_problems(page):
    return page.evaluate(CONTRAST_PROBLEMS)


def focus_problems(page, max_stops=30):
    """Tab through a freshly loaded page until focus wraps round: every control
    reached must show a focus ring, on screen."""
    problems, stops = [], 0
    for _ in range(max_stops):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_STATE)
        if state is None:
            break
        stops += 1
        if not state["ring"]:
            problems.append(f"{state['element']} has no visible focus")
        if not state["onScreen"]:
            problems.append(f"{state['element']} is focused off screen")
    if not stops:
        problems.append("Tab does not reach any control")
    return problems


# Like FOCUS_STATE, but it names each control it reaches (a number of its own),
# so that a control with several stops inside it (a time input's hours and
# minutes) is told apart from focus wrapping round to a control seen before.
FOCUS_STOP = """
() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const seen = e.tabStop !== undefined;
  if (!seen) e.tabStop = (window.tabStops = (window.tabStops || 0) + 1);
  const style = getComputedStyle(e);
  const box = e.getBoundingClientRect();
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow !== 'none';
  return {
    stop: e.tabStop,
    seen,
    element: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
      ' "' + (e.textContent || e.name || '').trim().slice(0, 30) + '"',
    ring: outline || shadow,
    onScreen: box.width > 0 && box.height > 0 && box.right > 0 && box.left < innerWidth,
  };
}
"""


def focus_problems_in_long_forms(page, max_stops=120):
    """focus_problems for pages with long forms: Tab through a freshly loaded
    page until focus comes back to a control reached before; stops inside one
    control (a time input's fields) count once."""
    problems, controls, previous = [], 0, None
    for _ in range(max_stops):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_STOP)
        if state is None or (state["seen"] and state["stop"] != previous):
            break
        previous = state["stop"]
        if state["seen"]:
            continue
        controls += 1
        if not state["ring"]:
            problems.append(f"{state['element']} has no visible focus")
        if not state["onScreen"]:
            problems.append(f"{state['element']} is focused off screen")
    else:
        problems.append(f"Tab did not come round within {max_stops} stops")
    if not controls:
        problems.append("Tab does not reach any control")
    return problems


HARMLESS_CONSOLE = (
    # A 404 page's own status; failed sub-resources are caught on their response.
    "Failed to load resource",
    # live.js vibrates when the customer's turn comes; Chrome blocks vibration
    # until the person has tapped the page, and says so on the console.
    "Blocked call to navigator.vibrate",
)


def open_page(
    chromium, server, viewport=PORTRAIT, storage_state=None, javascript=False, theme="light"
):
    """A new browser context (its own cookies; JavaScript off unless asked; the
    light or dark ``theme`` its system prefers) and a page.

    ``page.problems`` collects what a person would not see but should not
    happen: script and console errors, sub-resources that failed to load.
    """
    context = chromium.new_context(
        base_url=server.url,
        viewport=viewport,
        java_script_enabled=javascript,
        storage_state=storage_state,
        color_scheme=theme,
    )
    context.set_default_timeout(10_000)
    return watch(context.new_page())


def watch(page):
    """``page``, with ``page.problems`` collecting what a person would not see
    but should not happen (see ``open_page``)."""
    page.problems = []

    def on_console(message):
        if message.type == "error" and not any(t in message.text for t in HARMLESS_CONSOLE):
            page.problems.append(f"console: {message.text}")

    def on_response(response):
        kind = response.request.resource_type
        if kind != "document" and response.status >= 400 and "favicon" not in response.url:
            page.problems.append(f"{response.status} for {kind} {response.url}")

    def on_request_failed(request):
        # Leaving a page aborts its pending long-poll: that is no failure.
        if request.failure != "net::ERR_ABORTED":
            page.problems.append(f"{request.failure} for {request.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: page.problems.append(f"script error: {error}"))
    page.on("response", on_response)
    page.on("requestfailed", on_request_failed)
    return page
