"""The daily operations page (today's cycle by stage, per advisor, its runs and past days) and
the analytics section (a day, week or month of figures against the one before, with CSV)."""

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

from . import analytics, operations

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


ANALYTICS = "engine.view_dailyrollup"


class PeriodForm(forms.Form):
    period = forms.ChoiceField(choices=[("day", "Day"), ("week", "Week"), ("month", "Month")], required=False)
    date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def period_and_date(self) -> tuple[str, date]:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        return data.get("period") or "week", data.get("date") or analytics.today()


@require_GET
def analytics_page(request: HttpRequest) -> TemplateResponse:
    """Figures of a day, week or month next to the previous one, with charts and top lists."""
    if not request.user.has_perm(ANALYTICS):
        raise PermissionDenied
    form = PeriodForm(request.GET or None)
    kind, anchor = form.period_and_date()
    summary = analytics.summary(kind, anchor)
    period = analytics.period_of(kind, anchor)
    context = {
        **admin.site.each_context(request),
        "title": "Analytics",
        "form": form,
        "kind": kind,
        "summary": summary,
        "f": summary["figures"],
        "p": summary["previous"],
        "tiles": _tiles(summary),
        "previous_anchor": period.previous().start,
        "next_anchor": period.next().start,
        "can_recompute": request.user.has_perm("agents.trigger_agent"),
    }
    return TemplateResponse(request, "engine/analytics.html", context)


def _tiles(summary: dict) -> list[dict]:
    f, p, changes = summary["figures"], summary["previous"], summary["changes"]
    specs = [
        ("advisors_served", "Advisors served", "count"), ("generated", "Content generated", "count"),
        ("approval_rate", "Approval rate", "rate"), ("delivery_rate", "Delivery rate", "rate"),
        ("read_rate", "Read rate", "rate"), ("click_rate", "Click rate", "rate"),
        ("clicks", "Button clicks", "count"), ("click_success_rate", "Click success rate", "rate"),
        ("click_response_ms_avg", "Click → response", "ms"), ("chat_messages", "Chat messages", "count"),
        ("chat_response_ms_avg", "Chat response (avg)", "ms"), ("ai_quality_avg", "AI response quality", "score"),
        ("conversation_completion_rate", "Conversations completed", "rate"),
    ]
    lower_is_better = {"click_response_ms_avg", "chat_response_ms_avg"}
    tiles = []
    for key, label, unit in specs:
        delta = changes.get(key)
        trend = None if delta is None or delta == 0 else ("up" if delta > 0 else "down")
        good = None if trend is None else ((trend == "down") == (key in lower_is_better))
        tiles.append({"key": key, "label": label, "value": _show(f[key], unit), "previous": _show(p[key], unit),
                      "change": None if delta is None else f"{delta:+.0%}", "trend": trend, "good": good})
    return tiles


def _show(value, unit: str) -> str:
    """Format a figure for a tile; "—" when there was nothing to measure."""
    if value is None:
        return "—"
    if unit == "rate":
        return f"{value:.1%}"
    if unit == "ms":
        return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:,.0f} ms"
    if unit == "score":
        return f"{value:.2f}"
    return f"{value:,}"


@require_GET
def analytics_csv(request: HttpRequest):
    """The period's daily figures as CSV."""
    import csv

    from django.http import HttpResponse

    if not request.user.has_perm(ANALYTICS):
        raise PermissionDenied
    kind, anchor = PeriodForm(request.GET or None).period_and_date()
    period = analytics.period_of(kind, anchor)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="opscenter-analytics-{period.start}-{period.end}.csv"'
    writer = csv.writer(response)
    writer.writerows(analytics.csv_rows(period))
    return response


def console_urls(site) -> list:
    return [
        path("analytics/", site.admin_view(analytics_page), name="engine_analytics"),
        path("analytics/export.csv", site.admin_view(analytics_csv), name="engine_analytics_csv"),
        path("operations/", site.admin_view(daily_operations), name="engine_operations"),
        path("operations/state/", site.admin_view(daily_operations_state), name="engine_operations_state"),
    ]
