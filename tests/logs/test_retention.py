"""Retention: entries older than LOG_RETENTION_DAYS go, in chunks, and a second pass finds nothing."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from monitoring.logs.models import LogEntry
from monitoring.logs.services import prune_entries
from monitoring.logs.tasks import prune_log_entries
from tests.logs.conftest import make_entry


def test_entries_older_than_the_retention_are_pruned_in_chunks(db):
    for days in (30, 20, 15):
        make_entry(f"{days} days old", ago=timedelta(days=days))
    make_entry("13 days old", ago=timedelta(days=13))
    make_entry("fresh")

    deleted = prune_entries(days=14, chunk=2)

    assert deleted == 3
    assert sorted(LogEntry.objects.values_list("message", flat=True)) == ["13 days old", "fresh"]
    assert prune_entries(days=14, chunk=2) == 0


def test_simulated_time_moves_the_cut_off(db):
    make_entry("13 days old", ago=timedelta(days=13))
    make_entry("fresh")
    now = timezone.now()

    assert prune_entries(now=now, days=14) == 0
    assert prune_entries(now=now + timedelta(days=2), days=14) == 1
    assert prune_entries(now=now + timedelta(days=15), days=14) == 1
    assert not LogEntry.objects.exists()


def test_the_beat_task_uses_the_retention_setting(db, settings):
    settings.LOG_RETENTION_DAYS = 3
    make_entry("4 days old", ago=timedelta(days=4))
    make_entry("2 days old", ago=timedelta(days=2))

    assert prune_log_entries() == 1
    assert list(LogEntry.objects.values_list("message", flat=True)) == ["2 days old"]


def test_pruning_is_on_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["logs: prune old entries"]
    assert entry["task"] == prune_log_entries.name
    assert settings.LOG_RETENTION_DAYS == 14
