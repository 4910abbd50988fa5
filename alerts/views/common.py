"""What the alerting pages share: permission checks, the page shell, JSON answers, formatting."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from ..models import SEVERITY_RANK

VIEW = "alerts.view_alert"
ACKNOWLEDGE = "alerts.acknowledge_alert"
RESOLVE = "alerts.resolve_alert"
SILENCE = "alerts.add_silence"
EXPIRE = "alerts.change_silence"
VIEW_SILENCES = "alerts.view_silence"
VIEW_RULES = "alerts.view_rule"
CHANGE_RULES = "alerts.change_rule"
VIEW_CHANNELS = "alerts.view_channel"
VIEW_WINDOWS = "alerts.view_maintenancewindow"
CHANGE_WINDOWS = "alerts.change_maintenancewindow"
ADD_WINDOWS = "alerts.add_maintenancewindow"

# Labels every alert carries that the card already shows (its title and colour).
IMPLIED_LABELS = {"alertname", "severity"}


def require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> TemplateResponse:
    from django.contrib import admin

    return TemplateResponse(request, template, {**admin.site.each_context(request), **context}, status=status)


def wants_json(request: HttpRequest) -> bool:
    """Return whether the caller is the page script (fetch or htmx) rather than a plain form post."""
    return bool(getattr(request, "htmx", False)) or "application/json" in request.headers.get("Accept", "")


def json_errors(form, status: int = 400) -> JsonResponse:
    errors = {name or "__all__": [str(e) for e in errs] for name, errs in form.errors.items()}
    first = next((m for errs in errors.values() for m in errs), "Check the form.")
    return JsonResponse({"ok": False, "error": first, "errors": errors}, status=status)


def safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def optional_url(name: str, *args) -> str | None:
    """Reverse `name`, or None while the page behind it is not built (the SLO pages)."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def format_value(value: float | None) -> str:
    """Print a measured value as the page script does: up to three decimals, no trailing zeros."""
    if value is None:
        return "—"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def format_age(seconds: float) -> str:
    """Print a span the way the page script does: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _parse(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def since_of(alert: dict) -> str | None:
    """Return when the alert's current state began (what its age counts from)."""
    if alert["status"] == "resolved":
        return alert["resolved_at"]
    if alert["status"] == "firing":
        return alert["fired_at"] or alert["pending_since"]
    return alert["pending_since"]


def decorate(alert: dict, now: datetime | None = None) -> dict:
    """Add what the first paint needs to an alert payload (the page script computes the same)."""
    now = now or timezone.now()
    since = since_of(alert)
    alert["since"] = since
    alert["since_text"] = format_age((now - _parse(since)).total_seconds()) if since else "—"
    alert["value_text"] = format_value(alert["value"])
    alert["label_pairs"] = sorted((k, v) for k, v in (alert["labels"] or {}).items() if k not in IMPLIED_LABELS)
    alert["acknowledged_dt"] = _parse(alert["acknowledged_at"])
    alert["resolved_dt"] = _parse(alert["resolved_at"])
    alert["fired_dt"] = _parse(alert["fired_at"])
    alert["pending_dt"] = _parse(alert["pending_since"])
    alert["is_open"] = alert["status"] in ("pending", "firing")
    alert["rank"] = SEVERITY_RANK.get(alert["severity"], 0)
    return alert


def _span(seconds: int) -> str:
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def describe_rule(rule) -> str:
    """Write a rule's condition in one line: avg(metric{matchers}[5m]) > 10 for 1m."""
    selector = f"{rule.metric}{{{rule.matchers}}}" if rule.matchers else rule.metric
    aggregation = f"p{rule.percentile:g}" if rule.aggregation == "percentile" and rule.percentile is not None \
        else rule.aggregation
    text = f"{aggregation}({selector}[{_span(rule.window_seconds)}])"
    if rule.denominator_metric:
        denominator = (f"{rule.denominator_metric}{{{rule.denominator_matchers}}}" if rule.denominator_matchers
                       else rule.denominator_metric)
        text += f" ÷ {aggregation}({denominator}[{_span(rule.window_seconds)}])"
    text += f" {rule.get_comparator_display()} {rule.threshold:g}"
    if rule.for_seconds:
        text += f" for {_span(rule.for_seconds)}"
    if rule.keep_firing_for_seconds:
        text += f", keep firing {_span(rule.keep_firing_for_seconds)}"
    return text
