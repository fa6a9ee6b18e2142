"""How soon a real browser shows "It's your turn" after the servicer presses Next.

    .venv/bin/python benchmarks/browser_push.py [--trials 30]

Starts the app from app.ini (benchmarks/harness.py) and headless Chromium
(Debian's, through Playwright). For each trial a customer, in their own browser
context with JavaScript on, takes a number and waits on their ticket page; the
servicer presses Next over HTTP. A MutationObserver in the page records the
moment the page turns to "your turn"; the latency is from the end of the
servicer's POST to that moment, both on this machine's clock. The baseline,
measured in the same run and the same page, is one plain fetch of a small
static file: the floor for any round trip through the server and the browser.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402  benchmarks/harness.py: the server from app.ini
from harness import BenchmarkError, http_request  # noqa: E402

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUEUE = "browser-push"
WATCH = """
() => new Promise(resolve => {
  const ticket = document.querySelector('.ticket');
  const observer = new MutationObserver(() => {
    if (ticket.classList.contains('state-called')) {
      window.turnShownAt = Date.now();
      observer.disconnect();
    }
  });
  observer.observe(ticket, {attributes: true});
  resolve(true);
})
"""
BASELINE = """
async () => {
  const started = performance.now();
  const response = await fetch('/static/style.css?nocache=' + Math.random(), {cache: 'no-store'});
  await response.text();
  return performance.now() - started;
}
"""


def create_queue(port):
    status, _, cookies, page = http_request(port, "GET", "/")
    csrf = harness.CSRF_INPUT.search(page).group(1)
    cookie = f"tan_session={cookies['tan_session']}"
    body = urllib.parse.urlencode(
        {
            "csrf_token": csrf,
            "queue_id": QUEUE,
            "title": "Browser push benchmark",
            "password": harness.PASSWORD,
            "name": "Desk 1",
        }
    )
    status, location, cookies, _ = http_request(port, "POST", "/", cookie, body)
    if status != 303:
        raise BenchmarkError(f"creating the queue gave {status}")
    cookie = f"tan_session={cookies.get('tan_session', cookie.split('=', 1)[1])}"
    return cookie, harness.console(port, QUEUE, cookie)


def press_next(port, cookie, csrf):
    body = urllib.parse.urlencode({"csrf_token": csrf})
    status, _, _, _ = http_request(port, "POST", f"/{QUEUE}/serve/next", cookie, body)
    done = time.time() * 1000
    if status != 303:
        raise BenchmarkError(f"Next gave {status}")
    return done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    procs = harness.Processes()
    latencies, baselines = [], []
    try:
        with tempfile.TemporaryDirectory(prefix="tan-browser-push-") as workdir:
            port = harness.start_app(procs, workdir, harness.read_app_ini(), harness.new_store).port
            base = f"http://127.0.0.1:{port}"
            cookie, csrf = create_queue(port)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
                )
                for _ in range(args.trials):
                    context = browser.new_context(base_url=base)
                    page = context.new_page()
                    page.goto(f"/{QUEUE}")
                    page.get_by_role("button", name="Take a number").click()
                    page.wait_for_url("**/ticket/*")
                    page.wait_for_function("() => document.body.dataset.version !== undefined")
                    page.wait_for_timeout(300)  # the page's long-poll is now held
                    baselines.append(page.evaluate(BASELINE))
                    page.evaluate(WATCH)
                    pressed = press_next(port, cookie, csrf)
                    page.wait_for_function("() => window.turnShownAt !== undefined", timeout=10_000)
                    latencies.append(page.evaluate("window.turnShownAt") - pressed)
                    context.close()
                browser.close()
    finally:
        procs.stop_all()
    p50, p99, worst = (
        statistics.median(latencies),
        harness.percentile(latencies, 99),
        max(latencies),
    )
    base50 = statistics.median(baselines)
    print(f"Chromium, {args.trials} trials, server from app.ini ({os.cpu_count()} CPUs)")
    print(
        f"  'your turn' shown after Next:  p50 {p50:.0f} ms  p99 {p99:.0f} ms  max {worst:.0f} ms"
    )
    print(f"  baseline fetch of a static file: p50 {base50:.1f} ms")
    print(f"  ratio p50 / baseline p50: {p50 / base50:.1f}x")
    met = worst < 1000
    print(f"  goal: under 1 s every time: {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
