"""Business rules of alerting that people and every other part share.

People's actions (acknowledge, comment, resolve by hand, silence, end a silence) live here,
as do the helpers the evaluator (alerts.evaluation) and the notifier (alerts.notify) use
to write an alert's timeline, ask for a notification, and decide whether an alert is
silenced. Every change is audited by its caller's actor and published on the `alerts`
topic after commit.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.http import HttpRequest
from django.utils import timezone

from opscenter.audit import record_audit
from opscenter.live import publish
from opscenter.models import AuditSource
from opscenter.services import DomainError

from .matchers import MatcherError, format_matchers, matches_all, parse_matchers
from .models import (
    OPEN_STATUSES,
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertStatus,
    MaintenanceWindow,
    NotifyKind,
    Silence,
)

TOPIC = "alerts"
MAX_SILENCE = timedelta(days=90)


class AlertConflict(DomainError):
    """The alert is not in a state that allows the action (already acknowledged, resolved …)."""


# --- reading ---------------------------------------------------------------------------------


def alert_payload(alert: Alert) -> dict[str, Any]:
    """Return what the alerts page and the API show of an alert."""
    return {
        "id": alert.pk,
        "rule_id": alert.rule_id,
        "rule": alert.rule_name,
        "fingerprint": alert.fingerprint,
        "labels": alert.labels,
        "severity": alert.severity,
        "status": alert.status,
        "summary": alert.summary,
        "value": alert.value,
        "pending_since": _iso(alert.pending_since),
        "fired_at": _iso(alert.fired_at),
        "resolved_at": _iso(alert.resolved_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by.get_username() if alert.acknowledged_by_id else None,
        "ack_comment": alert.ack_comment,
        "escalation_level": alert.escalation_level,
        "flapping": alert.flapping,
        "silenced": alert.silenced_by_id is not None,
        "silence_id": alert.silenced_by_id,
        "notification_failed": alert.notification_failed,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def alert_counts() -> dict[str, int]:
    """Return open alerts by status, and firing ones not acknowledged (the sidebar badge)."""
    row = Alert.objects.filter(status__in=OPEN_STATUSES).aggregate(
        firing=Count("id", filter=Q(status=AlertStatus.FIRING)),
        pending=Count("id", filter=Q(status=AlertStatus.PENDING)),
        unacknowledged=Count("id", filter=Q(status=AlertStatus.FIRING, acknowledged_at__isnull=True)),
    )
    return {key: int(value or 0) for key, value in row.items()}


def alerts_snapshot(user=None, *, recent_resolved: int = 50) -> dict[str, Any]:
    """Return the open alerts (worst first) and the most recently resolved ones: the page's snapshot."""
    related = ("acknowledged_by",)
    open_alerts = sorted(
        Alert.objects.filter(status__in=OPEN_STATUSES).select_related(*related),
        key=lambda a: (a.status != AlertStatus.FIRING, -SEVERITY_RANK.get(a.severity, 0), -a.pending_since.timestamp()),
    )
    resolved = Alert.objects.filter(status=AlertStatus.RESOLVED).select_related(*related).order_by("-resolved_at")
    return {
        "counts": alert_counts(),
        "alerts": [alert_payload(a) for a in open_alerts],
        "resolved": [alert_payload(a) for a in resolved[:recent_resolved]],
    }


def publish_alert(alert: Alert, *, counts: dict[str, int] | None = None) -> None:
    """Announce an alert's new state (after commit) with the counts for the badge.

    The evaluator passes the counts it read once for a whole cycle of changes.
    """
    publish(TOPIC, "alert.changed", {"alert": alert_payload(alert), "counts": alert_counts() if counts is None else counts})


# --- timeline and notification requests ---------------------------------------------------------


def record_event(alert: Alert, kind: str, message: str = "", *, user=None, at: datetime | None = None,
                 **data: Any) -> AlertEvent:
    """Add a line to an alert's timeline."""
    return AlertEvent.objects.create(alert=alert, kind=kind, message=message, user=user,
                                     at=at or timezone.now(), data=data)


