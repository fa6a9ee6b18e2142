"""The staff model in a real browser: personal invitations, revoking, and what a
servicer who leaves does with the customer they called."""

import playwright.sync_api as playwright_api
import pytest
from browser_support import (
    accept,
    contrast_problems,
    create_queue,
    invite,
    join_url,
    layout_problems,
    press,
    structure_problems,
    take_number,
)

expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("server_stays_healthy")]


def page_problems(page):
    return layout_problems(page) + structure_problems(page) + contrast_problems(page)


# Every text the page showed, recorded as it changes (live updates included).
RECORD_TEXTS = """
() => {
  window.textsSeen = [document.body.innerText];
  new MutationObserver(() => window.textsSeen.push(document.body.innerText))
    .observe(document.body, {subtree: true, childList: true, characterData: true,
                             attributes: true});
}
"""


def test_revoked_servicer_is_told_why_and_the_invite_link_no_longer_works(new_page, queue_id):
    owner = create_queue(new_page(), queue_id)
    link = invite(owner, queue_id, "Desk 2")
    expect(owner.locator(".new-invitation")).to_contain_text("It is shown only this once")
    assert page_problems(owner) == []
    invited = new_page()
    invited.goto(link)
    assert page_problems(invited) == []
    helper = accept(new_page(javascript=True), link, "Desk 2")
    expect(helper.locator(".signed-in")).to_contain_text("Signed in as Desk 2")

    owner.goto(f"/{queue_id}/manage")
    owner.get_by_role("button", name="Revoke Desk 2").click()
    expect(owner.locator(".invitations")).not_to_contain_text("Desk 2")

    # The open console notices by itself and says why.
    expect(helper.locator(".left-reason")).to_have_text(
        "The owner revoked your access to this queue.", timeout=5_000
    )
    expect(helper.locator(".now-serving")).to_have_count(0)
    # Its live update was refused (403), which is how it knew: not a problem.
    helper.problems[:] = [p for p in helper.problems if "/serve/updates" not in p]

    helper.goto(link)
    expect(helper.locator(".invitation-refused")).to_have_text(
        "The owner revoked this invitation. Ask them for a new one."
    )
    expect(helper.get_by_role("button", name="Sign in as Desk 2")).to_have_count(0)
    stranger = new_page()
    stranger.goto(link)
    expect(stranger.locator(".invitation-refused")).to_be_visible()


def test_a_called_customer_goes_back_to_waiting_first_when_the_servicer_puts_them_back(
    new_page, queue_id
):
    owner = create_queue(new_page(), queue_id)
    link = join_url(owner)
    helper = accept(new_page(), invite(owner, queue_id, "Desk 2"), "Desk 2")
    customer = new_page(javascript=True)
    assert take_number(customer, link) == 1
    assert take_number(new_page(), link) == 2
    customer.evaluate(RECORD_TEXTS)

    press(helper, "Next")
    expect(customer.locator(".status-message")).to_have_text(
        "It's your turn — go to Desk 2.", timeout=5_000
    )
    press(helper, "Sign out")
    expect(helper.locator("h1")).to_contain_text("Sign out of")
    assert page_problems(helper) == []
    press(helper, "Put #1 back at the front")
    expect(helper.locator(".left-reason")).to_have_text("You signed out.")

    expect(customer.locator(".status-message")).to_have_text("You're next.", timeout=5_000)
    expect(customer.locator(".my-number .number")).to_have_text("1")
    texts = customer.evaluate("window.textsSeen")
    assert not [t for t in texts if "You have been served" in t]
    # The owner's Next calls #1 again, first.
    owner.goto(f"/{queue_id}/serve")
    press(owner, "Next")
    expect(owner.locator(".now-serving")).to_have_text("1")
