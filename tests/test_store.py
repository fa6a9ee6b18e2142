"""The Store on a real SQLite file: schema, numbering, calling, signing in and out,
status, estimates, backups, versions and the event log."""

import datetime
import sqlite3
import threading
import time

import pytest

from take_a_number import rules, security, statistics
from take_a_number.store import (
    FOREIGN_CHECK_SECONDS,
    MIGRATIONS,
    InvitationRefused,
    NameInUse,
    NotTaking,
    QueueExists,
    Store,
)

QUEUE = "cet236"
T0 = 1_700_000_000.0


@pytest.fixture
def path(database):
    """The test's database (conftest: an SQLite file, then a PostgreSQL database)."""
    return database


@pytest.fixture
def store(path):
    store = Store(path)
    store.migrate()
    store.create_queue(QUEUE, "CET236 lab help", "not-a-real-hash", T0)
    yield store
    store.close_all()


@pytest.fixture
def desk(store):
    return store.sign_in(QUEUE, "Desk 1", T0)


# -- helpers -----------------------------------------------------------------------


def take(store, count=1, queue_id=QUEUE, now=T0):
    """``count`` customers take a number; returns their tickets."""
    return [
        store.take_ticket(queue_id, f"{queue_id}-token-{now}-{i}", now + i) for i in range(count)
    ]


def ticket(store, ticket_id):
    return store.engine.row("SELECT * FROM tickets WHERE id = ?", (ticket_id,))


def state_of(store, ticket_id):
    return ticket(store, ticket_id)["state"]


def version(store, queue_id=QUEUE):
    return store.get_queue(queue_id)["version"]


def snapshot(store, now, queue_id=QUEUE):
    """The queue as every page of it shows it at ``now``."""
    return store.queue_snapshot(queue_id, now)


def events(store, queue_id=QUEUE):
    return store.engine.rows(
        "SELECT kind, ticket_id, servicer_id, at FROM events WHERE queue_id = ? ORDER BY id",
        (queue_id,),
    )


def raw(path):
    """A plain sqlite3 connection: what another program sees on disk."""
    return sqlite3.connect(path, isolation_level=None)


# -- schema ------------------------------------------------------------------------


def test_migrating_a_new_database_applies_and_records_every_migration(path):
    store = Store(path)
    names = [name for name, _ in MIGRATIONS]
    assert store.migrate() == names
    assert store.applied_migrations() == names
    recorded = store.engine.column("SELECT name FROM migrations ORDER BY name")
    assert recorded == [name for name, _ in MIGRATIONS]
    store.close_all()


def test_migrating_again_applies_nothing_and_keeps_the_data(path):
    store = Store(path)
    store.migrate()
    store.create_queue(QUEUE, "Lab", "hash", T0)
    assert store.migrate() == []
    store.close()

    restarted = Store(path)
    assert restarted.migrate() == []
    assert restarted.applied_migrations() == [name for name, _ in MIGRATIONS]
    assert restarted.get_queue(QUEUE)["title"] == "Lab"


def test_the_store_creates_the_database_directory(tmp_path):
    path = tmp_path / "deep" / "var" / "q.sqlite"
    Store(path).migrate()
    assert path.is_file()


@pytest.mark.sqlite_only
def test_the_database_file_uses_write_ahead_logging(store, path):
    with raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# -- numbering -----------------------------------------------------------------------


def test_ticket_numbers_count_up_from_one(store):
    assert [t["number"] for t in take(store, 5)] == [1, 2, 3, 4, 5]


def test_each_queue_numbers_its_tickets_independently(store):
    store.create_queue("other", "Other queue", "hash", T0)
    numbers = []
    for i in range(3):
        numbers.append((QUEUE, store.take_ticket(QUEUE, f"a{i}", T0)["number"]))
        numbers.append(("other", store.take_ticket("other", f"b{i}", T0)["number"]))
    assert numbers == [(QUEUE, 1), ("other", 1), (QUEUE, 2), ("other", 2), (QUEUE, 3), ("other", 3)]
    assert store.get_queue(QUEUE)["last_number"] == 3
    assert store.get_queue("other")["last_number"] == 3


def test_a_new_ticket_is_waiting_with_its_token(store):
    taken = store.take_ticket(QUEUE, "secret-token", T0 + 5)
    found = store.ticket_by_token("secret-token")
    assert found["id"] == taken["id"]
    assert found["state"] == "waiting"
    assert found["number"] == 1
    assert found["taken_at"] == T0 + 5
    assert found["servicer_name"] is None
    assert store.ticket_by_token("no-such-token") is None


def test_numbers_are_never_reused_after_a_customer_leaves_or_misses_their_turn(store, desk):
    first, second = take(store, 2)
    store.leave(second["token"], T0 + 10)
    assert take(store, now=T0 + 11)[0]["number"] == 3

    store.call_next(desk, T0 + 20)
    store.finish_current(desk, rules.NO_SHOW, T0 + 30)
    assert state_of(store, first["id"]) == "no_show"
    assert take(store, now=T0 + 31)[0]["number"] == 4


