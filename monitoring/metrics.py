"""The core metrics: system resources, processes, runs, approvals, deliveries, the queue.

Registered from MonitoringConfig.ready(). Every reader is cheap enough for a scrape every
few seconds: Redis hashes, or one indexed query. Run counts and durations are Redis
counters bumped when a run finishes (agents.services.run_finished), so a scrape never
scans the run history.
"""

from __future__ import annotations

import logging
import math
import time

from django.db import transaction
from django.db.models import Count, Min, Q

from opscenter.redis import redis_client

from . import processes
from .registry import HistogramValue, Kind, Sample, register_metric

logger = logging.getLogger(__name__)

RUNS_KEY = "opscenter:monitoring:runs_total"  # field agent|status -> count
DURATION_BUCKETS_KEY = "opscenter:monitoring:run_duration:buckets"  # field agent|le -> count (not cumulative)
DURATION_SUM_KEY = "opscenter:monitoring:run_duration:sum"  # field agent -> seconds
DURATION_COUNT_KEY = "opscenter:monitoring:run_duration:count"  # field agent -> runs
# Upper bounds of the run-duration histogram, in seconds (agents take seconds to hours).
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 10800.0, math.inf)


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(bound)


# --- runs ------------------------------------------------------------------------------------


def record_run_finished(run_id: int, agent: str, status: str) -> None:
    """Count a finished run and, if it ever started, its duration in the histogram."""
    from agents.models import AgentRun

    times = AgentRun.objects.filter(pk=run_id).values_list("started_at", "finished_at").first()
    pipe = redis_client().pipeline(transaction=True)
    pipe.hincrby(RUNS_KEY, f"{agent}|{status}", 1)
    if times and times[0] and times[1]:
        seconds = max(0.0, (times[1] - times[0]).total_seconds())
        bound = next(b for b in DURATION_BUCKETS if seconds <= b)
        pipe.hincrby(DURATION_BUCKETS_KEY, f"{agent}|{_le(bound)}", 1)
        pipe.hincrbyfloat(DURATION_SUM_KEY, agent, seconds)
        pipe.hincrby(DURATION_COUNT_KEY, agent, 1)
    pipe.execute()


def on_run_finished(sender, run_id: int, agent: str, status: str, **kwargs) -> None:
    """Receive agents.services.run_finished: count the run once its transaction commits."""

    def count() -> None:
        try:
            record_run_finished(run_id, agent, status)
        except Exception:  # metrics must never break a run's completion
            logger.warning("run %s not counted in the metrics", run_id, exc_info=True)

    transaction.on_commit(count)


def read_runs_total() -> list[Sample]:
    raw = redis_client().hgetall(RUNS_KEY)
    out = []
    for field, value in raw.items():
        agent, _, status = field.decode().rpartition("|")
        out.append(Sample({"agent": agent, "status": status}, float(value)))
    return out


def read_run_duration() -> list[HistogramValue]:
    client = redis_client()
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(DURATION_BUCKETS_KEY)
    pipe.hgetall(DURATION_SUM_KEY)
    pipe.hgetall(DURATION_COUNT_KEY)
    buckets_raw, sums_raw, counts_raw = pipe.execute()
    per_agent: dict[str, dict[str, int]] = {}
    for field, value in buckets_raw.items():
        agent, _, le = field.decode().rpartition("|")
        per_agent.setdefault(agent, {})[le] = int(value)
    out = []
    for agent_b, count in counts_raw.items():
        agent = agent_b.decode()
        counts = per_agent.get(agent, {})
        running, buckets = 0, []
        for bound in DURATION_BUCKETS:
            running += counts.get(_le(bound), 0)
            buckets.append((bound, running))
        out.append(HistogramValue({"agent": agent}, tuple(buckets), float(sums_raw.get(agent_b, 0)), int(count)))
    return out


def read_runs_active() -> list[Sample]:
    from agents.models import ACTIVE_STATUSES, AgentRun

    rows = (
        AgentRun.objects.filter(status__in=ACTIVE_STATUSES)
        .values_list("agent__slug", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return [Sample({"agent": slug, "status": status}, float(n)) for slug, status, n in rows]


def read_runs_without_heartbeat() -> list[Sample]:
    """Running runs whose heartbeat is more than three intervals old, by agent (zeros for agents seen running)."""
    from datetime import timedelta

    from django.conf import settings
    from django.db.models import Q
    from django.utils import timezone

    from agents.models import AgentRun, RunStatus

    cutoff = timezone.now() - timedelta(seconds=3 * settings.AGENT_HEARTBEAT_SECONDS)
    # External agents report progress instead of heartbeats and are never reaped: left out.
    running = AgentRun.objects.filter(status=RunStatus.RUNNING).exclude(agent__kind="external")
    stale = running.filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))
    counts = dict(stale.values_list("agent__slug").annotate(n=Count("id")).order_by())
    agents = set(running.values_list("agent__slug", flat=True)) | set(counts)
    return [Sample({"agent": slug}, float(counts.get(slug, 0))) for slug in sorted(agents)]


