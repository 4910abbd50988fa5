"""A real receiver on loopback: retries with back-off until it recovers, at least once, one dedupe key."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from alerts.models import AlertEventKind, Notification, NotificationStatus
from alerts.notify import dispatch_due, send_notification
from tests.agents.conftest import agent_worker, worker  # noqa: F401  (the real worker fixtures)
from tests.alerts.factories import Receiver, fire, make_channel, make_rule

pytestmark = pytest.mark.django_db


@pytest.fixture
def loopback_allowed(settings):
    """The test settings explicitly allow the loopback receiver (refused by default)."""
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.ALERTS_NOTIFY_BACKOFF_SECONDS = 10
    settings.ALERTS_NOTIFY_BACKOFF_MAX_SECONDS = 60
    settings.ALERTS_NOTIFY_MAX_ATTEMPTS = 12
    settings.ALERTS_NOTIFY_TIMEOUT_SECONDS = 5
    return settings


def drive(notification: Notification, start, *, until_status: str, step=timedelta(seconds=5), limit=60) -> list[str]:
    """Run the beat sweep and the send task every `step` of simulated time until the status is reached."""
    outcomes = []
    now = start
    for _ in range(limit):
        dispatch_due(now)
        outcomes.append(send_notification(notification.pk, now=now))
        notification.refresh_from_db()
        if notification.status == until_status:
            return outcomes
        now += step
    raise AssertionError(f"still {notification.status} after {limit} steps: {outcomes}")


def test_a_receiver_failing_for_a_while_gets_the_notification_once_it_recovers(loopback_allowed):
    with Receiver(statuses=[500, 500, 500]) as receiver:
        rule = make_rule(name="Disk almost full", severity="critical",
                         channels=[make_channel(receiver.url("/hook"), name="On-call webhook")])
        t0 = timezone.now()
        alert = fire(rule, at=t0, labels={"host": "web-1"})

        counts = dispatch_due(t0)
        assert counts["notifications"] == 1
        notification = Notification.objects.get()
        outcomes = drive(notification, t0, until_status=NotificationStatus.SENT)

        # Back-off between tries: 10 s, 20 s, 40 s; the sweeps in between found nothing due.
        assert outcomes.count("retry") == 3 and outcomes.count("sent") == 1
        assert "skipped" in outcomes
        assert [status for status, _, _ in receiver.requests] == [500, 500, 500, 200]
        keys = {headers.get("Idempotency-Key") for _, headers, _ in receiver.requests}
        assert keys == {notification.dedupe_key}
        assert all(notification.dedupe_key in body["message"] for _, _, body in receiver.requests)
        assert receiver.requests[-1][2]["title"] == "[FIRING:1] Disk almost full (critical)"

        attempts = list(notification.attempt_rows.values_list("ok", "error"))
        assert [ok for ok, _ in attempts] == [False, False, False, True]
        assert all("error=500" in error for ok, error in attempts if not ok)
        assert notification.attempts == 4 and notification.sent_at is not None and notification.last_error == ""
        assert list(alert.events.filter(kind=AlertEventKind.NOTIFIED).values_list("data__notification", flat=True)) \
            == [notification.pk]
        alert.refresh_from_db()
        assert not alert.notification_failed and alert.last_notified_at == t0

        # Nothing more: another pass records no new message and the sent one is never sent again.
        later = t0 + timedelta(minutes=10)
        assert dispatch_due(later)["notifications"] == 0
        assert send_notification(notification.pk, now=later) == "skipped"
        assert Notification.objects.count() == 1 and len(receiver.requests) == 4


def test_a_send_is_not_tried_again_before_its_back_off_has_passed(loopback_allowed):
    with Receiver(statuses=[503]) as receiver:
        t0 = timezone.now()
        fire(make_rule(channels=[make_channel(receiver.url())]), at=t0)
        dispatch_due(t0)
        notification = Notification.objects.get()
        assert send_notification(notification.pk, now=t0) == "retry"
        notification.refresh_from_db()
        assert notification.status == NotificationStatus.PENDING
        assert notification.next_attempt_at == t0 + timedelta(seconds=10)
        assert "error=503" in notification.last_error

        assert send_notification(notification.pk, now=t0 + timedelta(seconds=9)) == "skipped"
        assert len(receiver.requests) == 1
        assert send_notification(notification.pk, now=t0 + timedelta(seconds=10)) == "sent"
        assert len(receiver.requests) == 2


def test_a_receiver_that_never_recovers_makes_the_failure_visible_on_the_alert(loopback_allowed):
    loopback_allowed.ALERTS_NOTIFY_MAX_ATTEMPTS = 3
    with Receiver(statuses=[500] * 10) as receiver:
        t0 = timezone.now()
        alert = fire(make_rule(channels=[make_channel(receiver.url(), name="Broken hook")]), at=t0)
        dispatch_due(t0)
        notification = Notification.objects.get()
        outcomes = drive(notification, t0, until_status=NotificationStatus.FAILED)

    assert outcomes.count("retry") == 2 and outcomes[-1] == "failed"
    assert len(receiver.requests) == 3
    assert notification.last_error.startswith("Gave up after 3 attempts.")
    alert.refresh_from_db()
    assert alert.notification_failed
    event = alert.events.get(kind=AlertEventKind.NOTIFICATION_FAILED)
    assert event.message.startswith("Could not notify Broken hook: Gave up after 3 attempts.")


def test_a_client_error_from_the_receiver_is_not_retried(loopback_allowed):
    with Receiver(statuses=[404]) as receiver:
        t0 = timezone.now()
        alert = fire(make_rule(channels=[make_channel(receiver.url("/wrong-path"))]), at=t0)
        dispatch_due(t0)
        notification = Notification.objects.get()
        assert send_notification(notification.pk, now=t0) == "failed"

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED and "error=404" in notification.last_error
    assert len(receiver.requests) == 1
    alert.refresh_from_db()
    assert alert.notification_failed


def test_a_send_whose_worker_died_is_sent_again_with_the_same_dedupe_key(loopback_allowed):
    with Receiver() as receiver:
        t0 = timezone.now()
        fire(make_rule(channels=[make_channel(receiver.url())]), at=t0)
        dispatch_due(t0)
        notification = Notification.objects.get()
        # A worker claimed it and died: the row says "sending" until its lease runs out.
        Notification.objects.filter(pk=notification.pk).update(
            status=NotificationStatus.SENDING, attempts=1, lease_until=t0 + timedelta(seconds=10))

        assert send_notification(notification.pk, now=t0 + timedelta(seconds=5)) == "skipped"
        counts = dispatch_due(t0 + timedelta(seconds=11))
        assert counts["queued"] == 1
        assert send_notification(notification.pk, now=t0 + timedelta(seconds=11)) == "sent"

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.SENT and notification.attempts == 2
    errors = list(notification.attempt_rows.values_list("ok", "error"))
    assert errors[0][0] is False and "worker lost" in errors[0][1] and errors[1] == (True, "")
    assert [headers["Idempotency-Key"] for _, headers, _ in receiver.requests] == [notification.dedupe_key]


def test_a_disabled_channel_fails_its_waiting_notification_with_the_reason(loopback_allowed):
    with Receiver() as receiver:
        t0 = timezone.now()
        channel = make_channel(receiver.url(), name="Paused hook")
        alert = fire(make_rule(channels=[channel]), at=t0)
        dispatch_due(t0)
        channel.enabled = False
        channel.save()
        notification = Notification.objects.get()
        assert send_notification(notification.pk, now=t0) == "failed"
        assert receiver.requests == []

    notification.refresh_from_db()
    assert notification.last_error == "The channel “Paused hook” is disabled; enable it to send to it."
    alert.refresh_from_db()
    assert alert.notification_failed


def test_a_deleted_channel_fails_its_waiting_notification_with_the_reason(loopback_allowed):
    t0 = timezone.now()
    channel = make_channel("json://127.0.0.1:9/hook", name="Gone")
    fire(make_rule(channels=[channel]), at=t0)
    dispatch_due(t0)
    channel.delete()
    notification = Notification.objects.get()
    assert notification.channel_name == "Gone"
    assert send_notification(notification.pk, now=t0) == "failed"
    notification.refresh_from_db()
    assert notification.last_error == "The channel was deleted."


@pytest.mark.django_db(transaction=True)
def test_a_requested_notification_goes_out_through_the_real_worker_and_broker(worker, loopback_allowed):  # noqa: F811
    # The worker runs with OUTBOUND_ALLOWED_HOSTS=127.0.0.1 (tests.agents.conftest).
    with Receiver() as receiver:
        rule = make_rule(name="Webhook silent", channels=[make_channel(receiver.url(), name="Hook")])
        with transaction.atomic():
            # Committing the request queues alerts.tasks.dispatch_notifications, which queues the send.
            alert = fire(rule, labels={"source": "whatsapp"})
        deadline = time.monotonic() + 20
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        while time.monotonic() < deadline:
            notification = Notification.objects.filter(alerts=alert).first()
            if notification and notification.status == NotificationStatus.SENT:
                break
            time.sleep(0.1)

    (status, headers, body), = receiver.requests
    assert body["title"] == "[FIRING:1] Webhook silent (high)"
    assert notification.status == NotificationStatus.SENT and headers["Idempotency-Key"] == notification.dedupe_key
    assert alert.events.filter(kind=AlertEventKind.NOTIFIED).count() == 1
