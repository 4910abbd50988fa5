"""The System resources page in a real browser, against real web, worker and beat processes."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import browser, chromium_path, e2e_test_database, running_system  # noqa: F401

pytestmark = pytest.mark.browser
LIVE_TIMEOUT_MS = 40_000  # processes report within seconds; beat samples every 10 s


@pytest.mark.parametrize("width", [375, 1280])
def test_a_viewer_sees_every_process_and_live_charts_on_a_phone_and_a_desktop(browser, running_system, width):  # noqa: F811
    credentials = running_system.users["viewer"]
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=running_system.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto("/admin/login/")
        page.fill("#id_username", credentials.username)
        page.fill("#id_password", credentials.password)
        page.click("#login-form [type=submit]")
        page.wait_for_load_state()
        page.goto("/admin/monitoring/system/")
        expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected", timeout=LIVE_TIMEOUT_MS)
        worker = page.locator('[data-procs="worker"] .sy-proc[data-online="true"]').first
        expect(worker).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        expect(worker).to_contain_text("Concurrency")
        others = page.locator('[data-procs="other"] .sy-proc[data-online="true"]')
        for role in ("web", "beat"):
            role_label = page.locator(".sy-role", has_text=re.compile(f"^{role}$"))
            expect(others.filter(has=role_label)).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
        # Live samples reach the charts without a reload.
        expect(page.locator('[data-chart="cpu"] [data-empty]')).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        expect(page.locator('[data-chart="process_rss"] [data-empty]')).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.get_by_role("link", name="Last day").click()
        expect(page.locator('[data-chart="cpu"] [data-empty]')).to_be_hidden(timeout=LIVE_TIMEOUT_MS)
        assert errors == []
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n\n{running_system.logs()}") from exc
    finally:
        context.close()
