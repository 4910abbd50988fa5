"""Celery tasks of the agents app: each takes ids, reloads rows and is safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


@shared_task(name="agents.tasks.execute_run", bind=True)
def execute_run(self, run_id: int) -> str | None:
    """Run one queued agent run (a duplicate delivery finds it claimed and does nothing)."""
    from .runtime import execute

    return execute(run_id, worker=self.request.hostname or "")


@shared_task(name="agents.tasks.reap_runs", ignore_result=True)
def reap_runs() -> dict:
    """Fail runs whose worker or reporter went silent; settle parents left waiting."""
    from .services import reap_runs as reap

    reaped = reap()
    if any(reaped.values()):
        logger.warning("reaper: %s", reaped)
    return reaped


@shared_task(name="agents.tasks.run_scheduled_agent", ignore_result=True)
def run_scheduled_agent(slug: str) -> int | None:
    """Start the agent `slug` on behalf of its schedule."""
    from .services import run_scheduled

    run = run_scheduled(slug)
    return run.pk if run else None


@shared_task(name="agents.tasks.send_webhook_trigger", bind=True, ignore_result=True)
def send_webhook_trigger(self, run_id: int) -> None:
    """POST a webhook agent's trigger; back off and retry; fail the run after the last attempt."""
    from .models import AgentRun, RunStatus
    from .services import finish_run, publish_run
    from .webhooks import WebhookError, post_trigger

    run = AgentRun.objects.select_related("agent").filter(pk=run_id).first()
    if run is None or run.status != RunStatus.QUEUED:
        return  # cancelled, or already accepted by the receiver
    number = run.webhook_attempts.count() + 1
    try:
        post_trigger(run, number)
    except WebhookError as exc:
        last = number >= settings.WEBHOOK_MAX_ATTEMPTS
        if exc.permanent or last:
            reason = "refused" if exc.permanent else f"failed {number} times"
            finish_run(run.pk, RunStatus.FAILED, error=f"Webhook {reason}: {exc}", allow_retry=False)
            return
        delay = min(300, settings.WEBHOOK_RETRY_DELAY_SECONDS * 2 ** (number - 1))
        raise self.retry(countdown=delay, max_retries=None) from None
    # The receiver accepted the run: it is running until the agent reports otherwise.
    now = timezone.now()
    with transaction.atomic():
        if AgentRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
            status=RunStatus.RUNNING, started_at=now, heartbeat_at=now
        ):
            run.refresh_from_db()
            publish_run(run)


def revoke_quietly(task_id: str) -> None:
    """Ask workers to drop a queued task; the run's claim makes this an optimisation only."""
    try:
        from opscenter.celery import app

        app.control.revoke(task_id)
    except Exception:
        logger.warning("could not revoke task %s", task_id, exc_info=True)
