"""The content engine in real browsers against real web, worker and beat processes.

An Operator (desktop) starts a content cycle for five advisors from the orchestrator's page
and watches its node in the tree run to success; a Reviewer on a phone (375 px) approves
the five posts from the queue; the daily operations page then shows them delivered.
"""

from __future__ import annotations

import datetime
import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, make_advisor, make_user

pytestmark = pytest.mark.browser

LIVE_TIMEOUT_MS = 60_000
ADVISORS = 5


@pytest.fixture(scope="module")
def cycle_world(running_system, django_db_blocker):
    """Five advisors in a segment of their own, the starter topics and rules, two people."""
    port = running_system.base_url.rsplit(":", 1)[1]
    with django_db_blocker.unblock():
        from agents.engine.compliance import ensure_default_rules
        from agents.engine.topics import ensure_starter_topics

        ensure_starter_topics()
        ensure_default_rules()
        segment = f"e2e{port}"
        advisors = [make_advisor(segment=segment) for _ in range(ADVISORS)]
        operator = make_user("Operator", username=f"e2e-cycle-operator-{port}")
        reviewer = make_user("Reviewer", username=f"e2e-cycle-reviewer-{port}")
    # A date of its own (far from other tests' data), so the queue and the page show only ours.
    day = datetime.date(2031, 1, 1) + datetime.timedelta(days=int(port) % 300)
    yield {"segment": segment, "advisors": advisors, "operator": operator, "reviewer": reviewer, "day": day}


@pytest.fixture(scope="module")
def browser(cycle_world, browser):
    """The conftest browser, started after the data exists (no ORM while Playwright runs)."""
    return browser


def sign_in(page, username: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#login-form [type=submit]")
    page.wait_for_load_state()


def test_operator_starts_a_cycle_reviewer_approves_on_a_phone_and_the_day_shows_them_delivered(
    browser, running_system, cycle_world
):
    day = cycle_world["day"].isoformat()
    errors: list[str] = []
    desk = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=running_system.base_url)
    phone = browser.new_context(viewport={"width": 375, "height": 800}, base_url=running_system.base_url)
    try:
        # --- the Operator starts the cycle and watches the tree ---------------------------
        page = desk.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda error: errors.append(f"desk: {error}"))
        sign_in(page, cycle_world["operator"].username)
        page.goto("/admin/agents/content-orchestrator/")
        page.fill("input[name=cycle_date]", day)
        page.fill("input[name=segment]", cycle_world["segment"])
        page.get_by_role("button", name="Review and start…").click()
        expect(page.get_by_text(cycle_world["segment"]).first).to_be_visible()
        page.get_by_role("button", name="Start run").click()
        expect(page).to_have_url(re.compile(r"/admin/agents/runs/\d+/"))  # the new run's own page
        page.goto("/admin/agents/")
        expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected",
                                                                       timeout=LIVE_TIMEOUT_MS)
        node = page.locator('.ag-node[data-agent="content-orchestrator"]')
        expect(node).to_have_attribute("data-state", "succeeded", timeout=LIVE_TIMEOUT_MS)
        for stage in ("content-strategist", "content-generator", "image-creator", "compliance-validator"):
            expect(page.locator(f'.ag-node[data-agent="{stage}"]')).to_have_attribute("data-state", "succeeded")

        # --- the Reviewer approves the five posts on a phone ----------------------------
        mobile = phone.new_page()
        mobile.set_default_timeout(15_000)
        mobile.on("pageerror", lambda error: errors.append(f"phone: {error}"))
        sign_in(mobile, cycle_world["reviewer"].username)
        mobile.goto(f"/admin/review/?cycle_date={day}")
        cards = mobile.locator("[data-card]")
        expect(cards).to_have_count(ADVISORS)
        for advisor in cycle_world["advisors"]:
            expect(mobile.locator("[data-card]", has_text=advisor.arn)).to_have_count(1)
        expect(cards.first.locator("img")).to_be_visible()  # the image card the engine rendered
        for _ in range(ADVISORS):
            card = cards.first
            card_id = card.get_attribute("id")
            card.get_by_role("button", name="Approve").click()
            expect(mobile.locator(f"#{card_id}")).to_have_count(0, timeout=LIVE_TIMEOUT_MS)

        # --- the day's page shows them delivered (live, then after a reload) -------------
        page.goto(f"/admin/operations/?date={day}")
        expect(page.locator('[data-stage="targeted"]')).to_have_text(str(ADVISORS))
        expect(page.locator('[data-stage="generated"]')).to_have_text(str(ADVISORS))
        expect(page.locator('[data-stage="delivered"]')).to_have_text(str(ADVISORS), timeout=LIVE_TIMEOUT_MS)
        page.reload()
        expect(page.locator('[data-stage="approved"]')).to_have_text(str(ADVISORS))
        expect(page.locator('[data-stage="pending_review"]')).to_have_text("0")
        expect(page.locator(".ops-table tbody tr", has_text="Delivered")).to_have_count(ADVISORS)
        assert not errors, errors
    except Exception:
        print(running_system.logs())
        raise
    finally:
        desk.close()
        phone.close()
