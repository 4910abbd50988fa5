"""Business rules of agent runs: trigger, cancel, retry, finish, reap, and external reporting.

Every transition has the project's one shape: guard, then a row lock or a conditional
UPDATE inside a transaction, an audit row for what people and scripts do, and a live event
on the `agents` topic after commit. Work for a worker is queued only after commit.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone

from opscenter.audit import record_audit
from opscenter.live import publish
from opscenter.models import AuditSource
from opscenter.services import DomainError

from .models import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    Agent,
    AgentKind,
    AgentRun,
    LogLevel,
    RunLog,
    RunStatus,
    RunTrigger,
)
from .params import ParamsInvalid as _ParamsInvalid
from .params import clean_params
from .registry import get_spec

logger = logging.getLogger(__name__)

TOPIC = "agents"
MAX_LOG_BATCH = 500
MAX_MESSAGE_LENGTH = 10_000


# Sent inside the transaction that makes a run final (run_id, agent slug, status): how apps
# built on the runtime (the content engine) follow their runs without the runtime knowing them.
run_finished = Signal()
# Sent with entries=[RunLog, …] right after run log lines are saved, in the same transaction:
# the log store (monitoring.logs) copies them into its one searchable store.
run_logs_written = Signal()


class RunConflict(DomainError):
    """The run is no longer in a state that allows the action."""


class AgentUnavailable(DomainError):
    """The agent cannot be started: disabled, external, or its code is not loaded."""


class InvalidParams(DomainError):
    """Parameters that do not fit the agent's schema; `fields` says which and why."""

    code = "invalid"
    status = 400

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields
        super().__init__("Some parameters are invalid.")


class InvalidReport(DomainError):
    code = "invalid"
    status = 400


# --- payloads ---------------------------------------------------------------------------------


def run_event(run: AgentRun) -> dict[str, Any]:
    """The payload the `agents` topic carries for one run."""
    return {
        "id": run.pk,
        "agent": run.agent.slug,
        "parent_id": run.parent_id,
        "root_id": run.root_id,
        "status": run.status,
        "trigger": run.trigger,
        "dry_run": run.dry_run,
        "attempt": run.attempt,
        "progress": {"done": run.progress_done, "total": run.progress_total, "note": run.progress_note},
        "queued_at": run.queued_at.isoformat() if run.queued_at else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "cancel_requested": run.cancel_requested_at is not None,
        "awaiting_children": run.awaiting_children,
        "upstream_id": run.upstream_id,
        "error": run.error[:300],
    }


def publish_run(run: AgentRun) -> None:
    """Announce the run's new state on the `agents` topic after commit."""
    publish(TOPIC, "run.changed", run_event(run))


def log_entry_event(entry: RunLog) -> dict[str, Any]:
    return {"id": entry.pk, "at": entry.at.isoformat(), "level": entry.level, "message": entry.message,
            "context": entry.context}


# --- trigger ----------------------------------------------------------------------------------


def _check_params(agent: Agent, params: dict | None) -> dict:
    if params is not None and not isinstance(params, dict):
        raise InvalidParams({"params": ["Send the parameters as a JSON object."]})
    try:
        return clean_params(agent.params_schema, params)
    except _ParamsInvalid as exc:
        raise InvalidParams(exc.errors) from None


def _check_startable(agent: Agent) -> None:
    if not agent.enabled:
        raise AgentUnavailable(f"“{agent.name}” is disabled; enable it first.")
    if agent.kind == AgentKind.EXTERNAL:
        raise AgentUnavailable(f"“{agent.name}” runs elsewhere and reports its own runs; it cannot be started here.")
    if agent.kind == AgentKind.WEBHOOK and not agent.webhook_url:
        raise AgentUnavailable(f"“{agent.name}” has no webhook URL to call.")
    if agent.kind == AgentKind.BUILTIN and get_spec(agent.slug) is None:
        raise AgentUnavailable(f"The code of “{agent.name}” is not loaded in this installation.")


def _create_run(agent: Agent, **fields: Any) -> AgentRun:
    run = AgentRun.objects.create(agent=agent, task_id=str(uuid.uuid4()), **fields)
    if run.root_id is None:
        run.root_id = run.pk
        AgentRun.objects.filter(pk=run.pk).update(root_id=run.pk)
    return run


