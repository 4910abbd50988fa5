from __future__ import annotations

import json
import time

import pytest

from opscenter.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


@pytest.fixture
def source(db):
    from advisors.inbound.models import InboundSource

    return InboundSource.objects.create(slug="whatsapp-bot", name="WhatsApp bot")


def signed_headers(secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    """Return the headers a genuine sender puts on `body` (as Django test-client extras)."""
    timestamp = str(int(time.time() if at is None else at))
    return {
        "HTTP_" + TIMESTAMP_HEADER.upper().replace("-", "_"): timestamp,
        "HTTP_" + SIGNATURE_HEADER.upper().replace("-", "_"): sign(secret, timestamp, body),
    }


def post_events(client, source, document, *, secret: str | None = None, at: float | None = None, body=None):
    """POST a signed document to the source's webhook URL, as the messaging service would."""
    raw = body if body is not None else json.dumps(document).encode()
    return client.post(
        f"/api/v1/webhooks/{source.slug}/", data=raw, content_type="application/json",
        **signed_headers(secret or source.secret, raw, at=at),
    )


def click(event_id: str, **data) -> dict:
    payload = {"action": "RETRIEVE_CONTENT", "advisor_phone": "+919800000001", **data}
    return {"id": event_id, "type": "button_click", "occurred_at": "2026-11-23T07:45:00+05:30", "data": payload}


from tests.agents.conftest import agent_worker, worker  # noqa: E402, F401  (a real Celery worker, for these tests too)
