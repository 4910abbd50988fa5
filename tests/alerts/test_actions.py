"""People's actions on alerts and silences: guarded, audited, on the timeline, announced live."""

from __future__ import annotations

import datetime
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts import services
from alerts.models import Alert, AlertEvent, MaintenanceWindow, Silence
from opscenter.models import AuditEntry
from tests.factories import make_user

from .factories import make_alert, make_rule

pytestmark = pytest.mark.django_db


def test_acknowledging_records_who_and_why_on_the_timeline_and_in_the_audit():
    alert = make_alert(labels={"host": "web-1"})
    operator = make_user("Operator")

    services.acknowledge_alert(alert, by=operator, comment="Looking at the disk now")

    alert.refresh_from_db()
    assert alert.acknowledged_by == operator and alert.ack_comment == "Looking at the disk now"
    event = AlertEvent.objects.get(alert=alert, kind="acknowledged")
    assert event.user == operator and event.message == "Looking at the disk now"
    assert AuditEntry.objects.filter(action="alert.acknowledged", target_id=str(alert.pk), actor=operator).exists()


def test_a_second_acknowledgement_is_refused_naming_the_first():
    alert = make_alert()
    services.acknowledge_alert(alert, by=make_user("Operator", username="asha"))

    with pytest.raises(services.AlertConflict, match="asha acknowledged"):
        services.acknowledge_alert(alert, by=make_user("Operator"))


def test_a_resolved_alert_cannot_be_acknowledged_or_resolved_again():
    alert = make_alert(status="resolved")

    with pytest.raises(services.AlertConflict):
        services.acknowledge_alert(alert, by=make_user("Operator"))
    with pytest.raises(services.AlertConflict):
        services.resolve_alert(alert, by=make_user("Operator"))


def test_withdrawing_an_acknowledgement_clears_it():
    alert = make_alert()
    operator = make_user("Operator")
    services.acknowledge_alert(alert, by=operator)

    services.unacknowledge_alert(alert, by=operator)

    alert.refresh_from_db()
    assert alert.acknowledged_at is None and alert.acknowledged_by is None
    with pytest.raises(services.AlertConflict):
        services.unacknowledge_alert(alert, by=operator)


def test_resolving_by_hand_keeps_the_note_and_asks_for_a_resolved_message_only_if_firing_was_sent():
    notified = make_alert(last_notified_at=timezone.now())
    quiet = make_alert()
    operator = make_user("Operator")

    services.resolve_alert(notified, by=operator, note="Restarted the worker")
    services.resolve_alert(quiet, by=operator)

    notified.refresh_from_db()
    quiet.refresh_from_db()
    assert notified.status == "resolved" and notified.resolved_by == operator
    assert notified.resolve_note == "Restarted the worker"
    assert notified.notify_seq == 1 and notified.notify_kind == "resolved"
    assert quiet.notify_seq == 0


def test_a_comment_must_say_something():
    alert = make_alert()

    with pytest.raises(ValidationError) as caught:
        services.comment_on_alert(alert, by=make_user("Operator"), comment="   ")

    assert "comment" in caught.value.message_dict
    services.comment_on_alert(alert, by=make_user("Operator"), comment="Vendor says 20 min")
    assert AlertEvent.objects.filter(alert=alert, kind="comment", message="Vendor says 20 min").exists()


def test_a_silence_needs_matchers_a_reason_and_a_future_end():
    operator = make_user("Operator")
    now = timezone.now()

    with pytest.raises(ValidationError) as caught:
        services.create_silence(matchers="", comment="", by=operator, starts_at=now, ends_at=now - timedelta(minutes=1))

    assert set(caught.value.message_dict) == {"matchers", "comment", "ends_at"}
    with pytest.raises(ValidationError) as caught:
        services.create_silence(matchers='host=~"(broken"', comment="x", by=operator, duration=timedelta(hours=1))
    assert "regular expression" in caught.value.message_dict["matchers"][0]
    with pytest.raises(ValidationError) as caught:
        services.create_silence(matchers='host="a"', comment="x", by=operator, duration=timedelta(days=91))
    assert "90 days" in caught.value.message_dict["ends_at"][0]
    assert not Silence.objects.exists()


def test_a_silence_covers_the_open_alerts_it_matches_and_only_those():
    rule = make_rule()
    web1 = make_alert(rule, labels={"host": "web-1"})
    web2 = make_alert(rule, labels={"host": "web-2"})
    operator = make_user("Operator")

    silence = services.create_silence(matchers='host="web-1"', comment="Disk swap tonight", by=operator,
                                      duration=timedelta(hours=2))

    web1.refresh_from_db()
    web2.refresh_from_db()
    assert web1.silenced_by == silence and web2.silenced_by is None
    assert services.is_muted(web1) and not services.is_muted(web2)
    assert AlertEvent.objects.filter(alert=web1, kind="silenced").exists()
    assert AuditEntry.objects.filter(action="silence.created", actor=operator).exists()


