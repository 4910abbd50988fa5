"""Backup → change → restore brings every table's rows back, on PostgreSQL and SQLite alike."""

from __future__ import annotations

import pytest
from django.db import connection

from advisors.models import Advisor
from opscenter.backups import engines, services
from opscenter.backups.models import Backup, BackupKind, JobStatus, Restore
from opscenter.models import AuditEntry
from tests.factories import make_advisor, make_user

pytestmark = pytest.mark.django_db(transaction=True)

# Rewritten after a restore on purpose: the catalog is put back as it was, and the restore is audited.
REWRITTEN = {*services.CATALOG_TABLES, "opscenter_auditentry"}


def _data_counts(counts: dict[str, int]) -> dict[str, int]:
    return {table: n for table, n in counts.items() if table not in REWRITTEN}


def test_backup_records_the_row_count_of_every_table_and_stores_the_file(backup_dirs, test_database_only):
    for _ in range(3):
        make_advisor()
    before = engines.live_counts()
    backup = services.take_backup(kind=BackupKind.MANUAL)
    assert backup.status == JobStatus.SUCCEEDED, backup.error
    assert backup.vendor == connection.vendor
    assert _data_counts(backup.row_counts) == _data_counts(before)
    assert backup.row_counts["advisors_advisor"] == 3
    stored = backup_dirs[0] / backup.file_name
    assert stored.stat().st_size == backup.size
    assert len(backup.sha256) == 64
    assert list(backup_dirs[1].iterdir()) == []  # the work file is gone


def test_restore_brings_back_deleted_and_changed_rows_with_identical_counts(test_database_only):
    keep = [make_advisor(name=f"Kept {n}") for n in range(4)]
    make_user("Viewer", username="viewer-before")
    backup = services.take_backup(kind=BackupKind.MANUAL)
    assert backup.status == JobStatus.SUCCEEDED, backup.error
    counts_at_backup = _data_counts(engines.live_counts())

    Advisor.objects.filter(pk=keep[0].pk).delete()
    Advisor.objects.filter(pk=keep[1].pk).update(name="Changed after the backup")
    make_advisor(name="Added after the backup")
    make_user(username="someone-new")
    assert _data_counts(engines.live_counts()) != counts_at_backup

    restore = services.restore_now(backup)

    assert restore.status == JobStatus.SUCCEEDED, restore.error
    assert _data_counts(engines.live_counts()) == counts_at_backup
    assert sorted(Advisor.objects.values_list("name", flat=True)) == [f"Kept {n}" for n in range(4)]
    assert not Advisor.objects.filter(name="Added after the backup").exists()
    from django.contrib.auth import get_user_model

    usernames = set(get_user_model().objects.values_list("username", flat=True))
    assert "viewer-before" in usernames and "someone-new" not in usernames


def test_restore_keeps_the_catalog_takes_a_safety_backup_and_audits_after_the_data_is_back():
    make_advisor()
    backup = services.take_backup(kind=BackupKind.MANUAL)
    make_advisor()
    restore = services.restore_now(backup)
    assert restore.status == JobStatus.SUCCEEDED, restore.error
    # The restored data knew only a running backup #1; the catalog is as it was before the restore.
    safety = Backup.objects.get(kind=BackupKind.SAFETY)
    assert restore.safety_backup_id == safety.pk and safety.status == JobStatus.SUCCEEDED
    assert Backup.objects.get(pk=backup.pk).status == JobStatus.SUCCEEDED
    assert Restore.objects.get().status == JobStatus.SUCCEEDED
    audited = AuditEntry.objects.filter(action="backup.restored").get()
    assert audited.target_id == str(restore.pk)
    assert audited.changes["safety_backup"] == safety.pk
    # The safety backup holds the data from just before the restore: two advisors.
    assert safety.row_counts["advisors_advisor"] == 2
    # New rows after the restore do not collide with the ids put back.
    assert services.take_backup(kind=BackupKind.MANUAL).pk > safety.pk


def test_restoring_the_safety_backup_undoes_a_restore():
    make_advisor(name="Old")
    backup = services.take_backup(kind=BackupKind.MANUAL)
    make_advisor(name="Newer")
    first = services.restore_now(backup)
    assert list(Advisor.objects.values_list("name", flat=True)) == ["Old"]
    second = services.restore_now(first.safety_backup)
    assert second.status == JobStatus.SUCCEEDED, second.error
    assert sorted(Advisor.objects.values_list("name", flat=True)) == ["Newer", "Old"]


def test_a_restore_from_a_file_whose_checksum_changed_is_refused_and_nothing_changes(backup_dirs):
    make_advisor(name="Before")
    backup = services.take_backup(kind=BackupKind.MANUAL)
    make_advisor(name="After")
    path = backup_dirs[0] / backup.file_name
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")

    restore = services.restore_now(backup)

    assert restore.status == JobStatus.FAILED
    assert "checksum" in restore.error
    assert sorted(Advisor.objects.values_list("name", flat=True)) == ["After", "Before"]
    assert not Backup.objects.filter(kind=BackupKind.SAFETY).exists()  # refused before anything was done
