"""Rate limits: kept in the database, so that they hold across processes, and
shaped so that they stop scripts without locking people out."""

import collections
import contextlib
import random
import threading

import pytest
from support import PASSWORD, create_queue, my_number, take_number, waiting
from test_api import Api
from test_owner import submit_create_form
from test_store import commits_of, takes_arriving_together
from webtest import TestApp

from take_a_number import config, limits, security
from take_a_number.store import NotTaking, Store, Take, TooManyTakes

T0 = 1_750_000_000.0
NAT = "198.51.100.7"  # a lecture hall behind one address


class Clock:
    """The app's clock, moved on by the test."""

    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


def with_clock(app):
    app.clock = Clock()
    return app.clock


def client(app, address=NAT):
    """A new browser (no cookies yet) at ``address``."""
    return TestApp(app, extra_environ={"REMOTE_ADDR": address})


@pytest.fixture
def fast_passwords(monkeypatch):
    """Passwords hashed with few iterations: these tests sign in many times."""
    monkeypatch.setattr(security, "PBKDF2_ITERATIONS", 1000)


def try_sign_in(browser, password, queue_id="cet236", status=None):
    form = browser.get(f"/{queue_id}/serve").forms[0]
    form["name"], form["password"] = "Desk 2", password
    return form.submit(status=status)


# -- the rules, without HTTP ---------------------------------------------------------


def test_waits_are_said_in_words_people_use():
    assert limits.wait_text(1) == "1 second"
    assert limits.wait_text(45) == "45 seconds"
    assert limits.wait_text(60) == "about 1 minute"
    assert limits.wait_text(3212) == "about 54 minutes"
    assert limits.wait_text(3 * 3600) == "about 3 hours"


def test_rates_are_read_as_count_per_period_and_nonsense_is_refused_at_start_up(make_app):
    assert limits.parse_rate("60/minute") == (60, 60)
    assert limits.parse_rate("20/600") == (20, 600)
    assert limits.parse_rate("off").count == 0
    with pytest.raises(config.SettingsError, match="rate_limit_take_ticket_per_address"):
        make_app(rate_limit_take_ticket_per_address="lots/minute")


def test_past_the_sign_in_limit_guessing_goes_on_at_one_check_per_30_seconds(make_app):
    app = make_app(rate_limit_sign_in="3/600", rate_limit_sign_in_slowed="1/30")
    checked = []

    def wrong_password(second):
        return lambda: checked.append(second)  # returns None: a failure

    for second in range(1800):  # a guess every second for half an hour
        app.limits.sign_in("cet236", NAT, wrong_password(second), T0 + second)

    assert checked[:4] == [0, 1, 2, 3]  # the limit, then the first slowed check at once
    assert all(b - a >= 30 for a, b in zip(checked[3:], checked[4:], strict=False))
    assert len(checked) <= 3 + 1800 // 30 + 1


def test_a_correct_password_past_the_limit_gets_in_but_buys_no_more_guesses(make_app):
    app = make_app(rate_limit_sign_in="3/600", rate_limit_sign_in_slowed="1/30")
    for second in range(3):
        assert app.limits.sign_in("cet236", NAT, lambda: None, T0 + second) == (None, 0)
    assert app.limits.sign_in("cet236", NAT, lambda: "owner", T0 + 3) == ("owner", 0)
    # Say a staff code got in: the failures still count, guessing stays slowed.
    result, wait = app.limits.sign_in("cet236", NAT, lambda: None, T0 + 4)
    assert result is None and 0 < wait <= 30


def test_failures_are_counted_per_queue_and_address(make_app):
    app = make_app(rate_limit_sign_in="2/600", rate_limit_sign_in_slowed="off")
    for second in range(2):
        app.limits.sign_in("cet236", NAT, lambda: None, T0 + second)
    assert app.limits.sign_in("cet236", NAT, lambda: "owner", T0 + 5)[1] == 600 - 5
    assert app.limits.sign_in("cet236", "192.0.2.1", lambda: "owner", T0 + 5) == ("owner", 0)
    assert app.limits.sign_in("other", NAT, lambda: "owner", T0 + 5) == ("owner", 0)


