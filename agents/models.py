"""Agents (the hierarchy), their runs (a tree per trigger), run logs and webhook attempts."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class AgentKind(models.TextChoices):
    BUILTIN = "builtin", "Built-in (code in this project)"
    EXTERNAL = "external", "External (reports through the API)"
    WEBHOOK = "webhook", "Webhook (triggered by a signed POST)"


class Agent(models.Model):
    """One node of the hierarchy. Built-in agents get their identity from code (the registry);
    the admin edits only how they run: enabled, timeout, retries, schedule."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=AgentKind.choices, default=AgentKind.BUILTIN)
    params_schema = models.JSONField(
        "parameter schema", default=dict, blank=True,
        help_text='JSON Schema of the parameters: {"type": "object", "properties": {…}, "required": […]}',
    )
    enabled = models.BooleanField(default=True, help_text="A disabled agent cannot be triggered, by hand or schedule.")
    timeout_seconds = models.PositiveIntegerField("timeout (seconds)", default=600)
    retries = models.PositiveSmallIntegerField(default=0, help_text="Automatic retries after a failure or a lost worker.")
    position = models.PositiveSmallIntegerField(default=0, help_text="Order among its siblings.")
    # False when the code that defined this built-in agent is gone: kept for its history.
    in_code = models.BooleanField(default=True, editable=False)
    webhook_url = models.URLField("webhook URL", blank=True, help_text="Webhook agents: where a trigger is POSTed.")
    webhook_secret = models.CharField(
        max_length=128, blank=True, help_text="Webhook agents: HMAC-SHA256 key for the X-OpsCenter-Signature header."
    )
    schedule = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="agent",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "name"]
        permissions = [
            ("trigger_agent", "Can trigger, cancel and retry agent runs"),
            ("report_agentrun", "Can report external agent runs through the API"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def triggerable(self) -> bool:
        """External agents run elsewhere and report in; everything else can be started here."""
        return self.kind != AgentKind.EXTERNAL


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"


ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
FINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT})


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    API = "api", "API"
    PARENT = "parent", "Parent run"
    RETRY = "retry", "Retry"
    EXTERNAL = "external", "Reported by the agent"


class AgentRun(models.Model):
    """One execution of one agent. Children form a tree under the root run."""

    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="runs")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    root = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="descendants")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    # A run started "after" another waits, queued but not handed to a worker, until that one
    # succeeds; if it ends otherwise the waiting run is cancelled, never started.
    upstream = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="downstream")
    attempt = models.PositiveSmallIntegerField(default=1)
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices, default=RunTrigger.MANUAL)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    params = models.JSONField(default=dict, blank=True)
    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(null=True, blank=True)
    progress_note = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Its own code returned but children it started are still going: it holds no worker.
    awaiting_children = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    external_id = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name = "agent run"
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "external_id"], condition=~Q(external_id=""), name="agentrun_unique_external_id"
            ),
        ]
        indexes = [
            models.Index(fields=["agent", "-queued_at"], name="agentrun_agent_recent"),
            models.Index(fields=["status"], condition=Q(status__in=["queued", "running"]), name="agentrun_active"),
            models.Index(fields=["root", "queued_at"], name="agentrun_tree"),
        ]

    def __str__(self) -> str:
        return f"{self.agent.slug} #{self.pk}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def progress_percent(self) -> int | None:
        if not self.progress_total:
            return None
        return min(100, round(100 * self.progress_done / self.progress_total))


class LogLevel(models.TextChoices):
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


LEVEL_ORDER = {LogLevel.DEBUG: 10, LogLevel.INFO: 20, LogLevel.WARNING: 30, LogLevel.ERROR: 40}


class RunLog(models.Model):
    """One line an agent logged during a run."""

    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="logs")
    at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()
    context = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["id"]
        default_permissions = ("view",)
        indexes = [models.Index(fields=["run", "id"], name="runlog_run_order")]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:80]}"


class WebhookAttempt(models.Model):
    """One POST to a webhook agent's URL for one run."""

    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="webhook_attempts")
    number = models.PositiveSmallIntegerField()
    at = models.DateTimeField(default=timezone.now)
    url = models.URLField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        default_permissions = ("view",)
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="webhookattempt_unique_number")]

    def __str__(self) -> str:
        return f"run {self.run_id} attempt {self.number}"