# --- content and deliveries --------------------------------------------------------------------


def read_pending_approvals() -> list[Sample]:
    from advisors.models import Content, ContentStatus

    return [Sample({}, float(Content.objects.filter(status=ContentStatus.PENDING_REVIEW).count()))]


def read_oldest_pending_age() -> list[Sample]:
    from advisors.models import Content, ContentStatus

    oldest = Content.objects.filter(status=ContentStatus.PENDING_REVIEW).aggregate(oldest=Min("submitted_at"))["oldest"]
    return [Sample({}, max(0.0, time.time() - oldest.timestamp()) if oldest else 0.0)]


def read_deliveries() -> list[Sample]:
    from advisors.models import Delivery, DeliveryStatus

    counts = dict(Delivery.objects.values_list("status").annotate(n=Count("id")).order_by())
    # Every status, zeros included: a series that vanishes at zero confuses rate() and alerts.
    return [Sample({"status": status}, float(counts.get(status, 0))) for status in DeliveryStatus.values]


def read_delivery_outcomes() -> list[Sample]:
    """Deliveries ever sent, and ever failed: both only grow, so increase() over a window counts outcomes in it."""
    from advisors.models import Delivery, DeliveryStatus

    figures = Delivery.objects.aggregate(sent=Count("id", filter=Q(sent_at__isnull=False)),
                                         failed=Count("id", filter=Q(status=DeliveryStatus.FAILED)))
    return [Sample({"outcome": outcome}, float(figures[outcome] or 0)) for outcome in ("sent", "failed")]


def read_cycle_finished() -> list[Sample]:
    """1 when the content cycle for the next posts (tomorrow's after noon, today's before) has finished, else 0."""
    from agents.engine.models import Cycle, CycleStatus
    from agents.engine.services import default_cycle_date

    done = Cycle.objects.filter(cycle_date=default_cycle_date(), dry_run=False, status=CycleStatus.SUCCEEDED).exists()
    return [Sample({}, 1.0 if done else 0.0)]


def read_inbound_events() -> list[Sample]:
    from advisors.inbound.models import InboundSource
    from advisors.inbound.services import OUTCOMES, event_counts

    counts = event_counts()
    slugs = set(InboundSource.objects.values_list("slug", flat=True)) | {slug for slug, _ in counts}
    return [Sample({"source": slug, "outcome": outcome}, float(counts.get((slug, outcome), 0)))
            for slug in sorted(slugs) for outcome in OUTCOMES]


def read_inbound_waiting() -> list[Sample]:
    from advisors.inbound.models import EventStatus, InboundEvent

    waiting = (EventStatus.RECEIVED, EventStatus.PROCESSING, EventStatus.FAILED)
    counts = dict(InboundEvent.objects.filter(status__in=waiting).values_list("status").annotate(n=Count("id"))
                  .order_by())
    return [Sample({"status": status}, float(counts.get(status, 0))) for status in waiting]


def read_inbound_silence() -> list[Sample]:
    from advisors.inbound.models import InboundSource

    now = time.time()
    samples = []
    for slug, event_at, beat_at, created in InboundSource.objects.filter(enabled=True).values_list(
        "slug", "last_event_at", "last_heartbeat_at", "created_at"
    ):
        last = max(filter(None, [event_at, beat_at]), default=created)
        samples.append(Sample({"source": slug}, max(0.0, now - last.timestamp())))
    return samples


# --- the queue, processes, hosts ---------------------------------------------------------------


def read_queue_length() -> list[Sample]:
    from opscenter.tasks import _queue_length

    return [Sample({}, float(_queue_length()))]


def read_workers_online() -> list[Sample]:
    online = [p for p in processes.processes() if p["role"] == "worker" and p["online"]]
    return [Sample({}, float(len(online)))]


def read_processes_online() -> list[Sample]:
    found = processes.processes()
    return [
        Sample({"role": role}, float(sum(1 for p in found if p["role"] == role and p["online"])))
        for role in processes.ROLES
    ]


def _process_figure(key: str):
    def read() -> list[Sample]:
        return [
            Sample({"role": p["role"], "host": p["host"], "pid": str(p["pid"])}, float(p.get(key) or 0))
            for p in processes.processes()
            if p["online"]
        ]

    return read


def _host_figure(key: str):
    def read() -> list[Sample]:
        return [Sample({"host": h["host"]}, float(h.get(key) or 0)) for h in processes.hosts()]

    return read


