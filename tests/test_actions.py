"""The actions called directly, without HTTP: their rules, and the refusals they raise."""

import pytest
from support import PASSWORD

from take_a_number import refusals, rules, security
from take_a_number.refusals import Refused

ADDRESS = "203.0.113.7"


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch):
    monkeypatch.setattr(security, "PBKDF2_ITERATIONS", 1000)


@pytest.fixture
def acts(app):
    return app.actions


def new_queue(acts, queue_id="cet236", name="Desk 1"):
    fields = {"queue_id": queue_id, "title": "Lab help", "name": name, "password": PASSWORD}
    return acts.create_queue(ADDRESS, lambda: (fields, None))


def refusal(call, *args, **kwargs):
    with pytest.raises(Refused) as raised:
        call(*args, **kwargs)
    return raised.value


def invited_servicer(acts, owner, name="Desk 2"):
    _invitation, code = acts.invite(owner, "cet236", {"name": name, "valid_for_hours": ""})
    return acts.sign_in("cet236", {"code": code}, ADDRESS)


def test_creating_a_queue_signs_its_creator_in_as_owner(acts):
    owner = new_queue(acts)
    assert owner["is_owner"] and owner["name"] == "Desk 1"
    assert acts.servicer(owner, "cet236") == owner


def test_a_taken_queue_id_is_refused_with_the_message_for_its_field(acts):
    new_queue(acts)
    refused = refusal(new_queue, acts)
    assert (refused.status, refused.code) == (409, "queue_exists")
    assert refused.fields == {"queue_id": refusals.QUEUE_ID_TAKEN}


def test_a_queue_with_a_short_password_is_refused_field_by_field(acts):
    fields = {"queue_id": "cet236", "title": "Lab", "name": "Desk 1", "password": "short"}
    refused = refusal(acts.create_queue, ADDRESS, lambda: (fields, None))
    assert (refused.status, refused.code, refused.message) == (400, "invalid", refusals.INVALID)
    assert set(refused.fields) == {"password"}


def test_a_body_that_cannot_be_read_still_counts_as_an_attempt_at_creating(make_app):
    acts = make_app(rate_limit_create_attempts="1/hour").actions

    def unreadable():
        raise Refused(400, "bad_request", "Send a JSON object.")

    assert refusal(acts.create_queue, ADDRESS, unreadable).status == 400
    refused = refusal(new_queue, acts)
    assert (refused.status, refused.message) == (429, refusals.TOO_MANY_ATTEMPTS)


def test_an_address_that_created_its_share_of_queues_is_told_to_wait(make_app):
    acts = make_app(rate_limit_create_queue="1/hour").actions
    new_queue(acts)
    refused = refusal(new_queue, acts, queue_id="second")
    assert (refused.status, refused.message) == (429, refusals.TOO_MANY_QUEUES)
    assert refused.retry_after > 0


def test_the_owner_signs_back_in_with_the_password_and_a_wrong_one_is_refused(acts):
    owner = new_queue(acts)
    again = acts.sign_in("cet236", {"name": "Desk 1", "password": PASSWORD}, ADDRESS)
    assert again["id"] == owner["id"]
    refused = refusal(acts.sign_in, "cet236", {"name": "Desk 1", "password": "wrong"}, ADDRESS)
    assert (refused.status, refused.code) == (401, "wrong_password")
    assert refused.message == refused.fields["password"] == refusals.WRONG_PASSWORD


def test_wrong_passwords_past_the_limit_make_the_address_wait(make_app):
    acts = make_app(rate_limit_sign_in="2/600", rate_limit_sign_in_slowed="off").actions
    new_queue(acts)
    wrong = {"name": "Desk 1", "password": "wrong"}
    for _ in range(2):
        assert refusal(acts.sign_in, "cet236", wrong, ADDRESS).status == 401
    refused = refusal(acts.sign_in, "cet236", {"name": "Desk 1", "password": PASSWORD}, ADDRESS)
    assert (refused.status, refused.message) == (429, refusals.TOO_MANY_SIGN_INS)
    assert refused.retry_after == 600


def test_signing_in_to_a_queue_that_does_not_exist_is_a_404(acts):
    refused = refusal(acts.sign_in, "nowhere", {"code": "K7P2-X9QM-4RTD"}, ADDRESS)
    assert (refused.status, refused.message) == (404, refusals.NO_QUEUE)


def test_an_invited_servicer_signs_in_with_the_code_under_the_invitations_name(acts):
    owner = new_queue(acts)
    desk = invited_servicer(acts, owner)
    assert desk["name"] == "Desk 2" and not desk["is_owner"]


