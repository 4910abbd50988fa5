"""The beat scheduler: django-celery-beat's, plus a liveness mark on every tick."""

from __future__ import annotations

import logging
import time

from django_celery_beat.schedulers import DatabaseScheduler

from .redis import redis_client

logger = logging.getLogger(__name__)

BEAT_TICK_KEY = "opscenter:beat:last_tick"
_MARK_EVERY_SECONDS = 2.0


class Scheduler(DatabaseScheduler):
    """Records in Redis when beat last ticked, so readiness can tell a stalled beat."""

    _last_mark = 0.0

    def tick(self, *args, **kwargs):
        now = time.time()
        if now - self._last_mark >= _MARK_EVERY_SECONDS:
            try:
                redis_client().set(BEAT_TICK_KEY, now, ex=3600)
                self._last_mark = now
            except Exception:
                logger.warning("beat could not record its tick in Redis", exc_info=True)
        return super().tick(*args, **kwargs)
