"""Delivery transports: how approved content reaches an advisor.

A transport's `send()` returns Sent or raises TransportError, marked permanent (do not
retry) or retryable (optionally with the `retry_after` the channel asked for). Transports
only talk to the channel; the attempt ledger, claiming and back-off live in
advisors.services.deliver.

- outbox: records the message in the database as a real channel would receive it (default).
- webhook: a signed JSON POST to DELIVERY_WEBHOOK_URL (same signature scheme as webhook agents).
- whatsapp: the WhatsApp Cloud API (a template, an image with a caption, or a text message).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from django.conf import settings

from opscenter.net import OutboundRefused, check_outbound_url
from opscenter.signing import sign

from .models import Content, Delivery, OutboxMessage


class TransportError(Exception):
    """The channel did not take the message; `permanent` says whether trying again can help."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after  # seconds the channel asked us to wait (Retry-After)
        self.http_status = http_status


@dataclass
class Sent:
    provider_message_id: str
    delivered: bool  # the channel confirmed delivery already (the outbox does)
    http_status: int | None = None


class Transport(ABC):
    name = ""

    @abstractmethod
    def send(self, delivery: Delivery) -> Sent:
        """Send the delivery's content to its recipient."""


class OutboxTransport(Transport):
    """Keeps the message in the database (OutboxMessage) and counts it delivered."""

    name = "outbox"

    def send(self, delivery: Delivery) -> Sent:
        content = delivery.content
        message, _ = OutboxMessage.objects.get_or_create(
            delivery=delivery,
            defaults={
                "recipient": delivery.recipient,
                "payload": {
                    "title": content.title,
                    "body": content.body,
                    "image": content.image.url if content.image else None,
                    "advisor_arn": content.advisor.arn,
                },
            },
        )
        return Sent(provider_message_id=f"outbox-{message.pk}-{uuid.uuid4().hex[:8]}", delivered=True)


# --- shared HTTP helpers -------------------------------------------------------------------------


def http_client(timeout: float) -> httpx.Client:
    """Return the HTTP client transports send with (tests swap in an httpx.MockTransport here)."""
    return httpx.Client(timeout=timeout, follow_redirects=False)


# Statuses that say "not now" rather than "never": time-outs, too early, rate limits.
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def absolute_image_url(content: Content) -> str | None:
    """Return a link outside services can fetch the content's image from, or None."""
    if not content.image:
        return None
    url = content.image.url
    if url.startswith(("http://", "https://")):
        return url  # a storage that serves from its own host (S3, a CDN)
    base = settings.PUBLIC_BASE_URL
    return f"{base}{url if url.startswith('/') else '/' + url}" if base else None