def _enqueue(run: AgentRun, *, countdown: float | None = None) -> None:
    """Hand the run to a worker once the transaction commits."""
    from . import tasks

    agent = run.agent
    if agent.kind == AgentKind.WEBHOOK:
        transaction.on_commit(lambda: tasks.send_webhook_trigger.apply_async(args=[run.pk], countdown=countdown))
        return
    transaction.on_commit(
        lambda: tasks.execute_run.apply_async(
            args=[run.pk],
            task_id=run.task_id,
            countdown=countdown,
            # The soft limit raises inside the agent's code, so it can stop cleanly; the
            # hard limit ends the process when the code ignores it.
            soft_time_limit=agent.timeout_seconds,
            time_limit=agent.timeout_seconds + settings.AGENT_HARD_LIMIT_GRACE_SECONDS,
        )
    )


def trigger_run(
    agent: Agent,
    *,
    by=None,
    params: dict | None = None,
    dry_run: bool = False,
    trigger: str = RunTrigger.MANUAL,
    source: str = AuditSource.UI,
    request: HttpRequest | None = None,
) -> AgentRun:
    """Queue a new root run of `agent` with validated parameters."""
    _check_startable(agent)
    clean = _check_params(agent, params)
    with transaction.atomic():
        run = _create_run(agent, trigger=trigger, triggered_by=by, params=clean, dry_run=bool(dry_run))
        record_audit(
            "agent.triggered",
            actor=by,
            target=run,
            changes={"agent": agent.slug, "params": clean, "dry_run": bool(dry_run), "trigger": trigger},
            source=source,
            request=request,
        )
        publish_run(run)
        _enqueue(run)
    return run


def start_child_run(
    parent: AgentRun, slug: str, params: dict | None = None, *, after: AgentRun | None = None
) -> AgentRun:
    """Queue a child of `parent` (called by agent code through RunContext.child).

    With `after`, the child waits (queued, with no task sent) until that run succeeds.
    """
    agent = Agent.objects.filter(slug=slug).first()
    if agent is None:
        raise AgentUnavailable(f"There is no agent “{slug}”.")
    _check_startable(agent)
    clean = _check_params(agent, params)
    with transaction.atomic():
        upstream = None
        if after is not None:
            # Locked so it cannot finish between our look at it and the child's creation
            # (finish_run takes the same lock before it releases what waits on it).
            upstream = AgentRun.objects.select_for_update(of=("self",)).get(pk=after.pk)
        run = _create_run(
            agent,
            parent=parent,
            root_id=parent.root_id or parent.pk,
            trigger=RunTrigger.PARENT,
            triggered_by_id=parent.triggered_by_id,
            params=clean,
            dry_run=parent.dry_run,
            upstream=upstream,
        )
        publish_run(run)
        if upstream is None or upstream.status == RunStatus.SUCCEEDED:
            _enqueue(run)
        elif upstream.is_final:
            _cancel_unstarted(run, upstream)
    return run


def _cancel_unstarted(run: AgentRun, upstream: AgentRun) -> None:
    """End a run that waited for `upstream`, which did not succeed: it never starts."""
    outcome = RunStatus(upstream.status).label.lower()
    finish_run(
        run.pk,
        RunStatus.CANCELLED,
        error=f"Not started: run #{upstream.pk} ({upstream.agent.name}) before it {outcome}.",
        allow_retry=False,
    )


def _release_downstream(run: AgentRun, retry: AgentRun | None) -> None:
    """Start, re-point or cancel the runs waiting for `run`, which just became final."""
    waiting = list(
        AgentRun.objects.select_for_update(of=("self",))
        .select_related("agent")
        .filter(upstream_id=run.pk, status=RunStatus.QUEUED)
    )
    for downstream in waiting:
        if run.status == RunStatus.SUCCEEDED:
            _enqueue(downstream)
        elif retry is not None:
            # The retry takes the failed attempt's place in the pipeline.
            AgentRun.objects.filter(pk=downstream.pk).update(upstream=retry)
        else:
            _cancel_unstarted(downstream, run)


def run_scheduled(slug: str) -> AgentRun | None:
    """Start the agent from its schedule; a disabled agent is skipped, not an error."""
    agent = Agent.objects.filter(slug=slug).first()
    if agent is None or not agent.enabled:
        logger.info("scheduled run of %s skipped: %s", slug, "unknown agent" if agent is None else "disabled")
        return None
    return trigger_run(agent, trigger=RunTrigger.SCHEDULE, source=AuditSource.SYSTEM)


