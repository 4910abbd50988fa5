"""Runs started "after" a sibling: a stage starts only when the previous one succeeded.

On a real worker and Redis, like tests/agents/test_runs_on_worker.py.
"""

from __future__ import annotations

import pytest

from agents import services
from agents.models import Agent, AgentRun, RunStatus
from tests.agents.test_runs_on_worker import started_lines
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def run_pipeline(middle: str) -> AgentRun:
    return services.trigger_run(Agent.objects.get(slug="test-pipeline"), by=make_user("Operator"),
                                params={"middle": middle})


def stages_of(root: AgentRun) -> list[AgentRun]:
    root.refresh_from_db()
    return [AgentRun.objects.get(pk=pk) for pk in root.result["stages"]]


def test_each_stage_starts_only_after_the_previous_one_succeeded(worker):
    root = run_pipeline("test-echo")
    worker.wait_for_run(root.pk, [RunStatus.SUCCEEDED], timeout=60)
    first, middle, last = stages_of(root)
    assert [s.status for s in (first, middle, last)] == [RunStatus.SUCCEEDED] * 3
    assert middle.upstream_id == first.pk and last.upstream_id == middle.pk
    assert first.finished_at <= middle.started_at and middle.finished_at <= last.started_at


def test_stage_after_a_failed_one_is_cancelled_without_starting_and_the_parent_fails(worker):
    root = run_pipeline("test-fail")
    worker.wait_for_run(root.pk, [RunStatus.FAILED], timeout=60)
    first, middle, last = stages_of(root)
    assert (first.status, middle.status, last.status) == (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
    assert last.started_at is None and started_lines(last) == []
    assert f"run #{middle.pk}" in last.error and "failed" in last.error


def test_stage_after_a_retried_one_waits_for_the_retry_and_then_runs(worker):
    root = run_pipeline("test-flaky")
    worker.wait_for_run(root.pk, [RunStatus.SUCCEEDED], timeout=90)
    first, middle, last = stages_of(root)
    assert middle.status == RunStatus.FAILED  # the first attempt
    retry = AgentRun.objects.get(retry_of=middle)
    assert retry.status == RunStatus.SUCCEEDED
    last.refresh_from_db()
    assert last.status == RunStatus.SUCCEEDED and last.upstream_id == retry.pk
    assert retry.finished_at <= last.started_at


def test_child_started_after_a_run_that_already_succeeded_starts_at_once(worker):
    operator = make_user("Operator")
    parent = services.trigger_run(Agent.objects.get(slug="test-echo"), by=operator, params={"message": "p"})
    worker.wait_for_run(parent.pk, [RunStatus.SUCCEEDED], timeout=60)
    done = services.trigger_run(Agent.objects.get(slug="test-echo"), by=operator, params={"message": "d"})
    worker.wait_for_run(done.pk, [RunStatus.SUCCEEDED], timeout=60)
    holder = services.trigger_run(Agent.objects.get(slug="test-slow"), by=operator, params={"seconds": 5})
    child = services.start_child_run(holder, "test-echo", {"message": "c", "steps": 0}, after=done)
    worker.wait_for_run(child.pk, [RunStatus.SUCCEEDED], timeout=60)
    failed = services.trigger_run(Agent.objects.get(slug="test-fail"), by=operator)
    worker.wait_for_run(failed.pk, [RunStatus.FAILED], timeout=60)
    never = services.start_child_run(holder, "test-echo", {"message": "n"}, after=failed)
    never.refresh_from_db()
    assert never.status == RunStatus.CANCELLED and never.started_at is None
    services.cancel_run(holder, by=operator)
