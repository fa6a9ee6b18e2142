"""The rules of the line as plain functions: who is next, what each state allows,
how long the wait is (its words are in test_views.py)."""

import datetime
import zoneinfo

import pytest

from take_a_number import rules
from take_a_number.rules import CALLED, CLEARED, LEFT, NO_SHOW, SERVED, WAITING

ALL_STATES = {WAITING, CALLED, SERVED, NO_SHOW, LEFT, CLEARED}
CLOSED_STATES = [SERVED, NO_SHOW, LEFT, CLEARED]

# Three services of one, two and three minutes: the lower and upper quartiles
# (inclusive method) are 90 s and 150 s.
ONE_TWO_THREE_MINUTES = [60, 120, 180]


def tickets(*numbers):
    return [{"id": 100 + number, "number": number} for number in numbers]


# -- who is next ---------------------------------------------------------------


def test_the_lowest_waiting_number_is_called_next_whatever_the_order_of_rows():
    assert rules.next_in_line(tickets(7, 3, 12, 5)) == {"id": 103, "number": 3}


def test_nobody_is_next_when_nobody_waits():
    assert rules.next_in_line([]) is None


def test_next_in_line_accepts_any_iterable_of_rows():
    assert rules.next_in_line(iter(tickets(9, 8)))["number"] == 8


# -- what each state allows ------------------------------------------------------


def test_the_six_ticket_states_are_the_ones_the_store_writes():
    assert set(rules.TRANSITIONS) == {"waiting", "called", "served", "no_show", "left", "cleared"}


def test_a_waiting_ticket_can_be_called_left_or_cleared_only():
    assert rules.TRANSITIONS[WAITING] == {CALLED, LEFT, CLEARED}


def test_a_called_ticket_ends_served_no_show_or_left_or_goes_back_in_line():
    assert rules.TRANSITIONS[CALLED] == {SERVED, NO_SHOW, LEFT, WAITING}


@pytest.mark.parametrize("state", CLOSED_STATES)
def test_a_closed_ticket_allows_nothing(state):
    assert rules.TRANSITIONS[state] == set()
    for new_state in ALL_STATES:
        assert not rules.allows(state, new_state)


@pytest.mark.parametrize(
    ("state", "new_state"),
    [(WAITING, CALLED), (WAITING, LEFT), (CALLED, SERVED), (CALLED, NO_SHOW), (CALLED, LEFT)],
)
def test_allowed_transitions_pass_the_check(state, new_state):
    assert rules.allows(state, new_state)
    rules.check_transition(state, new_state)  # does not raise


@pytest.mark.parametrize(
    ("state", "new_state"),
    [
        (WAITING, SERVED),
        (WAITING, NO_SHOW),
        (WAITING, WAITING),
        (CALLED, CLEARED),
        (CALLED, CALLED),
        (SERVED, LEFT),
        (NO_SHOW, CALLED),
        (LEFT, WAITING),
    ],
)
def test_a_forbidden_transition_raises_invalid_transition_naming_both_states(state, new_state):
    with pytest.raises(rules.InvalidTransition) as raised:
        rules.check_transition(state, new_state)
    assert state in str(raised.value)
    assert new_state in str(raised.value)


def test_invalid_transition_is_a_value_error_for_callers_that_catch_those():
    with pytest.raises(ValueError):
        rules.check_transition(SERVED, CALLED)


@pytest.mark.parametrize(
    ("state", "is_open"),
    [(WAITING, True), (CALLED, True), (SERVED, False), (NO_SHOW, False), (LEFT, False)],
)
def test_only_waiting_and_called_tickets_hold_a_place(state, is_open):
    assert rules.is_open(state) is is_open


@pytest.mark.parametrize(
    ("state", "can_leave"),
    [(WAITING, True), (CALLED, True), (SERVED, False), (NO_SHOW, False), (LEFT, False)],
)
def test_a_customer_can_leave_only_while_their_ticket_is_open(state, can_leave):
    assert rules.can_leave(state) is can_leave


# -- the wait estimate -----------------------------------------------------------


def test_no_estimate_before_three_services_have_been_seen():
    assert rules.estimate_wait(1, [], 1) is None
    assert rules.estimate_wait(1, [60, 120], 1) is None
    assert rules.estimate_wait(1, ONE_TWO_THREE_MINUTES, 1) is not None


