"""The agent hierarchy in real browsers against real web, worker and beat processes.

An Operator opens the tree, starts test-echo with a parameter through its form and the
confirmation, and watches the node go running → succeeded with the progress bar moving:
at 375 px and at desktop size.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.browser

LIVE_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def operator(running_system, django_db_blocker):
    with django_db_blocker.unblock():
        user = make_user("Operator", username=f"e2e-operator-{running_system.base_url.rsplit(':', 1)[1]}")
    yield user
    with django_db_blocker.unblock():
        from agents.models import AgentRun

        AgentRun.objects.filter(triggered_by=user).delete()
        user.delete()


@pytest.fixture(scope="module")
def browser(operator, browser):
    """The conftest browser, started after the operator exists (no ORM while Playwright runs)."""
    return browser


@pytest.mark.parametrize("width", [375, 1280])
def test_operator_triggers_an_agent_and_watches_its_node_run_to_success(browser, running_system, operator, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=running_system.base_url)
    context.set_default_timeout(15_000)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto("/admin/login/")
        page.fill("#id_username", operator.username)
        page.fill("#id_password", PASSWORD)
        page.click("#login-form [type=submit]")
        page.goto("/admin/agents/")
        expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected",
                                                                       timeout=LIVE_TIMEOUT_MS)
        node = page.locator('.ag-node[data-agent="test-echo"]')
        node.locator(":scope > .ag-row").get_by_role("link", name="Run…").click()

        # The generated form validates: the required message is missing.
        page.get_by_role("button", name="Review and start…").click()
        expect(page.locator(".ag-error").first).to_contain_text("required")
        page.fill("input[name=message]", f"hello from {width}px")
        page.fill("input[name=steps]", "12")
        page.fill("input[name=delay]", "0.4")
        page.get_by_role("button", name="Review and start…").click()
        expect(page.get_by_text(f"hello from {width}px")).to_be_visible()
        page.get_by_role("button", name="Start run").click()

        # Back on the tree, the new run is highlighted; its node runs with a moving bar.
        expect(page).to_have_url(re.compile(r"/admin/agents/\?.*run=\d+"))
        expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected",
                                                                       timeout=LIVE_TIMEOUT_MS)
        expect(node).to_have_attribute("data-state", "running", timeout=LIVE_TIMEOUT_MS)
        bar = '.ag-node[data-agent="test-echo"] > .ag-row [role=progressbar]'
        moving = "([sel, above]) => { const v = Number(document.querySelector(sel).getAttribute('aria-valuenow')); return v > above && v < 100 ? v : null; }"
        first = page.wait_for_function(moving, arg=[bar, 0], timeout=LIVE_TIMEOUT_MS).json_value()
        page.wait_for_function(moving.replace("v < 100", "v <= 100"), arg=[bar, first], timeout=LIVE_TIMEOUT_MS)
        expect(node).to_have_attribute("data-state", "succeeded", timeout=LIVE_TIMEOUT_MS)
        expect(node.locator(":scope > .ag-row [data-field=state]")).to_have_text("Succeeded")
        assert not errors, errors
    except Exception:
        print(running_system.logs())
        raise
    finally:
        context.close()