def test_expiring_a_silence_unmutes_its_alerts_and_cannot_happen_twice():
    alert = make_alert(labels={"host": "web-1"})
    operator = make_user("Operator")
    silence = services.create_silence(matchers='host="web-1"', comment="x", by=operator, duration=timedelta(hours=1))

    services.expire_silence(silence, by=operator)

    alert.refresh_from_db()
    assert alert.silenced_by is None
    assert AlertEvent.objects.filter(alert=alert, kind="unsilenced").exists()
    with pytest.raises(services.AlertConflict):
        services.expire_silence(silence, by=operator)


def test_a_silence_until_resolved_ends_when_its_alert_resolves():
    alert = make_alert(labels={"host": "web-1"})
    operator = make_user("Operator")
    silence = services.silence_alert(alert, by=operator, comment="Known, fixing", until_resolved=True)
    assert silence.expire_on_resolve and silence.is_active()

    services.resolve_alert(alert, by=operator)

    silence.refresh_from_db()
    assert silence.ended_at is not None and not silence.is_active()


def test_a_silence_that_starts_later_mutes_only_from_its_start():
    alert = make_alert(labels={"host": "web-1"})
    start = timezone.now() + timedelta(hours=1)
    services.create_silence(matchers='host="web-1"', comment="Window tonight", by=make_user("Operator"),
                            starts_at=start, duration=timedelta(hours=1))

    assert not services.is_muted(alert)
    assert services.is_muted(alert, at=start + timedelta(minutes=5))
    assert not services.is_muted(alert, at=start + timedelta(hours=2))


def test_changing_a_silence_extends_it_and_is_audited():
    operator = make_user("Operator")
    silence = services.create_silence(matchers='host="a"', comment="x", by=operator, duration=timedelta(hours=1))
    later = silence.ends_at + timedelta(hours=1)

    services.update_silence(silence, by=operator, ends_at=later, comment="Longer job")

    silence.refresh_from_db()
    assert silence.ends_at == later and silence.comment == "Longer job"
    assert AuditEntry.objects.filter(action="silence.changed").exists()
    with pytest.raises(ValidationError):
        services.update_silence(silence, by=operator, ends_at=timezone.now() - timedelta(minutes=1))


@pytest.mark.parametrize("at, inside", [
    ("2026-11-22 02:30", True),   # Sunday night, inside 01:00–04:00
    ("2026-11-22 04:30", False),
    ("2026-11-23 02:30", False),  # Monday
])
def test_a_maintenance_window_holds_on_its_days_and_hours(at, inside):
    MaintenanceWindow.objects.create(name="Sunday patching", matchers='host="db"', days=[6],
                                     start_time=datetime.time(1, 0), end_time=datetime.time(4, 0), timezone="UTC")
    moment = datetime.datetime.fromisoformat(at).replace(tzinfo=datetime.UTC)

    assert (services.maintenance_for({"host": "db"}, at=moment) is not None) == inside
    assert services.maintenance_for({"host": "web"}, at=moment) is None


def test_a_window_crossing_midnight_belongs_to_the_day_it_starts():
    start, end = datetime.time(23, 0), datetime.time(5, 0)
    saturday_late = datetime.datetime(2026, 11, 21, 23, 30, tzinfo=datetime.UTC)
    sunday_early = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.UTC)
    sunday_noon = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.UTC)

    assert services.window_is_open([5], start, end, "UTC", saturday_late)
    assert services.window_is_open([5], start, end, "UTC", sunday_early)
    assert not services.window_is_open([5], start, end, "UTC", sunday_noon)
    assert not services.window_is_open([6], start, end, "UTC", sunday_early)


def test_the_snapshot_lists_firing_before_pending_and_worst_first_and_counts_the_badge():
    low = make_alert(make_rule(severity="low"))
    critical = make_alert(make_rule(severity="critical"))
    pending = make_alert(make_rule(severity="critical"), status="pending")
    make_alert(status="resolved")
    services.acknowledge_alert(low, by=make_user("Operator"))

    snapshot = services.alerts_snapshot()

    assert [a["id"] for a in snapshot["alerts"]] == [critical.pk, low.pk, pending.pk]
    assert snapshot["counts"] == {"firing": 2, "pending": 1, "unacknowledged": 1}
    assert len(snapshot["resolved"]) == 1
    assert Alert.objects.count() == 4
