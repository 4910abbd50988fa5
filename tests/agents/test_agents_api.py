"""The agents REST API: who may trigger, cancel, retry and report; parameter errors; external agents.

No worker runs here: the tests are not transactional, so the tasks a trigger queues
on commit are never sent, and runs are moved along with agents.services where needed.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents import services
from agents.models import Agent, AgentKind, AgentRun, RunLog, RunStatus, RunTrigger
from opscenter.models import AuditEntry
from opscenter.services import create_api_token
from tests.factories import make_user

pytestmark = pytest.mark.django_db

ROLES = ["Viewer", "Reviewer", "Operator", "Admin"]
MAY_OPERATE = {"anonymous": 401, "norole": 403, "Viewer": 403, "Reviewer": 403}


def client_for(caller: str) -> APIClient:
    client = APIClient()
    if caller != "anonymous":
        client.force_login(make_user(None if caller == "norole" else caller))
    return client


def token_client(role: str, scope: str) -> APIClient:
    _, secret = create_api_token(make_user(role), name="script", scope=scope, days=7)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def echo_agent() -> Agent:
    return Agent.objects.get(slug="test-echo")


def queued_run() -> AgentRun:
    return services.trigger_run(echo_agent(), params={"message": "queued"})


def finished_run(status: str = RunStatus.SUCCEEDED) -> AgentRun:
    run = queued_run()
    services.claim_run(run.pk, worker="test")
    return services.finish_run(run.pk, status, error="" if status == RunStatus.SUCCEEDED else "broke")


@pytest.fixture
def external_agent() -> Agent:
    return Agent.objects.create(slug="ext-importer", name="External importer", kind=AgentKind.EXTERNAL,
                                timeout_seconds=300)


@pytest.fixture
def operator_client() -> APIClient:
    return client_for("Operator")


# --- who may act --------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["anonymous", "norole", *ROLES])
def test_only_operators_and_admins_may_trigger_an_agent(caller):
    response = client_for(caller).post("/api/v1/agents/test-echo/trigger", {"params": {"message": "hi"}},
                                       format="json")

    expected = MAY_OPERATE.get(caller, 202)
    assert response.status_code == expected, response.content
    assert AgentRun.objects.count() == (1 if expected == 202 else 0)
    if expected == 403:
        assert response.json() == {"error": {"status": 403, "code": "permission_denied",
                                             "message": "Your role does not allow this."}}


@pytest.mark.parametrize("caller", ["anonymous", "norole", *ROLES])
def test_only_operators_and_admins_may_cancel_a_run(caller):
    run = queued_run()

    response = client_for(caller).post(f"/api/v1/runs/{run.pk}/cancel")

    expected = MAY_OPERATE.get(caller, 200)
    assert response.status_code == expected, response.content
    run.refresh_from_db()
    assert run.status == (RunStatus.CANCELLED if expected == 200 else RunStatus.QUEUED)


@pytest.mark.parametrize("caller", ["anonymous", "norole", *ROLES])
def test_only_operators_and_admins_may_retry_a_run(caller):
    run = finished_run(RunStatus.FAILED)

    response = client_for(caller).post(f"/api/v1/runs/{run.pk}/retry", {}, format="json")

    expected = MAY_OPERATE.get(caller, 202)
    assert response.status_code == expected, response.content
    assert AgentRun.objects.filter(retry_of=run).count() == (1 if expected == 202 else 0)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_may_read_runs_and_their_logs(role):
    run = finished_run()
    client = client_for(role)

    assert client.get("/api/v1/agents/").status_code == 200
    assert client.get("/api/v1/runs/").json()["results"][0]["id"] == run.pk
    assert client.get(f"/api/v1/runs/{run.pk}/").status_code == 200
    assert client.get(f"/api/v1/runs/{run.pk}/logs/").status_code == 200
    assert client.get("/api/v1/runs/tree").status_code == 200


@pytest.mark.parametrize("role", ["Viewer", "Reviewer"])
def test_viewers_and_reviewers_may_not_report_external_runs(role, external_agent):
    run, _ = services.report_run_start(external_agent, by=None, external_id="job-1")
    client = client_for(role)

    assert client.post("/api/v1/runs/", {"agent": "ext-importer", "external_id": "job-2"},
                       format="json").status_code == 403
    assert client.patch(f"/api/v1/runs/{run.pk}/", {"progress_done": 1}, format="json").status_code == 403
    assert client.post(f"/api/v1/runs/{run.pk}/logs/", {"entries": [{"message": "x"}]},
                       format="json").status_code == 403
    assert AgentRun.objects.count() == 1 and not run.logs.exists()


def test_read_only_token_may_read_but_not_trigger_cancel_retry_or_report(external_agent):
    client = token_client("Admin", "read")
    queued, finished = queued_run(), finished_run()

    assert client.get("/api/v1/runs/").status_code == 200
    refusals = [
        client.post("/api/v1/agents/test-echo/trigger", {"params": {"message": "hi"}}, format="json"),
        client.post(f"/api/v1/runs/{queued.pk}/cancel"),
        client.post(f"/api/v1/runs/{finished.pk}/retry", {}, format="json"),
        client.post("/api/v1/runs/", {"agent": "ext-importer", "external_id": "job-1"}, format="json"),
    ]

    for response in refusals:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["message"].startswith("This API token is read-only")
    assert AgentRun.objects.count() == 2
    queued.refresh_from_db()
    assert queued.status == RunStatus.QUEUED


def test_operator_write_token_triggers_and_the_audit_names_the_api(operator_client):
    client = token_client("Operator", "write")

    response = client.post("/api/v1/agents/test-echo/trigger", {"params": {"message": "hi"}, "dry_run": True},
                           format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["status"], body["trigger"], body["dry_run"]) == ("queued", "api", True)
    assert body["params"] == {"message": "hi", "steps": 3, "delay": 0.0, "mode": "plain"}
    audit = AuditEntry.objects.get(action="agent.triggered")
    assert audit.source == "api" and audit.changes["agent"] == "test-echo"


# --- parameter validation -----------------------------------------------------------------------


def test_invalid_parameters_get_a_field_level_400_in_the_one_error_shape(operator_client):
    response = operator_client.post("/api/v1/agents/test-echo/trigger",
                                    {"params": {"steps": "many", "mode": "loud"}}, format="json")

    assert response.status_code == 400
    assert response.json() == {"error": {
        "status": 400,
        "code": "invalid",
        "message": "Some parameters are invalid.",
        "fields": {
            "message": ["This field is required."],
            "steps": ["Enter a whole number."],
            "mode": ["Select a valid choice. loud is not one of the available choices."],
        },
    }}
    assert not AgentRun.objects.exists()
    assert not AuditEntry.objects.filter(action="agent.triggered").exists()


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"params": {"message": "hi", "colour": "red"}}, {"colour": ["This agent has no such parameter."]}),
        ({"params": {"message": "hi", "steps": 5000}},
         {"steps": ["Ensure this value is less than or equal to 1000."]}),
        ({"params": {"message": "hi", "steps": True}}, {"steps": ["Must be a number."]}),
        ({"params": ["hi"]}, {"params": ["Send the parameters as a JSON object."]}),
        ({"params": {"message": "hi"}, "dry_run": "perhaps"}, {"dry_run": ["Must be a valid boolean."]}),
    ],
    ids=["unknown", "maximum", "boolean-for-integer", "not-an-object", "bad-dry-run"],
)
def test_each_kind_of_bad_trigger_body_names_its_field(operator_client, body, fields):
    response = operator_client.post("/api/v1/agents/test-echo/trigger", body, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert (error["status"], error["code"], error["fields"]) == (400, "invalid", fields)
    assert not AgentRun.objects.exists()


def test_retry_with_invalid_edited_parameters_is_a_field_level_400(operator_client):
    run = finished_run(RunStatus.FAILED)

    response = operator_client.post(f"/api/v1/runs/{run.pk}/retry", {"params": {"message": "x" * 201}},
                                    format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "message": ["Ensure this value has at most 200 characters (it has 201)."]
    }
    assert not AgentRun.objects.filter(retry_of=run).exists()


def test_retry_with_edited_parameters_through_the_api(operator_client):
    run = finished_run(RunStatus.FAILED)

    response = operator_client.post(f"/api/v1/runs/{run.pk}/retry", {"params": {"message": "again", "steps": 1}},
                                    format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["retry_of"], body["attempt"], body["trigger"], body["status"]) == (run.pk, 2, "retry", "queued")
    assert body["params"] == {"message": "again", "steps": 1, "delay": 0.0, "mode": "plain"}


def test_cancel_and_retry_refuse_runs_in_the_wrong_state_with_409(operator_client):
    finished, queued = finished_run(), queued_run()

    cancel = operator_client.post(f"/api/v1/runs/{finished.pk}/cancel")
    retry = operator_client.post(f"/api/v1/runs/{queued.pk}/retry", {}, format="json")

    assert cancel.status_code == 409
    assert cancel.json()["error"] == {"status": 409, "code": "conflict",
                                      "message": f"Run #{finished.pk} already succeeded; there is nothing to cancel."}
    assert retry.status_code == 409
    assert retry.json()["error"]["message"] == f"Run #{queued.pk} is still queued; cancel it or wait for it."


# --- external agents ----------------------------------------------------------------------------


def test_external_agents_cannot_be_triggered(operator_client, external_agent):
    response = operator_client.post("/api/v1/agents/ext-importer/trigger", {}, format="json")

    assert response.status_code == 409
    assert response.json()["error"] == {
        "status": 409, "code": "conflict",
        "message": "“External importer” runs elsewhere and reports its own runs; it cannot be started here.",
    }
    assert not AgentRun.objects.exists()


def test_reporting_a_start_is_idempotent_on_the_external_id(operator_client, external_agent):
    body = {"agent": "ext-importer", "external_id": "job-42", "params": {"file": "a.csv"}}

    first = operator_client.post("/api/v1/runs/", body, format="json")
    again = operator_client.post("/api/v1/runs/", body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    run = AgentRun.objects.get()
    assert (run.status, run.trigger, run.external_id, run.params) == (
        RunStatus.RUNNING, RunTrigger.EXTERNAL, "job-42", {"file": "a.csv"})
    assert run.started_at is not None and run.root_id == run.pk
    assert AuditEntry.objects.filter(action="run.reported").count() == 1
    other = operator_client.post("/api/v1/runs/", {**body, "external_id": "job-43"}, format="json")
    assert other.status_code == 201 and other.json()["id"] != run.pk


def test_external_run_reports_progress_then_its_final_status(operator_client, external_agent):
    run_id = operator_client.post("/api/v1/runs/", {"agent": "ext-importer", "external_id": "j"},
                                  format="json").json()["id"]

    progress = operator_client.patch(f"/api/v1/runs/{run_id}/", {
        "progress_done": 5, "progress_total": 10, "progress_note": "halfway", "metrics": {"rows": 5},
    }, format="json")
    done = operator_client.patch(f"/api/v1/runs/{run_id}/", {"status": "succeeded", "result": {"rows": 10}},
                                 format="json")
    repeated = operator_client.patch(f"/api/v1/runs/{run_id}/", {"status": "succeeded"}, format="json")
    contradicting = operator_client.patch(f"/api/v1/runs/{run_id}/", {"status": "failed"}, format="json")
    late_progress = operator_client.patch(f"/api/v1/runs/{run_id}/", {"progress_done": 6}, format="json")

    assert progress.status_code == 200, progress.content
    assert progress.json()["progress"] == {"done": 5, "total": 10, "percent": 50, "note": "halfway"}
    assert progress.json()["metrics"] == {"rows": 5} and progress.json()["status"] == "running"
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["result"]) == ("succeeded", {"rows": 10})
    assert done.json()["finished_at"] is not None
    assert repeated.status_code == 200 and repeated.json()["status"] == "succeeded"
    assert contradicting.status_code == 409 and late_progress.status_code == 409
    run = AgentRun.objects.get(pk=run_id)
    assert (run.status, run.progress_done, run.result) == (RunStatus.SUCCEEDED, 5, {"rows": 10})
    assert AuditEntry.objects.filter(action="run.reported_finished").count() == 1


def test_external_run_that_fails_records_its_error(operator_client, external_agent):
    run, _ = services.report_run_start(external_agent, by=None, external_id="j")

    response = operator_client.patch(f"/api/v1/runs/{run.pk}/", {"status": "failed", "error": "disk full"},
                                     format="json")

    assert response.status_code == 200
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, "disk full")
    assert not AgentRun.objects.filter(retry_of=run).exists()  # external agents retry themselves


def test_external_run_appends_a_batch_of_log_lines(operator_client, external_agent):
    run, _ = services.report_run_start(external_agent, by=None, external_id="j")

    response = operator_client.post(f"/api/v1/runs/{run.pk}/logs/", {"entries": [
        {"message": "reading a.csv"},
        {"message": "row 7 skipped", "level": "warning", "context": {"row": 7}},
        {"message": "done", "at": "2026-11-22T10:00:00Z"},
    ]}, format="json")

    assert response.status_code == 201, response.content
    created = response.json()
    assert [entry["message"] for entry in created] == ["reading a.csv", "row 7 skipped", "done"]
    assert all(entry["id"] for entry in created)
    assert created[1]["level"] == "warning" and created[1]["context"] == {"row": 7}
    assert created[2]["at"].startswith("2026-11-22T10:00:00")
    listed = operator_client.get(f"/api/v1/runs/{run.pk}/logs/?level=warning").json()["results"]
    assert [entry["message"] for entry in listed] == ["row 7 skipped"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"entries": []}, "entries"), ({"entries": [{"message": "x", "level": "loud"}]}, "entries"), ({}, "entries")],
    ids=["empty", "bad-level", "missing"],
)
def test_a_bad_log_batch_is_refused_with_400(operator_client, external_agent, body, field):
    run, _ = services.report_run_start(external_agent, by=None, external_id="j")

    response = operator_client.post(f"/api/v1/runs/{run.pk}/logs/", body, format="json")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not RunLog.objects.filter(run=run).exists()


def test_logs_of_a_finished_external_run_are_closed(operator_client, external_agent):
    run, _ = services.report_run_start(external_agent, by=None, external_id="j")
    services.report_run_update(run, by=None, status=RunStatus.SUCCEEDED)

    response = operator_client.post(f"/api/v1/runs/{run.pk}/logs/", {"entries": [{"message": "late"}]},
                                    format="json")

    assert response.status_code == 409


def test_builtin_agents_cannot_be_reported(operator_client):
    run = finished_run()

    start = operator_client.post("/api/v1/runs/", {"agent": "test-echo", "external_id": "x"}, format="json")
    patch = operator_client.patch(f"/api/v1/runs/{run.pk}/", {"progress_done": 1}, format="json")
    logs = operator_client.post(f"/api/v1/runs/{run.pk}/logs/", {"entries": [{"message": "x"}]}, format="json")

    assert start.status_code == 400
    assert start.json()["error"] == {
        "status": 400, "code": "invalid",
        "message": "“Test echo” is a built-in agent; its runs are recorded by the worker.",
    }
    assert patch.status_code == 400 and logs.status_code == 400
    assert AgentRun.objects.count() == 1


def test_reporting_for_an_unknown_agent_names_the_field(operator_client):
    response = operator_client.post("/api/v1/runs/", {"agent": "nobody", "external_id": "x"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["agent"]


def test_external_run_that_stops_reporting_is_failed_by_the_reaper(external_agent):
    from datetime import timedelta

    from django.utils import timezone

    run, _ = services.report_run_start(external_agent, by=None, external_id="j")

    assert services.reap_runs(now=timezone.now() + timedelta(seconds=299))["silent"] == []
    reaped = services.reap_runs(now=timezone.now() + timedelta(seconds=301))

    assert reaped["silent"] == [run.pk]
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, "Stopped reporting: nothing heard for 300 s.")
