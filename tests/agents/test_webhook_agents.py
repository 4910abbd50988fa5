"""Webhook agents: a signed POST to the agent's URL, one WebhookAttempt row per try.

The task runs synchronously here (send_webhook_trigger.apply runs its retries at once);
the POSTs go over real HTTP to a small server on 127.0.0.1 (see conftest.webhook_receiver).
"""

from __future__ import annotations

import hmac
import json
import time

import pytest
from rest_framework.test import APIClient

from agents import services
from agents.models import Agent, AgentKind, AgentRun, RunStatus, WebhookAttempt
from agents.tasks import send_webhook_trigger
from opscenter.signing import sign
from tests.factories import make_user

pytestmark = pytest.mark.django_db

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def allow_local(settings):
    """Let webhooks reach the test receiver on 127.0.0.1 (private addresses are refused by default)."""
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_RETRY_DELAY_SECONDS = 0


@pytest.fixture
def operator():
    return make_user("Operator")


def webhook_agent(url: str, **fields) -> Agent:
    return Agent.objects.create(
        slug="remote-writer", name="Remote writer", kind=AgentKind.WEBHOOK, webhook_url=url, webhook_secret=SECRET,
        params_schema={"type": "object", "properties": {"topic": {"type": "string", "default": "SIP"}}},
        **fields,
    )


def trigger_and_send(agent: Agent, by=None, **params) -> AgentRun:
    run = services.trigger_run(agent, by=by, params=params)
    send_webhook_trigger.apply(args=[run.pk])
    run.refresh_from_db()
    return run


def attempts(run: AgentRun) -> list[tuple[int, int | None, bool]]:
    return list(WebhookAttempt.objects.filter(run=run).values_list("number", "status_code", "ok"))


def test_triggered_webhook_agent_receives_a_signed_post(webhook_receiver, allow_local, operator):
    agent = webhook_agent(webhook_receiver.url)

    run = trigger_and_send(agent, by=operator, topic="ELSS")

    [request] = webhook_receiver.requests
    assert request.path == "/hooks/run"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-OpsCenter-Run"] == str(run.pk)
    timestamp = request.headers["X-OpsCenter-Timestamp"]
    assert abs(time.time() - int(timestamp)) < 60
    signature = request.headers["X-OpsCenter-Signature"]
    assert hmac.compare_digest(signature, sign(SECRET, timestamp, request.body))
    assert not hmac.compare_digest(signature, sign("another secret", timestamp, request.body))
    assert not hmac.compare_digest(signature, sign(SECRET, str(int(timestamp) + 1), request.body))
    assert json.loads(request.body) == {
        "run_id": run.pk,
        "agent": "remote-writer",
        "params": {"topic": "ELSS"},
        "dry_run": False,
        "attempt": 1,
        "report_to": {"update": f"/api/v1/runs/{run.pk}", "logs": f"/api/v1/runs/{run.pk}/logs"},
    }
    # Accepted: the run is running until the receiver reports otherwise.
    assert run.status == RunStatus.RUNNING and run.started_at is not None
    assert attempts(run) == [(1, 200, True)]
    attempt = WebhookAttempt.objects.get(run=run)
    assert attempt.url == webhook_receiver.url and attempt.error == "" and attempt.duration_ms is not None


def test_receiver_reports_back_to_the_urls_it_was_given(webhook_receiver, allow_local, operator):
    run = trigger_and_send(webhook_agent(webhook_receiver.url), by=operator)
    report_to = json.loads(webhook_receiver.requests[0].body)["report_to"]
    receiver_client = APIClient()
    receiver_client.force_login(make_user("Operator"))

    logs = receiver_client.post(report_to["logs"], {"entries": [{"message": "writing"}]}, format="json")
    done = receiver_client.patch(report_to["update"], {"status": "succeeded", "result": {"posts": 3}}, format="json")

    assert (logs.status_code, done.status_code) == (201, 200)
    run.refresh_from_db()
    assert (run.status, run.result) == (RunStatus.SUCCEEDED, {"posts": 3})
    assert run.logs.filter(message="writing").exists()


def test_server_error_then_success_retries_and_records_two_attempts(webhook_receiver, allow_local):
    webhook_receiver.statuses = [500, 200]

    run = trigger_and_send(webhook_agent(webhook_receiver.url))

    assert len(webhook_receiver.requests) == 2
    assert attempts(run) == [(1, 500, False), (2, 200, True)]
    assert WebhookAttempt.objects.get(run=run, number=1).error == 'HTTP 500: {"error": "scripted failure"}'
    assert run.status == RunStatus.RUNNING
    for request in webhook_receiver.requests:  # each attempt is signed afresh
        timestamp = request.headers["X-OpsCenter-Timestamp"]
        assert request.headers["X-OpsCenter-Signature"] == sign(SECRET, timestamp, request.body)


