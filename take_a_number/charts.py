"""Charts drawn on the server as SVG text: no JavaScript, no chart library.

Each chart is one standalone ``<svg>`` that scales to its container (a
viewBox, width 100 %): drawn 400 units wide, so that its 13-unit text is
still about 11 px on a phone 360 px wide (the page caps it at 30 rem). It is
an accessible image: a ``<title>`` and a ``<desc>`` that lists the figures, and every bar or point
carries its value in ``data-value`` and a ``<title>`` tooltip. Colours are
presentation attributes, not ``style``, so the pages' Content-Security-Policy
(no inline styles) lets them through. Every piece of text is escaped, since
servicer names are whatever people typed.
"""

import bisect
import datetime
import html
import math
import re

from . import statistics

WIDTH, HEIGHT = 400, 260
# The plot area inside the margins, which hold the title, ticks and axis labels.
LEFT, RIGHT, TOP, BOTTOM = 48, WIDTH - 14, 40, HEIGHT - 46
# About how wide a character of a label is, in units, and the room between labels.
CHARACTER, LABEL_GAP = 7.5, 10
INK = "#1a1a1a"
MUTED = "#4d4d4d"
GRID = "#d9d9d9"
# Dark blue on white: a contrast ratio above 7:1.
MARK = "#1f5f99"
PAPER = "#ffffff"
NO_DATA = "No data yet"
# Steps for a time axis, in seconds: a minute to a day; at most this many steps.
TIME_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MOST_TICKS = 6
# Characters outside XML 1.0: escaping cannot make them valid, so they go.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


# -- text and numbers ----------------------------------------------------------


def escape(text):
    """Text safe inside an SVG element or a double-quoted attribute."""
    return html.escape(NOT_XML.sub("", str(text)), quote=True)


def number(value):
    """A value as its chart label: ``12``, ``2.5``, ``0.333``."""
    text = f"{round(value, 3):.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _px(coordinate):
    return f"{coordinate:.2f}"


def _svg(title, description, body, height=HEIGHT):
    # The id of its title and desc: 'Waiting times' gives 'chart-waiting-times'.
    ident = "chart-" + (re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "untitled")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-labelledby="{ident}-title {ident}-desc" '
        f'font-family="system-ui, sans-serif" font-size="13" fill="{INK}">'
        f'<title id="{ident}-title">{escape(title)}</title>'
        f'<desc id="{ident}-desc">{escape(description)}</desc>'
        f'<rect width="{WIDTH}" height="{height}" fill="{PAPER}"/>'
        f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>'
        f"{''.join(body)}</svg>"
    )


def _caption(x, y, text, extra=""):
    """Muted text centred on ``x``: the axes' labels and ticks."""
    return f'<text x="{x}" y="{y}"{extra} text-anchor="middle" fill="{MUTED}">{escape(text)}</text>'


def no_data(title):
    """The small chart shown before there is anything to draw."""
    return _svg(title, NO_DATA, [_caption(f"{WIDTH / 2:g}", 60, NO_DATA)], height=84)


# -- scales and axes -----------------------------------------------------------


def nice_step(rough):
    """The smallest of 1, 2, 5 times a power of ten that is at least ``rough``."""
    magnitude = 10 ** math.floor(math.log10(rough))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= rough * (1 - 1e-9))


def value_scale(largest):
    """``(top, step)`` of a value axis from 0 that holds ``largest`` in about five steps."""
    if largest <= 0:
        return 1, 1
    step = nice_step(largest / 5)
    return math.ceil(round(largest / step, 9)) * step, step


def _y(value, top):
    return BOTTOM - (BOTTOM - TOP) * value / top


def _value_axis(top, step, unit):
    parts = []
    for i in range(round(top / step) + 1):
        y = _px(_y(i * step, top))
        parts.append(f'<line x1="{LEFT}" y1="{y}" x2="{RIGHT}" y2="{y}" stroke="{GRID}"/>')
        parts.append(
            f'<text x="{LEFT - 8}" y="{y}" dy="4" text-anchor="end" fill="{MUTED}">'
            f"{number(i * step)}</text>"
        )
    middle = (TOP + BOTTOM) / 2
    if unit:
        parts.append(_caption(12, f"{middle:g}", unit, f' transform="rotate(-90 12 {middle:g})"'))
    return parts


