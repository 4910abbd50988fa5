"""Alerting's own metrics: alerts by state, the evaluator's timing, notifications."""

from __future__ import annotations

from django.db.models import Count

from monitoring.registry import Kind, Sample, register_metric


def read_alerts() -> list[Sample]:
    from .models import OPEN_STATUSES, Alert, Severity

    counts = {(status, severity): n for status, severity, n in
              Alert.objects.filter(status__in=OPEN_STATUSES).values_list("status", "severity")
              .annotate(n=Count("id")).order_by()}
    # Every combination, zeros included: a series that vanishes at zero confuses alerting on it.
    return [Sample({"state": status, "severity": severity}, float(counts.get((status, severity), 0)))
            for status in OPEN_STATUSES for severity in Severity.values]


def _evaluator_figure(field: str):
    def read() -> list[Sample]:
        from .models import EvaluatorState

        state = EvaluatorState.objects.filter(pk=1).values_list(field, flat=True).first()
        return [Sample({}, float(state or 0))]

    return read


def read_notifications() -> list[Sample]:
    from .models import Notification, NotificationStatus

    counts = dict(Notification.objects.values_list("status").annotate(n=Count("id")).order_by())
    return [Sample({"status": status}, float(counts.get(status, 0))) for status in NotificationStatus.values]


def register_alert_metrics() -> None:
    """Register alerting's metrics in the registry."""
    register_metric("opscenter_alerts", "Open alerts by state (pending, firing) and severity.",
                    read=read_alerts, labels=("state", "severity"))
    register_metric("opscenter_alert_evaluation_duration_seconds", "How long the last alert evaluation cycle took.",
                    read=lambda: [Sample({}, s.value / 1000.0) for s in _evaluator_figure("last_duration_ms")()],
                    unit="seconds")
    register_metric("opscenter_alert_evaluation_overruns_total",
                    "Alert evaluation cycles that took longer than their interval.",
                    read=_evaluator_figure("overruns"), kind=Kind.COUNTER)
    register_metric("opscenter_alert_evaluation_skipped_total",
                    "Evaluation ticks that found the previous cycle still running.",
                    read=_evaluator_figure("skipped"), kind=Kind.COUNTER)
    register_metric("opscenter_alert_notifications", "Alert notifications in the ledger, by status.",
                    read=read_notifications, labels=("status",))
