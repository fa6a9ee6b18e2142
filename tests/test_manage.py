"""The owner's controls, roles, statistics, CSV, QR code and poster."""

import csv
import datetime
import io
import pathlib
import time
import xml.etree.ElementTree as ET

import pytest
from support import (
    PASSWORD,
    accept,
    create_queue,
    hours_ahead,
    invite,
    my_number,
    press,
    sign_in,
    take_number,
    visible_buttons,
    waiting,
)
from webtest import TestApp

from take_a_number import rules

SVG = "{http://www.w3.org/2000/svg}svg"


def manage(browser, form_action, **fields):
    """Submit one of the manage page's forms (found by its action's last part)."""
    page = browser.get("/cet236/manage")
    form = next(f for f in page.forms.values() if f.action.endswith(form_action))
    for name, value in fields.items():
        form[name] = value
    return form.submit(status="*")


def names(page, kind):
    """The names listed on the Manage page: ``servicer`` (signed in) or ``invitation``."""
    return [tag.get_text() for tag in page.html.select(f".{kind}-name")]


def status_buttons(browser, status):
    page = browser.get("/cet236/manage")
    form = next(
        f for f in page.forms.values() if "status" in f.fields and f["status"].value == status
    )
    return form.submit().follow()


# -- roles ------------------------------------------------------------------------


def test_an_invitation_signs_its_servicer_in_under_its_name_and_they_cannot_manage(
    browser, new_browser
):
    create_queue(browser)
    link = invite(browser, "Desk 2")
    code = link.partition("?code=")[2]
    assert len(code) == 14 and code[4] == code[9] == "-"
    staff = new_browser()
    page = staff.get(link)
    assert page.html.find("button", string="Sign in as Desk 2")
    console = accept(staff, link).follow()
    assert "Signed in as" in console and "Desk 2" in console
    assert "Manage the queue" not in console
    assert "Only the owner can do this" in staff.get("/cet236/manage", status=403)
    staff.get("/cet236/manage/stats", status=403)
    staff.get("/cet236/manage/tickets.csv", status=403)


def test_an_invitation_link_is_shown_once_and_its_code_is_stored_hashed(app, browser):
    create_queue(browser)
    link = invite(browser, "Desk 2")
    code = link.partition("?code=")[2]
    page = browser.get("/cet236/manage")
    assert code not in page and not page.html.select(".new-invitation")
    assert names(page, "invitation") == ["Desk 2"]
    assert "not signed in" in page.html.select_one(".invitations li").get_text()
    stored = b"".join(p.read_bytes() for p in pathlib.Path(app.store.path).parent.glob("*sqlite*"))
    assert code.encode() not in stored and code.replace("-", "").encode() not in stored
    assert app.store.db.execute("select staff_code from queues").fetchone()[0] is None


def test_the_invitation_signs_the_same_servicer_in_again_on_another_device(browser, new_browser):
    create_queue(browser)
    link = invite(browser, "Desk 2")
    for _ in take_number(new_browser()), take_number(new_browser()):
        pass
    phone = accept(new_browser(), link).follow()
    press(phone, "Next")
    laptop = accept(new_browser(), link).follow()
    assert laptop.html.select_one(".now-serving").get_text() == "1"
    page = browser.get("/cet236/manage")
    assert names(page, "servicer") == ["Desk 1", "Desk 2"]
    assert "signed in" in page.html.select_one(".invitations li").get_text()


def test_revoked_servicer_is_told_why_and_cannot_sign_back_in(browser, new_browser):
    create_queue(browser)
    link = invite(browser, "Desk 2")
    customer = new_browser()
    ticket = take_number(customer)
    staff = new_browser()
    press(accept(staff, link).follow(), "Next")
    assert "go to Desk 2" in customer.get(ticket.request.path)
    press(browser.get("/cet236/manage"), "Revoke Desk 2")
    console = staff.get("/cet236/serve")
    assert "The owner revoked your access to this queue." in console
    assert not console.html.select(".now-serving")
    # The same link no longer signs anyone in, and the customer is first in line again.
    assert "The owner revoked this invitation" in new_browser().get(link)
    staff.post(
        "/cet236/sign-in",
        {"csrf_token": _csrf(console), "code": link.partition("?code=")[2]},
        status=400,
    )
    assert "Signed in as" not in staff.get("/cet236/serve")
    page = customer.get(ticket.request.path)
    assert my_number(page) == 1 and "You're next." in page.html.get_text()
    assert names(browser.get("/cet236/manage"), "invitation") == []