# --- claim and finish (the worker side) -------------------------------------------------------


def claim_run(run_id: int, *, worker: str = "") -> AgentRun | None:
    """Mark a queued run running; None when it was claimed already or cancelled (a duplicate)."""
    now = timezone.now()
    claimed = AgentRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(
        status=RunStatus.RUNNING, started_at=now, heartbeat_at=now, worker=worker[:200]
    )
    if not claimed:
        return None
    run = AgentRun.objects.select_related("agent").get(pk=run_id)
    publish_run(run)
    return run


def _active_children(run: AgentRun):
    return AgentRun.objects.filter(parent_id=run.pk, status__in=ACTIVE_STATUSES)


def _request_cancel_below(run: AgentRun, *, by=None) -> None:
    """Cancel the active runs under `run`: queued ones at once, running ones at their next check."""
    now = timezone.now()
    below = AgentRun.objects.filter(root_id=run.root_id, status__in=ACTIVE_STATUSES).exclude(pk=run.pk)
    ids = [r.pk for r in below.only("pk", "parent_id") if _descends_from(r, run)]
    if not ids:
        return
    AgentRun.objects.filter(pk__in=ids, status=RunStatus.QUEUED).update(
        status=RunStatus.CANCELLED, finished_at=now, cancel_requested_at=now, cancelled_by=by,
        error="Cancelled with its parent run.",
    )
    AgentRun.objects.filter(pk__in=ids, status=RunStatus.RUNNING, cancel_requested_at__isnull=True).update(
        cancel_requested_at=now, cancelled_by=by
    )
    # Runs that hold no worker (waiting for children, or reported by an external agent)
    # have nobody to notice the request: they end now.
    AgentRun.objects.filter(pk__in=ids, status=RunStatus.RUNNING).filter(
        Q(awaiting_children=True) | ~Q(agent__kind=AgentKind.BUILTIN)
    ).update(status=RunStatus.CANCELLED, finished_at=now, awaiting_children=False, error="Cancelled with its parent run.")
    for child in AgentRun.objects.filter(pk__in=ids).select_related("agent"):
        publish_run(child)
        if child.status == RunStatus.CANCELLED:  # ended here, not by a worker: tell the followers
            run_finished.send(sender=AgentRun, run_id=child.pk, agent=child.agent.slug, status=child.status)


def _descends_from(run: AgentRun, ancestor: AgentRun) -> bool:
    parents = dict(AgentRun.objects.filter(root_id=ancestor.root_id).values_list("pk", "parent_id"))
    current = run.parent_id
    while current is not None:
        if current == ancestor.pk:
            return True
        current = parents.get(current)
    return False


def finish_run(
    run_id: int,
    status: str,
    *,
    result: Any = None,
    error: str = "",
    traceback: str = "",
    allow_retry: bool = True,
) -> AgentRun:
    """Record the end of a run's own work; idempotent once the run is final.

    A run that succeeded while children it started are still going waits for them
    (holding no worker) and is settled when the last one ends. A run that failed cancels
    what it started, and is retried when its agent allows more attempts.
    """
    with transaction.atomic():
        run = AgentRun.objects.select_for_update(of=("self",)).select_related("agent").get(pk=run_id)
        if run.is_final:
            return run
        now = timezone.now()
        if status == RunStatus.SUCCEEDED:
            children = list(AgentRun.objects.filter(parent_id=run.pk).select_related("agent"))
            if any(child.status in ACTIVE_STATUSES for child in children):
                run.awaiting_children = True
                run.result = result
                run.heartbeat_at = now
                run.save(update_fields=["awaiting_children", "result", "heartbeat_at"])
                publish_run(run)
                return run
            # Children that ended before the parent's own code returned count just the same.
            failed = _failed_children(children)
            if failed:
                status, error, allow_retry = RunStatus.FAILED, _children_error(failed, children), False
        if status != RunStatus.SUCCEEDED:
            _request_cancel_below(run)
        run.status = status
        run.finished_at = now
        run.awaiting_children = False
        run.error = error[:MAX_MESSAGE_LENGTH]
        run.traceback = traceback[:50_000]
        if result is not None:
            run.result = result
        run.save(update_fields=["status", "finished_at", "awaiting_children", "error", "traceback", "result"])
        final_line = RunLog.objects.create(
            run=run,
            level=LogLevel.INFO if status == RunStatus.SUCCEEDED else LogLevel.ERROR,
            message=f"Run {RunStatus(status).label.lower()}" + (f": {error[:500]}" if error else "."),
        )
        run_logs_written.send(sender=RunLog, entries=[final_line])
        publish_run(run)
        # Inside the transaction: what receivers record commits with the run's final state.
        run_finished.send(sender=AgentRun, run_id=run.pk, agent=run.agent.slug, status=run.status)
        retry = None
        if allow_retry and status in {RunStatus.FAILED, RunStatus.TIMED_OUT}:
            retry = _schedule_retry(run)
        _release_downstream(run, retry)
        if run.parent_id:
            parent_id = run.parent_id
            transaction.on_commit(lambda: settle_parent(parent_id))
    return run


