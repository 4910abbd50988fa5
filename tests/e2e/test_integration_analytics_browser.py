"""The integration and analytics pages in a real browser, at phone and desktop width.

The messaging service is played by this process: it signs events and posts them to the
running web process; the worker processes them. An Admin watches a new event arrive on the
integration page without reloading, retries a failed one, and reads the week's figures.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from opscenter.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.e2e.test_overview_live import LIVE_TIMEOUT_MS, WIDTHS, log_in, open_page

pytestmark = pytest.mark.browser


def send(base_url: str, slug: str, secret: str, events: list[dict]) -> dict:
    body = json.dumps({"events": events}).encode()
    timestamp = str(int(time.time()))
    response = httpx.post(f"{base_url}/api/v1/webhooks/{slug}/", content=body, timeout=30, headers={
        "Content-Type": "application/json", TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def engagement(running_system, django_db_blocker):
    """A source, a delivered post with clicks and a chat (processed by the worker), a failed event, the rollups.

    Request it before `browser` (the ORM is refused here while Playwright runs).
    """
    from advisors.inbound.models import EventStatus, InboundEvent, InboundSource
    from agents.engine.analytics import today
    from agents.engine.services import compute_rollup
    from tests.factories import make_advisor, make_content, make_delivery

    slug = f"bot-{uuid.uuid4().hex[:6]}"
    with django_db_blocker.unblock():
        source = InboundSource.objects.create(slug=slug, name="WhatsApp bot")
        advisor = make_advisor()
        content = make_content(advisor, status="scheduled", cycle_date=today(), title="Why SIPs beat timing")
        make_delivery(content, status="sent", provider_message_id=f"wamid.{slug}")
        for width in WIDTHS:  # one failed event for each width's test to retry
            InboundEvent.objects.create(source=source, event_id=f"stuck-{width}", type="heartbeat",
                                        status=EventStatus.FAILED, reason="Simulated: the database was away")
    answer = send(running_system.base_url, slug, source.secret, [
        {"id": "c1", "type": "button_click", "data": {"action": "RETRIEVE_CONTENT", "advisor_phone": advisor.phone,
                                                      "content_id": content.pk, "response_ms": 900, "succeeded": True}},
        {"id": "r1", "type": "delivery_receipt", "data": {"provider_message_id": f"wamid.{slug}", "status": "read"}},
        {"id": "m1", "type": "chat_message", "data": {"conversation_id": "k1", "direction": "inbound",
                                                      "advisor_phone": advisor.phone, "text": "Can I share it?"}},
        {"id": "m2", "type": "chat_message", "data": {"conversation_id": "k1", "direction": "outbound",
                                                      "advisor_phone": advisor.phone, "text": "Yes.",
                                                      "response_ms": 1500, "ai_quality_score": 0.9}},
    ])
    assert answer["accepted"] == 4
    deadline = time.monotonic() + 60
    with django_db_blocker.unblock():
        while InboundEvent.objects.filter(source=source, status=EventStatus.PROCESSED).count() < 4:
            assert time.monotonic() < deadline, f"the worker did not process the events\n{running_system.logs()}"
            time.sleep(0.2)
        compute_rollup(today())
    yield {"source": source, "content": content}
    with django_db_blocker.unblock():
        InboundEvent.objects.filter(source=source).delete()


@pytest.mark.parametrize("width", WIDTHS)
def test_an_admin_watches_events_arrive_and_retries_a_failed_one(engagement, browser, running_system, width):
    source = engagement["source"]
    credentials = running_system.users["admin"]
    with open_page(browser, running_system, width) as page:
        log_in(page, credentials.username, credentials.password)
        page.goto("/admin/integration/")
        expect(page.locator("[data-live-indicator]")).to_have_attribute("data-state", "connected",
                                                                         timeout=LIVE_TIMEOUT_MS)
        card = page.locator(f'.ib-source[data-source="{source.slug}"]')
        expect(card).to_have_attribute("data-status", "error")  # a failed event waits for a person
        expect(card.get_by_text("Simulated: the database was away").first).to_be_hidden()  # folded until opened
        page.evaluate("window.__sameDocument = true")

        event_id = f"live-{width}"
        send(running_system.base_url, source.slug, source.secret, [{"id": event_id, "type": "heartbeat"}])
        expect(card.get_by_text(event_id, exact=True)).to_be_visible(timeout=LIVE_TIMEOUT_MS)
        assert page.evaluate("window.__sameDocument === true"), "the page reloaded instead of updating live"

        stuck = card.locator("[data-failed-events] .ib-event", has_text=f"stuck-{width}")
        stuck.locator("summary").click()
        expect(stuck.get_by_text("Simulated: the database was away")).to_be_visible()
        stuck.get_by_role("button", name="Retry").click()
        expect(page.get_by_text(f"Event stuck-{width} is queued for processing again")).to_be_visible()
        expect(page.locator(f'.ib-source[data-source="{source.slug}"] [data-failed-events] .ib-event',
                            has_text=f"stuck-{width}")).to_have_count(0)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width + 1, f"the page is {scroll_width}px wide in a {width}px viewport"


@pytest.mark.parametrize("width", WIDTHS)
def test_the_analytics_page_shows_the_weeks_funnel_and_engagement(engagement, browser, running_system, width):
    credentials = running_system.users["viewer"]
    with open_page(browser, running_system, width) as page:
        log_in(page, credentials.username, credentials.password)
        page.goto("/admin/analytics/?period=week")
        expect(page.locator('.an-tile[data-key="clicks"] .an-tile-value')).not_to_have_text("0")
        expect(page.locator('.an-tile[data-key="read_rate"] .an-tile-value')).not_to_have_text("—")
        expect(page.locator(".an-funnel li", has_text="Clicked")).to_be_visible()
        expect(page.get_by_role("link", name="Why SIPs beat timing")).to_be_visible()
        expect(page.locator('canvas[data-chart="clicks"]')).to_be_visible()
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width + 1, f"the page is {scroll_width}px wide in a {width}px viewport"
        with page.expect_download() as download:
            page.get_by_role("link", name="Export CSV").click()
        assert download.value.suggested_filename.startswith("opscenter-analytics-")
