"""The alerts page, an alert's page, and people's actions on an alert.

Views hold no rules: they call alerts.services and map its refusals to a readable message
(409 for the page script) and its ValidationErrors to form errors (400). Every action is a
plain POST form, so the pages work without JavaScript; the page scripts send the same
forms with fetch and follow the `alerts` topic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_GET, require_POST

from opscenter.models import AuditSource
from opscenter.services import DomainError

from .. import services
from ..forms import AcknowledgeForm, CommentForm, ResolveForm, SilenceAlertForm, add_errors
from ..matchers import format_matchers
from ..models import Alert, EvaluatorState, Severity
from .common import (
    ACKNOWLEDGE,
    CHANGE_RULES,
    RESOLVE,
    SILENCE,
    VIEW,
    VIEW_CHANNELS,
    VIEW_RULES,
    VIEW_SILENCES,
    decorate,
    describe_rule,
    format_age,
    json_errors,
    optional_url,
    page,
    require,
    safe_next,
    wants_json,
)

logger = logging.getLogger(__name__)
STATUSES = ("firing", "pending", "resolved")
BLANK_ALERT = {
    "id": 0, "rule_id": None, "rule": "", "fingerprint": "", "labels": {}, "severity": "high", "status": "firing",
    "summary": "", "value": None, "pending_since": None, "fired_at": None, "resolved_at": None,
    "acknowledged_at": None, "acknowledged_by": None, "ack_comment": "", "escalation_level": 0, "flapping": False,
    "silenced": False, "silence_id": None, "notification_failed": False,
}


def evaluator_status() -> dict[str, Any]:
    """Return the evaluator's last cycle as the alerts page shows it (and whether it looks stuck)."""
    state = EvaluatorState.objects.filter(pk=1).first()
    interval = settings.ALERTS_EVALUATION_SECONDS
    if state is None or state.last_finished_at is None:
        return {"state": "never", "interval": interval}
    age = (timezone.now() - state.last_finished_at).total_seconds()
    return {
        # Three missed intervals (at least a minute): beat or the workers are not running it.
        "state": "stale" if age > max(3 * interval, 60) else "ok",
        "interval": interval,
        "finished_at": state.last_finished_at,
        "age_text": format_age(age),
        "duration_ms": state.last_duration_ms,
        "rules": state.rules_evaluated,
        "cycles": state.cycles,
        "overruns": state.overruns,
        "last_overrun_at": state.last_overrun_at,
        "skipped": state.skipped,
        "last_error": state.last_error,
        "overran": state.last_duration_ms > interval * 1000,
    }


def _links(request: HttpRequest) -> dict[str, str | None]:
    user = request.user
    return {
        "silences": reverse("admin:alerts_silences") if user.has_perm(VIEW_SILENCES) else None,
        "rules": reverse("admin:alerts_rule_changelist") if user.has_perm(VIEW_RULES) else None,
        "channels": reverse("admin:alerts_channel_changelist") if user.has_perm(VIEW_CHANNELS) else None,
        "slos": optional_url("admin:alerts_slos") if user.has_perm("alerts.view_slo") else None,
    }


def _permissions(request: HttpRequest) -> dict[str, bool]:
    user = request.user
    return {"can_ack": user.has_perm(ACKNOWLEDGE), "can_resolve": user.has_perm(RESOLVE),
            "can_silence": user.has_perm(SILENCE)}


def _filter_url(base: str, **params: str) -> str:
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{base}?{query}" if query else base


