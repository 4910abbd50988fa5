"""Beat tasks of the log store."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="monitoring.logs.tasks.prune_log_entries", ignore_result=True)
def prune_log_entries() -> int:
    """Delete entries older than LOG_RETENTION_DAYS, in chunks (safe to run twice)."""
    from .services import prune_entries

    return prune_entries()