def test_two_customers_cannot_hold_the_same_token(store):
    store.take_ticket(QUEUE, "same", T0)
    with pytest.raises(store.engine.IntegrityError):
        store.take_ticket(QUEUE, "same", T0)
    # The failed attempt did not use up a number.
    assert store.take_ticket(QUEUE, "different", T0)["number"] == 2


def takes_arriving_together(store, requests):
    """Run take_ticket for each ``(queue_id, token, browser)`` in a thread of its own,
    all arriving while another write transaction is open: the first take waits for
    it, the others line up behind, and the next writer writes them together.
    Returns ``{token: ticket or exception}``."""
    results = {}

    def take_one(queue_id, token, browser):
        try:
            results[token] = store.take_ticket(queue_id, token, T0 + 1, browser=browser)
        except Exception as error:
            results[token] = error
        finally:
            store.release()

    threads = [threading.Thread(target=take_one, args=request) for request in requests]
    queues = tuple({queue_id for queue_id, _, _ in requests})  # PostgreSQL locks each
    with store.immediate(queues, shown=False):  # a write no page shows: no commit counted
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while store.take_line.waiting() < len(requests) - 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.take_line.waiting() == len(requests) - 1, "the takes did not line up"
    for thread in threads:
        thread.join(10)
    return results


def commits_of(store):
    """The commits of changes the store makes from now on (one per statement of takes)."""
    commits = []
    store.after_commit.append(lambda: commits.append(time.monotonic()))
    return commits


def test_takes_arriving_together_are_written_together_with_gapless_numbers(store):
    store.create_queue("other", "Other", "not-a-real-hash", T0)
    requests = [(QUEUE if i % 3 else "other", f"token-{i}", f"browser-{i}") for i in range(30)]
    commits = commits_of(store)
    results = takes_arriving_together(store, requests)

    # The first take is written alone (while the others lined up), then the 29
    # others with one statement per queue.
    assert len(commits) == 1 + 2
    assert all(isinstance(t, dict) for t in results.values()) and len(results) == 30
    for queue_id in (QUEUE, "other"):
        taken = [t for t in results.values() if t["queue_id"] == queue_id]
        assert sorted(t["number"] for t in taken) == list(range(1, len(taken) + 1))
        assert store.get_queue(queue_id)["last_number"] == len(taken)
        for t in taken:  # what each caller was told is what was written
            row = ticket(store, t["id"])
            assert (row["token"], row["number"], row["state"]) == (
                t["token"],
                t["number"],
                "waiting",
            )
    kinds = [e["kind"] for e in events(store)]
    assert kinds.count("take") == len([t for t in results.values() if t["queue_id"] == QUEUE])


def test_takes_written_together_still_refuse_what_they_must(store):
    store.create_queue("paused", "Paused", "not-a-real-hash", T0)
    store.set_status("paused", rules.PAUSED, T0)
    held = store.take_ticket(QUEUE, "held", T0, browser="has-one")
    requests = [
        (QUEUE, "a", "browser-a"),
        (QUEUE, "b", "has-one"),  # already holds an open ticket: gets that one back
        (QUEUE, "c", "browser-c"),
        (QUEUE, "c2", "browser-c"),  # the same browser twice in one batch
        ("paused", "p1", "browser-p1"),
        ("paused", "p2", "browser-p2"),
        ("nowhere", "n1", "browser-n1"),
        (QUEUE, "held", "browser-d"),  # a token already in use
    ]
    results = takes_arriving_together(store, requests)

    assert results["b"]["token"] == held["token"]
    assert results["c2"]["token"] == results["c"]["token"]
    assert isinstance(results["p1"], NotTaking) and isinstance(results["p2"], NotTaking)
    assert isinstance(results["n1"], LookupError)
    assert isinstance(results["held"], store.engine.IntegrityError)
    numbers = sorted(t["number"] for t in (results["a"], results["c"], held))
    assert numbers == [1, 2, 3]
    assert store.get_queue(QUEUE)["last_number"] == 3


# -- calling ------------------------------------------------------------------------


def test_next_calls_the_lowest_waiting_number_for_the_servicer(store, desk):
    first, _, _ = take(store, 3)
    finished, called = store.call_next(desk, T0 + 60)
    assert finished is None
    assert called["id"] == first["id"]
    assert called["number"] == 1
    row = ticket(store, first["id"])
    assert (row["state"], row["servicer_id"], row["called_at"]) == ("called", desk["id"], T0 + 60)
    assert store.current_ticket(desk["id"])["id"] == first["id"]