class OutcomeUnknown(TransportError):
    """The request may have reached the channel but no answer came back; trying again could
    send the message twice, so a person decides."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


# Failures that happen before the request leaves: trying again cannot send anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _post(url: str, *, body: bytes, headers: dict[str, str], what: str, idempotent: bool) -> httpx.Response:
    """POST `body`; turn time-outs and connection failures into retryable TransportErrors.

    For a channel without an idempotency key (WhatsApp), a failure after the request was sent
    (a read time-out, a dropped connection) raises OutcomeUnknown instead: a retry could
    deliver the message twice.
    """
    timeout = settings.DELIVERY_TIMEOUT_SECONDS
    try:
        with http_client(timeout) as client:
            return client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        if not idempotent and not isinstance(exc, _NOT_SENT):
            raise OutcomeUnknown(
                f"{what}: no answer after the request was sent ({type(exc).__name__}); the message may or may "
                "not have gone out. Check the channel, then retry by hand."
            ) from None
        _raise_transport_error(exc, what, timeout)
    raise AssertionError("unreachable")


def _raise_transport_error(exc: httpx.HTTPError, what: str, timeout: float) -> None:
    try:
        raise exc
    except httpx.TimeoutException as exc:
        raise TransportError(f"{what} timed out after {timeout}s ({type(exc).__name__}).", permanent=False) from None
    except httpx.UnsupportedProtocol as exc:
        raise TransportError(f"{what}: {exc}", permanent=True) from None
    except httpx.HTTPError as exc:
        raise TransportError(f"{what} could not be reached: {type(exc).__name__}: {exc}", permanent=False) from None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# --- webhook -------------------------------------------------------------------------------------



def webhook_payload(delivery: Delivery) -> dict[str, Any]:
    """Return the JSON document the delivery webhook receives."""
    content = delivery.content
    advisor = content.advisor
    return {
        "delivery_id": delivery.pk,
        "content_id": content.pk,
        "advisor": {"name": advisor.name, "arn": advisor.arn, "phone": delivery.recipient},
        "title": content.title,
        "body": content.body,
        "image_url": absolute_image_url(content),
        "cycle_date": content.cycle_date.isoformat(),
    }


class WebhookTransport(Transport):
    """POSTs the content as signed JSON to DELIVERY_WEBHOOK_URL; a 2xx means accepted (sent)."""

    name = "webhook"

    def send(self, delivery: Delivery) -> Sent:
        url, secret = settings.DELIVERY_WEBHOOK_URL, settings.DELIVERY_WEBHOOK_SECRET
        if not url or not secret:
            raise TransportError(
                "The delivery webhook is not configured: set DELIVERY_WEBHOOK_URL and DELIVERY_WEBHOOK_SECRET.",
                permanent=True,
            )
        try:
            check_outbound_url(url)
        except OutboundRefused as exc:
            raise TransportError(f"Delivery webhook refused: {exc}", permanent=True) from None
        body = json.dumps(webhook_payload(delivery), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        response = _post(
            url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "OpsCenter-Delivery/1",
                "X-OpsCenter-Timestamp": timestamp,
                "X-OpsCenter-Signature": sign(secret, timestamp, body),
                "X-OpsCenter-Delivery": str(delivery.pk),
                # The receiver drops a repeat of the same key: a retry after a lost answer is harmless.
                "Idempotency-Key": f"delivery-{delivery.pk}",
            },
            what="The delivery webhook",
            idempotent=True,
        )
        status = response.status_code
        if response.is_success:
            answer = _json(response)
            provider_id = answer.get("id") if isinstance(answer, dict) else None
            return Sent(
                provider_message_id=str(provider_id) if provider_id not in (None, "") else f"webhook-{delivery.pk}",
                delivered=False,
                http_status=status,
            )
        message = f"The delivery webhook answered HTTP {status}: {response.text[:300]}"
        retryable = status in RETRYABLE_STATUSES or status >= 500
        raise TransportError(
            message,
            permanent=not retryable,
            retry_after=parse_retry_after(response.headers.get("Retry-After")) if retryable else None,
            http_status=status,
        )


# --- WhatsApp Cloud API ---------------------------------------------------------------------------

CAPTION_MAX = 1024
TEXT_MAX = 4096
# Graph API codes that mean "slow down / try later": app, account and throughput rate limits,
# the spam rate limit and the per-recipient pair rate limit; 2, 131000 and 133004 are Meta's
# temporary service errors, which its documentation says to retry.
WHATSAPP_RETRYABLE_CODES = frozenset({4, 80007, 130429, 131048, 131056, 2, 131000, 133004})
WHATSAPP_TOKEN_CODES = frozenset({190})
NOT_CONFIGURED = "WhatsApp is not configured: set WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID"


def truncate_words(text: str, limit: int) -> str:
    """Return `text` cut to at most `limit` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    head, space, _ = cut.rpartition(" ")
    if space and head.strip():
        cut = head
    return cut.rstrip() + "…"


def _template_text(value: str) -> str:
    # Template parameters may not hold newlines, tabs or runs of spaces (Meta error 132018).
    return re.sub(r"\s+", " ", value).strip()


