"""The integration page: each source's status and events, retry for operators, live over `inbound`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from advisors.inbound import services
from advisors.inbound.models import EventStatus, InboundEvent, InboundSource
from opscenter.asgi import application
from tests.factories import make_user, session_cookie
from tests.inbound.conftest import click, post_events


def signed_in(role: str) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


@pytest.mark.django_db
def test_the_page_shows_each_source_with_its_status_and_events(source):
    post_events(Client(), source, {"events": [click("evt-1"), {"id": "bad", "type": "teleport"}]})
    InboundEvent.objects.create(source=source, event_id="evt-f", type="delivery_receipt",
                                status=EventStatus.FAILED, reason="No delivery has provider message id 'x'")

    page = signed_in("Viewer").get("/admin/integration/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "WhatsApp bot" in html and 'data-status="error"' in html
    assert "evt-1" in html and "“type” must be one of" in html
    assert "No delivery has provider message id" in html
    assert "Retry</button>" not in html  # viewers read; operators retry


@pytest.mark.django_db
def test_an_operator_retries_a_failed_event_from_the_page(source):
    event = InboundEvent.objects.create(source=source, event_id="evt-f", type="heartbeat", status=EventStatus.FAILED)
    operator = signed_in("Operator")
    assert "Retry</button>" in operator.get("/admin/integration/").content.decode()

    response = operator.post(f"/admin/integration/events/{event.pk}/retry/")

    assert response.status_code == 302
    event.refresh_from_db()
    assert event.status in (EventStatus.RECEIVED, EventStatus.PROCESSED)


@pytest.mark.django_db
def test_viewers_cannot_retry_and_reviewers_cannot_see_the_page(source):
    event = InboundEvent.objects.create(source=source, event_id="evt-f", type="heartbeat", status=EventStatus.FAILED)
    assert signed_in("Viewer").post(f"/admin/integration/events/{event.pk}/retry/").status_code == 403
    assert signed_in("Reviewer").get("/admin/integration/").status_code == 403
    event.refresh_from_db()
    assert event.status == EventStatus.FAILED


@pytest.mark.django_db
def test_a_source_is_unknown_then_healthy_then_down_when_silent_and_down_when_its_check_fails(source):
    now = timezone.now()
    assert services.source_status(source, failed=0, health=None, now=now)[0] == "unknown"
    source.last_event_at = now - timedelta(minutes=2)
    assert services.source_status(source, failed=0, health=None, now=now)[0] == "healthy"
    assert services.source_status(source, failed=3, health=None, now=now)[0] == "error"
    source.last_event_at = now - timedelta(minutes=11)
    assert services.source_status(source, failed=0, health=None, now=now) == ("down", "silent for more than 10 min")
    # A service that answers its health check is up even when it has had nothing to send.
    assert services.source_status(source, failed=0, health={"state": "up"}, now=now)[0] == "healthy"
    source.last_event_at = now
    assert services.source_status(source, failed=0, health={"state": "down", "url": "u"}, now=now)[0] == "down"


@pytest.mark.django_db(transaction=True)
async def test_an_open_integration_page_hears_that_events_arrived():
    viewer = await database_sync_to_async(make_user)("Viewer")
    source = await database_sync_to_async(InboundSource.objects.create)(slug="bot", name="Bot")
    cookie = await database_sync_to_async(session_cookie)(viewer)
    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=2)
    assert connected
    await communicator.receive_json_from(timeout=2)  # hello
    await communicator.send_json_to({"action": "subscribe", "topics": ["inbound"]})
    snapshot = await communicator.receive_json_from(timeout=2)
    assert snapshot["data"]["sources"] == [{"slug": "bot", "status": "unknown", "received_24h": 0}]

    await database_sync_to_async(post_events)(Client(), source, click("evt-1"))

    event = await communicator.receive_json_from(timeout=2)
    assert (event["event"], event["payload"]) == ("inbound.received", {"source": "bot"})
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_reviewer_cannot_follow_the_inbound_topic():
    reviewer = await database_sync_to_async(make_user)("Reviewer")
    cookie = await database_sync_to_async(session_cookie)(reviewer)
    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)])
    await communicator.connect(timeout=2)
    await communicator.receive_json_from(timeout=2)
    await communicator.send_json_to({"action": "subscribe", "topics": ["inbound"]})
    answer = await communicator.receive_json_from(timeout=2)
    assert (answer["type"], answer["topic"], answer["code"]) == ("error", "inbound", "forbidden")
    await communicator.disconnect()