def test_next_finishes_the_current_customer_as_served_and_calls_the_following(store, desk):
    first, second, _ = take(store, 3)
    store.call_next(desk, T0 + 60)
    finished, called = store.call_next(desk, T0 + 120)
    assert finished["id"] == first["id"]
    assert called["number"] == 2
    row = ticket(store, first["id"])
    assert (row["state"], row["finished_at"]) == ("served", T0 + 120)
    assert state_of(store, second["id"]) == "called"


def test_next_skips_customers_who_left(store, desk):
    first, second, third = take(store, 3)
    store.leave(first["token"], T0 + 5)
    store.leave(second["token"], T0 + 6)
    _, called = store.call_next(desk, T0 + 60)
    assert called["id"] == third["id"]


def test_next_with_nobody_waiting_finishes_the_current_customer_and_calls_nobody(store, desk):
    (only,) = take(store)
    store.call_next(desk, T0 + 60)
    finished, called = store.call_next(desk, T0 + 90)
    assert finished["id"] == only["id"]
    assert called is None
    assert state_of(store, only["id"]) == "served"
    assert store.current_ticket(desk["id"]) is None


def test_next_on_an_empty_line_changes_nothing(store, desk):
    before = version(store)
    assert store.call_next(desk, T0 + 60) == (None, None)
    assert version(store) == before


def test_two_servicers_pressing_next_get_different_customers(store, desk):
    other = store.sign_in(QUEUE, "Desk 2", T0)
    take(store, 2)
    _, first = store.call_next(desk, T0 + 60)
    _, second = store.call_next(other, T0 + 61)
    assert (first["number"], second["number"]) == (1, 2)
    # Each servicer's Next finishes only their own customer.
    finished, _ = store.call_next(other, T0 + 90)
    assert finished["number"] == 2
    assert state_of(store, first["id"]) == "called"


@pytest.mark.parametrize("outcome", [rules.SERVED, rules.NO_SHOW])
def test_done_or_no_show_closes_the_current_customer(store, desk, outcome):
    (customer,) = take(store)
    store.call_next(desk, T0 + 60)
    finished = store.finish_current(desk, outcome, T0 + 100)
    assert finished["id"] == customer["id"]
    row = ticket(store, customer["id"])
    assert (row["state"], row["finished_at"]) == (outcome, T0 + 100)
    assert store.current_ticket(desk["id"]) is None


def test_done_with_nobody_at_the_counter_does_nothing(store, desk):
    take(store)
    assert store.finish_current(desk, rules.SERVED, T0 + 60) is None
    assert snapshot(store, T0 + 60).waiting == [1]


def test_finishing_with_a_state_that_is_not_an_ending_is_refused_and_rolled_back(store, desk):
    (customer,) = take(store)
    store.call_next(desk, T0 + 60)
    before = version(store)
    with pytest.raises(rules.InvalidTransition):
        store.finish_current(desk, rules.CLEARED, T0 + 70)
    assert state_of(store, customer["id"]) == "called"
    assert version(store) == before
    # The connection is usable again after the rollback.
    assert store.finish_current(desk, rules.SERVED, T0 + 80)["id"] == customer["id"]


def test_recall_counts_each_recall_of_the_current_customer(store, desk):
    (customer,) = take(store)
    store.call_next(desk, T0 + 60)
    assert store.recall(desk, T0 + 90)["id"] == customer["id"]
    store.recall(desk, T0 + 120)
    row = ticket(store, customer["id"])
    assert row["recalls"] == 2
    assert row["state"] == "called"
    kinds = [e["kind"] for e in events(store) if e["ticket_id"] == customer["id"]]
    assert kinds.count("recall") == 2


def test_recall_with_nobody_at_the_counter_returns_none(store, desk):
    assert store.recall(desk, T0) is None


# -- leaving ------------------------------------------------------------------------


def test_a_waiting_customer_who_leaves_is_no_longer_counted(store):
    first, _ = take(store, 2)
    before = store.leave(first["token"], T0 + 30)
    assert before["state"] == "waiting"
    row = ticket(store, first["id"])
    assert (row["state"], row["finished_at"]) == ("left", T0 + 30)
    assert snapshot(store, T0 + 30).waiting == [2]


def test_a_called_customer_who_leaves_frees_the_servicer(store, desk):
    (customer,) = take(store)
    store.call_next(desk, T0 + 60)
    store.leave(customer["token"], T0 + 70)
    assert state_of(store, customer["id"]) == "left"
    assert store.current_ticket(desk["id"]) is None
    assert store.call_next(desk, T0 + 80) == (None, None)


@pytest.mark.parametrize("outcome", [rules.SERVED, rules.NO_SHOW])
def test_leaving_with_a_closed_ticket_changes_nothing(store, desk, outcome):
    (customer,) = take(store)
    store.call_next(desk, T0 + 60)
    store.finish_current(desk, outcome, T0 + 90)
    before = version(store)
    returned = store.leave(customer["token"], T0 + 120)
    assert returned["state"] == outcome
    row = ticket(store, customer["id"])
    assert (row["state"], row["finished_at"]) == (outcome, T0 + 90)
    assert version(store) == before


