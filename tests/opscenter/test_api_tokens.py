"""API token lifecycle: created and shown once, hashed at rest, expires, revoked, scoped."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from opscenter.models import ApiToken, AuditEntry
from opscenter.services import create_api_token, revoke_api_token
from tests.factories import make_user


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def viewer(db):
    return make_user("Viewer", username="vera")


@pytest.mark.django_db
def test_created_token_is_shown_once_and_stored_only_as_a_hash(api_client, viewer):
    api_client.force_login(viewer)
    api_client.get("/admin/account/tokens/")
    response = api_client.post(
        "/api/v1/tokens/",
        {"name": "nightly report", "scope": "read", "expires_in_days": 30},
        format="json",
        HTTP_X_CSRFTOKEN=api_client.cookies["csrftoken"].value,
    )
    assert response.status_code == 201
    secret = response.json()["token"]
    assert secret.startswith("ops_")

    row = ApiToken.objects.get(pk=response.json()["id"])
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.values_list().get(pk=row.pk)]
    assert secret not in stored
    assert row.expires_at - timezone.now() > timedelta(days=29)

    listed = api_client.get("/api/v1/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["nightly report"]
    assert "token" not in listed[0]
    assert AuditEntry.objects.filter(action="api_token.created", actor=viewer, target_id=str(row.pk)).exists()


@pytest.mark.django_db
def test_token_authenticates_and_records_last_use(api_client, viewer):
    token, secret = create_api_token(viewer, name="script", scope="read", days=7)
    response = api_client.get("/api/v1/me", **bearer(secret))
    assert response.status_code == 200
    assert response.json()["username"] == "vera"
    assert response.json()["authenticated_by"] == "token"
    token.refresh_from_db()
    assert token.last_used_at is not None


@pytest.mark.django_db
def test_wrong_secret_with_a_real_prefix_is_refused(api_client, viewer):
    _, secret = create_api_token(viewer, name="script", days=7)
    forged = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")
    response = api_client.get("/api/v1/me", **bearer(forged))
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "The token is invalid, expired or revoked."


@pytest.mark.django_db
def test_expired_token_is_refused(api_client, viewer):
    token, secret = create_api_token(viewer, name="script", days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_client.get("/api/v1/me", **bearer(secret)).status_code == 401


@pytest.mark.django_db
def test_revoked_token_is_refused_at_once_and_audited(api_client, viewer):
    token, secret = create_api_token(viewer, name="script", days=7)
    assert api_client.get("/api/v1/me", **bearer(secret)).status_code == 200
    revoke_api_token(token, by=viewer)
    assert api_client.get("/api/v1/me", **bearer(secret)).status_code == 401
    assert AuditEntry.objects.filter(action="api_token.revoked", target_id=str(token.pk)).exists()


@pytest.mark.django_db
def test_revoking_through_the_api_twice_gives_conflict(api_client, viewer):
    token, _ = create_api_token(viewer, name="script", days=7)
    api_client.force_login(viewer)
    api_client.get("/admin/account/tokens/")
    csrf = {"HTTP_X_CSRFTOKEN": api_client.cookies["csrftoken"].value}
    assert api_client.delete(f"/api/v1/tokens/{token.pk}/", **csrf).status_code == 204
    again = api_client.delete(f"/api/v1/tokens/{token.pk}/", **csrf)
    assert again.status_code == 409
    assert again.json()["error"] == {"status": 409, "code": "conflict", "message": "This token is already revoked."}


@pytest.mark.django_db
def test_token_of_a_deactivated_user_is_refused(api_client, viewer):
    _, secret = create_api_token(viewer, name="script", days=7)
    viewer.is_active = False
    viewer.save()
    assert api_client.get("/api/v1/me", **bearer(secret)).status_code == 401


@pytest.mark.django_db
def test_read_scope_cannot_write(api_client):
    admin = make_user("Admin")
    _, secret = create_api_token(admin, name="reader", scope="read", days=7)
    assert api_client.get("/api/v1/audit/", **bearer(secret)).status_code == 200
    # Writing needs a write-scoped token, whatever the role allows.
    refused = api_client.post("/api/v1/audit/", {}, format="json", **bearer(secret))
    assert refused.status_code == 403
    assert "read-only" in refused.json()["error"]["message"]


@pytest.mark.django_db
def test_tokens_cannot_manage_tokens(api_client, viewer):
    _, secret = create_api_token(viewer, name="writer", scope="write", days=7)
    response = api_client.post("/api/v1/tokens/", {"name": "another"}, format="json", **bearer(secret))
    assert response.status_code == 403
    assert ApiToken.objects.filter(user=viewer).count() == 1


@pytest.mark.django_db
def test_users_see_and_revoke_only_their_own_tokens(api_client, viewer):
    other = make_user("Viewer")
    theirs, _ = create_api_token(other, name="theirs", days=7)
    api_client.force_login(viewer)
    api_client.get("/admin/account/tokens/")
    assert api_client.get("/api/v1/tokens/").json()["results"] == []
    response = api_client.delete(
        f"/api/v1/tokens/{theirs.pk}/", HTTP_X_CSRFTOKEN=api_client.cookies["csrftoken"].value
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


@pytest.mark.django_db
def test_token_page_creates_a_token_shows_it_once_and_revokes_it(client, viewer):
    client.force_login(viewer)
    page = client.post("/admin/account/tokens/", {"name": "from the browser", "scope": "write", "days": "30"})
    assert page.status_code == 200
    secret = page.context["created_secret"]
    assert secret and secret in page.content.decode()
    assert secret not in client.get("/admin/account/tokens/").content.decode()

    token = ApiToken.objects.get(user=viewer)
    assert token.scope == "write"
    response = client.post(f"/admin/account/tokens/{token.pk}/revoke/", follow=True)
    assert "revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None


@pytest.mark.django_db
def test_token_page_shows_form_errors(client, viewer):
    client.force_login(viewer)
    page = client.post("/admin/account/tokens/", {"name": "", "scope": "write", "days": "9999"})
    assert page.status_code == 200
    errors = page.context["form"].errors
    assert set(errors) == {"name", "days"}
    assert not ApiToken.objects.exists()
