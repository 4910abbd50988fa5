"""The health console pages, mounted under /admin/ (names in the admin namespace).

Views hold no rules: they call monitoring.health.services. "Run now" is a plain POST form,
so the pages work without JavaScript; the page scripts follow the `health` topic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_POST

from opscenter.models import AuditSource
from opscenter.services import DomainError

from . import services
from .models import CheckState, HealthCheck

VIEW = "health.view_healthcheck"
RUN = "health.run_healthcheck"
CHANGE = "health.change_healthcheck"
ADD = "health.add_healthcheck"
RESULTS_PER_PAGE = 50
FLIPS_SHOWN = 50


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> TemplateResponse:
    from django.contrib import admin

    return TemplateResponse(request, template, {**admin.site.each_context(request), **context}, status=status)


def format_uptime(value: float | None) -> str:
    """Show an uptime share as people read it: 100%, 99.95%, 87.5%; — without data."""
    if value is None:
        return "—"
    if value >= 1:
        return "100%"
    return f"{min(value * 100, 99.99):.2f}%".replace(".00%", "%")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _decorate(summary: dict) -> dict:
    uptime = summary.get("uptime", {})
    # Template lookups cannot start with a digit ("24h"): named by span instead.
    summary["uptime_text"] = {name: format_uptime(uptime.get(key)) for name, key in
                              (("day", "24h"), ("week", "7d"), ("month", "30d"))}
    summary["url"] = reverse("admin:health_check", args=[summary["id"]])
    # Datetimes for the first paint (the page script then shows "3 min ago").
    summary["since_dt"] = datetime.fromisoformat(summary["state_since"])
    summary["last_dt"] = datetime.fromisoformat(summary["last_checked_at"]) if summary["last_checked_at"] else None
    return summary


@require_GET
def overview(request: HttpRequest) -> TemplateResponse:
    """Every check: overall status, state and since when, last check, latency, uptime, recent history."""
    _require(request, VIEW)
    snapshot = services.health_snapshot(request.user)
    for summary in snapshot["checks"]:
        _decorate(summary)
    return _page(request, "health/overview.html", {
        "title": "Health",
        "snapshot": snapshot,
        "can_add": request.user.has_perm(ADD),
        "can_run": request.user.has_perm(RUN),
    })


@require_GET
def check_detail(request: HttpRequest, pk: int) -> TemplateResponse:
    """One check: its state, uptime, latency chart, flips and results (keyset pages, newest first)."""
    _require(request, VIEW)
    check = get_object_or_404(HealthCheck, pk=pk)
    summary = _decorate(services.health_snapshot(request.user, check_id=check.pk)["checks"][0])
    results = check.results.order_by("-at", "-id")
    before = request.GET.get("before", "")
    if before.isdigit():
        results = results.filter(pk__lt=int(before))
    page = list(results[: RESULTS_PER_PAGE + 1])
    older = page[RESULTS_PER_PAGE - 1].pk if len(page) > RESULTS_PER_PAGE else None
    flips = list(check.flips.order_by("-at", "-id")[:FLIPS_SHOWN])
    for flip in flips:
        flip.duration_text = format_duration(flip.previous_duration_seconds)
    return _page(request, "health/check.html", {
        "title": check.name,
        "check": check,
        "summary": summary,
        "series": services.latency_series(check),
        "results": page[:RESULTS_PER_PAGE],
        "first_page": not before,
        "older": older,
        "flips": flips,
        "can_run": request.user.has_perm(RUN) and check.enabled,
        "may_run": request.user.has_perm(RUN),
        "can_change": request.user.has_perm(CHANGE),
        "states": CheckState,
    })


@require_POST
def run_now(request: HttpRequest, pk: int) -> HttpResponse:
    """Run the check at once (Operators and Admins); the result shows on the page."""
    _require(request, RUN)
    check = get_object_or_404(HealthCheck, pk=pk)
    try:
        result = services.run_check_now(check, by=request.user, source=AuditSource.UI, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        latency = f" in {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
        if result.ok:
            messages.success(request, f"{check.name} is up{latency}: {result.detail}")
        else:
            messages.warning(request, f"{check.name} is down{latency}: {result.detail}")
    return redirect("admin:health_check", pk=check.pk)


def console_urls(site) -> list[URLPattern]:
    """Return the health pages, each behind the admin site's sign-in."""
    wrap = site.admin_view
    return [
        path("health/", wrap(overview), name="health"),
        path("health/checks/<int:pk>/", wrap(check_detail), name="health_check"),
        path("health/checks/<int:pk>/run/", wrap(run_now), name="health_check_run"),
    ]
