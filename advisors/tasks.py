"""Celery tasks of the advisors app: each takes ids, reloads rows and is safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


# max_retries=None: the attempt budget is DELIVERY_MAX_ATTEMPTS, counted on the row by
# advisors.services.deliver (a retry by hand starts a new one), not by Celery.
@shared_task(name="advisors.tasks.deliver_content", bind=True, max_retries=None, ignore_result=True)
def deliver_content(self, delivery_id: int) -> None:
    """Send one delivery; a retryable failure comes back after the back-off the service chose.

    Safe to run twice: a duplicate finds nothing to claim. One that arrives early (before
    the back-off ends, or while another worker is sending) comes back when the wait is
    over, so a send whose worker died is failed as outcome unknown, never sent again.
    """
    from .services import DeliveryRetry, deliver, delivery_wait

    wait = delivery_wait(delivery_id)
    # Run eagerly (in-process), a retry would run at once: send (or settle) now instead.
    if wait is not None and not self.request.is_eager:
        raise self.retry(countdown=wait)
    try:
        deliver(delivery_id)
    except DeliveryRetry as exc:
        raise self.retry(countdown=exc.delay, exc=exc) from None


@shared_task(name="advisors.tasks.reap_deliveries", ignore_result=True)
def reap_deliveries() -> dict:
    """Fail deliveries whose send never reported back; queue again those whose task was lost."""
    from .services import reap_deliveries as reap

    reaped = reap()
    if any(reaped.values()):
        logger.warning("delivery reaper: %s", reaped)
    return reaped
