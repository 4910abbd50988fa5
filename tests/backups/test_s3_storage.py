"""Backups in an S3-compatible bucket (django-storages), against moto's in-process S3.

Runs only where django-storages, boto3 and moto are installed (they are not pinned yet); the
S3 API is an outside-network boundary, so the fake bucket stands in for it.
"""

from __future__ import annotations

import hashlib

import pytest

pytest.importorskip("storages")
moto = pytest.importorskip("moto")

import boto3  # noqa: E402

from opscenter.backups import services  # noqa: E402
from opscenter.backups.models import BackupKind, JobStatus, VerifyStatus  # noqa: E402
from tests.factories import make_advisor  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

BUCKET = "ops-backups"


@pytest.fixture
def bucket(settings, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        settings.BACKUPS_STORAGE = {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": BUCKET, "location": "opscenter-backups", "region_name": "us-east-1",
                        "default_acl": None, "file_overwrite": False},
        }
        yield client


def _keys(client) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_backup_is_stored_in_the_bucket_verified_downloaded_and_pruned(bucket, settings):
    make_advisor()
    backup = services.take_backup(kind=BackupKind.MANUAL)
    assert backup.status == JobStatus.SUCCEEDED, backup.error
    assert _keys(bucket) == [f"opscenter-backups/{backup.file_name}"]

    assert services.verify(backup.pk, trigger="manual").verify_status == VerifyStatus.PASSED
    handle = services.open_backup_file(backup, by=None)
    assert hashlib.sha256(handle.read()).hexdigest() == backup.sha256
    handle.close()

    settings.BACKUPS_KEEP_DAILY = 1
    settings.BACKUPS_KEEP_WEEKLY = 0
    newer = services.take_backup(kind=BackupKind.MANUAL)
    services.prune_backups()
    assert _keys(bucket) == [f"opscenter-backups/{newer.file_name}"]


def test_a_changed_object_in_the_bucket_fails_verify(bucket):
    backup = services.take_backup(kind=BackupKind.MANUAL)
    bucket.put_object(Bucket=BUCKET, Key=f"opscenter-backups/{backup.file_name}", Body=b"not the dump")
    verified = services.verify(backup.pk, trigger="manual")
    assert verified.verify_status == VerifyStatus.FAILED and verified.verify_result["sha256_ok"] is False
