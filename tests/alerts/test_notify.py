"""Grouping, routing, silences and maintenance windows, resolved messages, and racing dispatchers."""

from __future__ import annotations

import threading
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alerts import notify
from alerts.models import Alert, AlertEventKind, MaintenanceWindow, Notification, NotifyKind
from alerts.notify import dispatch_due, routing_channels
from alerts.services import create_silence, request_notification, resolve_alert, silence_alert
from tests.alerts.factories import fire, make_alert, make_channel, make_rule
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def seconds(t0, n: float):
    return t0 + timedelta(seconds=n)


def messages(kind: str | None = None):
    rows = Notification.objects.order_by("id")
    return list(rows.filter(kind=kind) if kind else rows)


# --- grouping ------------------------------------------------------------------------------------


def test_three_alerts_of_one_rule_inside_the_group_wait_make_one_message_naming_all_three(settings):
    settings.ALERTS_LINK_BASE_URL = "https://ops.example.com"
    channel = make_channel(name="Ops")
    rule = make_rule(name="Disk almost full", severity="critical", channels=[channel], group_wait_seconds=30,
                     runbook_url="https://wiki.example.com/disk")
    t0 = timezone.now()
    # As the evaluator asks: each alert is due a group wait after it fired.
    alerts = [fire(rule, at=seconds(t0, at), due_at=seconds(t0, at + 30), labels={"host": host}, value=91.5 + at,
                   summary=f"Disk on {host} is {91.5 + at}% full")
              for at, host in ((0, "web-1"), (10, "web-2"), (25, "db-1"))]

    assert dispatch_due(seconds(t0, 29))["notifications"] == 0
    assert dispatch_due(seconds(t0, 30))["notifications"] == 1

    (message,) = messages()
    assert message.title == "[FIRING:3] Disk almost full (critical)"
    assert set(message.alerts.all()) == set(alerts)
    for alert in alerts:
        assert alert.summary in message.body
        assert f"host={alert.labels['host']}" in message.body
        assert f"https://ops.example.com/admin/alerts/{alert.pk}/" in message.body
    assert "Value: 91.5" in message.body and "Runbook: https://wiki.example.com/disk" in message.body
    assert "Not acknowledged" in message.body
    assert message.body.rstrip().endswith(f"dedupe key {message.dedupe_key}")
    assert all(a.notified_seq == a.notify_seq for a in Alert.objects.all())

    # A fourth alert after the flush gets a message of its own.
    fire(rule, at=seconds(t0, 40), due_at=seconds(t0, 70), labels={"host": "web-3"})
    assert dispatch_due(seconds(t0, 69))["notifications"] == 0
    assert dispatch_due(seconds(t0, 70))["notifications"] == 1
    assert [m.title for m in messages()] == ["[FIRING:3] Disk almost full (critical)",
                                            "[FIRING:1] Disk almost full (critical)"]


def test_a_large_group_lists_the_first_twenty_alerts_and_links_the_rest(settings):
    settings.ALERTS_LINK_BASE_URL = "https://ops.example.com"
    rule = make_rule(name="Health check down", channels=[make_channel()])
    t0 = timezone.now()
    for n in range(25):
        fire(rule, at=t0, labels={"check": f"c{n:02d}"}, summary=f"Check c{n:02d} is down")
    dispatch_due(t0)
    (message,) = messages()
    assert message.title.startswith("[FIRING:25] Health check down") and message.alerts.count() == 25
    assert message.body.count("• Check") == 20
    assert "… and 5 more: https://ops.example.com/admin/alerts/" in message.body


def test_group_by_labels_split_a_rule_into_one_message_per_group():
    rule = make_rule(name="Agent failing", channels=[make_channel()], group_by=["agent"])
    t0 = timezone.now()
    for agent, run in (("writer", 1), ("writer", 2), ("imager", 3)):
        fire(rule, at=t0, labels={"agent": agent, "run": str(run)})
    dispatch_due(t0)
    groups = {m.group_key: m.alerts.count() for m in messages()}
    assert groups == {f"rule:{rule.pk}|agent=writer": 2, f"rule:{rule.pk}|agent=imager": 1}


def test_asking_twice_before_the_dispatcher_runs_sends_one_message_about_the_latest_state():
    rule = make_rule(channels=[make_channel(send_resolved=True)])
    t0 = timezone.now()
    alert = fire(rule, at=t0)
    request_notification(alert, NotifyKind.FIRING, due_at=t0)
    dispatch_due(t0)
    assert len(messages()) == 1


def test_the_dedupe_key_depends_only_on_channel_group_kind_and_the_requests():
    channel, other = make_channel(), make_channel()
    alert = make_alert(notify_seq=3)
    key = notify.dedupe_key(channel, "rule:1", NotifyKind.FIRING, 0, [alert])
    assert key == notify.dedupe_key(channel, "rule:1", NotifyKind.FIRING, 0, [alert])
    alert.notify_seq = 4
    assert key != notify.dedupe_key(channel, "rule:1", NotifyKind.FIRING, 0, [alert])
    alert.notify_seq = 3
    assert key != notify.dedupe_key(other, "rule:1", NotifyKind.FIRING, 0, [alert])
    assert key != notify.dedupe_key(channel, "rule:1", NotifyKind.REPEAT, 0, [alert])


