"""Stored events become typed rows: clicks, chats in conversations, receipts that move deliveries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from advisors.inbound.models import ButtonClick, ChatMessage, Conversation, EventStatus, InboundEvent
from advisors.inbound.services import claim_events, process_pending, retry_event
from advisors.models import ContentStatus, Delivery, DeliveryStatus
from opscenter.models import AuditEntry
from tests.factories import make_advisor, make_content, make_delivery, make_user
from tests.inbound.conftest import click, post_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client()


def chat(event_id, conversation, direction, at, **data):
    return {
        "id": event_id, "type": "chat_message", "occurred_at": at,
        "data": {"conversation_id": conversation, "direction": direction, "advisor_phone": "+919800000001",
                 "text": "hello", **data},
    }


def receipt(event_id, message_id, status, at="2026-11-23T08:00:00+05:30", **data):
    return {"id": event_id, "type": "delivery_receipt", "occurred_at": at,
            "data": {"provider_message_id": message_id, "status": status, **data}}


def test_a_click_is_linked_to_its_advisor_content_and_delivery(client, source):
    advisor = make_advisor(phone="+919800000001")
    content = make_content(advisor, status="scheduled")
    delivery = make_delivery(content, status="sent", provider_message_id="wamid.1")
    post_events(client, source, click("evt-1", provider_message_id="wamid.1", response_ms=850, succeeded=True))

    assert process_pending() == {"processed": 1, "failed": 0, "deferred": 0}

    row = ButtonClick.objects.get()
    assert (row.advisor, row.content, row.delivery) == (advisor, content, delivery)
    assert (row.action, row.response_ms, row.succeeded) == ("RETRIEVE_CONTENT", 850, True)
    event = InboundEvent.objects.get()
    assert event.status == EventStatus.PROCESSED and event.processed_at is not None


def test_processing_twice_makes_one_typed_row(client, source):
    make_advisor(phone="+919800000001")
    post_events(client, source, click("evt-1"))
    event = InboundEvent.objects.get()
    process_pending()
    # A second worker given the same event (e.g. a redelivered task after a lost ack).
    InboundEvent.objects.filter(pk=event.pk).update(status=EventStatus.RECEIVED)
    process_pending()

    assert ButtonClick.objects.count() == 1


def test_chat_messages_build_a_conversation_with_response_times_and_quality(client, source):
    make_advisor(phone="+919800000001")
    post_events(client, source, {"events": [
        chat("m1", "conv-1", "inbound", "2026-11-23T09:00:00+05:30"),
        chat("m2", "conv-1", "outbound", "2026-11-23T09:00:04+05:30", ai_quality_score=0.8),
        chat("m3", "conv-1", "inbound", "2026-11-23T09:01:00+05:30"),
        chat("m4", "conv-1", "outbound", "2026-11-23T09:01:02+05:30", response_ms=1900, ai_quality_score=0.6,
             ends_conversation=True),
    ]})

    process_pending()

    conversation = Conversation.objects.get()
    assert conversation.messages == 4
    assert conversation.completed_at is not None
    assert conversation.advisor.phone == "+919800000001"
    answers = list(ChatMessage.objects.filter(direction="outbound").order_by("at").values_list(
        "response_ms", "ai_quality_score"))
    assert answers == [(4000, 0.8), (1900, 0.6)]  # measured when not sent, taken as sent otherwise


def test_receipts_advance_a_delivery_and_never_move_it_back(client, source):
    content = make_content(status="scheduled")
    delivery = make_delivery(content, status="sent", provider_message_id="wamid.7")
    post_events(client, source, {"events": [
        receipt("r-read", "wamid.7", "read", at="2026-11-23T08:05:00+05:30"),
        receipt("r-delivered", "wamid.7", "delivered", at="2026-11-23T08:01:00+05:30"),
        receipt("r-failed", "wamid.7", "failed", error="too late"),
    ]})

    process_pending()

    delivery.refresh_from_db()
    content.refresh_from_db()
    assert delivery.status == DeliveryStatus.READ
    assert delivery.read_at is not None and delivery.delivered_at is not None
    assert content.status == ContentStatus.DELIVERED
    assert AuditEntry.objects.filter(action="delivery.read").count() == 1


def test_a_failed_receipt_fails_a_sent_delivery_and_its_content(client, source):
    content = make_content(status="scheduled")
    delivery = make_delivery(content, status="sent", provider_message_id="wamid.8")
    post_events(client, source, receipt("r-1", "wamid.8", "failed", error="number not on WhatsApp"))

    process_pending()

    delivery.refresh_from_db()
    content.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and "not on WhatsApp" in delivery.last_error
    assert content.status == ContentStatus.FAILED


def test_a_receipt_that_arrives_before_our_send_is_recorded_waits_and_is_applied_later(client, source):
    content = make_content(status="approved")
    delivery = make_delivery(content, status="sending", provider_message_id="wamid.9")
    post_events(client, source, receipt("r-1", "wamid.9", "delivered"))

    assert process_pending() == {"processed": 0, "failed": 0, "deferred": 1}
    event = InboundEvent.objects.get()
    assert event.status == EventStatus.RECEIVED and "not recorded as sent" in event.reason
    assert not claim_events(10)  # waiting out its back-off

    Delivery.objects.filter(pk=delivery.pk).update(status="sent")
    InboundEvent.objects.filter(pk=event.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert process_pending()["processed"] == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


def test_an_event_that_keeps_failing_ends_failed_and_a_person_can_retry_it(client, source, settings):
    settings.INBOUND_MAX_ATTEMPTS = 2
    post_events(client, source, receipt("r-1", "wamid.unknown", "delivered"))
    for _ in range(2):
        InboundEvent.objects.update(lease_until=None)
        process_pending()

    event = InboundEvent.objects.get()
    assert event.status == EventStatus.FAILED and event.attempts == 2
    assert "wamid.unknown" in event.reason

    make_delivery(make_content(status="scheduled"), status="sent", provider_message_id="wamid.unknown")
    retry_event(event, by=make_user("Operator"))
    assert process_pending()["processed"] == 1
    assert AuditEntry.objects.filter(action="inbound_event.retried").count() == 1


def test_an_event_claimed_by_a_worker_that_died_is_taken_again_after_its_lease(client, source):
    make_advisor(phone="+919800000001")
    post_events(client, source, click("evt-1"))
    claimed = claim_events(10)
    assert [e.event_id for e in claimed] == ["evt-1"]
    assert claim_events(10) == []  # held while the lease runs

    InboundEvent.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert process_pending()["processed"] == 1
    assert ButtonClick.objects.count() == 1


def test_retry_refuses_an_event_that_did_not_fail(client, source):
    from advisors.inbound.services import NotRetryable

    post_events(client, source, click("evt-1"))
    with pytest.raises(NotRetryable):
        retry_event(InboundEvent.objects.get(), by=make_user("Operator"))


def test_the_event_api_lists_and_retries_for_operators_only(source, api_client):
    InboundEvent.objects.create(source=source, event_id="e1", type="heartbeat", status=EventStatus.FAILED,
                                reason="boom")
    viewer, operator = make_user("Viewer"), make_user("Operator")

    api_client.force_authenticate(viewer)
    listed = api_client.get("/api/v1/inbound-events/?status=failed")
    assert listed.status_code == 200 and listed.json()["results"][0]["event_id"] == "e1"
    event_id = listed.json()["results"][0]["id"]
    assert api_client.post(f"/api/v1/inbound-events/{event_id}/retry").status_code == 403

    api_client.force_authenticate(operator)
    retried = api_client.post(f"/api/v1/inbound-events/{event_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == "received"
    assert api_client.post(f"/api/v1/inbound-events/{event_id}/retry").status_code == 409

    api_client.force_authenticate(make_user("Reviewer"))
    assert api_client.get("/api/v1/inbound-events/").status_code == 403


def test_an_answer_processed_before_its_question_gets_its_response_time_when_the_question_arrives(client, source):
    post_events(client, source, chat("m2", "conv-9", "outbound", "2026-11-23T09:00:03+05:30"))
    process_pending()
    post_events(client, source, chat("m1", "conv-9", "inbound", "2026-11-23T09:00:00+05:30"))
    process_pending()

    answer = ChatMessage.objects.get(direction="outbound")
    assert answer.response_ms == 3000
    conversation = Conversation.objects.get()
    assert conversation.messages == 2
    assert conversation.started_at.isoformat() == "2026-11-23T03:30:00+00:00"