# -- every 429 says how long ------------------------------------------------------------


def test_every_api_429_carries_retry_after_and_says_how_long(make_app, fast_passwords):
    app = make_app(
        rate_limit_create_queue="1/hour",
        rate_limit_sign_in="1/600",
        rate_limit_sign_in_slowed="off",
        rate_limit_take_ticket_per_address="1/minute",
        rate_limit_token_take_ticket="1/hour",
    )
    with_clock(app)
    api = Api(app)
    body = {"queue_id": "lab", "title": "Lab help", "password": PASSWORD, "name": "Desk 1"}
    kiosk = api("post", "/queues", json=body, status=201).json["token"]
    api("post", "/queues/lab/tickets", status=201)
    api("post", "/queues/lab/tickets", token=kiosk, status=201)
    wrong = {"name": "Desk 2", "password": "not the password"}
    right = dict(wrong, password=PASSWORD)
    api("post", "/queues/lab/servicers", json=wrong, status=401)

    refusals = [
        (api("post", "/queues", json=dict(body, queue_id="lab2"), status=429), 3600),
        (api("post", "/queues/lab/tickets", status=429), 60),
        (api("post", "/queues/lab/servicers", json=right, status=429), 600),
        (api("post", "/queues/lab/tickets", token=kiosk, status=429), 3600),
    ]
    for refused, seconds in refusals:
        assert refused.headers["Retry-After"] == str(seconds)
        error = refused.json["error"]
        assert error["code"] == "rate_limited" and error["retry_after"] == seconds
        assert f"Please wait {limits.wait_text(seconds)} and try again." in error["message"]


def test_an_api_body_that_is_no_json_object_counts_as_an_attempt_at_creating(make_app):
    app = make_app(rate_limit_create_attempts="1/hour")
    with_clock(app)
    api = Api(app)
    api("post", "/queues", json=["not", "an", "object"], status=400)
    body = {"queue_id": "lab", "title": "Lab help", "password": PASSWORD, "name": "Desk 1"}
    assert api("post", "/queues", json=body, status=429).headers["Retry-After"] == "3600"


def test_every_page_429_carries_retry_after_and_says_how_long(make_app, fast_passwords):
    app = make_app(
        rate_limit_take_ticket="1/minute",
        rate_limit_create_attempts="1/hour",
        rate_limit_sign_in="1/600",
        rate_limit_sign_in_slowed="off",
    )
    with_clock(app)
    owner = client(app)
    create_queue(owner)
    customer = client(app)
    ticket = take_number(customer)
    leave = next(f for f in ticket.forms.values() if f.action.endswith("/leave"))
    leave.submit().follow()  # takes, and leaves the line
    refused = [
        customer.get("/cet236").forms[0].submit(status=429),
        submit_create_form(owner, status=429, queue_id="second"),
    ]
    try_sign_in(client(app), "not the password", status=400)
    refused.append(try_sign_in(client(app), PASSWORD, status=429))
    for page, seconds in zip(refused, (60, 3600, 600), strict=True):
        assert page.headers["Retry-After"] == str(seconds)
        assert f"Please wait {limits.wait_text(seconds)}" in page


# -- taking numbers -----------------------------------------------------------------------


def test_dropping_cookies_does_not_get_round_the_limit_on_taking_numbers(make_app):
    app = make_app(rate_limit_take_ticket_per_address="5/minute")
    clock = with_clock(app)
    create_queue(client(app, "192.0.2.1"))
    create_queue(client(app, "192.0.2.1"), "other")
    for _ in range(5):
        take_number(client(app))  # a new browser every time: no cookie kept
    refused = client(app).get("/cet236").forms[0].submit(status=429)
    assert refused.headers["Retry-After"] == "60"
    assert "Please wait about 1 minute" in refused
    assert waiting(client(app)) == 5
    # Another address, and another queue from this one, are not held back.
    assert my_number(take_number(client(app, "192.0.2.2"))) == 6
    assert my_number(take_number(client(app), "other")) == 1
    clock.now += 60
    assert my_number(take_number(client(app))) == 7