def test_revoking_holds_at_once_in_every_process_on_the_database(make_app, browser):
    create_queue(browser)
    link = invite(browser, "Desk 2")
    other_process = TestApp(make_app())  # another app on the same file and secret
    staff = TestApp(browser.app)
    accept(staff, link)
    cookie = staff.cookies["tan_session"]
    other_process.set_cookie("tan_session", cookie)
    assert "Signed in as" in other_process.get("/cet236/serve")
    press(browser.get("/cet236/manage"), "Revoke Desk 2")
    assert "The owner revoked your access" in other_process.get("/cet236/serve")
    other_process.get("/cet236/serve/updates", status=403)


def test_a_servicer_signed_in_without_an_invitation_can_be_revoked(app, browser):
    create_queue(browser)
    # Signed in with a shared staff code before the upgrade, say.
    legacy = app.store.sign_in("cet236", "Desk 9", app.now())
    page = browser.get("/cet236/manage")
    assert names(page, "servicer") == ["Desk 1", "Desk 9"]
    press(page, "Revoke Desk 9")
    assert app.store.get_servicer(legacy["id"])["left_reason"] == "revoked"
    assert names(browser.get("/cet236/manage"), "servicer") == ["Desk 1"]


def test_an_expired_invitation_no_longer_signs_in(app, browser, new_browser):
    create_queue(browser)
    link = invite(browser, "Desk 2", valid_for_hours="8")
    assert "the link works until" in browser.get("/cet236/manage")
    later = app.clock() + 8 * 3600
    app.clock = lambda: later
    assert "This invitation has expired" in new_browser().get(link)
    assert "expired" in browser.get("/cet236/manage").html.select_one(".invitations li").get_text()


def test_two_live_invitations_never_share_a_name(browser):
    create_queue(browser)
    invite(browser, "Desk 2")
    refused = manage(browser, "/manage/invitations", name="desk 2")
    assert refused.status_int == 400
    assert "There is already an invitation under this name" in refused
    assert refused.html.find("input", attrs={"name": "name"})["value"] == "desk 2"


def test_an_invited_servicer_cannot_take_over_the_owners_desk_name(browser, new_browser):
    create_queue(browser, name="Desk 1")
    link = invite(browser, "desk 1")
    refused = accept(new_browser(), link, status=409)
    assert "Someone else is signed in under this invitation's name" in refused.html.get_text()


def test_the_owner_can_also_serve(browser, new_browser):
    console = create_queue(browser)
    take_number(new_browser())
    assert visible_buttons(console)[0] == "Start serving"
    console = press(console, "Next")
    assert visible_buttons(console)[0] == "Next"
    assert console.html.select_one(".now-serving").get_text() == "1"


# -- pause, close, clear, limits, announcements ------------------------------------------


