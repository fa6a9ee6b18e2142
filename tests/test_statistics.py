"""Statistics from a seeded history whose answers were worked out by hand:
each ticket's times, the figures per queue, servicer and day, the CSV download,
and whether the line is growing."""

import csv
import datetime
import io
import zoneinfo

import pytest

from take_a_number import rules, statistics, views

LONDON = zoneinfo.ZoneInfo("Europe/London")  # British Summer Time in June: UTC+1
MONDAY, TUESDAY = datetime.date(2024, 6, 3), datetime.date(2024, 6, 4)


def at(day, clock, tz=LONDON):
    """Unix time of a local wall-clock time: at(MONDAY, "09:05")."""
    return datetime.datetime.combine(day, datetime.time.fromisoformat(clock), tz).timestamp()


def ticket(number, day, taken, state, called=None, finished=None, servicer=None, recalls=0):
    return {
        "id": 100 + number,
        "queue_id": "deli",
        "number": number,
        "state": state,
        "taken_at": at(day, taken),
        "called_at": called and at(day, called),
        "finished_at": finished and at(day, finished),
        "servicer_id": {"Ana": 1, "Bo": 2}.get(servicer),
        "servicer_name": servicer,
        "recalls": recalls,
    }


# Two days at a deli counter, Ana and Bo serving. Times are London wall clock.
#   number  taken  called      finished   state          wait  service  total (seconds)
#   Monday
#   1       09:00  09:02 Ana   09:07      served          120   300      420
#   2       09:01  09:03 Bo    09:09      served          120   360      480
#   3       09:04  09:07 Ana   09:09      no_show         180
#   4       09:05  -           09:08      left (waiting)
#   5       09:06  09:09 Ana   09:13      served          180   240      420
#   6       10:15  10:20 Bo    10:21      left (called)   300
#   Tuesday
#   7       09:30  09:40 Ana   09:50      served          600   600     1200
#   8       09:35  09:45 Bo    09:47      served          600   120      720
#   9       09:50  09:50 Ana   09:55      served            0   300      300
#   10      10:10  -           -          waiting
HISTORY = [
    ticket(1, MONDAY, "09:00", "served", "09:02", "09:07", "Ana", recalls=1),
    ticket(2, MONDAY, "09:01", "served", "09:03", "09:09", "Bo"),
    ticket(3, MONDAY, "09:04", "no_show", "09:07", "09:09", "Ana", recalls=2),
    ticket(4, MONDAY, "09:05", "left", None, "09:08"),
    ticket(5, MONDAY, "09:06", "served", "09:09", "09:13", "Ana"),
    ticket(6, MONDAY, "10:15", "left", "10:20", "10:21", "Bo"),
    ticket(7, TUESDAY, "09:30", "served", "09:40", "09:50", "Ana"),
    ticket(8, TUESDAY, "09:35", "served", "09:45", "09:47", "Bo"),
    ticket(9, TUESDAY, "09:50", "served", "09:50", "09:55", "Ana"),
    ticket(10, TUESDAY, "10:10", "waiting"),
]


def summary(count, mean, median, p90):
    return {"count": count, "mean": mean, "median": median, "p90": p90}


def hours(**counts):
    """24 arrival counts from h9=5, h10=1."""
    return [counts.get(f"h{hour}", 0) for hour in range(24)]


def steps(day, *clock_counts):
    return [(at(day, clock), count) for clock, count in clock_counts]


COUNT_KEYS = (
    "tickets",
    "called",
    "served",
    "no_shows",
    "left_before_served",
    "left_after_call",
    "cleared",
    "open",
)


@pytest.fixture
def history_report():
    return statistics.report(HISTORY, LONDON)


# -- the times of one ticket ---------------------------------------------------


def test_a_served_ticket_has_a_wait_a_service_and_a_total():
    assert statistics.ticket_times(HISTORY[0]) == {"wait": 120, "service": 300, "total": 420}


def test_a_no_show_waited_but_was_not_served():
    assert statistics.ticket_times(HISTORY[2]) == {"wait": 180, "service": None, "total": None}


def test_someone_who_left_while_waiting_has_no_times():
    assert statistics.ticket_times(HISTORY[3]) == {"wait": None, "service": None, "total": None}


def test_someone_who_left_after_being_called_waited_but_was_not_served():
    assert statistics.ticket_times(HISTORY[5]) == {"wait": 300, "service": None, "total": None}


