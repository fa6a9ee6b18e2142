"""Two tabs of one console in Chromium: a tab kept current by live.js presses for the
customer it shows; a tab left out of date is refused instead of calling a second one."""

import pytest
from browser_support import api, create_queue, press

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("server_stays_healthy")]


def shows(page, number):
    """Wait until the console shows ``number`` as now serving, its buttons for it too."""
    page.wait_for_function(
        """number => document.querySelector('.now-serving').textContent.trim() === number
            && [...document.querySelectorAll('input[name=expected_current]')]
                .every(field => field.value === number)""",
        arg=number,
    )


def test_two_tabs_of_one_console_never_call_two_customers(new_page, server, queue_id):
    first_tab = create_queue(new_page(javascript=True), queue_id)
    for _ in range(3):
        api(server, f"/api/v1/queues/{queue_id}/tickets")
    second_tab = first_tab.context.new_page()  # the same browser: another tab
    second_tab.goto(f"/{queue_id}/serve")
    assert second_tab.locator("input[name=expected_current]").first.input_value() == ""
    press(first_tab, "Next")
    shows(second_tab, "1")  # live.js moved the second tab's buttons on with it
    press(second_tab, "Next")
    shows(second_tab, "2")
    assert second_tab.locator(".refused").is_hidden()
    shows(first_tab, "2")

    # A tab without live updates (no JavaScript), left on an old page.
    old_tab = new_page(storage_state=first_tab.context.storage_state())
    old_tab.goto(f"/{queue_id}/serve")
    press(first_tab, "Next")  # number 2 served, number 3 called
    press(old_tab, "Next")  # still shows number 2
    assert "That press did nothing" in old_tab.locator(".refused").inner_text()
    assert old_tab.locator(".now-serving").inner_text() == "3"
    status = api(server, f"/api/v1/queues/{queue_id}", method="GET")
    assert ([s["number"] for s in status["serving"]], status["waiting"]) == ([3], 0)