def test_a_paused_queue_keeps_its_line_but_gives_no_numbers(browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    status_buttons(browser, "paused")
    newcomer = new_browser()
    join = newcomer.get("/cet236")
    assert "The queue is paused" in join
    assert visible_buttons(join) == []
    refused = newcomer.post("/cet236/take", {"csrf_token": _csrf(join)}, status=409)
    assert "The queue is paused" in refused
    page = customer.get(ticket.request.path)
    assert my_number(page) == 1 and "Position in line: 1" in page
    assert "The queue is paused" in page
    status_buttons(browser, "open")
    assert my_number(take_number(newcomer)) == 2


def _csrf(page):
    return page.html.find("input", attrs={"name": "csrf_token"})["value"]


def test_a_closed_queue_says_so_and_reopens(browser, new_browser):
    create_queue(browser)
    status_buttons(browser, "closed")
    assert "The queue is closed." in new_browser().get("/cet236")
    status_buttons(browser, "open")
    assert visible_buttons(new_browser().get("/cet236")) == ["Take a number"]


def test_clearing_the_line_asks_first_and_tells_the_customers(browser, new_browser):
    console = create_queue(browser)
    customers = [new_browser() for _ in range(3)]
    tickets = [take_number(c) for c in customers]
    press(console, "Next")
    confirm = browser.get("/cet236/manage/clear")
    assert "2 people are" in confirm
    assert waiting(browser) == 2  # the confirmation page changed nothing
    press(confirm, "Yes, clear the line")
    assert waiting(browser) == 0
    assert "cleared the line" in customers[1].get(tickets[1].request.path)
    assert "It's your turn" in customers[0].get(tickets[0].request.path).html.get_text()
    assert visible_buttons(customers[2].get(tickets[2].request.path)) == ["Take a new number"]


def test_a_full_line_says_so(browser, new_browser):
    create_queue(browser)
    manage(browser, "/manage/options", max_waiting="2").follow()
    take_number(new_browser())
    take_number(new_browser())
    join = new_browser().get("/cet236")
    assert "The line is full right now" in join
    assert visible_buttons(join) == []


def test_bad_options_get_clear_messages(browser):
    create_queue(browser)
    page = manage(browser, "/manage/options", max_waiting="lots")
    assert page.status_int == 400
    assert "Enter a whole number" in page


def test_an_announcement_reaches_everyone_waiting(browser, new_browser):
    create_queue(browser)
    customer = new_browser()
    ticket = take_number(customer)
    manage(browser, "/manage/options", announcement="Back at 2 pm <b>sharp</b>").follow()
    page = customer.get(ticket.request.path)
    assert page.html.select_one(".announcement").get_text() == (
        "Announcement: Back at 2 pm <b>sharp</b>"
    )
    assert "<b>sharp" not in page.text  # escaped, never markup
    assert "Back at 2 pm" in browser.get("/cet236/board")
    updates = customer.get(ticket.request.path + "/updates").json
    assert updates["announcement"] == "Back at 2 pm <b>sharp</b>"


def set_hours_ahead(browser, hours=3):
    """Opening hours, every day in UTC, that start a few hours from now; their opening
    as an aware datetime."""
    opens, closes = hours_ahead(hours)
    page = browser.get("/cet236/manage")
    form = next(f for f in page.forms.values() if f.action.endswith("/manage/hours"))
    form["always_open"] = False
    for field in form.fields["days"]:
        field.checked = True
    form["opens"], form["closes"] = opens.strftime("%H:%M"), closes.strftime("%H:%M")
    form["timezone"] = "UTC"
    form.submit().follow()
    return opens


def test_outside_opening_hours_customers_see_when_it_opens(browser, new_browser):
    create_queue(browser)
    opens = set_hours_ahead(browser)
    join = new_browser().get("/cet236")
    assert "The queue is closed. It opens " in join
    assert opens.strftime("%H:%M") in join
    assert visible_buttons(join) == []


def test_the_queue_page_offers_a_number_from_the_moment_it_opens(app, browser, new_browser):
    create_queue(browser)
    opens = set_hours_ahead(browser).timestamp()
    customer = new_browser()
    app.clock = lambda: opens - 10
    assert visible_buttons(customer.get("/cet236")) == []
    # Nothing was written since: only the clock says the page changed.
    app.clock = lambda: opens + 1
    join = customer.get("/cet236")
    assert "The queue is closed" not in join
    assert visible_buttons(join) == ["Take a number"]
    ticket = take_number(customer)
    assert my_number(ticket) == 1


def test_a_held_live_update_is_answered_when_the_queue_opens(make_app):
    app = make_app(push_hold_seconds="20")
    browser, customer = TestApp(app), TestApp(app)
    create_queue(browser)
    opens = set_hours_ahead(browser).timestamp()
    offset = opens - time.time() - 1.0  # the app's clock: 1 s before it opens
    app.clock = lambda: time.time() + offset
    view = customer.get("/cet236/updates").json
    assert view["accepting"] is False
    started = time.monotonic()
    update = customer.get(f"/cet236/updates?since={view['version']}").json
    # Answered as it opened, not when the 20 s hold ran out, with what it says now.
    assert time.monotonic() - started < 5
    assert update["version"] == view["version"]
    assert update["accepting"] is True and update["notice"] == ""
    app.close()


def test_every_day_ticked_is_kept(browser):
    create_queue(browser)
    page = browser.get("/cet236/manage")
    form = next(f for f in page.forms.values() if f.action.endswith("/manage/hours"))
    form["always_open"] = False
    for field in form.fields["days"]:
        field.checked = field._value in ("0", "2", "4")  # Monday, Wednesday, Friday
    form["opens"], form["closes"] = "09:00", "17:00"
    form.submit().follow()
    # The page shows the hours as stored.
    page = browser.get("/cet236/manage")
    ticked = page.html.select('input[name="days"][checked]')
    assert [box["value"] for box in ticked] == ["0", "2", "4"]


def test_opening_hours_are_validated(browser):
    create_queue(browser)
    page = browser.get("/cet236/manage")
    form = next(f for f in page.forms.values() if f.action.endswith("/manage/hours"))
    form["always_open"] = False
    form["opens"], form["closes"] = "09:00", "09:00"
    result = form.submit(status=400)
    assert result.status_int == 400
    assert "Closing time must differ from opening time." in result


# -- customer rules -----------------------------------------------------------------------


def test_not_ready_lets_the_next_person_go_first_a_limited_number_of_times(browser, new_browser):
    console = create_queue(browser)
    slow, other, third = new_browser(), new_browser(), new_browser()
    ticket = take_number(slow)
    others_ticket = take_number(other)
    take_number(third)
    page = press(slow.get(ticket.request.path), "Not ready – let the next person go first")
    assert "Position in line: 2" in page
    page = press(page, "Not ready – let the next person go first")
    assert "Position in line: 3" in page
    assert "Not ready – let the next person go first" not in visible_buttons(page)
    press(console, "Next")
    assert "It's your turn" in other.get(others_ticket.request.path).html.get_text()


def test_a_no_show_goes_to_the_end_of_the_line_once_when_the_owner_says_so(browser, new_browser):
    console = create_queue(browser)
    manage(browser, "/manage/options", no_show_policy="requeue").follow()
    late = new_browser()
    ticket = take_number(late)
    take_number(new_browser())
    console = press(press(console, "Next"), "No show")
    page = late.get(ticket.request.path)
    assert "Position in line: 2" in page
    console = press(console, "Next")  # the second customer
    console = press(console, "Next")  # the late one again
    console = press(console, "No show")  # a second no-show ends it
    assert "your turn has passed" in late.get(ticket.request.path)


# -- statistics, CSV, QR and poster ---------------------------------------------------------


def test_the_owner_reads_the_days_figures_as_charts_and_csv(browser, new_browser):
    console = create_queue(browser)
    for _ in range(4):
        take_number(new_browser())
    for _ in range(3):
        console = press(console, "Next")
    press(console, "No show")
    stats = browser.get("/cet236/manage/stats")
    totals = [
        td.get_text() for td in stats.html.select("table.stats")[0].select("tbody tr")[0]("td")
    ]
    assert totals[:4] == ["4", "2", "1", "0"]
    charts = stats.html.select("figure.chart svg")
    assert len(charts) == 4
    for chart in charts:
        root = ET.fromstring(str(chart))
        assert root.tag == SVG
        assert root.find("{http://www.w3.org/2000/svg}title").text
    download = browser.get("/cet236/manage/tickets.csv")
    assert download.content_type == "text/csv"
    assert download.headers["Content-Disposition"] == 'attachment; filename="cet236-tickets.csv"'
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["number"], r["state"]) for r in rows] == [
        ("1", "served"),
        ("2", "served"),
        ("3", "no_show"),
        ("4", "waiting"),
    ]
    assert rows[0]["servicer"] == "Desk 1"


