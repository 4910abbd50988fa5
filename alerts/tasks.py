"""Celery tasks of alerting: each takes ids or nothing, and is safe to run twice."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="alerts.tasks.evaluate_alerts", ignore_result=True)
def evaluate_alerts() -> dict:
    """Run one evaluation cycle of every enabled rule (beat, every ALERTS_EVALUATION_SECONDS)."""
    from .evaluation import run_cycle

    return run_cycle()


@shared_task(name="alerts.tasks.dispatch_notifications", ignore_result=True)
def dispatch_notifications() -> dict:
    """Group due notification requests into messages, escalate, repeat, and send what is due."""
    from .notify import dispatch_due

    return dispatch_due()


@shared_task(name="alerts.tasks.send_notification", ignore_result=True)
def send_notification(notification_id: int) -> str:
    """Send one notification if it is due and nobody else holds it."""
    from .notify import send_notification as send

    return send(notification_id)


@shared_task(name="alerts.tasks.record_slos", ignore_result=True)
def record_slos() -> int:
    """Recompute every SLO's figures and store them as metrics (burn-rate rules read them)."""
    from .slo import record_slos as record

    return record()


@shared_task(name="alerts.tasks.prune_alerts", ignore_result=True)
def prune_alerts() -> dict:
    """Delete resolved alerts (with their timeline) and sent notifications past their retention."""
    from .evaluation import prune_resolved

    return prune_resolved()
