"""Many instances as one service: app processes on one PostgreSQL database, behind
nginx, and the faults they must survive (an instance killed, PostgreSQL restarted).

Real processes throughout: waitress instances (tests/instances_support.py), nginx,
and the session's throwaway PostgreSQL (tests/pg_support.py). A missing nginx or a
PostgreSQL that cannot start fails the tests.
"""

import collections
import concurrent.futures
import threading
import time

import pytest
from hosting_support import Browser, main_flow, take_numbers_at_once, text_of
from instances_support import (
    PASSWORD,
    Load,
    Site,
    api,
    call_next,
    create_queue,
    held_update,
    sign_in,
    take,
    tickets_in,
    wait_for,
)

from take_a_number.store.postgresql import POOL_TIMEOUT_SECONDS

pytestmark = pytest.mark.slow

# What "at once" means across instances: the bound for a live page.
WITHIN_A_SECOND = 1.0
# Once PostgreSQL is back, instances serve again and answer their held pages this soon.
BACK_WITHIN = 3.0


@pytest.fixture
def site(tmp_path, postgresql_url):
    with Site(tmp_path, postgresql_url) as site:
        yield site


def ticket_updates(token):
    return f"/api/v1/tickets/{token}/updates"


# -- one service --------------------------------------------------------------------


def test_two_instances_behind_nginx_serve_the_main_flow_and_share_sessions(site):
    flow = main_flow(site.url, "lab")
    assert sorted(take_numbers_at_once(site.url, "lab", 24)) == list(range(2, 26))
    # The owner's sign-in and the customer's ticket are good on either instance.
    for instance in site.instances:
        console = flow.owner.get(instance.url + "/lab/serve")
        assert console.status == 200, console.text
        assert 'action="/lab/serve/next"' in console.text
        ticket = flow.customer.get(instance.url + flow.ticket_path)
        assert "It's your turn — go to Desk 1." in text_of(ticket)


def test_a_call_on_one_instance_wakes_a_customer_held_on_the_other_within_a_second(site):
    a, b = (instance.url for instance in site.instances)
    desk = create_queue(b, "lab")
    ticket = take(a, "lab").json()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(held_update, a, ticket_updates(ticket["token"]), ticket["version"])
        time.sleep(1)
        assert not held.done(), "the live update should be held until a change"
        pressed_at = time.monotonic()
        pressed = call_next(b, "lab", desk)
        assert pressed.status == 200, pressed.text
        answer, arrived = held.result(timeout=10)
    latency = arrived - pressed_at
    print(f"called on instance B, customer held on instance A told in {latency * 1000:.0f} ms")
    assert answer.status == 200, answer.text
    assert answer.json()["state"] == "called"
    assert latency < WITHIN_A_SECOND


def test_a_page_reloaded_on_one_instance_shows_a_change_made_on_the_other(site):
    a, b = (instance.url for instance in site.instances)
    desk = create_queue(a, "lab")
    token = take(a, "lab").json()["token"]
    customer = Browser(a)
    page_path = f"/lab/ticket/{token}"
    # Instance A has the ticket's page in memory, the customer waiting.
    for _ in range(3):
        assert "You're next." in text_of(customer.get(page_path))
    assert call_next(b, "lab", desk).status == 200
    shown = wait_for(
        lambda: "It's your turn — go to Desk 1." in text_of(customer.get(page_path)),
        WITHIN_A_SECOND,
        interval=0,
    )
    assert shown is not None, "instance A kept showing the ticket as waiting"
    print(f"a reload on instance A showed instance B's call after {shown * 1000:.0f} ms")
    assert customer.get(f"/api/v1/tickets/{token}").json()["state"] == "called"


# -- faults ---------------------------------------------------------------------------


def assert_every_acknowledged_ticket_kept(load, database_url, queue_id):
    """Numbers 1..N in the database, each once, and every ticket a customer was given
    among them with its number. Returns N."""
    rows = tickets_in(database_url, queue_id)
    assert [number for number, _ in rows] == list(range(1, len(rows) + 1))
    kept = {token: number for number, token in rows}
    acknowledged = load.acknowledged()
    lost = {
        token: number
        for token, number in acknowledged.items()
        if token not in kept or number not in (None, kept[token])
    }
    assert lost == {}, "tickets acknowledged to customers are not in the database"
    return len(rows), len(acknowledged)


