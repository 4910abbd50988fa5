"""The notifier: escalation, repeats, grouping into messages, and sending them at least once.

`dispatch_due()` runs on beat (every ALERTS_DISPATCH_SECONDS) and whenever a notification
is requested. One pass:

1. asks about alerts whose firing message a silence or maintenance window held back, once
   it is over and they still fire; escalates firing, unacknowledged alerts whose policy's
   next step is due; asks again about alerts still firing after the rule's repeat interval;
2. groups the requests that are due (notify_seq ahead of notified_seq) by the rule's
   group key and the kind of message, and records ONE Notification per (channel, group),
   with a deterministic dedupe key; the requests are covered in the same transaction;
3. queues the sends that are due, and those whose sender died mid-send.

`send_notification()` claims one Notification with a conditional UPDATE, sends it through
Apprise (alerts.transports), writes a NotificationAttempt per try, and retries with
exponential back-off; a permanent failure, or running out of attempts, marks every alert
of the message `notification_failed` with a timeline line saying why.

Who hears what (`routing_channels`): the "audience" of an alert is its rule's enabled
channels, the enabled route-all channels whose minimum severity and matchers fit it, and
the channels of every escalation step it has reached. An escalation message goes only to
the newly reached step's channels (the others already know, and keep getting repeats);
firing, repeat, acknowledged and resolved messages go to the whole audience — so whoever
was paged also hears that someone took it, or that it is over. Resolved messages go only
to channels with `send_resolved`, and only about alerts whose firing was notified.

Silences and maintenance windows hold messages back (a timeline line says so). An alert
whose firing message was held back and that still fires, unacknowledged, when the silence
or window is over is notified then — a silence postpones a page, it never loses one.
Escalation and repeats pause while an alert is muted or acknowledged; the escalation clock
runs from firing, and after an acknowledgement is withdrawn the next step waits at least
its own delay again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from opscenter.audit import record_audit
from opscenter.models import AuditSource

from . import transports
from .matchers import MatcherError, matches_all
from .models import (
    SEVERITY_RANK,
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertStatus,
    Channel,
    EscalationStep,
    MaintenanceWindow,
    Notification,
    NotificationAttempt,
    NotificationStatus,
    NotifyKind,
)
from .services import active_silences, publish_alert, record_event, silence_for, window_is_open

log = logging.getLogger(__name__)

# Kinds after which the alert counts as "notified" (repeats are timed from then).
PAGING_KINDS = frozenset({NotifyKind.FIRING, NotifyKind.REPEAT, NotifyKind.ESCALATION})
# Kinds that only make sense to people who heard the alert fire.
FOLLOW_UP_KINDS = frozenset({NotifyKind.RESOLVED, NotifyKind.ACKNOWLEDGED})
MAX_LISTED = 20  # alerts written out in one message; the rest are counted and linked
TITLES = {
    NotifyKind.FIRING: "FIRING",
    NotifyKind.REPEAT: "STILL FIRING",
    NotifyKind.RESOLVED: "RESOLVED",
    NotifyKind.ACKNOWLEDGED: "ACKNOWLEDGED",
}


def _requeue_grace() -> timedelta:
    """Return how long a queued send is left to its worker before the sweep queues it again."""
    return timedelta(seconds=max(60, 3 * settings.ALERTS_DISPATCH_SECONDS))


# --- routing ---------------------------------------------------------------------------------


def _matches(matchers: str, labels: dict) -> bool:
    try:
        return matches_all(matchers, labels)
    except MatcherError:
        # An unreadable matcher list (saved before validation existed) routes nothing rather than everything.
        return False


class _Router:
    """Answers "which channels hear about this alert" with the channels and steps loaded once per pass."""

    def __init__(self) -> None:
        self._route_all: list[Channel] | None = None
        self._rule_channels: dict[int, list[Channel]] = {}
        self._steps: dict[int, dict[int, list[Channel]]] = {}

    def route_all(self) -> list[Channel]:
        if self._route_all is None:
            self._route_all = list(Channel.objects.filter(enabled=True, route_all=True))
        return self._route_all

    def rule_channels(self, rule_id: int | None) -> list[Channel]:
        if rule_id is None:
            return []
        if rule_id not in self._rule_channels:
            self._rule_channels[rule_id] = list(Channel.objects.filter(enabled=True, rules__id=rule_id))
        return self._rule_channels[rule_id]

    def step_channels(self, policy_id: int | None, level: int) -> list[Channel]:
        if policy_id is None or level < 1:
            return []
        if policy_id not in self._steps:
            steps: dict[int, list[Channel]] = defaultdict(list)
            for step in EscalationStep.objects.filter(policy_id=policy_id).prefetch_related("channels"):
                steps[step.level] = [c for c in step.channels.all() if c.enabled]
            self._steps[policy_id] = steps
        return self._steps[policy_id].get(level, [])

    def channels_for(self, alert: Alert, kind: str) -> list[Channel]:
        rule = alert.rule if alert.rule_id else None
        policy_id = rule.escalation_policy_id if rule else None
        if kind == NotifyKind.ESCALATION:
            chosen = list(self.step_channels(policy_id, alert.escalation_level))
        else:
            rank = SEVERITY_RANK.get(alert.severity, 0)
            chosen = list(self.rule_channels(alert.rule_id))
            chosen += [c for c in self.route_all()
                       if SEVERITY_RANK.get(c.min_severity, 0) <= rank and _matches(c.matchers, alert.labels)]
            for level in range(1, alert.escalation_level + 1):
                chosen += self.step_channels(policy_id, level)
            if kind == NotifyKind.RESOLVED:
                chosen = [c for c in chosen if c.send_resolved]
        unique = {c.pk: c for c in chosen}
        return sorted(unique.values(), key=lambda c: c.name)


def routing_channels(alert: Alert, kind: str) -> list[Channel]:
    """Return the enabled channels a message of `kind` about `alert` would go to now."""
    if kind == NotifyKind.TEST:
        return []
    return _Router().channels_for(alert, kind)


# --- muting ----------------------------------------------------------------------------------


@dataclass
class _Muting:
    """Silences and maintenance windows in force at `at`, loaded once per pass."""

    at: datetime
    silences: list = field(default_factory=list)
    windows: list = field(default_factory=list)

    @classmethod
    def load(cls, at: datetime) -> _Muting:
        return cls(at, active_silences(at), list(MaintenanceWindow.objects.filter(enabled=True)))

    def reason(self, alert: Alert) -> tuple[str, dict[str, Any]] | None:
        """Return why notifications about `alert` are held back now (text, ids), or None."""
        silence = silence_for(alert.labels, silences=self.silences)
        if silence is not None:
            end = timezone.localtime(silence.effective_end)
            return f"the silence “{silence.comment[:80]}” (until {end:%Y-%m-%d %H:%M})", {"silence": silence.pk}
        for window in self.windows:
            if window_is_open(window.days, window.start_time, window.end_time, window.timezone, self.at) and _matches(
                window.matchers, alert.labels
            ):
                return f"the maintenance window “{window.name}”", {"window": window.pk}
        return None


def _resumed_at(alert_ids: list[int]) -> dict[int, datetime]:
    """Return when each alert's acknowledgement was last withdrawn (escalation and repeats resume from then)."""
    rows = (AlertEvent.objects.filter(alert_id__in=alert_ids, kind=AlertEventKind.UNACKNOWLEDGED)
            .values("alert_id").annotate(at=Max("at")).order_by())
    return {row["alert_id"]: row["at"] for row in rows}


