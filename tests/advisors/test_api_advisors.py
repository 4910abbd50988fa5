"""/api/v1/advisors/: CRUD without delete, field-level validation, filters, audit, permissions."""

from __future__ import annotations

from unittest import mock

import pytest
from rest_framework.test import APIClient

from advisors import advisor_services
from advisors.models import Advisor
from opscenter.models import AuditEntry
from opscenter.services import create_api_token
from tests.factories import make_advisor, make_user

CALLERS = ["anonymous", "norole", "Viewer", "Reviewer", "Operator", "Admin", "read_token", "write_token"]
NEW = {"name": "Meera Iyer", "arn": "ARN-445566", "phone": "+919876543210", "email": "meera@example.com"}


def client_for(caller: str) -> APIClient:
    """An API client signed in as `caller`: a role, no role, nobody, or an Admin's token."""
    client = APIClient()
    if caller.endswith("_token"):
        _, secret = create_api_token(make_user("Admin"), name="script", scope=caller.removesuffix("_token"), days=7)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    elif caller != "anonymous":
        client.force_login(make_user(None if caller == "norole" else caller))
    return client


def allowed(ok: int, *, roles=("Admin",), tokens=("write",)) -> dict[str, int]:
    """Expected statuses: `ok` for the listed roles and token scopes, 401 anonymous, else 403."""
    expected = {caller: 403 for caller in CALLERS}
    expected["anonymous"] = 401
    expected.update({role: ok for role in roles})
    expected.update({f"{scope}_token": ok for scope in tokens})
    return expected


READ = allowed(200, roles=("Viewer", "Reviewer", "Operator", "Admin"), tokens=("read", "write"))
# (method, path, body, expected status per caller)
MATRIX = [
    ("get", "/api/v1/advisors/", None, READ),
    ("get", "/api/v1/advisors/{id}/", None, READ),
    ("post", "/api/v1/advisors/", NEW, allowed(201)),
    ("patch", "/api/v1/advisors/{id}/", {"segment": "HNI"}, allowed(200)),
    ("put", "/api/v1/advisors/{id}/", NEW, allowed(200)),
    ("post", "/api/v1/advisors/{id}/status", {"status": "paused"}, allowed(200)),
    ("delete", "/api/v1/advisors/{id}/", None, {caller: 405 for caller in CALLERS}),
]


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_permissions_matrix(caller, method, path, body, expected):
    advisor = make_advisor()
    response = getattr(client_for(caller), method)(path.format(id=advisor.pk), body, format="json")
    assert response.status_code == expected[caller], response.content
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"status", "code", "message"}


@pytest.mark.django_db
def test_read_token_is_told_it_is_read_only():
    response = client_for("read_token").post("/api/v1/advisors/", NEW, format="json")
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]


@pytest.fixture
def admin_client(db) -> APIClient:
    return client_for("Admin")