def test_the_qr_code_and_poster_show_the_join_link(browser, new_browser):
    console = create_queue(browser)
    qr = new_browser().get("/cet236/qr.svg")
    assert qr.content_type == "image/svg+xml"
    root = ET.fromstring(qr.body)
    assert root.tag == SVG
    assert root.find("{http://www.w3.org/2000/svg}title").text == "http://localhost/cet236"
    assert console.html.select_one("img.qr")["src"] == "/cet236/qr.svg"
    poster = new_browser().get("/cet236/poster")
    assert poster.html.select_one(".poster-link").get_text() == "http://localhost/cet236"
    assert poster.html.select_one("img.poster-qr")["src"] == "/cet236/qr.svg"
    new_browser().get("/nosuch/qr.svg", status=404)


def test_the_console_says_when_the_line_is_growing(app, browser, new_browser):
    console = create_queue(browser)
    for _ in range(4):
        take_number(new_browser())
    for _ in range(4):  # three served, the fourth being served
        console = press(console, "Next")
    flow = browser.get("/cet236/serve").html.select_one(".flow")
    # Services took no time at all here, so the line can only be shrinking.
    assert flow["class"] == ["flow", "flow-shrinking"]
    assert flow.select_one(".flow-headline").get_text() == (
        "Line shrinking: you serve over 10 more people a minute than join."
    )
    assert "4 people joined in the last 15 min" in flow.get_text()


