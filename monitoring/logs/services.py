"""The log store's rules: storing entries, copying run logs, searching, pruning, live events."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from opscenter.live import publish

from .models import LEVEL_BY_NAME, Level, LogEntry, Source, level_name

logger = logging.getLogger(__name__)

TOPIC = "logs"
LIVE_MESSAGE_LIMIT = 2_000  # the live event carries the start of a message; the page shows it all
PRUNE_CHUNK = 5_000
RECENT_WINDOW = timedelta(minutes=5)

# Must match the index in migrations/0002 exactly, or PostgreSQL will not use it.
_SEARCH_CONFIG = "simple"  # no stemming or stop words: log text is identifiers, codes and names


def _search_vector():
    from django.contrib.postgres.search import SearchVector

    return SearchVector("message", KeyTextTransform("exception", "context"), config=_SEARCH_CONFIG)


# --- writing --------------------------------------------------------------------------------


def store_entries(entries: list[dict[str, Any]]) -> list[LogEntry]:
    """Insert a batch of handler entries with one INSERT and publish them on the `logs` topic.

    Run ids that name no run (any more) are dropped from the entry rather than failing the batch.
    """
    from agents.models import AgentRun

    run_ids = {e["run_id"] for e in entries if e.get("run_id")}
    agents = dict(AgentRun.objects.filter(pk__in=run_ids).values_list("pk", "agent__slug")) if run_ids else {}
    rows = [
        LogEntry(
            at=e["at"], level=e["level"], source=e["source"], logger=e["logger"], message=e["message"],
            context=e["context"], host=e["host"], pid=e["pid"],
            run_id=e["run_id"] if e.get("run_id") in agents else None,
            agent=agents.get(e.get("run_id"), ""),
        )
        for e in entries
    ]
    created = _bulk_create(rows)
    publish_entries(created)
    return created


def store_run_logs(sender: Any = None, *, entries: Iterable, **kwargs: Any) -> list[LogEntry]:
    """Copy agent run log lines (agents.RunLog) into the store, in the caller's transaction.

    Connected to agents.services.run_logs_written. A savepoint keeps a failed copy from
    undoing the run's own change: the run log is the record, this copy is its index.
    """
    from agents.models import AgentRun

    entries = list(entries)
    if not entries:
        return []
    agents = dict(AgentRun.objects.filter(pk__in={e.run_id for e in entries}).values_list("pk", "agent__slug"))
    host, pid = socket.gethostname()[:200], os.getpid()
    rows = [
        LogEntry(
            at=e.at, level=LEVEL_BY_NAME.get(str(e.level), Level.INFO), source=Source.AGENT, logger="agents.run",
            message=e.message, context={"run_log_id": e.pk, **({"fields": e.context} if e.context else {})},
            host=host, pid=pid, run_id=e.run_id, agent=agents.get(e.run_id, ""),
        )
        for e in entries
    ]
    try:
        with transaction.atomic():
            created = _bulk_create(rows)
    except DatabaseError:
        logger.warning("run log lines of run %s not copied to the log store", entries[0].run_id, exc_info=True)
        return []
    publish_entries(created)
    return created


def _bulk_create(rows: list[LogEntry]) -> list[LogEntry]:
    created = LogEntry.objects.bulk_create(rows)
    if created and created[0].pk is None:  # a backend that does not return ids
        created = list(LogEntry.objects.order_by("-id")[: len(rows)])[::-1]
    return created


def entry_event(entry: LogEntry) -> dict[str, Any]:
    """Return the live/API summary of one entry."""
    return {
        "id": entry.pk,
        "at": entry.at.isoformat(),
        "level": level_name(entry.level),
        "source": entry.source,
        "logger": entry.logger,
        "message": entry.message[:LIVE_MESSAGE_LIMIT],
        "agent": entry.agent,
        "run_id": entry.run_id,
        "has_exception": bool((entry.context or {}).get("exception")),
    }


def publish_entries(entries: list[LogEntry]) -> None:
    """Publish stored entries on the `logs` topic (after commit)."""
    if entries:
        publish(TOPIC, "entries", {"entries": [entry_event(e) for e in entries]})


# --- reading --------------------------------------------------------------------------------


def search(queryset: QuerySet[LogEntry], text: str) -> QuerySet[LogEntry]:
    """Filter by full text over message and exception.

    PostgreSQL: web-search syntax on the GIN index ("quoted phrase", or, -word).
    SQLite: every word must appear in the message or the exception (case-insensitive).
    """
    text = (text or "").strip()
    if not text:
        return queryset
    if connections[queryset.db].vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery

        query = SearchQuery(text, search_type="websearch", config=_SEARCH_CONFIG)
        return queryset.annotate(_search=_search_vector()).filter(_search=query)
    condition = Q()
    for word in text.replace('"', " ").split():
        if word.lower() == "or":
            continue
        if word.startswith("-") and len(word) > 1:
            condition &= ~Q(message__icontains=word[1:]) & ~Q(context__exception__icontains=word[1:])
        else:
            condition &= Q(message__icontains=word) | Q(context__exception__icontains=word)
    return queryset.filter(condition)


def recent_counts(now: datetime | None = None, window: timedelta = RECENT_WINDOW) -> dict[str, int]:
    """Return how many entries per level were stored in the last `window`."""
    since = (now or timezone.now()) - window
    counts = {name: 0 for name in LEVEL_BY_NAME}
    for row in LogEntry.objects.filter(at__gte=since).values("level").annotate(n=Count("id")).order_by():
        counts[level_name(row["level"])] += row["n"]
    return counts


def latest_id() -> int:
    """Return the id of the newest entry, 0 when there is none."""
    return LogEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0


def logs_snapshot(user: Any) -> dict[str, Any]:
    """Snapshot of the `logs` topic: where the store stands now (the page fetches rows itself)."""
    return {"latest_id": latest_id()}


# --- retention ------------------------------------------------------------------------------


def prune_entries(*, now: datetime | None = None, days: int | None = None, chunk: int = PRUNE_CHUNK) -> int:
    """Delete entries older than the retention, a chunk per statement; return how many went.

    Chunks keep each transaction short, so writers (the handler, run logs) never wait long.
    Safe to run twice or concurrently: a second pass finds nothing older than the cut-off.
    """
    days = settings.LOG_RETENTION_DAYS if days is None else days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(LogEntry.objects.filter(at__lt=cutoff).order_by("id").values_list("id", flat=True)[:chunk])
        if not ids:
            return deleted
        deleted += LogEntry.objects.filter(id__in=ids).delete()[0]
