"""Celery tasks of the inbound webhook: safe to run twice (events are claimed before processing)."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="inbound.tasks.process_inbound_events", ignore_result=True)
def process_inbound_events() -> dict:
    """Process every due inbound event: new ones, ones whose back-off ended, ones whose worker died."""
    from .services import process_pending

    totals = process_pending()
    if totals["failed"]:
        logger.warning("inbound events failed for good: %s", totals)
    return totals
