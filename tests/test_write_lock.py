"""SQLite's write lock, taken in turn by the threads and the processes of a site
(store/engine.py, WriteLock): what serve's worker processes rely on instead of
SQLite's busy handler, which sleeps and retries."""

import fcntl
import multiprocessing
import os
import threading

import pytest

from take_a_number.store.engine import WriteLock

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX processes")


def _hold_then_report(path, holding, release, done):
    lock = WriteLock(path)
    with lock:
        holding.set()
        release.wait(10)
    done.set()


def test_another_process_holding_it_makes_this_one_wait(tmp_path):
    path = str(tmp_path / "site.sqlite")
    context = multiprocessing.get_context("fork")
    holding, release, done = context.Event(), context.Event(), context.Event()
    other = context.Process(target=_hold_then_report, args=(path, holding, release, done))
    other.start()
    try:
        assert holding.wait(10)
        lock = WriteLock(path)
        got = threading.Event()

        def take():
            with lock:
                got.set()

        taker = threading.Thread(target=take)
        taker.start()
        assert not got.wait(0.5)  # the other process has it
        release.set()
        assert got.wait(10)
        taker.join()
    finally:
        release.set()
        other.join(10)


def _take(lock, holding, release, done):
    with lock:
        holding.set()
        release.wait(10)
    done.set()


def test_a_forked_process_takes_it_for_itself_not_through_its_parents_file(tmp_path):
    # A flock belongs to the open file: had the child used the descriptor it
    # inherited, it would count as the parent holding the lock, and get in.
    lock = WriteLock(str(tmp_path / "site.sqlite"))
    fcntl.flock(lock._file(), fcntl.LOCK_EX)  # this process holds it through its file
    context = multiprocessing.get_context("fork")
    holding, release, done = context.Event(), context.Event(), context.Event()
    other = context.Process(target=_take, args=(lock, holding, release, done))
    other.start()
    try:
        assert not holding.wait(0.5)  # the child waits for its parent
        fcntl.flock(lock._file(), fcntl.LOCK_UN)
        assert holding.wait(10)
    finally:
        release.set()
        other.join(10)
    assert done.is_set()


def test_the_lock_file_is_beside_the_database_and_free_after_use(tmp_path):
    path = str(tmp_path / "site.sqlite")
    lock = WriteLock(path)
    with lock:
        pass
    with open(path + ".write-lock") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds it