def test_an_instance_killed_under_load_loses_no_acknowledged_ticket(site):
    a, b = site.instances
    create_queue(site.url, "lab")
    load = Load([site.url], "lab", threads=8)
    assert wait_for(lambda: len(load.acknowledged()) >= 40, 30) is not None
    a.process.kill()  # SIGKILL: no goodbye, transactions cut off where they are
    a.process.wait(timeout=10)
    killed_at = time.monotonic()
    served_after = wait_for(
        lambda: sum(1 for s, _, _, at in load.answers if s in (201, 303) and at > killed_at) >= 40,
        30,
    )
    answers = load.stop()
    statuses = collections.Counter(status for status, _, _, _ in answers)
    print(f"answers through nginx, instance A killed under load: {dict(statuses)}")
    assert served_after is not None, "the other instance stopped serving"
    # Only the requests instance A was answering are lost: nginx says so (502), or the
    # answer it had begun to pass on is cut off (None).
    assert set(statuses) <= {201, 303, 502, None}, statuses
    in_database, acknowledged = assert_every_acknowledged_ticket_kept(
        load, site.database_url, "lab"
    )
    print(f"{acknowledged} tickets acknowledged, {in_database} in the database, gapless")
    assert take(b.url, "lab").json()["number"] == in_database + 1


def assert_unavailable(answer):
    """What a request gets while the database cannot be reached: a clear 503."""
    assert answer.status == 503, answer.text
    assert "Traceback" not in answer.text
    assert answer.headers["Retry-After"] == "2"
    if answer.headers.get_content_type() == "application/json":
        assert answer.json()["error"]["code"] == "unavailable"
    else:
        assert "Back in a moment" in answer.text


def timed(request, *args):
    """``request(*args)``'s answer, and how many seconds it took."""
    started = time.monotonic()
    return request(*args), time.monotonic() - started


def held_on_each(pool, site, path, since):
    """A live update held on each instance, in ``pool``'s threads."""
    return [pool.submit(held_update, instance.url, path, since) for instance in site.instances]


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_instances_survive_postgresql_restarting_under_load(site, postgresql_server, mode):
    """``fast``: PostgreSQL ends every session and stops; ``immediate``: as a crash."""
    a, b = site.instances
    create_queue(a.url, "lab")  # the load's queue
    desk = create_queue(a.url, "quiet")  # the held customer's: nothing changes it
    customer = take(a.url, "quiet").json()
    updates = ticket_updates(customer["token"])
    load = Load([a.url, b.url], "lab", threads=4)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        held = held_on_each(pool, site, updates, customer["version"])
        assert wait_for(lambda: len(load.acknowledged()) >= 20, 30) is not None
        assert not any(waiting.done() for waiting in held)

        postgresql_server.stop(mode)
        during = [pool.submit(timed, Browser(i.url).get, "/quiet") for i in site.instances]
        during += [pool.submit(timed, take, i.url, "quiet") for i in site.instances]
        unavailable_after = []
        for answered_during in during:
            answer, seconds = answered_during.result(timeout=30)
            assert_unavailable(answer)
            unavailable_after.append(round(seconds, 1))
        assert not any(waiting.done() for waiting in held), "held through the outage"

        postgresql_server.start()
        started_at = time.monotonic()
        # Each instance reconnects by itself, and answers its held customer (who asks again).
        back = [
            pool.submit(wait_for, lambda url=i.url: take(url, "lab").status == 201, 30)
            for i in site.instances
        ]
        serving_again = [round(trying.result(timeout=40), 2) for trying in back]
        answered = [waiting.result(timeout=30) for waiting in held]
    answers = load.stop()
    statuses = collections.Counter(status for status, _, _, _ in answers)
    answered_after = [round(arrived - started_at, 2) for _, arrived in answered]
    print(
        f"PostgreSQL stopped ({mode}): pages and takes 503 after {unavailable_after} s; once "
        f"back, takes served again after {serving_again} s, held updates answered after "
        f"{answered_after} s; the load's answers {dict(statuses)}"
    )
    # A take may wait for the batch before its own to fail: twice the pool's timeout.
    assert max(unavailable_after) < 2 * POOL_TIMEOUT_SECONDS + 2
    assert max(serving_again) < BACK_WITHIN
    assert max(answered_after) < BACK_WITHIN
    for answer, _ in answered:
        assert answer.status == 200, answer.text
        assert answer.json()["state"] == "waiting"
    for status, text, _, _ in answers:
        assert status in (201, 303, 503), (status, text)
        if status == 503:
            assert '"unavailable"' in text or "Back in a moment" in text
    assert_every_acknowledged_ticket_kept(load, site.database_url, "lab")
    # The operator reads that the database was unavailable, not of a bug.
    logs = site.logs()
    assert "database unavailable answering" in logs
    assert "Traceback" not in logs and "ERROR" not in logs, logs

    # The pages ask again: each is told of a change made on either instance within a second.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        held = held_on_each(pool, site, updates, answered[0][0].json()["version"])
        time.sleep(0.5)
        assert not any(waiting.done() for waiting in held)
        pressed_at = time.monotonic()
        assert call_next(b.url, "quiet", desk).status == 200
        woken = [waiting.result(timeout=10) for waiting in held]
    latencies = [arrived - pressed_at for _, arrived in woken]
    print(f"after the restart, held updates told of a call in {latencies} s")
    assert [answer.json()["state"] for answer, _ in woken] == ["called", "called"]
    assert max(latencies) < WITHIN_A_SECOND