def whatsapp_message(delivery: Delivery) -> dict[str, Any]:
    """Return the Cloud API request body for the delivery: template, image or text message."""
    content = delivery.content
    message: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": re.sub(r"\D", "", delivery.recipient),
    }
    image_url = absolute_image_url(content)
    text = f"{content.title}\n\n{content.body}"
    if settings.WHATSAPP_TEMPLATE_NAME:
        components: list[dict[str, Any]] = []
        if content.image:
            if image_url is None:
                # The template's header expects an image; sending it without one fails at Meta.
                raise TransportError(
                    "WhatsApp needs an absolute link to the content's image: set PUBLIC_BASE_URL.", permanent=True
                )
            components.append({"type": "header", "parameters": [{"type": "image", "image": {"link": image_url}}]})
        components.append(
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": _template_text(content.advisor.name)},
                    {"type": "text", "text": _template_text(content.title)},
                ],
            }
        )
        message.update(
            type="template",
            template={
                "name": settings.WHATSAPP_TEMPLATE_NAME,
                "language": {"code": settings.WHATSAPP_TEMPLATE_LANGUAGE},
                "components": components,
            },
        )
    elif image_url:
        message.update(type="image", image={"link": image_url, "caption": truncate_words(text, CAPTION_MAX)})
    else:
        message.update(type="text", text={"preview_url": False, "body": truncate_words(text, TEXT_MAX)})
    return message


def whatsapp_error(response: httpx.Response) -> TransportError:
    """Classify a Cloud API error answer; the message keeps Meta's code and text."""
    status = response.status_code
    answer = _json(response)
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = error.get("code")
    text = error.get("message") or response.text[:300] or response.reason_phrase
    details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
    message = f"WhatsApp error {code if code is not None else '(no code)'}: {text}"
    if error.get("error_subcode"):
        message += f" (subcode {error['error_subcode']})"
    if details:
        message += f" — {details}"
    message += f" [HTTP {status}"
    message += f", fbtrace_id {error['fbtrace_id']}]" if error.get("fbtrace_id") else "]"
    if status in (401, 403) or code in WHATSAPP_TOKEN_CODES:
        return TransportError(
            "WhatsApp refused the access token (invalid, expired or without permission): set a valid "
            f"WHATSAPP_ACCESS_TOKEN. {message}",
            permanent=True,
            http_status=status,
        )
    retryable = status == 429 or status >= 500 or code in WHATSAPP_RETRYABLE_CODES
    return TransportError(
        message,
        permanent=not retryable,
        retry_after=parse_retry_after(response.headers.get("Retry-After")) if retryable else None,
        http_status=status,
    )


class WhatsAppTransport(Transport):
    """Sends through the WhatsApp Cloud API; a 200 means Meta accepted it (sent, not yet delivered)."""

    name = "whatsapp"

    def send(self, delivery: Delivery) -> Sent:
        token, number_id = settings.WHATSAPP_ACCESS_TOKEN, settings.WHATSAPP_PHONE_NUMBER_ID
        if not token or not number_id:
            raise TransportError(NOT_CONFIGURED, permanent=True)
        url = f"{settings.WHATSAPP_API_BASE}/{settings.WHATSAPP_API_VERSION}/{number_id}/messages"
        body = json.dumps(whatsapp_message(delivery), separators=(",", ":")).encode()
        response = _post(
            url,
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            what="WhatsApp",
            idempotent=False,  # the Cloud API takes no idempotency key
        )
        if not response.is_success:
            raise whatsapp_error(response)
        answer = _json(response)
        messages = answer.get("messages") if isinstance(answer, dict) else None
        message_id = messages[0].get("id") if isinstance(messages, list) and messages and isinstance(messages[0], dict) else None
        if not message_id:
            # Meta took the request, so the message may well be on its way: failing it for a
            # person to check is safe, retrying could send it twice.
            raise TransportError(
                f"WhatsApp answered HTTP {response.status_code} without a message id: {response.text[:300]}",
                permanent=True,
                http_status=response.status_code,
            )
        return Sent(provider_message_id=str(message_id), delivered=False, http_status=response.status_code)


_TRANSPORTS: dict[str, type[Transport]] = {
    OutboxTransport.name: OutboxTransport,
    WebhookTransport.name: WebhookTransport,
    WhatsAppTransport.name: WhatsAppTransport,
}


def register_transport(transport: type[Transport]) -> None:
    """Make a transport available by its name (later apps add real channels)."""
    _TRANSPORTS[transport.name] = transport


def default_channel() -> str:
    """Return the channel new deliveries use (DELIVERY_CHANNEL)."""
    return settings.DELIVERY_CHANNEL


def get_transport(name: str) -> Transport:
    """Return a transport instance by channel name; an unknown name is a permanent error."""
    try:
        return _TRANSPORTS[name]()
    except KeyError:
        raise TransportError(f"no transport named {name!r}", permanent=True) from None
