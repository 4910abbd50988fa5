"""A shared redis-py client for the configured REDIS_URL (TCP or unix socket)."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)


def redis_client() -> redis.Redis:
    """Return the process's client for settings.REDIS_URL (safe across forks)."""
    return _client(settings.REDIS_URL)
