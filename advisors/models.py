"""Advisors, the content written for them, and its deliveries."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

ARN_VALIDATOR = RegexValidator(
    r"^ARN-\d{1,7}$", "Enter an AMFI registration number like ARN-123456 (ARN-, then up to 7 digits)."
)
PHONE_VALIDATOR = RegexValidator(
    r"^\+[1-9]\d{7,14}$", "Enter the phone in E.164 form: + country code and number, digits only, e.g. +919812345678."
)


class AdvisorStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    DISABLED = "disabled", "Disabled"


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    HINDI = "hi", "Hindi"
    MARATHI = "mr", "Marathi"
    GUJARATI = "gu", "Gujarati"
    TAMIL = "ta", "Tamil"
    TELUGU = "te", "Telugu"
    BENGALI = "bn", "Bengali"
    KANNADA = "kn", "Kannada"
    MALAYALAM = "ml", "Malayalam"


class Advisor(models.Model):
    """A mutual-fund distributor who receives personalised content. Never deleted: disabled."""

    name = models.CharField(max_length=200)
    arn = models.CharField("ARN", max_length=12, unique=True, validators=[ARN_VALIDATOR])
    phone = models.CharField(max_length=16, unique=True, validators=[PHONE_VALIDATOR])
    email = models.EmailField(blank=True)
    status = models.CharField(max_length=10, choices=AdvisorStatus.choices, default=AdvisorStatus.ACTIVE, db_index=True)
    segment = models.CharField(max_length=50, blank=True, db_index=True, help_text="e.g. retail, HNI, NRI")
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.ENGLISH)
    topics = models.JSONField(default=list, blank=True, help_text="Topics this advisor wants, e.g. SIP, tax saving")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        permissions = [("import_advisor", "Can import advisors from CSV")]

    def __str__(self) -> str:
        return f"{self.name} ({self.arn})"


class ContentKind(models.TextChoices):
    POST = "post", "Post"
    IMAGE = "image", "Image card"
    ARTICLE = "article", "Article"


class ContentStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_REVIEW = "pending_review", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    NEEDS_REVISION = "needs_revision", "Needs revision"
    SCHEDULED = "scheduled", "Scheduled"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class ComplianceVerdict(models.TextChoices):
    PENDING = "pending", "Not checked"
    PASS = "pass", "Pass"
    WARN = "warn", "Warnings"
    FAIL = "fail", "Fail"


class Content(models.Model):
    """One piece of content for one advisor and cycle; moves through review to delivery.

    Status changes only through advisors.services, which guard each transition with a
    conditional UPDATE; `version` grows with every change (optimistic lock for clients).
    """

    advisor = models.ForeignKey(Advisor, on_delete=models.PROTECT, related_name="contents")
    cycle_date = models.DateField(db_index=True)
    kind = models.CharField(max_length=10, choices=ContentKind.choices, default=ContentKind.POST)
    title = models.CharField(max_length=200)
    body = models.TextField()
    image = models.ImageField(upload_to="content/%Y/%m/%d", blank=True)
    topic = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=ContentStatus.choices, default=ContentStatus.DRAFT)
    compliance_verdict = models.CharField(
        max_length=8, choices=ComplianceVerdict.choices, default=ComplianceVerdict.PENDING
    )
    # [{"rule": str, "severity": str, "message": str, "start": int, "end": int}, ...]
    compliance_findings = models.JSONField(default=list, blank=True)
    fatigue_score = models.FloatField(null=True, blank=True, help_text="0 = fresh, 1 = same as a recent post")
    # The agent run that wrote it. A plain id: agents sits above advisors in the import order.
    generating_run_id = models.BigIntegerField(null=True, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)
    revision_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="revisions")
    version = models.PositiveIntegerField(default=1)
    submitted_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "content"
        permissions = [("review_content", "Can approve, reject or send back content")]
        indexes = [
            # The review queue: pending items, oldest first, keyset on (submitted_at, id).
            models.Index(
                fields=["submitted_at", "id"], condition=Q(status="pending_review"), name="content_queue_idx"
            ),
            # The queue filtered by cycle: one cycle holds thousands of pending items.
            models.Index(
                fields=["cycle_date", "submitted_at", "id"],
                condition=Q(status="pending_review"),
                name="content_queue_cycle_idx",
            ),
            models.Index(fields=["status", "cycle_date", "id"], name="content_status_cycle_idx"),
            models.Index(fields=["status", "compliance_verdict", "id"], name="content_status_verdict_idx"),
            models.Index(fields=["status", "kind", "id"], name="content_status_kind_idx"),
            models.Index(fields=["advisor", "status", "id"], name="content_advisor_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} — {self.advisor.name if self.advisor_id else '?'} ({self.cycle_date})"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    # A worker holds it and is talking to the channel; no one else may send it meanwhile.
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """The ledger of sending one content item over one channel: at most one row per pair.

    A worker claims a queued row (queued → sending, with a lease) in one short transaction,
    talks to the channel with no transaction open, and records the outcome in another; each
    try is a DeliveryAttempt. A row still "sending" after its lease is failed as outcome
    unknown, never re-sent by itself: only a person may retry it.
    """

    content = models.ForeignKey(Content, on_delete=models.PROTECT, related_name="deliveries")
    channel = models.CharField(max_length=20)
    recipient = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    provider_message_id = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # The attempt budget (DELIVERY_MAX_ATTEMPTS) counts from here: a retry by hand starts a new one.
    attempts_at_retry = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, default=timezone.now, help_text="When a queued delivery is due to be sent (next try)."
    )
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="While sending: after this, the worker is presumed lost (outcome unknown)."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["content", "channel"], name="delivery_once_per_channel")]
        indexes = [
            models.Index(fields=["status", "id"], name="delivery_status_idx"),
            # Receipts and clicks from the messaging service name the provider's message id.
            models.Index(fields=["provider_message_id"], condition=~Q(provider_message_id=""),
                         name="delivery_provider_msg_idx"),
            # The delivery-success SLO counts deliveries finished in a time range (sent, or
            # failed at their last update): 263 → 35 ms per SLO pass at 300k deliveries.
            models.Index(fields=["sent_at"], name="delivery_sent_at_idx"),
            models.Index(fields=["status", "updated_at"], name="delivery_status_updated_idx"),
        ]
        permissions = [("retry_delivery", "Can send a failed delivery again")]

    def __str__(self) -> str:
        return f"{self.channel} → {self.recipient} ({self.status})"


class AttemptOutcome(models.TextChoices):
    SENT = "sent", "Sent"
    RETRYABLE_ERROR = "retryable_error", "Retryable error"
    PERMANENT_ERROR = "permanent_error", "Permanent error"
    # Also the outcome while the attempt is in flight (finished_at empty): nobody knows yet.
    UNKNOWN = "unknown", "Unknown"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: written before the call, completed after it."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, default=AttemptOutcome.UNKNOWN)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_once")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"


class OutboxMessage(models.Model):
    """What the local outbox transport 'sent': the message as a real channel would get it."""

    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="outbox_message")
    recipient = models.CharField(max_length=200)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"outbox → {self.recipient}"