def test_someone_still_waiting_has_no_times_yet():
    assert statistics.ticket_times(HISTORY[9]) == {"wait": None, "service": None, "total": None}


# -- when serving started ------------------------------------------------------

# Ana started serving at 09:02 on Monday and at 09:38 on Tuesday.
SERVING_STARTED = [at(MONDAY, "09:02"), at(TUESDAY, "09:38")]


def test_a_wait_counts_from_the_start_of_serving_when_the_number_was_taken_before():
    # Number 1 was taken at 09:00 and called at 09:02, the moment serving started.
    assert statistics.ticket_times(HISTORY[0], SERVING_STARTED)["wait"] == 0
    assert statistics.ticket_times(HISTORY[1], SERVING_STARTED)["wait"] == 60
    # Tuesday: taken at 09:30 and 09:35, serving from 09:38, called 09:40 and 09:45.
    assert statistics.ticket_times(HISTORY[6], SERVING_STARTED)["wait"] == 120
    assert statistics.ticket_times(HISTORY[7], SERVING_STARTED)["wait"] == 420


def test_the_total_of_a_served_ticket_is_its_wait_plus_its_service():
    times = statistics.ticket_times(HISTORY[1], SERVING_STARTED)
    assert times == {"wait": 60, "service": 360, "total": 420}


def test_numbers_taken_after_serving_started_wait_from_when_they_were_taken():
    assert statistics.ticket_times(HISTORY[4], SERVING_STARTED)["wait"] == 180
    assert statistics.ticket_times(HISTORY[8], SERVING_STARTED)["wait"] == 0


def test_a_day_starts_serving_with_its_first_servicer():
    later = [at(MONDAY, "11:00"), at(TUESDAY, "09:38"), at(MONDAY, "09:02"), at(TUESDAY, "12:00")]
    assert statistics.serving_started_by_day(later, LONDON) == SERVING_STARTED


def test_a_second_servicer_starting_later_does_not_restart_anyone_s_wait():
    day_starts = statistics.serving_started_by_day(
        [at(MONDAY, "09:02"), at(MONDAY, "10:18")], LONDON
    )
    # Number 6 (taken 10:15, called 10:20) waited 5 minutes whoever started when.
    assert statistics.ticket_times(HISTORY[5], day_starts)["wait"] == 300


def test_serving_started_changes_the_waits_of_the_report():
    figures = statistics.report(HISTORY, LONDON, SERVING_STARTED)
    # Waits 0, 60, 180, 180, 300, 120, 420, 0 -> sorted 0 0 60 120 180 180 300 420.
    assert figures["overall"]["wait"] == summary(8, 157.5, 150, 420)
    assert figures["days"][0]["wait"] == summary(5, 144, 180, 300)


# -- summaries -----------------------------------------------------------------


def test_a_summary_gives_count_mean_median_and_nearest_rank_p90():
    values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert statistics.summarize(values) == summary(10, 55, 55, 90)
    # Eleven values: the 90 % rank is ceil(9.9) = 10, the 10th smallest.
    assert statistics.summarize([*values, 110])["p90"] == 100


def test_a_summary_ignores_missing_values():
    assert statistics.summarize([None, 3, None, 1, 2]) == summary(3, 2, 2, 3)


def test_a_summary_of_nothing_has_no_figures():
    assert statistics.summarize([]) == summary(0, None, None, None)


def test_the_p90_of_one_value_is_that_value():
    assert statistics.summarize([42]) == summary(1, 42, 42, 42)


# -- the queue overall ---------------------------------------------------------


def test_the_queue_counts_how_each_ticket_ended(history_report):
    overall = history_report["overall"]
    assert {key: overall[key] for key in COUNT_KEYS} == {
        "tickets": 10,
        "called": 8,
        "served": 6,
        "no_shows": 1,
        "left_before_served": 1,
        "left_after_call": 1,
        "cleared": 0,
        "open": 1,
    }


def test_the_queue_summarizes_waits_services_and_totals(history_report):
    overall = history_report["overall"]
    # Waits 0 120 120 180 180 300 600 600: mean 2100 / 8, median (180 + 180) / 2.
    assert overall["wait"] == summary(8, 262.5, 180, 600)
    # Services 120 240 300 300 360 600.
    assert overall["service"] == summary(6, 320, 300, 600)
    # Totals 300 420 420 480 720 1200.
    assert overall["total"] == summary(6, 590, 450, 1200)