def test_leaving_twice_keeps_the_first_leaving_time(store):
    (customer,) = take(store)
    store.leave(customer["token"], T0 + 30)
    store.leave(customer["token"], T0 + 60)
    assert ticket(store, customer["id"])["finished_at"] == T0 + 30


def test_leaving_with_an_unknown_token_returns_none(store):
    assert store.leave("nobody", T0) is None


# -- servicers ----------------------------------------------------------------------


def test_signing_in_again_with_the_same_name_in_any_case_resumes_the_same_servicer(store):
    first = store.sign_in(QUEUE, "Desk 1", T0)
    assert store.sign_in(QUEUE, "desk 1", T0 + 10)["id"] == first["id"]
    assert store.sign_in(QUEUE, "DESK 1", T0 + 20)["id"] == first["id"]
    assert store.sign_in(QUEUE, "Desk 1", T0 + 30)["signed_in_at"] == T0


def test_signing_in_with_another_name_makes_a_second_servicer(store):
    first = store.sign_in(QUEUE, "Desk 1", T0)
    second = store.sign_in(QUEUE, "Desk 2", T0)
    assert second["id"] != first["id"]
    assert second["name"] == "Desk 2"
    assert store.active_servicer(QUEUE, first["id"])["name"] == "Desk 1"


def test_the_same_name_on_another_queue_is_another_servicer(store):
    store.create_queue("other", "Other", "hash", T0)
    here = store.sign_in(QUEUE, "Desk 1", T0)
    there = store.sign_in("other", "Desk 1", T0)
    assert here["id"] != there["id"]
    assert store.active_servicer(QUEUE, there["id"]) is None


def test_signing_out_puts_the_called_customer_back_first_with_the_same_number(store, desk):
    first, second, third = take(store, 3)
    store.call_next(desk, T0 + 60)
    store.sign_out(desk["id"], T0 + 100)
    row = ticket(store, first["id"])
    assert (row["state"], row["number"], row["called_at"], row["servicer_id"]) == (
        "waiting",
        1,
        None,
        None,
    )
    assert snapshot(store, T0 + 100).waiting == [1, 2, 3]
    assert store.get_servicer(desk["id"])["signed_out_at"] == T0 + 100
    assert store.get_servicer(desk["id"])["left_reason"] == rules.SIGNED_OUT
    assert store.active_servicer(QUEUE, desk["id"]) is None
    # The next servicer calls them first.
    other = store.sign_in(QUEUE, "Desk 2", T0 + 110)
    assert store.call_next(other, T0 + 120)[1]["id"] == first["id"]


def test_a_customer_put_back_goes_before_those_who_let_others_go_first(store, desk):
    first, second, third = take(store, 3)
    store.move_back(second["token"], T0 + 5)  # 3 goes before 2
    store.call_next(desk, T0 + 10)
    store.sign_out(desk["id"], T0 + 20)
    assert snapshot(store, T0 + 20).waiting == [1, 3, 2]


def test_signing_out_saying_the_customer_was_served_finishes_them(store, desk):
    first, _second = take(store, 2)
    store.call_next(desk, T0 + 60)
    store.sign_out(desk["id"], T0 + 100, rules.FINISH)
    row = ticket(store, first["id"])
    assert (row["state"], row["finished_at"]) == ("served", T0 + 100)


def test_a_customer_put_back_is_never_counted_as_served(store, desk):
    first, _second = take(store, 2)
    store.call_next(desk, T0 + 60)
    store.sign_out(desk["id"], T0 + 100)
    tickets = store.queue_tickets(QUEUE)
    assert statistics.report(tickets, datetime.UTC)["overall"]["served"] == 0
    assert snapshot(store, T0 + 100).service_durations == []
    other = store.sign_in(QUEUE, "Desk 2", T0 + 200)
    store.call_next(other, T0 + 300)
    store.finish_current(other, rules.SERVED, T0 + 360)
    report = statistics.report(store.queue_tickets(QUEUE), datetime.UTC)
    assert report["overall"]["served"] == 1
    served = next(t for t in store.queue_tickets(QUEUE) if t["id"] == first["id"])
    times = statistics.ticket_times(served)
    assert (times["wait"], times["service"]) == (300, 60)
    assert [s["servicer_name"] for s in report["servicers"]] == ["Desk 2"]
    kinds = [e["kind"] for e in events(store) if e["ticket_id"] == first["id"]]
    assert kinds == ["take", "call", "put_back", "call", "served"]


def test_the_snapshot_holds_the_last_twenty_service_times_most_recent_first(store, desk):
    # Services of 1, 2, ... 25 seconds: the estimate and the console use the last 20.
    take(store, 26)
    now = T0 + 10
    store.call_next(desk, now)
    for seconds in range(1, 26):
        now += seconds
        store.call_next(desk, now)
    assert snapshot(store, now).service_durations == list(range(25, 5, -1))


