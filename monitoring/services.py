"""Monitoring services: the sampler, the system snapshot and the chart data of the system page."""

from __future__ import annotations

import logging
import time

from opscenter.live import publish

from . import processes, store
from .registry import Sample, all_metrics, get_metric, read_metric

logger = logging.getLogger(__name__)

TOPIC = "metrics"
WINDOWS = {"1h": 3600, "1d": 86400}
CHART_MAX_POINTS = 1500


def sample_registry(*, at: float | None = None, publish_live: bool = True) -> int:
    """Store the current value of every registry metric with store=True; return how many values were stored."""
    now = time.time() if at is None else at
    rows = []
    for metric in all_metrics():
        if not metric.store:
            continue
        for value in read_metric(metric):
            if isinstance(value, Sample):
                rows.append((metric.name, value.labels, value.value))
    stored = store.write_samples(rows, at=now)
    if publish_live:
        publish(TOPIC, "sample", system_snapshot())
    return stored


def system_snapshot(user=None) -> dict:
    """Return the hosts' and processes' current figures (the `metrics` topic's snapshot and events)."""
    try:
        hosts = processes.hosts()
        procs = processes.processes()
    except Exception as exc:  # Redis down: the page still renders, and says so
        logger.warning("system figures unavailable", exc_info=True)
        return {"t": time.time(), "hosts": [], "processes": [], "error": f"{type(exc).__name__}: {exc}"[:200]}
    return {"t": time.time(), "hosts": hosts, "processes": procs, "stale_after_seconds": processes.stale_after_seconds()}


# --- charts ----------------------------------------------------------------------------------------

# id, title, unit, [(metric name, label shown per series)], how: "avg" or "rate" (counters)
CHARTS = (
    ("cpu", "CPU", "percent", [("opscenter_system_cpu_percent", "{host}")], "avg"),
    ("memory", "Memory used", "percent", [("opscenter_system_memory_used_percent", "{host}")], "avg"),
    ("disk", "Disk used (var directory)", "percent", [("opscenter_system_disk_used_percent", "{host}")], "avg"),
    ("load", "Load average (1 min)", "", [("opscenter_system_load1", "{host}")], "avg"),
    (
        "network", "Network", "bytes/s",
        [
            ("opscenter_system_network_received_bytes_total", "{host} in"),
            ("opscenter_system_network_sent_bytes_total", "{host} out"),
        ],
        "rate",
    ),
    ("process_rss", "Process memory (RSS)", "bytes", [("opscenter_process_resident_memory_bytes", "{role} {host}:{pid}")], "avg"),
    ("process_cpu", "Process CPU", "percent", [("opscenter_process_cpu_percent", "{role} {host}:{pid}")], "avg"),
)


def _rate_points(points: list[store.Point]) -> list[list[float]]:
    out = []
    for before, after in zip(points, points[1:], strict=False):
        elapsed = after.t - before.t
        if elapsed <= 0 or after.last < before.last:  # a counter reset (reboot): no rate for that step
            continue
        out.append([after.t * 1000, round((after.last - before.last) / elapsed, 2)])
    return out


def chart_data(window: str, *, now: float | None = None) -> dict:
    """Return the system page's charts over the last hour ("1h") or day ("1d")."""
    seconds = WINDOWS[window]
    end = (time.time() if now is None else now) + 1
    start = end - seconds
    charts, resolution = [], None
    for chart_id, title, unit, sources, how in CHARTS:
        datasets = []
        for name, label in sources:
            data = store.read_series(name, None, start, end, max_points=CHART_MAX_POINTS)
            resolution = data.resolution
            for series in data.series:
                if not series.points:
                    continue
                if how == "rate":
                    points = _rate_points(series.points)
                else:
                    points = [[p.t * 1000, round(p.avg, 2)] for p in series.points]
                datasets.append({"label": label.format_map(_Default(series.labels)), "key": name + store.labels_key(series.labels),
                                 "points": points})
        charts.append({"id": chart_id, "title": title, "unit": unit, "how": how, "datasets": datasets})
    return {"window": window, "start": int(start), "end": int(end), "resolution": resolution, "charts": charts}


class _Default(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def describe_metrics() -> list[dict]:
    """Return every registry metric's name, help, kind, unit, labels and whether it is stored."""
    return [
        {"name": m.name, "help": m.help, "kind": str(m.kind), "unit": m.unit, "labels": list(m.labels), "stored": m.store}
        for m in all_metrics()
    ]


def metric_exists(name: str) -> bool:
    return get_metric(name) is not None
