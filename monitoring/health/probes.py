"""How each kind of check is run: the probes, and running many at once.

`run_checks()` runs checks concurrently on one event loop: HTTP(S) through one shared
httpx.AsyncClient (a connection pool for the whole batch), TCP with asyncio streams, and
the blocking probes (database, Redis, Celery, disk, process) in a small thread pool. Each
check has its own timeout, and the whole batch an overall bound; nothing here touches the
check rows — the caller stores the outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from django.conf import settings
from django.utils import timezone

from .models import CheckKind, HealthCheck

USER_AGENT = "OpsCenter-health/1"


@dataclass
class Outcome:
    """What one run of one check found."""

    check_id: int
    at: datetime
    ok: bool
    latency_ms: float | None
    detail: str
    status_code: int | None = None


class ProbeFailed(Exception):
    """The target answered, but not as the check expects; the message says how."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


# --- JSON path ------------------------------------------------------------------------------


class JsonPathError(ValueError):
    pass


_TOKEN = re.compile(r"""\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[(?:"([^"]*)"|'([^']*)')\]""")


def parse_json_path(path: str) -> list[str | int]:
    """Parse a small JSONPath subset: `$.a.b`, `a[0].b`, `$["odd key"]`; return the steps."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    if text and text[0] not in ".[":
        text = "." + text
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise JsonPathError(f'Cannot read the path at “{text[position:]}”: use $.key, [0] or ["key"] steps.')
        name, index, quoted, single = match.groups()
        steps.append(int(index) if index is not None else (name if name is not None else (quoted or single or "")))
        position = match.end()
    if not steps:
        raise JsonPathError("Name at least one key or index, e.g. $.status.")
    return steps


_MISSING = object()


def follow_json_path(document: Any, steps: list[str | int]) -> Any:
    """Return the value at `steps` in `document`, or _MISSING."""
    value = document
    for step in steps:
        in_list = isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value)
        in_dict = isinstance(step, str) and isinstance(value, dict) and step in value
        if in_list or in_dict:
            value = value[step]
        else:
            return _MISSING
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# --- HTTP and TCP (on the event loop) ----------------------------------------------------------


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def evaluate_http(check: HealthCheck, status: int, body: bytes) -> str:
    """Judge an HTTP answer; return a detail on success, raise ProbeFailed otherwise."""
    if status != check.expected_status:
        raise ProbeFailed(f"HTTP {status}, expected {check.expected_status}", status)
    if check.keyword:
        text = body.decode("utf-8", errors="replace")
        if check.keyword not in text:
            raise ProbeFailed(f"HTTP {status}, but “{check.keyword}” is not in the body", status)
    if check.json_path:
        try:
            document = json.loads(body)
        except ValueError:
            raise ProbeFailed(f"HTTP {status}, but the body is not JSON", status) from None
        value = follow_json_path(document, parse_json_path(check.json_path))
        if value is _MISSING:
            raise ProbeFailed(f"HTTP {status}, but {check.json_path} is not in the JSON", status)
        if check.json_expected and _as_text(value) != check.json_expected:
            raise ProbeFailed(f"HTTP {status}, but {check.json_path} is {_as_text(value)[:80]!r}, "
                              f"expected {check.json_expected!r}", status)
    return f"HTTP {status}"


async def probe_http(check: HealthCheck, clients: _Clients) -> tuple[str, int | None]:
    client = clients.get(check.verify_tls)
    async with client.stream(
        check.method, check.url, headers=check.headers or None, follow_redirects=check.follow_redirects,
        timeout=check.timeout_seconds,
    ) as response:
        # Read the body (capped) even when nothing looks at it: a drained response hands its
        # connection back to the pool for the next check on the same host.
        body = b"" if check.method == "HEAD" else await _read_capped(response, settings.HEALTH_BODY_LIMIT_BYTES)
        return evaluate_http(check, response.status_code, body), response.status_code


async def probe_tcp(check: HealthCheck) -> tuple[str, int | None]:
    _reader, writer = await asyncio.open_connection(check.host, check.port)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return f"port {check.port} open", None


class _Clients:
    """The batch's HTTP clients, one per TLS-verification setting, made when first needed."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._clients: dict[bool, httpx.AsyncClient] = {}

    def get(self, verify: bool) -> httpx.AsyncClient:
        client = self._clients.get(verify)
        if client is None:
            # trust_env off: a proxy from the worker's environment must not stand between a
            # check and its target (a check of a loopback address through a proxy is no check).
            client = self._clients[verify] = httpx.AsyncClient(
                verify=verify, trust_env=False, headers={"User-Agent": USER_AGENT},
                limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            )
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()


