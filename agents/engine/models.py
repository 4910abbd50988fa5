"""Tables of the content engine: what to write about, the rules it must follow, its
settings, and each cycle with every advisor's progress through it."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from advisors.models import Advisor, Content

HEX_COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Enter a colour as #rrggbb, e.g. #1f4e79.")


# --- the topic bank ----------------------------------------------------------------------------


class TopicFeed(models.Model):
    """An RSS or Atom feed whose items are added to the topic bank when it is refreshed."""

    name = models.CharField(max_length=120)
    url = models.URLField("feed URL", max_length=500, unique=True)
    category = models.CharField(max_length=50, blank=True, help_text="Category given to topics from this feed.")
    enabled = models.BooleanField(default=True)
    last_fetched_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    items_added = models.PositiveIntegerField(default=0, editable=False, help_text="Topics added by the last refresh.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TopicSource(models.TextChoices):
    MANUAL = "manual", "Written by hand"
    FEED = "feed", "From a feed"


class Topic(models.Model):
    """Something worth a post: the strategist picks from the enabled ones for each advisor."""

    title = models.CharField(max_length=200)
    category = models.CharField(max_length=50, blank=True, db_index=True, help_text="e.g. SIP, tax saving, markets")
    summary = models.TextField(blank=True, help_text="A sentence or two of substance the writer builds on.")
    key_points = models.JSONField(default=list, blank=True, help_text="Facts to weave in, as a list of sentences.")
    segments = models.JSONField(
        default=list, blank=True, help_text="Advisor segments this suits (e.g. retail, HNI, NRI); empty: everyone."
    )
    source = models.CharField(max_length=10, choices=TopicSource.choices, default=TopicSource.MANUAL)
    feed = models.ForeignKey(TopicFeed, null=True, blank=True, on_delete=models.SET_NULL, related_name="topics")
    source_url = models.URLField(max_length=500, blank=True)
    external_id = models.CharField(max_length=300, blank=True, help_text="The feed item's id (dedupes refreshes).")
    published_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "title"]
        constraints = [
            models.UniqueConstraint(
                fields=["feed", "external_id"], condition=~Q(external_id=""), name="topic_once_per_feed_item"
            )
        ]

    def __str__(self) -> str:
        return self.title


# --- compliance rules --------------------------------------------------------------------------


class RuleKind(models.TextChoices):
    BANNED_PHRASE = "banned_phrase", "Banned phrase"
    BANNED_PATTERN = "banned_pattern", "Banned pattern (regular expression)"
    REQUIRED_DISCLAIMER = "required_disclaimer", "Required disclaimer"
    ARN_REQUIRED = "arn_required", "Advisor's ARN must appear"
    MAX_LENGTH = "max_length", "Longest allowed (characters)"
    MIN_LENGTH = "min_length", "Shortest allowed (characters)"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


# Critical and high findings fail an item (it cannot be approved without an Admin's
# override); medium and low ones only warn the reviewer.
FAILING_SEVERITIES = frozenset({Severity.CRITICAL, Severity.HIGH})


class ComplianceRule(models.Model):
    """One rule the compliance validator applies to every post; edited in the admin."""

    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    value = models.TextField(
        blank=True,
        help_text="Banned phrase: the words (any case). Banned pattern: a Python regular expression. "
        "Required disclaimer: its text. Not used by the other kinds.",
    )
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="Length rules: the number of characters.")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.HIGH)
    message = models.CharField(max_length=300, blank=True, help_text="What the reviewer and the writer are told.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["kind", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .compliance import rule_problems

        problems = rule_problems(self)
        if problems:
            raise ValidationError(problems)


# --- settings ---------------------------------------------------------------------------------


class EngineSettings(models.Model):
    """The engine's knobs, one row (pk 1), edited in the admin."""

    brand_name = models.CharField(max_length=80, default="OpsCenter Advisors")
    brand_primary = models.CharField(max_length=7, default="#1f4e79", validators=[HEX_COLOUR])
    brand_accent = models.CharField(max_length=7, default="#f2a900", validators=[HEX_COLOUR])
    brand_text = models.CharField(max_length=7, default="#ffffff", validators=[HEX_COLOUR])
    batch_size = models.PositiveSmallIntegerField(
        default=50, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Advisors per batch: each batch goes through the stages as its own runs, in parallel.",
    )
    fatigue_history = models.PositiveSmallIntegerField(
        "fatigue history (posts)", default=10, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="How many of the advisor's recent posts a new one is compared with.",
    )
    fatigue_threshold = models.FloatField(
        default=0.6, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Similarity (0–1) above which a post is too close to a recent one and is rewritten.",
    )
    max_regenerations = models.PositiveSmallIntegerField(
        default=2, validators=[MaxValueValidator(10)],
        help_text="Rewrites tried for a too-similar post before it is flagged for the reviewer.",
    )
    guardian_enabled = models.BooleanField(
        "auto-approve enabled", default=False,
        help_text="When on, the approval guardian approves clean items nobody has reviewed when it runs.",
    )
    guardian_min_age_minutes = models.PositiveIntegerField(
        "auto-approve only after (minutes)", default=120,
        help_text="Items younger than this in the queue are left for people.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "engine settings"

    def __str__(self) -> str:
        return "Engine settings"

    @classmethod
    def load(cls) -> EngineSettings:
        """Return the one settings row, created with the defaults on first use."""
        settings, _ = cls.objects.get_or_create(pk=1)
        return settings


# --- cycles ------------------------------------------------------------------------------------


class CycleStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Finished"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Cycle(models.Model):
    """One run of the orchestrator for a cycle date (there may be several a date: the morning
    run picks up advisors the evening run missed)."""

    cycle_date = models.DateField(db_index=True)
    run = models.OneToOneField("agents.AgentRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="cycle")
    status = models.CharField(max_length=10, choices=CycleStatus.choices, default=CycleStatus.RUNNING)
    dry_run = models.BooleanField(default=False)
    topic_override = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    advisors_targeted = models.PositiveIntegerField(default=0)
    batches = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-cycle_date", "-id"]

    def __str__(self) -> str:
        return f"Cycle {self.cycle_date:%Y-%m-%d} #{self.pk}"


class Stage(models.TextChoices):
    """How far one advisor's post got through a cycle."""

    PLANNED = "planned", "Planned"
    WRITTEN = "written", "Written"
    FATIGUE_CHECKED = "fatigue_checked", "Fatigue checked"
    ILLUSTRATED = "illustrated", "Image made"
    SUBMITTED = "submitted", "Submitted for review"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class CycleAdvisor(models.Model):
    """One advisor in one cycle: the topic chosen, the post written, and how far it got."""

    cycle = models.ForeignKey(Cycle, on_delete=models.CASCADE, related_name="entries")
    advisor = models.ForeignKey(Advisor, on_delete=models.PROTECT, related_name="cycle_entries")
    batch = models.PositiveSmallIntegerField(default=0)
    topic = models.ForeignKey(Topic, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    content = models.OneToOneField(Content, null=True, blank=True, on_delete=models.SET_NULL, related_name="cycle_entry")
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.PLANNED)
    fatigue_flagged = models.BooleanField(default=False)
    regenerations = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cycle", "batch", "id"]
        constraints = [models.UniqueConstraint(fields=["cycle", "advisor"], name="cycle_advisor_once")]
        indexes = [models.Index(fields=["cycle", "batch"], name="cycle_entry_batch")]

    def __str__(self) -> str:
        return f"{self.advisor} in {self.cycle}"


# --- rollups -----------------------------------------------------------------------------------


class DailyRollup(models.Model):
    """One day's figures, written by the analytics tracker so pages never scan years of rows."""

    day = models.DateField(unique=True)
    advisors_served = models.PositiveIntegerField(default=0)
    generated = models.PositiveIntegerField(default=0)
    compliance_failed = models.PositiveIntegerField(default=0)
    fatigue_flagged = models.PositiveIntegerField(default=0)
    approved = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    revisions_requested = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    delivery_failed = models.PositiveIntegerField(default=0)
    read = models.PositiveIntegerField(default=0, help_text="Delivered items the advisor opened (read receipts).")
    clicked = models.PositiveIntegerField(default=0, help_text="Items with at least one button click.")
    # Engagement, by the day (engine time zone) the click or message happened.
    clicks_retrieve = models.PositiveIntegerField(default=0)
    clicks_unlock = models.PositiveIntegerField(default=0)
    clicks_share = models.PositiveIntegerField(default=0)
    clicks_succeeded = models.PositiveIntegerField(default=0)
    clicks_with_outcome = models.PositiveIntegerField(default=0)
    click_response_ms_sum = models.BigIntegerField(default=0)
    click_response_count = models.PositiveIntegerField(default=0)
    clicks_by_hour = models.JSONField(default=list, blank=True, help_text="24 counts, hour 0 first (engine time).")
    engaged_advisors = models.PositiveIntegerField(default=0, help_text="Advisors who clicked or chatted.")
    conversations_started = models.PositiveIntegerField(default=0)
    conversations_completed = models.PositiveIntegerField(default=0)
    chat_messages_in = models.PositiveIntegerField(default=0)
    chat_messages_out = models.PositiveIntegerField(default=0)
    chat_response_ms_sum = models.BigIntegerField(default=0)
    chat_response_count = models.PositiveIntegerField(default=0)
    # Counts per upper bound in RESPONSE_BUCKETS_MS (+ one for slower): percentiles over any
    # period are read from the summed buckets, which averages cannot give.
    chat_response_buckets = models.JSONField(default=list, blank=True)
    ai_quality_sum = models.FloatField(default=0)
    ai_quality_count = models.PositiveIntegerField(default=0)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"Figures for {self.day:%Y-%m-%d}"
