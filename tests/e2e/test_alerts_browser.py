"""The alerts page in real browsers against real web, worker and beat processes.

The firing alerts are real: rules over opscenter_workers_online (≥ 1, for 0 s), a metric the
running system samples; beat starts the evaluation, the worker's cycle fires them. An
Operator on a phone (375 px) acknowledges one with a comment from its card; a Viewer's page
and sidebar badge follow over the `alerts` topic without a reload. At desktop width an
Operator acknowledges and silences from the alert's own page.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import expect

from tests.e2e.conftest import Credentials
from tests.e2e.test_overview_live import LIVE_TIMEOUT_MS, log_in, open_page
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.browser

FIRE_TIMEOUT_SECONDS = 120  # the sampler (10 s) and the evaluator (15 s) on a freshly started system


@dataclass
class FiringAlerts:
    operator: Credentials
    phone: int  # alert ids
    desktop: int


def in_own_thread(blocker, work: Callable[[], Any]) -> Any:
    """Run ORM work in a thread of its own: Django refuses it in this one while Playwright runs."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            with blocker.unblock():
                result["value"] = work()
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.fixture(scope="module")
def firing_alerts(running_system, django_db_blocker):
    """An Operator and two rules that the running system's evaluator fires; all removed afterwards.

    Request it before `browser` (the ORM is refused here while Playwright runs).
    """
    from alerts.models import Alert, Rule, Silence

    port = running_system.base_url.rsplit(":", 1)[1]
    with django_db_blocker.unblock():
        operator = make_user("Operator", username=f"e2e-oncall-{port}")
        rules = {
            where: Rule.objects.create(
                name=f"Workers online ({where}, e2e {port})", metric="opscenter_workers_online", aggregation="last",
                window_seconds=60, comparator="gte", threshold=1, for_seconds=0, severity="critical",
                summary_template="{{ value }} worker(s) online", group_wait_seconds=0,
            )
            for where in ("phone", "desktop")
        }
    try:
        deadline = time.monotonic() + FIRE_TIMEOUT_SECONDS
        fired: dict[str, int] = {}
        while len(fired) < len(rules):
            with django_db_blocker.unblock():
                for where, rule in rules.items():
                    alert = Alert.objects.filter(rule=rule, status="firing").first()
                    if alert:
                        fired[where] = alert.pk
            if len(fired) < len(rules):
                if time.monotonic() > deadline:
                    pytest.fail(f"the evaluator fired {sorted(fired)} of {sorted(rules)} within "
                                f"{FIRE_TIMEOUT_SECONDS}s\n{running_system.logs()}", pytrace=False)
                time.sleep(1)
        yield FiringAlerts(Credentials(operator.username, PASSWORD, "Operator"), fired["phone"], fired["desktop"])
    finally:
        with django_db_blocker.unblock():
            for rule in rules.values():
                rule.enabled = False
                rule.save(update_fields=["enabled"])
            alerts = Alert.objects.filter(rule__in=list(rules.values()))
            Silence.objects.filter(alert__in=alerts).delete()
            alerts.delete()
            for rule in rules.values():
                rule.delete()
            operator.delete()


@pytest.fixture(scope="module")
def browser(firing_alerts, browser):
    """The conftest browser, started after the alerts fired (no ORM while Playwright runs)."""
    return browser


def badge_count(page) -> int:
    text = page.locator("[data-nav-badge]").text_content() or ""
    return int(text) if text.strip().isdigit() else 0