def _bump(alert: Alert, kind: str, now: datetime, changes: dict[str, Any] | None = None, **guard: Any) -> int:
    """Request a notification of `kind` if `alert` still is as the caller saw it; return 1 if requested.

    services.request_notification, made conditional: two dispatchers (or a dispatcher and
    a person acknowledging) cannot both ask, and an earlier request still waiting is never
    overwritten. No dispatch is kicked: this very pass groups it.
    """
    return Alert.objects.filter(
        pk=alert.pk, status=AlertStatus.FIRING, acknowledged_at__isnull=True,
        notify_seq=alert.notify_seq, notified_seq=alert.notify_seq, **guard,
    ).update(notify_seq=F("notify_seq") + 1, notify_kind=kind, notify_due_at=now, **(changes or {}))


# --- 1a. escalation ---------------------------------------------------------------------------


def _escalate(now: datetime, muting: _Muting) -> int:
    candidates = list(
        Alert.objects.filter(status=AlertStatus.FIRING, acknowledged_at__isnull=True, fired_at__isnull=False,
                             rule__escalation_policy__isnull=False, notify_seq=F("notified_seq"))
        .select_related("rule")
    )
    if not candidates:
        return 0
    policy_ids = {a.rule.escalation_policy_id for a in candidates}
    steps: dict[int, list[EscalationStep]] = defaultdict(list)
    for step in EscalationStep.objects.filter(policy_id__in=policy_ids).order_by("level"):
        steps[step.policy_id].append(step)
    resumed = _resumed_at([a.pk for a in candidates])
    escalated = 0
    for alert in candidates:
        ladder = steps.get(alert.rule.escalation_policy_id, [])
        current = next((s for s in ladder if s.level == alert.escalation_level), None)
        upcoming = next((s for s in ladder if s.level > alert.escalation_level), None)
        if upcoming is None or muting.reason(alert):
            continue
        due = alert.fired_at + timedelta(minutes=upcoming.after_minutes)
        if alert.pk in resumed:
            gap = upcoming.after_minutes - (current.after_minutes if current else 0)
            due = max(due, resumed[alert.pk] + timedelta(minutes=max(gap, 0)))
        if now < due:
            continue
        with transaction.atomic():
            if not _bump(alert, NotifyKind.ESCALATION, now, {"escalation_level": upcoming.level, "escalated_at": now},
                         escalation_level=alert.escalation_level):
                continue  # acknowledged, resolved, escalated or re-requested meanwhile
            alert.refresh_from_db()
            minutes = int((now - alert.fired_at).total_seconds() // 60)
            record_event(alert, AlertEventKind.ESCALATED,
                         f"Not acknowledged {minutes} min after firing: escalated to level {upcoming.level}.",
                         at=now, level=upcoming.level, policy=alert.rule.escalation_policy_id)
            publish_alert(alert)
        escalated += 1
    return escalated


# --- 1b. repeats, and messages a silence held back ------------------------------------------------


def _request_repeats(now: datetime, muting: _Muting) -> int:
    candidates = list(
        Alert.objects.filter(status=AlertStatus.FIRING, acknowledged_at__isnull=True, last_notified_at__isnull=False,
                             rule__repeat_interval_seconds__gt=0, notify_seq=F("notified_seq"))
        .select_related("rule")
    )
    resumed = _resumed_at([a.pk for a in candidates]) if candidates else {}
    requested = 0
    for alert in candidates:
        since = max(alert.last_notified_at, resumed.get(alert.pk, alert.last_notified_at))
        if now < since + timedelta(seconds=alert.rule.repeat_interval_seconds) or muting.reason(alert):
            continue
        requested += _bump(alert, NotifyKind.REPEAT, now, last_notified_at=alert.last_notified_at)
    return requested


def _release_held_back(now: datetime, muting: _Muting) -> int:
    """Request the firing message of alerts a silence or window held back, now that it is over."""
    candidates = {
        a.pk: a for a in Alert.objects.filter(status=AlertStatus.FIRING, acknowledged_at__isnull=True,
                                              last_notified_at__isnull=True, notify_seq=F("notified_seq"))
    }
    if not candidates:
        return 0
    # The latest hold-back / release line of each alert says whether a release is owed.
    latest: dict[int, dict] = {}
    for event in (AlertEvent.objects.filter(alert_id__in=list(candidates))
                  .filter(Q(data__has_key="held_back") | Q(data__has_key="released")).order_by("at", "id")):
        latest[event.alert_id] = event.data
    released = 0
    for alert_id, data in latest.items():
        alert = candidates[alert_id]
        if "held_back" not in data or muting.reason(alert):
            continue
        with transaction.atomic():
            if _bump(alert, NotifyKind.FIRING, now, last_notified_at__isnull=True):
                record_event(alert, AlertEventKind.UNSILENCED,
                             "The silence or maintenance window is over and it still fires: notifying now.",
                             at=now, released=True)
                released += 1
    return released


# --- 2. grouping into messages -------------------------------------------------------------------


def group_key(alert: Alert) -> str:
    """Return the key alerts share when they belong in one message: the rule and its group-by label values."""
    rule = alert.rule if alert.rule_id else None
    head = f"rule:{alert.rule_id}" if rule else f"rule-name:{alert.rule_name}"
    names = rule.group_by if rule and isinstance(rule.group_by, list) else []
    values = ",".join(f"{name}={alert.labels.get(name, '')}" for name in names)
    return f"{head}|{values}" if values else head


def dedupe_key(channel: Channel, key: str, kind: str, level: int, alerts: list[Alert]) -> str:
    """Return the message's identity: the same channel, group, kind and alert requests give the same key."""
    pairs = sorted((a.pk, a.notify_seq) for a in alerts)
    raw = json.dumps([channel.pk, key, kind, level, pairs], separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _when(moment: datetime | None) -> str:
    return f"{timezone.localtime(moment):%Y-%m-%d %H:%M %Z}" if moment else "—"


def _value(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.4g}"


def _page(name: str, fallback: str, *args: Any) -> str:
    try:
        path = reverse(name, args=args)
    except NoReverseMatch:  # the pages are not mounted (a trimmed URLconf): the admin's usual place
        path = fallback
    return f"{settings.ALERTS_LINK_BASE_URL}{path}"


def alert_link(alert: Alert) -> str:
    """Return the absolute link to an alert's page."""
    return _page("admin:alerts_alert", f"/admin/alerts/{alert.pk}/", alert.pk)


def compose(kind: str, level: int, alerts: list[Alert], key: str) -> tuple[str, str, str]:
    """Return the title, body and Apprise notify type of a message about `alerts`."""
    first = alerts[0]
    severity = max((a.severity for a in alerts), key=lambda s: SEVERITY_RANK.get(s, 0))
    label = f"ESCALATED L{level}" if kind == NotifyKind.ESCALATION else TITLES.get(kind, kind.upper())
    title = f"[{label}:{len(alerts)}] {first.rule_name} ({severity})"[:300]
    rule = first.rule if first.rule_id else None
    intro = {
        NotifyKind.FIRING: f"{len(alerts)} alert(s) firing.",
        NotifyKind.REPEAT: f"{len(alerts)} alert(s) still firing and not acknowledged.",
        NotifyKind.ESCALATION: f"Not acknowledged in time: escalated to level {level}.",
        NotifyKind.RESOLVED: f"{len(alerts)} alert(s) resolved.",
        NotifyKind.ACKNOWLEDGED: f"{len(alerts)} alert(s) acknowledged.",
    }.get(kind, "")
    lines = [intro]
    if rule and rule.description:
        lines.append(rule.description.strip())
    lines.append("")
    for alert in alerts[:MAX_LISTED]:
        lines.append(f"• {alert.summary or alert.rule_name} [{alert.get_status_display().lower()}]")
        lines.append(f"  Labels: {alert.labels_text() or '—'}")
        lines.append(f"  Value: {_value(alert.value)}")
        if alert.status == AlertStatus.RESOLVED:
            lines.append(f"  Resolved: {_when(alert.resolved_at)} (firing since {_when(alert.fired_at)})")
        else:
            lines.append(f"  Firing since: {_when(alert.fired_at or alert.pending_since)}")
        if alert.acknowledged_at:
            who = alert.acknowledged_by.get_username() if alert.acknowledged_by_id else "someone"
            comment = f": “{alert.ack_comment}”" if alert.ack_comment else ""
            lines.append(f"  Acknowledged by {who} at {_when(alert.acknowledged_at)}{comment}")
        elif alert.status != AlertStatus.RESOLVED:
            lines.append("  Not acknowledged")
        if alert.escalation_level:
            lines.append(f"  Escalation level: {alert.escalation_level}")
        if rule and rule.runbook_url:
            lines.append(f"  Runbook: {rule.runbook_url}")
        lines.append(f"  Open: {alert_link(alert)}")
        lines.append("")
    if len(alerts) > MAX_LISTED:
        lines.append(f"… and {len(alerts) - MAX_LISTED} more: {_page('admin:alerts', '/admin/alerts/')}")
        lines.append("")
    lines.append("—")
    lines.append(f"OpsCenter · dedupe key {key}")
    return title, "\n".join(lines).strip() + "\n", _notify_type(kind, [a.severity for a in alerts])


def _notify_type(kind: str, severities: list[str]) -> str:
    """Return Apprise's message type (it picks colours and icons): red for high and critical pages."""
    if kind == NotifyKind.RESOLVED:
        return "success"
    if kind in PAGING_KINDS:
        worst = max((SEVERITY_RANK.get(s, 0) for s in severities), default=0)
        return "failure" if worst >= SEVERITY_RANK["high"] else "warning"
    return "info"


@dataclass
class _Group:
    key: str
    kind: str
    level: int
    alerts: list[Alert] = field(default_factory=list)


def _pending_groups(now: datetime) -> list[_Group]:
    """Return the groups to flush: every waiting request of a group goes once its earliest is due."""
    groups: dict[tuple[str, str, int], _Group] = {}
    for alert in (Alert.objects.filter(notify_seq__gt=F("notified_seq"))
                  .select_related("rule", "acknowledged_by").order_by("id")):
        kind = alert.notify_kind or NotifyKind.FIRING
        level = alert.escalation_level if kind == NotifyKind.ESCALATION else 0
        token = (group_key(alert), kind, level)
        groups.setdefault(token, _Group(*token)).alerts.append(alert)
    return [g for _, g in sorted(groups.items())
            if any(a.notify_due_at is None or a.notify_due_at <= now for a in g.alerts)]


def _record_group(group: _Group, now: datetime, router: _Router, muting: _Muting) -> tuple[list[int], int]:
    """Cover the group's requests and record its messages in one transaction; return (new ids, held back)."""
    created: list[int] = []
    held_back = 0
    with transaction.atomic():
        claimed = []
        for alert in sorted(group.alerts, key=lambda a: a.pk):
            # The claim: another dispatcher, or a newer request for this alert, makes it 0.
            if Alert.objects.filter(pk=alert.pk, notify_seq=alert.notify_seq,
                                    notified_seq__lt=alert.notify_seq).update(notified_seq=alert.notify_seq):
                claimed.append(alert)
        per_channel: dict[int, tuple[Channel, list[Alert]]] = {}
        for alert in claimed:
            if group.kind in FOLLOW_UP_KINDS and alert.last_notified_at is None:
                continue  # nobody heard it fire: nothing to follow up
            channels = router.channels_for(alert, group.kind)
            if not channels:
                continue
            muted = muting.reason(alert)
            if muted:
                text, ids = muted
                record_event(alert, AlertEventKind.SILENCED,
                             f"{NotifyKind(group.kind).label} notification held back by {text}.",
                             at=now, held_back=group.kind, **ids)
                publish_alert(alert)  # its timeline changed
                held_back += 1
                continue
            for channel in channels:
                per_channel.setdefault(channel.pk, (channel, []))[1].append(alert)
        notified: set[int] = set()
        for channel, alerts in per_channel.values():
            key = dedupe_key(channel, group.key, group.kind, group.level, alerts)
            title, body, _ = compose(group.kind, group.level, alerts, key)
            try:
                with transaction.atomic():
                    notification = Notification.objects.create(
                        channel=channel, channel_name=channel.name, dedupe_key=key, kind=group.kind,
                        group_key=group.key[:500], escalation_level=group.level, title=title, body=body,
                        next_attempt_at=now, created_at=now, lease_until=now + _requeue_grace(),
                    )
                    notification.alerts.set(alerts)
            except IntegrityError:
                continue  # another dispatcher recorded this very message
            created.append(notification.pk)
            notified.update(a.pk for a in alerts)
        if group.kind in PAGING_KINDS and notified:
            Alert.objects.filter(pk__in=notified).update(last_notified_at=now)
        from .tasks import send_notification as send_task

        for pk in created:
            send_task.delay_on_commit(pk)
    return created, held_back


# --- 3. queueing sends ---------------------------------------------------------------------------


def _queue_due(now: datetime) -> int:
    """Put sends whose worker died back to pending, then queue the due ones (once per grace); return how many."""
    lost = Notification.objects.filter(status=NotificationStatus.SENDING, lease_until__lt=now)
    for notification in lost.only("pk", "lease_until"):
        with transaction.atomic():
            if Notification.objects.filter(pk=notification.pk, status=NotificationStatus.SENDING,
                                           lease_until=notification.lease_until).update(
                    status=NotificationStatus.PENDING, next_attempt_at=now, lease_until=None):
                NotificationAttempt.objects.create(
                    notification_id=notification.pk, at=now, ok=False,
                    error="The sender stopped before recording the outcome (worker lost); "
                          "it may have been delivered. Sending again.")
    from .tasks import send_notification as send_task

    queued = 0
    due = (Notification.objects.filter(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
           .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now)).order_by("next_attempt_at"))
    for pk, lease in due.values_list("pk", "lease_until")[:1000]:
        # lease_until on a pending row means "queued until then": one sweep queues it once.
        with transaction.atomic():
            if Notification.objects.filter(pk=pk, status=NotificationStatus.PENDING, lease_until=lease).update(
                    lease_until=now + _requeue_grace()):
                send_task.delay_on_commit(pk)
                queued += 1
    return queued


def dispatch_due(now: datetime | None = None) -> dict:
    """Escalate, repeat, group due requests into messages and queue the sends; return what it did."""
    now = now or timezone.now()
    muting = _Muting.load(now)
    router = _Router()
    # Release first: a held-back firing message must reach the first line before any
    # escalation (which waits while a request is pending) goes over its head.
    released = _release_held_back(now, muting)
    counts = {"escalated": _escalate(now, muting), "repeats": _request_repeats(now, muting),
              "released": released, "notifications": 0, "held_back": 0}
    for group in _pending_groups(now):
        created, held = _record_group(group, now, router, muting)
        counts["notifications"] += len(created)
        counts["held_back"] += held
    counts["queued"] = _queue_due(now)
    return counts


# --- sending -------------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """Return how long to wait after the `attempts`-th failed try: doubling from the base, capped."""
    base = settings.ALERTS_NOTIFY_BACKOFF_SECONDS
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), settings.ALERTS_NOTIFY_BACKOFF_MAX_SECONDS))


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _mark_failed(notification: Notification, error: str, now: datetime) -> None:
    """Flag every alert of a message that will not be delivered; call inside the settling transaction."""
    for alert in notification.alerts.select_related("acknowledged_by"):
        if not alert.notification_failed:
            Alert.objects.filter(pk=alert.pk).update(notification_failed=True)
            alert.notification_failed = True
        record_event(alert, AlertEventKind.NOTIFICATION_FAILED,
                     f"Could not notify {notification.channel_name}: {error}", at=now,
                     notification=notification.pk, notify_kind=notification.kind)
        publish_alert(alert)


