"""Component checks for the readiness endpoint, the overview and the system heartbeat."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import connection

from .beat import BEAT_TICK_KEY
from .redis import redis_client

COMPONENTS = ("database", "redis", "worker", "beat")


@dataclass
class ComponentStatus:
    name: str
    ok: bool
    latency_ms: float | None
    detail: str
    members: list[str] = field(default_factory=list)  # e.g. the workers that answered

    def as_dict(self) -> dict:
        return asdict(self)


def _timed(name: str, probe) -> ComponentStatus:
    started = time.perf_counter()
    members: list[str] = []
    try:
        ok, detail, *rest = probe()
        members = rest[0] if rest else []
    except Exception as exc:  # any failure of the probe means the component is down
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
    latency = round((time.perf_counter() - started) * 1000, 1)
    return ComponentStatus(name=name, ok=ok, latency_ms=latency, detail=detail, members=members)


def check_database() -> ComponentStatus:
    """Run SELECT 1 on the default database."""

    def probe():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True, connection.vendor

    return _timed("database", probe)


def check_redis() -> ComponentStatus:
    """PING the Redis server that carries the broker and the channel layer."""

    def probe():
        redis_client().ping()
        return True, "PONG"

    return _timed("redis", probe)


def check_workers(*, wait_for_all: bool = False, timeout: float = 1.5) -> ComponentStatus:
    """Ask the Celery workers to answer a ping; at least one must.

    With wait_for_all the call waits the whole timeout to count every worker; otherwise
    it returns at the first answer.
    """
    from .celery import app

    def probe():
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            replies = app.control.ping(timeout=timeout, limit=None if wait_for_all else 1, connection=conn)
        names = sorted(name for reply in replies for name in reply)
        if not names:
            return False, "no worker answered", []
        return True, f"{len(names)} answering", names

    return _timed("worker", probe)


def check_task_roundtrip(timeout: float = 5.0) -> ComponentStatus:
    """Send the `ping` task and wait for a worker to run it (the deep readiness check).

    Unlike the broadcast ping, this fails when workers answer but cannot run tasks,
    e.g. every slot is stuck; it also waits behind a long queue, so it is opt-in.
    """
    from .tasks import PING_KEY, ping

    def probe():
        nonce = uuid.uuid4().hex
        ping.apply_async(args=[nonce], expires=timeout)
        key = PING_KEY.format(nonce=nonce)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if redis_client().get(key):
                return True, "a worker ran the ping task"
            time.sleep(0.05)
        return False, f"no worker ran the ping task within {timeout:.0f}s"

    return _timed("task_roundtrip", probe)


def beat_age_seconds() -> float | None:
    """Return seconds since beat last ticked, or None if it never did."""
    raw = redis_client().get(BEAT_TICK_KEY)
    return None if raw is None else max(0.0, time.time() - float(raw))


def beat_max_age_seconds() -> float:
    return max(30.0, settings.SYSTEM_HEARTBEAT_SECONDS * 3)


def check_beat() -> ComponentStatus:
    """Check that the scheduler ticked recently."""

    def probe():
        age = beat_age_seconds()
        if age is None:
            return False, "beat has not ticked yet"
        if age > beat_max_age_seconds():
            return False, f"last tick {age:.0f}s ago"
        return True, f"last tick {age:.0f}s ago"

    return _timed("beat", probe)


def check_all() -> list[ComponentStatus]:
    """Check every component; the broker-dependent checks are skipped if Redis is down."""
    database = check_database()
    redis_status = check_redis()
    if redis_status.ok:
        worker = check_workers()
        beat = check_beat()
    else:
        worker = ComponentStatus("worker", False, None, "unknown: Redis (the broker) is down")
        beat = ComponentStatus("beat", False, None, "unknown: Redis is down")
    return [database, redis_status, worker, beat]
