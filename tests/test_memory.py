"""Memory on a busy day: what the app keeps to answer from memory stays small."""

import re
import sys

from support import create_queue
from webtest import TestApp

from take_a_number import security

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def deep_size(thing, seen=None):
    """Bytes held by ``thing`` and everything it refers to through containers."""
    seen = set() if seen is None else seen
    if id(thing) in seen:
        return 0
    seen.add(id(thing))
    size = sys.getsizeof(thing)
    if isinstance(thing, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in thing.items())
    elif isinstance(thing, list | tuple | set | frozenset):
        size += sum(deep_size(item, seen) for item in thing)
    return size


def new_customers_take_numbers(app, queue_id, count):
    """``count`` new browsers each open the queue, take a number and read their ticket."""
    for _ in range(count):
        browser = TestApp(app)
        page = browser.get(f"/{queue_id}")
        ticket = browser.post(f"/{queue_id}/take", {"csrf_token": CSRF.search(page.text).group(1)})
        ticket.follow()


def test_tickets_read_before_a_change_are_not_kept(app, browser):
    create_queue(browser)
    new_customers_take_numbers(app, "cet236", 300)
    # Each take changed the queue: the tickets read before it could never be
    # served from memory again.
    assert len(app.snapshots._tickets) <= 2


def test_answers_remembered_before_a_change_are_not_kept(app, browser):
    create_queue(browser)
    new_customers_take_numbers(app, "cet236", 300)
    assert len(app.answers.kept) <= 2


def test_the_checked_session_cookies_kept_fit_in_a_few_megabytes(app, browser):
    create_queue(browser)
    new_customers_take_numbers(app, "cet236", 200)
    verified = app.sessions._verified
    each = deep_size(verified) / len(verified)
    assert security.VERIFIED_COOKIES * each < 8 * 2**20