@pytest.mark.parametrize("status", [408, 429, 502, 503])
def test_timeouts_rate_limits_and_server_errors_are_retried(webhook_receiver, allow_local, status):
    webhook_receiver.statuses = [status, 200]

    run = trigger_and_send(webhook_agent(webhook_receiver.url))

    assert attempts(run) == [(1, status, False), (2, 200, True)]
    assert run.status == RunStatus.RUNNING


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_error_fails_the_run_permanently_after_one_attempt(webhook_receiver, allow_local, status):
    webhook_receiver.statuses = [status]
    agent = webhook_agent(webhook_receiver.url, retries=2)

    run = trigger_and_send(agent)

    assert len(webhook_receiver.requests) == 1
    assert attempts(run) == [(1, status, False)]
    assert run.status == RunStatus.FAILED
    assert run.error == f'Webhook refused: HTTP {status}: {{"error": "scripted failure"}}'
    assert not AgentRun.objects.filter(retry_of=run).exists()  # the agent's retries do not apply


def test_run_fails_after_the_last_allowed_attempt(webhook_receiver, allow_local, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    webhook_receiver.statuses = [503, 503, 503, 200]

    run = trigger_and_send(webhook_agent(webhook_receiver.url))

    assert attempts(run) == [(1, 503, False), (2, 503, False), (3, 503, False)]
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("Webhook failed 3 times: HTTP 503")


def test_unreachable_receiver_is_retried_as_a_network_error(allow_local, settings):
    from tests.processes import free_port

    settings.WEBHOOK_MAX_ATTEMPTS = 2

    run = trigger_and_send(webhook_agent(f"http://127.0.0.1:{free_port()}/nobody-listens"))

    rows = list(WebhookAttempt.objects.filter(run=run))
    assert [(row.number, row.status_code, row.ok) for row in rows] == [(1, None, False), (2, None, False)]
    assert all(row.error.startswith("ConnectError") for row in rows)
    assert run.status == RunStatus.FAILED


def test_private_address_is_refused_by_default(webhook_receiver, settings):
    assert settings.OUTBOUND_ALLOWED_HOSTS == [] and settings.OUTBOUND_ALLOW_PRIVATE is False

    run = trigger_and_send(webhook_agent(webhook_receiver.url))

    assert webhook_receiver.requests == []
    assert run.status == RunStatus.FAILED
    assert run.error == ("Webhook refused: 127.0.0.1 resolves to the non-public address 127.0.0.1; "
                         "add it to OUTBOUND_ALLOWED_HOSTS to allow it.")
    [attempt] = WebhookAttempt.objects.filter(run=run)
    assert (attempt.number, attempt.status_code, attempt.ok) == (1, None, False)
    assert "non-public address" in attempt.error


def test_localhost_by_name_is_refused_too(webhook_receiver):
    run = trigger_and_send(webhook_agent(webhook_receiver.url.replace("127.0.0.1", "localhost")))

    assert webhook_receiver.requests == []
    assert run.status == RunStatus.FAILED and "non-public address" in run.error


@pytest.mark.parametrize(
    "allowance",
    [{"OUTBOUND_ALLOWED_HOSTS": ["127.0.0.1"]}, {"OUTBOUND_ALLOW_PRIVATE": True}],
    ids=["allowed-host", "allow-private"],
)
def test_private_address_is_called_when_allowed(webhook_receiver, settings, allowance):
    for name, value in allowance.items():
        setattr(settings, name, value)

    run = trigger_and_send(webhook_agent(webhook_receiver.url))

    assert len(webhook_receiver.requests) == 1
    assert run.status == RunStatus.RUNNING


def test_allowed_hosts_do_not_open_other_private_hosts(webhook_receiver, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["hooks.internal.example"]

    run = trigger_and_send(webhook_agent(webhook_receiver.url))

    assert webhook_receiver.requests == [] and run.status == RunStatus.FAILED


def test_cancelled_webhook_run_is_never_posted(webhook_receiver, allow_local, operator):
    run = services.trigger_run(webhook_agent(webhook_receiver.url), by=operator)
    services.cancel_run(run, by=operator)

    send_webhook_trigger.apply(args=[run.pk])

    assert webhook_receiver.requests == []
    assert not WebhookAttempt.objects.filter(run=run).exists()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_webhook_agent_without_a_url_cannot_be_triggered():
    agent = webhook_agent("")

    with pytest.raises(services.AgentUnavailable, match="has no webhook URL"):
        services.trigger_run(agent)
