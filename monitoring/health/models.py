"""Health checks, their results and their state flips.

A check's current state lives on its row (state, since when, the last result and a short
strip of recent results), so the health page and the live topic never scan results. Each
run adds a `HealthResult`; each change of state adds a `HealthFlip`, from which uptime is
computed by time, not by counting results.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class CheckKind(models.TextChoices):
    HTTP = "http", "HTTP(S)"
    TCP = "tcp", "TCP port"
    DATABASE = "database", "Database"
    REDIS = "redis", "Redis"
    WORKERS = "workers", "Celery workers"
    BEAT = "beat", "Celery beat"
    DISK = "disk", "Disk usage"
    PROCESS = "process", "Process"


class CheckState(models.TextChoices):
    UP = "up", "Up"
    DOWN = "down", "Down"
    UNKNOWN = "unknown", "Unknown"


class HttpMethod(models.TextChoices):
    GET = "GET", "GET"
    HEAD = "HEAD", "HEAD"
    POST = "POST", "POST"
    OPTIONS = "OPTIONS", "OPTIONS"


# The fields each kind needs, and the fields it uses; the form, the API and the admin's
# field sets read these so they agree.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    CheckKind.HTTP: ("url", "method", "expected_status", "keyword", "json_path", "json_expected", "headers",
                     "verify_tls", "follow_redirects", "is_webhook_service"),
    CheckKind.TCP: ("host", "port"),
    CheckKind.DATABASE: (),
    CheckKind.REDIS: ("url",),
    CheckKind.WORKERS: ("expected_workers",),
    CheckKind.BEAT: (),
    CheckKind.DISK: ("path", "threshold_percent"),
    CheckKind.PROCESS: ("pid_file", "process_name"),
}

# What a field holds when the check's kind does not use it.
UNUSED_VALUES: dict[str, Any] = {
    "url": "", "keyword": "", "json_path": "", "json_expected": "", "headers": {}, "host": "", "port": None,
    "path": "", "threshold_percent": None, "pid_file": "", "process_name": "", "is_webhook_service": False,
}

MIN_INTERVAL_SECONDS = 5
MAX_INTERVAL_SECONDS = 86_400
MAX_TIMEOUT_SECONDS = 60.0


class HealthCheck(models.Model):
    """One thing we watch, how, how often, and how it is doing now."""

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=10, choices=CheckKind.choices)
    description = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True, help_text="A disabled check is not run and its state is unknown.")
    interval_seconds = models.PositiveIntegerField(
        "interval (seconds)", default=60,
        validators=[MinValueValidator(MIN_INTERVAL_SECONDS), MaxValueValidator(MAX_INTERVAL_SECONDS)],
        help_text=f"How often it runs ({MIN_INTERVAL_SECONDS} s to a day).",
    )
    timeout_seconds = models.FloatField(
        "timeout (seconds)", default=5.0, validators=[MinValueValidator(0.1), MaxValueValidator(MAX_TIMEOUT_SECONDS)],
        help_text="A run that takes longer counts as down (0.1 to 60 s).",
    )

    # HTTP(S); also the Redis URL (empty: OpsCenter's own Redis)
    url = models.CharField(
        "URL", max_length=500, blank=True,
        help_text="HTTP: http(s)://host/path. Redis: redis://, rediss:// or unix:///path; empty for OpsCenter's own.",
    )
    method = models.CharField(max_length=7, choices=HttpMethod.choices, default=HttpMethod.GET)
    expected_status = models.PositiveSmallIntegerField(
        default=200, validators=[MinValueValidator(100), MaxValueValidator(599)],
        help_text="The HTTP status that means up.",
    )
    keyword = models.CharField(max_length=200, blank=True, help_text="Up only if the body contains this text.")
    json_path = models.CharField(
        "JSON path", max_length=200, blank=True,
        help_text='Up only if the JSON body has a value here, e.g. "$.status" or "checks[0].ok".',
    )
    json_expected = models.CharField(
        "expected JSON value", max_length=200, blank=True,
        help_text='…and it equals this (compared as text: "ok", "true", "3"). Empty: any value.',
    )
    headers = models.JSONField(default=dict, blank=True, help_text='Request headers, e.g. {"Authorization": "…"}.')
    verify_tls = models.BooleanField("verify TLS certificate", default=True)
    follow_redirects = models.BooleanField(default=False, help_text="Off: a redirect's own status is compared.")
    is_webhook_service = models.BooleanField(
        "inbound webhook service", default=False,
        help_text="This check watches the service that receives the advisors' webhooks.",
    )

    # TCP
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(65535)])

    # Celery workers
    expected_workers = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Up when at least this many workers answer a ping.",
    )

    # Disk
    path = models.CharField(max_length=500, blank=True, help_text="Disk: a path on the file system to watch.")
    threshold_percent = models.PositiveSmallIntegerField(
        "threshold (%)", null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Disk: down when this share of the disk or more is used (1 to 100).",
    )

    # Process (on the machine of the worker that runs the check)
    pid_file = models.CharField("PID file", max_length=500, blank=True)
    process_name = models.CharField(max_length=200, blank=True, help_text="Or a process name, e.g. redis-server.")

    # Checks that bootstrap manages for OpsCenter's own components ("web", "database", …):
    # their targets follow the settings; people change how often and how long they run.
    system_key = models.CharField(max_length=40, null=True, blank=True, unique=True, editable=False)

    # The current state, kept on the row for the page and the topic.
    state = models.CharField(max_length=8, choices=CheckState.choices, default=CheckState.UNKNOWN, editable=False)
    state_since = models.DateTimeField(default=timezone.now, editable=False)
    last_checked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_ok = models.BooleanField(null=True, editable=False)
    last_latency_ms = models.FloatField(null=True, blank=True, editable=False)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    last_detail = models.CharField(max_length=500, blank=True, editable=False)
    # The last few results, oldest first: [[iso time, ok, latency ms], …] (the page's strip).
    recent = models.JSONField(default=list, blank=True, editable=False)
    next_due_at = models.DateTimeField(default=timezone.now, editable=False)
    # Set by the dispatcher's claim together with next_due_at, to find the rows it claimed.
    claim_token = models.CharField(max_length=32, blank=True, editable=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "health check"
        permissions = [("run_healthcheck", "Can run a health check now")]
        indexes = [
            models.Index(fields=["next_due_at"], condition=Q(enabled=True), name="healthcheck_due"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_system(self) -> bool:
        return bool(self.system_key)

    def target(self) -> str:
        """Return a short description of what the check looks at."""
        if self.kind == CheckKind.HTTP:
            return f"{self.method} {redact_url(self.url)}"
        if self.kind == CheckKind.TCP:
            return f"{self.host}:{self.port}"
        if self.kind == CheckKind.REDIS:
            return redact_url(self.url) or "OpsCenter's Redis"
        if self.kind == CheckKind.WORKERS:
            return f"≥ {self.expected_workers} answering"
        if self.kind == CheckKind.DISK:
            return f"{self.path} < {self.threshold_percent}%"
        if self.kind == CheckKind.PROCESS:
            return self.pid_file or self.process_name
        if self.kind == CheckKind.DATABASE:
            return "OpsCenter's database"
        return "scheduler ticks"  # beat

    def clear_unused_fields(self) -> list[str]:
        """Empty the fields this check's kind does not use (no stale target); return those changed."""
        used = set(KIND_FIELDS.get(self.kind, ()))
        cleared = []
        for field, empty in UNUSED_VALUES.items():
            if field not in used and getattr(self, field) != empty:
                setattr(self, field, empty)
                cleared.append(field)
        return cleared

    def clean(self) -> None:
        """Check that the kind's own fields are filled in and make sense."""
        errors: dict[str, list[str]] = {}

        def need(field: str, message: str) -> None:
            errors.setdefault(field, []).append(message)

        if self.kind == CheckKind.HTTP:
            parts = urlsplit(self.url or "")
            if not self.url:
                need("url", "An HTTP check needs a URL.")
            elif parts.scheme not in {"http", "https"} or not parts.hostname:
                need("url", "Use a full http:// or https:// URL with a host.")
            if not isinstance(self.headers, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in (self.headers or {}).items()
            ):
                need("headers", 'Give the headers as a JSON object of text values, e.g. {"Accept": "text/plain"}.')
            if self.json_expected and not self.json_path:
                need("json_path", "Say where the expected JSON value is.")
            if self.json_path:
                from .probes import JsonPathError, parse_json_path

                try:
                    parse_json_path(self.json_path)
                except JsonPathError as exc:
                    need("json_path", str(exc))
            if self.method == HttpMethod.HEAD and (self.keyword or self.json_path):
                need("method", "A HEAD request has no body to search: use GET.")
        elif self.kind == CheckKind.TCP:
            if not self.host:
                need("host", "A TCP check needs a host.")
            if not self.port:
                need("port", "A TCP check needs a port (1 to 65535).")
        elif self.kind == CheckKind.REDIS:
            if self.url and not self.url.startswith(("redis://", "rediss://", "unix://")):
                need("url", "Use redis://host:port/db, rediss://… or unix:///path (or leave it empty).")
        elif self.kind == CheckKind.DISK:
            if not self.path:
                need("path", "A disk check needs a path.")
            elif not self.path.startswith("/"):
                need("path", "Use an absolute path, e.g. /var/lib/opscenter.")
            if self.threshold_percent is None:
                need("threshold_percent", "A disk check needs a threshold from 1 to 100 (%).")
        elif self.kind == CheckKind.PROCESS:
            if not self.pid_file and not self.process_name:
                need("process_name", "Give a PID file or a process name.")
            if self.pid_file and self.process_name:
                need("process_name", "Give a PID file or a process name, not both.")
            if self.pid_file and not self.pid_file.startswith("/"):
                need("pid_file", "Use an absolute path, e.g. /run/opscenter/beat.pid.")
        if self.interval_seconds and self.timeout_seconds and self.timeout_seconds > self.interval_seconds:
            need("timeout_seconds", "The timeout cannot be longer than the interval.")
        if errors:
            raise ValidationError(errors)

    def summary(self) -> dict[str, Any]:
        """Return the check as the page and the `health` topic carry it."""
        return {
            "id": self.pk,
            "name": self.name,
            "kind": self.kind,
            "kind_label": CheckKind(self.kind).label,
            "target": self.target(),
            "enabled": self.enabled,
            "system": self.is_system,
            "webhook_service": self.is_webhook_service,
            "interval_seconds": self.interval_seconds,
            "state": self.state,
            "state_since": self.state_since.isoformat(),
            "last_checked_at": self.last_checked_at.isoformat() if self.last_checked_at else None,
            "last_ok": self.last_ok,
            "latency_ms": None if self.last_latency_ms is None else round(self.last_latency_ms, 1),
            "status_code": self.last_status_code,
            "detail": self.last_detail,
            "recent": self.recent,
        }


