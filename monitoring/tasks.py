"""Celery tasks of the metric store: sample, roll up, prune (all run by beat, all safe to repeat)."""

from __future__ import annotations

from celery import shared_task

from . import services, store


@shared_task(name="monitoring.tasks.sample_metrics", ignore_result=True)
def sample_metrics() -> int:
    """Store the current value of every stored registry metric and publish the system figures."""
    return services.sample_registry()


@shared_task(name="monitoring.tasks.rollup_metrics", ignore_result=True)
def rollup_metrics() -> dict:
    """Roll raw samples up into 1-minute, 1-hour and 1-day buckets, catching up after downtime."""
    return {str(k): v for k, v in store.rollup().items()}


@shared_task(name="monitoring.tasks.prune_metrics", ignore_result=True)
def prune_metrics() -> dict:
    """Delete metric data past its retention (never before it is rolled up)."""
    return store.prune()