@require_GET
def alerts_page(request: HttpRequest) -> TemplateResponse:
    """Firing, pending and recently resolved alerts, worst first; live over the `alerts` topic."""
    require(request, VIEW)
    status = request.GET.get("status", "")
    status = status if status in STATUSES else ""
    severity = request.GET.get("severity", "")
    severity = severity if severity in Severity.values else ""
    snapshot = services.alerts_snapshot(request.user)
    now = timezone.now()
    shown = [decorate(a, now) for a in snapshot["alerts"] + snapshot["resolved"]
             if not severity or a["severity"] == severity]
    groups = [(name, [a for a in shown if a["status"] == name]) for name in STATUSES if not status or status == name]
    this_page = request.get_full_path()
    base = reverse("admin:alerts")
    counts = snapshot["counts"]
    tab_counts = {"": None, "firing": counts["firing"], "pending": counts["pending"],
                  "resolved": len(snapshot["resolved"])}
    status_tabs = [{"value": value, "label": label, "count": tab_counts[value], "active": value == status,
                    "url": _filter_url(base, status=value, severity=severity)}
                   for value, label in (("", "All"), ("firing", "Firing"), ("pending", "Pending"),
                                        ("resolved", "Resolved"))]
    severity_tabs = [{"value": value, "label": label, "active": value == severity,
                      "url": _filter_url(base, status=status, severity=value)}
                     for value, label in [("", "Any severity"), *Severity.choices]]
    return page(request, "alerts/alerts.html", {
        "title": "Alerts",
        "snapshot": snapshot,
        "groups": groups,
        "counts": snapshot["counts"],
        "resolved_count": len(snapshot["resolved"]),
        "status_filter": status,
        "severity_filter": severity,
        "status_tabs": status_tabs,
        "severity_tabs": severity_tabs,
        "evaluator": evaluator_status(),
        "links": _links(request),
        "blank": decorate(dict(BLANK_ALERT), now),
        "this_page": this_page,
        "ack_form": AcknowledgeForm(),
        "silence_form": SilenceAlertForm(),
        **_permissions(request),
    })


# --- one alert ------------------------------------------------------------------------------------


def would_notify(alert: Alert) -> list | None:
    """Return the channels a firing message about `alert` would go to (None: not known yet)."""
    try:
        from ..notify import routing_channels
    except ImportError:
        return None
    return list(routing_channels(alert, "firing"))


def _detail_context(request: HttpRequest, alert: Alert, **forms: Any) -> dict[str, Any]:
    payload = decorate(services.alert_payload(alert))
    user = request.user
    rule_url = None
    if alert.rule_id and user.has_perm(VIEW_RULES):
        rule_url = reverse("admin:alerts_rule_change", args=[alert.rule_id])
    notifications = list(alert.notifications.select_related("channel").prefetch_related("attempt_rows")
                         .order_by("-created_at", "-id")[:100])
    silence = alert.silenced_by
    return {
        "title": f"{alert.rule_name} · alert #{alert.pk}",
        "alert": alert,
        "a": payload,
        "events": list(alert.events.select_related("user").order_by("at", "id")),
        "notifications": notifications,
        "would_notify": would_notify(alert),
        "maintenance": services.maintenance_for(alert.labels) if alert.is_open else None,
        "silence": silence,
        # Made with "until it resolves" alone: its end is only a cap, not worth showing.
        "silence_until_resolved": bool(silence and silence.expire_on_resolve
                                       and silence.ends_at - silence.starts_at >= services.MAX_SILENCE),
        "rule": alert.rule,
        "rule_url": rule_url,
        "rule_condition": describe_rule(alert.rule) if alert.rule else "",
        "silence_matchers": format_matchers(alert.labels),
        "may_change_rule": user.has_perm(CHANGE_RULES),
        "links": _links(request),
        "ack_form": forms.get("ack_form") or AcknowledgeForm(),
        "comment_form": forms.get("comment_form") or CommentForm(),
        "resolve_form": forms.get("resolve_form") or ResolveForm(),
        "silence_form": forms.get("silence_form") or SilenceAlertForm(),
        "open_form": next((name for name, form in forms.items() if form is not None and form.errors), ""),
        "this_page": reverse("admin:alerts_alert", args=[alert.pk]),
        **_permissions(request),
    }


def _alert(pk: int) -> Alert:
    return get_object_or_404(
        Alert.objects.select_related("rule", "acknowledged_by", "resolved_by", "silenced_by__created_by"), pk=pk)


