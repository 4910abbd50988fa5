"""The SLO pages and REST API: who may read and change what, field-level validation, audit rows,
the monthly report and its CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from alerts.models import SLO, Rule
from monitoring import store
from monitoring.health.models import HealthCheck
from opscenter.models import AuditEntry
from opscenter.services import create_api_token
from tests.factories import make_user

from .factories import make_deliveries, make_slo

pytestmark = pytest.mark.django_db

ROLES = ["Viewer", "Reviewer", "Operator", "Admin"]


@pytest.fixture(autouse=True)
def _forget_cached_series():
    store._series_ids.clear()
    yield
    store._series_ids.clear()


def browser_for(role: str | None) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def api_for(role: str | None) -> APIClient:
    client = APIClient()
    client.force_login(make_user(role))
    return client


def month_of(moment) -> str:
    """The report month (in TIME_ZONE) holding `moment`: right even in a month's first hours."""
    return timezone.localtime(moment).strftime("%Y-%m")


@pytest.fixture
def delivery_slo():
    at = timezone.now() - timedelta(hours=3)
    make_deliveries(199, status="sent", at=at)
    make_deliveries(1, status="failed", at=at)
    slo = make_slo(name="Delivery success", objective=99.0)
    slo.month = month_of(at)
    return slo


# --- pages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_slo_page_with_its_figures(role, delivery_slo):
    response = browser_for(role).get(reverse("admin:alerts_slos"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Delivery success" in page
    assert "99.5 %" in page  # SLI: 199 of 200
    assert "50.0 %" in page  # half the 1 % budget left
    assert 'data-status="met"' in page
    assert f'id="slo-chart-{delivery_slo.pk}"' in page and "unfold/js/chart/chart.js" in page


def test_the_slo_page_shows_breached_and_no_data_honestly():
    make_deliveries(9, status="sent", at=timezone.now() - timedelta(hours=1))
    make_deliveries(1, status="failed", at=timezone.now() - timedelta(hours=1))
    make_slo(name="Strict", objective=99.9)
    make_slo(name="Quiet", indicator="decided_before", params={"time": "08:00"}, objective=95)

    page = browser_for("Viewer").get(reverse("admin:alerts_slos")).content.decode()

    assert page.count('data-status="breached"') >= 1 and page.count('data-status="no_data"') >= 1
    assert "−9900.0 %" in page  # 10 % bad against 0.1 % allowed: the budget spent a hundred times
    assert "No items counted yet" in page


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_monthly_report(role, delivery_slo):
    month = delivery_slo.month

    response = browser_for(role).get(reverse("admin:alerts_slo_report"), {"month": month})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Delivery success" in page and "199 / 200" in page and "Met" in page
    assert f"month={month}&amp;format=csv" in page


def test_the_report_page_exports_csv_and_refuses_a_malformed_month(delivery_slo):
    client = browser_for("Viewer")
    month = delivery_slo.month

    exported = client.get(reverse("admin:alerts_slo_report"), {"month": month, "format": "csv"})
    bad = client.get(reverse("admin:alerts_slo_report"), {"month": "2026-13"})

    assert exported.status_code == 200 and exported["Content-Type"].startswith("text/csv")
    assert f'filename="opscenter-sla-{month}.csv"' in exported["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert rows[0]["slo"] == "Delivery success" and (rows[0]["good"], rows[0]["total"]) == ("199", "200")
    assert bad.status_code == 400 and "YYYY-MM" in bad.content.decode()


def test_a_user_without_a_role_sees_no_slo_pages():
    client = browser_for(None)

    assert client.get(reverse("admin:alerts_slos")).status_code in {302, 403}
    assert client.get(reverse("admin:alerts_slo_report")).status_code in {302, 403}


# --- API: reading ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_slos_with_their_figures(role, delivery_slo):
    client = api_for(role)

    listed = client.get("/api/v1/slos/")
    one = client.get(f"/api/v1/slos/{delivery_slo.pk}/")

    assert listed.status_code == 200 and one.status_code == 200
    figures = listed.json()["results"][0]["figures"]
    assert figures["status"] == "met" and figures["sli"] == pytest.approx(0.995)
    assert figures["budget_remaining"] == pytest.approx(0.5)
    assert set(figures["burn_rates"]) == {"5m", "30m", "1h", "6h"}
    assert figures["burn_rates"]["6h"] == pytest.approx(0.5)
    assert "daily" not in figures
    assert len(one.json()["figures"]["daily"]) == 30


def test_the_api_wants_a_signed_in_user():
    assert APIClient().get("/api/v1/slos/").status_code in {401, 403}


def test_the_api_report_answers_json_and_csv():
    at = timezone.now() - timedelta(minutes=30)
    make_deliveries(3, status="sent", at=at)
    make_slo(name="Delivery success")
    client = api_for("Viewer")
    month = month_of(at)

    as_json = client.get("/api/v1/slos/report/", {"month": month})
    as_csv = client.get("/api/v1/slos/report/", {"month": month, "format": "csv"})
    by_accept = client.get("/api/v1/slos/report/", {"month": month}, HTTP_ACCEPT="text/csv")
    bad = client.get("/api/v1/slos/report/", {"month": "May"})

    assert as_json.status_code == 200
    assert as_json.json()["month"] == month and as_json.json()["slos"][0]["total"] == 3
    for response in (as_csv, by_accept):
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        assert rows[0]["slo"] == "Delivery success" and rows[0]["total"] == "3"
    assert bad.status_code == 400 and "month" in bad.json()["error"]["fields"]


# --- API: changes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["Viewer", "Reviewer", "Operator"])
def test_only_admins_change_slos(role, delivery_slo):
    client = api_for(role)

    created = client.post("/api/v1/slos/", {"name": "Mine", "indicator": "delivery_success", "objective": 99},
                          format="json")
    changed = client.patch(f"/api/v1/slos/{delivery_slo.pk}/", {"objective": 90}, format="json")
    deleted = client.delete(f"/api/v1/slos/{delivery_slo.pk}/")

    assert (created.status_code, changed.status_code, deleted.status_code) == (403, 403, 403)
    assert SLO.objects.get(pk=delivery_slo.pk).objective == 99.0
    assert not SLO.objects.filter(name="Mine").exists()


def test_a_read_only_token_cannot_change_slos(delivery_slo):
    _, secret = create_api_token(make_user("Admin"), name="script", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert client.get("/api/v1/slos/").status_code == 200
    assert client.patch(f"/api/v1/slos/{delivery_slo.pk}/", {"objective": 90}, format="json").status_code == 403


def test_an_admin_creates_changes_and_deletes_an_slo_with_audit_rows_and_rules():
    admin = make_user("Admin")
    client = APIClient()
    client.force_login(admin)
    HealthCheck.objects.create(name="Messaging /health", kind="http", url="http://127.0.0.1:9/")

    created = client.post("/api/v1/slos/", {
        "name": " Messaging uptime ", "indicator": "health_uptime", "params": {"check": "Messaging /health"},
        "objective": 99.9, "window_days": 7, "severity": "high"}, format="json")
    pk = created.json()["id"]
    changed = client.patch(f"/api/v1/slos/{pk}/", {"objective": 99.5, "burn_rate_alerts": False}, format="json")
    rules_after_change = list(Rule.objects.filter(builtin_key__startswith=f"slo:{pk}:").values_list("enabled", flat=True))
    deleted = client.delete(f"/api/v1/slos/{pk}/")

    assert created.status_code == 201, created.json()
    assert created.json()["name"] == "Messaging uptime" and created.json()["figures"]["status"] == "no_data"
    assert changed.status_code == 200 and changed.json()["objective"] == 99.5
    assert rules_after_change == [False, False]
    assert deleted.status_code == 204
    assert not SLO.objects.filter(pk=pk).exists()
    assert not Rule.objects.filter(builtin_key__startswith=f"slo:{pk}:").exists()
    actions = list(AuditEntry.objects.filter(target_type="alerts.slo", target_id=str(pk)).order_by("id")
                   .values_list("action", "actor_id", "source"))
    assert actions == [("slo.created", admin.pk, "api"), ("slo.changed", admin.pk, "api"),
                       ("slo.deleted", admin.pk, "api")]
    changes = AuditEntry.objects.get(action="slo.changed", target_id=str(pk)).changes
    assert changes == {"objective": 99.5, "burn_rate_alerts": False}


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"objective": 100}, "objective", "between 0 and 100"),
    ({"objective": -1}, "objective", "between 0 and 100"),
    ({"objective": "lots"}, "objective", "number"),
    ({"window_days": 0}, "window_days", "1 to 365"),
    ({"window_days": 400}, "window_days", "1 to 365"),
    ({"indicator": "health_uptime", "params": {"check": "nowhere"}}, "params", "no health check named"),
    ({"indicator": "decided_before", "params": {"time": "8 am"}}, "params", "HH:MM"),
    ({"indicator": "metric_ratio", "params": {"good_metric": "opscenter_alerts",
                                              "total_metric": "opscenter_alerts"}}, "params", "counter"),
    ({"params": {"channel": ""}}, "params", "channel"),
    ({"severity": "urgent"}, "severity", ""),
    ({"name": ""}, "name", ""),
])
def test_bad_input_is_refused_field_by_field(body, field, words):
    payload = {"name": "New SLO", "indicator": "delivery_success", "objective": 99.0, **body}

    response = api_for("Admin").post("/api/v1/slos/", payload, format="json")

    assert response.status_code == 400
    errors = response.json()["error"]["fields"]
    assert field in errors and words in " ".join(errors[field])
    assert not SLO.objects.filter(name="New SLO").exists()


def test_a_duplicate_name_is_a_field_error(delivery_slo):
    response = api_for("Admin").post("/api/v1/slos/", {"name": "Delivery success", "indicator": "delivery_success",
                                                       "objective": 99.0}, format="json")

    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]


def test_changing_the_indicator_without_params_starts_from_the_new_indicators_defaults(delivery_slo):
    response = api_for("Admin").patch(f"/api/v1/slos/{delivery_slo.pk}/", {"indicator": "decided_before"},
                                      format="json")

    assert response.status_code == 200
    assert response.json()["params"] == {"time": "08:00"}
