"""How the engine follows the runtime: a cycle ends when its orchestrator run does."""

from __future__ import annotations

from django.utils import timezone

from .models import Cycle, CycleStatus

ORCHESTRATOR = "content-orchestrator"
_CYCLE_STATUS = {"succeeded": CycleStatus.SUCCEEDED, "cancelled": CycleStatus.CANCELLED}


def follow_orchestrator_runs(sender, *, run_id: int, agent: str, status: str, **kwargs) -> None:
    """Mark the cycle of a finished orchestrator run finished, failed or cancelled."""
    if agent != ORCHESTRATOR:
        return
    Cycle.objects.filter(run_id=run_id, status=CycleStatus.RUNNING).update(
        status=_CYCLE_STATUS.get(status, CycleStatus.FAILED), finished_at=timezone.now()
    )
