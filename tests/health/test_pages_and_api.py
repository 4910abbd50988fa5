"""Who may see and do what on the health pages, the API and the live topic; admin and API
validation; run now (audited); bootstrap's own checks; the registered metrics."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from monitoring.health import services
from monitoring.health.models import HealthCheck, HealthResult
from monitoring.registry import get_metric, read_metric
from opscenter.models import AuditEntry
from opscenter.services import create_api_token
from tests.factories import make_user, session_cookie

from .conftest import make_check

ROLES = ["Viewer", "Reviewer", "Operator", "Admin"]


def browser_for(role: str | None) -> Client:
    client = Client()
    client.force_login(make_user(role))
    return client


def api_for(role: str | None) -> APIClient:
    client = APIClient()
    client.force_login(make_user(role))
    return client


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_health_page_and_a_check_page(role, http_server, only_our_checks):
    check = make_check(name="Public site", url=f"{http_server.base}/ok")
    services.dispatch_due_checks()
    client = browser_for(role)

    overview = client.get(reverse("admin:health"))
    page = client.get(reverse("admin:health_check", args=[check.pk]))

    assert overview.status_code == 200 and page.status_code == 200
    assert b"Public site" in overview.content
    assert b"HTTP 200" in page.content
    run_button = b"data-run-form" in page.content
    assert run_button == (role in {"Operator", "Admin"})


@pytest.mark.django_db
def test_a_user_without_a_role_sees_no_health_pages():
    check = make_check()
    client = browser_for(None)
    client.get("/admin/")  # no role: the console refuses, as for every page

    assert client.get(reverse("admin:health")).status_code in {302, 403}
    assert client.get(reverse("admin:health_check", args=[check.pk])).status_code in {302, 403}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Viewer", "Reviewer"])
def test_viewers_and_reviewers_cannot_run_a_check(role):
    check = make_check()

    response = browser_for(role).post(reverse("admin:health_check_run", args=[check.pk]))

    assert response.status_code == 403
    assert not HealthResult.objects.filter(health_check=check).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Operator", "Admin"])
def test_run_now_runs_the_check_at_once_and_is_audited(role, http_server):
    check = make_check(url=f"{http_server.base}/status/500")
    client = browser_for(role)

    response = client.post(reverse("admin:health_check_run", args=[check.pk]), follow=True)

    assert response.status_code == 200
    assert "is down" in response.content.decode() and "HTTP 500, expected 200" in response.content.decode()
    check.refresh_from_db()
    assert check.state == "down" and check.results.count() == 1
    audit = AuditEntry.objects.get(action="health_check.run")
    assert audit.target_id == str(check.pk) and audit.changes["ok"] is False and audit.changes["state"] == "down"


@pytest.mark.django_db
def test_run_now_refuses_a_disabled_check():
    check = make_check(enabled=False)

    response = browser_for("Operator").post(reverse("admin:health_check_run", args=[check.pk]), follow=True)

    assert "enable it before running it" in response.content.decode()
    assert not check.results.exists()


@pytest.mark.django_db
def test_run_now_needs_a_post_with_the_csrf_token():
    check = make_check()
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("Operator"))

    assert client.get(reverse("admin:health_check_run", args=[check.pk])).status_code == 405
    assert client.post(reverse("admin:health_check_run", args=[check.pk])).status_code == 403
    assert not check.results.exists()


@pytest.mark.django_db
def test_the_check_page_pages_through_older_results():
    check = make_check()
    for _ in range(55):
        HealthResult.objects.create(health_check=check, ok=True, latency_ms=1.0, detail="HTTP 200")
    client = browser_for("Viewer")

    first = client.get(reverse("admin:health_check", args=[check.pk]))
    older = client.get(reverse("admin:health_check", args=[check.pk]), {"before": first.context["older"]})

    assert len(first.context["results"]) == 50
    assert len(older.context["results"]) == 5
    assert {r.pk for r in first.context["results"]}.isdisjoint(r.pk for r in older.context["results"])


# --- the admin: create and edit (Admin only), validation ----------------------------------------


def admin_form(**fields) -> dict:
    data = {"name": "Shop", "kind": "http", "enabled": "on", "interval_seconds": "60", "timeout_seconds": "5",
            "url": "", "method": "GET", "expected_status": "200", "headers": "{}", "expected_workers": "1",
            "host": "", "port": "", "path": "", "threshold_percent": "", "pid_file": "", "process_name": "",
            "keyword": "", "json_path": "", "json_expected": "", "description": ""}
    return {**data, **fields}


@pytest.mark.django_db
@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"url": ""}, "url", "An HTTP check needs a URL."),
    ({"url": "ftp://example.com"}, "url", "Use a full http:// or https:// URL with a host."),
    ({"kind": "tcp", "host": "db.internal"}, "port", "A TCP check needs a port (1 to 65535)."),
    ({"kind": "tcp", "port": "5432"}, "host", "A TCP check needs a host."),
    ({"kind": "disk", "path": "/var", "threshold_percent": "0"}, "threshold_percent", "greater than or equal to 1"),
    ({"kind": "disk", "path": "/var", "threshold_percent": "101"}, "threshold_percent", "less than or equal to 100"),
    ({"kind": "disk", "path": "var", "threshold_percent": "90"}, "path", "Use an absolute path"),
    ({"kind": "process"}, "process_name", "Give a PID file or a process name."),
    ({"url": "https://shop.example", "json_path": "a..b"}, "json_path", "Cannot read the path"),
    ({"url": "https://shop.example", "timeout_seconds": "90"}, "timeout_seconds", "less than or equal to 60"),
])
def test_the_admin_form_explains_what_is_missing(fields, field, message):
    response = browser_for("Admin").post(reverse("admin:health_healthcheck_add"), admin_form(**fields))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and message in " ".join(errors[field])
    assert not HealthCheck.objects.filter(name="Shop").exists()


@pytest.mark.django_db
def test_an_admin_adds_a_check_that_runs_at_once_and_is_audited():
    response = browser_for("Admin").post(
        reverse("admin:health_healthcheck_add"),
        admin_form(kind="tcp", host="127.0.0.1", port="6379", url="https://left.over", keyword="stale"),
    )

    check = HealthCheck.objects.get(name="Shop")
    assert response.status_code == 302 and response.url == reverse("admin:health_check", args=[check.pk])
    assert (check.kind, check.host, check.port) == ("tcp", "127.0.0.1", 6379)
    assert check.url == "" and check.keyword == ""  # another kind's fields are not kept
    assert check.state == "unknown" and check in services.claim_due_checks()
    assert AuditEntry.objects.filter(action="health_check.created", target_id=str(check.pk)).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Viewer", "Reviewer", "Operator"])
def test_only_admins_add_or_change_checks_in_the_admin(role):
    check = make_check()
    client = browser_for(role)

    assert client.get(reverse("admin:health_healthcheck_add")).status_code == 403
    assert client.post(reverse("admin:health_healthcheck_change", args=[check.pk]),
                       admin_form(name="renamed", url="https://x.example")).status_code == 403
    check.refresh_from_db()
    assert check.name != "renamed"


@pytest.mark.django_db
def test_an_opscenter_component_check_keeps_its_target_and_cannot_be_deleted():
    web = HealthCheck.objects.get(system_key="web")
    client = browser_for("Admin")

    page = client.get(reverse("admin:health_healthcheck_change", args=[web.pk]))
    client.post(reverse("admin:health_healthcheck_delete", args=[web.pk]), {"post": "yes"})

    assert page.status_code == 200 and "url" in page.context["adminform"].readonly_fields
    assert HealthCheck.objects.filter(pk=web.pk).exists()


# --- bootstrap ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_bootstrap_creates_our_own_checks_once(settings):
    keys = set(HealthCheck.objects.filter(system_key__isnull=False).values_list("system_key", flat=True))
    assert keys == {"web", "database", "redis", "workers", "beat", "disk-var"}
    web = HealthCheck.objects.get(system_key="web")
    assert web.url == f"{settings.HEALTH_WEB_BASE_URL}/api/v1/health"
    assert HealthCheck.objects.get(system_key="disk-var").path == str(settings.VAR_DIR)

    assert services.ensure_system_checks() == {}
    assert HealthCheck.objects.filter(system_key__isnull=False).count() == 6


@pytest.mark.django_db
def test_the_webhook_service_check_follows_its_setting(settings):
    settings.HEALTH_WEBHOOK_SERVICE_URL = "http://127.0.0.1:9100/health"
    services.ensure_system_checks()
    hook = HealthCheck.objects.get(system_key="webhook-service")
    assert hook.is_webhook_service and hook.enabled and hook.kind == "http"

    settings.HEALTH_WEBHOOK_SERVICE_URL = "http://hooks.internal/health"
    services.ensure_system_checks()
    hook.refresh_from_db()
    assert hook.url == "http://hooks.internal/health"

    settings.HEALTH_WEBHOOK_SERVICE_URL = ""
    services.ensure_system_checks()
    hook.refresh_from_db()
    assert not hook.enabled and hook.state == "unknown"


@pytest.mark.django_db
def test_the_web_check_follows_the_port_it_is_served_on(settings):
    settings.HEALTH_WEB_BASE_URL = "http://127.0.0.1:8080"
    services.ensure_system_checks()

    assert HealthCheck.objects.get(system_key="web").url == "http://127.0.0.1:8080/api/v1/health"


# --- REST -------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_every_role_lists_checks_with_state_and_uptime_and_reads_results(role, http_server, only_our_checks):
    check = make_check(name="Shop", url=f"{http_server.base}/ok", headers={"Authorization": "Bearer s3cret"})
    services.dispatch_due_checks()
    client = api_for(role)

    listing = client.get("/api/v1/health/checks/")
    one = client.get(f"/api/v1/health/checks/{check.pk}/")
    results = client.get(f"/api/v1/health/checks/{check.pk}/results/")
    flips = client.get(f"/api/v1/health/checks/{check.pk}/flips/")

    assert listing.status_code == 200
    shop = next(c for c in listing.json()["results"] if c["name"] == "Shop")
    assert shop["state"] == "up" and shop["uptime"]["day"] == 1.0 and shop["last_status_code"] == 200
    assert one.json()["id"] == check.pk
    assert [r["ok"] for r in results.json()["results"]] == [True]
    assert [(f["from_state"], f["to_state"]) for f in flips.json()["results"]] == [("unknown", "up")]
    secret_shown = "s3cret" in str(one.json())
    assert secret_shown == (role == "Admin")


@pytest.mark.django_db
def test_the_api_refuses_anonymous_and_role_less_callers():
    check = make_check()

    assert APIClient().get("/api/v1/health/checks/").status_code == 401
    assert api_for(None).get("/api/v1/health/checks/").status_code == 403
    assert api_for(None).post(f"/api/v1/health/checks/{check.pk}/run").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "status"), [("Viewer", 403), ("Reviewer", 403), ("Operator", 200), ("Admin", 200)])
def test_run_over_the_api_is_for_operators_and_admins(role, status, http_server):
    check = make_check(url=f"{http_server.base}/ok")

    response = api_for(role).post(f"/api/v1/health/checks/{check.pk}/run")

    assert response.status_code == status
    if status == 200:
        assert response.json()["result"]["ok"] is True
        assert response.json()["check"]["state"] == "up"
        assert AuditEntry.objects.filter(action="health_check.run", source="api").count() == 1


@pytest.mark.django_db
def test_a_read_only_token_cannot_run_a_check(http_server):
    check = make_check(url=f"{http_server.base}/ok")
    _, secret = create_api_token(make_user("Admin"), name="script", scope="read", days=7)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert client.get("/api/v1/health/checks/").status_code == 200
    assert client.post(f"/api/v1/health/checks/{check.pk}/run").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Viewer", "Reviewer", "Operator"])
def test_only_admins_create_change_or_delete_checks_over_the_api(role):
    check = make_check()
    client = api_for(role)

    assert client.post("/api/v1/health/checks/", {"name": "x", "kind": "database"}, format="json").status_code == 403
    assert client.patch(f"/api/v1/health/checks/{check.pk}/", {"enabled": False}, format="json").status_code == 403
    assert client.delete(f"/api/v1/health/checks/{check.pk}/").status_code == 403
    assert HealthCheck.objects.filter(pk=check.pk, enabled=True).exists()


@pytest.mark.django_db
def test_an_admin_creates_changes_and_deletes_a_check_over_the_api():
    client = api_for("Admin")

    created = client.post("/api/v1/health/checks/", {
        "name": "Payments", "kind": "http", "url": "https://pay.example/health", "keyword": "ok",
        "headers": {"X-Probe": "opscenter"}, "interval_seconds": 30, "timeout_seconds": 3,
    }, format="json")
    pk = created.json()["id"]
    changed = client.patch(f"/api/v1/health/checks/{pk}/", {"enabled": False}, format="json")
    deleted = client.delete(f"/api/v1/health/checks/{pk}/")

    assert created.status_code == 201 and created.json()["state"] == "unknown"
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    assert deleted.status_code == 204 and not HealthCheck.objects.filter(pk=pk).exists()
    actions = list(AuditEntry.objects.filter(target_id=str(pk)).values_list("action", flat=True))
    assert sorted(actions) == ["health_check.changed", "health_check.created", "health_check.deleted"]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "fields"), [
    ({"name": "x", "kind": "http"}, {"url"}),
    ({"name": "x", "kind": "tcp", "host": "h"}, {"port"}),
    ({"name": "x", "kind": "tcp", "host": "h", "port": 70000}, {"port"}),
    ({"name": "x", "kind": "disk", "path": "/", "threshold_percent": 0}, {"threshold_percent"}),
    ({"name": "x", "kind": "disk", "path": "/"}, {"threshold_percent"}),
    ({"name": "x", "kind": "http", "url": "https://a.example", "interval_seconds": 2}, {"interval_seconds"}),
    ({"name": "x", "kind": "http", "url": "https://a.example", "headers": ["nope"]}, {"headers"}),
    ({"name": "x", "kind": "teleport"}, {"kind"}),
])
def test_bad_checks_get_field_level_400s(body, fields):
    response = api_for("Admin").post("/api/v1/health/checks/", body, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and fields <= set(error["fields"])


@pytest.mark.django_db
def test_an_opscenter_component_check_is_disabled_not_deleted_over_the_api():
    web = HealthCheck.objects.get(system_key="web")
    client = api_for("Admin")

    deleted = client.delete(f"/api/v1/health/checks/{web.pk}/")
    moved = client.patch(f"/api/v1/health/checks/{web.pk}/", {"url": "http://elsewhere/health"}, format="json")
    tuned = client.patch(f"/api/v1/health/checks/{web.pk}/", {"interval_seconds": 120}, format="json")

    assert deleted.status_code == 409 and "disable it instead" in deleted.json()["error"]["message"]
    assert moved.status_code == 400 and "url" in moved.json()["error"]["fields"]
    assert tuned.status_code == 200 and tuned.json()["interval_seconds"] == 120


@pytest.mark.django_db
def test_the_openapi_schema_describes_the_health_endpoints():
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()

    assert "/api/v1/health/checks/{id}/run" in schema["paths"] or "/api/v1/health/checks/{id}/run/" in schema["paths"]
    assert any(p.startswith("/api/v1/health/checks/{id}/results") for p in schema["paths"])


# --- the live topic ---------------------------------------------------------------------------------


async def _subscribe(user) -> dict:
    from opscenter.asgi import application

    cookie = await database_sync_to_async(session_cookie)(user)
    communicator = WebsocketCommunicator(application, "/ws/live/",
                                         headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=2)
    assert connected
    await communicator.receive_json_from(timeout=2)  # hello
    await communicator.send_json_to({"action": "subscribe", "topics": ["health"]})
    try:
        return await communicator.receive_json_from(timeout=5)
    finally:
        await communicator.disconnect(timeout=0.2)


@pytest.mark.django_db(transaction=True)
async def test_the_health_topic_gives_role_holders_a_snapshot_and_refuses_others():
    viewer = await database_sync_to_async(make_user)("Viewer")
    stranger = await database_sync_to_async(make_user)(None)

    snapshot = await _subscribe(viewer)
    refused = await _subscribe(stranger)

    assert snapshot["type"] == "snapshot" and snapshot["topic"] == "health"
    names = {c["name"] for c in snapshot["data"]["checks"]}
    assert {"Database", "Redis", "Celery workers"} <= names
    assert snapshot["data"]["overall"]["total"] >= 6
    assert refused == {"type": "error", "topic": "health", "code": "forbidden", "message": "You may not see 'health'."}


# --- metrics ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_up_and_latency_are_registered_metrics(http_server, only_our_checks):
    make_check(name="Shop", url=f"{http_server.base}/ok")
    make_check(name="Broken", url=f"{http_server.base}/status/500")
    services.dispatch_due_checks()

    up = {s.labels["check"]: s.value for s in read_metric(get_metric("opscenter_health_up"))}
    latency = {s.labels["check"]: s for s in read_metric(get_metric("opscenter_health_latency_seconds"))}

    assert up == {"Shop": 1.0, "Broken": 0.0}
    assert latency["Shop"].labels == {"check": "Shop", "kind": "http"} and 0 < latency["Shop"].value < 2