def test_a_second_invitation_under_a_live_ones_name_is_refused(acts):
    owner = new_queue(acts)
    acts.invite(owner, "cet236", {"name": "Desk 2", "valid_for_hours": ""})
    refused = refusal(acts.invite, owner, "cet236", {"name": "desk 2", "valid_for_hours": ""})
    assert (refused.status, refused.fields) == (409, {"name": refusals.INVITATION_NAME_IN_USE})


def test_nobody_acts_as_a_servicer_without_signing_in_to_that_queue(acts):
    owner = new_queue(acts)
    new_queue(acts, queue_id="other")
    for actor, queue_id in ((None, "cet236"), (owner, "other")):
        refused = refusal(acts.press, actor, queue_id, "call_next")
        assert (refused.status, refused.code) == (401, "unauthorized")


def test_a_revoked_servicer_is_told_why_and_cannot_act(acts):
    owner = new_queue(acts)
    desk = invited_servicer(acts, owner)
    acts.revoke(owner, "cet236", desk["id"])
    gone = acts.actor_of_session(_Session(desk["id"]), "cet236")
    refused = refusal(acts.press, gone, "cet236", "call_next")
    assert (refused.status, refused.code) == (401, "revoked")
    assert refused.message.startswith(rules.LEFT_REASONS[rules.REVOKED])


def test_only_the_owner_may_change_the_queue(acts):
    owner = new_queue(acts)
    desk = invited_servicer(acts, owner)
    refused = refusal(acts.change, desk, "cet236", "status", {"status": "paused"})
    assert (refused.status, refused.code, refused.message) == (403, "not_owner", refusals.NOT_OWNER)
    acts.change(owner, "cet236", "status", {"status": "paused"})
    assert acts.queue("cet236")["status"] == "paused"


def test_an_owner_change_with_a_value_not_allowed_is_refused(acts):
    owner = new_queue(acts)
    refused = refusal(acts.change, owner, "cet236", "status", {"status": "gone"})
    assert (refused.status, set(refused.fields)) == (400, {"status"})


def test_a_paused_queue_gives_no_numbers_and_an_unknown_one_is_a_404(acts):
    owner = new_queue(acts)
    acts.change(owner, "cet236", "status", {"status": "paused"})
    assert refusal(acts.take, "cet236", ADDRESS).code == "not_taking"
    assert refusal(acts.take, "nowhere", ADDRESS).status == 404


def test_the_servicers_buttons_call_finish_and_recall_the_customer(acts):
    owner = new_queue(acts)
    first, second = acts.take("cet236", ADDRESS), acts.take("cet236", ADDRESS)
    _finished, called = acts.press(owner, "cet236", "call_next")
    assert called["id"] == first["id"]
    assert acts.press(owner, "cet236", "recall")["id"] == first["id"]
    acts.press(owner, "cet236", "done")
    acts.press(owner, "cet236", "call_next")
    acts.press(owner, "cet236", "no_show")
    states = {t["id"]: t["state"] for t in acts.history(owner, "cet236").tickets}
    assert states[first["id"]] == rules.SERVED
    assert states[second["id"]] != rules.CALLED


def test_a_customer_who_left_cannot_leave_again(acts):
    new_queue(acts)
    ticket = acts.take("cet236", ADDRESS)
    acts.leave(ticket["token"])
    refused = refusal(acts.leave, ticket["token"])
    assert (refused.status, refused.code) == (409, "closed")
    assert refusal(acts.leave, ticket["token"], "other").status == 404


def test_signing_out_with_a_customer_called_asks_what_became_of_them(acts):
    owner = new_queue(acts)
    ticket = acts.take("cet236", ADDRESS)
    acts.press(owner, "cet236", "call_next")
    assert refusal(acts.sign_out, owner, "cet236", customer=None).code == "say_what_became"
    assert refusal(acts.sign_out, owner, "cet236", customer="away").status == 400
    wrong_number = refusal(acts.sign_out, owner, "cet236", customer=rules.FINISH, number="99")
    assert wrong_number.status == 409
    called = acts.sign_out(owner, "cet236", customer=rules.FINISH, number=str(ticket["number"]))
    assert called["id"] == ticket["id"]
    assert acts.store.ticket_by_token(ticket["token"])["state"] == rules.SERVED


def test_the_owner_cannot_revoke_themselves_nor_a_servicer_not_signed_in(acts):
    owner = new_queue(acts)
    assert refusal(acts.revoke, owner, "cet236", owner["id"]).code == "yourself"
    assert refusal(acts.revoke, owner, "cet236", 999).status == 404
    assert refusal(acts.revoke_invitation, owner, "cet236", 999).status == 404


class _Session:
    """A session cookie naming one servicer."""

    def __init__(self, servicer_id):
        self._servicer_id = servicer_id

    def servicer_id(self, queue_id):
        return self._servicer_id
