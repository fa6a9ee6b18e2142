"""The SVG charts: valid, accessible XML whose bars and points carry the
statistics of the seeded history (tests/test_statistics.py), drawn to scale."""

import xml.etree.ElementTree as ET

import pytest
from test_statistics import HISTORY, LONDON, MONDAY, MONDAY_LINE, at

from take_a_number import charts, statistics

SVG = "{http://www.w3.org/2000/svg}"
NASTY = '<script>&"'


def parse(svg):
    """The chart as XML, checked to be a standalone, labelled SVG image."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("viewBox").startswith(f"0 0 {charts.WIDTH} ")
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title.text and desc.text
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    return root


def marks(root):
    """The bars or points of a chart: the elements that carry a data-value."""
    return [e for e in root.iter() if e.get("data-value") is not None]


def values(root):
    return [float(e.get("data-value")) for e in marks(root)]


def texts(root):
    """Every text the chart shows, in document order."""
    return [e.text for e in root.iter(f"{SVG}text")]


@pytest.fixture
def history_report():
    return statistics.report(HISTORY, LONDON)


# -- the owner's charts carry the seeded statistics ---------------------------


def test_the_waiting_time_histogram_counts_the_seeded_waits():
    waits = [statistics.ticket_times(t)["wait"] for t in HISTORY]
    root = parse(charts.waiting_times_chart(waits))
    # Waits in minutes: 0, 2, 2, 3, 3, 5, 10, 10, in bins two minutes wide.
    assert values(root) == [1, 4, 1, 0, 2]
    assert [(e.get("data-low"), e.get("data-high")) for e in marks(root)] == [
        ("0", "2"),
        ("2", "4"),
        ("4", "6"),
        ("6", "8"),
        ("8", "10"),
    ]
    assert sum(values(root)) == statistics.summarize(waits)["count"]
    assert root.find(f"{SVG}title").text == "Waiting times"
    assert "2\u20134 minutes: 4" in root.find(f"{SVG}desc").text


def test_the_queue_length_chart_steps_through_the_seeded_day(history_report):
    monday = history_report["days"][0]
    root = parse(charts.queue_length_chart(monday, LONDON))
    points = [(float(e.get("data-time")), float(e.get("data-value"))) for e in marks(root)]
    assert points == MONDAY_LINE == monday["queue_length"]
    assert root.find(f"{SVG}title").text == "Queue length on 2024-06-03"
    assert "at most 3 people waiting at 09:06" in root.find(f"{SVG}desc").text
    # The time axis is in London time, every quarter of an hour (at most 7 ticks).
    assert [t for t in texts(root) if ":" in t][:3] == ["09:00", "09:15", "09:30"]


def test_the_queue_length_line_goes_up_and_down_with_the_count(history_report):
    root = parse(charts.queue_length_chart(history_report["days"][0], LONDON))
    heights = {}
    for point in marks(root):
        heights.setdefault(float(point.get("data-value")), set()).add(point.get("cy"))
    assert all(len(ys) == 1 for ys in heights.values())  # one height per count
    by_count = sorted(heights, key=lambda count: -float(heights[count].pop()))
    assert by_count == [0, 1, 2, 3]  # lower on the screen for fewer people
    path = root.find(f"{SVG}path").get("d")
    assert path.startswith("M") and path.count("H") == len(MONDAY_LINE) - 1


def test_the_arrivals_chart_shows_the_seeded_arrivals_per_hour(history_report):
    root = parse(charts.arrivals_chart(history_report["overall"]["arrivals_per_hour"]))
    assert [e.get("data-label") for e in marks(root)] == ["09", "10"]
    assert values(root) == [8, 2]
    monday = parse(charts.arrivals_chart(history_report["days"][0]["arrivals_per_hour"]))
    assert values(monday) == [5, 1]


def test_quiet_hours_between_busy_ones_show_as_empty_bars():
    arrivals = [0] * 24
    arrivals[9], arrivals[12] = 4, 1
    root = parse(charts.arrivals_chart(arrivals))
    assert [e.get("data-label") for e in marks(root)] == ["09", "10", "11", "12"]
    assert values(root) == [4, 0, 0, 1]


def test_the_service_time_chart_shows_each_servicer_s_median_in_minutes(history_report):
    root = parse(charts.service_time_chart(history_report["servicers"]))
    assert [e.get("data-label") for e in marks(root)] == ["Ana", "Bo"]
    medians = [s["service"]["median"] / 60 for s in history_report["servicers"]]
    assert values(root) == medians == [5, 4]


def test_a_servicer_who_served_nobody_is_left_out_of_the_service_chart(history_report):
    idle = dict(history_report["servicers"][1], servicer_name="Cy")
    idle["service"] = statistics.summarize([])
    root = parse(charts.service_time_chart([*history_report["servicers"], idle]))
    assert [e.get("data-label") for e in marks(root)] == ["Ana", "Bo"]


# -- drawn to scale -----------------------------------------------------------------


def test_bar_heights_are_proportional_to_their_values():
    root = parse(charts.bars([("a", 3), ("b", 12), ("c", 7.5), ("d", 0)], "Scale"))
    rects = marks(root)
    heights = [float(r.get("height")) for r in rects]
    assert heights[3] == 0
    per_unit = heights[1] / 12
    for rect, height in zip(rects, heights, strict=True):
        assert height == pytest.approx(float(rect.get("data-value")) * per_unit, abs=0.01)
    # Every bar stands on the same baseline.
    assert len({round(float(r.get("y")) + float(r.get("height")), 1) for r in rects}) == 1


def test_histogram_bars_are_proportional_to_their_counts():
    root = parse(charts.histogram([1, 1, 1, 1, 3, 5, 5], 3, "Counts", "minutes"))
    rects = marks(root)
    assert values(root) == [4, 1, 2]
    heights = [float(r.get("height")) for r in rects]
    assert heights[0] / 4 == pytest.approx(heights[1] / 1, abs=0.01)
    assert heights[2] / 2 == pytest.approx(heights[1] / 1, abs=0.01)


def test_every_text_element_has_text():
    assert all(texts(parse(charts.bars([("a", 12)], "Untitled axes"))))


def test_the_value_axis_runs_from_zero_to_a_round_number_above_the_largest_value():
    assert charts.value_scale(8) == (8, 2)
    assert charts.value_scale(12) == (15, 5)
    assert charts.value_scale(3) == (3, 1)
    assert charts.value_scale(0.4) == pytest.approx((0.4, 0.1))
    assert charts.value_scale(0) == (1, 1)
    root = parse(charts.bars([("a", 12)], "Axis"))
    assert [t for t in texts(root) if t.isdigit()] == ["0", "5", "10", "15", "12"]


# -- bins and ticks ---------------------------------------------------------------


def test_bins_are_round_numbered_and_hold_every_value():
    assert charts.bin_edges([0, 2, 2, 3, 3, 5, 10, 10], 8) == [0, 2, 4, 6, 8, 10]
    assert charts.bin_edges([0.5, 1.2], 4) == [0, 0.5, 1, 1.5]
    assert charts.bin_edges([0, 0], 5) == [0, 1]


def test_a_value_on_an_edge_counts_in_the_bin_above_except_the_last_edge():
    assert charts.bin_counts([0, 2, 4, 6], [0, 2, 4, 6]) == [1, 1, 2]


def test_values_outside_the_edges_are_not_counted():
    assert charts.bin_counts([1, 7, 20, 40, 99], [0, 5, 10, 30]) == [1, 1, 1]


def test_time_ticks_fall_on_round_local_times():
    ticks = charts.time_ticks(at(MONDAY, "09:07"), at(MONDAY, "13:20"), LONDON)
    assert ticks == [at(MONDAY, f"{hour}:00") for hour in (10, 11, 12, 13)]
    ten_minutes = charts.time_ticks(at(MONDAY, "09:01"), at(MONDAY, "10:00"), LONDON)
    assert ten_minutes[0] == at(MONDAY, "09:10")


# -- escaping, accessibility and the empty chart ---------------------------------


def test_a_nasty_servicer_name_stays_text_and_the_chart_stays_valid_xml():
    svg = charts.bars([(NASTY, 3), ("Bo", 2)], f"Service by {NASTY}", "minutes")
    assert "<script" not in svg
    root = parse(svg)
    assert marks(root)[0].get("data-label") == NASTY
    assert marks(root)[0].find(f"{SVG}title").text == f"{NASTY}: 3 minutes"
    assert root.find(f"{SVG}title").text == f"Service by {NASTY}"
    assert NASTY in root.find(f"{SVG}desc").text
    assert root.find(f".//{SVG}script") is None


def test_characters_xml_cannot_hold_are_dropped_from_names():
    root = parse(charts.bars([("Bo\x00\x1b", 3)], "Control characters"))
    assert marks(root)[0].get("data-label") == "Bo"


def test_long_names_are_shortened_under_the_bar_but_whole_in_its_title():
    name = "A servicer with a very long name indeed, longer than any bar"
    root = parse(charts.bars([(name, 3), ("Bo", 2), ("Cy", 1), ("Di", 4)], "Long"))
    assert marks(root)[0].find(f"{SVG}title").text.startswith(name)
    shortened = [t for t in texts(root) if t.startswith("A servicer")]
    assert len(shortened) == 1 and shortened[0].endswith("\u2026") and len(shortened[0]) < 30


def test_charts_use_no_style_attributes_so_the_content_security_policy_allows_them(
    history_report,
):
    for svg in (
        charts.arrivals_chart(history_report["overall"]["arrivals_per_hour"]),
        charts.queue_length_chart(history_report["days"][0], LONDON),
        charts.histogram([1, 2], 2, "H", "minutes"),
    ):
        root = parse(svg)
        assert all(e.get("style") is None for e in root.iter())
        assert root.find(f".//{SVG}style") is None


def test_two_charts_on_one_page_have_different_ids():
    first = parse(charts.bars([("a", 1)], "Arrivals on Monday"))
    second = parse(charts.bars([("a", 1)], "Arrivals on Tuesday"))
    assert first.get("aria-labelledby") != second.get("aria-labelledby")
    assert parse(charts.bars([("a", 1)], "x")).find(f"{SVG}title").get("id") == "chart-x-title"


@pytest.mark.parametrize(
    "svg",
    [
        charts.histogram([], 5, "Waiting times", "minutes"),
        charts.histogram([None, None], 5, "Waiting times", "minutes"),
        charts.bars([], "Arrivals per hour"),
        charts.bars([("Ana", None)], "Service time"),
        charts.arrivals_chart([0] * 24),
        charts.step_line([], "Queue length"),
        charts.waiting_times_chart([]),
        charts.service_time_chart([]),
    ],
)
def test_a_chart_with_nothing_to_show_says_no_data_yet(svg):
    root = parse(svg)
    assert root.find(f"{SVG}desc").text == "No data yet"
    assert "No data yet" in texts(root)
    assert marks(root) == []


def test_a_line_over_several_days_labels_its_times_with_the_day(history_report):
    root = parse(charts.step_line(history_report["overall"]["queue_length"], "Two days", LONDON))
    assert len(marks(root)) == len(history_report["overall"]["queue_length"])
    assert root.find(f"{SVG}desc").text.startswith("Two days: from 3 Jun 09:00 to 4 Jun 10:10")


def test_a_month_of_time_gets_a_handful_of_ticks():
    ticks = charts.time_ticks(at(MONDAY, "00:00"), at(MONDAY, "00:00") + 30 * 86400, LONDON)
    assert 4 <= len(ticks) <= charts.MOST_TICKS + 1


def test_a_single_point_still_draws_a_line():
    root = parse(charts.step_line([(at(MONDAY, "09:00"), 2)], "One moment", LONDON))
    assert values(root) == [2]


# -- short times in seconds, labels that fit a phone ----------------------------------


def test_waits_all_under_two_minutes_are_drawn_in_whole_seconds():
    root = parse(charts.waiting_times_chart([4, 9, 15, 22, 40, 61, 95]))
    assert root.find(f"{SVG}desc").text.startswith("Waiting times: 7 values. 0\u201320 seconds: 3")
    assert "seconds" in texts(root) and "minutes" not in texts(root)
    # Bins of a round number of seconds, not of 0.02 minutes.
    assert [e.get("data-high") for e in marks(root)][:2] == ["20", "40"]


def test_one_wait_of_two_minutes_or_more_draws_them_all_in_minutes():
    root = parse(charts.waiting_times_chart([30, 120, 300]))
    assert "minutes" in texts(root) and "seconds" not in texts(root)


def test_service_medians_under_two_minutes_are_drawn_in_seconds():
    quick = [
        {"servicer_name": "Ana", "service": statistics.summarize([40, 50])},
        {"servicer_name": "Bo", "service": statistics.summarize([90])},
    ]
    root = parse(charts.service_time_chart(quick))
    assert values(root) == [45, 90]
    assert "seconds" in texts(root)


def test_time_labels_of_several_days_are_thinned_so_that_they_never_touch():
    start = at(MONDAY, "09:00")
    points = [(start + hour * 3600, hour % 3) for hour in range(0, 24 * 6, 5)]
    root = parse(charts.step_line(points, "Week", LONDON))
    labels = [
        float(e.get("x"))
        for e in root.iter(f"{SVG}text")
        if e.get("y") == str(charts.BOTTOM + 17) and ":" in e.text
    ]
    width = max(len(e.text) for e in root.iter(f"{SVG}text") if ":" in (e.text or ""))
    gaps = [b - a for a, b in zip(labels, labels[1:], strict=False)]
    assert len(labels) >= 2 and min(gaps) >= width * charts.CHARACTER
