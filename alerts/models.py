"""Alerting: rules over registry metrics, alerts and their timeline, channels, the notification
ledger, escalation, silences, maintenance windows, the evaluator's state, and SLOs.

Lifecycle of an alert (one row per incident of one fingerprint):

    pending ──(condition true for `for_seconds`)──▶ firing ──(false for `keep_firing_for`)──▶ resolved

A fingerprint is the rule plus the values of its group-by labels; at most one alert per
fingerprint is open (pending or firing) at a time — a partial unique constraint, so two
evaluators racing can never open two. Notifications are requested by bumping `notify_seq`
(services.request_notification); the dispatcher groups what is due into Notification rows
whose `dedupe_key` is unique, so a message is recorded once however often it is attempted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"


# Higher is more severe: routing by "this severity or worse" compares ranks.
SEVERITY_RANK = {Severity.LOW: 1, Severity.MEDIUM: 2, Severity.HIGH: 3, Severity.CRITICAL: 4}


class Aggregation(models.TextChoices):
    LAST = "last", "Last value"
    AVG = "avg", "Average"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"
    SUM = "sum", "Sum of samples"
    COUNT = "count", "Number of samples"
    RATE = "rate", "Rate per second (counter)"
    INCREASE = "increase", "Increase (counter)"
    PERCENTILE = "percentile", "Percentile"


class Comparator(models.TextChoices):
    GT = "gt", ">"
    GTE = "gte", "≥"
    LT = "lt", "<"
    LTE = "lte", "≤"
    EQ = "eq", "="
    NE = "ne", "≠"


class NoDataPolicy(models.TextChoices):
    OK = "ok", "Treat as not firing"
    KEEP = "keep", "Keep the last state"
    ALERT = "alert", "Fire (no data is a problem)"


class Rule(models.Model):
    """A condition over a registry metric that opens an alert per group while it holds."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, help_text="What the rule watches and why; shown on its alerts.")
    enabled = models.BooleanField(default=True)

    metric = models.CharField(max_length=200, help_text="A metric from the registry, e.g. opscenter_system_disk_used_percent.")
    matchers = models.CharField(
        max_length=1000, blank=True,
        help_text='Label matchers, comma separated: status="failed", host!="a", agent=~"content-.*", kind!~"tcp|disk".',
    )
    aggregation = models.CharField(max_length=12, choices=Aggregation.choices, default=Aggregation.LAST)
    percentile = models.FloatField(null=True, blank=True, help_text="For the percentile aggregation: 0–100.")
    window_seconds = models.PositiveIntegerField(default=300, help_text="The window the aggregation looks back over.")
    # A ratio rule: numerator (metric above) ÷ denominator, both aggregated over the window
    # and summed per group — e.g. failed runs ÷ all runs.
    denominator_metric = models.CharField(max_length=200, blank=True)
    denominator_matchers = models.CharField(max_length=1000, blank=True)

    comparator = models.CharField(max_length=3, choices=Comparator.choices, default=Comparator.GT)
    threshold = models.FloatField()
    for_seconds = models.PositiveIntegerField(default=0, help_text="Pending this long before it fires.")
    keep_firing_for_seconds = models.PositiveIntegerField(
        default=0, help_text="Keeps firing this long after the condition clears (against flapping)."
    )
    no_data = models.CharField(max_length=5, choices=NoDataPolicy.choices, default=NoDataPolicy.OK)

    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.HIGH)
    labels = models.JSONField(default=dict, blank=True, help_text="Extra labels on every alert of the rule.")
    group_by = models.JSONField(
        default=list, blank=True,
        help_text='Label names; one alert per distinct value set. Empty: one alert per series.',
    )
    summary_template = models.CharField(
        max_length=500, blank=True,
        help_text="The alert's one-line text; {{ value }}, {{ threshold }}, {{ labels.host }} … are filled in.",
    )
    runbook_url = models.URLField(blank=True)

    channels = models.ManyToManyField("Channel", blank=True, related_name="rules")
    escalation_policy = models.ForeignKey(
        "EscalationPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="rules"
    )
    group_wait_seconds = models.PositiveIntegerField(
        default=30, help_text="Alerts of one group arriving within this wait share one message."
    )
    repeat_interval_seconds = models.PositiveIntegerField(
        default=4 * 3600, help_text="A firing, unacknowledged alert is notified again after this long (0: never)."
    )

    # Active hours: outside them the rule is not evaluated and its open alerts resolve.
    active_days = models.JSONField(default=list, blank=True, help_text="Weekdays 0 (Mon) – 6 (Sun); empty: every day.")
    active_from = models.TimeField(null=True, blank=True)
    active_until = models.TimeField(null=True, blank=True, help_text="May be earlier than 'from' (crosses midnight).")
    timezone = models.CharField(max_length=64, default=settings.TIME_ZONE)

    # Set on the rules bootstrap creates, so it recreates neither an edited nor a deleted one.
    builtin_key = models.CharField(max_length=100, null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False, help_text="Why the last evaluation failed, if it did.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


OPEN_STATUSES = (AlertStatus.PENDING, AlertStatus.FIRING)


class NotifyKind(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"
    REPEAT = "repeat", "Still firing"
    ESCALATION = "escalation", "Escalated"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    TEST = "test", "Test"


class Alert(models.Model):
    """One incident of one fingerprint: pending, firing, then resolved; never reopened."""

    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    rule_name = models.CharField(max_length=200)  # kept when the rule is deleted
    fingerprint = models.CharField(max_length=64)
    labels = models.JSONField(default=dict)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    status = models.CharField(max_length=8, choices=AlertStatus.choices, default=AlertStatus.PENDING)
    summary = models.CharField(max_length=500, blank=True)
    value = models.FloatField(null=True, blank=True)

    pending_since = models.DateTimeField(default=timezone.now)
    fired_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    condition_false_since = models.DateTimeField(null=True, blank=True, help_text="While keep-firing-for runs.")
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    resolve_note = models.TextField(blank=True)

    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    ack_comment = models.TextField(blank=True)

    escalation_level = models.PositiveIntegerField(default=0, help_text="0: the rule's channels; n: step n of the policy.")
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Flap damping: how often this fingerprint resolved and fired again recently.
    flap_count = models.PositiveIntegerField(default=0)
    flapping = models.BooleanField(default=False)

    # Notification bookkeeping: a request bumps notify_seq; the dispatcher covers it by
    # setting notified_seq (conditional UPDATE), so a request is sent once.
    notify_seq = models.PositiveIntegerField(default=0)
    notified_seq = models.PositiveIntegerField(default=0)
    notify_kind = models.CharField(max_length=12, choices=NotifyKind.choices, blank=True)
    notify_due_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notification_failed = models.BooleanField(default=False, help_text="A message about it could not be delivered.")
    silenced_by = models.ForeignKey("Silence", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-pending_since", "-id"]
        permissions = [
            ("acknowledge_alert", "Can acknowledge an alert"),
            ("resolve_alert", "Can resolve an alert by hand"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"], condition=Q(status__in=["pending", "firing"]), name="alert_one_open_per_fingerprint"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-pending_since"], name="alert_status_recent"),
            models.Index(fields=["rule", "status"], name="alert_rule_status"),
            models.Index(fields=["notify_due_at"], condition=Q(notify_seq__gt=models.F("notified_seq")),
                         name="alert_notify_due"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_name} {self.labels_text()} ({self.status})".replace("  ", " ")

    def labels_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items()) if k not in {"alertname", "severity"})

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class AlertEventKind(models.TextChoices):
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    UNACKNOWLEDGED = "unacknowledged", "Acknowledgement withdrawn"
    COMMENT = "comment", "Comment"
    ESCALATED = "escalated", "Escalated"
    SILENCED = "silenced", "Silenced"
    UNSILENCED = "unsilenced", "Silence ended"
    NOTIFIED = "notified", "Notified"
    NOTIFICATION_FAILED = "notification_failed", "Notification failed"
    FLAPPING = "flapping", "Flapping"
    NO_DATA = "no_data", "No data"


class AlertEvent(models.Model):
    """A line of an alert's timeline."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=20, choices=AlertEventKind.choices)
    message = models.TextField(blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        default_permissions = ("view",)
        indexes = [models.Index(fields=["alert", "at"], name="alertevent_alert_at")]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


class Channel(models.Model):
    """Where notifications go: an Apprise URL (mailto://, slack://, json://, pagerduty://, tgram:// …).

    The URL carries credentials, so it is never shown back whole (see `masked_url`).
    """

    name = models.CharField(max_length=100, unique=True)
    url = models.TextField(help_text="An Apprise URL; kept secret once saved.")
    enabled = models.BooleanField(default=True)
    # Routing: besides the rules that name it, a channel may take every alert of at least
    # `min_severity` whose labels match `matchers`.
    route_all = models.BooleanField(
        default=False, help_text="Also receive alerts of every rule that match the severity and matchers below."
    )
    min_severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.LOW)
    matchers = models.CharField(max_length=1000, blank=True)
    send_resolved = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_test_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_test_ok = models.BooleanField(null=True, editable=False)
    last_test_error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        permissions = [("test_channel", "Can send a test notification")]

    def __str__(self) -> str:
        return self.name

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else ""

    @property
    def masked_url(self) -> str:
        """Return the URL with everything after the scheme hidden but its last four characters."""
        if "://" not in self.url:
            return "••••"
        scheme, rest = self.url.split("://", 1)
        return f"{scheme}://••••{rest[-4:]}" if len(rest) > 8 else f"{scheme}://••••"


class EscalationPolicy(models.Model):
    """An escalation ladder: unacknowledged after a step's delay, the alert goes to its channels."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "escalation policies"

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    level = models.PositiveIntegerField(help_text="1 for the first escalation, 2 for the next …")
    after_minutes = models.PositiveIntegerField(help_text="Minutes after firing, still unacknowledged.")
    channels = models.ManyToManyField(Channel, related_name="escalation_steps")

    class Meta:
        ordering = ["policy", "level"]
        constraints = [models.UniqueConstraint(fields=["policy", "level"], name="escalationstep_unique_level")]

    def __str__(self) -> str:
        return f"{self.policy}: level {self.level} after {self.after_minutes} min"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Waiting to send"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Notification(models.Model):
    """One message to one channel about one group of alerts; sent at least once, recorded once."""

    channel = models.ForeignKey(Channel, null=True, on_delete=models.SET_NULL, related_name="notifications")
    channel_name = models.CharField(max_length=100)
    dedupe_key = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=12, choices=NotifyKind.choices)
    group_key = models.CharField(max_length=500, blank=True)
    alerts = models.ManyToManyField(Alert, blank=True, related_name="notifications")
    escalation_level = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=300)
    body = models.TextField()
    status = models.CharField(max_length=8, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A sender holds it until then.")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ("view",)
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="notification_due"),
            models.Index(fields=["channel", "-created_at"], name="notification_channel_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.channel_name}: {self.title}"


class NotificationAttempt(models.Model):
    """One try at sending a notification."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="attempt_rows")
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"{self.notification_id} at {self.at:%H:%M:%S}: {'ok' if self.ok else 'failed'}"


class Silence(models.Model):
    """Mutes notifications of the alerts its matchers match, from `starts_at` to `ends_at`."""

    matchers = models.CharField(max_length=1000, help_text='e.g. alertname="Disk almost full", host="web-1"')
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    comment = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Created from an alert with "until it resolves": it ends when that alert resolves.
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="silences")
    expire_on_resolve = models.BooleanField(default=False)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Ended early (by hand or by resolve).")
    ended_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["ends_at"], name="silence_ends_at")]

    def __str__(self) -> str:
        return f"{self.matchers} until {self.effective_end:%Y-%m-%d %H:%M}"

    @property
    def effective_end(self):
        return min(self.ends_at, self.ended_at) if self.ended_at else self.ends_at

    def is_active(self, at=None) -> bool:
        at = at or timezone.now()
        return self.starts_at <= at < self.effective_end


class MaintenanceWindow(models.Model):
    """A recurring time (e.g. Sundays 02:00–04:00) when matching alerts notify no one."""

    name = models.CharField(max_length=100, unique=True)
    matchers = models.CharField(max_length=1000, blank=True, help_text="Empty: every alert.")
    days = models.JSONField(default=list, blank=True, help_text="Weekdays 0 (Mon) – 6 (Sun); empty: every day.")
    start_time = models.TimeField()
    end_time = models.TimeField(help_text="May be earlier than the start (crosses midnight).")
    timezone = models.CharField(max_length=64, default=settings.TIME_ZONE)
    enabled = models.BooleanField(default=True)
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class EvaluatorState(models.Model):
    """The one row the evaluator claims each cycle (lease) and reports its timing in."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    lease_until = models.DateTimeField(null=True, blank=True)
    cycles = models.PositiveBigIntegerField(default=0)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_duration_ms = models.PositiveIntegerField(default=0)
    rules_evaluated = models.PositiveIntegerField(default=0)
    overruns = models.PositiveBigIntegerField(default=0, help_text="Cycles that took longer than the interval.")
    last_overrun_at = models.DateTimeField(null=True, blank=True)
    skipped = models.PositiveBigIntegerField(default=0, help_text="Ticks that found the previous cycle still running.")
    last_error = models.TextField(blank=True)

    class Meta:
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"alert evaluator: {self.cycles} cycles"


class Indicator(models.TextChoices):
    DELIVERY_SUCCESS = "delivery_success", "Deliveries that reached the advisor"
    HEALTH_UPTIME = "health_uptime", "Uptime of a health check"
    DECIDED_BEFORE = "decided_before", "Content decided before a time of day"
    METRIC_RATIO = "metric_ratio", "Good ÷ total of two metrics"


class SLO(models.Model):
    """A service level objective: an indicator that must stay at or above `objective` % over a rolling window."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    indicator = models.CharField(max_length=20, choices=Indicator.choices)
    params = models.JSONField(default=dict, blank=True, help_text="The indicator's settings (e.g. check, time).")
    objective = models.FloatField(help_text="Percent, e.g. 99.5")
    window_days = models.PositiveIntegerField(default=30)
    enabled = models.BooleanField(default=True)
    burn_rate_alerts = models.BooleanField(default=True, help_text="Alert when the error budget burns too fast.")
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.HIGH)
    builtin_key = models.CharField(max_length=100, null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SLO"
        verbose_name_plural = "SLOs"

    def __str__(self) -> str:
        return f"{self.name} ({self.objective:g} % over {self.window_days} d)"


class BuiltinDefault(models.Model):
    """A built-in default (rule or SLO) that bootstrap created once.

    Bootstrap creates each default the first time only: one an admin edited or deleted
    stays that way, and a default added in a later version is still created.
    """

    key = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return self.key
