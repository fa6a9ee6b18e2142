"""The take line on its own: takes arriving together are written in batches, each
caller gets its own ticket or error, and nobody is left waiting (no database)."""

import sqlite3
import threading
import time

import pytest

from take_a_number.store import Take, TakeLine


class Writer:
    """Numbers takes as the store would; ``hold`` keeps the first write waiting.

    ``together``: True writes batches together, None leaves every take to be
    written alone, False fails writing together.
    """

    def __init__(self, together=True):
        self.together = together
        self.batches = []  # each batch write_together was given, as tokens
        self.alone = []  # the tokens written alone
        self.hold = threading.Event()
        self.hold.set()
        self.number = 0

    def write_together(self, batch):
        self.batches.append([take.token for take in batch])
        if self.together is False:
            raise sqlite3.OperationalError("disk I/O error")
        if self.together and len(batch) > 1:
            for take in batch:
                take.ticket = self._ticket(take)

    def write_alone(self, take):
        self.hold.wait(10)
        if take.token.startswith("bad"):
            raise LookupError(take.token)
        self.alone.append(take.token)
        return self._ticket(take)

    def _ticket(self, take):
        self.number += 1
        return {"token": take.token, "number": self.number}


def take(token):
    return Take("q", token, 0.0, None, None)


def arriving_together(line, writer, tokens):
    """The first of ``tokens`` is written alone and held there while the others
    line up; then it goes. Returns ``{token: ticket or exception}``."""
    results = {}

    def take_one(token):
        try:
            results[token] = line.take(take(token))
        except Exception as error:
            results[token] = error

    writer.hold.clear()
    first = threading.Thread(target=take_one, args=(tokens[0],))
    first.start()
    deadline = time.monotonic() + 10
    while not writer.batches and time.monotonic() < deadline:
        time.sleep(0.005)
    others = [threading.Thread(target=take_one, args=(token,)) for token in tokens[1:]]
    for thread in others:
        thread.start()
    while line.waiting() < len(others) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert line.waiting() == len(others), "the takes did not line up"
    writer.hold.set()
    for thread in [first, *others]:
        thread.join(10)
    return results


def test_takes_arriving_while_one_is_written_are_written_together_in_the_next_batch():
    writer = Writer()
    line = TakeLine(writer.write_together, writer.write_alone)
    tokens = [f"t{i}" for i in range(10)]
    results = arriving_together(line, writer, tokens)

    assert writer.batches[0] == ["t0"] and sorted(writer.batches[1]) == tokens[1:]
    assert writer.alone == ["t0"]
    assert sorted(r["number"] for r in results.values()) == list(range(1, 11))
    assert all(results[token]["token"] == token for token in tokens)
    assert line.waiting() == 0


def test_when_writing_together_fails_each_take_is_written_alone_and_nobody_hangs():
    writer = Writer(together=False)
    line = TakeLine(writer.write_together, writer.write_alone)
    results = arriving_together(line, writer, [f"t{i}" for i in range(8)])

    assert sorted(t["number"] for t in results.values()) == list(range(1, 9))
    # And the line is free for the next take.
    assert line.take(take("after"))["number"] == 9


def test_each_caller_gets_its_own_error_and_the_others_their_tickets():
    writer = Writer(together=None)  # every take written alone
    line = TakeLine(writer.write_together, writer.write_alone)
    results = arriving_together(line, writer, ["t0", "bad1", "t2", "bad3"])

    assert results["bad1"].args == ("bad1",)
    assert isinstance(results["bad3"], LookupError)
    assert [results[t]["token"] for t in ("t0", "t2")] == ["t0", "t2"]


def test_a_lone_take_is_answered_in_its_own_thread():
    writer = Writer()
    line = TakeLine(writer.write_together, writer.write_alone)
    assert line.take(take("only")) == {"token": "only", "number": 1}
    with pytest.raises(LookupError):
        line.take(take("bad"))
    assert line.take(take("next"))["number"] == 2


def test_writing_a_batch_at_once_answers_every_take():
    writer = Writer(together=False)
    line = TakeLine(writer.write_together, writer.write_alone)
    batch = [take("a"), take("bad"), take("c")]
    line.write(batch)
    assert [t.ticket and t.ticket["number"] for t in batch] == [1, None, 2]
    assert isinstance(batch[1].error, LookupError)


def test_when_the_database_cannot_be_reached_every_take_of_the_batch_is_told_at_once():
    """One try, not one per take, each waiting as long to fail (the pool's timeout)."""
    unreachable = sqlite3.OperationalError("database is locked")
    writer = Writer(together=None)
    tried = []

    def write_alone(take):
        tried.append(take.token)
        raise unreachable

    line = TakeLine(writer.write_together, write_alone, fails_all=lambda e: e is unreachable)
    batch = [take("a"), take("b"), take("c")]
    line.write(batch)
    assert tried == ["a"]
    assert [t.error for t in batch] == [unreachable] * 3

    writer = Writer(together=False)  # writing together fails: "disk I/O error"
    line = TakeLine(writer.write_together, write_alone, fails_all=lambda e: True)
    batch = [take("d"), take("e")]
    line.write(batch)
    assert tried == ["a"]  # nobody was tried alone
    assert all(isinstance(t.error, sqlite3.OperationalError) for t in batch)


class SlowToLook(Take):
    """A take whose thread is slow to look whether it leads, after it joined the line: the
    moment in which the writer may hand it the lead."""

    __slots__ = ("_lead",)

    @property
    def lead(self):
        time.sleep(0.3)
        return self._lead

    @lead.setter
    def lead(self, value):
        self._lead = value


def test_a_take_handed_the_lead_as_it_joins_the_line_writes_and_nobody_is_left_waiting():
    # Before: a take that joined while a batch was being written, and was made the next
    # writer before it looked, went on to write without waiting; releasing its lock at
    # the end raised, and every later take of the process waited for ever.
    writer = Writer(together=None)
    line = TakeLine(writer.write_together, writer.write_alone)
    results = {}

    def take_one(made):
        try:
            results[made.token] = line.take(made)
        except Exception as error:  # noqa: BLE001 - any is the failure
            results[made.token] = error

    writer.hold.clear()  # the first take is written, and held there
    first = threading.Thread(target=take_one, args=(take("first"),), daemon=True)
    first.start()
    deadline = time.monotonic() + 10
    while not writer.batches:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    second = threading.Thread(
        target=take_one, args=(SlowToLook("q", "second", 0.0, None, None),), daemon=True
    )
    second.start()
    while line.waiting() < 1:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    writer.hold.set()  # the first is done, and hands the lead to the second as it looks
    for thread in (first, second):
        thread.join(10)
    third = threading.Thread(target=take_one, args=(take("third"),), daemon=True)
    third.start()
    third.join(10)
    assert not (first.is_alive() or second.is_alive() or third.is_alive()), results
    assert [results[t]["number"] for t in ("first", "second", "third")] == [1, 2, 3], results
    assert line.waiting() == 0