def test_arrivals_per_hour_are_counted_in_local_time(history_report):
    # 09:00-09:59 London is 08:00-08:59 UTC: the numbers must land on hour 9.
    assert history_report["overall"]["arrivals_per_hour"] == hours(h9=8, h10=2)


def test_the_queue_length_steps_through_both_days(history_report):
    assert history_report["overall"]["queue_length"] == MONDAY_LINE + TUESDAY_LINE


MONDAY_LINE = steps(
    MONDAY,
    ("09:00", 1),
    ("09:01", 2),
    ("09:02", 1),  # 1 called
    ("09:03", 0),  # 2 called
    ("09:04", 1),
    ("09:05", 2),
    ("09:06", 3),
    ("09:07", 2),  # 3 called (and later a no-show)
    ("09:08", 1),  # 4 left while waiting
    ("09:09", 0),  # 5 called
    ("10:15", 1),
    ("10:20", 0),  # 6 called (and later left)
)
# Number 9 was taken and called at 09:50 the same second: no step.
TUESDAY_LINE = steps(TUESDAY, ("09:30", 1), ("09:35", 2), ("09:40", 1), ("09:45", 0), ("10:10", 1))


def test_a_cleared_line_leaves_the_line_when_the_owner_cleared_it():
    cleared = [ticket(1, MONDAY, "09:00", rules.CLEARED, None, "09:30")]
    assert statistics.queue_length(cleared) == steps(MONDAY, ("09:00", 1), ("09:30", 0))
    figures = statistics.counts_and_times(cleared)
    assert (figures["cleared"], figures["left_before_served"], figures["open"]) == (1, 0, 0)


# -- per servicer --------------------------------------------------------------


def test_each_servicer_has_their_own_figures_in_name_order(history_report):
    ana, bo = history_report["servicers"]
    assert (ana["servicer_name"], bo["servicer_name"]) == ("Ana", "Bo")
    # Ana called 1, 3, 5, 7 and 9; 3 was a no-show.
    assert (ana["called"], ana["served"], ana["no_shows"], ana["left_after_call"]) == (5, 4, 1, 0)
    assert ana["wait"] == summary(5, 216, 180, 600)  # 0 120 180 180 600
    assert ana["service"] == summary(4, 360, 300, 600)  # 240 300 300 600
    assert ana["total"] == summary(4, 585, 420, 1200)  # 300 420 420 1200
    # Bo called 2, 6 and 8; 6 left after being called.
    assert (bo["called"], bo["served"], bo["no_shows"], bo["left_after_call"]) == (3, 2, 0, 1)
    assert bo["wait"] == summary(3, 340, 300, 600)  # 120 300 600
    assert bo["service"] == summary(2, 240, 240, 360)  # 120 360
    assert bo["total"] == summary(2, 600, 600, 720)  # 480 720


def test_servicers_are_ordered_by_name_whatever_the_case():
    rows = [dict(HISTORY[0], servicer_name=name) for name in ("bea", "Ana", "Cy")]
    names = [s["servicer_name"] for s in statistics.report(rows, LONDON)["servicers"]]
    assert names == ["Ana", "bea", "Cy"]


# -- per day -------------------------------------------------------------------


def test_each_day_has_its_own_figures_in_date_order(history_report):
    monday, tuesday = history_report["days"]
    assert (monday["date"], tuesday["date"]) == ("2024-06-03", "2024-06-04")
    assert {k: monday[k] for k in COUNT_KEYS} == {
        "tickets": 6,
        "called": 5,
        "served": 3,
        "no_shows": 1,
        "left_before_served": 1,
        "left_after_call": 1,
        "cleared": 0,
        "open": 0,
    }
    assert monday["wait"] == summary(5, 180, 180, 300)  # 120 120 180 180 300
    assert monday["service"] == summary(3, 300, 300, 360)  # 240 300 360
    assert monday["total"] == summary(3, 440, 420, 480)  # 420 420 480
    assert monday["arrivals_per_hour"] == hours(h9=5, h10=1)
    assert monday["queue_length"] == MONDAY_LINE
    assert {k: tuesday[k] for k in ("tickets", "called", "served", "no_shows", "open")} == {
        "tickets": 4,
        "called": 3,
        "served": 3,
        "no_shows": 0,
        "open": 1,
    }
    assert tuesday["wait"] == summary(3, 400, 600, 600)  # 0 600 600
    assert tuesday["service"] == summary(3, 340, 300, 600)  # 120 300 600
    assert tuesday["total"] == summary(3, 740, 720, 1200)  # 300 720 1200
    assert tuesday["arrivals_per_hour"] == hours(h9=3, h10=1)
    assert tuesday["queue_length"] == TUESDAY_LINE