def test_missing_and_negative_durations_do_not_count_as_services():
    assert rules.estimate_wait(1, [60, None, -5, 120], 1) is None
    assert rules.estimate_wait(1, [60, None, -5, 120, 180], 1) == (90, 150)


@pytest.mark.parametrize("position", [0, -1])
def test_no_estimate_for_a_position_before_the_front_of_the_line(position):
    assert rules.estimate_wait(position, ONE_TWO_THREE_MINUTES, 1) is None


def test_the_next_person_waits_between_the_quartiles_of_recent_services():
    assert rules.estimate_wait(1, ONE_TWO_THREE_MINUTES, 1) == (90, 150)


def test_the_quartiles_do_not_depend_on_the_order_of_services():
    assert rules.estimate_wait(1, [240, 60, 120, 60], 1) == (60, 150)


def test_the_wait_grows_with_the_position_in_line():
    assert rules.estimate_wait(3, ONE_TWO_THREE_MINUTES, 1) == (270, 450)


def test_more_servicers_shorten_the_wait():
    assert rules.estimate_wait(3, ONE_TWO_THREE_MINUTES, 2) == (135, 225)
    assert rules.estimate_wait(4, ONE_TWO_THREE_MINUTES, 4) == (90, 150)


def test_no_active_servicer_counts_as_one():
    assert rules.estimate_wait(2, ONE_TWO_THREE_MINUTES, 0) == (180, 300)


# -- opening hours ---------------------------------------------------------------------

# Monday to Friday, 09:00 to 17:00.
WEEKDAYS = rules.parse_hours('{"days": [0, 1, 2, 3, 4], "opens": "09:00", "closes": "17:00"}')


def at(text, zone="UTC"):
    """Unix time of a local time, e.g. at("2026-11-23 08:59:30") (a Monday)."""
    local = datetime.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone))
    return local.timestamp()


@pytest.mark.parametrize(
    "now, change",
    [
        ("2026-11-23 08:59:30", "2026-11-23 09:00"),  # closed: it opens
        ("2026-11-23 09:00:00", "2026-11-23 17:00"),  # open: it closes
        ("2026-11-23 16:59:59", "2026-11-23 17:00"),
        ("2026-11-23 17:00:00", "2026-11-24 00:00"),  # "tomorrow at 09:00" becomes "today"
        ("2026-11-23 00:00:00", "2026-11-23 09:00"),
        ("2026-11-21 12:00:00", "2026-11-22 00:00"),  # a Saturday: "on Monday" at midnight
    ],
)
def test_what_a_queue_says_of_its_hours_changes_at_the_next_opening_closing_or_midnight(
    now, change
):
    assert rules.next_change(WEEKDAYS, "UTC", at(now)) == at(change)


def test_the_next_change_of_the_hours_is_in_the_queue_s_time_zone():
    # 08:30 in London in summer is 07:30 UTC; it opens at 09:00 London time.
    now = at("2026-07-06 08:30:00", "Europe/London")
    assert rules.next_change(WEEKDAYS, "Europe/London", now) == at(
        "2026-07-06 09:00", "Europe/London"
    )
    assert at("2026-07-06 09:00", "Europe/London") == at("2026-07-06 08:00")


def test_a_queue_without_hours_never_changes_by_the_clock():
    assert rules.next_change(None, "UTC", at("2026-11-23 12:00")) is None
    assert snapshot([1]).changes_at is None


# Overnight: ticked Friday only, 17:00 to 09:00 the next morning.
FRIDAY_NIGHT = rules.parse_hours('{"days": [4], "opens": "17:00", "closes": "09:00"}')


@pytest.mark.parametrize(
    "now, open_now, next_opening",
    [
        ("2026-11-26 20:00:00", False, "2026-11-27 17:00"),  # Thursday night: not ticked
        ("2026-11-27 08:00:00", False, "2026-11-27 17:00"),  # Friday morning: Thursday's
        ("2026-11-27 16:59:59", False, "2026-11-27 17:00"),
        ("2026-11-27 17:00:00", True, None),
        ("2026-11-27 23:59:59", True, None),
        ("2026-11-28 00:00:00", True, None),  # Saturday morning: still Friday's opening
        ("2026-11-28 08:59:59", True, None),
        ("2026-11-28 09:00:00", False, "2026-12-04 17:00"),  # closed until next Friday
        ("2026-11-29 08:00:00", False, "2026-12-04 17:00"),  # Sunday: Saturday not ticked
    ],
)
def test_overnight_hours_are_open_from_the_evening_of_a_ticked_day_until_the_next_morning(
    now, open_now, next_opening
):
    is_open, opens = rules.opening(FRIDAY_NIGHT, "UTC", at(now))
    assert is_open is open_now
    assert (opens and opens.timestamp()) == (next_opening and at(next_opening))


