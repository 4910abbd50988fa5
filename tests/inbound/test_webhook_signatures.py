"""The inbound webhook accepts genuine events exactly once and refuses forged, stale or broken ones."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from advisors.inbound.models import EventStatus, InboundEvent, InboundSource
from advisors.inbound.services import refused_count, rotate_secret
from opscenter.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.factories import make_user
from tests.inbound.conftest import click, post_events, signed_headers

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)  # the webhook needs no CSRF token: its signature is the proof


def test_a_signed_event_is_stored_before_processing(client, source):
    response = post_events(client, source, click("evt-1"))

    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    event = InboundEvent.objects.get()
    assert (event.source, event.event_id, event.type) == (source, "evt-1", "button_click")
    assert event.payload["data"]["action"] == "RETRIEVE_CONTENT"
    assert event.status in (EventStatus.RECEIVED, EventStatus.PROCESSED)
    source.refresh_from_db()
    assert source.last_event_at is not None


def test_a_replay_answers_200_and_stores_nothing_new(client, source):
    post_events(client, source, click("evt-1"))
    again = post_events(client, source, click("evt-1"))

    assert again.status_code == 200
    assert again.json() == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert InboundEvent.objects.count() == 1


def test_a_batch_stores_each_new_event_and_counts_the_repeats(client, source):
    post_events(client, source, click("evt-1"))
    response = post_events(client, source, {"events": [click("evt-1"), click("evt-2"), click("evt-3"), click("evt-2")]})

    assert response.json() == {"accepted": 2, "duplicates": 2, "rejected": []}
    assert sorted(InboundEvent.objects.values_list("event_id", flat=True)) == ["evt-1", "evt-2", "evt-3"]


@pytest.mark.parametrize(
    "tamper, reason",
    [
        ("bad_signature", "does not match"),
        ("altered_body", "does not match"),
        ("stale", "old"),
        ("future", "future"),
        ("missing_headers", "missing"),
        ("other_secret", "does not match"),
    ],
)
def test_a_forged_or_replayed_request_is_refused_and_nothing_is_stored(client, source, tamper, reason):
    body = json.dumps(click("evt-1")).encode()
    headers = signed_headers(source.secret, body)
    ts_key = "HTTP_" + TIMESTAMP_HEADER.upper().replace("-", "_")
    sig_key = "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_")
    if tamper == "bad_signature":
        headers[sig_key] = "sha256=" + "0" * 64
    elif tamper == "altered_body":
        body = body.replace(b"RETRIEVE_CONTENT", b"UNLOCK_CONTENT")
    elif tamper == "stale":
        headers = signed_headers(source.secret, body, at=time.time() - 310)
    elif tamper == "future":
        headers = signed_headers(source.secret, body, at=time.time() + 310)
    elif tamper == "missing_headers":
        headers = {}
    elif tamper == "other_secret":
        headers = signed_headers("whsec_not-the-secret", body)

    response = client.post(f"/api/v1/webhooks/{source.slug}/", data=body, content_type="application/json", **headers)

    assert response.status_code == 401, response.content
    error = response.json()["error"]
    assert error["code"] == "signature_invalid"
    assert reason in error["message"]
    assert InboundEvent.objects.count() == 0
    assert refused_count(source.slug) == 1
    assert ts_key  # (keys built above are the ones the server reads)


def test_a_timestamp_inside_the_window_is_accepted(client, source):
    assert post_events(client, source, click("evt-1"), at=time.time() - 290).status_code == 200
    assert post_events(client, source, click("evt-2"), at=time.time() + 290).status_code == 200


def test_after_rotation_both_secrets_verify_until_the_previous_is_dropped(client, source):
    old = source.secret
    new = rotate_secret(source, by=make_user("Admin"))

    assert post_events(client, source, click("evt-old"), secret=old).status_code == 200
    assert post_events(client, source, click("evt-new"), secret=new).status_code == 200

    from advisors.inbound.services import drop_previous_secret

    drop_previous_secret(source, by=make_user("Admin"))
    assert post_events(client, source, click("evt-old-2"), secret=old).status_code == 401
    assert post_events(client, source, click("evt-new-2"), secret=new).status_code == 200


def test_a_sender_mid_rotation_may_send_two_signatures(client, source):
    new = rotate_secret(source, by=make_user("Admin"))
    body = json.dumps(click("evt-1")).encode()
    timestamp = str(int(time.time()))
    both = f"{sign('whsec_unknown', timestamp, body)}, {sign(new, timestamp, body)}"
    response = client.post(
        f"/api/v1/webhooks/{source.slug}/", data=body, content_type="application/json",
        HTTP_X_OPSCENTER_TIMESTAMP=timestamp, HTTP_X_OPSCENTER_SIGNATURE=both,
    )
    assert response.status_code == 200


def test_malformed_json_is_a_clear_400(client, source):
    response = post_events(client, source, None, body=b'{"id": "evt-1", "type": ')
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]["message"]
    assert InboundEvent.objects.count() == 0


def test_a_body_over_the_limit_is_refused_with_413(client, source, settings):
    settings.INBOUND_MAX_BODY_BYTES = 2048
    response = post_events(client, source, {"events": [click(f"evt-{i}", text="x" * 100) for i in range(30)]})
    assert response.status_code == 413
    assert InboundEvent.objects.count() == 0


def test_an_unknown_or_disabled_source_is_404(client, source):
    body = json.dumps(click("evt-1")).encode()
    response = client.post("/api/v1/webhooks/nobody/", data=body, content_type="application/json",
                           **signed_headers(source.secret, body))
    assert response.status_code == 404
    source.enabled = False
    source.save()
    assert post_events(client, source, click("evt-1")).status_code == 404


@pytest.mark.parametrize(
    "event, reason",
    [
        ({"id": "evt-x", "type": "teleport", "data": {}}, "“type” must be one of"),
        ({"id": "evt-x", "type": "button_click", "data": {"action": "DANCE", "advisor_phone": "+91"}}, "data.action"),
        ({"id": "evt-x", "type": "button_click", "data": {"action": "UNLOCK_CONTENT"}}, "advisor_phone"),
        ({"id": "evt-x", "type": "chat_message", "data": {"direction": "inbound", "advisor_arn": "ARN-1"}},
         "conversation_id"),
        ({"id": "evt-x", "type": "chat_message",
          "data": {"conversation_id": "c", "direction": "outbound", "advisor_arn": "ARN-1", "ai_quality_score": 7}},
         "ai_quality_score"),
        ({"id": "evt-x", "type": "delivery_receipt", "data": {"provider_message_id": "m", "status": "lost"}},
         "data.status"),
        ({"id": "evt-x", "type": "heartbeat", "occurred_at": "yesterday"}, "occurred_at"),
        ({"id": "evt-x", "type": "heartbeat", "occurred_at": "2026-11-23T07:45:00"}, "time zone"),
        ({"id": "evt-x", "type": "heartbeat", "data": []}, "“data” must be an object"),
    ],
)
def test_a_signed_but_invalid_event_is_kept_as_rejected_with_the_reason(client, source, event, reason):
    response = post_events(client, source, {"events": [event, click("evt-ok")]})

    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["id"] == "evt-x" and reason in body["rejected"][0]["reason"]
    stored = InboundEvent.objects.get(event_id="evt-x")
    assert stored.status == EventStatus.REJECTED and reason in stored.reason
    assert stored.payload == event


def test_an_event_without_an_id_is_rejected_once_however_often_it_is_sent(client, source):
    broken = {"type": "heartbeat"}
    first = post_events(client, source, broken).json()
    second = post_events(client, source, broken).json()

    assert len(first["rejected"]) == 1 and "“id”" in first["rejected"][0]["reason"]
    assert second == {"accepted": 0, "duplicates": 1, "rejected": []}
    assert InboundEvent.objects.filter(status=EventStatus.REJECTED).count() == 1


def test_a_source_limited_to_some_types_rejects_the_others(client, source):
    source.expected_event_types = ["delivery_receipt"]
    source.save()
    body = post_events(client, source, click("evt-1")).json()
    assert "not expected" in body["rejected"][0]["reason"]


def test_a_batch_over_the_limit_is_refused_whole(client, source, settings):
    settings.INBOUND_MAX_BATCH = 3
    response = post_events(client, source, {"events": [click(f"evt-{i}") for i in range(4)]})
    assert response.status_code == 400 and "at most 3" in response.json()["error"]["message"]
    assert InboundEvent.objects.count() == 0


@pytest.mark.parametrize("body, problem", [
    (b'{"id": "evt-1", "type": "heartbeat", "data": {"x": NaN}}', "not JSON"),
    (b'{"id": "evt-1", "type": "heartbeat", "data": {"x": Infinity}}', "not JSON"),
    (b'{"id": "evt-1\\u0000", "type": "heartbeat"}', "NUL"),
])
def test_json_that_the_database_cannot_store_is_a_clear_400(client, source, body, problem):
    response = post_events(client, source, None, body=body)
    assert response.status_code == 400 and problem in response.json()["error"]["message"]
    assert InboundEvent.objects.count() == 0


def test_a_secret_rotated_by_another_process_is_honoured_at_once(client, source):
    post_events(client, source, click("evt-1"))  # this process now keeps a copy of the source
    # Another web process rotates it: no signal reaches this one.
    InboundSource.objects.filter(pk=source.pk).update(secret="whsec_new-elsewhere", previous_secret=source.secret)

    assert post_events(client, source, click("evt-2"), secret="whsec_new-elsewhere").status_code == 200
    assert refused_count(source.slug) == 0
