"""Self-reported processes and hosts: each web, worker and beat process writes its own figures.

A small daemon thread in every process writes, every `METRICS_PROCESS_REPORT_SECONDS`, its
pid, host, role, RSS and CPU (a worker adds its pool's children, its concurrency and its
active tasks) into one Redis hash, and its machine's CPU, memory, disk (the var dir's
filesystem), load and network counters into another. The sampler, /metrics and the
system page read the two hashes: this works when the processes run on several machines,
which asking psutil in the sampler's own process could not.

Reports carry their time; a report older than three periods means the process is gone
(it is shown as such for a while, then dropped).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil
from django.conf import settings

from opscenter.redis import redis_client

logger = logging.getLogger(__name__)

PROCESSES_KEY = "opscenter:monitoring:processes"  # field role|host|pid -> JSON report
HOSTS_KEY = "opscenter:monitoring:hosts"  # field host -> JSON figures
FORGET_AFTER_SECONDS = 3600  # reports older than this are deleted
ROLES = ("web", "worker", "beat")


def stale_after_seconds() -> float:
    """Return how old a report may be before its process counts as gone."""
    return max(15.0, settings.METRICS_PROCESS_REPORT_SECONDS * 3)


def host_name() -> str:
    return socket.gethostname()


# --- measuring ---------------------------------------------------------------------------------

_cpu_primed = False


def host_figures() -> dict:
    """Measure this machine: CPU %, memory, the var dir's disk, load average, network bytes."""
    global _cpu_primed
    # cpu_percent(None) compares with the previous call; the very first call has nothing to
    # compare with and returns 0, so a fresh process takes one short measured interval.
    cpu = psutil.cpu_percent(interval=None if _cpu_primed else 0.1)
    _cpu_primed = True
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(settings.VAR_DIR))
    try:
        load = os.getloadavg()
    except (OSError, AttributeError):  # not on every platform
        load = (0.0, 0.0, 0.0)
    # Loopback traffic (the database and Redis on this machine) would hide the real network.
    nics = [c for name, c in psutil.net_io_counters(pernic=True).items() if not name.startswith("lo")]
    return {
        "host": host_name(),
        "cpu_percent": cpu,
        "cpu_count": psutil.cpu_count() or 1,
        "memory_total_bytes": memory.total,
        "memory_used_bytes": memory.total - memory.available,
        "memory_used_percent": memory.percent,
        "disk_path": str(settings.VAR_DIR),
        "disk_total_bytes": disk.total,
        "disk_used_bytes": disk.used,
        "disk_free_bytes": disk.free,
        "disk_used_percent": disk.percent,
        "load1": load[0],
        "load5": load[1],
        "load15": load[2],
        "network_received_bytes": sum(c.bytes_recv for c in nics),
        "network_sent_bytes": sum(c.bytes_sent for c in nics),
        "reported_at": time.time(),
    }


class ProcessMeter:
    """Measures one process (and its pool's children) between calls: RSS and CPU %."""

    def __init__(self, pid: int | None = None, *, include_children: bool = False) -> None:
        self.process = psutil.Process(pid or os.getpid())
        self.include_children = include_children
        self._children: dict[int, psutil.Process] = {}
        self.process.cpu_percent(None)

    def measure(self) -> dict:
        rss = self.process.memory_info().rss
        cpu = self.process.cpu_percent(None)
        children = 0
        if self.include_children:
            seen = set()
            for child in self.process.children(recursive=True):
                seen.add(child.pid)
                known = self._children.get(child.pid)
                try:
                    if known is None:
                        # Keep the Process object: cpu_percent compares with its own last call.
                        self._children[child.pid] = known = child
                        known.cpu_percent(None)
                    else:
                        cpu += known.cpu_percent(None)
                    rss += known.memory_info().rss
                    children += 1
                except psutil.Error:  # the child ended while we looked
                    continue
            for pid in set(self._children) - seen:
                del self._children[pid]
        return {"rss_bytes": rss, "cpu_percent": round(cpu, 1), "children": children}


@dataclass
class ProcessInfo:
    """Static facts about a reporting process; `extra` adds live ones (a worker's active tasks)."""

    role: str
    name: str = ""
    concurrency: int | None = None
    extra: Callable[[], dict] | None = None


def process_key(role: str, host: str, pid: int) -> str:
    return f"{role}|{host}|{pid}"


def report(info: ProcessInfo, meter: ProcessMeter) -> dict:
    """Write this process's report and its host's figures to Redis; return the process report."""
    now = time.time()
    entry = {
        "role": info.role,
        "host": host_name(),
        "pid": os.getpid(),
        "name": info.name or f"{info.role}@{host_name()}",
        "concurrency": info.concurrency,
        "started_at": meter.process.create_time(),
        "reported_at": now,
        **meter.measure(),
    }
    if info.extra is not None:
        try:
            entry.update(info.extra())
        except Exception:
            logger.debug("process report extra failed", exc_info=True)
    figures = host_figures()
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.hset(PROCESSES_KEY, process_key(entry["role"], entry["host"], entry["pid"]), json.dumps(entry))
    pipe.hset(HOSTS_KEY, figures["host"], json.dumps(figures))
    pipe.execute()
    return entry


