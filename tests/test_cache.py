"""The bounded cache every cache of the app uses."""

import pytest

from take_a_number.cache import BoundedCache


def test_a_cache_gives_back_what_it_was_given():
    cache = BoundedCache(3)
    assert cache.put("a", 1) == 1
    assert cache.get("a") == 1
    assert cache.get("b") is None


def test_a_full_cache_starts_again_empty_and_never_holds_more_than_its_size():
    cache = BoundedCache(3)
    for key in "abc":
        cache.put(key, key.upper())
    cache.put("d", "D")
    assert dict(cache) == {"d": "D"}
    for key in "efghij":
        cache.put(key, key)
        assert len(cache) <= 3


def test_replacing_an_entry_of_a_full_cache_keeps_the_others():
    cache = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 3)
    assert dict(cache) == {"a": 3, "b": 2}


def test_a_cache_holds_at_least_one_entry():
    with pytest.raises(ValueError):
        BoundedCache(0)


def test_a_cache_kept_for_one_generation_forgets_what_was_read_before_a_change():
    cache = BoundedCache(10)
    cache.only_for(1)
    cache.put("ticket", "read in generation 1")
    cache.only_for(1)
    assert cache.get("ticket") == "read in generation 1"
    cache.only_for(2)
    assert cache.get("ticket") is None