def send_notification(notification_id: int, *, now: datetime | None = None) -> str:
    """Send one notification if it is due and nobody else holds it; return sent / retry / failed / skipped."""
    now = now or timezone.now()
    timeout = settings.ALERTS_NOTIFY_TIMEOUT_SECONDS
    row = Notification.objects.filter(pk=notification_id).values("status", "lease_until").first()
    if row is None:
        return "missing"
    lost = row["status"] == NotificationStatus.SENDING
    lease = now + timedelta(seconds=timeout * 2)
    claimable = (Q(status=NotificationStatus.PENDING, next_attempt_at__lte=now)
                 | Q(status=NotificationStatus.SENDING, lease_until__lt=now))
    with transaction.atomic():
        if not Notification.objects.filter(claimable, pk=notification_id).update(
                status=NotificationStatus.SENDING, lease_until=lease, attempts=F("attempts") + 1):
            return "skipped"
        if lost:
            NotificationAttempt.objects.create(
                notification_id=notification_id, at=now, ok=False,
                error="The sender stopped before recording the outcome (worker lost); "
                      "it may have been delivered. Sending again.")
    notification = Notification.objects.select_related("channel").get(pk=notification_id)
    channel = notification.channel
    started = time.monotonic()
    error, permanent = "", False
    if channel is None:
        error, permanent = "The channel was deleted.", True
    elif not channel.enabled:
        error, permanent = f"The channel “{channel.name}” is disabled; enable it to send to it.", True
    else:
        notify_type = _notify_type(notification.kind, list(notification.alerts.values_list("severity", flat=True)))
        try:
            transports.send_apprise(channel.url, title=notification.title, body=notification.body, timeout=timeout,
                                    notify_type=notify_type, dedupe_key=notification.dedupe_key)
        except transports.PermanentSendError as exc:
            error, permanent = str(exc), True
        except transports.RetryableSendError as exc:
            error = str(exc)
        except Exception as exc:  # never lose a notification to a bug: retry, and say what happened
            log.exception("sending notification %s failed unexpectedly", notification_id)
            error = f"{type(exc).__name__}: {exc}"[:500]
    return _settle(notification, lease, now, error=error, permanent=permanent, duration_ms=_elapsed_ms(started))