def _schedule_retry(run: AgentRun) -> AgentRun | None:
    agent = run.agent
    if run.attempt > agent.retries or not agent.enabled or agent.kind == AgentKind.EXTERNAL:
        return None
    if run.cancel_requested_at is not None:
        return None  # someone cancelled it: a lost worker must not bring it back
    if run.parent_id and AgentRun.objects.filter(pk=run.parent_id, status__in=FINAL_STATUSES).exists():
        return None
    retry = _create_run(
        agent,
        parent_id=run.parent_id,
        root_id=run.root_id,
        retry_of=run,
        attempt=run.attempt + 1,
        trigger=RunTrigger.RETRY,
        triggered_by_id=run.triggered_by_id,
        params=run.params,
        dry_run=run.dry_run,
    )
    delay = min(settings.AGENT_RETRY_MAX_DELAY_SECONDS, settings.AGENT_RETRY_DELAY_SECONDS * 2 ** (run.attempt - 1))
    retry_line = RunLog.objects.create(run=run, level=LogLevel.WARNING,
                                       message=f"Retrying as run #{retry.pk} (attempt {retry.attempt}) in {delay:g} s.")
    run_logs_written.send(sender=RunLog, entries=[retry_line])
    publish_run(retry)
    _enqueue(retry, countdown=delay)
    return retry


def _superseded(child: AgentRun, children: list[AgentRun]) -> bool:
    return any(other.retry_of_id == child.pk for other in children)


def _failed_children(children: list[AgentRun]) -> list[AgentRun]:
    """Children that did not succeed and were not retried by a sibling attempt."""
    return [c for c in children if c.status != RunStatus.SUCCEEDED and not _superseded(c, children)]


def _children_error(failed: list[AgentRun], children: list[AgentRun]) -> str:
    names = ", ".join(sorted({c.agent.slug for c in failed}))
    return f"{len(failed)} of {len(children)} child runs did not succeed ({names})."


def settle_parent(run_id: int) -> AgentRun | None:
    """End a run that was waiting for its children, once none is active; walks up the tree."""
    with transaction.atomic():
        run = AgentRun.objects.select_for_update(of=("self",)).select_related("agent").filter(pk=run_id).first()
        if run is None or run.is_final or not run.awaiting_children:
            return run
        children = list(AgentRun.objects.filter(parent_id=run.pk).select_related("agent"))
        if any(child.status in ACTIVE_STATUSES for child in children):
            return run
        failed = _failed_children(children)
    if failed:
        return finish_run(run_id, RunStatus.FAILED, error=_children_error(failed, children), allow_retry=False)
    return finish_run(run_id, RunStatus.SUCCEEDED)


# --- people's actions: cancel and retry -------------------------------------------------------


