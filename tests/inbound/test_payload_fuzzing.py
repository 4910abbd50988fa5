"""Whatever a signed sender puts in the body, the webhook answers 2xx or a clear 4xx, never 5xx."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisors.inbound.models import EventStatus, InboundEvent
from advisors.inbound.services import process_pending
from tests.inbound.conftest import post_events

pytestmark = pytest.mark.django_db

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12), inner, max_size=4), max_leaves=12)
known = st.sampled_from(["button_click", "chat_message", "delivery_receipt", "heartbeat"])
data_keys = st.sampled_from([
    "action", "advisor_phone", "advisor_arn", "content_id", "provider_message_id", "response_ms", "succeeded",
    "conversation_id", "direction", "text", "ai_quality_score", "ends_conversation", "status", "error",
])
data_values = st.sampled_from([
    "RETRIEVE_CONTENT", "UNLOCK_CONTENT", "inbound", "outbound", "read", "failed", "+919800000001", "ARN-1",
]) | json_values
events = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=40) | json_values, "type": known | json_values},
    optional={
        "occurred_at": st.sampled_from(["2026-11-23T07:45:00+05:30", "2026-11-23T07:45:00", "now"]) | json_values,
        "data": st.dictionaries(data_keys, data_values, max_size=8) | json_values,
    },
)
documents = events | st.fixed_dictionaries({"events": st.lists(events, min_size=0, max_size=5) | json_values}) | json_values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents)
def test_any_signed_document_gets_an_answer_below_500_and_processing_never_crashes(source, document):
    response = post_events(Client(), source, document)

    assert response.status_code < 500, response.content
    if response.status_code == 200:
        body = response.json()
        assert set(body) == {"accepted", "duplicates", "rejected"}
    else:
        assert response.json()["error"]["message"]
    process_pending()
    assert not InboundEvent.objects.filter(status=EventStatus.PROCESSING).exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_signed_byte_string_gets_an_answer_below_500(source, raw):
    response = post_events(Client(), source, None, body=raw)
    assert response.status_code < 500, response.content
    if response.status_code != 200:
        assert json.loads(response.content)["error"]["code"]