def test_a_servicer_signed_out_meanwhile_calls_nobody(store, desk):
    take(store, 1)
    stale = dict(desk)  # what a request read before the sign-out
    store.sign_out(desk["id"], T0 + 10)
    assert store.call_next(stale, T0 + 20) == (None, None)
    assert snapshot(store, T0 + 20).waiting == [1]


# -- invitations and revoking ----------------------------------------------------------


def invitation(store, name="Desk 2", code="CODE-ONE", expires_at=None):
    return store.create_invitation(
        QUEUE, name, security.invitation_code_hash(code), T0, expires_at=expires_at
    )


def test_an_invitation_signs_in_its_servicer_again_on_another_device(store):
    made = invitation(store)
    phone = store.sign_in_invited(QUEUE, security.invitation_code_hash("code one"), T0 + 1)
    laptop = store.sign_in_invited(QUEUE, security.invitation_code_hash("CODEONE"), T0 + 2)
    assert phone["id"] == laptop["id"] and phone["name"] == "Desk 2"
    assert phone["invitation_id"] == made["id"] and not phone["is_owner"]
    store.sign_out(phone["id"], T0 + 3)
    again = store.sign_in_invited(QUEUE, made["code_hash"], T0 + 4)
    assert again["id"] != phone["id"] and again["name"] == "Desk 2"


def test_an_invitation_name_is_unique_among_live_invitations(store):
    invitation(store)
    with pytest.raises(NameInUse):
        invitation(store, "desk 2", code="CODE-TWO")
    invitation(store, "Desk 3", code="CODE-TWO")


def test_revoking_an_invitation_signs_out_its_servicer_and_puts_their_customer_back(store):
    made = invitation(store)
    staff = store.sign_in_invited(QUEUE, made["code_hash"], T0)
    first, _second = take(store, 2)
    store.call_next(staff, T0 + 10)
    token_hash = security.token_hash("a token")
    store.add_api_token(staff["id"], token_hash, T0 + 10)
    assert store.revoke_invitation(QUEUE, made["id"], T0 + 20)
    assert store.active_servicer(QUEUE, staff["id"]) is None
    assert store.servicer_of_api_token(token_hash)["left_reason"] == rules.REVOKED
    assert state_of(store, first["id"]) == "waiting"
    assert snapshot(store, T0 + 20).waiting == [1, 2]
    with pytest.raises(InvitationRefused, match="revoked"):
        store.sign_in_invited(QUEUE, made["code_hash"], T0 + 30)
    assert store.invitations(QUEUE) == []
    assert not store.revoke_invitation(QUEUE, made["id"], T0 + 40)


def test_revoking_a_servicer_kills_their_invitation_too(store):
    made = invitation(store)
    staff = store.sign_in_invited(QUEUE, made["code_hash"], T0)
    assert store.revoke_servicer(QUEUE, staff["id"], T0 + 10)
    assert store.get_servicer(staff["id"])["left_reason"] == rules.REVOKED
    with pytest.raises(InvitationRefused):
        store.sign_in_invited(QUEUE, made["code_hash"], T0 + 20)
    assert not store.revoke_servicer(QUEUE, staff["id"], T0 + 30)
    assert not store.revoke_servicer("other", staff["id"], T0 + 30)


def test_an_invitation_stops_signing_in_when_it_expires(store):
    made = invitation(store, expires_at=T0 + 3600)
    store.sign_in_invited(QUEUE, made["code_hash"], T0 + 3599)
    with pytest.raises(InvitationRefused, match="expired"):
        store.sign_in_invited(QUEUE, made["code_hash"], T0 + 3600)
    # Another invitation may then take its name.
    store.create_invitation(QUEUE, "Desk 2", security.invitation_code_hash("B"), T0 + 3600)


def test_an_invitation_of_another_queue_signs_in_nobody_here(store):
    store.create_queue("other", "Other", "hash", T0)
    made = store.create_invitation("other", "Desk 2", security.invitation_code_hash("X"), T0)
    with pytest.raises(InvitationRefused, match="not an invitation code"):
        store.sign_in_invited(QUEUE, made["code_hash"], T0)


# -- idle desks -----------------------------------------------------------------------