def request_notification(alert: Alert, kind: str, *, due_at: datetime | None = None) -> None:
    """Ask the dispatcher to notify about `alert` (firing, resolved, repeat, escalation, acknowledged).

    Bumps notify_seq; the dispatcher covers every alert whose notify_seq is ahead of
    notified_seq once notify_due_at has passed (group wait), so asking twice before it runs
    sends one message about the latest state.
    """
    due = due_at or timezone.now()
    Alert.objects.filter(pk=alert.pk).update(notify_seq=F("notify_seq") + 1, notify_kind=kind, notify_due_at=due)
    alert.refresh_from_db(fields=["notify_seq", "notify_kind", "notify_due_at"])
    from .tasks import dispatch_notifications

    # A request due later is picked up by beat's dispatch sweep; one due now goes at once.
    if due <= timezone.now():
        dispatch_notifications.delay_on_commit()


# --- silences and maintenance windows ------------------------------------------------------------


def active_silences(at: datetime | None = None) -> list[Silence]:
    at = at or timezone.now()
    return list(Silence.objects.filter(starts_at__lte=at, ends_at__gt=at).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=at)))


def silence_for(labels: dict, *, at: datetime | None = None, silences: list[Silence] | None = None) -> Silence | None:
    """Return the active silence whose matchers match `labels`, if any."""
    for silence in active_silences(at) if silences is None else silences:
        if matches_all(silence.matchers, labels):
            return silence
    return None


def window_is_open(days: list[int], start, end, tz_name: str, at: datetime) -> bool:
    """Return whether a daily window (start–end in `tz_name`, crossing midnight when end < start) holds `at`."""
    local = at.astimezone(ZoneInfo(tz_name))
    now_t = local.time()
    if start <= end:
        return (not days or local.weekday() in days) and start <= now_t < end
    # Crossing midnight: the part after midnight belongs to the previous day's window.
    if now_t >= start:
        return not days or local.weekday() in days
    if now_t < end:
        return not days or (local.weekday() - 1) % 7 in days
    return False


def maintenance_for(labels: dict, *, at: datetime | None = None) -> MaintenanceWindow | None:
    """Return the enabled maintenance window open now whose matchers match `labels`, if any."""
    at = at or timezone.now()
    for window in MaintenanceWindow.objects.filter(enabled=True):
        if window_is_open(window.days, window.start_time, window.end_time, window.timezone, at) and matches_all(
            window.matchers, labels
        ):
            return window
    return None


def is_muted(alert: Alert, *, at: datetime | None = None) -> bool:
    """Return whether notifications about `alert` are held back now (silence or maintenance window)."""
    return silence_for(alert.labels, at=at) is not None or maintenance_for(alert.labels, at=at) is not None


def _validate_matchers(text: str, field: str = "matchers") -> str:
    try:
        parsed = parse_matchers(text)
    except MatcherError as exc:
        raise ValidationError({field: str(exc)}) from None
    return ", ".join(str(m) for m in parsed)


def _apply_silences() -> list[Alert]:
    """Point every open alert at the silence that covers it now (or none); return the ones that changed."""
    silences = active_silences()
    changed = []
    for alert in Alert.objects.select_for_update().filter(status__in=OPEN_STATUSES):
        silence = silence_for(alert.labels, silences=silences)
        new_id = silence.pk if silence else None
        if new_id != alert.silenced_by_id:
            was_silenced = alert.silenced_by_id is not None
            alert.silenced_by_id = new_id
            alert.save(update_fields=["silenced_by"])
            if new_id:
                record_event(alert, AlertEventKind.SILENCED, silence.comment, user=silence.created_by,
                             silence=silence.pk)
            elif was_silenced:
                record_event(alert, AlertEventKind.UNSILENCED)
            changed.append(alert)
    return changed


def refresh_silences() -> int:
    """Bring every open alert's silence up to date (beat runs it: silences start and end by the clock)."""
    with transaction.atomic():
        changed = _apply_silences()
        for alert in changed:
            publish_alert(alert)
    return len(changed)