# -- many instances, one set of rules ------------------------------------------------

TAKERS_PER_INSTANCE = 2
TAKES_PER_TAKER = 25


def test_desks_on_four_instances_get_unique_gapless_numbers_and_never_call_one_twice(
    tmp_path, postgresql_url
):
    """Each instance (its own process) has desks that take a number and press Next,
    all at once; then they call until the line is empty."""
    with Site(tmp_path, postgresql_url, count=4) as site:
        urls = [instance.url for instance in site.instances]
        create_queue(urls[0], "busy")
        desks = [
            (url, sign_in(url, "busy", f"Desk {index}-{n}"))
            for index, url in enumerate(urls)
            for n in range(TAKERS_PER_INSTANCE)
        ]
        together = threading.Barrier(len(desks))

        def desk_at_work(url, token):
            taken, called = [], []

            def press_next():
                pressed = call_next(url, "busy", token)
                assert pressed.status == 200, pressed.text
                number = pressed.json()["current_number"]
                if number is not None:
                    called.append(number)
                return number

            try:
                together.wait(30)
                for _ in range(TAKES_PER_TAKER):
                    answer = take(url, "busy")
                    assert answer.status == 201, answer.text
                    taken.append(answer.json()["number"])
                    press_next()
                together.wait(60)  # everyone has taken: now empty the line
                while press_next() is not None:
                    pass
            except BaseException:
                together.abort()  # the other desks stop waiting for this one
                raise
            return taken, called

        with concurrent.futures.ThreadPoolExecutor(len(desks)) as pool:
            done = [pool.submit(desk_at_work, url, token) for url, token in desks]
            results = [work.result(timeout=120) for work in done]
        rows = tickets_in(postgresql_url, "busy")
    total = len(desks) * TAKES_PER_TAKER
    taken = sorted(number for numbers, _ in results for number in numbers)
    called = [number for _, numbers in results for number in numbers]
    assert [number for number, _ in rows] == list(range(1, total + 1))
    assert taken == list(range(1, total + 1))
    assert sorted(called) == list(range(1, total + 1)), "a number called twice, or never"
    # Each desk called its numbers in the order of the line.
    assert all(numbers == sorted(numbers) for _, numbers in results)


def test_sign_in_failures_on_each_instance_count_towards_one_limit(tmp_path, postgresql_url):
    limits = {"rate_limit_sign_in": "3/600", "rate_limit_sign_in_slowed": "off"}
    with Site(tmp_path, postgresql_url, settings=limits) as site:
        a, b = (instance.url for instance in site.instances)
        create_queue(a, "lab")
        wrong = {"name": "Desk 2", "password": "not the password"}
        for url in (a, b, a):
            failed = api(url, "POST", "/api/v1/queues/lab/servicers", wrong)
            assert failed.status == 401, failed.text
        right = dict(wrong, password=PASSWORD)
        for url in (b, a):
            refused = api(url, "POST", "/api/v1/queues/lab/servicers", right)
            assert refused.status == 429, refused.text
            assert 590 <= int(refused.headers["Retry-After"]) <= 600


def test_a_servicer_revoked_on_one_instance_is_refused_on_the_other_at_once(site):
    a, b = (instance.url for instance in site.instances)
    owner = create_queue(a, "lab")
    desk = sign_in(b, "lab", "Desk 2")
    take(b, "lab")
    for _ in range(3):  # instance B has the console in memory
        assert api(b, "GET", "/api/v1/queues/lab/console", token=desk).status == 200
    servicers = api(a, "GET", "/api/v1/queues/lab/settings", token=owner).json()["servicers"]
    desk_id = next(s["id"] for s in servicers if s["name"] == "Desk 2")
    assert api(a, "DELETE", f"/api/v1/queues/lab/servicers/{desk_id}", token=owner).status == 200
    for refused in (
        api(b, "GET", "/api/v1/queues/lab/console", token=desk),
        call_next(b, "lab", desk),
    ):
        assert refused.status == 401, refused.text
        assert refused.json()["error"]["code"] == "revoked"