def test_an_idle_desk_is_released_when_the_queue_is_next_read(path):
    store = Store(path, servicer_idle_seconds=30 * 60)
    store.migrate()
    store.create_queue(QUEUE, "Lab", "hash", T0)
    desk = store.sign_in(QUEUE, "Desk 1", T0)
    busy = store.sign_in(QUEUE, "Desk 2", T0)
    take(store, 3)
    store.call_next(desk, T0 + 60)
    store.call_next(busy, T0 + 60)
    store.seen(store.get_servicer(busy["id"]), T0 + 29 * 60)
    assert snapshot(store, T0 + 60 + 30 * 60 - 1).waiting == [3]
    seen = snapshot(store, T0 + 60 + 30 * 60)
    assert seen.waiting == [1, 3]
    assert [s["servicer_name"] for s in seen.serving] == ["Desk 2"]
    assert store.get_servicer(desk["id"])["left_reason"] == rules.IDLE
    assert store.active_servicer(QUEUE, busy["id"]) is not None
    assert store.release_idle_desks(QUEUE, T0 + 60 + 30 * 60) == 0


def test_without_an_idle_limit_no_desk_is_released(store, desk):
    take(store, 1)
    store.call_next(desk, T0)
    assert store.release_idle_desks(QUEUE, T0 + 365 * 86400) == 0
    assert snapshot(store, T0 + 365 * 86400).waiting == []


def test_the_console_being_seen_is_written_at_most_once_a_minute(store, desk):
    writes = []
    store.after_commit.append(lambda: writes.append(1))
    servicer = store.get_servicer(desk["id"])
    for second in range(0, 60, 5):
        store.seen(servicer, T0 + second)
    assert writes == []  # signing in counted as seen at T0
    store.seen(servicer, T0 + 60)
    assert writes == [1]
    assert store.get_servicer(desk["id"])["last_seen_at"] == T0 + 60


@pytest.mark.sqlite_only
def test_upgrading_stops_the_shared_staff_codes(path, monkeypatch):
    from take_a_number.store import migrations

    monkeypatch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:5])
    old = Store(path)
    old.migrate()
    old.db.execute(
        "INSERT INTO queues (id, title, password_hash, created_at, staff_code) "
        "VALUES (?, ?, ?, ?, ?)",
        (QUEUE, "Lab", "hash", T0, "K7P2-X9QM"),
    )
    old.db.execute(
        "INSERT INTO servicers (queue_id, name, signed_in_at) VALUES (?, ?, ?)",
        (QUEUE, "Desk 2", T0),
    )
    old.close()
    monkeypatch.undo()
    store = Store(path)
    assert store.migrate() == [name for name, _ in MIGRATIONS[5:]]  # 0006 on
    assert store.get_queue(QUEUE)["staff_code"] is None
    servicer = store.active_servicers(QUEUE)[0]
    assert (servicer["last_seen_at"], servicer["invitation_id"]) == (T0, None)


def test_signing_out_twice_is_harmless(store, desk):
    store.sign_out(desk["id"], T0 + 100)
    before = version(store)
    store.sign_out(desk["id"], T0 + 200)
    store.sign_out(9999, T0 + 200)
    assert store.get_servicer(desk["id"])["signed_out_at"] == T0 + 100
    assert version(store) == before


def test_signing_in_after_signing_out_starts_a_new_servicer(store, desk):
    store.sign_out(desk["id"], T0 + 100)
    again = store.sign_in(QUEUE, "Desk 1", T0 + 200)
    assert again["id"] != desk["id"]
    assert again["signed_in_at"] == T0 + 200


# -- snapshots: status and estimates -------------------------------------------------


def test_a_snapshot_lists_the_waiting_line_and_who_is_served_by_whom(store, desk):
    other = store.sign_in(QUEUE, "Desk 2", T0)
    take(store, 5)
    store.call_next(desk, T0 + 60)
    store.call_next(other, T0 + 70)
    seen = snapshot(store, T0 + 80)
    assert seen.queue["title"] == "CET236 lab help"
    assert seen.waiting == [3, 4, 5]
    assert [(s["number"], s["servicer_name"]) for s in seen.serving] == [
        (2, "Desk 2"),
        (1, "Desk 1"),
    ]
    assert seen.version == store.queue_version(QUEUE) == version(store)
    assert seen.taken_at == T0 + 80


def test_a_snapshot_of_an_unknown_queue_is_none(store):
    assert store.queue_snapshot("nope", T0) is None
    assert store.queue_version("nope") is None
    assert store.get_queue("nope") is None
    # The read transaction was closed: writing still works.
    assert take(store)[0]["number"] == 1


def test_the_board_lists_the_last_six_calls_and_recalls_newest_first(store, desk):
    take(store, 8)
    for i in range(6):
        store.call_next(desk, T0 + 100 + 10 * i)
    store.recall(desk, T0 + 200)
    calls = snapshot(store, T0 + 300).recent_calls
    assert [(c["kind"], c["number"], c["servicer_name"]) for c in calls] == [
        ("recall", 6, "Desk 1"),
        ("call", 6, "Desk 1"),
        ("call", 5, "Desk 1"),
        ("call", 4, "Desk 1"),
        ("call", 3, "Desk 1"),
        ("call", 2, "Desk 1"),
    ]


