"""The SLO console pages, mounted under /admin/ (names in the admin namespace):

- alerts/slos/          (admin:alerts_slos) every SLO: SLI against the objective, error budget
                        left, burn rates, status and a 30-day daily chart;
- alerts/slos/report/   (admin:alerts_slo_report) the monthly SLA report, ?month=YYYY-MM,
                        ?format=csv for the CSV export.

Views hold no rules: the figures come from alerts.slo. Reading needs alerts.view_slo
(every role has it).
"""

from __future__ import annotations

import csv
import math
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from . import slo as slos
from .models import SLO

VIEW = "alerts.view_slo"
CHART_DAYS = 30
STATUS_LABELS = {"met": "Met", "at_risk": "At risk", "breached": "Breached", "no_data": "No data",
                 "disabled": "Disabled"}


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> TemplateResponse:
    from django.contrib import admin

    return TemplateResponse(request, template, {**admin.site.each_context(request), **context}, status=status)


def _url(name: str, *args) -> str:
    """Return the admin URL if that page exists (the SLO admin is another part's), else ""."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


# --- formatting -------------------------------------------------------------------------------------


def percent(share: float | None) -> str:
    """Show a share (0..1) as a percentage, rounded down so 99.9996 % never reads as 100 %."""
    if share is None or not math.isfinite(share):
        return "—"
    value = math.floor(share * 100 * 1000 + 1e-6) / 1000
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return f"{text} %"


def signed_percent(share: float | None) -> str:
    """Show a budget share that may be negative (overspent)."""
    if share is None:
        return "—"
    if not math.isfinite(share):
        return "−∞ %"
    return f"{share * 100:.1f} %".replace("-", "−")


def burn_text(value: float | None) -> str:
    if value is None:
        return "—"
    if not math.isfinite(value):
        return "∞"
    if value == 0:
        return "0"
    return f"{value:.2f}×" if value < 10 else f"{value:.1f}×"


def duration(seconds: float | None) -> str:
    """Show seconds of uptime as people read them: 29 d 23 h, 4 h 12 min, 35 s."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


def amount(value: float | None, unit: str) -> str:
    """Show a count of events in its unit (seconds as a duration)."""
    if value is None:
        return "—"
    if unit == "seconds":
        return duration(value)
    return f"{value:,.0f}"


def events_text(good: float | None, total: float | None, unit: str) -> str:
    if not total:
        return f"No {unit} counted yet" if unit != "seconds" else "No time with a known state yet"
    if unit == "seconds":
        return f"Up {duration(good)} of {duration(total)} checked"
    return f"{good:,.0f} good of {total:,.0f} {unit}"


def params_text(figures: dict) -> str:
    """Describe what the indicator counts, for a card's subtitle."""
    return figures.get("subject") or ", ".join(f"{k}: {v}" for k, v in (figures.get("params") or {}).items())


def decorate(f: dict) -> dict:
    """Add the texts and bar widths the SLO card shows to an SLO's figures."""
    remaining = f["budget_remaining"]
    f["status_label"] = STATUS_LABELS.get(f["status"], f["status"])
    f["sli_text"] = percent(f["sli"])
    f["objective_text"] = f"{f['objective']:g} %"
    f["budget_text"] = signed_percent(remaining)
    f["budget_width"] = 0 if remaining is None or not math.isfinite(remaining) else max(0, min(100, remaining * 100))
    f["budget_state"] = ("none" if remaining is None else "out" if remaining < 0
                         else "low" if remaining < slos.AT_RISK_BUDGET else "ok")
    f["allowed_text"] = percent(f["error_budget"])
    f["unit_share"] = "of the time" if f["unit"] == "seconds" else f"of {f['unit']}"
    f["events_text"] = events_text(f["good"], f["total"], f["unit"])
    bad_allowed = f["error_budget"] * f["total"] if f["total"] else None
    f["bad_text"] = amount(f["bad"], f["unit"])
    f["bad_allowed_text"] = amount(bad_allowed, f["unit"])
    f["burns"] = [{"window": w, "text": burn_text(v),
                   "hot": v is not None and v > (slos.FAST_BURN if w in ("1h", "5m") else slos.SLOW_BURN)}
                  for w, v in f["burn_rates"].items()]
    f["fast_text"], f["slow_text"] = burn_text(f["fast_burn"]), burn_text(f["slow_burn"])
    f["fast_hot"] = (f["fast_burn"] or 0) > slos.FAST_BURN
    f["slow_hot"] = (f["slow_burn"] or 0) > slos.SLOW_BURN
    f["subject_text"] = params_text(f)
    f["chart"] = {
        "labels": [d["day"] for d in f["daily"]],
        "values": [None if d["sli"] is None else round(d["sli"] * 100, 4) for d in f["daily"]],
        "totals": [d["total"] for d in f["daily"]],
        "objective": f["objective"],
        "unit": f["unit"],
    }
    f["chart_id"] = f"slo-chart-{f['id']}"
    f["change_url"] = _url("admin:alerts_slo_change", f["id"])
    return f


