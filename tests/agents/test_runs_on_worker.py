"""Agent runs on a real Celery worker (prefork, two processes) over the real Redis broker.

Each test triggers runs the way the product does (REST or agents.services), lets the
worker subprocess execute them, and reads the outcome from the database. The worker can
be SIGKILLed and replaced (see tests/agents/conftest.py); the reaper runs in this process,
as beat would run it, with the worker's timings (lost after 4 s of silence).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework.test import APIClient

from agents import runtime, services, tasks
from agents.models import Agent, AgentKind, AgentRun, RunLog, RunStatus, RunTrigger, WebhookAttempt
from opscenter.asgi import application
from opscenter.models import AuditEntry
from opscenter.signing import sign
from tests.factories import make_user, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(transactional_db):
    return make_user("Operator")


def trigger(slug: str, by=None, **params) -> AgentRun:
    return services.trigger_run(Agent.objects.get(slug=slug), by=by, params=params)


def started_lines(run: AgentRun) -> list[str]:
    """The "Started on …" lines the runtime writes each time it actually executes the run."""
    return list(run.logs.filter(message__startswith="Started on").values_list("message", flat=True))


def messages(run: AgentRun) -> list[str]:
    return list(run.logs.values_list("message", flat=True))


# --- outcomes ---------------------------------------------------------------------------------


def test_run_triggered_through_the_api_succeeds_with_result_logs_and_progress_saved(worker, operator):
    client = APIClient()
    client.force_login(operator)

    response = client.post("/api/v1/agents/test-echo/trigger", {"params": {"message": "hello", "mode": "shout",
                                                                           "steps": 3}}, format="json")

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    run = worker.wait_for_run(response.json()["id"])
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result == {"echo": "HELLO", "dry_run": False}
    assert (run.progress_done, run.progress_total, run.progress_note) == (3, 3, "step 3")
    assert run.metrics == {"items": 3}
    assert run.worker == worker.nodename
    assert run.trigger == RunTrigger.API and run.triggered_by == operator
    assert run.started_at <= run.finished_at and run.heartbeat_at is not None
    assert messages(run) == [f"Started on {worker.nodename}.", "echo: HELLO", "Run succeeded."]
    assert run.logs.get(message="echo: HELLO").context == {"mode": "shout"}
    detail = client.get(f"/api/v1/runs/{run.pk}/").json()
    assert detail["status"] == "succeeded"
    assert detail["progress"] == {"done": 3, "total": 3, "percent": 100, "note": "step 3"}
    logs = client.get(f"/api/v1/runs/{run.pk}/logs/").json()["results"]
    assert [entry["message"] for entry in logs] == messages(run)


def test_failing_agent_fails_its_run_with_the_traceback_stored(worker, operator):
    run = trigger("test-fail", by=operator)

    run = worker.wait_for_run(run.pk)

    assert run.status == RunStatus.FAILED
    assert run.error == "ValueError: planted failure"
    assert run.traceback.startswith("Traceback (most recent call last):")
    assert 'raise ValueError("planted failure")' in run.traceback
    assert run.result is None
    assert messages(run)[1:] == ["about to fail", "Run failed: ValueError: planted failure"]
    assert run.logs.get(message="about to fail").level == "warning"
    assert not AgentRun.objects.filter(retry_of=run).exists()  # test-fail allows no retries


def test_agent_that_overruns_its_time_limit_is_timed_out(worker, operator):
    run = trigger("test-stubborn", by=operator)  # timeout 2 s; sleeps 30 s without checking anything

    run = worker.wait_for_run(run.pk, timeout=15, reap=True)

    assert run.status == RunStatus.TIMED_OUT, run.error
    assert "2 s limit" in run.error
    hard_limit = run.agent.timeout_seconds + worker.timings["AGENT_HARD_LIMIT_GRACE_SECONDS"]
    assert (run.finished_at - run.started_at).total_seconds() < hard_limit + worker.timings["AGENT_LOST_AFTER_SECONDS"]
    # The worker process survived the limit and takes the next run.
    after = worker.wait_for_run(trigger("test-echo", message="next", steps=0).pk)
    assert after.status == RunStatus.SUCCEEDED


# --- cancel -----------------------------------------------------------------------------------


def test_cancelling_a_queued_run_means_it_never_starts(worker, operator):
    # Both worker processes are busy, so the next run waits in the queue.
    busy = [trigger("test-slow", by=operator, seconds=30) for _ in range(2)]
    for run in busy:
        worker.wait_for_run(run.pk, [RunStatus.RUNNING])
    queued = trigger("test-echo", by=operator, message="never")
    time.sleep(0.5)
    assert AgentRun.objects.get(pk=queued.pk).status == RunStatus.QUEUED

    cancelled = services.cancel_run(queued, by=operator)

    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.error == f"Cancelled by {operator.username}."
    assert AuditEntry.objects.filter(action="run.cancelled", target_id=str(queued.pk)).exists()
    for run in busy:
        services.cancel_run(run, by=operator)
    for run in busy:
        assert worker.wait_for_run(run.pk).status == RunStatus.CANCELLED
    # Runs queued after it have been taken by the worker, so its task was delivered (or revoked) by now.
    later = [trigger("test-echo", message=f"after {n}", steps=0) for n in range(2)]
    for run in later:
        assert worker.wait_for_run(run.pk).status == RunStatus.SUCCEEDED
    queued.refresh_from_db()
    assert queued.status == RunStatus.CANCELLED
    assert queued.started_at is None and queued.worker == ""
    assert started_lines(queued) == []


def test_cancelling_a_running_run_stops_it_at_its_next_checkpoint(worker, operator):
    run = trigger("test-slow", by=operator, seconds=30)
    worker.wait_for_run(run.pk, [RunStatus.RUNNING], where=lambda r: r.progress_done > 0)

    requested = services.cancel_run(run, by=operator)

    assert requested.status == RunStatus.RUNNING and requested.cancel_requested_at is not None
    run = worker.wait_for_run(run.pk, timeout=5)
    assert run.status == RunStatus.CANCELLED
    assert run.error == f"Cancelled by {operator.username} while running."
    assert run.cancelled_by == operator
    assert (run.finished_at - run.cancel_requested_at).total_seconds() < 3
    assert run.result is None
    assert not AgentRun.objects.filter(retry_of=run).exists()  # a cancelled run is not retried


# --- lost workers and retries -----------------------------------------------------------------


def test_run_of_a_killed_worker_is_reaped_as_worker_lost_and_retried_on_a_fresh_worker(worker, operator):
    run = trigger("test-slow", by=operator, seconds=3)  # test-slow allows one retry
    worker.wait_for_run(run.pk, [RunStatus.RUNNING], where=lambda r: r.progress_done > 0)
    lost_worker = worker.nodename

    worker.kill()
    killed_at = time.monotonic()
    worker.start()

    run = worker.wait_for_run(run.pk, [RunStatus.FAILED], timeout=15, reap=True)
    window = worker.timings["AGENT_LOST_AFTER_SECONDS"] + worker.timings["AGENT_HEARTBEAT_SECONDS"]
    assert time.monotonic() - killed_at < window + 3  # + polling and the fresh worker's start-up
    assert run.error.startswith(f"Worker lost: no heartbeat on {lost_worker} since ")
    assert started_lines(run) == [f"Started on {lost_worker}."]
    retry = AgentRun.objects.get(retry_of=run)
    assert (retry.attempt, retry.trigger, retry.params) == (2, RunTrigger.RETRY, run.params)
    assert f"Retrying as run #{retry.pk} (attempt 2)" in " ".join(messages(run))
    retry = worker.wait_for_run(retry.pk)
    assert retry.status == RunStatus.SUCCEEDED, retry.error
    assert retry.worker == worker.nodename != lost_worker


def test_run_cancelled_after_its_worker_died_is_not_retried_by_the_reaper(worker, operator):
    run = trigger("test-slow", by=operator, seconds=3)  # test-slow allows one retry
    worker.wait_for_run(run.pk, [RunStatus.RUNNING], where=lambda r: r.progress_done > 0)
    worker.kill()
    # The run still shows as running; an operator cancels it.
    assert services.cancel_run(run, by=operator).cancel_requested_at is not None

    run = worker.wait_for_run(run.pk, timeout=15, reap=True)

    assert not AgentRun.objects.filter(retry_of=run).exists()
    assert run.status == RunStatus.CANCELLED


def test_killed_pool_process_is_not_rerun_by_the_redelivered_task_and_is_reaped(worker, operator):
    run = trigger("test-slow", by=operator, seconds=3)
    worker.wait_for_run(run.pk, [RunStatus.RUNNING], where=lambda r: r.progress_done > 0)

    os.kill(worker.pool_pid(run.pk), signal.SIGKILL)

    # The worker survives, requeues the task (acks_late + reject_on_worker_lost), and the
    # second delivery finds the run claimed: the reaper is what ends it.
    run = worker.wait_for_run(run.pk, [RunStatus.FAILED], timeout=15, reap=True)
    assert worker.alive
    assert run.error.startswith("Worker lost: no heartbeat")
    assert len(started_lines(run)) == 1
    retry = AgentRun.objects.get(retry_of=run)
    assert retry.attempt == 2
    assert worker.wait_for_run(retry.pk).status == RunStatus.SUCCEEDED


def test_failed_run_is_retried_automatically_when_its_agent_allows(worker, operator):
    first = trigger("test-flaky", by=operator)  # fails on attempt 1, retries=2

    first = worker.wait_for_run(first.pk)
    retry = worker.wait_until(lambda: AgentRun.objects.filter(retry_of=first).first(), 5, "no retry was created")
    retry = worker.wait_for_run(retry.pk)

    assert first.status == RunStatus.FAILED and first.error == "RuntimeError: first attempt fails"
    assert (retry.status, retry.attempt, retry.result) == (RunStatus.SUCCEEDED, 2, {"attempt": 2})
    assert retry.triggered_by == operator
    assert AgentRun.objects.filter(agent__slug="test-flaky").count() == 2


def test_retry_with_edited_parameters_runs_with_them(worker, operator):
    original = worker.wait_for_run(trigger("test-echo", by=operator, message="first", steps=1).pk)

    retry = services.retry_run(original, by=operator, params={"message": "second", "mode": "shout"})

    retry = worker.wait_for_run(retry.pk)
    assert retry.status == RunStatus.SUCCEEDED
    assert (retry.retry_of, retry.attempt, retry.trigger) == (original, 2, RunTrigger.RETRY)
    assert retry.params == {"message": "second", "mode": "shout", "steps": 3, "delay": 0.0}
    assert retry.result == {"echo": "SECOND", "dry_run": False}
    original.refresh_from_db()
    assert original.result == {"echo": "first", "dry_run": False}
    audit = AuditEntry.objects.get(action="run.retried")
    assert audit.changes["retry_of"] == original.pk and audit.changes["params"]["message"] == "second"


# --- run trees --------------------------------------------------------------------------------


def test_three_level_tree_succeeds_once_every_run_in_it_has(worker, operator):
    root = trigger("test-tree-root", by=operator)

    root = worker.wait_for_run(root.pk, timeout=30)

    tree = list(AgentRun.objects.filter(root=root).select_related("agent", "parent"))
    assert root.status == RunStatus.SUCCEEDED, root.error
    assert root.result == {"started": 2} and not root.awaiting_children
    assert sorted(run.agent.slug for run in tree) == ["test-tree-leaf"] * 2 + ["test-tree-mid"] * 2 + ["test-tree-root"]
    assert all(run.status == RunStatus.SUCCEEDED for run in tree)
    mids = [run for run in tree if run.agent.slug == "test-tree-mid"]
    assert {run.parent_id for run in mids} == {root.pk}
    assert sorted(run.params["n"] for run in mids) == [0, 1]
    leaves = [run for run in tree if run.agent.slug == "test-tree-leaf"]
    assert sorted(run.parent_id for run in leaves) == sorted(run.pk for run in mids)
    assert all(run.trigger == RunTrigger.PARENT and run.triggered_by == operator for run in mids + leaves)
    assert root.finished_at >= max(run.finished_at for run in tree)


def test_failing_leaf_fails_its_parent_and_the_root(worker, operator):
    root = trigger("test-tree-root", by=operator, fail_leaf=True)

    root = worker.wait_for_run(root.pk, timeout=30)

    runs = {(run.agent.slug, run.params.get("n", run.parent.params.get("n") if run.parent else None)): run
            for run in AgentRun.objects.filter(root=root).select_related("agent", "parent")}
    assert root.status == RunStatus.FAILED
    assert root.error == "1 of 2 child runs did not succeed (test-tree-mid)."
    assert runs[("test-tree-mid", 1)].status == RunStatus.FAILED
    assert runs[("test-tree-mid", 1)].error == "1 of 1 child runs did not succeed (test-tree-leaf)."
    assert runs[("test-tree-leaf", 1)].status == RunStatus.FAILED
    assert runs[("test-tree-leaf", 1)].error == "RuntimeError: leaf failed on purpose"
    assert runs[("test-tree-mid", 0)].status == RunStatus.SUCCEEDED
    assert runs[("test-tree-leaf", 0)].status == RunStatus.SUCCEEDED
    assert not AgentRun.objects.filter(root=root, trigger=RunTrigger.RETRY).exists()


def test_parent_whose_child_failed_before_its_code_returned_fails_too(worker, operator):
    parent = trigger("test-patient-parent", by=operator)

    parent = worker.wait_for_run(parent.pk)

    child = AgentRun.objects.get(parent=parent)
    assert (child.agent.slug, child.status) == ("test-fail", RunStatus.FAILED)
    assert parent.result == {"child": child.pk, "child_status": "failed"}  # its code saw the failure
    assert parent.status == RunStatus.FAILED
    assert parent.error == "1 of 1 child runs did not succeed (test-fail)."


# --- at most once -----------------------------------------------------------------------------


def test_the_same_task_delivered_twice_executes_once(worker, operator):
    run = trigger("test-echo", by=operator, message="once", steps=5, delay=0.1)
    # Two more deliveries of execute_run for the same run, racing on the two pool processes.
    tasks.execute_run.apply_async(args=[run.pk])
    tasks.execute_run.apply_async(args=[run.pk])

    run = worker.wait_for_run(run.pk)
    # Runs queued after the duplicates have been taken, so every duplicate was delivered.
    for later in [trigger("test-echo", message=f"after {n}", steps=0) for n in range(2)]:
        assert worker.wait_for_run(later.pk).status == RunStatus.SUCCEEDED

    assert run.status == RunStatus.SUCCEEDED
    assert started_lines(run) == [f"Started on {worker.nodename}."]
    assert run.logs.filter(message="echo: once").count() == 1
    assert run.logs.filter(message="Run succeeded.").count() == 1
    # Once more, in this process: the claim refuses a finished run.
    assert runtime.execute(run.pk, worker="test") is None
    assert RunLog.objects.filter(run=run).count() == 3


# --- webhook agents -------------------------------------------------------------------------------


def test_webhook_agent_is_posted_by_the_worker_and_retried_after_a_server_error(worker, operator, webhook_receiver):
    Agent.objects.create(slug="remote-writer", name="Remote writer", kind=AgentKind.WEBHOOK,
                         webhook_url=webhook_receiver.url, webhook_secret="s3cret")
    webhook_receiver.statuses = [500, 200]
    client = APIClient()
    client.force_login(operator)

    run_id = client.post("/api/v1/agents/remote-writer/trigger", {}, format="json").json()["id"]

    requests = webhook_receiver.wait_for_requests(2)
    run = worker.wait_for_run(run_id, [RunStatus.RUNNING])
    assert list(WebhookAttempt.objects.filter(run=run).values_list("number", "status_code", "ok")) == [
        (1, 500, False), (2, 200, True)]
    for request in requests:
        timestamp = request.headers["X-OpsCenter-Timestamp"]
        assert request.headers["X-OpsCenter-Signature"] == sign("s3cret", timestamp, request.body)
    done = client.patch(f"/api/v1/runs/{run_id}/", {"status": "succeeded"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "succeeded"


# --- live events ------------------------------------------------------------------------------


@pytest.fixture
def operator_cookie(operator) -> bytes:
    return session_cookie(operator)


async def test_agents_topic_client_sees_queued_running_progress_succeeded_in_order(worker, operator, operator_cookie):
    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", b"http://localhost"), (b"cookie", operator_cookie)]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    try:
        assert (await communicator.receive_json_from(timeout=5))["type"] == "hello"
        await communicator.send_json_to({"action": "subscribe", "topics": ["agents"]})
        snapshot = await communicator.receive_json_from(timeout=5)
        assert (snapshot["type"], snapshot["topic"]) == ("snapshot", "agents")

        run = await database_sync_to_async(trigger)("test-echo", operator, message="live", steps=4, delay=0.3)

        seen: list[tuple[str, object]] = []
        deadline = time.monotonic() + 20
        while ("run.changed", "succeeded") not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no succeeded event; saw {seen}\n{worker.logs()}"
            message = await communicator.receive_json_from(timeout=remaining)
            if message.get("type") != "event":
                continue
            payload = message["payload"]
            if message["event"] == "run.changed" and payload["id"] == run.pk:
                seen.append(("run.changed", payload["status"]))
            elif message["event"] == "run.progress" and payload["id"] == run.pk:
                seen.append(("run.progress", (payload["done"], payload["total"])))
            elif message["event"] == "run.logs" and payload["run_id"] == run.pk:
                seen.extend(("run.logs", entry["message"]) for entry in payload["entries"])
    finally:
        await communicator.disconnect(timeout=1)

    changes = [value for event, value in seen if event == "run.changed"]
    assert changes == ["queued", "running", "succeeded"], seen
    progress = [index for index, (event, _) in enumerate(seen) if event == "run.progress"]
    assert progress, seen
    assert seen.index(("run.changed", "running")) < progress[0] < progress[-1] < seen.index(("run.changed", "succeeded"))
    done = [seen[index][1][0] for index in progress]
    assert done == sorted(done) and seen[progress[-1]][1] == (4, 4), seen
    assert ("run.logs", "echo: live") in seen
