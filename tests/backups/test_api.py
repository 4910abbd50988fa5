"""Backups over the REST API: list, create, verify, download and the Admin-only restore."""

from __future__ import annotations

import hashlib

import pytest

from advisors.models import Advisor
from opscenter.backups import services
from opscenter.backups.models import Backup, BackupKind, JobStatus, Restore, VerifyStatus
from tests.factories import make_advisor, make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def backup():
    make_advisor(name="In the backup")
    backup = services.take_backup(kind=BackupKind.MANUAL)
    assert backup.status == JobStatus.SUCCEEDED, backup.error
    return backup


def _as(api_client, role):
    user = make_user(role)
    api_client.force_authenticate(user)
    return user


def test_everyone_reads_the_list_and_one_backup(api_client, backup):
    _as(api_client, "Viewer")
    listed = api_client.get("/api/v1/backups/")
    assert listed.status_code == 200
    assert [b["id"] for b in listed.json()["results"]] == [backup.pk]
    one = api_client.get(f"/api/v1/backups/{backup.pk}/").json()
    assert one["sha256"] == backup.sha256 and one["row_counts"]["advisors_advisor"] == 1
    assert api_client.get("/api/v1/restores/").status_code == 200


def test_viewer_cannot_create_verify_download_or_restore(api_client, backup):
    _as(api_client, "Viewer")
    assert api_client.post("/api/v1/backups/").status_code == 403
    assert api_client.post(f"/api/v1/backups/{backup.pk}/verify").status_code == 403
    assert api_client.get(f"/api/v1/backups/{backup.pk}/download").status_code == 403
    assert api_client.post(f"/api/v1/backups/{backup.pk}/restore", {"confirmation": "restore"}).status_code == 403
    assert Backup.objects.count() == 1


def test_operator_creates_and_verifies_with_202_and_a_second_create_conflicts(api_client, backup):
    _as(api_client, "Operator")
    created = api_client.post("/api/v1/backups/")
    assert created.status_code == 202 and created.json()["status"] == "queued"
    assert api_client.post("/api/v1/backups/").json()["error"]["status"] == 409
    verify = api_client.post(f"/api/v1/backups/{backup.pk}/verify")
    assert verify.status_code == 202 and verify.json()["verify_status"] == "queued"


def test_operator_verify_runs_to_a_result(api_client, backup, inline_tasks):
    _as(api_client, "Operator")
    assert api_client.post(f"/api/v1/backups/{backup.pk}/verify").status_code == 202
    backup.refresh_from_db()
    assert backup.verify_status == VerifyStatus.PASSED


def test_operator_downloads_but_may_not_restore(api_client, backup):
    _as(api_client, "Operator")
    response = api_client.get(f"/api/v1/backups/{backup.pk}/download")
    assert response.status_code == 200
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == response["X-Checksum-SHA256"]
    assert api_client.post(f"/api/v1/backups/{backup.pk}/restore", {"confirmation": "restore"}).status_code == 403


def test_admin_restore_needs_the_explicit_confirmation(api_client, backup, inline_tasks):
    make_advisor(name="After the backup")
    _as(api_client, "Admin")
    missing = api_client.post(f"/api/v1/backups/{backup.pk}/restore", {}, format="json")
    assert missing.status_code == 400 and "confirmation" in missing.json()["error"]["fields"]
    wrong = api_client.post(f"/api/v1/backups/{backup.pk}/restore", {"confirmation": "nope"}, format="json")
    assert wrong.status_code == 400 and "confirmation" in wrong.json()["error"]["fields"]
    assert not Restore.objects.exists() and Advisor.objects.count() == 2

    done = api_client.post(f"/api/v1/backups/{backup.pk}/restore", {"confirmation": "restore"}, format="json")

    assert done.status_code == 202 and done.json()["source"] == "api"
    assert Restore.objects.get().status == JobStatus.SUCCEEDED
    assert list(Advisor.objects.values_list("name", flat=True)) == ["In the backup"]


def test_a_failed_backup_cannot_be_downloaded(api_client):
    failed = Backup.objects.create(vendor="sqlite", status=JobStatus.FAILED, error="boom")
    _as(api_client, "Operator")
    assert api_client.get(f"/api/v1/backups/{failed.pk}/download").status_code == 409