# --- pages --------------------------------------------------------------------------------------------


@require_GET
def slo_list(request: HttpRequest) -> TemplateResponse:
    """Every SLO with its SLI against the objective, error budget left, burn rates and a daily chart."""
    _require(request, VIEW)
    now = timezone.now()
    cards = [decorate(slos.slo_status(item, now, daily_days=CHART_DAYS))
             for item in SLO.objects.order_by("-enabled", "name")]
    counts = {key: sum(1 for c in cards if c["status"] == key) for key in STATUS_LABELS}
    return _page(request, "alerts/slo/slos.html", {
        "title": "SLOs",
        "cards": cards,
        "counts": counts,
        "now": now,
        "fast_threshold": slos.FAST_BURN,
        "slow_threshold": slos.SLOW_BURN,
        "add_url": _url("admin:alerts_slo_add") if request.user.has_perm("alerts.add_slo") else "",
        "can_change": request.user.has_perm("alerts.change_slo"),
        "time_zone": slos.display_zone().key,
    })


def _report_rows(report: dict) -> list[dict]:
    rows = []
    for row in report["slos"]:
        unit = row["unit"]
        rows.append({
            **row,
            "good_text": amount(row["good"], unit),
            "total_text": amount(row["total"], unit),
            "achieved_text": percent(row["achieved"]),
            "objective_text": f"{row['objective']:g} %",
            "budget_used_text": "—" if row["budget_used"] is None else f"{row['budget_used'] * 100:.1f} %",
            "budget_over": row["budget_used"] is not None and row["budget_used"] > 1,
            "worst_text": percent(row["worst_day_sli"]),
            "unit_label": "time up / time checked" if unit == "seconds" else unit,
        })
    return rows


@require_GET
def slo_report(request: HttpRequest) -> HttpResponse:
    """The monthly SLA report of a calendar month (?month=YYYY-MM), or its CSV (?format=csv)."""
    _require(request, VIEW)
    now = timezone.now()
    try:
        month = slos.parse_month(request.GET.get("month"), now=now)
    except ValueError as exc:
        return _page(request, "alerts/slo/report.html", {
            "title": "Monthly SLA report", "error": str(exc), "report": None,
            "this_month": f"{slos.parse_month(None, now=now):%Y-%m}",
        }, status=400)
    report = slos.monthly_report(month, now=now)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="opscenter-sla-{report["month"]}.csv"'
        csv.writer(response).writerows(slos.report_csv_rows(report))
        return response
    return _page(request, "alerts/slo/report.html", {
        "title": "Monthly SLA report",
        "report": report,
        "rows": _report_rows(report),
        "this_month": f"{slos.parse_month(None, now=now):%Y-%m}",
        "now": now,
    })


def console_urls(site) -> list[URLPattern]:
    """Return the SLO pages, each behind the admin site's sign-in."""
    wrap = site.admin_view
    return [
        path("alerts/slos/", wrap(slo_list), name="alerts_slos"),
        path("alerts/slos/report/", wrap(slo_report), name="alerts_slo_report"),
    ]