# --- blocking probes (in threads) --------------------------------------------------------------


def probe_database(check: HealthCheck) -> tuple[str, int | None]:
    from django.db import connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return f"{connection.vendor}: SELECT 1 answered", None
    finally:
        # Pool threads are not requests: nothing else would close this thread's connection.
        connection.close()


def probe_redis(check: HealthCheck) -> tuple[str, int | None]:
    import redis

    url = check.url or settings.REDIS_URL
    client = redis.Redis.from_url(url, socket_timeout=check.timeout_seconds,
                                  socket_connect_timeout=check.timeout_seconds)
    try:
        client.ping()
        return "PONG", None
    finally:
        client.close()


def probe_workers(check: HealthCheck) -> tuple[str, int | None]:
    from opscenter.readiness import check_workers

    wanted = check.expected_workers
    # One worker: the first answer is enough. More: wait (most of) the timeout to count them.
    status = check_workers(wait_for_all=wanted > 1, timeout=max(0.2, check.timeout_seconds * 0.8))
    answering = len(status.members)
    if answering < wanted:
        raise ProbeFailed(f"{answering} of {wanted} worker{'s' if wanted > 1 else ''} answered"
                          + ("" if status.ok or answering else f" ({status.detail})"))
    return f"{answering} answering", None


def probe_beat(check: HealthCheck) -> tuple[str, int | None]:
    from opscenter.readiness import beat_age_seconds, beat_max_age_seconds

    age = beat_age_seconds()
    if age is None:
        raise ProbeFailed("beat has not ticked (no mark in Redis)")
    if age > beat_max_age_seconds():
        raise ProbeFailed(f"last tick {age:.0f} s ago")
    return f"last tick {age:.0f} s ago", None


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024
    return f"{n:.1f} TB"


def probe_disk(check: HealthCheck) -> tuple[str, int | None]:
    usage = shutil.disk_usage(check.path)
    used = 100.0 * usage.used / usage.total if usage.total else 100.0
    detail = f"{used:.1f}% used, {_size(usage.free)} free"
    if used >= (check.threshold_percent or 100):
        raise ProbeFailed(f"{detail} (threshold {check.threshold_percent}%)")
    return detail, None


def probe_process(check: HealthCheck) -> tuple[str, int | None]:
    import psutil

    if check.pid_file:
        try:
            with open(check.pid_file) as handle:
                pid = int(handle.read().strip())
        except FileNotFoundError:
            raise ProbeFailed(f"no PID file at {check.pid_file}") from None
        except ValueError:
            raise ProbeFailed(f"{check.pid_file} holds no process id") from None
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                raise ProbeFailed(f"process {pid} has exited (zombie)")
        except psutil.NoSuchProcess:
            raise ProbeFailed(f"process {pid} from {os.path.basename(check.pid_file)} is not running") from None
        return f"process {pid} running ({process.name()})", None
    name = check.process_name
    found = []
    for process in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        info = process.info
        if info["status"] == psutil.STATUS_ZOMBIE:
            continue
        argv0 = os.path.basename((info.get("cmdline") or [""])[0] or "")
        if info["name"] == name or argv0 == name:
            found.append(info["pid"])
    if not found:
        raise ProbeFailed(f"no process named {name} is running")
    return f"{len(found)} running (pid {', '.join(map(str, found[:5]))}{'…' if len(found) > 5 else ''})", None