def _base_line(label):
    parts = [f'<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" stroke="{MUTED}"/>']
    if label:
        parts.append(_caption(f"{(LEFT + RIGHT) / 2:g}", HEIGHT - 10, label))
    return parts


def _tick_label(x, text):
    return _caption(_px(x), BOTTOM + 17, text)


def thinned(items, longest):
    """Every n-th of ``items`` (tick labels along the plot), so that labels of ``longest``
    characters do not run into each other."""
    fit = max(1, int((RIGHT - LEFT) // (longest * CHARACTER + LABEL_GAP)))
    return items[:: math.ceil(len(items) / fit) or 1]


def _bar(x, width, value, top, label, tooltip, extra=""):
    y = _y(value, top)
    return (
        f'<rect x="{_px(x)}" y="{_px(y)}" width="{_px(width)}" height="{_px(BOTTOM - y)}" '
        f'fill="{MARK}" data-value="{number(value)}" data-label="{escape(label)}"{extra}>'
        f"<title>{escape(tooltip)}</title></rect>"
    )


# -- histogram -----------------------------------------------------------------


def bin_edges(values, bins):
    """Edges of about ``bins`` equal, round-numbered bins from 0 (or below) holding every value."""
    low, high = min(0, min(values)), max(values)
    width = nice_step((high - low) / bins) if high > low else 1
    start = math.floor(round(low / width, 9)) * width
    count = max(1, math.ceil(round((high - start) / width, 9)))
    return [round(start + i * width, 9) for i in range(count + 1)]


def bin_counts(values, edges):
    """How many values fall in each bin: ``[low, high)``, the last one ``[low, high]``.

    Values outside the edges are not counted.
    """
    counts = [0] * (len(edges) - 1)
    for value in values:
        if edges[0] <= value <= edges[-1]:
            counts[min(bisect.bisect_right(edges, value) - 1, len(counts) - 1)] += 1
    return counts


def histogram(values, bins, title, unit):
    """How many values fall in each range: ``values`` in ``unit`` (None ignored)."""
    values = [v for v in values if v is not None]
    if not values:
        return no_data(title)
    edges = bin_edges(values, bins)
    counts = bin_counts(values, edges)
    top, step = value_scale(max(counts))
    width = (RIGHT - LEFT) / len(counts)
    body = _value_axis(top, step, "count")
    ranges = []
    for i, count in enumerate(counts):
        low, high = number(edges[i]), number(edges[i + 1])
        label = f"{low}\u2013{high}"
        ranges.append(f"{label} {unit}: {count}")
        bounds = f' data-low="{low}" data-high="{high}"'
        body.append(_bar(LEFT + i * width + 1, width - 2, count, top, label, ranges[-1], bounds))
    ticks = thinned(list(enumerate(edges)), max(len(number(e)) for e in edges))
    body += [_tick_label(LEFT + i * width, number(e)) for i, e in ticks]
    body += _base_line(unit)
    description = f"{title}: {len(values)} values. " + "; ".join(ranges) + "."
    return _svg(title, description, body)


# -- bars ----------------------------------------------------------------------


def bars(labels_values, title, unit="", axis_label=""):
    """One bar per ``(label, value)``, in the order given; a None value is left out."""
    items = [(str(label), value) for label, value in labels_values if value is not None]
    if not any(value > 0 for _, value in items):
        return no_data(title)
    top, step = value_scale(max(value for _, value in items))
    slot = (RIGHT - LEFT) / len(items)
    width = slot * 0.7
    fits = max(1, int(slot // CHARACTER))  # characters of a label that fit under its bar
    body = _value_axis(top, step, unit)
    for i, (label, value) in enumerate(items):
        x = LEFT + i * slot + (slot - width) / 2
        body.append(_bar(x, width, value, top, label, f"{label}: {number(value)} {unit}".strip()))
        middle = LEFT + (i + 0.5) * slot
        if slot >= 28:
            body.append(
                f'<text x="{_px(middle)}" y="{_px(_y(value, top) - 5)}" text-anchor="middle">'
                f"{number(round(value, 1))}</text>"
            )
        short = label if len(label) <= fits else label[: max(1, fits - 1)] + "\u2026"
        body.append(_tick_label(middle, short))
    body += _base_line(axis_label)
    figures = "; ".join(f"{label}: {number(value)}" for label, value in items)
    description = f"{title}{f' ({unit})' if unit else ''}: {figures}."
    return _svg(title, description, body)


# -- a step line over time -----------------------------------------------------


def _clock(timestamp, tz, with_day=False):
    moment = datetime.datetime.fromtimestamp(timestamp, tz)
    return f"{moment.day} {moment:%b %H:%M}" if with_day else f"{moment:%H:%M}"


def time_ticks(start, end, tz):
    """Round local times (every minute to every day) between ``start`` and ``end``."""
    step = next((s for s in TIME_STEPS if (end - start) / s <= MOST_TICKS), TIME_STEPS[-1])
    offset = datetime.datetime.fromtimestamp(start, tz).utcoffset().total_seconds()
    tick = math.ceil((start + offset) / step) * step - offset
    ticks = []
    while tick <= end:
        ticks.append(tick)
        tick += step
    # Over weeks even daily ticks are too many: keep every n-th.
    return ticks[:: math.ceil(len(ticks) / (MOST_TICKS + 1)) or 1]


def step_line(points, title, tz=datetime.UTC, unit="people waiting"):
    """A count over time, as steps: ``points`` are ``(unix time, count)`` in time order."""
    if not points:
        return no_data(title)
    start, end = points[0][0], max(points[-1][0], points[0][0] + 60)
    top, step = value_scale(max(count for _, count in points))
    with_day = end - start > 86400

    def x(moment):
        return LEFT + (RIGHT - LEFT) * (moment - start) / (end - start)

    path = f"M{_px(x(start))} {_px(_y(points[0][1], top))}"
    for moment, count in points[1:]:
        path += f" H{_px(x(moment))} V{_px(_y(count, top))}"
    body = _value_axis(top, step, unit)
    body.append(f'<path d="{path}" fill="none" stroke="{MARK}" stroke-width="2.5"/>')
    for moment, count in points:
        clock = _clock(moment, tz, with_day)
        body.append(
            f'<circle cx="{_px(x(moment))}" cy="{_px(_y(count, top))}" r="3" fill="{MARK}" '
            f'data-value="{number(count)}" data-time="{number(moment)}">'
            f"<title>{escape(clock)}: {number(count)} {escape(unit)}</title></circle>"
        )
    ticks = time_ticks(start, end, tz)
    longest = max((len(_clock(t, tz, with_day)) for t in ticks), default=1)
    body += [_tick_label(x(t), _clock(t, tz, with_day)) for t in thinned(ticks, longest)]
    body += _base_line("time")
    highest = max(points, key=lambda point: point[1])
    description = (
        f"{title}: from {_clock(start, tz, with_day)} to {_clock(points[-1][0], tz, with_day)}, "
        f"at most {number(highest[1])} {unit} at {_clock(highest[0], tz, with_day)}; "
        f"{number(points[-1][1])} at the end."
    )
    return _svg(title, description, body)


# -- the owner's charts, from statistics.report --------------------------------


def waiting_times_chart(waits):
    """A histogram of waiting times, given in seconds, drawn in minutes (in seconds when
    every wait is under two minutes: statistics.time_unit)."""
    divisor, unit = statistics.time_unit(waits)
    return histogram([w / divisor for w in waits if w is not None], 8, "Waiting times", unit)


def queue_length_chart(day, tz):
    """How long the line was over one day of ``report(...)["days"]``."""
    return step_line(day["queue_length"], f"Queue length on {day['date']}", tz)


def arrivals_chart(arrivals_per_hour):
    """Numbers taken per hour of the day, from the first busy hour to the last."""
    busy = [hour for hour, count in enumerate(arrivals_per_hour) if count]
    hours = range(busy[0], busy[-1] + 1) if busy else []
    labels_values = [(f"{hour:02d}", arrivals_per_hour[hour]) for hour in hours]
    return bars(labels_values, "Arrivals per hour", "numbers taken", "hour of the day")


def service_time_chart(servicers):
    """Median service time of each servicer of ``report(...)["servicers"]``, in minutes
    (in seconds when every one is under two minutes)."""
    medians = [s["service"]["median"] for s in servicers]
    divisor, unit = statistics.time_unit(medians)
    labels_values = [
        (s["servicer_name"], median and median / divisor)
        for s, median in zip(servicers, medians, strict=True)
    ]
    return bars(labels_values, "Median service time per servicer", unit, "servicer")
