"""The metrics REST API and the System resources page: permissions, parameters, content."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.urls import reverse

from monitoring import processes, services, store
from opscenter import roles
from opscenter.services import create_api_token
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def signed_in(role: str | None):
    client = Client()
    client.force_login(make_user(role))
    return client


def test_a_viewer_lists_the_registry_metrics_with_help_unit_and_labels(api_client):
    api_client.force_authenticate(make_user(roles.VIEWER))
    response = api_client.get("/api/v1/metrics")
    assert response.status_code == 200
    by_name = {m["name"]: m for m in response.json()}
    assert by_name["opscenter_system_disk_used_percent"] == {
        "name": "opscenter_system_disk_used_percent",
        "help": "Used space on the filesystem of OpsCenter's var directory, in percent.",
        "kind": "gauge", "unit": "percent", "labels": ["host"], "stored": True,
    }
    assert by_name["opscenter_agent_run_duration_seconds"]["kind"] == "histogram"
    assert by_name["opscenter_agent_run_duration_seconds"]["stored"] is False


def test_the_metrics_api_needs_a_role(api_client):
    assert api_client.get("/api/v1/metrics").status_code == 401
    api_client.force_authenticate(make_user())
    assert api_client.get("/api/v1/metrics").status_code == 403
    assert api_client.get("/api/v1/metrics/opscenter_system_cpu_percent/series").status_code == 403


def test_a_read_token_reads_a_series_over_a_window(api_client):
    now = int(time.time())
    for offset in (300, 200, 100):
        store.write_samples([("opscenter_system_cpu_percent", {"host": "alpha"}, float(offset))], at=now - offset)
    store.write_samples([("opscenter_system_cpu_percent", {"host": "beta"}, 1.0)], at=now - 100)
    _, secret = create_api_token(make_user(roles.VIEWER), name="script")
    response = api_client.get(
        "/api/v1/metrics/opscenter_system_cpu_percent/series",
        {"start": now - 600, "end": now, "labels": "host=alpha"},
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["resolution"] == 0
    (series,) = body["series"]
    assert series["labels"] == {"host": "alpha"}
    assert [p["last"] for p in series["points"]] == [300.0, 200.0, 100.0]


def test_iso_times_and_a_forced_resolution_are_accepted(api_client):
    api_client.force_authenticate(make_user(roles.VIEWER))
    response = api_client.get("/api/v1/metrics/opscenter_system_cpu_percent/series",
                              {"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00+00:00", "resolution": "3600"})
    assert response.status_code == 200
    assert response.json()["resolution"] == 3600


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-01-01T00:00:00"}, "end"),  # no time zone
        ({"start": 200, "end": 100}, "start"),
        ({"labels": "host"}, "labels"),
        ({"resolution": "7"}, "resolution"),
        ({"max_points": "0"}, "max_points"),
        ({"start": 0, "end": 3 * 366 * 86400}, "start"),
    ],
)
def test_bad_series_parameters_are_field_errors(api_client, params, field):
    api_client.force_authenticate(make_user(roles.VIEWER))
    response = api_client.get("/api/v1/metrics/opscenter_system_cpu_percent/series", params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_an_unknown_metric_is_404_and_an_exposed_only_one_is_400(api_client):
    api_client.force_authenticate(make_user(roles.VIEWER))
    assert api_client.get("/api/v1/metrics/opscenter_nothing/series").status_code == 404
    response = api_client.get("/api/v1/metrics/opscenter_agent_run_duration_seconds/series")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_the_system_page_shows_hosts_workers_and_chart_slots():
    processes.report(processes.ProcessInfo(role="worker", name="celery@box", concurrency=4,
                                           extra=lambda: {"active_tasks": 1}), processes.ProcessMeter())
    response = signed_in(roles.VIEWER).get(reverse("admin:monitoring_system"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "System resources" in page
    assert processes.host_name() in page
    assert "celery@box" in page and "Concurrency" in page
    for chart_id, *_ in services.CHARTS:
        assert f'data-chart="{chart_id}"' in page
    assert 'id="system-snapshot"' in page


def test_the_system_page_needs_a_role():
    response = signed_in(None).get(reverse("admin:monitoring_system"))
    assert response.status_code in (302, 403)
    assert Client().get(reverse("admin:monitoring_system")).status_code == 302


def test_the_chart_data_holds_each_chart_for_the_hour_and_the_day():
    services.sample_registry(publish_live=False, at=time.time() - 20)
    services.sample_registry(publish_live=False)
    client = signed_in(roles.VIEWER)
    for window in ("1h", "1d"):
        body = client.get(reverse("admin:monitoring_system_charts"), {"window": window}).json()
        assert body["window"] == window
        charts = {c["id"]: c for c in body["charts"]}
        assert set(charts) == {c[0] for c in services.CHARTS}
        (cpu,) = charts["cpu"]["datasets"]
        assert cpu["label"] == processes.host_name() and len(cpu["points"]) >= 1
        # Network is a rate between two samples of the byte counters.
        assert {d["label"].rsplit(" ", 1)[1] for d in charts["network"]["datasets"]} == {"in", "out"}
    assert signed_in(None).get(reverse("admin:monitoring_system_charts")).status_code in (302, 403)


def test_the_metrics_topic_is_visible_to_viewers_only():
    from opscenter.live import get_topic

    topic = get_topic("metrics")
    assert make_user(roles.VIEWER).has_perm(topic.permission)
    assert not make_user().has_perm(topic.permission)
    snapshot = topic.snapshot(None)
    assert snapshot["hosts"] and "processes" in snapshot
