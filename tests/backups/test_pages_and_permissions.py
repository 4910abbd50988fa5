"""The backups page: who may do what, the typed restore confirmation, CSRF and the polling list."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client
from django.urls import reverse

from advisors.models import Advisor
from opscenter.backups import services
from opscenter.backups.models import Backup, BackupKind, JobStatus, Restore
from opscenter.models import AuditEntry
from tests.factories import make_advisor, make_user

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = reverse("admin:backups")


def _client(role: str) -> tuple[Client, object]:
    user = make_user(role)
    client = Client()
    client.force_login(user)
    return client, user


@pytest.fixture
def backup():
    make_advisor(name="In the backup")
    backup = services.take_backup(kind=BackupKind.MANUAL)
    assert backup.status == JobStatus.SUCCEEDED, backup.error
    return backup


def test_viewer_sees_the_backups_but_no_actions_and_is_refused_each_of_them(backup):
    client, _ = _client("Viewer")
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert backup.file_name in html and backup.short_sha256 in html
    assert "Back up now" not in html and "Download" not in html and "Restore…" not in html
    assert client.post(reverse("admin:backups_create")).status_code == 403
    assert client.post(reverse("admin:backups_verify", args=[backup.pk])).status_code == 403
    assert client.get(reverse("admin:backups_download", args=[backup.pk])).status_code == 403
    assert client.get(reverse("admin:backups_restore", args=[backup.pk])).status_code == 403
    assert Backup.objects.count() == 1


def test_operator_backs_up_from_the_page_and_the_row_follows_it_to_succeeded(inline_tasks):
    client, operator = _client("Operator")
    response = client.post(reverse("admin:backups_create"))
    assert response.status_code == 302
    backup = Backup.objects.get()
    assert backup.kind == BackupKind.MANUAL and backup.status == JobStatus.SUCCEEDED, backup.error
    assert backup.created_by == operator
    assert AuditEntry.objects.filter(action="backup.requested", actor=operator).exists()
    assert "Back up now" in client.get(PAGE).content.decode()


def test_operator_downloads_the_file_streamed_with_its_checksum(backup):
    client, operator = _client("Operator")
    response = client.get(reverse("admin:backups_download", args=[backup.pk]))
    assert response.status_code == 200
    assert response.streaming
    body = b"".join(response.streaming_content)
    assert hashlib.sha256(body).hexdigest() == backup.sha256 == response["X-Checksum-SHA256"]
    assert backup.file_name in response["Content-Disposition"]
    assert AuditEntry.objects.filter(action="backup.downloaded", actor=operator).exists()


def test_operator_may_not_restore(backup):
    client, _ = _client("Operator")
    html = client.get(PAGE).content.decode()
    assert "Download" in html and "Restore…" not in html
    url = reverse("admin:backups_restore", args=[backup.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"confirmation": "restore"}).status_code == 403
    assert not Restore.objects.exists()


def test_a_wrong_confirmation_is_a_form_error_and_nothing_is_restored(backup, inline_tasks):
    make_advisor(name="After the backup")
    client, _ = _client("Admin")
    url = reverse("admin:backups_restore", args=[backup.pk])
    assert "Type the backup" in client.get(url).content.decode()

    response = client.post(url, {"confirmation": "yes please"})

    assert response.status_code == 400
    assert "does not match" in response.content.decode()
    assert not Restore.objects.exists()
    assert Advisor.objects.filter(name="After the backup").exists()
    assert client.post(url, {"confirmation": ""}).status_code == 400


def test_admin_restores_after_typing_the_backups_name(backup, inline_tasks):
    make_advisor(name="After the backup")
    client, admin = _client("Admin")

    response = client.post(reverse("admin:backups_restore", args=[backup.pk]), {"confirmation": backup.file_name})

    assert response.status_code == 302
    restore = Restore.objects.get()
    assert restore.status == JobStatus.SUCCEEDED, restore.error
    assert restore.requested_by_label == admin.username and restore.source == "ui"
    assert list(Advisor.objects.values_list("name", flat=True)) == ["In the backup"]
    assert Backup.objects.get(pk=restore.safety_backup_id).kind == BackupKind.SAFETY
    assert AuditEntry.objects.filter(action="backup.restored", target_id=str(restore.pk)).exists()


def test_actions_need_the_csrf_token(backup):
    user = make_user("Admin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(reverse("admin:backups_create")).status_code == 403
    assert client.post(reverse("admin:backups_restore", args=[backup.pk]), {"confirmation": "restore"}).status_code == 403
    assert Backup.objects.count() == 1 and not Restore.objects.exists()


def test_the_list_polls_itself_only_while_a_job_is_running(backup):
    client, _ = _client("Viewer")
    url = reverse("admin:backups_list")
    assert "hx-trigger" not in client.get(url).content.decode()
    Backup.objects.create(vendor=backup.vendor, status=JobStatus.RUNNING)
    html = client.get(url).content.decode()
    assert 'hx-trigger="every 2s"' in html and "Working" in html


def test_a_second_backup_while_one_is_queued_is_refused_with_a_message():
    client, _ = _client("Operator")
    client.post(reverse("admin:backups_create"))  # no worker: it stays queued
    response = client.post(reverse("admin:backups_create"), follow=True)
    assert "already queued or running" in response.content.decode()
    assert Backup.objects.count() == 1
