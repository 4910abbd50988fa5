"""/metrics: the Prometheus exposition of the registry, and who may scrape it."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from agents.models import Agent, AgentRun, RunStatus
from agents.services import finish_run
from monitoring import processes
from monitoring.registry import all_metrics
from opscenter import roles
from opscenter.services import create_api_token
from tests.factories import make_content, make_delivery, make_user

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture
def scrape(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []

    def get(token: str | None = TOKEN, **extra):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        return Client().get("/metrics", **headers, **extra)

    return get


def families(response) -> dict:
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def value(family, name: str, **labels) -> float:
    matches = [s.value for s in family.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, (name, labels, family.samples)
    return matches[0]


def finish(agent: Agent, status: str, seconds: float, django_capture_on_commit_callbacks) -> None:
    started = timezone.now() - timedelta(seconds=seconds)
    run = AgentRun.objects.create(agent=agent, status=RunStatus.RUNNING, started_at=started, heartbeat_at=started)
    with django_capture_on_commit_callbacks(execute=True):
        finish_run(run.pk, status, allow_retry=False)


def test_metrics_hold_runs_approvals_deliveries_queue_workers_and_system_series(scrape, django_capture_on_commit_callbacks):
    echo = Agent.objects.get(slug="test-echo")
    finish(echo, RunStatus.SUCCEEDED, 42, django_capture_on_commit_callbacks)
    finish(echo, RunStatus.SUCCEEDED, 3, django_capture_on_commit_callbacks)
    finish(echo, RunStatus.FAILED, 0.5, django_capture_on_commit_callbacks)
    AgentRun.objects.create(agent=echo, status=RunStatus.QUEUED)
    make_content(submitted_at=timezone.now() - timedelta(minutes=30))
    make_content()
    make_delivery()
    processes.report(processes.ProcessInfo(role="worker", concurrency=2), processes.ProcessMeter())

    got = families(scrape())

    runs = got["opscenter_agent_runs"]
    assert runs.type == "counter"
    assert value(runs, "opscenter_agent_runs_total", agent="test-echo", status="succeeded") == 2
    assert value(runs, "opscenter_agent_runs_total", agent="test-echo", status="failed") == 1
    assert value(got["opscenter_agent_runs_active"], "opscenter_agent_runs_active", agent="test-echo", status="queued") == 1
    duration = got["opscenter_agent_run_duration_seconds"]
    assert duration.type == "histogram"
    assert value(duration, "opscenter_agent_run_duration_seconds_count", agent="test-echo") == 3
    assert value(duration, "opscenter_agent_run_duration_seconds_bucket", agent="test-echo", le="1.0") == 1
    assert value(duration, "opscenter_agent_run_duration_seconds_bucket", agent="test-echo", le="5.0") == 2
    assert value(duration, "opscenter_agent_run_duration_seconds_bucket", agent="test-echo", le="30.0") == 2
    assert value(duration, "opscenter_agent_run_duration_seconds_bucket", agent="test-echo", le="60.0") == 3
    assert value(duration, "opscenter_agent_run_duration_seconds_bucket", agent="test-echo", le="+Inf") == 3
    assert 45 <= value(duration, "opscenter_agent_run_duration_seconds_sum", agent="test-echo") <= 47
    assert value(got["opscenter_pending_approvals"], "opscenter_pending_approvals") == 2
    age = value(got["opscenter_pending_approval_oldest_age_seconds"], "opscenter_pending_approval_oldest_age_seconds")
    assert 1790 <= age <= 1900
    deliveries = got["opscenter_deliveries"]
    assert value(deliveries, "opscenter_deliveries", status="queued") == 1
    assert value(deliveries, "opscenter_deliveries", status="failed") == 0
    assert value(got["opscenter_celery_queue_length"], "opscenter_celery_queue_length") >= 0
    assert value(got["opscenter_workers_online"], "opscenter_workers_online") == 1
    host = processes.host_name()
    for name in ("opscenter_system_cpu_percent", "opscenter_system_memory_used_percent",
                 "opscenter_system_disk_used_percent", "opscenter_system_load1"):
        assert 0 <= value(got[name], name, host=host) <= 10_000
    net = got["opscenter_system_network_received_bytes"]
    assert net.type == "counter" and value(net, "opscenter_system_network_received_bytes_total", host=host) >= 0
    assert value(got["opscenter_process_resident_memory_bytes"], "opscenter_process_resident_memory_bytes",
                 role="worker", host=host) > 0


def test_every_registered_metric_is_exposed_including_other_apps(scrape, extra_metric):
    from monitoring.registry import Sample

    extra_metric("opscenter_test_from_another_app", "Registered elsewhere.", labels=("kind",),
                 read=lambda: [Sample({"kind": "a"}, 5)])
    got = families(scrape())
    for metric in all_metrics():
        exposed = metric.name[: -len("_total")] if metric.name.endswith("_total") else metric.name
        assert exposed in got, metric.name
    assert value(got["opscenter_test_from_another_app"], "opscenter_test_from_another_app", kind="a") == 5


def test_a_failing_metric_is_left_out_and_the_rest_still_served(scrape, extra_metric):
    def broken():
        raise RuntimeError("down")

    extra_metric("opscenter_test_broken", "Fails.", read=broken)
    got = families(scrape())
    assert got["opscenter_test_broken"].samples == []
    assert "opscenter_pending_approvals" in got


def test_metrics_refuse_a_request_without_a_token(scrape):
    response = scrape(token=None)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"opscenter_" not in response.content


def test_metrics_refuse_a_wrong_token(scrape):
    assert scrape(token="not-the-token").status_code == 401


def test_a_signed_in_session_is_not_enough(scrape):
    client = Client()
    client.force_login(make_user(roles.ADMIN))
    assert client.get("/metrics").status_code == 401


def test_an_api_token_of_a_user_who_may_view_metrics_is_accepted(scrape):
    _, secret = create_api_token(make_user(roles.VIEWER), name="prometheus")
    assert scrape(token=secret).status_code == 200
    _, no_role = create_api_token(make_user(), name="prometheus")
    assert scrape(token=no_role).status_code == 403


def test_an_allowlisted_address_may_scrape_without_a_token(scrape, settings):
    settings.METRICS_ALLOWED_IPS = [ipaddress.ip_network("10.1.0.0/16")]
    assert scrape(token=None, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert scrape(token=None, REMOTE_ADDR="10.2.0.1").status_code == 401
    # A client cannot claim an allowlisted address itself...
    assert scrape(token=None, REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 401
    # ...only a trusted proxy can pass it on.
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("192.0.2.9/32")]
    assert scrape(token=None, REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_FOR="10.1.2.3").status_code == 200


def test_metrics_answer_get_only(scrape):
    response = Client().post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405


def test_metrics_count_inbound_events_by_outcome_and_show_each_sources_silence(scrape):
    import json as _json

    from advisors.inbound.models import EventStatus, InboundEvent, InboundSource
    from tests.inbound.conftest import click, post_events

    source = InboundSource.objects.create(slug="bot", name="Bot")
    post_events(Client(), source, {"events": [click("e1"), click("e2"), {"id": "bad", "type": "nope"}]})
    post_events(Client(), source, click("e1"))  # a replay
    Client().post("/api/v1/webhooks/bot/", data=_json.dumps(click("e3")), content_type="application/json",
                  HTTP_X_OPSCENTER_TIMESTAMP="1", HTTP_X_OPSCENTER_SIGNATURE="sha256=00")  # forged
    InboundEvent.objects.filter(event_id="e2").update(status=EventStatus.FAILED)

    got = families(scrape())

    events = got["opscenter_inbound_events"]
    assert events.type == "counter"
    for outcome, expected in (("accepted", 2), ("duplicate", 1), ("rejected", 1), ("refused", 1)):
        assert value(events, "opscenter_inbound_events_total", source="bot", outcome=outcome) == expected
    waiting = got["opscenter_inbound_events_waiting"]
    assert value(waiting, "opscenter_inbound_events_waiting", status="failed") == 1
    assert value(got["opscenter_inbound_silence_seconds"], "opscenter_inbound_silence_seconds", source="bot") < 60