def test_numbers_taken_over_the_api_count_with_the_pages_against_the_address(make_app):
    app = make_app(rate_limit_take_ticket_per_address="2/minute", rate_limit_take_ticket="off")
    with_clock(app)
    create_queue(client(app, "192.0.2.1"))
    take_number(client(app))
    client(app).post("/api/v1/queues/cet236/tickets", status=201)
    assert client(app).post("/api/v1/queues/cet236/tickets", status=429).json["error"]
    client(app).get("/cet236").forms[0].submit(status=429)


def kiosk_token(app, queue_id="cet236", name="Kiosk"):
    """The owner creates the queue over the API and signs in a kiosk; its bearer token."""
    api = Api(app)
    body = {"queue_id": queue_id, "title": "Lab help", "password": PASSWORD, "name": "Desk 1"}
    owner = api("post", "/queues", json=body, status=201).json["token"]
    staff = {"name": name}
    return api("post", f"/queues/{queue_id}/tokens", json=staff, token=owner, status=201).json[
        "token"
    ]


def take_with(app, token, queue_id="cet236", status=201, address=NAT):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client(app, address).post(
        f"/api/v1/queues/{queue_id}/tickets", headers=headers, status=status
    )


def test_a_kiosk_token_is_not_held_back_by_the_customers_behind_its_address(make_app):
    app = make_app(
        rate_limit_take_ticket_per_address="2/minute", rate_limit_token_take_ticket="5/minute"
    )
    clock = with_clock(app)
    kiosk = kiosk_token(app)
    take_number(client(app))
    take_number(client(app))
    client(app).get("/cet236").forms[0].submit(status=429)  # the customers, at the limit
    for _ in range(5):
        take_with(app, kiosk)  # the kiosk behind the same address is not
    refused = take_with(app, kiosk, status=429)
    assert refused.headers["Retry-After"] == "60"
    assert refused.json["error"]["message"].startswith(
        "Too many numbers were taken with this token."
    )
    # Nor did the kiosk's numbers count against the customers'.
    clock.now += 60
    take_number(client(app))
    take_number(client(app))
    take_with(app, None, status=429)
    take_with(app, kiosk)


def test_a_token_that_is_no_signed_in_servicers_of_the_queue_counts_as_none(make_app):
    app = make_app(
        rate_limit_take_ticket_per_address="1/minute", rate_limit_token_take_ticket="5/minute"
    )
    with_clock(app)
    kiosk = kiosk_token(app)
    other = kiosk_token(app, "other")
    take_with(app, "not-a-token")
    for token in ("not-a-token", other):
        take_with(app, token, status=429)
    api = Api(app)
    api("delete", "/queues/cet236/servicers/me", token=kiosk)
    take_with(app, kiosk, status=429)  # signed out: the address's limit again


def test_a_token_keeps_its_count_across_app_instances(make_app):
    limited = {"rate_limit_token_take_ticket": "3/minute"}
    one, two = make_app(**limited), make_app(**limited)
    with_clock(one), with_clock(two)
    kiosk = kiosk_token(one)
    take_with(one, kiosk)
    take_with(two, kiosk)
    take_with(one, kiosk, address="192.0.2.9")  # from anywhere: counted per token
    take_with(two, kiosk, status=429)
    take_with(one, kiosk, status=429)


def test_a_take_the_queue_refuses_does_not_count_against_the_token(make_app):
    app = make_app(rate_limit_token_take_ticket="1/minute")
    with_clock(app)
    kiosk = kiosk_token(app)
    owner = Api(app)
    headers = {"Authorization": f"Bearer {kiosk}"}
    status = {"status": "paused"}
    login = owner(
        "post", "/queues/cet236/servicers", json={"name": "Owner", "password": PASSWORD}, status=201
    )
    owner("post", "/queues/cet236/status", json=status, token=login.json["token"])
    client(app).post("/api/v1/queues/cet236/tickets", headers=headers, status=409)
    owner("post", "/queues/cet236/status", json={"status": "open"}, token=login.json["token"])
    take_with(app, kiosk)