def create_silence(
    *,
    matchers: str,
    comment: str,
    by,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    duration: timedelta | None = None,
    alert: Alert | None = None,
    expire_on_resolve: bool = False,
    source: str = AuditSource.UI,
    request: HttpRequest | None = None,
) -> Silence:
    """Silence the alerts `matchers` match from `starts_at` (now) until `ends_at` or for `duration`."""
    errors: dict[str, str] = {}
    normalised = ""
    try:
        normalised = _validate_matchers(matchers)
        if not normalised:
            errors["matchers"] = "Give at least one matcher: a silence of everything hides every alert."
    except ValidationError as exc:
        errors.update({k: v[0] for k, v in exc.message_dict.items()})
    comment = (comment or "").strip()
    if not comment:
        errors["comment"] = "Say why: the next person on call will read it."
    start = starts_at or timezone.now()
    end = ends_at or (start + duration if duration else None)
    if end is None:
        errors["ends_at"] = "Give an end time or a duration."
    elif end <= start:
        errors["ends_at"] = "The end must be after the start."
    elif end - start > MAX_SILENCE:
        errors["ends_at"] = f"A silence lasts at most {MAX_SILENCE.days} days."
    if expire_on_resolve and alert is None:
        errors["expire_on_resolve"] = "Only a silence created from an alert can end when it resolves."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        silence = Silence.objects.create(matchers=normalised, comment=comment, starts_at=start, ends_at=end,
                                         created_by=by, alert=alert, expire_on_resolve=expire_on_resolve)
        record_audit("silence.created", actor=by, target=silence, source=source, request=request,
                     changes={"matchers": normalised, "starts_at": start.isoformat(), "ends_at": end.isoformat(),
                              "expire_on_resolve": expire_on_resolve})
        for changed in _apply_silences():
            publish_alert(changed)
        publish(TOPIC, "silences.changed", {})
    return silence


def silence_alert(alert: Alert, *, by, comment: str, duration: timedelta | None = None,
                  until_resolved: bool = False, source: str = AuditSource.UI,
                  request: HttpRequest | None = None) -> Silence:
    """Silence exactly this alert's labels, for a duration and/or until it resolves."""
    if not alert.is_open:
        raise AlertConflict("This alert is resolved; there is nothing to silence.")
    if duration is None and not until_resolved:
        raise ValidationError({"duration": "Give a duration, or choose 'until it resolves'."})
    return create_silence(matchers=format_matchers(alert.labels), comment=comment, by=by,
                          duration=duration or MAX_SILENCE, alert=alert, expire_on_resolve=until_resolved,
                          source=source, request=request)


def expire_silence(silence: Silence, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None,
                   reason: str = "") -> Silence:
    """End a silence now; ending one that is over is refused."""
    now = timezone.now()
    with transaction.atomic():
        updated = Silence.objects.filter(pk=silence.pk, ends_at__gt=now).filter(
            Q(ended_at__isnull=True) | Q(ended_at__gt=now)).update(ended_at=now, ended_by=by)
        if not updated:
            raise AlertConflict("This silence has already ended.")
        silence.refresh_from_db()
        record_audit("silence.expired", actor=by, target=silence, source=source, request=request,
                     changes={"reason": reason} if reason else {})
        for changed in _apply_silences():
            publish_alert(changed)
        publish(TOPIC, "silences.changed", {})
    return silence


def on_alert_resolved(alert: Alert) -> None:
    """End the silences that were to last until `alert` resolved; call inside the resolving transaction."""
    now = timezone.now()
    ended = 0
    for silence in Silence.objects.filter(alert=alert, expire_on_resolve=True, ended_at__isnull=True, ends_at__gt=now):
        Silence.objects.filter(pk=silence.pk).update(ended_at=now)
        record_audit("silence.expired", target=silence, changes={"reason": "its alert resolved"})
        ended += 1
    if alert.silenced_by_id:
        Alert.objects.filter(pk=alert.pk).update(silenced_by=None)
        alert.silenced_by_id = None
    if ended:
        publish(TOPIC, "silences.changed", {})


# --- people's actions on an alert ------------------------------------------------------------------


def _locked(alert: Alert) -> Alert:
    # Only the alert's row is locked (PostgreSQL refuses FOR UPDATE on an outer join's nullable side).
    return Alert.objects.select_for_update(of=("self",)).select_related("acknowledged_by").get(pk=alert.pk)


