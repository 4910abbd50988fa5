"""Celery tasks of backups: each takes ids, reloads rows and is safe to run twice (rows are claimed)."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="opscenter.backups.tasks.run_backup", ignore_result=True)
def run_backup(backup_id: int) -> None:
    """Take one queued backup (a duplicate delivery finds it claimed and does nothing)."""
    from .services import execute_backup

    execute_backup(backup_id)


@shared_task(name="opscenter.backups.tasks.verify_backup", ignore_result=True)
def verify_backup(backup_id: int) -> None:
    """Verify one backup whose verify is queued."""
    from .services import verify

    verify(backup_id)


@shared_task(name="opscenter.backups.tasks.restore_backup", ignore_result=True)
def restore_backup(restore_id: int) -> None:
    """Run one queued restore: safety backup first, then the restore in one transaction."""
    from .services import execute_restore

    execute_restore(restore_id)


@shared_task(name="opscenter.backups.tasks.run_scheduled_backup", ignore_result=True)
def run_scheduled_backup() -> int | None:
    """Take, verify and prune on behalf of the daily schedule."""
    from .services import run_scheduled

    backup = run_scheduled()
    return backup.pk if backup else None


@shared_task(name="opscenter.backups.tasks.reap_backups", ignore_result=True)
def reap_backups() -> dict:
    """Fail backup jobs whose process stopped and remove their partial files."""
    from .services import reap_jobs

    reaped = reap_jobs()
    if any(reaped.values()):
        logger.warning("backup reaper: %s", reaped)
    return reaped
