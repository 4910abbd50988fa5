"""A real Celery worker reports itself, and runs it finishes are counted for /metrics."""

from __future__ import annotations

import pytest

from agents import services as agent_services
from agents.models import Agent, RunStatus
from monitoring import processes
from monitoring.metrics import read_run_duration, read_runs_total
from tests.agents.conftest import agent_worker, worker  # noqa: F401  (the real worker fixtures)
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_reports_its_pid_concurrency_and_memory_and_its_runs_are_counted(worker):  # noqa: F811
    entry = worker.wait_until(
        lambda: next((p for p in processes.processes() if p["role"] == "worker" and p["online"]), None),
        30, "the worker did not report itself",
    )
    assert entry["pid"] == worker.process.pid
    assert entry["concurrency"] == 2
    assert entry["rss_bytes"] > 10_000_000 and entry["active_tasks"] == 0

    run = agent_services.trigger_run(Agent.objects.get(slug="test-echo"), by=make_user("Operator"),
                                     params={"message": "hi", "steps": 1})
    worker.wait_for_run(run.pk, [RunStatus.SUCCEEDED])
    counted = worker.wait_until(
        lambda: {(s.labels["agent"], s.labels["status"]): s.value for s in read_runs_total()}, 10, "run not counted"
    )
    assert counted == {("test-echo", "succeeded"): 1.0}
    (histogram,) = read_run_duration()
    assert histogram.labels == {"agent": "test-echo"} and histogram.count == 1
    assert histogram.buckets[-1][1] == 1
