"""Helpers for the tests that drive the app through WebTest: the flows a person
goes through (create a queue, sign in, take a number, press a button) and page checks."""

import datetime

from server_support import PASSWORD
from webtest import TestApp

__all__ = [
    "PASSWORD",
    "accept",
    "create_queue",
    "hours_ahead",
    "invite",
    "is_visible",
    "my_number",
    "press",
    "sign_in",
    "take_number",
    "visible_buttons",
    "waiting",
]


def hours_ahead(hours=3):
    """A 30-minute opening window in UTC that starts a few hours from now, inside one
    day: ``(opens, closes)`` as aware datetimes."""
    now = datetime.datetime.now(datetime.UTC)
    opens = (now + datetime.timedelta(hours=hours)).replace(second=0, microsecond=0)
    closes = opens + datetime.timedelta(minutes=30)
    if closes.date() != opens.date():
        opens, closes = opens.replace(hour=1, minute=0), opens.replace(hour=1, minute=30)
    return opens, closes


def create_queue(browser, queue_id="cet236", title="CET236 lab help", name="Desk 1"):
    """The owner creates a queue from the home page; returns the console page."""
    form = browser.get("/").forms[0]
    form["queue_id"] = queue_id
    form["title"] = title
    form["password"] = PASSWORD
    form["name"] = name
    return form.submit().follow()


def sign_in(browser, queue_id="cet236", name="Desk 2", password=PASSWORD):
    """A servicer signs in to an existing queue; returns the console page."""
    form = browser.get(f"/{queue_id}/serve").forms[0]
    form["name"] = name
    form["password"] = password
    return form.submit().follow()


def invite(owner, name="Desk 2", queue_id="cet236", valid_for_hours=""):
    """The owner makes a personal invitation on the Manage page; returns its link (shown once)."""
    page = owner.get(f"/{queue_id}/manage")
    form = next(f for f in page.forms.values() if f.action.endswith("/manage/invitations"))
    form["name"], form["valid_for_hours"] = name, valid_for_hours
    return form.submit().follow().html.select_one(".new-invitation .invite-link")["href"]


def accept(browser, link, status=303):
    """A servicer opens their invitation link and signs in; returns the answer to it."""
    form = next(f for f in browser.get(link).forms.values() if "code" in f.fields)
    return form.submit(status=status)


def take_number(browser, queue_id="cet236"):
    """A customer takes a number from the queue's page; returns the ticket page."""
    return browser.get(f"/{queue_id}").forms[0].submit().follow()


def is_visible(tag):
    """Whether the tag would be shown: neither it nor an ancestor is ``hidden``."""
    return not any(t.has_attr("hidden") for t in [tag, *tag.parents] if t.name)


def accessible_name(tag):
    """A button's words as a screen reader says them: without what is aria-hidden
    (the console's shortcut keys)."""
    words = tag.find_all(string=True)
    shown = [w for w in words if not w.find_parent(attrs={"aria-hidden": "true"})]
    return " ".join("".join(shown).split())


def visible_buttons(page):
    return [accessible_name(b) for b in page.html.find_all("button") if is_visible(b)]


def press(page, button):
    """Press a visible button (Next, Done, Leave the queue...); follow the 303.

    A servicer's first Next is labelled "Start serving"; "Next" presses either.
    """
    labels = {button, "Start serving"} if button == "Next" else {button}
    for form in page.forms.values():
        tag = form.html.find("button")
        if accessible_name(tag) in labels and is_visible(form.html.form):
            return form.submit().follow()
    raise AssertionError(f"no visible {button!r} button on the page")


def my_number(ticket_page):
    return int(ticket_page.html.select_one(".my-number .number").get_text())


def waiting(browser, queue_id="cet236"):
    """How many are waiting, as the queue's page shows it to a new visitor."""
    page = TestApp(browser.app).get(f"/{queue_id}")
    return int(page.html.select_one("[data-text=waiting]").get_text())