def _settle(notification: Notification, lease: datetime, now: datetime, *, error: str, permanent: bool,
            duration_ms: int) -> str:
    """Record the attempt and the outcome, if the notification is still ours."""
    attempts = notification.attempts
    with transaction.atomic():
        NotificationAttempt.objects.create(notification=notification, at=now, ok=not error, error=error,
                                           duration_ms=duration_ms)
        ours = Notification.objects.filter(pk=notification.pk, status=NotificationStatus.SENDING, lease_until=lease)
        if not error:
            if not ours.update(status=NotificationStatus.SENT, sent_at=now, lease_until=None, last_error=""):
                return "sent-late"  # our lease ran out and another sender took over: it decides
            for alert in notification.alerts.select_related("acknowledged_by"):
                record_event(alert, AlertEventKind.NOTIFIED,
                             f"Sent to {notification.channel_name}: {notification.title}", at=now,
                             notification=notification.pk, notify_kind=notification.kind)
                publish_alert(alert)
            return "sent"
        if not permanent and attempts < settings.ALERTS_NOTIFY_MAX_ATTEMPTS:
            if not ours.update(status=NotificationStatus.PENDING, next_attempt_at=now + backoff(attempts),
                               lease_until=None, last_error=error):
                return "failed-late"
            return "retry"
        if attempts >= settings.ALERTS_NOTIFY_MAX_ATTEMPTS and not permanent:
            error = f"Gave up after {attempts} attempts. Last error: {error}"
        if not ours.update(status=NotificationStatus.FAILED, lease_until=None, last_error=error):
            return "failed-late"
        _mark_failed(notification, error, now)
        return "failed"


