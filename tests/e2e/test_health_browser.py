"""The health page in a real browser at phone width, live: a check flips when its target goes down.

Web, worker and beat run as real processes (running_system); beat starts the dispatcher, the
worker runs the check against an HTTP server in this process, and the page hears the result
over the `health` topic without reloading.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.test_overview_live import LIVE_TIMEOUT_MS, log_in, open_page
from tests.health.conftest import loopback_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def watched_site(running_system, django_db_blocker):
    """A loopback HTTP server and a 5-second check of it; both removed afterwards.

    Request it before `browser` (the ORM is refused here while Playwright runs).
    """
    from monitoring.health.models import HealthCheck

    with loopback_server() as server:
        port = int(running_system.base_url.rsplit(":", 1)[1])
        with django_db_blocker.unblock():
            check = HealthCheck(name=f"Shop {port}", kind="http", url=f"{server.base}/flip", interval_seconds=5,
                                timeout_seconds=2)
            check.full_clean()
            check.save()
        try:
            yield server, check
        finally:
            with django_db_blocker.unblock():
                HealthCheck.objects.filter(pk=check.pk).delete()


def test_the_health_page_at_375px_shows_a_check_flip_down_and_up_live(watched_site, browser, running_system, tmp_path):
    server, check = watched_site
    credentials = running_system.users["viewer"]
    with open_page(browser, running_system, 375) as page:
        log_in(page, credentials.username, credentials.password)
        page.goto("/admin/health/")
        expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected",
                                                                         timeout=LIVE_TIMEOUT_MS)
        row = page.locator(f'.hc-row[data-check="{check.pk}"]')
        expect(row).to_have_attribute("data-state", "up", timeout=LIVE_TIMEOUT_MS)
        expect(row.locator('[data-field="state"]')).to_have_text("Up")
        for name in ("Database", "Redis", "Celery workers", "Celery beat"):
            expect(page.locator(".hc-row", has_text=name).first).to_have_attribute("data-state", "up",
                                                                                 timeout=LIVE_TIMEOUT_MS)
        page.evaluate("window.__sameDocument = true")

        server.flip_status = 503
        expect(row).to_have_attribute("data-state", "down", timeout=LIVE_TIMEOUT_MS)
        expect(row.locator('[data-field="state"]')).to_have_text("Down")
        expect(row.locator('[data-field="detail"]')).to_have_text("HTTP 503, expected 200")
        expect(page.locator("[data-overall]")).to_have_attribute("data-state", "down")
        expect(page.locator('[data-field="overall-title"]')).to_contain_text(re.compile(r"\d+ of \d+ checks down"))
        page.screenshot(path=tmp_path / "health-375-down.png", full_page=True)

        server.flip_status = 200
        expect(row).to_have_attribute("data-state", "up", timeout=LIVE_TIMEOUT_MS)
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded instead of updating live"
        assert row.locator(".hc-tick[data-ok=false]").count() >= 1  # the strip remembers the outage
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 376, f"the page is {scroll_width}px wide in a 375px viewport"

        page.click(f'.hc-row[data-check="{check.pk}"] .hc-title')
        expect(page.locator("[data-check-card] h2")).to_have_text(check.name)
        expect(page.locator("[data-flips] tr")).to_have_count(3)  # unknown → up → down → up
        assert page.locator("[data-run-form]").count() == 0  # a Viewer cannot run checks
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 376, f"the check page is {scroll_width}px wide in a 375px viewport"
