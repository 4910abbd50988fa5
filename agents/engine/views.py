"""The daily operations page: today's cycle by stage, per advisor, its runs and past days."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_GET

from . import operations

VIEW = "advisors.view_content"


class DayForm(forms.Form):
    date = forms.DateField(label="Cycle date", required=False, widget=forms.DateInput(attrs={"type": "date"}))


def _day(request: HttpRequest) -> tuple[date, DayForm]:
    form = DayForm(request.GET or None)
    if form.is_bound and form.is_valid() and form.cleaned_data["date"]:
        return form.cleaned_data["date"], form
    return operations.current_cycle_date(), form


def _live_context(request: HttpRequest, day: date) -> dict:
    days = [day, *operations.past_days(day)]
    figures = operations.day_figures(days)
    return {
        "day": day,
        "stages": [(key, label, help_text, figures[day][key]) for key, label, help_text in operations.STAGES],
        "rows": operations.advisor_rows(day),
        "cycles": operations.cycles_of(day),
        "past": [(d, [(label, figures[d][key]) for key, label, _ in operations.STAGES]) for d in days[1:]],
        "stage_labels": [label for _, label, _ in operations.STAGES],
    }


@require_GET
def daily_operations(request: HttpRequest) -> TemplateResponse:
    """The page: stage counters, advisors, the cycle's runs and the previous days."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    day, form = _day(request)
    context = {
        **admin.site.each_context(request),
        **_live_context(request, day),
        "title": "Daily operations",
        "form": form,
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1),
        "can_trigger": request.user.has_perm("agents.trigger_agent"),
        "trigger_url": reverse("admin:agents_agent", args=["content-orchestrator"]),
        "state_url": reverse("admin:engine_operations_state"),
    }
    return TemplateResponse(request, "engine/operations.html", context)


@require_GET
def daily_operations_state(request: HttpRequest) -> JsonResponse:
    """The live part of the page, re-rendered when the content or agents topic reports a change."""
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    day, _ = _day(request)
    html = render_to_string("engine/_operations_live.html", _live_context(request, day), request=request)
    return JsonResponse({"date": day.isoformat(), "html": html})


def console_urls(site) -> list:
    return [
        path("operations/", site.admin_view(daily_operations), name="engine_operations"),
        path("operations/state/", site.admin_view(daily_operations_state), name="engine_operations_state"),
    ]
