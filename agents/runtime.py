"""Running agent code on a worker: the RunContext it receives, heartbeats, and the outcome.

`execute(run_id)` claims the run with a conditional UPDATE (a second delivery of the same
task finds it claimed and does nothing), runs the registered function with a RunContext,
and records how it ended. A background thread beats the heartbeat the reaper watches,
notices cancel requests, and flushes coalesced progress and log events.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback as tb
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import close_old_connections, connection
from django.utils import timezone

from opscenter.live import publish

from . import services
from .models import AgentRun, LogLevel, RunLog, RunStatus
from .registry import get_spec

logger = logging.getLogger(__name__)


class RunCancelled(Exception):
    """Raised by RunContext.check_cancelled() when someone cancelled the run."""


class RunContext:
    """What agent code gets: its parameters and the ways to report back.

        def my_agent(ctx: RunContext) -> dict:
            for i, item in enumerate(items):
                ctx.check_cancelled()
                ...
                ctx.progress(i + 1, len(items), note=item.name)
            ctx.metric("items", len(items))
            return {"done": len(items)}
    """

    def __init__(self, run: AgentRun) -> None:
        self.run = run
        self.run_id = run.pk
        self.agent = run.agent.slug
        self.params: dict[str, Any] = dict(run.params)
        self.dry_run = run.dry_run
        self.children: list[AgentRun] = []
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._last_cancel_check = 0.0
        self._pending_progress: dict[str, Any] | None = None
        self._pending_logs: list[dict[str, Any]] = []
        self._last_flush = 0.0
        self._metrics: dict[str, Any] = dict(run.metrics or {})
        self._metrics_dirty = False

    # --- what agent code calls --------------------------------------------------------------

    def log(self, message: str, level: str = LogLevel.INFO, **context: Any) -> None:
        """Store a log line for this run (at once) and publish it (batched)."""
        if level not in LogLevel.values:
            level = LogLevel.INFO
        entry = RunLog.objects.create(
            run_id=self.run_id, level=level, message=str(message)[: services.MAX_MESSAGE_LENGTH],
            context=_json_safe(context),
        )
        services.run_logs_written.send(sender=RunLog, entries=[entry])
        with self._lock:
            self._pending_logs.append(services.log_entry_event(entry))
        self._maybe_flush()

    def progress(self, done: int, total: int | None = None, note: str = "") -> None:
        """Report how far the run got; published a few times a second at most."""
        with self._lock:
            self._pending_progress = {"done": max(0, int(done)), "total": total, "note": str(note)[:200]}
        self._maybe_flush()

    def metric(self, name: str, value: float, *, add: bool = False) -> None:
        """Record a figure of the run (items, api_calls, tokens, cost…); `add` accumulates."""
        with self._lock:
            self._metrics[name] = (self._metrics.get(name) or 0) + value if add else value
            self._metrics_dirty = True

    def child(self, slug: str, params: dict | None = None, *, after: AgentRun | None = None) -> AgentRun:
        """Queue a child run; this run waits for it without holding its worker.

        With `after`, the child starts only once that run (a sibling) has succeeded, and is
        cancelled if it does not: a pipeline of stages without anyone waiting in a worker.
        """
        run = services.start_child_run(self.run, slug, params, after=after)
        self.children.append(run)
        return run

    def check_cancelled(self) -> None:
        """Raise RunCancelled if the run was cancelled; call it between units of work."""
        if self._cancelled.is_set():
            raise RunCancelled
        now = time.monotonic()
        if now - self._last_cancel_check >= 0.5:
            self._last_cancel_check = now
            if AgentRun.objects.filter(pk=self.run_id, cancel_requested_at__isnull=False).exists():
                self._cancelled.set()
                raise RunCancelled

    # --- plumbing -----------------------------------------------------------------------------

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= settings.AGENT_PROGRESS_INTERVAL_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Persist pending progress and metrics and publish them with pending log lines."""
        with self._lock:
            progress, self._pending_progress = self._pending_progress, None
            logs, self._pending_logs = self._pending_logs, []
            metrics = dict(self._metrics) if self._metrics_dirty else None
            self._metrics_dirty = False
            self._last_flush = time.monotonic()
        update: dict[str, Any] = {}
        if progress is not None:
            update.update(progress_done=progress["done"], progress_total=progress["total"],
                          progress_note=progress["note"])
        if metrics is not None:
            update["metrics"] = _json_safe(metrics)
        if update:
            AgentRun.objects.filter(pk=self.run_id).update(**update)
        if progress is not None:
            publish(services.TOPIC, "run.progress", {"id": self.run_id, "agent": self.agent, **progress})
        if logs:
            publish(services.TOPIC, "run.logs", {"run_id": self.run_id, "entries": logs})

    def beat(self) -> None:
        """Record that the run is alive, and learn whether it was cancelled."""
        AgentRun.objects.filter(pk=self.run_id).update(heartbeat_at=timezone.now())
        if AgentRun.objects.filter(pk=self.run_id, cancel_requested_at__isnull=False).exists():
            self._cancelled.set()


class _Heartbeat(threading.Thread):
    """Beats every AGENT_HEARTBEAT_SECONDS and flushes coalesced updates in between."""

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(name=f"heartbeat-{ctx.run_id}", daemon=True)
        self.ctx = ctx
        self.stopped = threading.Event()

    def run(self) -> None:
        last_beat = time.monotonic()
        try:
            while not self.stopped.wait(settings.AGENT_PROGRESS_INTERVAL_SECONDS):
                try:
                    if time.monotonic() - last_beat >= settings.AGENT_HEARTBEAT_SECONDS:
                        self.ctx.beat()
                        last_beat = time.monotonic()
                    self.ctx.flush()
                except Exception:
                    logger.warning("heartbeat of run %s failed", self.ctx.run_id, exc_info=True)
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


def _json_safe(value: Any) -> Any:
    import json

    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    except (TypeError, ValueError):
        return repr(value)


def execute(run_id: int, *, worker: str = "") -> str | None:
    """Claim and run one queued run; return its outcome, or None when there was nothing to do."""
    close_old_connections()
    run = services.claim_run(run_id, worker=worker)
    if run is None:
        return None
    spec = get_spec(run.agent.slug)
    if spec is None:
        services.finish_run(run.pk, RunStatus.FAILED, error=f"No code is registered for agent “{run.agent.slug}”.")
        return RunStatus.FAILED
    ctx = RunContext(run)
    ctx.log(f"Started on {worker or 'a worker'}" + (" (dry run)" if run.dry_run else "") + ".")
    heartbeat = _Heartbeat(ctx)
    heartbeat.start()
    status, result, error, trace = RunStatus.SUCCEEDED, None, "", ""
    try:
        result = _json_safe(spec.func(ctx))
    except RunCancelled:
        status, error = RunStatus.CANCELLED, "Cancelled while running."
    except SoftTimeLimitExceeded:
        status, error = RunStatus.TIMED_OUT, f"Took longer than its {run.agent.timeout_seconds} s limit."
    except Exception as exc:
        status, error, trace = RunStatus.FAILED, f"{type(exc).__name__}: {exc}", tb.format_exc()
    finally:
        heartbeat.stop()
    try:
        ctx.flush()
    except Exception:
        logger.warning("final flush of run %s failed", run_id, exc_info=True)
    if status == RunStatus.CANCELLED:
        who = AgentRun.objects.filter(pk=run_id).values_list("cancelled_by__username", flat=True).first()
        if who:
            error = f"Cancelled by {who} while running."
    services.finish_run(run.pk, status, result=result, error=error, traceback=trace)
    return status