def test_admin_creates_an_advisor_and_it_is_audited(admin_client):
    response = admin_client.post("/api/v1/advisors/", {**NEW, "topics": ["SIP", " tax saving "]}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["arn"] == "ARN-445566" and body["status"] == "active" and body["language"] == "en"
    assert body["topics"] == ["SIP", "tax saving"]
    advisor = Advisor.objects.get(pk=body["id"])
    entry = AuditEntry.objects.get(action="advisor.created", target_id=str(advisor.pk))
    assert entry.source == "api"
    assert entry.changes["phone"] == "+919876543210"


def test_an_advisor_can_be_created_paused(admin_client):
    response = admin_client.post("/api/v1/advisors/", {**NEW, "status": "paused"}, format="json")
    assert response.json()["status"] == "paused"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arn", "123456"),
        ("arn", "ARN-12345678"),
        ("phone", "9876543210"),
        ("phone", "+91 98765 43210"),
        ("phone", "+0123456789"),
        ("email", "not-an-email"),
        ("status", "deleted"),
        ("language", "xx"),
        ("topics", "SIP"),
        ("topics", ["SIP", ""]),
        ("name", ""),
    ],
)
def test_invalid_values_are_refused_field_by_field(admin_client, field, value):
    response = admin_client.post("/api/v1/advisors/", {**NEW, field: value}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {field}
    assert not Advisor.objects.exists()


def test_model_validator_messages_reach_the_client(admin_client):
    response = admin_client.post("/api/v1/advisors/", {**NEW, "arn": "X-1", "phone": "12"}, format="json")
    fields = response.json()["error"]["fields"]
    assert "ARN-123456" in fields["arn"][0]
    assert "E.164" in fields["phone"][0]


def test_missing_required_fields_are_named(admin_client):
    response = admin_client.post("/api/v1/advisors/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "arn", "phone"}


def test_a_taken_arn_or_phone_is_a_field_error(admin_client):
    taken = make_advisor()
    response = admin_client.post(
        "/api/v1/advisors/", {**NEW, "arn": taken.arn, "phone": taken.phone}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"arn", "phone"}
    assert Advisor.objects.count() == 1


def test_losing_a_race_for_the_same_arn_is_still_a_field_error(admin_client):
    real = advisor_services.create_advisor

    def twin_first(data, **kwargs):
        make_advisor(arn=data["arn"])  # another request inserts it between validation and save
        return real(data, **kwargs)

    with mock.patch("advisors.api.views.create_advisor", side_effect=twin_first):
        response = admin_client.post("/api/v1/advisors/", NEW, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"arn"}


def test_losing_a_race_at_the_unique_index_is_still_a_field_error(admin_client):
    real = advisor_services.create_advisor

    def twin_first(data, **kwargs):
        make_advisor(phone=data["phone"])
        return real(data, **kwargs)

    # Skip the model's own uniqueness check so the database constraint is what refuses it.
    with (
        mock.patch("advisors.api.views.create_advisor", side_effect=twin_first),
        mock.patch.object(Advisor, "validate_unique"),
    ):
        response = admin_client.post("/api/v1/advisors/", NEW, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"phone"}
    assert Advisor.objects.filter(arn=NEW["arn"]).count() == 0


def test_patch_changes_only_the_given_fields_and_audits_what_changed(admin_client):
    advisor = make_advisor(segment="retail")
    response = admin_client.patch(
        f"/api/v1/advisors/{advisor.pk}/", {"segment": "HNI", "name": advisor.name}, format="json"
    )
    assert response.status_code == 200
    advisor.refresh_from_db()
    assert advisor.segment == "HNI"
    entry = AuditEntry.objects.get(action="advisor.updated", target_id=str(advisor.pk))
    assert entry.changes == {"segment": ["retail", "HNI"]}
    assert entry.source == "api"


def test_patch_that_changes_nothing_writes_no_audit_row(admin_client):
    advisor = make_advisor(segment="retail")
    admin_client.patch(f"/api/v1/advisors/{advisor.pk}/", {"segment": "retail"}, format="json")
    assert not AuditEntry.objects.filter(action__startswith="advisor.").exists()


def test_put_replaces_the_advisor(admin_client):
    advisor = make_advisor(segment="retail", topics=["SIP"])
    response = admin_client.put(f"/api/v1/advisors/{advisor.pk}/", NEW, format="json")
    assert response.status_code == 200
    advisor.refresh_from_db()
    assert (advisor.name, advisor.arn, advisor.phone) == (NEW["name"], NEW["arn"], NEW["phone"])


def test_patch_to_a_phone_another_advisor_has_is_a_field_error(admin_client):
    mine, theirs = make_advisor(), make_advisor()
    response = admin_client.patch(f"/api/v1/advisors/{mine.pk}/", {"phone": theirs.phone}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"phone"}


def test_status_changed_by_patch_goes_through_the_status_service(admin_client):
    advisor = make_advisor()
    response = admin_client.patch(f"/api/v1/advisors/{advisor.pk}/", {"status": "paused"}, format="json")
    assert response.json()["status"] == "paused"
    entry = AuditEntry.objects.get(action="advisor.status_changed", target_id=str(advisor.pk))
    assert entry.changes == {"status": ["active", "paused"]}


def test_status_action_disables_an_advisor_and_keeps_it(admin_client):
    advisor = make_advisor()
    response = admin_client.post(f"/api/v1/advisors/{advisor.pk}/status", {"status": "disabled"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "disabled"
    entry = AuditEntry.objects.get(action="advisor.status_changed", target_id=str(advisor.pk))
    assert entry.source == "api" and entry.changes == {"status": ["active", "disabled"]}
    assert admin_client.get(f"/api/v1/advisors/{advisor.pk}/").json()["status"] == "disabled"


def test_status_action_refuses_an_unknown_status(admin_client):
    advisor = make_advisor()
    response = admin_client.post(f"/api/v1/advisors/{advisor.pk}/status", {"status": "gone"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"status"}


def test_status_action_on_a_missing_advisor_is_404(admin_client):
    response = admin_client.post("/api/v1/advisors/999999/status", {"status": "paused"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_delete_is_refused_in_the_error_shape_and_the_advisor_stays(admin_client):
    advisor = make_advisor()
    response = admin_client.delete(f"/api/v1/advisors/{advisor.pk}/")
    assert response.status_code == 405
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert "disabled" in error["message"]
    assert Advisor.objects.filter(pk=advisor.pk).exists()


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["name"] for row in response.json()["results"]]


def test_list_filters_by_status_language_and_segment(admin_client):
    make_advisor(name="Asha", segment="HNI", language="hi")
    make_advisor(name="Bala", segment="retail", status="paused")
    make_advisor(name="Chitra", segment="HNI", status="disabled")
    assert names(admin_client.get("/api/v1/advisors/?status=paused")) == ["Bala"]
    assert names(admin_client.get("/api/v1/advisors/?language=hi")) == ["Asha"]
    assert sorted(names(admin_client.get("/api/v1/advisors/?segment=HNI"))) == ["Asha", "Chitra"]
    assert names(admin_client.get("/api/v1/advisors/?segment=HNI&status=active")) == ["Asha"]


def test_list_refuses_an_unknown_filter_value(admin_client):
    response = admin_client.get("/api/v1/advisors/?status=gone")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"status"}


def test_search_matches_name_arn_and_phone(admin_client):
    make_advisor(name="Ravi Kumar", arn="ARN-777001", phone="+919000000001")
    make_advisor(name="Sunita Rao", arn="ARN-888002", phone="+919000000002")
    assert names(admin_client.get("/api/v1/advisors/?search=ravi")) == ["Ravi Kumar"]
    assert names(admin_client.get("/api/v1/advisors/?search=888002")) == ["Sunita Rao"]
    assert names(admin_client.get("/api/v1/advisors/?search=%2B919000000001")) == ["Ravi Kumar"]


def test_list_is_newest_first_and_orders_by_name_created_at_or_id(admin_client):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    make_advisor(name="Bala", created_at=now - timedelta(days=1))
    make_advisor(name="Chitra", created_at=now - timedelta(days=3))
    make_advisor(name="Asha", created_at=now - timedelta(days=2))
    assert names(admin_client.get("/api/v1/advisors/")) == ["Asha", "Chitra", "Bala"]
    assert names(admin_client.get("/api/v1/advisors/?ordering=name")) == ["Asha", "Bala", "Chitra"]
    assert names(admin_client.get("/api/v1/advisors/?ordering=-name")) == ["Chitra", "Bala", "Asha"]
    assert names(admin_client.get("/api/v1/advisors/?ordering=created_at")) == ["Chitra", "Asha", "Bala"]
    assert names(admin_client.get("/api/v1/advisors/?ordering=id")) == ["Bala", "Chitra", "Asha"]


def test_list_pages_with_a_cursor(admin_client):
    for n in range(5):
        make_advisor(name=f"Advisor {n}")
    first = admin_client.get("/api/v1/advisors/?ordering=name&page_size=2").json()
    assert [row["name"] for row in first["results"]] == ["Advisor 0", "Advisor 1"]
    second = admin_client.get(first["next"]).json()
    assert [row["name"] for row in second["results"]] == ["Advisor 2", "Advisor 3"]


def test_schema_documents_the_advisor_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    assert "delete" not in schema["paths"]["/api/v1/advisors/{id}/"]
    status_op = schema["paths"]["/api/v1/advisors/{id}/status/"]["post"]
    assert status_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("AdvisorStatusRequest")
    assert set(status_op["responses"]) >= {"200", "400", "403", "404"}
