"""Roles are created idempotently; role and user changes in the admin are audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from opscenter.models import AuditEntry
from opscenter.roles import ROLES, ensure_roles, granted
from tests.factories import make_user


@pytest.mark.django_db
def test_roles_exist_after_migrate_with_their_declared_permissions():
    for role in ROLES:
        group = Group.objects.get(name=role)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert held == set(granted(role))


@pytest.mark.django_db
def test_ensure_roles_is_idempotent_and_repairs_drift():
    assert ensure_roles() == {}
    viewer = Group.objects.get(name="Viewer")
    viewer.permissions.add(Permission.objects.get(codename="view_auditentry"))
    viewer.permissions.remove(Permission.objects.get(codename="view_overview"))
    changes = ensure_roles()
    assert changes == {"Viewer": ["opscenter.view_overview"]}
    assert not viewer.permissions.filter(codename="view_auditentry").exists()
    assert ensure_roles() == {}


@pytest.mark.django_db
def test_bootstrap_creates_the_admin_once_with_a_private_generated_password(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    settings.OPSCENTER_ADMIN_USER = "boss"
    settings.OPSCENTER_ADMIN_PASSWORD = ""
    call_command("bootstrap")
    printed = capsys.readouterr().out
    stored = (tmp_path / "admin_password").read_text().split()
    assert stored[0] == "boss" and stored[1] in printed
    assert oct((tmp_path / "admin_password").stat().st_mode & 0o777) == "0o600"
    from django.contrib.auth import get_user_model

    boss = get_user_model().objects.get(username="boss")
    assert boss.check_password(stored[1])
    assert list(boss.groups.values_list("name", flat=True)) == ["Admin"]
    call_command("bootstrap")
    assert "exists" in capsys.readouterr().out
    assert get_user_model().objects.filter(username="boss").count() == 1


@pytest.mark.django_db
def test_changing_a_users_roles_in_the_admin_writes_an_audit_row(client):
    admin = make_user("Admin", username="ada", is_superuser=True, is_staff=True)
    target = make_user("Viewer", username="tom")
    client.force_login(admin)
    page = client.get(f"/admin/auth/user/{target.pk}/change/")
    form = page.context["adminform"].form
    data = {name: field.value() for name, field in ((n, form[n]) for n in form.fields) if field.value() is not None}
    data["groups"] = [Group.objects.get(name="Reviewer").pk]
    data.pop("user_permissions", None)
    data["date_joined_0"], data["date_joined_1"] = target.date_joined.strftime("%Y-%m-%d"), "00:00:00"
    data.pop("date_joined", None)
    data.pop("last_login", None)
    data.pop("password", None)
    response = client.post(f"/admin/auth/user/{target.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = AuditEntry.objects.get(action="user.roles_changed")
    assert entry.actor == admin
    assert entry.changes == {"before": ["Viewer"], "after": ["Reviewer"]}
    assert entry.source == "ui"


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "status"), [("Viewer", 403), ("Operator", 403), ("Admin", 200)])
def test_audit_trail_page_is_for_admins(client, role, status):
    client.force_login(make_user(role))
    assert client.get("/admin/opscenter/auditentry/").status_code == status


@pytest.mark.django_db
def test_audit_trail_cannot_be_edited_even_by_admins(client):
    client.force_login(make_user("Admin", is_superuser=True, is_staff=True))
    entry = AuditEntry.objects.create(action="x")
    assert client.get("/admin/opscenter/auditentry/add/").status_code == 403
    assert client.post(f"/admin/opscenter/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