SYSTEM_METRICS = (
    # name, help, figure key, unit, kind
    ("opscenter_system_cpu_percent", "CPU busy on the host, all cores, in percent.", "cpu_percent", "percent", Kind.GAUGE),
    ("opscenter_system_memory_used_percent", "Memory in use on the host, in percent.", "memory_used_percent", "percent", Kind.GAUGE),
    ("opscenter_system_memory_used_bytes", "Memory in use on the host (total minus available).", "memory_used_bytes", "bytes", Kind.GAUGE),
    ("opscenter_system_memory_total_bytes", "Memory installed on the host.", "memory_total_bytes", "bytes", Kind.GAUGE),
    ("opscenter_system_disk_used_percent", "Used space on the filesystem of OpsCenter's var directory, in percent.", "disk_used_percent", "percent", Kind.GAUGE),
    ("opscenter_system_disk_free_bytes", "Free space on the filesystem of OpsCenter's var directory.", "disk_free_bytes", "bytes", Kind.GAUGE),
    ("opscenter_system_load1", "Load average over 1 minute.", "load1", "", Kind.GAUGE),
    ("opscenter_system_load5", "Load average over 5 minutes.", "load5", "", Kind.GAUGE),
    ("opscenter_system_load15", "Load average over 15 minutes.", "load15", "", Kind.GAUGE),
    ("opscenter_system_network_received_bytes_total", "Bytes received on the host's network interfaces (loopback excluded) since boot.", "network_received_bytes", "bytes", Kind.COUNTER),
    ("opscenter_system_network_sent_bytes_total", "Bytes sent on the host's network interfaces (loopback excluded) since boot.", "network_sent_bytes", "bytes", Kind.COUNTER),
)


def register_core_metrics() -> None:
    """Register monitoring's own metrics in the registry."""
    for name, help_text, key, unit, kind in SYSTEM_METRICS:
        register_metric(name, help_text, read=_host_figure(key), kind=kind, labels=("host",), unit=unit)
    register_metric(
        "opscenter_process_resident_memory_bytes",
        "Resident memory of each web, worker and beat process (a worker with its pool's children).",
        read=_process_figure("rss_bytes"), labels=("role", "host", "pid"), unit="bytes",
    )
    register_metric(
        "opscenter_process_cpu_percent",
        "CPU of each web, worker and beat process (a worker with its pool's children), percent of one core.",
        read=_process_figure("cpu_percent"), labels=("role", "host", "pid"), unit="percent",
    )
    register_metric(
        "opscenter_processes_online", "Web, worker and beat processes reporting in, by role.",
        read=read_processes_online, labels=("role",),
    )
    register_metric("opscenter_workers_online", "Celery workers reporting in.", read=read_workers_online)
    register_metric(
        "opscenter_celery_queue_length", "Tasks waiting in the Celery queue.", read=read_queue_length,
    )
    register_metric(
        "opscenter_agent_runs_total", "Agent runs finished, by agent and final status (since Redis started).",
        read=read_runs_total, kind=Kind.COUNTER, labels=("agent", "status"),
    )
    register_metric(
        "opscenter_agent_runs_active", "Agent runs queued or running now, by agent and status.",
        read=read_runs_active, labels=("agent", "status"),
    )
    register_metric(
        "opscenter_agent_run_duration_seconds", "Duration of finished agent runs (start to finish), by agent.",
        read=read_run_duration, kind=Kind.HISTOGRAM, labels=("agent",), unit="seconds", store=False,
    )
    register_metric(
        "opscenter_agent_runs_without_heartbeat",
        "Running agent runs whose heartbeat stopped (older than three heartbeat intervals), by agent.",
        read=read_runs_without_heartbeat, labels=("agent",),
    )
    register_metric(
        "opscenter_delivery_outcomes_total", "Deliveries ever sent and ever failed (both only grow).",
        read=read_delivery_outcomes, kind=Kind.COUNTER, labels=("outcome",),
    )
    register_metric(
        "opscenter_engine_cycle_finished",
        "1 when the content cycle for the next posts has finished (tomorrow's after noon, today's before).",
        read=read_cycle_finished,
    )
    register_metric(
        "opscenter_pending_approvals", "Content items waiting for a reviewer.", read=read_pending_approvals,
    )
    register_metric(
        "opscenter_pending_approval_oldest_age_seconds",
        "Age of the oldest content item waiting for a reviewer (0 when none waits).",
        read=read_oldest_pending_age, unit="seconds",
    )
    register_metric(
        "opscenter_deliveries", "Deliveries by status (every status, zeros included).",
        read=read_deliveries, labels=("status",),
    )
    register_metric(
        "opscenter_inbound_events_total",
        "Inbound webhook events by source and outcome (accepted, duplicate, rejected, refused signature) "
        "since Redis started.",
        read=read_inbound_events, kind=Kind.COUNTER, labels=("source", "outcome"),
    )
    register_metric(
        "opscenter_inbound_events_waiting", "Inbound events not processed yet, or failed and waiting for a retry.",
        read=read_inbound_waiting, labels=("status",),
    )
    register_metric(
        "opscenter_inbound_silence_seconds",
        "Seconds since each enabled inbound source last sent an event or a heartbeat.",
        read=read_inbound_silence, labels=("source",), unit="seconds",
    )