def cancel_run(run: AgentRun, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None) -> AgentRun:
    """Cancel a run and everything under it: a queued run never starts; a running one stops
    at its next checkpoint."""
    from . import tasks

    with transaction.atomic():
        run = AgentRun.objects.select_for_update(of=("self",)).select_related("agent").get(pk=run.pk)
        if run.is_final:
            raise RunConflict(f"Run #{run.pk} already {RunStatus(run.status).label.lower()}; there is nothing to cancel.")
        if run.cancel_requested_at and run.status == RunStatus.RUNNING:
            raise RunConflict(f"Run #{run.pk} is already being cancelled.")
        now = timezone.now()
        before = run.status
        run.cancel_requested_at = now
        run.cancelled_by = by if getattr(by, "is_authenticated", False) else None
        fields = ["cancel_requested_at", "cancelled_by"]
        holds_no_worker = run.status == RunStatus.QUEUED or run.awaiting_children or run.agent.kind != AgentKind.BUILTIN
        if holds_no_worker:
            run.status = RunStatus.CANCELLED
            run.finished_at = now
            run.awaiting_children = False
            run.error = f"Cancelled by {by.get_username() if run.cancelled_by else 'the system'}."
            fields += ["status", "finished_at", "awaiting_children", "error"]
        run.save(update_fields=fields)
        _request_cancel_below(run, by=run.cancelled_by)
        record_audit("run.cancelled", actor=by, target=run, changes={"status": [before, run.status]},
                     source=source, request=request)
        publish_run(run)
        if holds_no_worker:  # final here: no worker will report its end
            run_finished.send(sender=AgentRun, run_id=run.pk, agent=run.agent.slug, status=run.status)
        if run.status == RunStatus.CANCELLED and run.parent_id:
            parent_id = run.parent_id
            transaction.on_commit(lambda: settle_parent(parent_id))
        if before == RunStatus.QUEUED and run.task_id:
            task_id = run.task_id
            transaction.on_commit(lambda: tasks.revoke_quietly(task_id))
    return run


def retry_run(
    run: AgentRun,
    *,
    by,
    params: dict | None = None,
    dry_run: bool | None = None,
    source: str = AuditSource.UI,
    request: HttpRequest | None = None,
) -> AgentRun:
    """Start a finished run again, with its parameters or edited ones."""
    run = AgentRun.objects.select_related("agent").get(pk=run.pk)
    if not run.is_final:
        raise RunConflict(f"Run #{run.pk} is still {RunStatus(run.status).label.lower()}; cancel it or wait for it.")
    agent = run.agent
    _check_startable(agent)
    clean = _check_params(agent, run.params if params is None else params)
    with transaction.atomic():
        parent = None
        if run.parent_id:
            parent = AgentRun.objects.select_for_update().filter(pk=run.parent_id, status=RunStatus.RUNNING).first()
        retry = _create_run(
            agent,
            parent=parent,
            root_id=parent.root_id if parent else None,
            retry_of=run,
            attempt=run.attempt + 1,
            trigger=RunTrigger.RETRY,
            triggered_by=by if getattr(by, "is_authenticated", False) else None,
            params=clean,
            dry_run=run.dry_run if dry_run is None else bool(dry_run),
        )
        record_audit(
            "run.retried", actor=by, target=retry,
            changes={"retry_of": run.pk, "params": clean, "dry_run": retry.dry_run}, source=source, request=request,
        )
        publish_run(retry)
        _enqueue(retry)
    return retry


# --- the reaper -------------------------------------------------------------------------------


def reap_runs(now=None) -> dict[str, list[int]]:
    """Fail runs whose worker or reporter went silent, and settle parents left waiting."""
    now = now or timezone.now()
    lost_before = now - timedelta(seconds=settings.AGENT_LOST_AFTER_SECONDS)
    reaped: dict[str, list[int]] = {"lost": [], "timed_out": [], "silent": [], "settled": []}
    silent_builtin = AgentRun.objects.filter(
        status=RunStatus.RUNNING, awaiting_children=False, agent__kind=AgentKind.BUILTIN, heartbeat_at__lt=lost_before
    ).select_related("agent")
    for run in silent_builtin:
        limit = run.agent.timeout_seconds + settings.AGENT_HARD_LIMIT_GRACE_SECONDS
        seen = run.heartbeat_at.isoformat(timespec="seconds")
        if run.cancel_requested_at is not None:
            # Cancelled while its worker was gone: what was asked for happened, just not cleanly.
            finish_run(run.pk, RunStatus.CANCELLED, error=f"Cancelled; its worker was lost (last heartbeat {seen}).")
            reaped["lost"].append(run.pk)
        elif run.started_at and (now - run.started_at).total_seconds() > limit:
            finish_run(run.pk, RunStatus.TIMED_OUT,
                       error=f"Stopped after its {run.agent.timeout_seconds} s limit; last heartbeat {seen}.")
            reaped["timed_out"].append(run.pk)
        else:
            where = f" on {run.worker}" if run.worker else ""
            finish_run(run.pk, RunStatus.FAILED, error=f"Worker lost: no heartbeat{where} since {seen}.")
            reaped["lost"].append(run.pk)
    remote = AgentRun.objects.filter(status=RunStatus.RUNNING, awaiting_children=False).exclude(
        agent__kind=AgentKind.BUILTIN
    ).select_related("agent")
    for run in remote:
        last = run.heartbeat_at or run.started_at or run.queued_at
        if (now - last).total_seconds() > run.agent.timeout_seconds:
            finish_run(run.pk, RunStatus.FAILED,
                       error=f"Stopped reporting: nothing heard for {run.agent.timeout_seconds} s.")
            reaped["silent"].append(run.pk)
    waiting = AgentRun.objects.filter(status=RunStatus.RUNNING, awaiting_children=True).exclude(
        children__status__in=ACTIVE_STATUSES
    )
    for run_id in waiting.values_list("pk", flat=True).distinct():
        settled = settle_parent(run_id)
        if settled and settled.is_final:
            reaped["settled"].append(run_id)
    return reaped