def acknowledge_alert(alert: Alert, *, by, comment: str = "", source: str = AuditSource.UI,
                      request: HttpRequest | None = None) -> Alert:
    """Acknowledge an open alert: escalation and repeats stop; the channels hear who took it."""
    with transaction.atomic():
        alert = _locked(alert)
        if not alert.is_open:
            raise AlertConflict("This alert is already resolved.")
        if alert.acknowledged_at:
            who = alert.acknowledged_by.get_username() if alert.acknowledged_by else "someone"
            raise AlertConflict(f"{who} acknowledged this alert at {alert.acknowledged_at:%H:%M}.")
        comment = (comment or "").strip()
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = by
        alert.ack_comment = comment
        alert.save(update_fields=["acknowledged_at", "acknowledged_by", "ack_comment"])
        record_event(alert, AlertEventKind.ACKNOWLEDGED, comment, user=by)
        record_audit("alert.acknowledged", actor=by, target=alert, source=source, request=request,
                     changes={"comment": comment})
        if alert.last_notified_at:
            request_notification(alert, NotifyKind.ACKNOWLEDGED)
        publish_alert(alert)
    return alert


def unacknowledge_alert(alert: Alert, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None) -> Alert:
    """Withdraw an acknowledgement: escalation and repeats resume from now."""
    with transaction.atomic():
        alert = _locked(alert)
        if not alert.is_open or not alert.acknowledged_at:
            raise AlertConflict("This alert is not acknowledged.")
        alert.acknowledged_at = None
        alert.acknowledged_by = None
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
        record_event(alert, AlertEventKind.UNACKNOWLEDGED, user=by)
        record_audit("alert.unacknowledged", actor=by, target=alert, source=source, request=request)
        publish_alert(alert)
    return alert


def comment_on_alert(alert: Alert, *, by, comment: str, source: str = AuditSource.UI,
                     request: HttpRequest | None = None) -> AlertEvent:
    """Add a comment to an alert's timeline."""
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": "Write a comment."})
    with transaction.atomic():
        event = record_event(alert, AlertEventKind.COMMENT, comment, user=by)
        record_audit("alert.commented", actor=by, target=alert, source=source, request=request)
        publish_alert(alert)
    return event


def resolve_alert(alert: Alert, *, by, note: str = "", source: str = AuditSource.UI,
                  request: HttpRequest | None = None) -> Alert:
    """Resolve an open alert by hand; if its condition still holds, the evaluator opens a new one."""
    with transaction.atomic():
        alert = _locked(alert)
        if not alert.is_open:
            raise AlertConflict("This alert is already resolved.")
        was_firing = alert.status == AlertStatus.FIRING
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = timezone.now()
        alert.resolved_by = by
        alert.resolve_note = (note or "").strip()
        alert.save(update_fields=["status", "resolved_at", "resolved_by", "resolve_note"])
        record_event(alert, AlertEventKind.RESOLVED, alert.resolve_note or "Resolved by hand.", user=by, manual=True)
        record_audit("alert.resolved", actor=by, target=alert, source=source, request=request,
                     changes={"note": alert.resolve_note})
        on_alert_resolved(alert)
        if was_firing and alert.last_notified_at:
            request_notification(alert, NotifyKind.RESOLVED)
        publish_alert(alert)
    return alert


def update_silence(silence: Silence, *, by, ends_at: datetime | None = None, comment: str | None = None,
                   matchers: str | None = None, source: str = AuditSource.UI,
                   request: HttpRequest | None = None) -> Silence:
    """Change a silence that has not ended: its end, comment or matchers (audited field by field)."""
    now = timezone.now()
    if silence.ended_at or silence.ends_at <= now:
        raise AlertConflict("This silence has ended; create a new one.")
    errors: dict[str, str] = {}
    changes: dict[str, Any] = {}
    if matchers is not None:
        try:
            normalised = _validate_matchers(matchers)
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
        else:
            if not normalised:
                errors["matchers"] = "Give at least one matcher: a silence of everything hides every alert."
            elif normalised != silence.matchers:
                changes["matchers"] = normalised
    if comment is not None:
        if not comment.strip():
            errors["comment"] = "Say why: the next person on call will read it."
        elif comment.strip() != silence.comment:
            changes["comment"] = comment.strip()
    if ends_at is not None and ends_at != silence.ends_at:
        if ends_at <= max(now, silence.starts_at):
            errors["ends_at"] = "The end must be in the future and after the start (to end it now, expire it)."
        elif ends_at - silence.starts_at > MAX_SILENCE:
            errors["ends_at"] = f"A silence lasts at most {MAX_SILENCE.days} days."
        else:
            changes["ends_at"] = ends_at
    if errors:
        raise ValidationError(errors)
    if not changes:
        return silence
    with transaction.atomic():
        for field, value in changes.items():
            setattr(silence, field, value)
        silence.save(update_fields=list(changes))
        record_audit("silence.changed", actor=by, target=silence, source=source, request=request,
                     changes={k: v.isoformat() if isinstance(v, datetime) else v for k, v in changes.items()})
        for changed in _apply_silences():
            publish_alert(changed)
        publish(TOPIC, "silences.changed", {})
    return silence