def test_a_number_taken_after_midnight_local_time_belongs_to_the_next_day():
    # 00:30 on Tuesday in London is 23:30 on Monday in UTC.
    late = ticket(1, TUESDAY, "00:30", "waiting")
    in_london = statistics.report([late], LONDON)
    in_utc = statistics.report([late], datetime.UTC)
    assert [d["date"] for d in in_london["days"]] == ["2024-06-04"]
    assert in_london["overall"]["arrivals_per_hour"] == hours(h0=1)
    assert [d["date"] for d in in_utc["days"]] == ["2024-06-03"]
    assert in_utc["overall"]["arrivals_per_hour"] == hours(h23=1)


def test_a_report_of_no_tickets_is_empty_but_complete():
    figures = statistics.report([], LONDON)
    assert figures["servicers"] == figures["days"] == []
    assert figures["overall"]["tickets"] == 0
    assert figures["overall"]["wait"] == summary(0, None, None, None)
    assert figures["overall"]["arrivals_per_hour"] == [0] * 24
    assert figures["overall"]["queue_length"] == []


# -- the CSV download ----------------------------------------------------------


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_the_csv_has_a_header_and_one_row_per_ticket_in_number_order():
    shuffled = HISTORY[5:] + HISTORY[:5]
    text = statistics.tickets_csv(shuffled, LONDON)
    assert text.splitlines()[0] == ",".join(statistics.CSV_HEADER)
    assert text.endswith("\r\n")
    rows = read_csv(text)
    assert [row["number"] for row in rows] == [str(n) for n in range(1, 11)]


def test_the_csv_gives_times_in_local_iso_8601_and_durations_in_seconds():
    rows = read_csv(statistics.tickets_csv(HISTORY, LONDON))
    assert rows[0] == {
        "number": "1",
        "state": "served",
        "servicer": "Ana",
        "taken_at": "2024-06-03T09:00:00+01:00",
        "called_at": "2024-06-03T09:02:00+01:00",
        "finished_at": "2024-06-03T09:07:00+01:00",
        "wait_seconds": "120",
        "service_seconds": "300",
        "total_seconds": "420",
        "recalls": "1",
        "called_specifically": "0",
    }
    assert rows[3] == {
        "number": "4",
        "state": "left",
        "servicer": "",
        "taken_at": "2024-06-03T09:05:00+01:00",
        "called_at": "",
        "finished_at": "2024-06-03T09:08:00+01:00",
        "wait_seconds": "",
        "service_seconds": "",
        "total_seconds": "",
        "recalls": "0",
        "called_specifically": "0",
    }
    assert [row["wait_seconds"] for row in rows] == [
        "120", "120", "180", "", "180", "300", "600", "600", "0", "",
    ]  # fmt: skip


def test_the_csv_measures_waits_from_the_start_of_serving_too():
    rows = read_csv(statistics.tickets_csv(HISTORY, LONDON, SERVING_STARTED))
    assert (rows[0]["wait_seconds"], rows[0]["total_seconds"]) == ("0", "300")


