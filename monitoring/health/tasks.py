"""Celery tasks of the health checks: both safe to run twice (the claim makes the second a no-op)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="monitoring.health.tasks.dispatch_checks", ignore_result=True)
def dispatch_checks() -> dict:
    """Run every health check that is due (beat starts this every few seconds)."""
    from .services import dispatch_due_checks

    return asdict(dispatch_due_checks())


@shared_task(name="monitoring.health.tasks.prune_history", ignore_result=True)
def prune_history() -> dict:
    """Delete health results and flips older than their retention."""
    from .services import prune_history as prune

    deleted = prune()
    if any(deleted.values()):
        logger.info("health history pruned: %s", deleted)
    return deleted
