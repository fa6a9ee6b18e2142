"""Many instances as one service: app processes on one PostgreSQL database, behind
nginx, and the faults they must survive (an instance killed, PostgreSQL restarted).

Real processes throughout: waitress instances (tests/instances_support.py), nginx,
and the session's throwaway PostgreSQL (tests/pg_support.py). A missing nginx or a
PostgreSQL that cannot start fails the tests.
"""

import concurrent.futures
import time

import pytest
from hosting_support import Browser, main_flow, text_of
from instances_support import (
    Site,
    call_next,
    create_queue,
    held_update,
    take,
    wait_for,
)

pytestmark = pytest.mark.slow

# What "at once" means across instances: the bound for a live page.
WITHIN_A_SECOND = 1.0


@pytest.fixture
def site(tmp_path, postgresql_url):
    with Site(tmp_path, postgresql_url) as site:
        yield site


def ticket_updates(token):
    return f"/api/v1/tickets/{token}/updates"


# -- one service --------------------------------------------------------------------


def test_two_instances_behind_nginx_serve_the_main_flow_and_share_sessions(site):
    flow = main_flow(site.url, "lab")
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
        pressed = call_next(b, "lab", desk)
        pressed_at = time.monotonic()
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
