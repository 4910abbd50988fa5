"""Retention keeps the newest backup of each of the last N days and M weeks, over simulated dates."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from opscenter.backups import services
from opscenter.backups.models import Backup, BackupKind, JobStatus
from opscenter.models import AuditEntry

pytestmark = pytest.mark.django_db

UTC = ZoneInfo("UTC")


def _stored(store, when: datetime, *, kind=BackupKind.SCHEDULED, status=JobStatus.SUCCEEDED) -> Backup:
    backup = Backup.objects.create(kind=kind, status=status, vendor="sqlite", queued_at=when, started_at=when,
                                   finished_at=when + timedelta(minutes=1))
    if status == JobStatus.SUCCEEDED:
        backup.file_name = services.planned_name(backup)
        store.mkdir(parents=True, exist_ok=True)
        (store / backup.file_name).write_bytes(b"dump")
        backup.save(update_fields=["file_name"])
    return backup


def test_retention_keeps_the_newest_of_each_recent_day_and_week_and_prunes_the_rest(settings, backup_dirs):
    settings.TIME_ZONE = "UTC"
    settings.BACKUPS_KEEP_DAILY = 3
    settings.BACKUPS_KEEP_WEEKLY = 3
    store = backup_dirs[0]
    at = lambda day, hour=2: datetime(2026, 11, day, hour, 30, tzinfo=UTC)  # noqa: E731
    monday_night = _stored(store, at(23))
    monday_manual = _stored(store, at(23, 10), kind=BackupKind.MANUAL)  # newer on the same day
    sunday = _stored(store, at(22))  # ISO week 47
    saturday = _stored(store, at(21))
    friday = _stored(store, at(20))
    week46_sunday = _stored(store, at(15))
    week46_saturday = _stored(store, at(14))
    week45 = _stored(store, at(8))

    pruned = services.prune_backups(now=at(23, 12))

    kept = {monday_manual.pk, sunday.pk, saturday.pk, week46_sunday.pk}
    assert set(Backup.objects.values_list("pk", flat=True)) == kept
    assert set(pruned) == {monday_night.pk, friday.pk, week46_saturday.pk, week45.pk}
    assert sorted(p.name for p in store.iterdir()) == sorted(Backup.objects.values_list("file_name", flat=True))
    assert AuditEntry.objects.get(action="backup.pruned").changes["ids"] == pruned


def test_days_are_counted_in_the_site_time_zone(settings, backup_dirs):
    settings.TIME_ZONE = "Asia/Kolkata"
    settings.BACKUPS_KEEP_DAILY = 1
    settings.BACKUPS_KEEP_WEEKLY = 0
    # 19:00 UTC on the 22nd is already the 23rd in Kolkata: the same day as 02:00 UTC on the 23rd.
    late = _stored(backup_dirs[0], datetime(2026, 11, 22, 19, 0, tzinfo=UTC))
    next_morning = _stored(backup_dirs[0], datetime(2026, 11, 23, 2, 0, tzinfo=UTC))

    services.prune_backups(now=datetime(2026, 11, 23, 3, 0, tzinfo=UTC))

    assert list(Backup.objects.values_list("pk", flat=True)) == [next_morning.pk]
    assert not (backup_dirs[0] / late.file_name).exists()


def test_old_failures_go_and_running_or_recent_rows_stay(settings, backup_dirs):
    settings.BACKUPS_KEEP_DAILY = 7
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    old_failure = _stored(backup_dirs[0], now - timedelta(days=30), status=JobStatus.FAILED)
    recent_failure = _stored(backup_dirs[0], now - timedelta(days=1), status=JobStatus.FAILED)
    running = _stored(backup_dirs[0], now - timedelta(days=30), status=JobStatus.RUNNING)
    good = _stored(backup_dirs[0], now - timedelta(days=2))

    services.prune_backups(now=now)

    assert set(Backup.objects.values_list("pk", flat=True)) == {recent_failure.pk, running.pk, good.pk}
    assert not Backup.objects.filter(pk=old_failure.pk).exists()


def test_the_set_to_keep_is_computed_from_dates_alone():
    def fake(pk, day):
        return Backup(pk=pk, queued_at=datetime(2026, 11, day, tzinfo=UTC), finished_at=datetime(2026, 11, day, 3, tzinfo=UTC))

    backups = [fake(n, day) for n, day in enumerate([1, 2, 3, 8, 9, 15, 16, 22, 23], 1)]
    # Newest first: 23 (Mon, wk 48), 22 (Sun, wk 47), 16 (Mon, wk 47)... two days, two weeks.
    assert services.backups_to_keep(backups, daily=2, weekly=2) == {9, 8}
    assert services.backups_to_keep(backups, daily=1, weekly=4) == {9, 8, 6, 4}