def test_a_browser_over_its_limit_still_gets_its_own_ticket_back(make_app):
    app = make_app(rate_limit_take_ticket="1/minute", rate_limit_take_ticket_per_address="1/minute")
    with_clock(app)
    create_queue(client(app, "192.0.2.1"))
    customer = client(app)
    ticket = take_number(customer)
    customer.set_cookie("tan_ticket_cet236", "")  # the ticket cookie lost, the session kept
    assert take_number(customer).request.path == ticket.request.path


def take_limits(browser=0, address=0, period=60):
    return {"browser": (browser, period), "address": (address, period)}


def test_takes_written_together_keep_the_line_limit(database):
    store = Store(database)
    store.migrate()
    store.create_queue("full", "Full", "not-a-real-hash", T0)
    store.set_options("full", T0, "", 4, "end")
    commits = commits_of(store)
    # One take written alone while the others line up, then the rest together:
    # one statement (the takes it refused write nothing alone either).
    results = takes_arriving_together(store, [("full", f"t{i}", f"b{i}") for i in range(10)])

    assert len(commits) == 1 + 1
    taken = [t for t in results.values() if isinstance(t, dict)]
    assert sorted(t["number"] for t in taken) == [1, 2, 3, 4]
    assert sum(isinstance(t, NotTaking) for t in results.values()) == 6


def test_takes_from_one_address_written_together_stop_at_its_limit(database):
    store = Store(database, take_limits=take_limits(address=3))
    store.migrate()
    store.create_queue("busy", "Busy", "not-a-real-hash", T0)
    results = {}
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_take, args=(store, "busy", f"t{i}", f"b{i}", "nat", results, lock))
        for i in range(10)
    ]
    with store.immediate("busy", shown=False):  # the takes line up behind it, then go together
        for thread in threads:
            thread.start()
        while store.take_line.waiting() < 9:
            threading.Event().wait(0.01)
    for thread in threads:
        thread.join(10)
    taken = [t for t in results.values() if isinstance(t, dict)]
    assert sorted(t["number"] for t in taken) == [1, 2, 3]
    refused = [t for t in results.values() if isinstance(t, TooManyTakes)]
    assert len(refused) == 7 and all(0 < r.retry_after <= 60 for r in refused)


def _take(store, queue_id, token, browser, address, results, lock, barrier=None):
    if barrier is not None:
        barrier.wait(10)
    try:
        result = store.take_ticket(queue_id, token, T0 + 1, browser=browser, address=address)
    except (NotTaking, TooManyTakes) as refusal:
        result = refusal
    finally:
        store.release()
    with lock:
        results[token] = result


