"""Celery tasks of the opscenter app."""

from __future__ import annotations

import json

from celery import shared_task
from django.utils import timezone

from .live import publish
from .readiness import check_all, check_workers
from .redis import redis_client

HEARTBEAT_KEY = "opscenter:system:heartbeat"


PING_KEY = "opscenter:ping:{nonce}"


@shared_task(name="opscenter.tasks.ping", ignore_result=True)
def ping(nonce: str) -> None:
    """Leave 'pong' under the nonce: proves a worker takes tasks off the queue and runs them."""
    redis_client().set(PING_KEY.format(nonce=nonce), "pong", ex=60)


def _queue_length() -> int:
    # kombu's Redis transport keeps one list per priority step next to the plain one.
    client = redis_client()
    keys = ["celery"] + [f"celery\x06\x16{step}" for step in (3, 6, 9)]
    return sum(client.llen(key) for key in keys)


@shared_task(name="opscenter.tasks.publish_system_heartbeat", ignore_result=True)
def publish_system_heartbeat() -> None:
    """Publish the system heartbeat: server time, workers online, queue length, components."""
    components = {c.name: c.as_dict() for c in check_all()}
    # A second round that waits for every worker, to count them (the first returns at
    # the first answer, so its latency is the real round trip).
    names = check_workers(wait_for_all=True, timeout=1.0).members if components["redis"]["ok"] else []
    payload = {
        "server_time": timezone.now().isoformat(),
        "workers_online": len(names),
        "workers": names,
        "queue_length": _queue_length(),
        "components": components,
    }
    redis_client().set(HEARTBEAT_KEY, json.dumps(payload), ex=3600)
    publish("system", "heartbeat", payload)


def last_heartbeat() -> dict | None:
    """Return the last published heartbeat, if Redis has one."""
    raw = redis_client().get(HEARTBEAT_KEY)
    return json.loads(raw) if raw else None
