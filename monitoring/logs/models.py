"""The log store: one searchable table of what every process logged, and agent run logs.

Python logging (WARNING and above from web, worker and beat) reaches it through
`monitoring.logs.handler.DatabaseLogHandler`; agent run log lines (agents.RunLog) are
copied in by `services.store_run_logs` when agents writes them. The viewer and the API
read this one table, so one search finds a traceback and the run lines around it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Level(models.IntegerChoices):
    # Python's numbers, so "warning and above" is a range query on one indexed column.
    DEBUG = 10, "Debug"
    INFO = 20, "Info"
    WARNING = 30, "Warning"
    ERROR = 40, "Error"
    CRITICAL = 50, "Critical"


LEVEL_BY_NAME = {label.lower(): value for value, label in Level.choices}
NAME_BY_LEVEL = {value: label.lower() for value, label in Level.choices}


def level_name(value: int) -> str:
    """Return the lower-case name of a level number ("warning"), rounding down to a known level."""
    known = [level for level in NAME_BY_LEVEL if level <= value]
    return NAME_BY_LEVEL[max(known)] if known else "debug"


class Source(models.TextChoices):
    WEB = "web", "Web"
    WORKER = "worker", "Worker"
    BEAT = "beat", "Beat"
    AGENT = "agent", "Agent run log"
    COMMAND = "command", "Command"
    OTHER = "other", "Other"


class LogEntry(models.Model):
    """One logged line: when, how bad, where from, what, and everything around it."""

    at = models.DateTimeField(default=timezone.now)
    level = models.PositiveSmallIntegerField(choices=Level.choices, default=Level.WARNING)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.OTHER)
    logger = models.CharField(max_length=200, blank=True, help_text="The Python logger's name, or agents.run.")
    message = models.TextField()
    # Exception text with its traceback, pathname/lineno, request path, task id, extras.
    context = models.JSONField(default=dict, blank=True)
    host = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    # SET_NULL, not CASCADE: the log store has its own retention (LOG_RETENTION_DAYS); pruning
    # old runs must not erase the evidence of what went wrong, nor turn a run delete into a
    # delete of thousands of log rows. `agent` keeps naming the agent after the run is gone.
    run = models.ForeignKey(
        "agents.AgentRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="log_entries",
    )
    agent = models.CharField(max_length=64, blank=True, help_text="The agent's slug, for entries of a run.")

    class Meta:
        ordering = ["-id"]
        verbose_name = "log entry"
        verbose_name_plural = "log entries"
        # Read-only everywhere: entries are written by the handler and the run log copy only.
        default_permissions = ("view",)
        # The viewer pages newest first by id (keyset), so each filter's index ends in id.
        indexes = [
            models.Index(fields=["at"], name="logentry_at"),
            models.Index(fields=["level", "id"], name="logentry_level"),
            models.Index(fields=["source", "id"], name="logentry_source"),
            models.Index(fields=["run", "id"], name="logentry_run"),
            models.Index(fields=["agent", "id"], name="logentry_agent"),
        ]
        # PostgreSQL also gets a GIN index on the full-text vector (migration 0002, skipped on SQLite).

    def __str__(self) -> str:
        return f"[{self.level_name}] {self.message[:80]}"

    @property
    def level_name(self) -> str:
        return level_name(self.level)

    @property
    def exception(self) -> str:
        return str((self.context or {}).get("exception") or "")