def redact_url(url: str) -> str:
    """Hide a password in a URL shown to people (redis://:secret@host)."""
    parts = urlsplit(url or "")
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":•••@")
        return parts._replace(netloc=netloc).geturl()
    return url


class HealthResult(models.Model):
    """One run of one check."""

    health_check = models.ForeignKey(HealthCheck, on_delete=models.CASCADE, related_name="results")
    at = models.DateTimeField(default=timezone.now)
    ok = models.BooleanField()
    latency_ms = models.FloatField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        default_permissions = ("view",)
        verbose_name = "health check result"
        indexes = [
            models.Index(fields=["health_check", "-at"], name="healthresult_check_recent"),
            models.Index(fields=["at"], name="healthresult_at"),
        ]

    def __str__(self) -> str:
        return f"{self.health_check_id} {'ok' if self.ok else 'failed'} at {self.at:%Y-%m-%d %H:%M:%S}"


class HealthFlip(models.Model):
    """A change of a check's state, with how long the previous state lasted."""

    health_check = models.ForeignKey(HealthCheck, on_delete=models.CASCADE, related_name="flips")
    at = models.DateTimeField(default=timezone.now)
    from_state = models.CharField(max_length=8, choices=CheckState.choices)
    to_state = models.CharField(max_length=8, choices=CheckState.choices)
    previous_duration_seconds = models.FloatField(null=True, blank=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        default_permissions = ("view",)
        verbose_name = "health state change"
        indexes = [models.Index(fields=["health_check", "-at"], name="healthflip_check_recent")]

    def __str__(self) -> str:
        return f"{self.health_check_id}: {self.from_state} → {self.to_state} at {self.at:%Y-%m-%d %H:%M:%S}"