def forget(role: str, pid: int | None = None) -> None:
    """Remove this process's report (a clean shutdown is not a crash)."""
    try:
        redis_client().hdel(PROCESSES_KEY, process_key(role, host_name(), pid or os.getpid()))
    except Exception:
        logger.debug("process report not removed", exc_info=True)


# --- the reporter thread -------------------------------------------------------------------------

_reporter: threading.Thread | None = None
_stop = threading.Event()


def start_reporter(info: ProcessInfo, *, include_children: bool = False) -> threading.Thread:
    """Start the daemon thread that reports this process every METRICS_PROCESS_REPORT_SECONDS (once per process)."""
    global _reporter
    if _reporter is not None and _reporter.is_alive():
        return _reporter
    meter = ProcessMeter(include_children=include_children)
    interval = settings.METRICS_PROCESS_REPORT_SECONDS
    _stop.clear()

    def loop() -> None:
        while True:
            try:
                report(info, meter)
            except Exception:  # Redis away: try again next period, never take the process down
                logger.debug("process report failed", exc_info=True)
            if _stop.wait(interval):
                forget(info.role)
                return

    _reporter = threading.Thread(target=loop, name=f"opscenter-{info.role}-reporter", daemon=True)
    _reporter.start()
    return _reporter


def stop_reporter() -> None:
    """Stop the reporter thread and remove this process's report."""
    _stop.set()
    if _reporter is not None:
        _reporter.join(timeout=5)


# --- reading -----------------------------------------------------------------------------------------


def _read_hash(key: str) -> list[dict]:
    raw = redis_client().hgetall(key)
    now = time.time()
    entries, old = [], []
    for name, value in raw.items():
        try:
            entry = json.loads(value)
        except ValueError:
            old.append(name)
            continue
        age = now - float(entry.get("reported_at", 0))
        if age > FORGET_AFTER_SECONDS:
            old.append(name)
            continue
        entry["age_seconds"] = round(max(0.0, age), 1)
        entry["online"] = age <= stale_after_seconds()
        entries.append(entry)
    if old:
        redis_client().hdel(key, *old)
    return entries


def processes() -> list[dict]:
    """Return the reported processes (online ones first, then by role, host, pid)."""
    order = {role: i for i, role in enumerate(ROLES)}
    entries = _read_hash(PROCESSES_KEY)
    return sorted(entries, key=lambda e: (not e["online"], order.get(e["role"], 9), e["host"], e["pid"]))


def hosts() -> list[dict]:
    """Return the reported hosts' figures; the local machine is measured if no host reported."""
    entries = [entry for entry in _read_hash(HOSTS_KEY) if entry["online"]]
    if not entries:
        # No process reports (one-off commands, tests): this machine is still a fair answer.
        entry = host_figures()
        entry.update(age_seconds=0.0, online=True)
        try:
            redis_client().hset(HOSTS_KEY, entry["host"], json.dumps({k: v for k, v in entry.items()
                                                                       if k not in {"age_seconds", "online"}}))
        except Exception:
            logger.debug("host figures not saved", exc_info=True)
        entries = [entry]
    return sorted(entries, key=lambda e: e["host"])


# --- hooks for the web, worker and beat processes ---------------------------------------------------


# The programs that serve opscenter.asgi:application; anything else importing it (tests,
# scripts) is not a web process and must not report as one.
WEB_SERVERS = ("daphne", "uvicorn", "hypercorn", "gunicorn")


def start_web_reporter() -> None:
    """Report the web process when this is a web server (called from opscenter/asgi.py)."""
    program = " ".join(sys.argv[:1]).lower()
    if not any(server in program for server in WEB_SERVERS):
        return
    start_reporter(ProcessInfo(role="web", name=f"web@{host_name()}:{os.getpid()}"))


def start_worker_reporter(sender=None, **kwargs) -> None:
    """Report a Celery worker's main process and its pool (celery's worker_ready signal)."""
    from celery.worker import state

    hostname = getattr(sender, "hostname", "") or f"worker@{host_name()}"
    pool = getattr(getattr(sender, "controller", None), "pool", None) or getattr(sender, "pool", None)
    concurrency = getattr(pool, "limit", None) or getattr(getattr(sender, "controller", None), "concurrency", None)
    info = ProcessInfo(
        role="worker",
        name=hostname,
        concurrency=concurrency,
        # The main process tracks every request its pool runs.
        extra=lambda: {"active_tasks": len(state.active_requests)},
    )
    start_reporter(info, include_children=True)


def start_beat_reporter(sender=None, **kwargs) -> None:
    """Report the beat process (celery's beat_init signal)."""
    start_reporter(ProcessInfo(role="beat", name=f"beat@{host_name()}"))


def stop_worker_reporter(sender=None, **kwargs) -> None:
    stop_reporter()
