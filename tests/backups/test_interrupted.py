"""A backup interrupted midway — by an exception or a killed process — is never marked good."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files import File
from django.utils import timezone

from opscenter.backups import engines, services
from opscenter.backups.models import Backup, BackupKind, JobStatus
from tests.processes import ROOT, subprocess_database_url

pytestmark = pytest.mark.django_db(transaction=True)


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_an_exception_midway_through_the_dump_fails_the_backup_and_leaves_no_file(backup_dirs, monkeypatch):
    def broken_dump(path, *, beat=None):
        path.write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(engines, "dump", broken_dump)
    backup = services.take_backup(kind=BackupKind.MANUAL)

    assert backup.status == JobStatus.FAILED
    assert "No space left on device" in backup.error
    assert backup.file_name == "" and backup.sha256 == "" and backup.size is None
    assert _files(backup_dirs[0]) == [] and _files(backup_dirs[1]) == []


def test_an_exception_while_storing_removes_the_partial_stored_file(backup_dirs, monkeypatch):
    real_chunks = File.chunks

    def failing_chunks(self, chunk_size=None):
        yield next(iter(real_chunks(self, 1024)))
        raise ConnectionResetError("storage went away")

    monkeypatch.setattr(File, "chunks", failing_chunks)
    backup = services.take_backup(kind=BackupKind.MANUAL)

    assert backup.status == JobStatus.FAILED and "storage went away" in backup.error
    assert _files(backup_dirs[0]) == [] and _files(backup_dirs[1]) == []


def test_a_backup_reaped_while_it_ran_is_not_marked_good_when_it_finishes(backup_dirs, monkeypatch):
    real_dump = engines.dump

    def dump_then_get_reaped(path, *, beat=None):
        counts = real_dump(path, beat=beat)
        later = timezone.now() + timedelta(seconds=settings.BACKUPS_LOST_AFTER_SECONDS + 1)
        assert services.reap_jobs(now=later)["backups"]  # its heartbeat looked stale
        return counts

    monkeypatch.setattr(engines, "dump", dump_then_get_reaped)
    backup = services.take_backup(kind=BackupKind.MANUAL)

    assert backup.status == JobStatus.FAILED
    assert _files(backup_dirs[0]) == []


@pytest.mark.parametrize("stage", ["dump", "store"])
def test_a_killed_backup_process_is_failed_by_the_reaper_and_its_partial_files_removed(backup_dirs, stage):
    store, work = backup_dirs
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "OPSCENTER_VAR_DIR": str(settings.VAR_DIR),
        "REDIS_URL": settings.REDIS_URL,
        "BACKUPS_DIR": str(store),
        "BACKUPS_WORK_DIR": str(work),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen([sys.executable, "-m", "tests.backups.slow_backup", stage], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:  # until it is midway
            lines.append(line)
            if line.strip() in {"DUMPING", "STORING"}:
                break
        else:
            pytest.fail("the backup process ended early:\n" + "".join(lines))
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    backup = Backup.objects.get()
    assert backup.status == JobStatus.RUNNING  # nobody has looked yet; it is not good
    partial = _files(work) if stage == "dump" else _files(store)
    assert partial, "the killed process should have left a partial file behind"

    # Not yet silent for long enough: the reaper leaves it alone.
    assert services.reap_jobs()["backups"] == []
    later = timezone.now() + timedelta(seconds=settings.BACKUPS_LOST_AFTER_SECONDS + 1)
    assert services.reap_jobs(now=later)["backups"] == [backup.pk]

    backup.refresh_from_db()
    assert backup.status == JobStatus.FAILED and "Interrupted" in backup.error
    assert backup.file_name == "" and backup.sha256 == ""
    assert _files(work) == [] and _files(store) == []


def test_the_next_backup_reaps_a_stuck_one_first(backup_dirs):
    stuck = Backup.objects.create(vendor=engines.vendor(), status=JobStatus.RUNNING,
                                  started_at=timezone.now() - timedelta(days=1),
                                  heartbeat_at=timezone.now() - timedelta(days=1))
    (backup_dirs[1]).mkdir(parents=True, exist_ok=True)
    (backup_dirs[1] / f"backup-{stuck.pk}.part").write_bytes(b"left over")

    fresh = services.take_backup(kind=BackupKind.MANUAL)

    stuck.refresh_from_db()
    assert stuck.status == JobStatus.FAILED
    assert fresh.status == JobStatus.SUCCEEDED
    assert _files(backup_dirs[1]) == []