# --- test messages ---------------------------------------------------------------------------


def send_test(channel: Channel, *, by, source: str = AuditSource.UI,
              request: HttpRequest | None = None) -> tuple[bool, str]:
    """Send a test message to `channel` now (same transport and address policy); return (ok, what happened)."""
    now = timezone.now()
    timeout = settings.ALERTS_NOTIFY_TIMEOUT_SECONDS
    who = by.get_username() if by is not None and getattr(by, "is_authenticated", False) else "OpsCenter"
    key = f"test-{channel.pk}-{uuid.uuid4().hex}"
    title = f"OpsCenter test notification: {channel.name}"
    body = (f"This is a test message sent by {who} at {_when(now)}.\n"
            f"If you can read it, alerts routed to the channel “{channel.name}” reach you here.\n\n"
            f"—\nOpsCenter · dedupe key {key}\n")
    notification = Notification.objects.create(
        channel=channel, channel_name=channel.name, dedupe_key=key, kind=NotifyKind.TEST, group_key="test",
        title=title, body=body, status=NotificationStatus.SENDING, attempts=1, created_at=now, next_attempt_at=now,
        lease_until=now + timedelta(seconds=timeout * 2),
    )
    started = time.monotonic()
    error = ""
    try:
        transports.send_apprise(channel.url, title=title, body=body, timeout=timeout, notify_type="info",
                                dedupe_key=key)
    except transports.SendError as exc:
        error = str(exc)
    except Exception as exc:  # the person pressing "send test" must see what went wrong
        log.exception("test notification to channel %s failed unexpectedly", channel.pk)
        error = f"{type(exc).__name__}: {exc}"[:500]
    ok = not error
    with transaction.atomic():
        NotificationAttempt.objects.create(notification=notification, at=now, ok=ok, error=error,
                                           duration_ms=_elapsed_ms(started))
        # A test is not retried: the person who asked sees the answer at once.
        Notification.objects.filter(pk=notification.pk).update(
            status=NotificationStatus.SENT if ok else NotificationStatus.FAILED,
            sent_at=now if ok else None, lease_until=None, last_error=error)
        Channel.objects.filter(pk=channel.pk).update(last_test_at=now, last_test_ok=ok, last_test_error=error)
        channel.last_test_at, channel.last_test_ok, channel.last_test_error = now, ok, error
        record_audit("channel.tested", actor=by, target=channel, source=source, request=request,
                     changes={"ok": ok, "error": error, "notification": notification.pk})
    return ok, (f"Sent a test message to {channel.name}." if ok else error)