# --- external agents --------------------------------------------------------------------------


def report_run_start(
    agent: Agent,
    *,
    by,
    external_id: str = "",
    params: dict | None = None,
    parent: AgentRun | None = None,
    request: HttpRequest | None = None,
) -> tuple[AgentRun, bool]:
    """Record that an external agent started a run; the same external id returns the same run.

    Returns the run and whether it was created now.
    """
    if agent.kind == AgentKind.BUILTIN:
        raise InvalidReport(f"“{agent.name}” is a built-in agent; its runs are recorded by the worker.")
    if params is not None and not isinstance(params, dict):
        raise InvalidParams({"params": ["Send the parameters as a JSON object."]})
    external_id = (external_id or "").strip()[:200]
    if external_id:
        existing = AgentRun.objects.filter(agent=agent, external_id=external_id).first()
        if existing:
            return existing, False
    now = timezone.now()
    try:
        with transaction.atomic():
            run = _create_run(
                agent,
                parent=parent,
                root_id=parent.root_id if parent else None,
                trigger=RunTrigger.PARENT if parent else RunTrigger.EXTERNAL,
                triggered_by=by if getattr(by, "is_authenticated", False) else None,
                params=params or {},
                status=RunStatus.RUNNING,
                started_at=now,
                heartbeat_at=now,
                external_id=external_id,
            )
            record_audit("run.reported", actor=by, target=run, changes={"external_id": external_id},
                         source=AuditSource.API, request=request)
            publish_run(run)
    except IntegrityError:
        # Another request with the same external id won the race: answer with its run.
        return AgentRun.objects.get(agent=agent, external_id=external_id), False
    return run, True


def report_run_update(
    run: AgentRun,
    *,
    by,
    status: str | None = None,
    progress_done: int | None = None,
    progress_total: int | None = None,
    progress_note: str | None = None,
    result: Any = None,
    error: str = "",
    metrics: dict | None = None,
    request: HttpRequest | None = None,
) -> AgentRun:
    """Apply an external agent's report: progress, metrics, and at most one final status."""
    if status is not None and status not in {RunStatus.RUNNING, *FINAL_STATUSES}:
        raise InvalidReport(f"Status must be one of running, {', '.join(sorted(FINAL_STATUSES))}.")
    with transaction.atomic():
        run = AgentRun.objects.select_for_update(of=("self",)).select_related("agent").get(pk=run.pk)
        if run.agent.kind == AgentKind.BUILTIN:
            raise InvalidReport("Built-in runs are recorded by the worker, not reported.")
        if run.is_final:
            if status == run.status:
                return run  # the same final report sent twice
            raise RunConflict(f"Run #{run.pk} already {RunStatus(run.status).label.lower()}.")
        now = timezone.now()
        fields = {"heartbeat_at"}
        run.heartbeat_at = now
        if run.status == RunStatus.QUEUED:
            run.status, run.started_at = RunStatus.RUNNING, now
            fields |= {"status", "started_at"}
        if progress_done is not None:
            run.progress_done = max(0, int(progress_done))
            fields.add("progress_done")
        if progress_total is not None:
            run.progress_total = max(0, int(progress_total))
            fields.add("progress_total")
        if progress_note is not None:
            run.progress_note = progress_note[:200]
            fields.add("progress_note")
        if metrics:
            run.metrics = {**run.metrics, **metrics}
            fields.add("metrics")
        run.save(update_fields=sorted(fields))
        publish_run(run)
    if status in FINAL_STATUSES:
        run = finish_run(run.pk, status, result=result, error=error or "", allow_retry=False)
        record_audit("run.reported_finished", actor=by, target=run, changes={"status": status},
                     source=AuditSource.API, request=request)
    return run


