"""Verify restores a backup into a scratch database and compares its row counts with those recorded."""

from __future__ import annotations

import pytest
from django.db import connection

from opscenter.backups import services
from opscenter.backups.models import BackupKind, JobStatus, VerifyStatus
from opscenter.models import AuditEntry
from tests.factories import make_advisor, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backup():
    for _ in range(2):
        make_advisor()
    backup = services.take_backup(kind=BackupKind.MANUAL)
    assert backup.status == JobStatus.SUCCEEDED, backup.error
    return backup


def _scratch_databases() -> list[str]:
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{connection.settings_dict['NAME'][:40]}_verify_%"])
        return [row[0] for row in cursor.fetchall()]


def test_verify_of_a_good_backup_passes_with_identical_counts_per_table(backup):
    verified = services.verify(backup.pk, trigger="manual")
    assert verified.verify_status == VerifyStatus.PASSED, verified.verify_result
    result = verified.verify_result
    assert result["sha256_ok"] is True and result["mismatches"] == []
    assert result["tables"]["advisors_advisor"] == {"expected": 2, "actual": 2}
    assert set(result["tables"]) == set(backup.row_counts)
    assert verified.verified_at is not None and verified.verify_trigger == "manual"
    assert _scratch_databases() == []  # the scratch database was dropped
    assert AuditEntry.objects.filter(action="backup.verified", target_id=str(backup.pk)).exists()


def test_verify_fails_on_a_tampered_file(backup, backup_dirs):
    path = backup_dirs[0] / backup.file_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    verified = services.verify(backup.pk, trigger="manual")

    assert verified.verify_status == VerifyStatus.FAILED
    assert verified.verify_result["sha256_ok"] is False
    assert "Checksum mismatch" in verified.verify_result["error"]


def test_verify_detects_a_row_count_mismatch(backup):
    # As if the dump had lost rows: what the file holds no longer matches what was recorded.
    backup.row_counts = {**backup.row_counts, "advisors_advisor": 5}
    backup.save(update_fields=["row_counts"])

    verified = services.verify(backup.pk, trigger="manual")

    assert verified.verify_status == VerifyStatus.FAILED
    assert verified.verify_result["mismatches"] == ["advisors_advisor"]
    assert verified.verify_result["tables"]["advisors_advisor"] == {"expected": 5, "actual": 2}
    assert _scratch_databases() == []


def test_verify_fails_when_the_file_is_missing(backup, backup_dirs):
    (backup_dirs[0] / backup.file_name).unlink()
    verified = services.verify(backup.pk, trigger="manual")
    assert verified.verify_status == VerifyStatus.FAILED
    assert "FileNotFoundError" in verified.verify_result["error"]


def test_a_requested_verify_runs_as_a_task_and_records_who_asked(backup, inline_tasks):
    operator = make_user("Operator")
    services.request_verify(backup, by=operator)
    backup.refresh_from_db()
    assert backup.verify_status == VerifyStatus.PASSED
    assert backup.verify_requested_by == operator and backup.verify_trigger == "manual"


def test_a_second_verify_while_one_is_queued_is_refused(backup):
    operator = make_user("Operator")
    services.request_verify(backup, by=operator)  # no worker here: it stays queued
    with pytest.raises(services.DomainError, match="being verified"):
        services.request_verify(backup, by=operator)
