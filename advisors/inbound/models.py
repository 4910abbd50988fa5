"""What the messaging webhook service sends us: the raw event ledger first, typed rows after.

Every genuine event is stored as an InboundEvent before anything else happens (so nothing is
lost when processing fails or a worker dies), exactly once per (source, event id). Processing
in Celery turns each one into a typed row — a ButtonClick, a ChatMessage in its Conversation,
or a delivery receipt that advances a Delivery — and is safe to run twice.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix that makes leaked secrets recognisable, not a secret)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class EventType(models.TextChoices):
    BUTTON_CLICK = "button_click", "Button click"
    CHAT_MESSAGE = "chat_message", "Chat message"
    DELIVERY_RECEIPT = "delivery_receipt", "Delivery receipt"
    HEARTBEAT = "heartbeat", "Heartbeat"


class InboundSource(models.Model):
    """A service allowed to send us events, with the secrets its signatures are checked against.

    Two secrets are active at once so a secret can be rotated without dropping events: the
    sender moves to the new one while the previous one still verifies.
    """

    slug = models.SlugField(unique=True, help_text="Appears in the URL: /api/v1/webhooks/<slug>/")
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True, help_text="A disabled source's events are refused (404).")
    # Kept readable, not hashed: checking an HMAC needs the secret itself. Shown once.
    secret = models.CharField(max_length=100, default=new_secret)
    previous_secret = models.CharField(max_length=100, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    expected_event_types = models.JSONField(
        default=list, blank=True, help_text="Event types this source may send; empty: all types."
    )
    health_url = models.URLField(blank=True, help_text="The service's /health URL, watched by a health check.")
    last_event_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def active_secrets(self) -> list[str]:
        return [s for s in (self.secret, self.previous_secret) if s]

    def accepts(self, event_type: str) -> bool:
        return not self.expected_event_types or event_type in self.expected_event_types


class EventStatus(models.TextChoices):
    RECEIVED = "received", "Received"  # stored, waiting for a worker
    PROCESSING = "processing", "Processing"  # a worker holds it until lease_until
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"  # processing raised; a person may retry
    REJECTED = "rejected", "Rejected"  # signed, but not a valid event: kept with the reason, never processed


class InboundEvent(models.Model):
    """One event as it arrived: the ledger every typed row derives from."""

    source = models.ForeignKey(InboundSource, on_delete=models.PROTECT, related_name="events")
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=32, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField(default=dict)
    signature_ok = models.BooleanField(default=True)
    status = models.CharField(max_length=12, choices=EventStatus.choices, default=EventStatus.RECEIVED)
    reason = models.TextField(blank=True, help_text="Why it was rejected, or the last processing error.")
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Which request stored it, and which worker claimed it: tells a fresh insert from a
    # replay, and a row this worker claimed from one another worker claimed meanwhile.
    ingest_token = models.CharField(max_length=32, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["source", "event_id"], name="inbound_event_once")]
        indexes = [
            models.Index(fields=["status", "id"], name="inbound_status_idx"),
            models.Index(fields=["source", "-received_at"], name="inbound_source_recent_idx"),
            models.Index(fields=["ingest_token"], condition=~Q(ingest_token=""), name="inbound_ingest_idx"),
            models.Index(fields=["claim_token"], condition=~Q(claim_token=""), name="inbound_claim_idx"),
        ]
        permissions = [("retry_inboundevent", "Can retry a failed inbound event")]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.event_id} ({self.type}, {self.status})"


class ButtonAction(models.TextChoices):
    RETRIEVE_CONTENT = "RETRIEVE_CONTENT", "Retrieve content"
    UNLOCK_CONTENT = "UNLOCK_CONTENT", "Unlock content"
    SHARE_WITH_CLIENTS = "SHARE_WITH_CLIENTS", "Share with clients"


class ButtonClick(models.Model):
    """An advisor pressed a button on a message we delivered."""

    event = models.OneToOneField(InboundEvent, on_delete=models.CASCADE, related_name="button_click")
    action = models.CharField(max_length=24, choices=ButtonAction.choices)
    at = models.DateTimeField()
    advisor = models.ForeignKey("advisors.Advisor", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="button_clicks")
    content = models.ForeignKey("advisors.Content", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="button_clicks")
    delivery = models.ForeignKey("advisors.Delivery", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="button_clicks")
    # How long the service took to answer the click, and whether it could.
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(null=True, blank=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["at"], name="click_at_idx"),
                   models.Index(fields=["advisor", "at"], name="click_advisor_idx")]

    def __str__(self) -> str:
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M}"


class Conversation(models.Model):
    """A chat between an advisor and the service's assistant."""

    source = models.ForeignKey(InboundSource, on_delete=models.PROTECT, related_name="conversations")
    external_id = models.CharField(max_length=200)
    advisor = models.ForeignKey("advisors.Advisor", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="conversations")
    started_at = models.DateTimeField()
    last_message_at = models.DateTimeField()
    messages = models.PositiveIntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at"]
        constraints = [models.UniqueConstraint(fields=["source", "external_id"], name="conversation_once")]
        indexes = [models.Index(fields=["last_message_at"], name="conversation_recent_idx")]

    def __str__(self) -> str:
        return f"conversation {self.external_id}"


class Direction(models.TextChoices):
    INBOUND = "inbound", "From the advisor"
    OUTBOUND = "outbound", "From the assistant"


class ChatMessage(models.Model):
    """One message of a conversation; the assistant's carry response time and quality."""

    event = models.OneToOneField(InboundEvent, on_delete=models.CASCADE, related_name="chat_message")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="chat_messages")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    at = models.DateTimeField()
    text = models.TextField(blank=True)
    response_ms = models.PositiveIntegerField(null=True, blank=True)
    ai_quality_score = models.FloatField(null=True, blank=True, help_text="0 to 1, as scored by the service")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["at"], name="chat_at_idx")]

    def __str__(self) -> str:
        return f"{self.direction} message at {self.at:%Y-%m-%d %H:%M}"
