"""Business rules of backups: take, verify, restore, prune and reap.

A backup is good only when its whole file is stored and its checksum recorded: the dump
goes to a work file first, is hashed, is saved through the `backups` storage, and only
then is the row marked succeeded, with a conditional UPDATE that a reaped row refuses.
Whatever interrupts it (an exception, a killed process) leaves the row running or failed,
never succeeded; the reaper fails rows whose heartbeat stopped and removes their files.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.core.management.color import no_style
from django.core.signals import setting_changed
from django.db import connection, transaction
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from opscenter.audit import record_audit
from opscenter.models import AuditSource
from opscenter.services import DomainError

from . import engines
from .models import ACTIVE, Backup, BackupKind, JobStatus, Restore, VerifyStatus

logger = logging.getLogger(__name__)

SCHEDULE_NAME = "backups: daily backup"
SCHEDULE_TASK = "opscenter.backups.tasks.run_scheduled_backup"
# Tables a restore rewrites after the data is back (the catalog and the audit trail of the restore).
CATALOG_TABLES = ("backups_backup", "backups_restore")


class BackupInvalid(DomainError):
    code = "invalid"
    status = 400


class ConfirmationMismatch(BackupInvalid):
    """The typed confirmation does not name the backup."""

    fields = {"confirmation": ["This does not match the backup's file name or the word “restore”; nothing was restored."]}


# --- storage -------------------------------------------------------------------------------------

_storage: Storage | None = None


@receiver(setting_changed)
def _forget_storage(setting: str, **kwargs) -> None:
    global _storage
    if setting == "BACKUPS_STORAGE":
        _storage = None


def backup_storage() -> Storage:
    """Return the storage backups are kept in (local var/backups, or S3 when configured)."""
    global _storage
    if _storage is None:
        _storage = storages.create_storage(settings.BACKUPS_STORAGE)
    return _storage


def _work_dir() -> Path:
    path = Path(settings.BACKUPS_WORK_DIR)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _work_file(prefix: str, pk: int) -> Path:
    return _work_dir() / f"{prefix}-{pk}.part"


def _remove_work_file(path: Path) -> None:
    """Delete a work file and whatever SQLite left beside it (-wal, -shm, -journal)."""
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        candidate.unlink(missing_ok=True)


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def planned_name(backup: Backup) -> str:
    """Return the storage name a backup's file gets: vendor, start time (UTC) and id."""
    started = (backup.started_at or backup.queued_at).astimezone(UTC)
    ext = "dump" if backup.vendor == "postgresql" else "sqlite3"
    return f"opscenter-{backup.vendor}-{started:%Y%m%d-%H%M%S}-{backup.pk}.{ext}"


def _label(user) -> str:
    return user.get_username() if user is not None and getattr(user, "is_authenticated", False) else ""