@pytest.mark.parametrize(
    "now, change",
    [
        ("2026-11-27 12:00:00", "2026-11-27 17:00"),  # it opens
        ("2026-11-27 18:00:00", "2026-11-28 00:00"),  # "closes tomorrow" becomes "today"
        ("2026-11-28 00:00:00", "2026-11-28 09:00"),  # it closes
        ("2026-11-28 09:00:00", "2026-11-29 00:00"),
    ],
)
def test_overnight_hours_change_at_opening_midnight_and_closing(now, change):
    assert rules.next_change(FRIDAY_NIGHT, "UTC", at(now)) == at(change)


def test_overnight_hours_across_the_spring_change_close_by_the_clock():
    # London's clocks go from 01:00 to 02:00 on Sunday 29 March 2026.
    saturday = rules.parse_hours('{"days": [5], "opens": "22:00", "closes": "06:00"}')
    london = "Europe/London"
    assert rules.opening(saturday, london, at("2026-03-29 05:59:59", london)) == (True, None)
    assert rules.opening(saturday, london, at("2026-03-29 06:00:00", london))[0] is False
    assert rules.next_change(saturday, london, at("2026-03-29 00:30:00", london)) == at(
        "2026-03-29 06:00", london
    )
    # Seven hours by the clock that night, not eight.
    assert at("2026-03-29 06:00", london) - at("2026-03-28 22:00", london) == 7 * 3600


def test_overnight_hours_across_the_autumn_change_close_by_the_clock():
    # London's clocks go from 02:00 back to 01:00 on Sunday 25 October 2026.
    saturday = rules.parse_hours('{"days": [5], "opens": "22:00", "closes": "06:00"}')
    london = "Europe/London"
    for hour in ("00:30", "01:30", "05:59"):
        assert rules.opening(saturday, london, at(f"2026-10-25 {hour}:00", london))[0] is True
    assert rules.opening(saturday, london, at("2026-10-25 06:00:00", london))[0] is False
    assert at("2026-10-25 06:00", london) - at("2026-10-24 22:00", london) == 9 * 3600


def test_an_opening_time_the_clocks_skip_comes_an_hour_later_by_the_clock():
    sunday = rules.parse_hours('{"days": [6], "opens": "01:30", "closes": "05:00"}')
    london = "Europe/London"
    now = at("2026-03-29 00:15:00", london)
    is_open, opens = rules.opening(sunday, london, now)
    assert is_open is False
    assert rules.describe_opening(opens, now, london) == "today at 02:30"


def test_overnight_hours_follow_the_queues_time_zone():
    # 17:00 in New York on a Friday in November is 22:00 UTC.
    new_york = "America/New_York"
    assert rules.opening(FRIDAY_NIGHT, new_york, at("2026-11-27 21:59:59"))[0] is False
    assert rules.opening(FRIDAY_NIGHT, new_york, at("2026-11-27 22:00:00"))[0] is True
    assert rules.opening(FRIDAY_NIGHT, new_york, at("2026-11-28 13:59:59"))[0] is True
    assert rules.opening(FRIDAY_NIGHT, new_york, at("2026-11-28 14:00:00"))[0] is False


def queue_with(status="open", opening_hours=None, timezone="UTC"):
    return {
        "status": status,
        "opening_hours": opening_hours,
        "timezone": timezone,
        "max_waiting": None,
    }


FRIDAY_NIGHT_TEXT = '{"days": [4], "opens": "17:00", "closes": "09:00"}'


