"""The compliance override: an item that fails compliance is approved only by an Admin who
writes a reason; the override is audited on its own; bulk approval never overrides."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from advisors.models import ComplianceVerdict, Content, ContentStatus, Delivery
from advisors.services import (
    ComplianceBlocked,
    OverrideNotAllowed,
    TransitionConflict,
    approve_content,
    bulk_review,
    is_admin,
)
from opscenter.models import AuditEntry
from tests.factories import make_content, make_user

FINDINGS = [
    {"rule": "banned-claim", "severity": "high", "message": "Promises guaranteed returns.", "start": 0, "end": 18},
    {"rule": "disclaimer", "severity": "high", "message": "The risk disclaimer is missing."},
]
REASON = "Legal cleared the wording on 21 Nov; the disclaimer is in the image card."


def failing(**fields) -> Content:
    return make_content(compliance_verdict=ComplianceVerdict.FAIL, compliance_findings=FINDINGS, **fields)


def assert_untouched(content: Content) -> None:
    content.refresh_from_db()
    assert content.status == ContentStatus.PENDING_REVIEW and content.version == 1
    assert not Delivery.objects.filter(content=content).exists()
    assert not AuditEntry.objects.filter(action__in=["content.approve", "content.compliance_override"]).exists()


# --- the service -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reviewer_cannot_approve_an_item_that_fails_compliance():
    content = failing(title="Guaranteed 15%")
    with pytest.raises(ComplianceBlocked) as refused:
        approve_content(content, by=make_user("Reviewer"))
    assert refused.value.status == 409 and refused.value.code == "compliance_blocked"
    assert "fails compliance (2 findings)" in str(refused.value) and "Only an Admin" in str(refused.value)
    assert_untouched(content)


@pytest.mark.django_db
def test_a_reviewer_who_gives_a_reason_is_refused_as_not_allowed():
    content = failing()
    with pytest.raises(OverrideNotAllowed) as refused:
        approve_content(content, by=make_user("Reviewer"), override_reason=REASON)
    assert refused.value.status == 403
    assert_untouched(content)


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   \n "])
def test_an_admin_without_a_reason_cannot_approve_it(reason):
    content = failing()
    with pytest.raises(ComplianceBlocked) as refused:
        approve_content(content, by=make_user("Admin"), override_reason=reason)
    assert "give an override reason" in str(refused.value)
    assert_untouched(content)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["Admin", "superuser"])
def test_an_admin_with_a_reason_approves_it_and_both_audit_rows_are_written(who):
    admin = make_user(is_superuser=True) if who == "superuser" else make_user("Admin", username="anita")
    content = failing()

    approve_content(content, by=admin, note="ok to send", override_reason=f"  {REASON}  ")

    content.refresh_from_db()
    assert content.status == ContentStatus.APPROVED and content.reviewer == admin
    assert Delivery.objects.filter(content=content).count() == 1
    approval = AuditEntry.objects.get(action="content.approve")
    override = AuditEntry.objects.get(action="content.compliance_override")
    assert approval.actor == admin and override.actor == admin
    assert override.target_id == str(content.pk) and override.target_type == "advisors.content"
    assert override.changes == {"reason": REASON, "findings": 2}


@pytest.mark.django_db
def test_a_reason_on_an_item_that_passes_is_not_an_override():
    content = make_content(compliance_verdict=ComplianceVerdict.WARN)
    approve_content(content, by=make_user("Admin"), override_reason=REASON)
    content.refresh_from_db()
    assert content.status == ContentStatus.APPROVED
    assert not AuditEntry.objects.filter(action="content.compliance_override").exists()


@pytest.mark.django_db
def test_a_verdict_that_turns_fail_after_the_item_was_loaded_still_blocks_the_approval():
    content = make_content(compliance_verdict=ComplianceVerdict.PASS)
    Content.objects.filter(pk=content.pk).update(compliance_verdict=ComplianceVerdict.FAIL)
    assert content.compliance_verdict == ComplianceVerdict.PASS  # the reviewer's stale copy
    with pytest.raises(ComplianceBlocked):
        approve_content(content, by=make_user("Reviewer"))
    content.refresh_from_db()
    assert content.status == ContentStatus.PENDING_REVIEW


@pytest.mark.django_db
def test_the_system_approving_on_its_own_cannot_pass_a_failing_item():
    content = failing()
    with pytest.raises(ComplianceBlocked):
        approve_content(content, by=None)
    with pytest.raises(OverrideNotAllowed):
        approve_content(content, by=None, override_reason=REASON)
    assert_untouched(content)


@pytest.mark.django_db
def test_a_conflict_is_still_a_conflict_for_a_failing_item_already_handled():
    content = failing(status="rejected")
    with pytest.raises(TransitionConflict) as refused:
        approve_content(content, by=make_user("Admin"))
    assert not isinstance(refused.value, ComplianceBlocked)


@pytest.mark.django_db
def test_who_counts_as_an_admin():
    assert is_admin(make_user("Admin")) and is_admin(make_user(is_superuser=True))
    assert not is_admin(make_user("Reviewer")) and not is_admin(make_user("Operator")) and not is_admin(None)
    assert not is_admin(make_user("Admin", is_active=False))


@pytest.mark.django_db
def test_bulk_approval_skips_failing_items_even_for_an_admin():
    clean, failed = make_content(), failing()
    results = bulk_review([clean.pk, failed.pk], "approve", by=make_user("Admin"))
    ok, refused = results
    assert ok.ok and ok.status == ContentStatus.APPROVED
    assert not refused.ok and refused.code == "compliance_blocked" and "fails compliance" in refused.error
    failed.refresh_from_db()
    assert failed.status == ContentStatus.PENDING_REVIEW
    assert not AuditEntry.objects.filter(action="content.compliance_override").exists()


# --- the API ------------------------------------------------------------------------------------------


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_api_reviewer_approving_a_failing_item_gets_409_compliance_blocked():
    content = failing()
    response = client_for(make_user("Reviewer")).post(f"/api/v1/content/{content.pk}/approve", {}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "compliance_blocked" and "fails compliance" in error["message"]
    assert_untouched(content)


@pytest.mark.django_db
@pytest.mark.parametrize("verdict", [ComplianceVerdict.FAIL, ComplianceVerdict.PASS])
def test_api_reviewer_sending_an_override_reason_gets_403(verdict):
    content = make_content(compliance_verdict=verdict)
    response = client_for(make_user("Reviewer")).post(
        f"/api/v1/content/{content.pk}/approve", {"override_reason": REASON}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert_untouched(content)


@pytest.mark.django_db
def test_api_admin_without_a_reason_gets_409():
    content = failing()
    response = client_for(make_user("Admin")).post(f"/api/v1/content/{content.pk}/approve", {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "compliance_blocked"
    assert_untouched(content)


@pytest.mark.django_db
def test_api_admin_with_a_reason_approves_and_the_override_is_audited_as_api():
    content = failing()
    admin = make_user("Admin")
    response = client_for(admin).post(
        f"/api/v1/content/{content.pk}/approve", {"override_reason": REASON, "version": 1}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved" and body["needs_override"] is True and len(body["deliveries"]) == 1
    override = AuditEntry.objects.get(action="content.compliance_override")
    assert override.source == "api" and override.actor == admin and override.changes["reason"] == REASON


@pytest.mark.django_db
def test_api_content_says_which_items_need_an_override():
    failed, clean = failing(title="needs"), make_content(title="fine", compliance_verdict=ComplianceVerdict.WARN)
    client = client_for(make_user("Viewer"))
    assert client.get(f"/api/v1/content/{failed.pk}/").json()["needs_override"] is True
    assert client.get(f"/api/v1/content/{clean.pk}/").json()["needs_override"] is False


@pytest.mark.django_db
def test_api_bulk_approve_reports_failing_items_as_blocked():
    clean, failed = make_content(), failing()
    response = client_for(make_user("Admin")).post(
        "/api/v1/content/bulk-approve", {"ids": [clean.pk, failed.pk]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["approved"] == 1 and body["failed"] == 1
    assert body["results"][1]["code"] == "compliance_blocked" and body["results"][1]["id"] == failed.pk


@pytest.mark.django_db
def test_the_schema_documents_the_override(client):
    schema = client.get("/api/schema/?format=json").json()
    approve = schema["paths"]["/api/v1/content/{id}/approve/"]["post"]
    assert "compliance_blocked" in approve["responses"]["409"]["description"]
    assert "override_reason" in approve["responses"]["403"]["description"]
    request = approve["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "override_reason" in schema["components"]["schemas"][request]["properties"]
    content = schema["components"]["schemas"]["Content"]["properties"]
    assert content["needs_override"]["type"] == "boolean"
    assert "/api/v1/deliveries/{id}/retry/" in schema["paths"]
