"""Runs that end without a worker (cancelled while queued, or with their parent) are announced too.

Apps follow runs through `run_finished` (the engine ends its cycles, monitoring counts runs);
a run cancelled where no worker would report its end must still be sent.
"""

from __future__ import annotations

import pytest

from agents.models import Agent, AgentRun, RunStatus
from agents.services import cancel_run, run_finished, trigger_run
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished():
    heard: list[tuple[int, str, str]] = []

    def receiver(sender, *, run_id, agent, status, **kwargs):
        heard.append((run_id, agent, status))

    run_finished.connect(receiver, dispatch_uid="test-run-finished")
    yield heard
    run_finished.disconnect(dispatch_uid="test-run-finished")


def test_a_run_cancelled_while_queued_is_announced_once(finished):
    run = trigger_run(Agent.objects.get(slug="test-echo"), by=make_user("Operator"), params={"message": "hi"})

    cancel_run(run, by=make_user("Operator"))

    assert finished == [(run.pk, "test-echo", RunStatus.CANCELLED)]


def test_queued_children_cancelled_with_their_parent_are_announced(finished):
    operator = make_user("Operator")
    parent = trigger_run(Agent.objects.get(slug="test-tree-root"), by=operator)
    child = AgentRun.objects.create(agent=Agent.objects.get(slug="test-tree-mid"), parent=parent, root=parent,
                                    status=RunStatus.QUEUED, params={})

    cancel_run(parent, by=operator)

    assert sorted(finished) == sorted([(parent.pk, "test-tree-root", "cancelled"), (child.pk, "test-tree-mid", "cancelled")])