def _user(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# --- taking a backup -----------------------------------------------------------------------------


def request_backup(*, by, source: str = AuditSource.UI, request: HttpRequest | None = None) -> Backup:
    """Queue a manual backup for the worker; refused while another one is queued or running."""
    with transaction.atomic():
        if Backup.objects.filter(status__in=ACTIVE).exists():
            raise DomainError("A backup is already queued or running; wait for it to finish.")
        backup = Backup.objects.create(kind=BackupKind.MANUAL, vendor=engines.vendor(), created_by=_user(by),
                                       created_by_label=_label(by))
        record_audit("backup.requested", actor=by, target=backup, source=source, request=request)
    from .tasks import run_backup

    run_backup.delay_on_commit(backup.pk)
    return backup


def take_backup(*, kind: str, by=None, source: str = AuditSource.SYSTEM) -> Backup:
    """Take a backup now, in this process (the schedule, safety backups, `manage.py backup_now`)."""
    reap_jobs()
    with transaction.atomic():
        backup = Backup.objects.create(kind=kind, vendor=engines.vendor(), created_by=_user(by),
                                       created_by_label=_label(by) or ("schedule" if kind == BackupKind.SCHEDULED else ""))
        record_audit("backup.requested", actor=by, target=backup, changes={"kind": kind}, source=source)
    return execute_backup(backup.pk) or backup


def claim_backup(backup_id: int) -> Backup | None:
    """Mark a queued backup running; None when another delivery of the task claimed it first."""
    now = timezone.now()
    if not Backup.objects.filter(pk=backup_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now, heartbeat_at=now
    ):
        return None
    return Backup.objects.get(pk=backup_id)


def execute_backup(backup_id: int) -> Backup | None:
    """Dump, hash and store one backup; mark it succeeded only once the whole file is stored."""
    backup = claim_backup(backup_id)
    if backup is None:
        return None
    work = _work_file("backup", backup.pk)
    stored: str | None = None
    storage = backup_storage()
    try:
        counts = engines.dump(work, beat=lambda: _beat(backup.pk))
        digest, size = _sha256(work)
        _beat(backup.pk)
        with work.open("rb") as handle:
            stored = storage.save(planned_name(backup), File(handle))
        if storage.size(stored) != size:
            raise engines.EngineError(f"The stored file has {storage.size(stored)} bytes, expected {size}.")
        with transaction.atomic():
            done = Backup.objects.filter(pk=backup.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.SUCCEEDED, file_name=stored, size=size, sha256=digest, row_counts=counts,
                finished_at=timezone.now(), error="",
            )
            if not done:
                # The reaper gave up on it meanwhile: the file was written by a run nobody trusts.
                raise engines.EngineError("The backup was failed by the reaper before it finished.")
            backup.refresh_from_db()
            record_audit("backup.succeeded", target=backup, changes={"size": size, "sha256": digest})
        logger.info("backup %s stored as %s (%s bytes)", backup.pk, stored, size)
        return backup
    except BaseException as exc:
        # Interrupted while saving, the storage may hold a partial file under the planned name.
        for name in {stored or "", planned_name(backup)} - {""}:
            with contextlib.suppress(Exception):
                if storage.exists(name):
                    storage.delete(name)
        _fail_backup(backup.pk, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        if not isinstance(exc, Exception):
            raise  # SystemExit, KeyboardInterrupt: failed the row, now let the process stop
        logger.warning("backup %s failed", backup.pk, exc_info=True)
        return Backup.objects.get(pk=backup.pk)
    finally:
        _remove_work_file(work)


def _beat(backup_id: int) -> None:
    Backup.objects.filter(pk=backup_id, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())


def _fail_backup(backup_id: int, error: str) -> None:
    with transaction.atomic():
        if Backup.objects.filter(pk=backup_id, status__in=ACTIVE).update(
            status=JobStatus.FAILED, finished_at=timezone.now(), error=error[:4000], file_name="", size=None,
            sha256="",
        ):
            record_audit("backup.failed", target=Backup.objects.get(pk=backup_id), changes={"error": error[:500]})


# --- verify --------------------------------------------------------------------------------------


def request_verify(backup: Backup, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None) -> Backup:
    """Queue a verify of `backup` (restore into a scratch database, compare row counts)."""
    if not backup.is_usable:
        raise DomainError("Only a succeeded backup can be verified.")
    with transaction.atomic():
        if not Backup.objects.filter(pk=backup.pk).exclude(
            verify_status__in=[VerifyStatus.QUEUED, VerifyStatus.RUNNING]
        ).update(verify_status=VerifyStatus.QUEUED, verify_requested_by=_user(by), verify_trigger="manual"):
            raise DomainError("This backup is being verified already.")
        backup.refresh_from_db()
        record_audit("backup.verify_requested", actor=by, target=backup, source=source, request=request)
    from .tasks import verify_backup

    verify_backup.delay_on_commit(backup.pk)
    return backup


def verify(backup_id: int, *, trigger: str = "", by=None) -> Backup | None:
    """Verify one backup in this process: checksum, restore into a scratch database, compare counts.

    Claims a queued verify (the task) or starts one directly (schedule, command); None when
    it is being verified elsewhere.
    """
    now = timezone.now()
    claim = Backup.objects.filter(pk=backup_id, status=JobStatus.SUCCEEDED)
    claim = claim.filter(verify_status=VerifyStatus.QUEUED) if not trigger else claim.exclude(
        verify_status__in=[VerifyStatus.QUEUED, VerifyStatus.RUNNING])
    fields: dict[str, Any] = {"verify_status": VerifyStatus.RUNNING, "verify_started_at": now}
    if trigger:
        fields.update(verify_trigger=trigger, verify_requested_by=_user(by))
    if not claim.update(**fields):
        return None
    backup = Backup.objects.get(pk=backup_id)
    work = _work_file("verify", backup.pk)
    result: dict[str, Any] = {"sha256_ok": False, "tables": {}, "mismatches": []}
    try:
        _fetch(backup, work)
        digest, _ = _sha256(work)
        result["sha256_ok"] = digest == backup.sha256
        if not result["sha256_ok"]:
            result["error"] = f"Checksum mismatch: the stored file hashes to {digest[:12]}…, recorded {backup.short_sha256}…."
        else:
            actual = engines.scratch_counts(work)
            expected = backup.row_counts or {}
            for table in sorted(set(expected) | set(actual)):
                pair = {"expected": expected.get(table), "actual": actual.get(table)}
                result["tables"][table] = pair
                if pair["expected"] != pair["actual"]:
                    result["mismatches"].append(table)
            if not expected:
                result["error"] = "No row counts were recorded with this backup."
    except Exception as exc:
        logger.warning("verify of backup %s failed", backup.pk, exc_info=True)
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
    finally:
        _remove_work_file(work)
    passed = result["sha256_ok"] and not result["mismatches"] and "error" not in result
    with transaction.atomic():
        Backup.objects.filter(pk=backup.pk, verify_status=VerifyStatus.RUNNING).update(
            verify_status=VerifyStatus.PASSED if passed else VerifyStatus.FAILED, verified_at=timezone.now(),
            verify_result=result,
        )
        backup.refresh_from_db()
        record_audit("backup.verified" if passed else "backup.verify_failed", target=backup,
                     changes={"mismatches": result["mismatches"], "error": result.get("error", "")})
    return backup


def _fetch(backup: Backup, path: Path) -> None:
    """Copy a stored backup file to a local work file."""
    with backup_storage().open(backup.file_name, "rb") as source, path.open("wb") as target:
        shutil.copyfileobj(source, target, 1024 * 1024)


def open_backup_file(backup: Backup, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None):
    """Open a succeeded backup's file for download (the caller streams and closes it); audited."""
    if not backup.is_usable:
        raise DomainError("Only a succeeded backup can be downloaded.")
    try:
        handle = backup_storage().open(backup.file_name, "rb")
    except FileNotFoundError:
        raise DomainError(f"The file {backup.file_name} is missing from the backup storage.") from None
    record_audit("backup.downloaded", actor=by, target=backup, source=source, request=request)
    return handle


# --- restore -------------------------------------------------------------------------------------


def confirmation_matches(backup: Backup, typed: str) -> bool:
    """Return whether `typed` confirms a restore of `backup`: its file name, or the word "restore"."""
    typed = (typed or "").strip()
    return bool(typed) and (typed == backup.file_name or typed.lower() == "restore")


def request_restore(
    backup: Backup, *, by, confirmation: str, source: str = AuditSource.UI, request: HttpRequest | None = None
) -> Restore:
    """Queue a restore of the database from `backup` (the worker takes a safety backup first)."""
    if not by.has_perm("backups.restore_backup"):
        raise DomainError("Only an Admin may restore a backup.")
    if not confirmation_matches(backup, confirmation):
        raise ConfirmationMismatch("The confirmation does not match: nothing was restored.")
    if not backup.is_usable:
        raise DomainError("Only a succeeded backup can be restored.")
    with transaction.atomic():
        if Restore.objects.filter(status__in=ACTIVE).exists():
            raise DomainError("A restore is already queued or running.")
        restore = Restore.objects.create(backup=backup, backup_label=backup.file_name, requested_by=by,
                                         requested_by_label=_label(by), source=source)
        record_audit("backup.restore_requested", actor=by, target=backup, changes={"restore": restore.pk},
                     source=source, request=request)
    from .tasks import restore_backup

    restore_backup.delay_on_commit(restore.pk)
    return restore


def restore_now(backup: Backup | None, *, path: Path | None = None, by=None, source: str = "command") -> Restore:
    """Restore in this process (`manage.py restore_backup`): from a backup row or a local file."""
    if (backup is None) == (path is None):
        raise ValueError("give a backup or a path")
    if backup is not None and not backup.is_usable:
        raise DomainError("Only a succeeded backup can be restored.")
    restore = Restore.objects.create(backup=backup, backup_label=backup.file_name if backup else str(path)[:255],
                                     requested_by=_user(by), requested_by_label=_label(by) or "manage.py",
                                     source=source)
    return execute_restore(restore.pk, path=path) or restore


def execute_restore(restore_id: int, *, path: Path | None = None) -> Restore | None:
    """Take a safety backup, then replace the database with the backup's data in one transaction."""
    now = timezone.now()
    if not Restore.objects.filter(pk=restore_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=now
    ):
        return None
    restore = Restore.objects.select_related("backup", "requested_by").get(pk=restore_id)
    work = _work_file("restore", restore.pk)
    try:
        if path is None:
            backup = restore.backup
            if backup is None or not backup.is_usable:
                raise DomainError("The backup is gone or not usable any more.")
            _fetch(backup, work)
            digest, _ = _sha256(work)
            if digest != backup.sha256:
                raise DomainError(f"The stored file does not match its checksum (got {digest[:12]}…, recorded "
                                  f"{backup.short_sha256}…): it was changed or damaged. Nothing was restored.")
            source_file = work
        else:
            source_file = path
        safety = take_backup(kind=BackupKind.SAFETY, by=restore.requested_by)
        Restore.objects.filter(pk=restore.pk).update(safety_backup=safety)
        if safety.status != JobStatus.SUCCEEDED:
            raise DomainError(f"The safety backup failed ({safety.error}); nothing was restored.")
        # The catalog describes files in the storage, which a restore does not touch: keep it
        # as it is now and write it back over the older copy the restored data brings along.
        catalog = _read_catalog()
        record_audit("backup.restore_started", actor=_user(restore.requested_by), target=restore,
                     changes={"safety_backup": safety.pk})  # overwritten by the restore; repeated below
        engines.restore(source_file)
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, DomainError) else str(exc)
        with transaction.atomic():
            Restore.objects.filter(pk=restore.pk, status=JobStatus.RUNNING).update(
                status=JobStatus.FAILED, finished_at=timezone.now(), error=error[:4000])
            record_audit("backup.restore_failed", actor=_user(restore.requested_by), target=restore,
                         changes={"error": error[:500]})
        if not isinstance(exc, Exception):
            raise
        logger.warning("restore %s failed", restore.pk, exc_info=True)
        return Restore.objects.get(pk=restore.pk)
    finally:
        _remove_work_file(work)
    finished = timezone.now()
    with transaction.atomic():
        _write_catalog(catalog, restore.pk, finished)
        restore = Restore.objects.get(pk=restore.pk)
        actor = get_user_model().objects.filter(pk=restore.requested_by_id).first()
        record_audit("backup.restored", actor=actor, target=restore,
                     changes={"backup": restore.backup_label, "safety_backup": restore.safety_backup_id,
                              "requested_by": restore.requested_by_label, "source": restore.source},
                     source=restore.source if restore.source in AuditSource.values else AuditSource.SYSTEM)
    logger.warning("database restored from %s (restore %s)", restore.backup_label, restore.pk)
    return restore


def _read_catalog() -> dict[str, list[dict]]:
    return {"backups": list(Backup.objects.values()), "restores": list(Restore.objects.values())}


def _write_catalog(catalog: dict[str, list[dict]], restore_id: int, finished: datetime) -> None:
    """Put the backup catalog back as it was before the restore, with this restore succeeded."""
    users = set(get_user_model().objects.values_list("pk", flat=True))
    user_fields = ("created_by_id", "verify_requested_by_id", "requested_by_id")

    def clean(row: dict) -> dict:
        # Users created after the backup was taken are gone with the restored data.
        return {k: (None if k in user_fields and v not in users else v) for k, v in row.items()}

    Restore.objects.all().delete()
    Backup.objects.all().delete()
    Backup.objects.bulk_create([Backup(**clean(row)) for row in catalog["backups"]])
    restores = []
    for row in catalog["restores"]:
        if row["id"] == restore_id:
            row = {**row, "status": JobStatus.SUCCEEDED, "finished_at": finished, "error": ""}
        restores.append(Restore(**clean(row)))
    Restore.objects.bulk_create(restores)
    statements = connection.ops.sequence_reset_sql(no_style(), [Backup, Restore])
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


# --- reaper and retention ------------------------------------------------------------------------


def reap_jobs(now: datetime | None = None) -> dict[str, list[int]]:
    """Fail backups, verifies and restores whose process stopped; remove their partial files."""
    now = now or timezone.now()
    lost = now - timedelta(seconds=settings.BACKUPS_LOST_AFTER_SECONDS)
    too_old = now - timedelta(seconds=settings.BACKUPS_TIMEOUT_SECONDS)
    reaped: dict[str, list[int]] = {"backups": [], "verifies": [], "restores": []}
    silent = Backup.objects.filter(
        Q(status=JobStatus.RUNNING, heartbeat_at__lt=lost) | Q(status=JobStatus.RUNNING, started_at__lt=too_old)
        | Q(status=JobStatus.QUEUED, queued_at__lt=too_old)
    )
    storage = backup_storage()
    for backup in silent:
        seen = (backup.heartbeat_at or backup.queued_at).isoformat(timespec="seconds")
        reason = ("Never started: no worker took it." if backup.status == JobStatus.QUEUED
                  else f"Interrupted: its process stopped (last heartbeat {seen}).")
        _fail_backup(backup.pk, reason)
        _remove_work_file(_work_file("backup", backup.pk))
        if backup.started_at:
            # Killed while saving to the storage: the partial file has its planned name.
            with contextlib.suppress(Exception):
                if storage.exists(planned_name(backup)):
                    storage.delete(planned_name(backup))
        reaped["backups"].append(backup.pk)
    stuck = Backup.objects.filter(
        Q(verify_status=VerifyStatus.RUNNING, verify_started_at__lt=too_old)
        | Q(verify_status=VerifyStatus.QUEUED, queued_at__lt=too_old, verify_started_at__isnull=True)
    )
    for backup in stuck:
        Backup.objects.filter(pk=backup.pk).update(
            verify_status=VerifyStatus.FAILED, verified_at=now,
            verify_result={"sha256_ok": False, "tables": {}, "mismatches": [], "error": "Interrupted: the verify stopped."},
        )
        _remove_work_file(_work_file("verify", backup.pk))
        reaped["verifies"].append(backup.pk)
    for restore in Restore.objects.filter(
        Q(status=JobStatus.RUNNING, started_at__lt=too_old) | Q(status=JobStatus.QUEUED, queued_at__lt=too_old)
    ):
        Restore.objects.filter(pk=restore.pk, status__in=ACTIVE).update(
            status=JobStatus.FAILED, finished_at=now, error="Interrupted: the restore stopped or never started.")
        _remove_work_file(_work_file("restore", restore.pk))
        reaped["restores"].append(restore.pk)
    _sweep_work_dir()
    if any(reaped.values()):
        record_audit("backup.reaped", changes=reaped)
    return reaped


def _sweep_work_dir() -> None:
    """Delete work files whose job is no longer running (left by a killed process)."""
    running = {
        "backup": set(Backup.objects.filter(status=JobStatus.RUNNING).values_list("pk", flat=True)),
        "verify": set(Backup.objects.filter(verify_status=VerifyStatus.RUNNING).values_list("pk", flat=True)),
        "restore": set(Restore.objects.filter(status=JobStatus.RUNNING).values_list("pk", flat=True)),
    }
    for path in _work_dir().glob("*.part*"):
        match = re.fullmatch(r"(backup|verify|restore)-(\d+)\.part.*", path.name)
        if match and int(match.group(2)) not in running[match.group(1)]:
            path.unlink(missing_ok=True)


def backups_to_keep(backups: list[Backup], *, daily: int, weekly: int) -> set[int]:
    """Return the ids to keep: the newest backup of each of the last `daily` days and `weekly` weeks that have one."""
    zone = timezone.get_default_timezone()
    keep: set[int] = set()
    days: set = set()
    weeks: set = set()
    for backup in sorted(backups, key=lambda b: (b.finished_at or b.queued_at, b.pk), reverse=True):
        local = (backup.finished_at or backup.queued_at).astimezone(zone)
        day = local.date()
        week = day.isocalendar()[:2]
        if day not in days and len(days) < daily:
            days.add(day)
            keep.add(backup.pk)
        if week not in weeks and len(weeks) < weekly:
            weeks.add(week)
            keep.add(backup.pk)
    return keep


def prune_backups(now: datetime | None = None) -> list[int]:
    """Delete the files and rows of backups outside the retention (N daily, M weekly) and old failures."""
    now = now or timezone.now()
    done = list(Backup.objects.filter(status=JobStatus.SUCCEEDED))
    keep = backups_to_keep(done, daily=settings.BACKUPS_KEEP_DAILY, weekly=settings.BACKUPS_KEEP_WEEKLY)
    # A backup being verified or restored from right now stays until that is over.
    busy = set(Restore.objects.filter(status__in=ACTIVE).values_list("backup_id", flat=True))
    doomed = [b for b in done if b.pk not in keep and b.pk not in busy
              and b.verify_status not in (VerifyStatus.QUEUED, VerifyStatus.RUNNING)]
    storage = backup_storage()
    pruned = []
    for backup in doomed:
        try:
            if backup.file_name and storage.exists(backup.file_name):
                storage.delete(backup.file_name)
        except Exception:
            logger.warning("could not delete %s; keeping its row", backup.file_name, exc_info=True)
            continue
        Backup.objects.filter(pk=backup.pk).delete()
        pruned.append(backup.pk)
    old_failures = Backup.objects.filter(
        status=JobStatus.FAILED, queued_at__lt=now - timedelta(days=max(settings.BACKUPS_KEEP_DAILY, 7)))
    pruned += list(old_failures.values_list("pk", flat=True))
    old_failures.delete()
    if pruned:
        record_audit("backup.pruned", changes={"ids": pruned, "files": [b.file_name for b in doomed if b.pk in pruned]})
    return pruned


# --- the schedule ----------------------------------------------------------------------------------


def run_scheduled() -> Backup | None:
    """Take the scheduled backup, verify it and prune; skipped while another backup runs."""
    reap_jobs()
    recent = timezone.now() - timedelta(minutes=10)
    if Backup.objects.filter(status__in=ACTIVE).exists() or Backup.objects.filter(
        kind=BackupKind.SCHEDULED, queued_at__gte=recent
    ).exists():
        # A redelivered task (worker lost after the backup) or a second beat must not double it.
        logger.info("scheduled backup skipped: one is running or was just taken")
        return None
    backup = take_backup(kind=BackupKind.SCHEDULED)
    if backup.status == JobStatus.SUCCEEDED:
        verify(backup.pk, trigger="scheduled")
        prune_backups()
    return Backup.objects.get(pk=backup.pk)


def ensure_schedule() -> bool:
    """Create the daily backup's periodic task once (then it is edited in the admin); True if created."""
    import zoneinfo

    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if PeriodicTask.objects.filter(name=SCHEDULE_NAME).exists():
        return False
    minute, hour, day_of_month, month_of_year, day_of_week = settings.BACKUPS_SCHEDULE.split()
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year, day_of_week=day_of_week,
        timezone=zoneinfo.ZoneInfo(settings.TIME_ZONE),
    )
    PeriodicTask.objects.get_or_create(
        name=SCHEDULE_NAME,
        defaults={"task": SCHEDULE_TASK, "crontab": crontab,
                  "description": "Backs up the database, verifies the backup and prunes old ones."},
    )
    return True


def next_scheduled_run() -> tuple[datetime | None, str]:
    """Return when the daily backup runs next (in its time zone) and its crontab text."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.select_related("crontab").filter(name=SCHEDULE_NAME).first()
    if task is None or task.crontab is None:
        return None, ""
    c = task.crontab
    text = f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week} ({c.timezone})"
    if not task.enabled:
        return None, text + ", disabled"
    remaining = c.schedule.remaining_estimate(task.last_run_at or timezone.now())
    return (timezone.now() + remaining).astimezone(c.timezone), text


# --- metrics ---------------------------------------------------------------------------------------


def last_success() -> Backup | None:
    return Backup.objects.filter(status=JobStatus.SUCCEEDED).exclude(kind=BackupKind.SAFETY).order_by(
        "-finished_at").first()


def busy() -> bool:
    """Return whether a backup, verify or restore is queued or running (the page polls meanwhile)."""
    return (Backup.objects.filter(Q(status__in=ACTIVE) | Q(verify_status__in=[VerifyStatus.QUEUED,
                                                                             VerifyStatus.RUNNING])).exists()
            or Restore.objects.filter(status__in=ACTIVE).exists())