def test_an_operator_acknowledges_a_firing_alert_from_a_phone_and_a_viewer_sees_it_live(
        browser, running_system, firing_alerts, django_db_blocker, tmp_path):
    viewer = running_system.users["viewer"]
    alert_id = firing_alerts.phone
    with open_page(browser, running_system, 1280) as watcher, open_page(browser, running_system, 375) as phone:
        log_in(watcher, viewer.username, viewer.password)
        watcher.goto("/admin/alerts/")
        expect(watcher.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected",
                                                                           timeout=LIVE_TIMEOUT_MS)
        watched = watcher.locator(f'.al-card[data-alert="{alert_id}"]')
        expect(watched).to_have_attribute("data-acked", "false")
        assert watched.locator('[data-act="ack"]').count() == 0  # a Viewer gets no buttons
        badge = watcher.locator("[data-nav-badge]")
        expect(badge).to_be_visible(timeout=LIVE_TIMEOUT_MS)  # the snapshot brought the count
        before = badge_count(watcher)
        assert before >= 2  # both of this module's alerts fire unacknowledged
        watcher.evaluate("window.__sameDocument = true")

        log_in(phone, firing_alerts.operator.username, firing_alerts.operator.password)
        phone.goto("/admin/alerts/")
        expect(phone.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected",
                                                                         timeout=LIVE_TIMEOUT_MS)
        card = phone.locator(f'.al-card[data-alert="{alert_id}"]')
        expect(card).to_have_attribute("data-status", "firing")
        expect(card).to_have_attribute("data-severity", "critical")
        expect(card.locator('[data-field="summary"]')).to_contain_text("worker(s) online")
        phone.evaluate("window.__sameDocument = true")

        card.locator('[data-act="ack"] > summary').click()
        comment = card.locator('[data-action="acknowledge"] textarea[name="comment"]')
        expect(comment).to_be_visible()
        comment.fill("Restarting the worker from my phone")
        button = card.locator('[data-action="acknowledge"] button[type="submit"]')
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, f"the button is off screen: {box}"
        assert box["height"] >= 44, f"the button is too small to tap: {box}"
        button.click()

        expect(card).to_have_attribute("data-acked", "true")
        expect(card.locator('[data-marker="ack"]')).to_be_visible()
        expect(card.locator('[data-field="ack-by"]')).to_have_text(firing_alerts.operator.username)
        expect(card.locator('[data-field="ack-comment"]')).to_have_text("Restarting the worker from my phone")
        expect(card.locator('[data-act="ack"]')).to_be_hidden()
        expect(phone.locator(".al-toast").first).to_contain_text("You acknowledged")
        assert phone.evaluate("window.__sameDocument === true"), "the phone's page reloaded"
        scroll_width = phone.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= 376, f"the page is {scroll_width}px wide in a 375px viewport"
        phone.screenshot(path=tmp_path / "alerts-375-acknowledged.png", full_page=True)

        # The Viewer's page heard it over the socket: the card and the badge, no reload.
        expect(watched).to_have_attribute("data-acked", "true", timeout=LIVE_TIMEOUT_MS)
        expect(watched.locator('[data-field="ack-by"]')).to_have_text(firing_alerts.operator.username)
        expect(badge).to_have_text(str(before - 1), timeout=LIVE_TIMEOUT_MS)
        assert watcher.evaluate("window.__sameDocument === true"), "the viewer's page reloaded"
        watcher.screenshot(path=tmp_path / "alerts-1280-viewer.png", full_page=True)

    def stored():
        from alerts.models import Alert

        alert = Alert.objects.select_related("acknowledged_by").get(pk=alert_id)
        return alert.acknowledged_by.username, alert.ack_comment, alert.events.filter(kind="acknowledged").count()

    assert in_own_thread(django_db_blocker, stored) == (
        firing_alerts.operator.username, "Restarting the worker from my phone", 1)


def test_at_desktop_width_an_operator_acknowledges_and_silences_from_the_alerts_own_page(
        browser, running_system, firing_alerts, django_db_blocker, tmp_path):
    alert_id = firing_alerts.desktop
    with open_page(browser, running_system, 1280) as page:
        log_in(page, firing_alerts.operator.username, firing_alerts.operator.password)
        page.goto("/admin/alerts/")
        page.locator(f'.al-card[data-alert="{alert_id}"] [data-field="title"]').click()
        expect(page).to_have_url(re.compile(rf"/admin/alerts/{alert_id}/$"))
        expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected",
                                                                        timeout=LIVE_TIMEOUT_MS)
        page.evaluate("window.__sameDocument = true")

        page.locator('[data-action="acknowledge"] textarea[name="comment"]').fill("Taking it from my desk")
        page.locator('[data-action="acknowledge"] button[type="submit"]').click()
        timeline = page.locator('[data-live-part="timeline"]')
        expect(timeline).to_contain_text("Taking it from my desk")
        expect(page.locator('[data-action="unacknowledge"]')).to_be_visible()

        page.locator('[data-act="silence"] > summary').click()
        page.locator('[data-action="silence"] select[name="duration"]').select_option("1h")
        page.locator('[data-action="silence"] textarea[name="comment"]').fill("Known: the demo rule always fires")
        page.locator('[data-action="silence"] button[type="submit"]').click()
        expect(page.locator('[data-live-part="head"] .al-m-silenced')).to_be_visible()
        expect(timeline).to_contain_text("Silenced")
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
        page.screenshot(path=tmp_path / "alert-1280-acknowledged-silenced.png", full_page=True)

        page.goto("/admin/alerts/silences/")
        expect(page.locator('[data-live-part="active"]')).to_contain_text("Known: the demo rule always fires")

    def stored():
        from alerts.models import Alert

        alert = Alert.objects.select_related("acknowledged_by", "silenced_by").get(pk=alert_id)
        return alert.acknowledged_by.username, alert.ack_comment, alert.silenced_by.comment

    assert in_own_thread(django_db_blocker, stored) == (
        firing_alerts.operator.username, "Taking it from my desk", "Known: the demo rule always fires")
