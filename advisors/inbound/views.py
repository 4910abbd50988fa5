"""The integration page: each inbound source's status, event rate, recent and failed events.

Plain server-rendered HTML; the page script re-fetches the sources fragment when the
`inbound` topic says something arrived, so the figures are always the server's own.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_POST

from opscenter.models import AuditSource
from opscenter.services import DomainError

from . import services
from .models import InboundEvent

VIEW = "inbound.view_inboundevent"
RETRY = "inbound.retry_inboundevent"


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _context(request: HttpRequest) -> dict:
    return {"sources": services.integration_overview(), "can_retry": request.user.has_perm(RETRY),
            "can_add_source": request.user.has_perm("inbound.add_inboundsource")}


@require_GET
def integration(request: HttpRequest) -> TemplateResponse:
    """Every source's status, rate chart, recent events with payloads, failed events with retry."""
    _require(request, VIEW)
    context = {**admin.site.each_context(request), "title": "Integration", **_context(request)}
    return TemplateResponse(request, "inbound/integration.html", context)


@require_GET
def integration_sources(request: HttpRequest) -> TemplateResponse:
    """The sources part of the page, re-fetched by the page script on live events."""
    _require(request, VIEW)
    return TemplateResponse(request, "inbound/_sources.html", _context(request))


@require_POST
def retry(request: HttpRequest, pk: int):
    """Queue a failed event for processing again."""
    _require(request, RETRY)
    event = get_object_or_404(InboundEvent, pk=pk)
    try:
        services.retry_event(event, by=request.user, source=AuditSource.UI, request=request)
        messages.success(request, f"Event {event.event_id} is queued for processing again.")
    except DomainError as exc:
        messages.error(request, str(exc))
    return redirect("admin:inbound_integration")


def console_urls(site) -> list[URLPattern]:
    wrap = site.admin_view
    return [
        path("integration/", wrap(integration), name="inbound_integration"),
        path("integration/sources/", wrap(integration_sources), name="inbound_integration_sources"),
        path("integration/events/<int:pk>/retry/", wrap(retry), name="inbound_event_retry"),
    ]
