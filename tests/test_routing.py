"""URLs built without Routes (Urls._fill) are the URLs Routes builds."""

import re

import pytest
from routes.util import GenerationException, URLGenerator

from take_a_number import routing
from take_a_number.cache import BoundedCache
from take_a_number.urls import Urls, fillable_paths

MAPPER = routing.make_mapper()
SAMPLES = {
    "queue_id": "lab-3",
    "token": "Ab_-9x.~",
    "servicer_id": 12,
    "invitation_id": 7,
    "path": "style.css",
}
NAMED = sorted({route.name for route in MAPPER.matchlist if route.name})


def arguments(name):
    route = next(r for r in MAPPER.matchlist if r.name == name)
    return {v: SAMPLES[v] for v in re.findall(r"{(\w+)}", route.routepath)}


@pytest.mark.parametrize("script_name", ["", "/lab", "/deep/mount"])
@pytest.mark.parametrize("name", NAMED)
def test_every_route_filled_in_as_routes_builds_it(name, script_name):
    environ = {"SCRIPT_NAME": script_name, "HTTP_HOST": "example.org", "wsgi.url_scheme": "http"}
    paths = fillable_paths(MAPPER)
    args = arguments(name)
    filled = Urls(MAPPER, environ, BoundedCache(100), paths)._fill(name, args)
    assert filled is not None, f"{name} should not need Routes"
    assert filled == URLGenerator(MAPPER, environ)(name, **args)


@pytest.mark.parametrize(
    "name, args",
    [
        ("ticket", {"queue_id": "lab-3", "token": "needs quoting/é"}),  # quoted by Routes
        ("ticket", {"queue_id": "lab-3", "token": "x", "extra": "y"}),  # a query string
    ],
)
def test_what_cannot_be_filled_in_goes_to_routes(name, args):
    environ = {"SCRIPT_NAME": "/lab", "HTTP_HOST": "example.org", "wsgi.url_scheme": "http"}
    urls = Urls(MAPPER, environ, BoundedCache(100), fillable_paths(MAPPER))
    assert urls._fill(name, args) is None
    assert urls(name, **args) == URLGenerator(MAPPER, environ)(name, **args)


def test_a_value_failing_the_requirement_is_refused_as_routes_refuses_it():
    environ = {"SCRIPT_NAME": "", "HTTP_HOST": "example.org", "wsgi.url_scheme": "http"}
    urls = Urls(MAPPER, environ, BoundedCache(100), fillable_paths(MAPPER))
    assert urls._fill("join", {"queue_id": "Not A Queue"}) is None
    with pytest.raises(GenerationException):
        urls("join", queue_id="Not A Queue")