@pytest.mark.parametrize("name", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_a_servicer_name_a_spreadsheet_would_run_as_a_formula_is_quoted(name):
    row = dict(HISTORY[0], servicer_name=name)
    assert read_csv(statistics.tickets_csv([row], LONDON))[0]["servicer"] == "'" + name


def test_ordinary_names_with_commas_and_quotes_survive_the_csv():
    name = 'Desk 1, "the big one"'
    row = dict(HISTORY[0], servicer_name=name)
    assert read_csv(statistics.tickets_csv([row], LONDON))[0]["servicer"] == name


def test_csv_rows_are_plain_lists_for_other_writers():
    rows = statistics.csv_rows(HISTORY[:1], LONDON)
    assert rows[0] == statistics.CSV_HEADER
    assert rows[1][:3] == [1, "served", "Ana"]
    assert rows[1][6:] == [120, 300, 420, 1, 0]


# -- is the line growing? ------------------------------------------------------

NOW = at(TUESDAY, "12:00")


def arrivals(*minutes_ago):
    """When numbers were taken, these many minutes ago."""
    return [NOW - 60 * m for m in minutes_ago]


def test_the_line_grows_when_people_join_faster_than_they_are_served():
    # 6 numbers in 15 minutes is 0.4 a minute; one servicer at 5 minutes each serves 0.2.
    figures = statistics.flow(arrivals(1, 3, 5, 7, 9, 11), [300, 240, 360], NOW)
    assert figures == {
        "window": 900,
        "arrivals": 6,
        "arrivals_per_minute": pytest.approx(0.4),
        "services": 3,
        "mean_service": 300,
        "servicers": 1,
        "served_per_minute": pytest.approx(0.2),
        "verdict": "growing",
    }
    headline, detail = views.describe_flow(figures)
    assert headline == "Line growing: about 1 more person every 5 minutes than you serve."
    assert detail == (
        "6 people joined in the last 15 min; "
        "1 desk takes about 5.0 min per customer (the last 3 served)."
    )


def test_a_second_servicer_can_turn_a_growing_line_steady():
    figures = statistics.flow(arrivals(1, 3, 5, 7, 9, 11), [300, 240, 360], NOW, 2)
    assert figures["served_per_minute"] == pytest.approx(0.4)
    assert figures["verdict"] == "steady"
    assert views.describe_flow(figures)[0] == (
        "Line steady: people join about as fast as you serve them."
    )
    assert "2 desks take about 5.0 min" in views.describe_flow(figures)[1]


def test_the_line_shrinks_when_people_are_served_faster_than_they_join():
    figures = statistics.flow(arrivals(2, 8, 14), [60, 60, 60], NOW)
    assert (figures["arrivals_per_minute"], figures["served_per_minute"]) == (0.2, 1.0)
    assert figures["verdict"] == "shrinking"
    assert views.describe_flow(figures) == (
        "Line shrinking: you serve about 1 more person every minute than join.",
        "3 people joined in the last 15 min; 1 desk takes about 60 s per customer "
        "(the last 3 served).",
    )


def test_a_line_growing_fast_says_how_many_more_people_a_minute():
    # 45 numbers in 15 minutes is 3 a minute; one servicer at 60 seconds each serves 1.
    figures = statistics.flow(arrivals(*[m / 3 for m in range(45)]), [60, 60, 60], NOW)
    assert views.describe_flow(figures)[0] == (
        "Line growing: about 2 more people a minute than you serve."
    )


def test_rates_within_ten_percent_of_each_other_are_steady():
    # 3 arrivals in 15 minutes is 0.2 a minute; services of 280, 300 and 320 seconds
    # serve 0.214, 0.2 and 0.1875 a minute: all within 10 %.
    for seconds in (280, 300, 320):
        figures = statistics.flow(arrivals(2, 8, 14), [seconds] * 3, NOW)
        assert figures["verdict"] == "steady"


def test_numbers_taken_before_the_window_do_not_count_as_arrivals():
    figures = statistics.flow(arrivals(2, 8, 15, 16, 60), [60, 60, 60], NOW)
    assert figures["arrivals"] == 2
    assert figures["verdict"] is None


@pytest.mark.parametrize(
    "taken, services",
    [
        (arrivals(1, 2), [60, 60, 60]),
        (arrivals(1, 2, 3), [60, 60]),
        ([], []),
    ],
    ids=["two arrivals", "two services", "nothing"],
)
def test_the_indicator_says_nothing_with_too_little_data(taken, services):
    figures = statistics.flow(taken, services, NOW)
    assert figures["verdict"] is None
    assert views.describe_flow(figures) is None


def test_services_of_two_minutes_each_serve_half_a_person_a_minute():
    figures = statistics.flow(arrivals(1, 2, 3), [120, 120, 120], NOW)
    assert (figures["services"], figures["served_per_minute"]) == (3, 0.5)
    assert figures["verdict"] == "shrinking"


# -- how a time is said ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "–"), (0, "0 s"), (44.6, "45 s"), (119.4, "119 s"), (120, "2.0 min"), (150, "2.5 min")],
)
def test_a_time_under_two_minutes_is_said_in_seconds_and_longer_ones_in_minutes(seconds, text):
    assert statistics.duration_text(seconds) == text


def test_durations_are_drawn_in_seconds_only_when_every_one_is_under_two_minutes():
    assert statistics.time_unit([5, None, 119]) == (1, "seconds")
    assert statistics.time_unit([5, 120]) == (60, "minutes")
    assert statistics.time_unit([None]) == (60, "minutes")