def append_run_logs(run: AgentRun, entries: list[dict]) -> list[RunLog]:
    """Store a batch of log lines from an external agent and publish them."""
    if run.agent.kind == AgentKind.BUILTIN:
        raise InvalidReport("Built-in runs log through their worker.")
    if run.is_final:
        raise RunConflict(f"Run #{run.pk} already {RunStatus(run.status).label.lower()}; its log is closed.")
    if not entries:
        raise InvalidReport("Send at least one log entry.")
    if len(entries) > MAX_LOG_BATCH:
        raise InvalidReport(f"Send at most {MAX_LOG_BATCH} entries per request.")
    rows = [
        RunLog(run=run, at=e.get("at") or timezone.now(), level=e.get("level") or LogLevel.INFO,
               message=str(e["message"])[:MAX_MESSAGE_LENGTH], context=e.get("context") or {})
        for e in entries
    ]
    with transaction.atomic():
        created = RunLog.objects.bulk_create(rows)
        AgentRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
        if created and created[0].pk is None:  # backends that do not return ids
            created = list(RunLog.objects.filter(run=run).order_by("-id")[: len(rows)])[::-1]
        run_logs_written.send(sender=RunLog, entries=created)
        publish(TOPIC, "run.logs", {"run_id": run.pk, "entries": [log_entry_event(e) for e in created]})
    return created


# --- reading: the hierarchy with its state ----------------------------------------------------


def agent_states(window_days: int = 30) -> dict[int, dict[str, Any]]:
    """Per agent: its latest root-or-child run, running count and success rate over the window."""
    since = timezone.now() - timedelta(days=window_days)
    stats = {
        row["agent_id"]: row
        for row in AgentRun.objects.filter(queued_at__gte=since)
        .values("agent_id")
        .annotate(
            total=Count("id", filter=Q(status__in=FINAL_STATUSES)),
            ok=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
            last_id=Max("id"),
        )
    }
    last_ids = [row["last_id"] for row in stats.values()]
    latest = {r.agent_id: r for r in AgentRun.objects.filter(pk__in=last_ids)}
    active = dict(
        AgentRun.objects.filter(status__in=ACTIVE_STATUSES).values("agent_id").annotate(n=Count("id")).values_list(
            "agent_id", "n"
        )
    )
    out = {}
    for agent_id, row in stats.items():
        run = latest.get(agent_id)
        out[agent_id] = {
            "success_rate": round(row["ok"] / row["total"], 3) if row["total"] else None,
            "finished_runs": row["total"],
            "active_runs": active.get(agent_id, 0),
            "last_run": run_event(run) if run else None,
        }
    for agent_id, n in active.items():
        out.setdefault(agent_id, {"success_rate": None, "finished_runs": 0, "last_run": None})["active_runs"] = n
    return out


def hierarchy_snapshot(user=None) -> dict[str, Any]:
    """The agents tree with each node's state: the `agents` topic snapshot and GET /runs/tree."""
    agents = list(Agent.objects.select_related("schedule").order_by("position", "name"))
    states = agent_states()
    by_parent: dict[int | None, list[Agent]] = {}
    ids = {a.pk for a in agents}
    for a in agents:
        by_parent.setdefault(a.parent_id if a.parent_id in ids else None, []).append(a)
    may_trigger = bool(user and user.has_perm("agents.trigger_agent"))

    def node(a: Agent) -> dict[str, Any]:
        state = states.get(a.pk, {})
        last = state.get("last_run")
        return {
            "id": a.pk,
            "slug": a.slug,
            "name": a.name,
            "kind": a.kind,
            "enabled": a.enabled,
            "in_code": a.in_code,
            "description": a.description,
            "state": last["status"] if last else "idle",
            "state_label": RunStatus(last["status"]).label if last else "Idle",
            "active_runs": state.get("active_runs", 0),
            "success_rate": state.get("success_rate"),
            "finished_runs": state.get("finished_runs", 0),
            "last_run": last,
            "scheduled": bool(a.schedule_id and a.schedule and a.schedule.enabled),
            "can_trigger": may_trigger and a.enabled and a.triggerable,
            "children": [node(c) for c in by_parent.get(a.pk, [])],
        }

    return {"agents": [node(a) for a in by_parent.get(None, [])], "server_time": timezone.now().isoformat()}
