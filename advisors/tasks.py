"""Celery tasks of the advisors app."""

from __future__ import annotations

from celery import shared_task

from .transports import TransportError


@shared_task(
    name="advisors.tasks.deliver_content",
    autoretry_for=(TransportError,),
    retry_backoff=30,
    retry_backoff_max=1800,
    retry_jitter=True,
    max_retries=8,
)
def deliver_content(delivery_id: int) -> None:
    """Send one delivery; retryable transport errors back off and try again."""
    from .services import deliver

    deliver(delivery_id)
