"""The review queue in real browsers against real web, worker and beat processes.

A reviewer on a phone (375 px) approves one item and rejects another with a note, while a
second reviewer has the same queue open on a desktop: the items leave the second page live,
over the `content` topic, and the approved one is delivered by the worker (outbox).
"""

from __future__ import annotations

import re
import time
from contextlib import ExitStack, contextmanager

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

LIVE_TIMEOUT_MS = 30_000  # worker and beat may still be starting when the first test runs
NOTE = "Remove the guaranteed-returns claim and add the risk disclaimer."


@pytest.fixture(scope="module")
def browser(review_queue_data, browser):
    """The conftest browser, started after the queue's data exists and closed before it goes."""
    return browser


@contextmanager
def open_page(browser, system, width: int, consoles: list[str]):
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=system.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", lambda message: consoles.append(f"{width}px {message.type}: {message.text}"))
    page.on("pageerror", lambda error: consoles.append(f"{width}px pageerror: {error}"))
    try:
        yield page
    finally:
        context.close()


def open_queue(page, credentials, path: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", credentials.username)
    page.fill("#id_password", credentials.password)
    page.click("#login-form [type=submit]")
    page.wait_for_load_state()
    page.goto(path)
    expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected", timeout=LIVE_TIMEOUT_MS)


def item_state(page, content_id: int) -> dict:
    response = page.request.get(f"/admin/review/state/?ids={content_id}")
    assert response.ok, response.status
    return response.json()["items"][0]


def test_reviewer_on_a_phone_approves_and_rejects_and_the_items_leave_a_second_reviewers_page(
    browser, running_system, review_queue_data, tmp_path
):
    data = review_queue_data
    phone_user, desk_user = data.reviewers
    approve_id, reject_id, keep_id = data.items["approve"], data.items["reject"], data.items["keep"]
    queue = f"/admin/review/?advisor={data.advisor_id}"
    consoles: list[str] = []
    try:
        with ExitStack() as stack:
            desk = stack.enter_context(open_page(browser, running_system, 1280, consoles))
            phone = stack.enter_context(open_page(browser, running_system, 375, consoles))
            open_queue(desk, desk_user, queue)
            open_queue(phone, phone_user, queue)
            for page in (desk, phone):
                expect(page.locator("[data-card]")).to_have_count(3)
            expect(phone.locator(f"#card-{reject_id} mark")).to_have_text("guaranteed returns")

            # Approve the first item on the phone.
            phone.locator(f"#card-{approve_id}").get_by_role("button", name="Approve").click()
            expect(phone.locator(f"#card-{approve_id}")).to_contain_text("Approved by you")
            expect(phone.locator(f"#card-{approve_id}")).to_have_count(0)
            expect(desk.locator("[data-toasts]")).to_contain_text(
                f"was approved by {phone_user.username}", timeout=LIVE_TIMEOUT_MS
            )
            expect(desk.locator(f"#card-{approve_id}")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)

            # The phone moved on to the next card and claimed it: the desk sees who has it.
            expect(desk.locator(f"#card-{reject_id} [data-claim-label]")).to_have_text(
                re.compile(rf"Being reviewed by\s+{re.escape(phone_user.username)}"), timeout=LIVE_TIMEOUT_MS
            )

            # Reject the next one: without a note the form says what is missing.
            card = phone.locator(f"#card-{reject_id}")
            card.locator("[data-open-note=reject]").click()
            note = card.get_by_role("textbox")
            expect(note).to_be_focused()
            card.get_by_role("button", name="Reject with note").click()
            expect(card.locator("[data-note-error]")).to_have_text(
                "Write a note: the writer needs to know what to change."
            )
            expect(note).to_have_attribute("aria-invalid", "true")
            note.fill(NOTE)
            card.get_by_role("button", name="Reject with note").click()
            expect(phone.locator(f"#card-{reject_id}")).to_have_count(0)
            expect(desk.locator(f"#card-{reject_id}")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)

            # The third item is untouched on both pages; the phone page fits its screen.
            for page in (desk, phone):
                expect(page.locator("[data-card]")).to_have_count(1)
                expect(page.locator(f"#card-{keep_id}")).to_be_visible()
            scroll_width = phone.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= 376, f"the phone page is {scroll_width}px wide"
            phone.screenshot(path=tmp_path / "review-phone.png", full_page=True)

            assert item_state(desk, reject_id)["status"] == "rejected"
            assert item_state(desk, reject_id)["reviewer"] == phone_user.username
            assert item_state(desk, keep_id)["status"] == "pending_review"
            # The worker sends the approved item through the outbox and marks it delivered.
            deadline = time.monotonic() + LIVE_TIMEOUT_MS / 1000
            while item_state(desk, approve_id)["status"] != "delivered" and time.monotonic() < deadline:
                time.sleep(0.3)
            assert item_state(desk, approve_id)["status"] == "delivered"
            assert not [line for line in consoles if "pageerror" in line], consoles
    except (AssertionError, PlaywrightError) as exc:
        raise AssertionError(f"{exc}\n\nbrowser console:\n{chr(10).join(consoles)}\n\n{running_system.logs()}") from exc