# --- routing -------------------------------------------------------------------------------------


def test_route_all_channels_take_alerts_of_their_severity_or_worse_whose_labels_match():
    rule_channel = make_channel(name="Rule's own")
    pager = make_channel(name="Pager", route_all=True, min_severity="high", matchers='env="prod"')
    everything = make_channel(name="Firehose", route_all=True)
    make_channel(name="Disabled", route_all=True, enabled=False)
    make_channel(name="Not routed")
    critical = make_rule(severity="critical", channels=[rule_channel])
    medium = make_rule(severity="medium")

    def names(alert) -> list[str]:
        return [c.name for c in routing_channels(alert, NotifyKind.FIRING)]

    assert names(make_alert(critical, labels={"env": "prod"})) == ["Firehose", "Pager", "Rule's own"]
    assert names(make_alert(critical, labels={"env": "staging"})) == ["Firehose", "Rule's own"]
    assert names(make_alert(medium, labels={"env": "prod"})) == ["Firehose"]

    t0 = timezone.now()
    fire(critical, at=t0, labels={"env": "prod"})
    fire(medium, at=t0, labels={"env": "prod"})
    dispatch_due(t0)
    sent = sorted((m.channel_name, m.alerts.get().severity) for m in messages())
    assert sent == [("Firehose", "critical"), ("Firehose", "medium"), ("Pager", "critical"),
                    ("Rule's own", "critical")]
    assert pager.pk and everything.pk


def test_a_group_routed_differently_per_alert_sends_each_channel_only_its_alerts():
    pager = make_channel(name="Pager", route_all=True, matchers='host=~"db-.*"')
    team = make_channel(name="Team")
    rule = make_rule(channels=[team])
    t0 = timezone.now()
    fire(rule, at=t0, labels={"host": "db-1"})
    fire(rule, at=t0, labels={"host": "web-1"})
    dispatch_due(t0)
    per_channel = {m.channel_name: sorted(a.labels["host"] for a in m.alerts.all()) for m in messages()}
    assert per_channel == {"Pager": ["db-1"], "Team": ["db-1", "web-1"]}
    assert pager.pk


def test_an_alert_nobody_is_routed_to_is_covered_without_a_message():
    t0 = timezone.now()
    alert = fire(make_rule(), at=t0)
    assert dispatch_due(t0)["notifications"] == 0
    alert.refresh_from_db()
    assert alert.notified_seq == alert.notify_seq and alert.last_notified_at is None
    assert dispatch_due(seconds(t0, 3600)) == {"escalated": 0, "repeats": 0, "released": 0, "notifications": 0,
                                               "held_back": 0, "queued": 0}


# --- resolved ------------------------------------------------------------------------------------


def test_resolved_goes_only_to_channels_that_want_it_and_only_after_a_firing_message():
    wants = make_channel(name="Wants resolved", send_resolved=True)
    quiet = make_channel(name="Firing only", send_resolved=False)
    rule = make_rule(name="Queue stuck", channels=[wants, quiet])
    operator = make_user("Operator")
    t0 = timezone.now()
    notified = fire(rule, at=t0, labels={"queue": "a"})
    dispatch_due(t0)
    assert sorted(m.channel_name for m in messages(NotifyKind.FIRING)) == ["Firing only", "Wants resolved"]

    resolve_alert(notified, by=operator, note="Restarted the worker")
    dispatch_due(seconds(t0, 60))
    (resolved,) = messages(NotifyKind.RESOLVED)
    assert resolved.channel_name == "Wants resolved" and resolved.title == "[RESOLVED:1] Queue stuck (high)"
    assert "Resolved:" in resolved.body

    # Fired and resolved inside the group wait: nobody heard it fire, so nobody hears it end.
    quick = fire(rule, at=seconds(t0, 100), due_at=seconds(t0, 130), labels={"queue": "b"})
    quick.refresh_from_db()
    quick.status, quick.resolved_at = "resolved", seconds(t0, 110)
    quick.save()
    request_notification(quick, NotifyKind.RESOLVED, due_at=seconds(t0, 110))
    dispatch_due(seconds(t0, 200))
    assert len(messages(NotifyKind.RESOLVED)) == 1 and len(messages(NotifyKind.FIRING)) == 2
    quick.refresh_from_db()
    assert quick.notified_seq == quick.notify_seq


# --- silences and maintenance windows --------------------------------------------------------