def test_people_ahead_counts_only_waiting_customers_with_lower_numbers(store, desk):
    tickets = take(store, 5)
    assert snapshot(store, T0).people_ahead(5) == 4
    store.call_next(desk, T0 + 60)  # number 1 is at the counter
    store.leave(tickets[2]["token"], T0 + 61)  # number 3 left
    seen = snapshot(store, T0 + 62)
    assert seen.people_ahead(5) == 2
    assert seen.people_ahead(2) == 0


def serve_three(store, servicer):
    """Serve numbers 1-3 in 60, 120 and 180 seconds; number 4 is then at the counter."""
    store.call_next(servicer, T0 + 100)
    store.call_next(servicer, T0 + 160)
    store.call_next(servicer, T0 + 280)
    store.call_next(servicer, T0 + 460)


def test_no_wait_estimate_until_three_customers_have_been_served(store, desk):
    take(store, 5)
    store.call_next(desk, T0 + 100)
    store.call_next(desk, T0 + 160)
    store.call_next(desk, T0 + 280)
    assert snapshot(store, T0 + 300).estimate(1) is None
    store.call_next(desk, T0 + 460)
    assert snapshot(store, T0 + 500).estimate(1) is not None


def test_the_wait_estimate_comes_from_recent_service_times(store, desk):
    take(store, 6)
    serve_three(store, desk)
    seen = snapshot(store, T0 + 500)
    assert seen.service_durations == [180, 120, 60]
    assert seen.active_servicers == 1
    assert seen.estimate(1) == (90, 150)
    assert seen.estimate(2) == (180, 300)


def test_only_the_twenty_most_recent_services_feed_the_estimate(store, desk):
    take(store, 25)
    now = T0
    for seconds in [600] * 5 + [60] * 20:
        store.call_next(desk, now)
        now += seconds
    store.call_next(desk, now)
    seen = snapshot(store, now)
    assert seen.service_durations == [60] * 20
    assert seen.estimate(1) == (60, 60)


def test_a_second_active_servicer_halves_the_wait_estimate(store, desk):
    other = store.sign_in(QUEUE, "Desk 2", T0)
    take(store, 6)
    serve_three(store, desk)
    store.call_next(other, T0 + 470)
    seen = snapshot(store, T0 + 500)
    assert seen.active_servicers == 2
    assert seen.estimate(2) == (90, 150)


def test_servicers_who_signed_out_or_went_idle_do_not_shorten_the_estimate(store, desk):
    other = store.sign_in(QUEUE, "Desk 2", T0)
    take(store, 6)
    store.call_next(other, T0 + 50)
    store.finish_current(other, rules.NO_SHOW, T0 + 55)  # not a timed service
    serve_three(store, desk)
    # Desk 2 called someone 450 s ago and is still signed in: two servicers.
    assert snapshot(store, T0 + 500).estimate(2) == (90, 150)
    # Half an hour after their last call, Desk 2 no longer counts.
    assert snapshot(store, T0 + 50 + 30 * 60 + 1).estimate(2) == (180, 300)
    # Nor once signed out.
    store.sign_out(other["id"], T0 + 600)
    assert snapshot(store, T0 + 600).estimate(2) == (180, 300)


def test_no_shows_and_leavers_do_not_count_as_services(store, desk):
    tickets = take(store, 5)
    store.call_next(desk, T0 + 100)
    store.call_next(desk, T0 + 160)  # 1 served in 60 s
    store.finish_current(desk, rules.NO_SHOW, T0 + 200)  # 2 did not show
    store.call_next(desk, T0 + 300)
    store.leave(tickets[2]["token"], T0 + 310)  # 3 left at the counter
    store.call_next(desk, T0 + 400)
    store.call_next(desk, T0 + 520)  # 4 served in 120 s
    seen = snapshot(store, T0 + 600)
    assert seen.service_durations == [120, 60]
    assert seen.estimate(1) is None


# -- queues -------------------------------------------------------------------------


def test_creating_a_queue_that_exists_raises_queue_exists_and_keeps_the_first(store):
    with pytest.raises(QueueExists):
        store.create_queue(QUEUE, "Impostor", "other-hash", T0 + 10)
    queue = store.get_queue(QUEUE)
    assert (queue["title"], queue["password_hash"]) == ("CET236 lab help", "not-a-real-hash")
    # The failed attempt left no transaction open.
    assert take(store)[0]["number"] == 1


def test_a_new_queue_starts_at_version_zero_with_no_numbers_taken(store):
    queue = store.get_queue(QUEUE)
    assert (queue["version"], queue["last_number"], queue["created_at"]) == (0, 0, T0)