def test_line_and_address_limits_hold_under_concurrent_takes_in_two_processes(database):
    path = database
    stores = [Store(path, take_limits=take_limits(address=15)) for _ in range(2)]
    stores[0].migrate()
    for queue_id in ("full", "busy"):
        stores[0].create_queue(queue_id, queue_id, "not-a-real-hash", T0)
    stores[0].set_options("full", T0, "", 10, "end")
    results, lock = {}, threading.Lock()
    requests = [
        (store, queue_id, f"{queue_id}-{n}-{i}", f"browser-{n}-{i}", "one-nat")
        for n, store in enumerate(stores)
        for queue_id in ("full", "busy")
        for i in range(20)
    ]
    barrier = threading.Barrier(len(requests))
    threads = [
        threading.Thread(target=_take, args=(*request, results, lock, barrier))
        for request in requests
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    taken = collections.Counter(t["queue_id"] for t in results.values() if isinstance(t, dict))
    assert taken == {"full": 10, "busy": 15}
    for queue_id in ("full", "busy"):
        numbers = [
            row[0]
            for row in stores[0].db.execute(
                "SELECT number FROM tickets WHERE queue_id = ? ORDER BY number", (queue_id,)
            )
        ]
        assert numbers == list(range(1, taken[queue_id] + 1))
    for store in stores:
        store.close_all()


# -- signing in -------------------------------------------------------------------------


def test_the_owner_sharing_the_guessers_address_gets_in_after_a_short_wait(
    make_app, fast_passwords
):
    app = make_app(rate_limit_sign_in="3/600")  # slowed: the default, one per 30 s
    clock = with_clock(app)
    create_queue(client(app, "192.0.2.1"))
    for attempt in range(4):  # the limit, and the first slowed check
        try_sign_in(client(app), f"guess {attempt}", status=400)
    clock.now += 1
    refused = try_sign_in(client(app), PASSWORD, status=429)
    assert int(refused.headers["Retry-After"]) == 29
    clock.now += 29
    assert "Now serving" in try_sign_in(client(app), PASSWORD, status=303).follow()


def test_guessing_one_queue_does_not_slow_signing_in_to_another_or_from_elsewhere(
    make_app, fast_passwords
):
    app = make_app(rate_limit_sign_in="2/600", rate_limit_sign_in_slowed="off")
    with_clock(app)
    create_queue(client(app, "192.0.2.1"))
    create_queue(client(app, "192.0.2.1"), "other")
    for attempt in range(2):
        try_sign_in(client(app), f"guess {attempt}", status=400)
    try_sign_in(client(app), PASSWORD, status=429)
    try_sign_in(client(app, "192.0.2.9"), PASSWORD, status=303)
    try_sign_in(client(app), PASSWORD, queue_id="other", status=303)


# -- creating queues ------------------------------------------------------------------------


def test_mistakes_in_the_form_do_not_count_toward_the_creation_limit(make_app):
    app = make_app(rate_limit_create_queue="2/hour")
    with_clock(app)
    owner = client(app)
    for _ in range(5):
        assert "at least 8 characters" in submit_create_form(owner, password="short").text
    create_queue(owner, "first")
    submit_create_form(owner, queue_id="first")  # taken: does not count either
    create_queue(owner, "second")
    submit_create_form(owner, status=429, queue_id="third")


def test_over_the_creation_limit_the_form_keeps_what_was_typed_and_says_the_wait_in_minutes(
    make_app,
):
    app = make_app(rate_limit_create_queue="1/hour")
    clock = with_clock(app)
    owner = client(app)
    create_queue(owner, "first")
    clock.now += 388
    page = submit_create_form(owner, status=429, queue_id="second", title="Lab 2", name="Desk 9")
    assert page.headers["Retry-After"] == "3212"
    assert "Please wait about 54 minutes before creating another." in page
    form = page.forms[0]
    assert (form["queue_id"].value, form["title"].value, form["name"].value) == (
        "second",
        "Lab 2",
        "Desk 9",
    )
    assert form["password"].value == ""
    clock.now += 3212
    create_queue(owner, "second")


def test_every_attempt_at_creating_counts_toward_the_higher_limit_on_attempts(make_app):
    app = make_app(rate_limit_create_attempts="3/hour")
    with_clock(app)
    owner = client(app)
    for _ in range(3):
        submit_create_form(owner, password="short")
    refused = submit_create_form(owner, status=429, queue_id="fine")
    assert "Too many attempts" in refused and refused.headers["Retry-After"] == "3600"


# -- across processes, and what is stored -----------------------------------------------------


def test_two_app_instances_on_one_database_file_share_every_limit(make_app, fast_passwords):
    limited = {
        "rate_limit_create_queue": "2/hour",
        "rate_limit_take_ticket_per_address": "2/minute",
        "rate_limit_sign_in": "1/600",
        "rate_limit_sign_in_slowed": "off",
    }
    one, two = make_app(**limited), make_app(**limited)
    with_clock(one), with_clock(two)
    assert one.store is not two.store
    create_queue(client(one), "first")
    create_queue(client(two), "second")
    submit_create_form(client(one), status=429, queue_id="third")
    take_number(client(one), "first")
    take_number(client(two), "first")
    client(one).get("/first").forms[0].submit(status=429)
    try_sign_in(client(one), "a guess", queue_id="first", status=400)
    try_sign_in(client(two), PASSWORD, queue_id="first", status=429)


@pytest.mark.sqlite_only  # the same statements on PostgreSQL; SQLite's dump reads every byte
def test_the_database_never_holds_a_client_address(make_app, fast_passwords):
    app = make_app(
        rate_limit_create_queue="5/hour",
        rate_limit_take_ticket="5/minute",
        rate_limit_take_ticket_per_address="5/minute",
        rate_limit_sign_in="5/600",
    )
    with_clock(app)
    create_queue(client(app))
    take_number(client(app))
    try_sign_in(client(app), "a guess", status=400)
    dump = "\n".join(app.store.db.conn.iterdump())
    assert NAT not in dump
    assert app.limits.subject(NAT) in dump  # what stands for it instead


def test_a_ticket_forgets_its_address_once_it_no_longer_counts(make_app):
    app = make_app(rate_limit_take_ticket_per_address="5/minute")
    clock = with_clock(app)
    create_queue(client(app, "192.0.2.1"))
    take_number(client(app))
    clock.now += 61
    take_number(client(app))
    addresses = [row[0] for row in app.store.db.execute("SELECT address FROM tickets")]
    assert addresses == [None, app.limits.subject(NAT)]


def test_takes_written_together_never_pass_a_limit_and_refuse_only_what_one_binds(database):
    """Random batches against random limits and earlier tickets: whatever the mix,
    no limit is passed, numbers stay gapless, and every refused take is one that a
    limit (or the line's maximum) still refuses at the end."""
    rng = random.Random(10)
    for case in range(150):
        address_limit, browser_limit = rng.choice([0, 1, 2, 4]), rng.choice([0, 1, 2])
        store = Store(  # each case a queue of its own, in one database
            database, take_limits=take_limits(browser=browser_limit, address=address_limit)
        )
        store.migrate()
        queue_id, max_waiting = f"q{case}", rng.choice([None, 2, 5, 9])
        store.create_queue(queue_id, "Q", "not-a-real-hash", T0)
        store.set_options(queue_id, T0, "", max_waiting, "end")
        addresses, browsers = ["a", "b", "c", None], [f"b{i}" for i in range(8)] + [None]
        for i in range(rng.randrange(4)):  # earlier tickets, still within the period
            with contextlib.suppress(NotTaking, TooManyTakes):
                store.take_ticket(queue_id, f"{case}-early-{i}", T0, rng.choice(browsers), "a")
        if store.ticket_by_token(f"{case}-early-0"):
            store.leave(f"{case}-early-0", T0)  # left: still counts toward the limits, not the line
        batch = [
            Take(queue_id, f"{case}-t{i}", T0 + 1, rng.choice(browsers), rng.choice(addresses))
            for i in range(rng.randrange(2, 25))
        ]
        store.take_line.write(batch)  # all at once, as the line writes what came together

        tickets = store.engine.rows("SELECT * FROM tickets WHERE queue_id = ?", (queue_id,))
        assert sorted(t["number"] for t in tickets) == list(range(1, len(tickets) + 1)), case
        waiting = [t for t in tickets if t["state"] == "waiting"]
        if max_waiting:
            assert len(waiting) <= max_waiting
        counts = {
            column: collections.Counter(t[column] for t in tickets if t[column] is not None)
            for column in ("browser", "address")
        }
        for column, limit in (("browser", browser_limit), ("address", address_limit)):
            if limit:
                assert max(counts[column].values(), default=0) <= limit, (case, column)
        for take in batch:
            if take.ticket is not None:
                assert take.ticket["token"] in {t["token"] for t in tickets}
                continue
            assert isinstance(take.error, NotTaking | TooManyTakes), (case, take.error)
            full = bool(max_waiting) and len(waiting) >= max_waiting
            over_browser = browser_limit and counts["browser"][take.browser] >= browser_limit
            over_address = address_limit and counts["address"][take.address] >= address_limit
            assert full or over_browser or over_address, case
        store.close_all()