# --- configuration: rules and channels --------------------------------------------------------------


def _field_values(instance, fields) -> dict[str, Any]:
    out = {}
    for name in fields:
        value = getattr(instance, name, None)
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def save_rule(rule, *, by, changed: list[str] | None = None, channels=None, source: str = AuditSource.UI,
              request: HttpRequest | None = None):
    """Validate and save a rule (new or changed), set its channels, and audit what changed."""
    from .evaluation import validate_rule

    validate_rule(rule)
    creating = rule.pk is None
    with transaction.atomic():
        rule.last_error = ""
        rule.save()
        if channels is not None:
            rule.channels.set(channels)
        fields = changed if changed is not None else [f.name for f in rule._meta.concrete_fields if f.name != "id"]
        audit = _field_values(rule, [f for f in fields if f != "channels"])
        if channels is not None:
            audit["channels"] = sorted(c.name for c in rule.channels.all())
        record_audit("alert_rule.created" if creating else "alert_rule.changed", actor=by, target=rule,
                     source=source, request=request, changes=audit)
        if not creating and not rule.enabled:
            _resolve_open_alerts(rule, "The rule was disabled.")
    return rule


def _resolve_open_alerts(rule, why: str) -> None:
    """Resolve a rule's open alerts (rule disabled or deleted): they can no longer clear by themselves."""
    for alert in Alert.objects.select_for_update().filter(rule=rule, status__in=OPEN_STATUSES):
        was_firing = alert.status == AlertStatus.FIRING
        alert.status = AlertStatus.RESOLVED
        alert.resolved_at = timezone.now()
        alert.save(update_fields=["status", "resolved_at"])
        record_event(alert, AlertEventKind.RESOLVED, why)
        on_alert_resolved(alert)
        if was_firing and alert.last_notified_at:
            request_notification(alert, NotifyKind.RESOLVED)
        publish_alert(alert)


def delete_rule(rule, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None) -> None:
    """Delete a rule; its open alerts resolve, and its alerts' history stays (without the link)."""
    with transaction.atomic():
        _resolve_open_alerts(rule, "The rule was deleted.")
        record_audit("alert_rule.deleted", actor=by, target=rule, source=source, request=request,
                     changes={"name": rule.name})
        rule.delete()


def save_channel(channel, *, by, changed: list[str] | None = None, source: str = AuditSource.UI,
                 request: HttpRequest | None = None):
    """Validate and save a channel; the audit row never holds its URL (a secret)."""
    from .transports import validate_channel_url

    if not (channel.name or "").strip():
        raise ValidationError({"name": "Give the channel a name."})
    if channel.pk is None or changed is None or "url" in changed:
        validate_channel_url(channel.url)
    creating = channel.pk is None
    with transaction.atomic():
        channel.save()
        fields = changed if changed is not None else ["name", "enabled", "route_all", "min_severity", "matchers",
                                                       "send_resolved", "url"]
        audit = _field_values(channel, [f for f in fields if f != "url"])
        if "url" in fields:
            audit["url"] = channel.masked_url
        record_audit("alert_channel.created" if creating else "alert_channel.changed", actor=by, target=channel,
                     source=source, request=request, changes=audit)
    return channel


def delete_channel(channel, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None) -> None:
    """Delete a channel; its notification ledger stays, under the channel's name."""
    with transaction.atomic():
        record_audit("alert_channel.deleted", actor=by, target=channel, source=source, request=request,
                     changes={"name": channel.name})
        channel.delete()
