"""What the pages show: the words of the views, and templates that only read the
view's flags (tests/test_browser_views.py checks live.js against them in Chromium)."""

import pathlib
import re
import types

import pytest

from take_a_number import views

TEMPLATES = pathlib.Path(__file__).parent.parent / "templates"
LIVE_PAGES = ["ticket.html", "join.html", "console.html", "board.html"]


# -- the words on the page ---------------------------------------------------------


def test_no_estimate_has_no_words():
    assert views.describe_wait(None) is None


@pytest.mark.parametrize("estimate", [(0, 0), (10, 30), (0, 60)])
def test_a_wait_of_at_most_a_minute_reads_under_a_minute(estimate):
    assert views.describe_wait(estimate) == "under a minute"


@pytest.mark.parametrize(
    ("estimate", "words"),
    [
        ((90, 150), "about 1\u20133 minutes"),
        ((120, 300), "about 2\u20135 minutes"),
        ((270, 450), "about 4\u20138 minutes"),
        # A range inside one minute still spans at least one minute.
        ((120, 120), "about 2\u20133 minutes"),
    ],
)
def test_a_longer_wait_reads_as_a_range_of_whole_minutes(estimate, words):
    assert views.describe_wait(estimate) == words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (-5, "just now"),
        (0, "just now"),
        (59, "just now"),
        (60, "1 min ago"),
        (185, "3 min ago"),
        (3599, "59 min ago"),
        (3600, "1 h 0 min ago"),
        (3900, "1 h 5 min ago"),
        (2 * 3600 + 59 * 60 + 59, "2 h 59 min ago"),
    ],
)
def test_how_long_ago_reads_in_minutes_then_hours(seconds, words):
    assert views.describe_age(seconds) == words


# -- the templates only read the view --------------------------------------------


@pytest.mark.parametrize("name", LIVE_PAGES)
def test_a_live_page_shows_and_hides_by_the_views_flag_alone(name):
    """``data-show="flag"`` is hidden by ``{{if not view['flag']}}``, nothing more: the
    same test as live.js makes, so that a reload and a live update agree."""
    text = (TEMPLATES / name).read_text()
    hidden_by = re.findall(r'data-show="(\w+)"(?:\{\{if not view\[\'(\w+)\'\]\}\} hidden)?', text)
    assert hidden_by
    assert [flag for flag, condition in hidden_by if condition != flag] == []
    conditions = re.findall(r"\{\{if ([^}]*)\}\}", text)
    worked_out = [
        c for c in conditions if "view" in c and not re.fullmatch(r"(not )?view\['\w+'\]", c)
    ]
    assert worked_out == []


# -- who is served, on the queue's and the ticket's pages ---------------------------


def test_now_serving_names_each_desk_the_last_called_first():
    snapshot = types.SimpleNamespace(
        serving=[
            {"number": 20, "servicer_name": "Desk 1"},
            {"number": 18, "servicer_name": "Desk 5"},
        ]
    )
    words = views.serving_desks(snapshot)
    assert words == "20\u00a0at\u00a0Desk\u00a01 \u00b7 18\u00a0at\u00a0Desk\u00a05"
    # A narrow screen may wrap the line between desks only.
    assert words.replace("\u00a0", " ") == "20 at Desk 1 · 18 at Desk 5"
    assert words.count(" ") == 2


def test_a_long_desk_name_may_still_wrap_between_its_words():
    snapshot = types.SimpleNamespace(
        serving=[{"number": 7, "servicer_name": "The help desk by the stairs, room B204"}]
    )
    assert views.serving_desks(snapshot) == "7\u00a0at\u00a0The help desk by the stairs, room B204"


def test_nobody_served_yet_says_so():
    assert views.serving_desks(types.SimpleNamespace(serving=[])) == "nobody yet"
