"""manage.py backup_now / restore_backup, the daily schedule, and the backup metrics."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from advisors.models import Advisor
from monitoring.registry import get_metric, read_metric
from opscenter.backups import services
from opscenter.backups.models import Backup, BackupKind, JobStatus, Restore, VerifyStatus
from tests.factories import make_advisor

pytestmark = pytest.mark.django_db(transaction=True)


def _backup_now(*args) -> str:
    out = io.StringIO()
    call_command("backup_now", *args, stdout=out)
    return out.getvalue()


def test_backup_now_takes_and_verifies_a_backup():
    make_advisor()
    out = _backup_now("--verify")
    backup = Backup.objects.get()
    assert backup.status == JobStatus.SUCCEEDED and backup.verify_status == VerifyStatus.PASSED
    assert backup.verify_trigger == "command"
    assert backup.file_name in out and "row counts identical" in out


def test_restore_backup_with_yes_restores_by_id():
    make_advisor(name="Old")
    _backup_now()
    make_advisor(name="New")
    out = io.StringIO()
    call_command("restore_backup", str(Backup.objects.get().pk), "--yes", stdout=out)
    assert list(Advisor.objects.values_list("name", flat=True)) == ["Old"]
    assert "Restored from" in out.getvalue()
    assert Restore.objects.get().source == "command"


def test_restore_backup_asks_and_a_no_restores_nothing(monkeypatch):
    make_advisor(name="Old")
    _backup_now()
    make_advisor(name="New")
    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    with pytest.raises(CommandError, match="Not confirmed"):
        call_command("restore_backup", Backup.objects.get().file_name, stdout=io.StringIO())
    assert Advisor.objects.count() == 2 and not Restore.objects.exists()


def test_restore_backup_by_file_name_after_typing_restore(monkeypatch):
    make_advisor(name="Old")
    _backup_now()
    make_advisor(name="New")
    monkeypatch.setattr("builtins.input", lambda prompt="": "restore")
    call_command("restore_backup", Backup.objects.get().file_name, stdout=io.StringIO())
    assert list(Advisor.objects.values_list("name", flat=True)) == ["Old"]


def test_restore_backup_from_a_downloaded_file(backup_dirs, tmp_path):
    make_advisor(name="Old")
    _backup_now()
    copy = tmp_path / "copy.dump"
    copy.write_bytes((backup_dirs[0] / Backup.objects.get().file_name).read_bytes())
    make_advisor(name="New")
    call_command("restore_backup", str(copy), "--yes", stdout=io.StringIO())
    assert list(Advisor.objects.values_list("name", flat=True)) == ["Old"]
    assert Restore.objects.get().backup_label == str(copy)


def test_restore_backup_refuses_unknown_and_failed_backups():
    with pytest.raises(CommandError, match="No backup"):
        call_command("restore_backup", "9999", "--yes")
    failed = Backup.objects.create(vendor="sqlite", status=JobStatus.FAILED)
    with pytest.raises(CommandError, match="only a succeeded backup"):
        call_command("restore_backup", str(failed.pk), "--yes")


def test_the_daily_schedule_is_created_once_in_the_site_time_zone_and_admin_edits_stay(settings):
    PeriodicTask.objects.filter(name=services.SCHEDULE_NAME).delete()
    assert services.ensure_schedule() is True
    task = PeriodicTask.objects.get(name=services.SCHEDULE_NAME)
    assert task.task == "opscenter.backups.tasks.run_scheduled_backup"
    assert (task.crontab.minute, task.crontab.hour) == ("30", "2")
    assert str(task.crontab.timezone) == settings.TIME_ZONE
    task.crontab.hour = "4"
    task.crontab.save()
    assert services.ensure_schedule() is False
    assert PeriodicTask.objects.get(name=services.SCHEDULE_NAME).crontab.hour == "4"
    next_run, text = services.next_scheduled_run()
    assert next_run.hour == 4 and text.startswith("30 4 * * *")


def test_the_scheduled_job_backs_up_verifies_and_prunes_and_does_not_run_twice(settings):
    settings.BACKUPS_KEEP_DAILY = 1
    settings.BACKUPS_KEEP_WEEKLY = 0
    make_advisor()
    first = services.run_scheduled()
    assert first.kind == BackupKind.SCHEDULED and first.status == JobStatus.SUCCEEDED
    assert first.verify_status == VerifyStatus.PASSED and first.verify_trigger == "scheduled"
    assert services.run_scheduled() is None  # a redelivery minutes later does nothing
    Backup.objects.filter(pk=first.pk).update(queued_at=first.queued_at.replace(year=2025))
    second = services.run_scheduled()
    assert second.status == JobStatus.SUCCEEDED
    # Keep one daily: the new one; the first was pruned with its file.
    assert list(Backup.objects.values_list("pk", flat=True)) == [second.pk]


def test_metrics_report_the_last_good_backup_and_its_verification():
    success = get_metric("opscenter_backup_last_success_timestamp_seconds")
    verified = get_metric("opscenter_backup_last_verified_ok")
    assert read_metric(success) == []
    assert read_metric(verified)[0].value == 0.0
    make_advisor()
    backup = services.take_backup(kind=BackupKind.MANUAL)
    assert read_metric(success)[0].value == pytest.approx(backup.finished_at.timestamp())
    assert read_metric(verified)[0].value == 0.0
    services.verify(backup.pk, trigger="manual")
    assert read_metric(verified)[0].value == 1.0
    assert read_metric(get_metric("opscenter_backup_last_size_bytes"))[0].value == backup.size