def test_the_queue_version_increases_with_every_change(store):
    seen = [version(store)]

    def changed():
        seen.append(version(store))
        assert seen[-1] > seen[-2]

    desk = store.sign_in(QUEUE, "Desk 1", T0)
    changed()
    first, second, third = take(store, 3)
    changed()
    store.call_next(desk, T0 + 10)
    changed()
    store.recall(desk, T0 + 20)
    changed()
    store.call_next(desk, T0 + 30)
    changed()
    store.finish_current(desk, rules.NO_SHOW, T0 + 40)
    changed()
    store.leave(third["token"], T0 + 50)
    changed()
    store.sign_out(desk["id"], T0 + 60)
    changed()


def test_every_change_is_recorded_as_an_event(store, desk):
    first, second, third = take(store, 3, now=T0 + 1)
    store.call_next(desk, T0 + 10)
    store.recall(desk, T0 + 15)
    store.call_next(desk, T0 + 20)
    store.finish_current(desk, rules.NO_SHOW, T0 + 30)
    store.leave(third["token"], T0 + 40)
    store.sign_out(desk["id"], T0 + 50)
    d = desk["id"]
    assert events(store) == [
        {"kind": "create", "ticket_id": None, "servicer_id": None, "at": T0},
        {"kind": "sign_in", "ticket_id": None, "servicer_id": d, "at": T0},
        {"kind": "take", "ticket_id": first["id"], "servicer_id": None, "at": T0 + 1},
        {"kind": "take", "ticket_id": second["id"], "servicer_id": None, "at": T0 + 2},
        {"kind": "take", "ticket_id": third["id"], "servicer_id": None, "at": T0 + 3},
        {"kind": "start_serving", "ticket_id": None, "servicer_id": d, "at": T0 + 10},
        {"kind": "call", "ticket_id": first["id"], "servicer_id": d, "at": T0 + 10},
        {"kind": "recall", "ticket_id": first["id"], "servicer_id": d, "at": T0 + 15},
        {"kind": "served", "ticket_id": first["id"], "servicer_id": d, "at": T0 + 20},
        {"kind": "call", "ticket_id": second["id"], "servicer_id": d, "at": T0 + 20},
        {"kind": "no_show", "ticket_id": second["id"], "servicer_id": d, "at": T0 + 30},
        {"kind": "left", "ticket_id": third["id"], "servicer_id": None, "at": T0 + 40},
        {"kind": "sign_out", "ticket_id": None, "servicer_id": d, "at": T0 + 50},
    ]


# -- backups ------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_backup_is_a_readable_copy_while_another_connection_is_writing(store, path, tmp_path):
    take(store, 3)
    other = raw(path)
    try:
        # Another process is half-way through a change it has not committed.
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE queues SET title = 'half-written' WHERE id = ?", (QUEUE,))
        copy = tmp_path / "backup.sqlite"
        store.backup(str(copy))
    finally:
        other.execute("ROLLBACK")
        other.close()

    with raw(copy) as backup:
        assert backup.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert backup.execute("SELECT title FROM queues").fetchone()[0] == "CET236 lab help"
        numbers = [row[0] for row in backup.execute("SELECT number FROM tickets ORDER BY number")]
        assert numbers == [1, 2, 3]
        migrations = [row[0] for row in backup.execute("SELECT name FROM migrations")]
        assert migrations == [name for name, _ in MIGRATIONS]


@pytest.mark.sqlite_only
def test_a_backup_can_be_opened_and_used_as_a_store(store, tmp_path):
    take(store, 2)
    copy = tmp_path / "restore" / "copy.sqlite"
    copy.parent.mkdir()
    store.backup(str(copy))
    restored = Store(copy)
    assert restored.migrate() == []
    assert take(restored, now=T0 + 100)[0]["number"] == 3
    # The original is untouched by the copy's new ticket.
    assert store.get_queue(QUEUE)["last_number"] == 2


# -- generations: when what was read may be served again ---------------------------


def test_the_generation_moves_on_with_every_commit_of_this_store(store):
    if store.engine.dialect == "postgresql":  # until it listens, every generation is new
        assert store.engine.listening(5)
    before = store.generation()
    assert store.generation() == before  # nothing changed
    take(store)
    after_take = store.generation()
    assert after_take != before
    store.set_status(QUEUE, rules.PAUSED, T0 + 1)
    assert store.generation() != after_take


@pytest.mark.sqlite_only
def test_another_processs_commit_is_seen_at_once_when_exact_and_soon_otherwise(store, path):
    other = Store(path)  # another process's connections to the same file
    store.exact = True
    before = store.generation()
    other.take_ticket(QUEUE, "from-elsewhere", T0)
    assert store.generation() != before  # exact: asked SQLite

    store.exact = False
    seen = store.generation()
    other.take_ticket(QUEUE, "from-elsewhere-too", T0)
    time.sleep(FOREIGN_CHECK_SECONDS * 1.5)
    assert store.generation() != seen  # noticed within FOREIGN_CHECK_SECONDS
    other.close_all()


def test_the_push_watcher_seeing_a_commit_moves_the_generation_on(store):
    before = store.generation()
    store.changed_elsewhere()
    assert store.generation() != before