@pytest.mark.parametrize(
    "queue, now, words",
    [
        (queue_with(), "2026-11-27 12:00:00", "Open"),
        (queue_with("paused", FRIDAY_NIGHT_TEXT), "2026-11-27 18:00:00", "Paused"),
        (queue_with("closed"), "2026-11-27 12:00:00", "Closed"),
        (
            queue_with(opening_hours=FRIDAY_NIGHT_TEXT),
            "2026-11-27 08:57:00",
            "Open — but outside opening hours: it opens today at 17:00",
        ),
        (
            queue_with(opening_hours=FRIDAY_NIGHT_TEXT),
            "2026-11-27 18:00:00",
            "Open — within opening hours: it closes tomorrow at 09:00",
        ),
        (
            queue_with(opening_hours=FRIDAY_NIGHT_TEXT),
            "2026-11-28 01:00:00",
            "Open — within opening hours: it closes today at 09:00",
        ),
        (
            queue_with(opening_hours=FRIDAY_NIGHT_TEXT),
            "2026-11-28 10:00:00",
            "Open — but outside opening hours: it opens on Friday at 17:00",
        ),
    ],
)
def test_the_owner_reads_one_status_that_includes_the_opening_hours(queue, now, words):
    assert rules.describe_status(queue, at(now)) == words


def test_the_owners_status_and_the_customers_notice_agree_on_the_hours():
    queue = queue_with(opening_hours=FRIDAY_NIGHT_TEXT)
    for hour in range(0, 24 * 8):
        now = at("2026-11-23 00:00:00") + hour * 3600 + 1800
        customers_told_closed = rules.closed_notice(queue, 0, now) is not None
        owner_told_closed = "outside opening hours" in rules.describe_status(queue, now)
        assert customers_told_closed is owner_told_closed, hour


# -- a snapshot of the queue ---------------------------------------------------------


def snapshot(waiting, durations=(), servicers=1, version=7):
    return rules.Snapshot(
        queue={"id": "cet236", "version": version},
        taken_at=0.0,
        waiting=list(waiting),
        serving=[],
        recent_calls=[],
        service_durations=list(durations),
        active_servicers=servicers,
    )


def test_people_ahead_are_the_waiting_numbers_below_mine():
    line = snapshot([3, 5, 8, 13])
    assert line.people_ahead(3) == 0
    assert line.people_ahead(8) == 2
    assert line.people_ahead(20) == 4


def test_a_snapshot_estimates_from_its_services_and_active_servicers():
    assert snapshot([1, 2], ONE_TWO_THREE_MINUTES, servicers=2).estimate(3) == (135, 225)
    assert snapshot([1, 2], [60, 120]).estimate(1) is None


def test_a_snapshots_version_is_its_queues_version():
    assert snapshot([], version=42).version == 42


# -- servicers leaving, idle desks, invitations ---------------------------------------


def test_a_customer_put_back_goes_before_everyone_waiting():
    assert rules.front_of_line([{"line_position": 3}, {"line_position": 1.5}]) == 0.5
    assert rules.front_of_line([]) == 0


def test_a_leaving_servicers_customer_is_served_only_if_the_servicer_says_so():
    assert rules.customer_of_leaving_servicer() == rules.WAITING
    assert rules.customer_of_leaving_servicer(rules.PUT_BACK) == rules.WAITING
    assert rules.customer_of_leaving_servicer(rules.FINISH) == rules.SERVED
    assert rules.allows(rules.CALLED, rules.WAITING)


def test_a_desk_is_idle_after_the_limit_without_being_seen():
    desk = {"signed_in_at": 0.0, "last_seen_at": 100.0, "signed_out_at": None}
    assert not rules.is_idle(desk, 100 + 1799, 1800)
    assert rules.is_idle(desk, 100 + 1800, 1800)
    assert not rules.is_idle(desk, 10**9, 0)  # 0: never
    assert rules.is_idle(dict(desk, last_seen_at=None), 1800, 1800)
    assert not rules.is_idle(dict(desk, signed_out_at=50.0), 10**9, 1800)


def test_an_invitation_works_until_revoked_or_expired():
    live = {"revoked_at": None, "expires_at": None}
    assert rules.invitation_refusal(live, 10**9) is None
    assert "revoked" in rules.invitation_refusal(dict(live, revoked_at=5.0), 10)
    expiring = dict(live, expires_at=100.0)
    assert rules.invitation_refusal(expiring, 99.9) is None
    assert "expired" in rules.invitation_refusal(expiring, 100.0)
    assert "not an invitation code" in rules.invitation_refusal(None, 0)
