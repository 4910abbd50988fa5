"""The silences page: active, upcoming and ended silences, a new one, ending one; maintenance windows."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from opscenter.models import AuditSource
from opscenter.services import DomainError

from .. import services
from ..forms import SilenceForm, add_errors
from ..matchers import MatcherError, matches_all, parse_matchers
from ..models import OPEN_STATUSES, Alert, MaintenanceWindow, Silence
from .common import (
    ADD_WINDOWS,
    CHANGE_WINDOWS,
    EXPIRE,
    SILENCE,
    VIEW,
    VIEW_SILENCES,
    VIEW_WINDOWS,
    page,
    require,
    safe_next,
)

ENDED_SHOWN = 50
MATCHES_LISTED = 10
WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _open_alerts() -> list[Alert]:
    return list(Alert.objects.filter(status__in=OPEN_STATUSES).only("id", "rule_name", "labels", "status", "severity"))


def _with_matches(silences: list[Silence], open_alerts: list[Alert]) -> list[Silence]:
    for s in silences:
        try:
            s.matched = [a for a in open_alerts if matches_all(s.matchers, a.labels)]
        except MatcherError:
            s.matched = []
    return silences


def _windows(request: HttpRequest) -> list[MaintenanceWindow] | None:
    if not request.user.has_perm(VIEW_WINDOWS):
        return None
    now = timezone.now()
    windows = list(MaintenanceWindow.objects.all())
    for w in windows:
        w.open_now = w.enabled and services.window_is_open(w.days, w.start_time, w.end_time, w.timezone, now)
        w.days_text = ", ".join(WEEKDAY_NAMES[d] for d in sorted(w.days) if 0 <= d < 7) or "every day"
    return windows


def _context(request: HttpRequest, form: SilenceForm | None = None) -> dict[str, Any]:
    now = timezone.now()
    related = ("created_by", "ended_by", "alert")
    not_ended = Q(ended_at__isnull=True) | Q(ended_at__gt=now)
    active = list(Silence.objects.filter(not_ended, starts_at__lte=now, ends_at__gt=now).select_related(*related)
                  .order_by("ends_at", "id"))
    upcoming = list(Silence.objects.filter(not_ended, starts_at__gt=now).select_related(*related)
                    .order_by("starts_at", "id"))
    ended = list(Silence.objects.filter(Q(ends_at__lte=now) | Q(ended_at__lte=now)).select_related(*related)
                 .order_by("-ends_at", "-id")[:ENDED_SHOWN])
    open_alerts = _open_alerts()
    if form is None:
        form = SilenceForm(initial={"matchers": request.GET.get("matchers", "")[:1000]})
    user = request.user
    return {
        "title": "Silences",
        "active": _with_matches(active, open_alerts),
        "upcoming": _with_matches(upcoming, open_alerts),
        "ended": ended,
        "windows": _windows(request),
        "form": form,
        "can_create": user.has_perm(SILENCE),
        "can_expire": user.has_perm(EXPIRE),
        "can_change_windows": user.has_perm(CHANGE_WINDOWS),
        "can_add_windows": user.has_perm(ADD_WINDOWS),
        "time_zone": timezone.get_current_timezone_name(),
        "this_page": reverse("admin:alerts_silences"),
    }


@require_GET
def silences_page(request: HttpRequest) -> TemplateResponse:
    """Every silence by state, the form for a new one, and the maintenance windows."""
    require(request, VIEW)
    require(request, VIEW_SILENCES)
    return page(request, "alerts/silences.html", _context(request))


@require_POST
def silence_create(request: HttpRequest) -> HttpResponse:
    """Create a silence by matchers (services.create_silence checks the matchers, the times and the comment)."""
    require(request, SILENCE)
    form = SilenceForm(request.POST)
    if form.is_valid():
        try:
            made = services.create_silence(**form.silence_args(), by=request.user, source=AuditSource.UI,
                                           request=request)
        except ValidationError as exc:
            add_errors(form, exc)
        else:
            matched = len(_with_matches([made], _open_alerts())[0].matched)
            messages.success(request, f"Silence created: it covers {matched} open alert{'s' if matched != 1 else ''}"
                                      " now, and any that match later while it lasts.")
            return redirect(reverse("admin:alerts_silences") + f"#silence-{made.pk}")
    return page(request, "alerts/silences.html", _context(request, form), status=400)


@require_POST
def silence_expire(request: HttpRequest, pk: int) -> HttpResponse:
    """End a silence now: the alerts it covered notify again."""
    require(request, EXPIRE)
    found = get_object_or_404(Silence, pk=pk)
    try:
        services.expire_silence(found, by=request.user, source=AuditSource.UI, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"The silence of {found.matchers} has ended.")
    return redirect(safe_next(request, reverse("admin:alerts_silences")))


@require_GET
def silence_matches(request: HttpRequest) -> JsonResponse:
    """Count the open alerts some matchers would silence (the form's live hint)."""
    require(request, VIEW)
    text = request.GET.get("matchers", "")[:1000]
    try:
        parsed = parse_matchers(text)
    except MatcherError as exc:
        return JsonResponse({"ok": False, "error": str(exc)}, status=400)
    if not parsed:
        return JsonResponse({"ok": True, "count": 0, "empty": True, "alerts": []})
    matched = [a for a in _open_alerts() if matches_all(parsed, a.labels)]
    return JsonResponse({
        "ok": True,
        "count": len(matched),
        "alerts": [{"id": a.pk, "rule": a.rule_name, "labels": a.labels_text(), "status": a.status,
                    "url": reverse("admin:alerts_alert", args=[a.pk])} for a in matched[:MATCHES_LISTED]],
    })
