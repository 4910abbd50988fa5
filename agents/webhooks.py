"""Triggering webhook agents: a signed POST to the agent's URL, one row per attempt.

The receiver checks `X-OpsCenter-Signature: sha256=<hex>`, an HMAC-SHA256 over
`<X-OpsCenter-Timestamp>.<body>` with the agent's secret, and rejects old timestamps. It
then reports back through the runs API with the run id it was given.
"""

from __future__ import annotations

import json
import time

import httpx
from django.conf import settings
from django.urls import reverse

from opscenter.net import OutboundRefused, check_outbound_url
from opscenter.signing import sign

from .models import AgentRun, WebhookAttempt


class WebhookError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent



def trigger_payload(run: AgentRun) -> dict:
    return {
        "run_id": run.pk,
        "agent": run.agent.slug,
        "params": run.params,
        "dry_run": run.dry_run,
        "attempt": run.attempt,
        "report_to": {
            "update": reverse("agentrun-detail", args=[run.pk]),
            "logs": reverse("agentrun-logs", args=[run.pk]),
        },
    }


def post_trigger(run: AgentRun, number: int) -> WebhookAttempt:
    """POST the trigger once; record the attempt; raise WebhookError when it did not land."""
    agent = run.agent
    attempt = WebhookAttempt(run=run, number=number, url=agent.webhook_url)
    body = json.dumps(trigger_payload(run), separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    started = time.monotonic()
    try:
        check_outbound_url(agent.webhook_url)
        response = httpx.post(
            agent.webhook_url,
            content=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "OpsCenter-Webhook/1",
                "X-OpsCenter-Timestamp": timestamp,
                "X-OpsCenter-Signature": sign(agent.webhook_secret, timestamp, body),
                "X-OpsCenter-Run": str(run.pk),
            },
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            follow_redirects=False,
        )
    except OutboundRefused as exc:
        attempt.error = str(exc)
        attempt.save()
        raise WebhookError(str(exc), permanent=True) from None
    except httpx.HTTPError as exc:
        attempt.error = f"{type(exc).__name__}: {exc}"
        attempt.duration_ms = int((time.monotonic() - started) * 1000)
        attempt.save()
        raise WebhookError(attempt.error, permanent=False) from None
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    attempt.status_code = response.status_code
    attempt.ok = response.is_success
    if not attempt.ok:
        attempt.error = f"HTTP {response.status_code}: {response.text[:300]}"
    attempt.save()
    if not attempt.ok:
        # A 4xx is the receiver refusing this request; sending it again will not change that,
        # except for time-outs and rate limits.
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 425, 429)
        raise WebhookError(attempt.error, permanent=permanent)
    return attempt
