"""The log viewer: filters, full-text search, keyset pages, expandable rows, live tail.

Read-only: nothing here changes state. The page script (static/logs/logs.js) follows the
`logs` topic and fetches the new rows that match the page's filters from this same view
(`?partial=1&after=<id>`), so the live rows obey exactly the filters (search included).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET

from .filters import LogFilter
from .models import LogEntry, Source

VIEW = "logs.view_logentry"
PAGE_SIZE = 50
LIVE_LIMIT = 200  # rows one live fetch returns; more means the client reloads the page


def _cursor(request: HttpRequest, name: str, errors: dict[str, list[str]]) -> int | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        errors[name] = ["Must be a positive whole number (an entry id)."]
        return None
    return int(raw)


def _prepare(entries: list[LogEntry]) -> list[LogEntry]:
    for entry in entries:
        rest = {k: v for k, v in (entry.context or {}).items() if k != "exception"}
        entry.context_json = json.dumps(rest, indent=2, sort_keys=True, default=str) if rest else ""
    return entries


def _query(request: HttpRequest, **changes: Any) -> str:
    params: QueryDict = request.GET.copy()
    for key in ("partial", "after", "before"):
        params.pop(key, None)
    for key, value in changes.items():
        if value is not None:
            params[key] = str(value)
    return params.urlencode()


@require_GET
def log_viewer(request: HttpRequest) -> HttpResponse:
    """The log store, newest first, filtered; `?partial=1` returns just the rows (live tail)."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    from django.contrib import admin

    from agents.models import Agent

    filterset = LogFilter(request.GET, queryset=LogEntry.objects.all())
    errors: dict[str, list[str]] = {}
    before = _cursor(request, "before", errors)
    after = _cursor(request, "after", errors)
    valid = filterset.is_valid() and not errors
    entries: list[LogEntry] = []
    more = False
    if valid:
        queryset = filterset.qs.order_by("-id")
        if after is not None:
            entries = list(queryset.filter(id__gt=after)[: LIVE_LIMIT + 1])
            more, entries = len(entries) > LIVE_LIMIT, entries[:LIVE_LIMIT]
        else:
            if before is not None:
                queryset = queryset.filter(id__lt=before)
            entries = list(queryset[: PAGE_SIZE + 1])
            more, entries = len(entries) > PAGE_SIZE, entries[:PAGE_SIZE]
    _prepare(entries)
    status = 200 if valid else 400
    if request.GET.get("partial"):
        response = HttpResponse(render_to_string("logs/_entries.html", {"entries": entries}, request), status=status)
        response["X-Logs-More"] = "1" if more else "0"
        return response
    context = {
        **admin.site.each_context(request),
        "title": "Logs",
        "filter": filterset,
        "form": filterset.form,
        "cursor_errors": errors,
        "entries": entries,
        "agents": list(Agent.objects.order_by("name").values_list("slug", "name")),
        "sources": Source.choices,
        "first_page": before is None,
        "older_query": _query(request, before=entries[-1].pk) if more and entries else "",
        "newest_query": _query(request),
        "live": valid and before is None,
    }
    return TemplateResponse(request, "logs/logs.html", context, status=status)
