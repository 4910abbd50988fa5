"""Backups of the database and restores from them: each job is a row with status and times."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class BackupKind(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    MANUAL = "manual", "Manual"
    SAFETY = "safety", "Safety (before a restore)"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


class VerifyStatus(models.TextChoices):
    NONE = "none", "Not verified"
    QUEUED = "queued", "Verify queued"
    RUNNING = "running", "Verifying"
    PASSED = "passed", "Verified"
    FAILED = "failed", "Verify failed"


class Backup(models.Model):
    """One dump of the whole database, stored through the `backups` storage."""

    kind = models.CharField(max_length=10, choices=BackupKind.choices, default=BackupKind.MANUAL)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    vendor = models.CharField("database", max_length=20)  # "postgresql" or "sqlite"
    # The name in the backups storage; empty until the file is stored completely.
    file_name = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField("SHA-256", max_length=64, blank=True)
    # Rows per table in the dumped snapshot, {"table": count}; verify compares against it.
    row_counts = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text too: a restore can bring back a users table without this user.
    created_by_label = models.CharField("created by", max_length=150, blank=True)
    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    verify_status = models.CharField(max_length=10, choices=VerifyStatus.choices, default=VerifyStatus.NONE)
    verify_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Which job verified it: "scheduled" (after the nightly backup), "manual" or "command".
    verify_trigger = models.CharField(max_length=10, blank=True)
    verify_started_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    # {"sha256_ok": bool, "tables": {"t": {"expected": n, "actual": m}}, "mismatches": [...], "error": "..."}
    verify_result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        default_permissions = ("view",)
        permissions = [
            ("take_backup", "Can take and verify backups"),
            ("download_backup", "Can download backup files"),
            ("restore_backup", "Can restore the database from a backup"),
        ]

    def __str__(self) -> str:
        return self.file_name or f"backup #{self.pk}"

    @property
    def short_sha256(self) -> str:
        return self.sha256[:12]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def is_usable(self) -> bool:
        """A stored, complete file: the only kind that may be downloaded, verified or restored."""
        return self.status == JobStatus.SUCCEEDED and bool(self.file_name)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Restore(models.Model):
    """One restore of the database from a backup, after a safety backup of what was there."""

    backup = models.ForeignKey(Backup, null=True, on_delete=models.SET_NULL, related_name="restores")
    backup_label = models.CharField("backup", max_length=255)  # still readable once the backup is pruned
    safety_backup = models.ForeignKey(Backup, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField("requested by", max_length=150, blank=True)
    source = models.CharField(max_length=10, default="ui")  # ui, api or command
    queued_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"restore #{self.pk} from {self.backup_label}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE
