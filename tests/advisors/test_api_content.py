"""/api/v1/content/: read-only listing with filters, and the review actions with their permissions."""

from __future__ import annotations

import datetime

import pytest
from rest_framework.test import APIClient

from advisors.api.serializers import BULK_MAX
from advisors.models import Content, Delivery
from advisors.services import approve_content
from opscenter.models import AuditEntry
from tests.advisors.test_api_advisors import CALLERS, allowed, client_for
from tests.factories import make_advisor, make_content, make_user

NOTE = "Add the risk disclaimer at the end."
READ = allowed(200, roles=("Viewer", "Reviewer", "Operator", "Admin"), tokens=("read", "write"))
REVIEW = allowed(200, roles=("Reviewer", "Admin"))
NOT_OFFERED = {caller: 405 for caller in CALLERS}

# (method, path, body, expected status per caller)
MATRIX = [
    ("get", "/api/v1/content/", None, READ),
    ("get", "/api/v1/content/{id}/", None, READ),
    ("post", "/api/v1/content/{id}/approve", {}, REVIEW),
    ("post", "/api/v1/content/{id}/reject", {"note": NOTE}, REVIEW),
    ("post", "/api/v1/content/{id}/request-revision", {"note": NOTE}, REVIEW),
    ("post", "/api/v1/content/bulk-approve", {"ids": ["{id}"]}, REVIEW),
    ("post", "/api/v1/content/bulk-reject", {"ids": ["{id}"], "note": NOTE}, REVIEW),
    ("post", "/api/v1/content/", {"title": "x"}, NOT_OFFERED),
    ("patch", "/api/v1/content/{id}/", {"title": "x"}, NOT_OFFERED),
    ("delete", "/api/v1/content/{id}/", None, NOT_OFFERED),
]


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_permissions_matrix(caller, method, path, body, expected):
    content = make_content()
    if body and "ids" in body:
        body = {**body, "ids": [content.pk]}
    response = getattr(client_for(caller), method)(path.format(id=content.pk), body, format="json")
    assert response.status_code == expected[caller], response.content
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"status", "code", "message"}
    content.refresh_from_db()
    if response.status_code != 200 or method == "get":
        assert content.status == "pending_review" and content.version == 1


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Viewer", "Operator"])
def test_roles_without_review_permission_cannot_approve(role):
    content = make_content()
    response = client_for(role).post(f"/api/v1/content/{content.pk}/approve", {}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Delivery.objects.filter(content=content).exists()


@pytest.mark.django_db
def test_operator_who_is_also_reviewer_may_approve():
    from django.contrib.auth.models import Group

    user = make_user("Operator")
    user.groups.add(Group.objects.get(name="Reviewer"))
    client = APIClient()
    client.force_login(user)
    content = make_content()
    assert client.post(f"/api/v1/content/{content.pk}/approve", {}, format="json").status_code == 200


@pytest.mark.django_db
def test_read_token_of_a_reviewer_cannot_approve():
    from opscenter.services import create_api_token

    _, secret = create_api_token(make_user("Reviewer"), name="reader", scope="read", days=7)
    content = make_content()
    response = APIClient().post(
        f"/api/v1/content/{content.pk}/approve", {}, format="json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]


@pytest.fixture
def reviewer(db):
    return make_user("Reviewer", username="rita")


@pytest.fixture
def reviewer_client(reviewer) -> APIClient:
    client = APIClient()
    client.force_login(reviewer)
    return client


def test_content_shows_checks_review_state_image_and_deliveries(reviewer_client, reviewer):
    findings = [{"rule": "banned_claim", "severity": "high", "message": "Guaranteed returns", "start": 0, "end": 10}]
    content = make_content(
        compliance_verdict="warn", compliance_findings=findings, fatigue_score=0.25, generating_run_id=42,
        image="content/2026/11/22/card.png",
    )
    approve_content(content, by=reviewer, note="fine")
    body = reviewer_client.get(f"/api/v1/content/{content.pk}/").json()
    assert body["status"] == "approved" and body["version"] == 2
    assert body["advisor"] == content.advisor_id and body["advisor_name"] == content.advisor.name
    assert body["compliance_verdict"] == "warn" and body["compliance_findings"] == findings
    assert body["fatigue_score"] == 0.25 and body["generating_run_id"] == 42
    assert body["reviewer"] == "rita" and body["review_note"] == "fine" and body["reviewed_at"]
    assert body["image_url"] == "http://testserver/media/content/2026/11/22/card.png"
    [delivery] = body["deliveries"]
    assert delivery["channel"] and delivery["status"] == "queued" and delivery["attempts"] == 0


def test_content_without_image_or_reviewer_shows_nulls(reviewer_client):
    content = make_content()
    body = reviewer_client.get(f"/api/v1/content/{content.pk}/").json()
    assert body["image_url"] is None and body["reviewer"] is None and body["deliveries"] == []


def titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["title"] for row in response.json()["results"]]


def test_list_is_newest_first_and_filters_by_status_advisor_date_verdict_and_kind(reviewer_client):
    asha, bala = make_advisor(name="Asha"), make_advisor(name="Bala")
    day = datetime.date(2026, 11, 20)
    make_content(asha, title="a", cycle_date=day, compliance_verdict="pass", kind="post")
    make_content(asha, title="b", cycle_date=day + datetime.timedelta(days=1), compliance_verdict="fail", kind="image")
    make_content(bala, title="c", cycle_date=day + datetime.timedelta(days=2), status="approved", kind="article")
    make_content(bala, title="d", cycle_date=day + datetime.timedelta(days=3), status="draft", compliance_verdict="warn")

    def get(query: str = "") -> list[str]:
        return titles(reviewer_client.get(f"/api/v1/content/{query}"))

    assert get() == ["d", "c", "b", "a"]
    assert get("?status=pending_review") == ["b", "a"]
    assert get(f"?advisor={bala.pk}") == ["d", "c"]
    assert get("?cycle_date=2026-11-21") == ["b"]
    assert get("?cycle_date_after=2026-11-21&cycle_date_before=2026-11-22") == ["c", "b"]
    assert get("?verdict=fail") == ["b"]
    assert get("?kind=image") == ["b"]
    assert get(f"?status=pending_review&advisor={asha.pk}&verdict=pass") == ["a"]


@pytest.mark.parametrize(
    ("query", "field"),
    [("verdict=great", "verdict"), ("status=lost", "status"), ("cycle_date=yesterday", "cycle_date"), ("advisor=0", "advisor")],
)
def test_list_refuses_a_bad_filter_value_by_name(reviewer_client, query, field):
    response = reviewer_client.get(f"/api/v1/content/?{query}")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {field}


def test_list_pages_with_a_cursor_and_a_constant_number_of_queries(reviewer_client, reviewer, django_assert_max_num_queries):
    for n in range(6):
        content = make_content(title=f"item {n}")
        if n % 2:
            approve_content(content, by=reviewer)
    with django_assert_max_num_queries(8):
        first = reviewer_client.get("/api/v1/content/?page_size=4").json()
    assert [row["title"] for row in first["results"]] == ["item 5", "item 4", "item 3", "item 2"]
    assert "count" not in first  # cursor pages never count the table
    second = reviewer_client.get(first["next"]).json()
    assert [row["title"] for row in second["results"]] == ["item 1", "item 0"] and second["next"] is None


def test_missing_content_is_404_in_the_error_shape(reviewer_client):
    response = reviewer_client.get("/api/v1/content/999999/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = reviewer_client.post("/api/v1/content/999999/approve", {}, format="json")
    assert response.status_code == 404


def test_approving_creates_exactly_one_delivery_and_an_api_audit_row(reviewer_client, reviewer):
    content = make_content()
    response = reviewer_client.post(f"/api/v1/content/{content.pk}/approve", {"note": "good"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "approved" and body["version"] == 2 and body["reviewer"] == "rita"
    assert len(body["deliveries"]) == 1
    assert Delivery.objects.filter(content=content).count() == 1
    entry = AuditEntry.objects.get(action="content.approve", target_id=str(content.pk))
    assert entry.source == "api" and entry.actor == reviewer


def test_trailing_slash_is_optional_on_actions(reviewer_client):
    content = make_content()
    assert reviewer_client.post(f"/api/v1/content/{content.pk}/approve/", {}, format="json").status_code == 200


def test_second_approval_gets_conflict_and_no_second_delivery(reviewer_client):
    content = make_content()
    other = APIClient()
    other.force_login(make_user("Admin", username="arun"))
    assert other.post(f"/api/v1/content/{content.pk}/approve", {}, format="json").status_code == 200
    response = reviewer_client.post(f"/api/v1/content/{content.pk}/approve", {}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict" and error["status"] == 409
    assert "already approved by arun" in error["message"]
    assert Delivery.objects.filter(content=content).count() == 1
    assert AuditEntry.objects.filter(action="content.approve").count() == 1


def test_a_stale_version_gets_conflict_and_the_current_one_succeeds(reviewer_client):
    content = make_content()
    Content.objects.filter(pk=content.pk).update(version=3)  # changed since the client loaded it
    stale = reviewer_client.post(f"/api/v1/content/{content.pk}/approve", {"version": 2}, format="json")
    assert stale.status_code == 409
    assert "version 3" in stale.json()["error"]["message"]
    fresh = reviewer_client.post(f"/api/v1/content/{content.pk}/approve", {"version": 3}, format="json")
    assert fresh.status_code == 200 and fresh.json()["version"] == 4


def test_a_bad_version_is_a_field_error(reviewer_client):
    content = make_content()
    response = reviewer_client.post(f"/api/v1/content/{content.pk}/approve", {"version": "x"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"version"}


@pytest.mark.parametrize(("path", "status"), [("reject", "rejected"), ("request-revision", "needs_revision")])
def test_reject_and_request_revision_need_a_note(reviewer_client, path, status):
    content = make_content()
    for body in ({}, {"note": ""}, {"note": "   "}):
        response = reviewer_client.post(f"/api/v1/content/{content.pk}/{path}", body, format="json")
        assert response.status_code == 400, body
        assert set(response.json()["error"]["fields"]) == {"note"}
    content.refresh_from_db()
    assert content.status == "pending_review"

    response = reviewer_client.post(f"/api/v1/content/{content.pk}/{path}", {"note": NOTE}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == status and response.json()["review_note"] == NOTE
    assert not Delivery.objects.filter(content=content).exists()
    action = path.replace("-", "_")
    assert AuditEntry.objects.get(action=f"content.{action}").changes["note"] == NOTE


@pytest.mark.parametrize("path", ["approve", "reject", "request-revision"])
@pytest.mark.parametrize("state", ["draft", "approved", "rejected", "needs_revision", "delivered"])
def test_actions_on_an_item_that_is_not_pending_get_conflict(reviewer_client, path, state):
    content = make_content(status=state)
    response = reviewer_client.post(f"/api/v1/content/{content.pk}/{path}", {"note": NOTE}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    content.refresh_from_db()
    assert content.status == state


def test_bulk_approve_reports_each_item(reviewer_client):
    pending = make_content()
    already = make_content()
    approve_content(already, by=make_user("Admin", username="arun"))
    response = reviewer_client.post(
        "/api/v1/content/bulk-approve", {"ids": [pending.pk, already.pk, 999999, pending.pk]}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["approved"] == 1 and body["failed"] == 2
    ok, conflict, missing = body["results"]
    assert ok == {"id": pending.pk, "ok": True, "status": "approved"}
    assert conflict["id"] == already.pk and conflict["ok"] is False and conflict["code"] == "conflict"
    assert "arun" in conflict["error"]
    assert missing == {"id": 999999, "ok": False, "error": "No such content.", "code": "not_found"}
    assert Delivery.objects.filter(content=pending).count() == 1
    assert Delivery.objects.filter(content=already).count() == 1


@pytest.mark.parametrize(
    "ids", [[], [0], ["x"], list(range(1, BULK_MAX + 2)), None],
)
def test_bulk_approve_refuses_a_bad_id_list(reviewer_client, ids):
    body = {} if ids is None else {"ids": ids}
    response = reviewer_client.post("/api/v1/content/bulk-approve", body, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"ids"}


def test_bulk_approve_accepts_the_maximum(reviewer_client):
    response = reviewer_client.post("/api/v1/content/bulk-approve", {"ids": list(range(1, BULK_MAX + 1))}, format="json")
    assert response.status_code == 200
    assert response.json()["failed"] == BULK_MAX


def test_bulk_reject_needs_a_note_and_reports_each_item(reviewer_client):
    first, second = make_content(), make_content(status="draft")
    refused = reviewer_client.post("/api/v1/content/bulk-reject", {"ids": [first.pk]}, format="json")
    assert refused.status_code == 400
    assert set(refused.json()["error"]["fields"]) == {"note"}

    response = reviewer_client.post(
        "/api/v1/content/bulk-reject", {"ids": [first.pk, second.pk], "note": NOTE}, format="json"
    )
    body = response.json()
    assert body["rejected"] == 1 and body["failed"] == 1
    assert body["results"][0] == {"id": first.pk, "ok": True, "status": "rejected"}
    assert body["results"][1]["code"] == "conflict"
    first.refresh_from_db()
    assert first.review_note == NOTE
    assert AuditEntry.objects.get(action="content.reject").source == "api"


def test_schema_documents_the_review_actions(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    approve = paths["/api/v1/content/{id}/approve/"]["post"]
    assert approve["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ReviewActionRequest")
    assert approve["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    bulk = paths["/api/v1/content/bulk-approve/"]["post"]
    assert bulk["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("BulkApproveResult")
    assert set(paths["/api/v1/content/{id}/"]) == {"get"}