@require_GET
def alert_detail(request: HttpRequest, pk: int) -> TemplateResponse:
    """An alert: its labels, value, times, timeline, notification log and the actions on it."""
    require(request, VIEW)
    alert = _alert(pk)
    return page(request, "alerts/alert.html", _detail_context(request, alert))


def _answer(request: HttpRequest, alert: Alert, message: str, *, level: int = messages.SUCCESS,
            status: int = 200, code: str = "") -> HttpResponse:
    if wants_json(request):
        fresh = Alert.objects.select_related("acknowledged_by").get(pk=alert.pk)
        body = {"ok": status < 400, "message" if status < 400 else "error": message,
                "alert": services.alert_payload(fresh), "counts": services.alert_counts()}
        if code:
            body["code"] = code
        return JsonResponse(body, status=status)
    messages.add_message(request, level, message)
    return redirect(safe_next(request, reverse("admin:alerts_alert", args=[alert.pk])))


def _act(request: HttpRequest, pk: int, *, permission: str, form_class, form_key: str,
         perform: Callable[[Alert, Any], str]) -> HttpResponse:
    """Run one action: check the permission, read the form, call the service, answer for page or script."""
    require(request, permission)
    alert = _alert(pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            message = perform(alert, form)
        except ValidationError as exc:
            add_errors(form, exc)
        except DomainError as exc:
            return _answer(request, alert, str(exc), level=messages.ERROR, status=exc.status, code=exc.code)
        else:
            return _answer(request, alert, message)
    if wants_json(request):
        return json_errors(form)
    return page(request, "alerts/alert.html", _detail_context(request, alert, **{form_key: form}), status=400)


class _EmptyForm(forms.Form):
    """An action without fields (withdraw an acknowledgement)."""


def _who(request: HttpRequest) -> dict[str, Any]:
    return {"by": request.user, "source": AuditSource.UI, "request": request}


@require_POST
def acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(alert: Alert, form: AcknowledgeForm) -> str:
        services.acknowledge_alert(alert, comment=form.cleaned_data["comment"], **_who(request))
        return f"You acknowledged “{alert.rule_name}”."

    return _act(request, pk, permission=ACKNOWLEDGE, form_class=AcknowledgeForm, form_key="ack_form",
                perform=perform)


@require_POST
def unacknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(alert: Alert, form) -> str:
        services.unacknowledge_alert(alert, **_who(request))
        return f"The acknowledgement of “{alert.rule_name}” is withdrawn: escalation and repeats resume."

    return _act(request, pk, permission=ACKNOWLEDGE, form_class=_EmptyForm, form_key="ack_form", perform=perform)


@require_POST
def comment(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(alert: Alert, form: CommentForm) -> str:
        services.comment_on_alert(alert, comment=form.cleaned_data["comment"], **_who(request))
        return "Comment added."

    return _act(request, pk, permission=ACKNOWLEDGE, form_class=CommentForm, form_key="comment_form",
                perform=perform)


@require_POST
def resolve(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(alert: Alert, form: ResolveForm) -> str:
        services.resolve_alert(alert, note=form.cleaned_data["note"], **_who(request))
        return f"“{alert.rule_name}” is resolved. If its condition still holds, the next evaluation opens a new alert."

    return _act(request, pk, permission=RESOLVE, form_class=ResolveForm, form_key="resolve_form", perform=perform)


@require_POST
def silence(request: HttpRequest, pk: int) -> HttpResponse:
    def perform(alert: Alert, form: SilenceAlertForm) -> str:
        made = services.silence_alert(alert, **form.silence_args(), **_who(request))
        if made.expire_on_resolve and made.ends_at - made.starts_at >= services.MAX_SILENCE:
            return f"“{alert.rule_name}” is silenced until it resolves."
        end = date_format(timezone.localtime(made.ends_at), "j M H:i")
        tail = " or until it resolves, whichever comes first" if made.expire_on_resolve else ""
        return f"“{alert.rule_name}” is silenced until {end}{tail}."

    return _act(request, pk, permission=SILENCE, form_class=SilenceAlertForm, form_key="silence_form",
                perform=perform)