# -- opening hours: hostile input, overnight hours, one status ------------------------------


def hours_form(browser):
    page = browser.get("/cet236/manage")
    return next(f for f in page.forms.values() if f.action.endswith("/manage/hours"))


def set_hours(browser, days, opens, closes, timezone="UTC"):
    """Submit the opening hours form; returns the answer (a 303, or the page with errors)."""
    form = hours_form(browser)
    form["always_open"] = False
    for field in form.fields["days"]:
        field.checked = field._value in {str(day) for day in days}
    form["opens"], form["closes"] = opens, closes
    form["timezone"].force_value(timezone)
    return form.submit(status="*")


def at(text):
    """Unix time of a UTC time, e.g. at("2026-11-27 17:00") (a Friday)."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC).timestamp()


UNKNOWN_ZONES = ["America", "Etc", "Europe/" + "x" * 300, "../../etc/passwd", "zone.tab"]


@pytest.mark.parametrize("timezone", UNKNOWN_ZONES)
def test_a_time_zone_that_is_no_zone_gets_a_clear_message_not_an_error(browser, timezone):
    create_queue(browser)
    page = set_hours(browser, [0], "09:00", "17:00", timezone)
    assert page.status_int == 400
    assert "Unknown time zone; use a name like Europe/London." in page
    # The owner's choice is kept for them to correct; the stored zone did not change.
    assert browser.get("/cet236/manage").html.select_one("#timezone option[selected]") is not None


@pytest.mark.parametrize("opens", ["09:00+05:00", "09:00Z", "09:00:00.5", "24:00", "9h"])
def test_an_opening_time_with_an_offset_or_seconds_gets_a_clear_message(browser, opens):
    create_queue(browser)
    page = set_hours(browser, [0], opens, "17:00")
    assert page.status_int == 400
    assert "Use hours and minutes, like 09:00." in page


def test_bad_zones_and_times_get_a_400_over_the_api_too(browser):
    api = TestApp(browser.app)
    body = {"queue_id": "lab", "title": "Lab", "password": "correct horse", "name": "Desk 1"}
    owner = api.post_json("/api/v1/queues", body, status=201).json["token"]
    headers = {"Authorization": f"Bearer {owner}"}
    good = {"days": [0], "opens": "09:00", "closes": "17:00", "timezone": "UTC"}
    for change, field in [
        *[({"timezone": zone}, "timezone") for zone in UNKNOWN_ZONES],
        ({"opens": "09:00+05:00"}, "opens"),
        ({"closes": "17:00-03:00"}, "closes"),
        ({"always_open": True, "timezone": "America"}, "timezone"),
    ]:
        answer = api.post_json(
            "/api/v1/queues/lab/hours", {**good, **change}, headers=headers, status=400
        )
        assert field in answer.json["error"]["fields"], change
    assert api.get("/api/v1/queues/lab/settings", headers=headers).json["opening_hours"] is None


def test_always_open_ignores_whatever_the_hour_fields_say(browser):
    create_queue(browser)
    set_hours(browser, [0], "09:00", "17:00").follow()
    form = hours_form(browser)
    form["always_open"] = True
    for field in form.fields["days"]:
        field.checked = False
    form["opens"], form["closes"] = "soon", ""
    page = form.submit().follow()
    assert page.html.select_one("#always_open").has_attr("checked")
    assert page.html.select_one(".queue-status").get_text(strip=True) == "Open"


def test_overnight_hours_are_kept_and_give_numbers_until_the_morning(app, browser, new_browser):
    create_queue(browser)
    set_hours(browser, [4], "17:00", "09:00").follow()  # Friday night
    form = hours_form(browser)
    assert (form["opens"].value, form["closes"].value) == ("17:00", "09:00")
    app.clock = lambda: at("2026-11-28 02:00")  # Saturday, 2 in the morning
    assert "it closes today at 09:00" in browser.get("/cet236/manage")
    customer = new_browser()
    assert visible_buttons(customer.get("/cet236")) == ["Take a number"]
    assert my_number(take_number(customer)) == 1
    app.clock = lambda: at("2026-11-28 09:30")
    join = new_browser().get("/cet236")
    assert "The queue is closed. It opens on Friday at 17:00." in join
    assert visible_buttons(join) == []
    refused = new_browser().get("/cet236").forms[0].submit(status=409)
    assert "It opens on Friday at 17:00" in refused


@pytest.mark.sqlite_only  # PostgreSQL's takes call the same rule in Python (open_at)
def test_the_database_agrees_with_the_pages_on_overnight_hours(app, browser):
    """Takes written together check the hours in SQL (tan_open_at): the same rule."""
    create_queue(browser)
    set_hours(browser, [4], "17:00", "09:00", "Europe/London").follow()
    queue = app.store.get_queue("cet236")
    for hour in range(24 * 8):
        now = at("2026-11-23 00:00") + hour * 3600 + 900
        (in_sql,) = app.store.db.execute(
            "SELECT tan_open_at(opening_hours, timezone, ?) FROM queues WHERE id = ?",
            (now, "cet236"),
        ).fetchone()
        assert bool(in_sql) is (rules.closed_notice(queue, 0, now) is None), hour


def test_the_manage_page_shows_one_status_with_the_opening_hours(app, browser):
    create_queue(browser)
    set_hours(browser, [0, 1, 2, 3, 4], "08:57", "17:00").follow()
    app.clock = lambda: at("2026-11-23 07:00")  # Monday, before it opens
    page = browser.get("/cet236/manage")
    status = page.html.select_one(".queue-status").get_text(strip=True)
    assert status == "Open — but outside opening hours: it opens today at 08:57"
    assert "Status: Open" not in page.html.get_text()
    assert page.html.select_one("[aria-pressed=true]").get_text(strip=True) == "Open"
    app.clock = lambda: at("2026-11-23 12:00")
    status = browser.get("/cet236/manage").html.select_one(".queue-status").get_text(strip=True)
    assert status == "Open — within opening hours: it closes today at 17:00"


@pytest.mark.parametrize(
    "form_action, fields, section",
    [
        ("/manage/options", {"announcement": "Back at 2"}, "options"),
        ("/manage/hours", {"always_open": True}, "hours"),
        ("/manage/status", {}, "status"),
    ],
)
def test_each_save_is_confirmed(browser, form_action, fields, section):
    create_queue(browser)
    saved = manage(browser, form_action, **fields)
    assert saved.status_int == 303
    assert saved.location.endswith(f"/cet236/manage?saved={section}#{section}")
    page = saved.follow()
    assert [p.get_text(strip=True) for p in page.html.select(f"#{section} .saved")] == ["Saved."]
    assert len(page.html.select(".saved")) == 1
    assert browser.get("/cet236/manage").html.select(".saved") == []


def test_after_an_error_the_first_field_in_error_has_the_focus(browser):
    create_queue(browser)
    page = set_hours(browser, [1], "9h", "", "America")
    assert page.status_int == 400
    assert [tag["id"] for tag in page.html.select("[autofocus]")] == ["opens"]
    page = set_hours(browser, [], "09:00", "17:00")
    assert [tag["name"] for tag in page.html.select("[autofocus]")] == ["days"]
    assert page.html.select_one("[autofocus]")["value"] == "0"
    page = manage(browser, "/manage/options", max_waiting="lots")
    assert [tag["id"] for tag in page.html.select("[autofocus]")] == ["max_waiting"]
    assert page.html.select(".saved") == []
    assert browser.get("/cet236/manage").html.select("[autofocus]") == []


def test_a_form_with_a_mistake_comes_back_as_it_was_sent(browser):
    create_queue(browser)  # always open
    page = set_hours(browser, [5, 6], "", "17:00")
    assert page.status_int == 400
    assert not page.html.select_one("#always_open").has_attr("checked")
    ticked = page.html.select('input[name="days"][checked]')
    assert [box["value"] for box in ticked] == ["5", "6"]
    assert page.html.select_one("#closes")["value"] == "17:00"


def test_clearing_the_line_is_confirmed_on_the_manage_page(browser, new_browser):
    create_queue(browser)
    take_number(new_browser())
    confirm = browser.get("/cet236/manage/clear")
    form = next(f for f in confirm.forms.values() if f.action.endswith("/manage/clear"))
    page = form.submit().follow()
    assert page.html.select_one("#status .saved").get_text(strip=True) == (
        "The waiting line is cleared."
    )
    assert waiting(browser) == 0


def test_hostile_invitation_forms_get_a_clear_400(browser, new_browser):
    create_queue(browser)
    csrf = _csrf(browser.get("/cet236/manage"))
    for fields in (
        {"name": ""},
        {"name": "x" * 41},
        {"name": "Desk", "valid_for_hours": "-1"},
        {"name": "Desk", "valid_for_hours": "9" * 30},
    ):
        browser.post("/cet236/manage/invitations", dict(fields, csrf_token=csrf), status=400)
    browser.post("/cet236/manage/invitations/999999999999999999/revoke", {"csrf_token": csrf})
    browser.post(
        "/cet236/manage/invitations/99999999999999999999/revoke", {"csrf_token": csrf}, status=404
    )
    stranger = new_browser()
    token = _csrf(stranger.get("/cet236/serve"))
    for code in ("", "x" * 41, "K7P2-X9QM-4RTD", "\u00e9"):
        page = stranger.post("/cet236/sign-in", {"csrf_token": token, "code": code}, status=400)
        assert "Signed in as" not in page
    stranger.get("/cet236/serve?code=%ff%fe", status=400)  # not UTF-8: a plain 400


# -- the owner's password --------------------------------------------------------------


def change_password(browser, old, new, again=None):
    return manage(
        browser,
        "/manage/password",
        old_password=old,
        new_password=new,
        new_password_again=new if again is None else again,
    )


def test_the_owner_changes_the_password_and_only_the_new_one_signs_in(browser, new_browser):
    create_queue(browser)
    answer = change_password(browser, PASSWORD, "battery staple")
    assert answer.status_int == 303 and answer.location.endswith("?saved=password#password")
    assert "Sign in with the new password" in answer.follow().html.select_one("#password").text
    old = new_browser().get("/cet236/serve").forms[0]
    old["name"], old["password"] = "Desk 9", PASSWORD
    assert old.submit(status=400).html.select_one("#password-error").text
    assert sign_in(new_browser(), password="battery staple").request.path == "/cet236/serve"
    assert "Signed in as" in sign_in(new_browser(), password="battery staple")


def test_a_wrong_old_password_changes_nothing_and_says_so(browser, new_browser):
    create_queue(browser)
    page = change_password(browser, "not the password", "battery staple")
    assert page.status_int == 400
    message = page.html.select_one("#old_password-error").get_text()
    assert "not the queue's password as it is now; nothing was changed" in message
    assert page.html.select_one("#old_password").has_attr("autofocus")
    # No password is ever typed back into the page.
    assert not [i for i in page.html.select("input[type=password]") if i.get("value")]
    assert "Signed in as" in sign_in(new_browser(), password=PASSWORD)


def test_the_new_password_must_be_typed_the_same_twice_and_be_long_enough(browser):
    create_queue(browser)
    page = change_password(browser, PASSWORD, "battery staple", again="battery stapel")
    assert page.status_int == 400
    assert "differ" in page.html.select_one("#new_password_again-error").get_text()
    page = change_password(browser, PASSWORD, "short")
    assert "at least 8" in page.html.select_one("#new_password-error").get_text()


def test_wrong_old_passwords_count_against_the_sign_in_limit(make_app):
    app = make_app(rate_limit_sign_in="2/600", rate_limit_sign_in_slowed="off")
    owner = TestApp(app)
    create_queue(owner)
    for _ in range(2):
        assert change_password(owner, "guess guess", "battery staple").status_int == 400
    refused = change_password(owner, PASSWORD, "battery staple")
    assert refused.status_int == 429 and refused.headers["Retry-After"]
    assert "Too many wrong passwords" in refused.text
    # The guesses at the Manage page held the sign-in back too: one limit.
    form = TestApp(app).get("/cet236/serve").forms[0]
    form["name"], form["password"] = "Desk 9", PASSWORD
    assert form.submit(status=429)


def test_a_servicer_who_is_not_the_owner_cannot_change_the_password(browser, new_browser):
    create_queue(browser)
    servicer = new_browser()
    accept(servicer, invite(browser, "Desk 2"))
    csrf = servicer.get("/cet236/serve").html.select_one("input[name=csrf_token]")["value"]
    fields = {"old_password": PASSWORD, "new_password": "battery staple", "csrf_token": csrf}
    fields["new_password_again"] = fields["new_password"]
    assert servicer.post("/cet236/manage/password", fields, status=403)
    assert "Signed in as" in sign_in(new_browser(), name="Desk 3", password=PASSWORD)


def test_statistics_say_short_times_in_seconds_and_name_the_queues_time_zone(app, browser):
    start = time.time() - 600
    app.clock = lambda: start
    form = browser.get("/").forms[0]
    for name, value in {
        "queue_id": "cet236",
        "title": "Lab",
        "password": PASSWORD,
        "name": "Desk 1",
        "timezone": "Europe/Paris",
    }.items():
        form[name] = value
    console = form.submit().follow()
    take_number(TestApp(app))
    take_number(TestApp(app))
    app.clock = lambda: start + 10  # serving starts: the first waited 0 s
    console = press(console, "Next")
    app.clock = lambda: start + 20  # and was served in 10 s
    console = press(console, "Done")
    app.clock = lambda: start + 55  # the second waited 45 s from the start of serving
    console = press(console, "Next")
    app.clock = lambda: start + 55 + 150  # and was served in 2.5 minutes
    press(console, "Done")
    stats = browser.get("/cet236/manage/stats")
    row = stats.html.select("table.stats")[0].select("tbody tr")[0]("td")
    cells = [td.get_text() for td in row]
    assert cells[6] == "45 s"  # the p90 wait: not "0.8 min"
    assert cells[9] == "2.5 min"  # the p90 service: two minutes or more, in minutes
    assert cells[8] == "80 s"  # the median service, under two minutes
    assert stats.html.select_one(".stats-timezone").get_text() == "Europe/Paris"
    assert "Times in UTC" not in stats.text
    assert (
        browser.get("/cet236/manage").html.select_one("#timezone option[selected]")["value"]
        == "Europe/Paris"
    )
