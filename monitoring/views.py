"""The System resources console page and its chart data (names in the admin namespace)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET

from . import services

VIEW = "monitoring.view_metricseries"


def _require(request: HttpRequest) -> None:
    if not request.user.has_perm(VIEW):
        raise PermissionDenied


def _window(request: HttpRequest) -> str:
    window = request.GET.get("window", "1h")
    return window if window in services.WINDOWS else "1h"


@require_GET
def system(request: HttpRequest) -> TemplateResponse:
    """Hosts, processes and workers now, and charts of the last hour or day."""
    from django.contrib import admin

    _require(request)
    window = _window(request)
    snapshot = services.system_snapshot(request.user)
    workers = [p for p in snapshot["processes"] if p["role"] == "worker"]
    others = [p for p in snapshot["processes"] if p["role"] != "worker"]
    return TemplateResponse(request, "monitoring/system.html", {
        **admin.site.each_context(request),
        "title": "System resources",
        "window": window,
        "windows": [("1h", "Last hour"), ("1d", "Last day")],
        "snapshot": snapshot,
        "hosts": snapshot["hosts"],
        "workers": workers,
        "other_processes": others,
        "charts": [{"id": c[0], "title": c[1]} for c in services.CHARTS],
    })


@require_GET
def system_charts(request: HttpRequest) -> JsonResponse:
    """The chart series of the system page for ?window=1h|1d."""
    _require(request)
    return JsonResponse(services.chart_data(_window(request)))


def console_urls(site) -> list[URLPattern]:
    """Return the monitoring pages, each behind the admin site's sign-in."""
    wrap = site.admin_view
    return [
        path("monitoring/system/", wrap(system), name="monitoring_system"),
        path("monitoring/system/charts/", wrap(system_charts), name="monitoring_system_charts"),
    ]
