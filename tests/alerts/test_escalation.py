"""Escalation and repeats over simulated time: the ladder climbs on time, acknowledging stops it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, AlertEventKind, Notification, NotifyKind
from alerts.notify import dispatch_due, routing_channels
from alerts.services import acknowledge_alert, unacknowledge_alert
from tests.alerts.factories import fire, make_channel, make_policy, make_rule
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def ladder():
    """A rule paging `first`, escalating to `lead` after 5 min and to `manager` after 15 min."""
    first, lead, manager = (make_channel(name=name) for name in ("First line", "Team lead", "Manager"))
    policy = make_policy([(5, [lead]), (15, [manager])])
    rule = make_rule(name="Agent failure rate", severity="critical", channels=[first], escalation_policy=policy,
                     repeat_interval_seconds=0)
    return rule, first, lead, manager


def sent_to(kind: str) -> list[tuple[str, int]]:
    return list(Notification.objects.filter(kind=kind).order_by("id").values_list("channel_name", "escalation_level"))


def minutes(t0, n: float):
    return t0 + timedelta(minutes=n)


def test_an_unacknowledged_alert_climbs_the_ladder_at_5_and_15_minutes(ladder):
    rule, first, lead, manager = ladder
    t0 = timezone.now()
    alert = fire(rule, at=t0)
    assert dispatch_due(t0)["notifications"] == 1
    assert sent_to(NotifyKind.FIRING) == [("First line", 0)]

    for at in (1, 4, 4.99):
        assert dispatch_due(minutes(t0, at))["escalated"] == 0
    assert sent_to(NotifyKind.ESCALATION) == []

    counts = dispatch_due(minutes(t0, 5))
    assert counts["escalated"] == 1 and counts["notifications"] == 1
    alert.refresh_from_db()
    assert alert.escalation_level == 1 and alert.escalated_at == minutes(t0, 5)
    assert sent_to(NotifyKind.ESCALATION) == [("Team lead", 1)]

    for at in (6, 10, 14.9):
        assert dispatch_due(minutes(t0, at))["escalated"] == 0
    dispatch_due(minutes(t0, 15))
    alert.refresh_from_db()
    assert alert.escalation_level == 2
    assert sent_to(NotifyKind.ESCALATION) == [("Team lead", 1), ("Manager", 2)]

    # The top of the ladder: nothing more, however long it fires.
    assert dispatch_due(minutes(t0, 120))["escalated"] == 0
    assert list(alert.events.filter(kind=AlertEventKind.ESCALATED).values_list("data__level", flat=True)) == [1, 2]
    title = Notification.objects.get(kind=NotifyKind.ESCALATION, escalation_level=2).title
    assert title == "[ESCALATED L2:1] Agent failure rate (critical)"


def test_acknowledging_stops_the_escalation_and_everyone_paged_hears_who_took_it(ladder):
    rule, first, lead, manager = ladder
    operator = make_user("Operator", username="oncall-ana")
    t0 = timezone.now()
    alert = fire(rule, at=t0)
    dispatch_due(t0)
    dispatch_due(minutes(t0, 5))  # level 1: the team lead was paged
    acknowledge_alert(alert, by=operator, comment="Looking at the agent logs")
    dispatch_due(minutes(t0, 6))

    assert sorted(sent_to(NotifyKind.ACKNOWLEDGED)) == [("First line", 0), ("Team lead", 0)]
    body = Notification.objects.filter(kind=NotifyKind.ACKNOWLEDGED).first().body
    assert "Acknowledged by oncall-ana" in body and "Looking at the agent logs" in body

    assert dispatch_due(minutes(t0, 30))["escalated"] == 0
    alert.refresh_from_db()
    assert alert.escalation_level == 1
    assert sent_to(NotifyKind.ESCALATION) == [("Team lead", 1)]


def test_an_alert_acknowledged_before_the_first_step_never_escalates(ladder):
    rule, *_ = ladder
    t0 = timezone.now()
    alert = fire(rule, at=t0)
    dispatch_due(t0)
    acknowledge_alert(alert, by=make_user("Operator"))
    for at in (5, 15, 60):
        assert dispatch_due(minutes(t0, at))["escalated"] == 0
    assert sent_to(NotifyKind.ESCALATION) == []


def test_withdrawing_an_acknowledgement_resumes_the_ladder_after_the_steps_own_delay(ladder):
    rule, *_ = ladder
    operator = make_user("Operator")
    t0 = timezone.now()
    alert = fire(rule, at=t0)
    dispatch_due(t0)
    acknowledge_alert(alert, by=operator)
    dispatch_due(minutes(t0, 1))
    unacknowledge_alert(alert, by=operator)
    resumed = alert.events.get(kind=AlertEventKind.UNACKNOWLEDGED).at

    # Step 1 was due 5 min after firing; withdrawn at ~now, it waits 5 min from then.
    assert dispatch_due(resumed + timedelta(minutes=4, seconds=59))["escalated"] == 0
    assert dispatch_due(resumed + timedelta(minutes=5))["escalated"] == 1
    # Step 2 is 10 min after step 1 (15 − 5).
    assert dispatch_due(resumed + timedelta(minutes=14, seconds=59))["escalated"] == 0
    assert dispatch_due(resumed + timedelta(minutes=15))["escalated"] == 1


def test_a_silenced_alert_does_not_escalate_while_silenced(ladder):
    from alerts.services import create_silence

    rule, *_ = ladder
    t0 = timezone.now()
    alert = fire(rule, at=t0, labels={"agent": "writer"})
    dispatch_due(t0)
    create_silence(matchers='agent="writer"', comment="Known, fixing", by=make_user("Operator"),
                   starts_at=t0, ends_at=minutes(t0, 20))
    assert dispatch_due(minutes(t0, 10))["escalated"] == 0
    # Once the silence is over the ladder goes on, one step per pass.
    assert dispatch_due(minutes(t0, 21))["escalated"] == 1
    assert dispatch_due(minutes(t0, 21.2))["escalated"] == 1
    alert.refresh_from_db()
    assert alert.escalation_level == 2


def test_escalation_without_a_policy_or_past_the_last_step_does_nothing():
    t0 = timezone.now()
    fire(make_rule(channels=[make_channel()]), at=t0)
    dispatch_due(t0)
    assert dispatch_due(minutes(t0, 600))["escalated"] == 0


def test_a_firing_unacknowledged_alert_is_repeated_after_the_repeat_interval(ladder):
    rule, first, lead, manager = ladder
    rule.repeat_interval_seconds = 3600
    rule.escalation_policy = None
    rule.save()
    t0 = timezone.now()
    alert = fire(rule, at=t0)
    dispatch_due(t0)
    assert dispatch_due(minutes(t0, 59))["repeats"] == 0
    assert dispatch_due(minutes(t0, 60))["repeats"] == 1
    assert sent_to(NotifyKind.REPEAT) == [("First line", 0)]
    assert Notification.objects.get(kind=NotifyKind.REPEAT).title == "[STILL FIRING:1] Agent failure rate (critical)"
    alert.refresh_from_db()
    assert alert.last_notified_at == minutes(t0, 60)
    # The next one is an interval after the last message, not after firing.
    assert dispatch_due(minutes(t0, 119))["repeats"] == 0
    assert dispatch_due(minutes(t0, 120))["repeats"] == 1

    acknowledge_alert(alert, by=make_user("Operator"))
    dispatch_due(minutes(t0, 121))
    assert dispatch_due(minutes(t0, 600))["repeats"] == 0
    assert len(sent_to(NotifyKind.REPEAT)) == 2


def test_repeats_reach_every_tier_the_alert_has_escalated_to(ladder):
    rule, *_ = ladder
    rule.repeat_interval_seconds = 30 * 60
    rule.save()
    t0 = timezone.now()
    alert = fire(rule, at=t0)
    dispatch_due(t0)
    dispatch_due(minutes(t0, 5))
    dispatch_due(minutes(t0, 15))  # an escalation counts as a message: repeats time from the last one
    assert dispatch_due(minutes(t0, 44))["repeats"] == 0
    assert dispatch_due(minutes(t0, 45))["repeats"] == 1
    assert sorted(sent_to(NotifyKind.REPEAT)) == [("First line", 0), ("Manager", 0), ("Team lead", 0)]
    alert.refresh_from_db()
    assert [c.name for c in routing_channels(alert, NotifyKind.REPEAT)] == ["First line", "Manager", "Team lead"]
    assert [c.name for c in routing_channels(alert, NotifyKind.ESCALATION)] == ["Manager"]


def test_a_repeat_interval_of_zero_never_repeats():
    t0 = timezone.now()
    fire(make_rule(channels=[make_channel()], repeat_interval_seconds=0), at=t0)
    dispatch_due(t0)
    assert dispatch_due(minutes(t0, 24 * 60))["repeats"] == 0
    assert Alert.objects.get().notify_seq == 1


def test_a_page_held_back_by_a_silence_reaches_the_first_line_before_the_ladder_goes_on(ladder):
    from alerts.services import create_silence

    rule, *_ = ladder
    t0 = timezone.now()
    create_silence(matchers='agent="writer"', comment="Deploying", by=make_user("Operator"),
                   starts_at=t0, ends_at=minutes(t0, 20))
    alert = fire(rule, at=t0, labels={"agent": "writer"})
    assert dispatch_due(t0)["held_back"] == 1
    assert dispatch_due(minutes(t0, 10))["escalated"] == 0

    counts = dispatch_due(minutes(t0, 21))
    assert counts["released"] == 1 and counts["escalated"] == 0
    assert sent_to(NotifyKind.FIRING) == [("First line", 0)]
    assert dispatch_due(minutes(t0, 21.2))["escalated"] == 1
    assert sent_to(NotifyKind.ESCALATION) == [("Team lead", 1)]
    alert.refresh_from_db()
    assert alert.escalation_level == 1