BLOCKING: dict[str, Callable[[HealthCheck], tuple[str, int | None]]] = {
    CheckKind.DATABASE: probe_database,
    CheckKind.REDIS: probe_redis,
    CheckKind.WORKERS: probe_workers,
    CheckKind.BEAT: probe_beat,
    CheckKind.DISK: probe_disk,
    CheckKind.PROCESS: probe_process,
}

_executor: ThreadPoolExecutor | None = None
_executor_pid = 0
_executor_lock = threading.Lock()


def _threads() -> ThreadPoolExecutor:
    """Return this process's probe threads (a forked worker child makes its own)."""
    global _executor, _executor_pid
    with _executor_lock:
        if _executor is None or _executor_pid != os.getpid():
            _executor = ThreadPoolExecutor(max_workers=settings.HEALTH_THREADS, thread_name_prefix="health-probe")
            _executor_pid = os.getpid()
        return _executor


# --- running ---------------------------------------------------------------------------------


def _refused(exc: BaseException) -> bool:
    """Return whether a connection was refused, anywhere in the exception's chain."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
            return True
        if "refused" in str(exc).lower() or "connect call failed" in str(exc).lower():
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _describe(exc: BaseException, check: HealthCheck) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"timed out after {check.timeout_seconds:g} s"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host: {exc.strerror or exc}"
    if isinstance(exc, httpx.ConnectError | ConnectionError):
        return "cannot connect: connection refused" if _refused(exc) else f"cannot connect: {exc or type(exc).__name__}"
    if isinstance(exc, httpx.HTTPError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def run_one(check: HealthCheck, clients: _Clients, gate: asyncio.Semaphore) -> Outcome:
    """Run one check within its timeout; every failure becomes a down outcome, never an exception."""
    async with gate:
        at = timezone.now()
        started = time.perf_counter()
        status_code = None
        try:
            async with asyncio.timeout(check.timeout_seconds):
                if check.kind == CheckKind.HTTP:
                    detail, status_code = await probe_http(check, clients)
                elif check.kind == CheckKind.TCP:
                    detail, status_code = await probe_tcp(check)
                else:
                    # A hung probe thread keeps its thread; the check still ends at its timeout.
                    loop = asyncio.get_running_loop()
                    detail, status_code = await loop.run_in_executor(_threads(), BLOCKING[check.kind], check)
            ok = True
        except ProbeFailed as exc:
            ok, detail, status_code = False, str(exc), exc.status_code
        except Exception as exc:  # any other failure of the probe means the target is down
            ok, detail = False, _describe(exc, check)
        latency = (time.perf_counter() - started) * 1000
        return Outcome(check.pk, at, ok, round(latency, 2), detail[:500], status_code)


async def run_checks(checks: Iterable[HealthCheck], *, overall_timeout: float | None = None,
                     concurrency: int | None = None) -> list[Outcome]:
    """Run `checks` concurrently; return one outcome per check, in the same order."""
    checks = list(checks)
    if not checks:
        return []
    concurrency = concurrency or settings.HEALTH_CONCURRENCY
    overall = overall_timeout or settings.HEALTH_CYCLE_TIMEOUT_SECONDS
    clients = _Clients(concurrency)
    gate = asyncio.Semaphore(concurrency)
    tasks = [asyncio.create_task(run_one(check, clients, gate)) for check in checks]
    try:
        done, pending = await asyncio.wait(tasks, timeout=overall)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        outcomes = []
        for check, task in zip(checks, tasks, strict=True):
            if task in done and not task.cancelled() and task.exception() is None:
                outcomes.append(task.result())
            else:
                outcomes.append(Outcome(check.pk, timezone.now(), False, None,
                                        f"did not finish within the cycle's bound of {overall:g} s"))
        return outcomes
    finally:
        await clients.aclose()


def run_checks_sync(checks: Iterable[HealthCheck], **options: Any) -> list[Outcome]:
    """Run checks from synchronous code (a view, a Celery task): on a fresh event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_checks(checks, **options))
    # Called from a thread that already runs a loop: use another thread's loop.
    result: list[Outcome] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.extend(asyncio.run(run_checks(checks, **options)))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="health-run")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result