def test_a_silenced_alert_is_held_back_and_notified_when_the_silence_ends_if_it_still_fires():
    rule = make_rule(name="Webhook silent", channels=[make_channel()])
    operator = make_user("Operator")
    t0 = timezone.now()
    create_silence(matchers='service="webhook"', comment="Provider maintenance", by=operator,
                   starts_at=t0, ends_at=seconds(t0, 600))
    alert = fire(rule, at=t0, labels={"service": "webhook"})

    counts = dispatch_due(seconds(t0, 1))
    assert counts["held_back"] == 1 and counts["notifications"] == 0
    held = alert.events.get(kind=AlertEventKind.SILENCED, data__has_key="held_back")
    assert held.message.startswith("Firing notification held back by the silence “Provider maintenance”")
    assert dispatch_due(seconds(t0, 300)) == {"escalated": 0, "repeats": 0, "released": 0, "notifications": 0,
                                              "held_back": 0, "queued": 0}

    counts = dispatch_due(seconds(t0, 601))
    assert counts["released"] == 1 and counts["notifications"] == 1
    assert messages()[0].title.startswith("[FIRING:1] Webhook silent")
    assert alert.events.filter(kind=AlertEventKind.UNSILENCED, data__released=True).count() == 1
    # Released once: later passes neither release nor send it again.
    assert dispatch_due(seconds(t0, 700))["notifications"] == 0 and len(messages()) == 1


def test_an_alert_resolved_while_silenced_is_never_notified():
    rule = make_rule(channels=[make_channel(send_resolved=True)])
    operator = make_user("Operator")
    t0 = timezone.now()
    alert = fire(rule, at=t0, labels={"host": "web-9"})
    silence_alert(alert, by=operator, comment="Decommissioning", until_resolved=True)
    dispatch_due(seconds(t0, 1))
    resolve_alert(alert, by=operator)
    dispatch_due(seconds(t0, 5))
    dispatch_due(seconds(t0, 3600))
    assert messages() == []


def test_a_maintenance_window_holds_back_matching_alerts_only():
    channel = make_channel()
    rule = make_rule(name="Backup failed", channels=[channel])
    t0 = timezone.now()
    utc = t0.astimezone(UTC)
    MaintenanceWindow.objects.create(  # open from an hour ago to an hour from now (may cross midnight)
        name="Nightly patching", matchers='host="db-1"', days=[], timezone="UTC",
        start_time=(utc - timedelta(hours=1)).time(), end_time=(utc + timedelta(hours=1)).time(),
    )
    held = fire(rule, at=t0, labels={"host": "db-1"})
    sent = fire(rule, at=t0, labels={"host": "db-2"})
    counts = dispatch_due(t0)
    assert counts["held_back"] == 1 and counts["notifications"] == 1
    assert list(messages()[0].alerts.all()) == [sent]
    assert "held back by the maintenance window “Nightly patching”" in \
        held.events.get(kind=AlertEventKind.SILENCED).message


# --- two dispatchers at once (real PostgreSQL) ------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_record_one_notification(monkeypatch):
    rule = make_rule(name="Race", channels=[make_channel(name="Only once")])
    t0 = timezone.now()
    alerts = [fire(rule, at=t0, labels={"n": str(i)}) for i in range(3)]
    # Both read the same due requests before either covers them: the worst interleaving.
    both_read = threading.Barrier(2, timeout=10)
    real_pending_groups = notify._pending_groups

    def pending_then_wait(now):
        groups = real_pending_groups(now)
        both_read.wait()
        return groups

    monkeypatch.setattr(notify, "_pending_groups", pending_then_wait)
    results, errors = [], []

    def run() -> None:
        try:
            results.append(dispatch_due(seconds(t0, 1)))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(r["notifications"] for r in results) == [0, 1]
    (message,) = messages()
    assert message.alerts.count() == 3 and message.title == "[FIRING:3] Race (high)"
    assert all(a.notified_seq == a.notify_seq == 1 for a in Alert.objects.filter(pk__in=[a.pk for a in alerts]))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_escalate_once(monkeypatch):
    from tests.alerts.factories import make_policy

    lead = make_channel(name="Lead")
    rule = make_rule(channels=[make_channel()], escalation_policy=make_policy([(5, [lead])]),
                     repeat_interval_seconds=0)
    t0 = timezone.now()
    alert = fire(rule, at=t0)
    dispatch_due(t0)
    # Both have read the candidates before either escalates.
    both_read = threading.Barrier(2, timeout=10)
    real_resumed_at = notify._resumed_at

    def read_then_wait(alert_ids):
        resumed = real_resumed_at(alert_ids)
        both_read.wait()
        return resumed

    monkeypatch.setattr(notify, "_resumed_at", read_then_wait)
    results = []

    def run() -> None:
        try:
            results.append(dispatch_due(t0 + timedelta(minutes=6)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r["escalated"] for r in results) == [0, 1]
    assert [m.channel_name for m in messages(NotifyKind.ESCALATION)] == ["Lead"]
    assert alert.events.filter(kind=AlertEventKind.ESCALATED).count() == 1
