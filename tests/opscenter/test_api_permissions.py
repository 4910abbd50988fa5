"""The permissions matrix over the API skeleton: anonymous, no role, and each role."""

from __future__ import annotations

import pytest

from opscenter.models import AuditEntry
from tests.factories import make_user

ROLES = ["Viewer", "Reviewer", "Operator", "Admin"]

# endpoint -> expected status per caller
MATRIX = {
    ("get", "/api/v1/health"): {"anonymous": 200, "norole": 200, **{r: 200 for r in ROLES}},
    ("get", "/api/v1/me"): {"anonymous": 401, "norole": 200, **{r: 200 for r in ROLES}},
    ("get", "/api/v1/tokens/"): {"anonymous": 403, "norole": 200, **{r: 200 for r in ROLES}},
    ("get", "/api/v1/audit/"): {"anonymous": 401, "norole": 403, "Viewer": 403, "Reviewer": 403, "Operator": 403, "Admin": 200},
    ("get", "/api/schema/"): {"anonymous": 200, "norole": 200, **{r: 200 for r in ROLES}},
}


def caller_client(client, caller):
    if caller == "anonymous":
        return client
    user = make_user(None if caller == "norole" else caller)
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("caller", ["anonymous", "norole", *ROLES])
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_permissions_matrix(client, caller, endpoint):
    method, path = endpoint
    response = getattr(caller_client(client, caller), method)(path)
    assert response.status_code == MATRIX[endpoint][caller], response.content


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_me_reports_the_callers_roles_and_permissions(client, role):
    client.force_login(make_user(role))
    body = client.get("/api/v1/me").json()
    assert body["roles"] == [role]
    assert "opscenter.view_overview" in body["permissions"]
    assert ("opscenter.view_auditentry" in body["permissions"]) is (role == "Admin")
    assert body["authenticated_by"] == "session"


@pytest.mark.django_db
def test_session_writes_need_the_csrf_token(api_client):
    api_client.force_login(make_user("Viewer"))
    refused = api_client.post("/api/v1/tokens/", {"name": "script"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert "CSRF" in refused.json()["error"]["message"]

    api_client.get("/admin/account/tokens/")  # a page with a form sets the csrftoken cookie
    token = api_client.cookies["csrftoken"].value
    accepted = api_client.post("/api/v1/tokens/", {"name": "script"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


@pytest.mark.django_db
def test_audit_list_is_filterable_for_admins(client):
    admin = make_user("Admin")
    client.force_login(admin)
    AuditEntry.objects.create(action="api_token.created", actor_label="someone")
    AuditEntry.objects.create(action="user.roles_changed", actor_label="someone")
    body = client.get("/api/v1/audit/?action=user.roles_changed").json()
    assert [row["action"] for row in body["results"]] == ["user.roles_changed"]


@pytest.mark.django_db
def test_errors_share_one_shape(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json() == {
        "error": {"status": 401, "code": "not_authenticated", "message": "Authentication credentials were not provided."}
    }
    client.force_login(make_user("Viewer"))
    missing = client.get("/api/v1/tokens/999999/")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_validation_errors_name_the_field(api_client):
    api_client.force_login(make_user("Viewer"))
    api_client.get("/admin/account/tokens/")
    response = api_client.post(
        "/api/v1/tokens/",
        {"name": "", "scope": "admin", "expires_in_days": 0},
        format="json",
        HTTP_X_CSRFTOKEN=api_client.cookies["csrftoken"].value,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"name", "scope", "expires_in_days"}
