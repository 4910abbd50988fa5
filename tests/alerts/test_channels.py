"""Channels: what a URL may point at (private addresses refused by default), secrets kept, "send test"."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from alerts.models import AlertEventKind, Notification, NotificationStatus, NotifyKind
from alerts.notify import dispatch_due, send_notification, send_test
from alerts.transports import PermanentSendError, send_apprise, validate_channel_url
from opscenter.models import AuditEntry
from tests.alerts.factories import Receiver, fire, make_channel, make_rule
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def default_policy(settings):
    """The shipped defaults: nothing private allowed."""
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = []
    return settings


def url_error(url: str) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_channel_url(url)
    return caught.value.message_dict["url"][0]


@pytest.mark.parametrize("url", [
    "json://127.0.0.1:8080/hook",
    "jsons://10.1.2.3/hook",
    "xml://192.168.1.20/hook",
    "form://169.254.169.254/latest/meta-data",
    "json://[::1]:9000/hook",
    "json://localhost:8080/hook",  # a name that resolves to loopback
    "ntfy://localhost/alerts",
    "mmost://10.0.0.7/abcdefghijklmnop",
])
def test_a_private_or_loopback_target_is_refused_by_default(default_policy, url):
    message = url_error(url)
    assert message.startswith("Refused:") and "non-public address" in message
    assert "OUTBOUND_ALLOWED_HOSTS" in message


def test_a_listed_host_or_the_allow_private_switch_lets_a_private_target_through(default_policy):
    default_policy.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    validate_channel_url("json://127.0.0.1:8080/hook")
    with pytest.raises(ValidationError):
        validate_channel_url("json://10.1.2.3/hook")
    default_policy.OUTBOUND_ALLOW_PRIVATE = True
    validate_channel_url("json://10.1.2.3/hook")


def test_services_whose_host_is_a_token_are_not_address_checked(default_policy):
    validate_channel_url("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general")
    validate_channel_url("ntfy://opscenter-alerts")  # ntfy.sh, the cloud mode: the "host" is the topic


@pytest.mark.parametrize(("url", "expected"), [
    ("", "Give an Apprise URL"),
    ("hooks.example.com/alerts", "This is not an Apprise URL"),
    ("gopher://example.com/x", "Apprise does not know the scheme “gopher://”."),
    ("tgram://not-a-token/", "Apprise cannot use this tgram:// URL"),
])
def test_a_url_apprise_cannot_use_gets_a_field_error_saying_why(default_policy, url, expected):
    assert url_error(url).startswith(expected)


def test_errors_never_repeat_the_secret_parts_of_a_url(default_policy, caplog):
    caplog.set_level(logging.DEBUG, logger="apprise")
    message = url_error("json://admin:hunter2hunter2@10.0.0.1/hook/s3cr3t-t0ken-value")
    assert "hunter2hunter2" not in message and "s3cr3t-t0ken-value" not in message
    url_error("tgram://s3cr3t-t0ken-value/")
    # Apprise's own log lines (they reach the log store) lose the URL too.
    assert caplog.records and all("s3cr3t-t0ken-value" not in r.getMessage() for r in caplog.records)


def test_a_target_allowed_when_saved_is_checked_again_at_send_time(default_policy):
    with Receiver() as receiver:
        default_policy.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
        channel = make_channel(receiver.url(), name="Was allowed")
        validate_channel_url(channel.url)
        default_policy.OUTBOUND_ALLOWED_HOSTS = []  # the policy tightened since
        t0 = timezone.now()
        alert = fire(make_rule(channels=[channel]), at=t0)
        dispatch_due(t0)
        notification = Notification.objects.get()
        assert send_notification(notification.pk, now=t0) == "failed"
        assert receiver.requests == []

    notification.refresh_from_db()
    assert notification.status == NotificationStatus.FAILED and notification.attempts == 1
    assert notification.last_error.startswith("Refused: 127.0.0.1 resolves to the non-public address")
    alert.refresh_from_db()
    assert alert.notification_failed
    assert alert.events.filter(kind=AlertEventKind.NOTIFICATION_FAILED).count() == 1


def test_a_name_resolving_to_loopback_is_refused_at_send_time(default_policy):
    with Receiver() as receiver:
        with pytest.raises(PermanentSendError, match="localhost resolves to the non-public address"):
            send_apprise(receiver.url(host="localhost"), title="t", body="b", timeout=2)
        assert receiver.requests == []


def test_send_test_delivers_through_the_same_transport_and_records_it(default_policy):
    default_policy.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    admin = make_user("Admin", username="admin-tester")
    with Receiver() as receiver:
        channel = make_channel(receiver.url(), name="Ops webhook")
        ok, message = send_test(channel, by=admin)

    assert (ok, message) == (True, "Sent a test message to Ops webhook.")
    (status, headers, body), = receiver.requests
    assert body["title"] == "OpsCenter test notification: Ops webhook"
    assert "sent by admin-tester" in body["message"]
    channel.refresh_from_db()
    assert channel.last_test_ok is True and channel.last_test_error == "" and channel.last_test_at
    test_message = Notification.objects.get(kind=NotifyKind.TEST)
    assert test_message.status == NotificationStatus.SENT and headers["Idempotency-Key"] == test_message.dedupe_key
    assert list(test_message.attempt_rows.values_list("ok", flat=True)) == [True]
    audit = AuditEntry.objects.get(action="channel.tested")
    assert audit.actor == admin and audit.changes["ok"] is True and audit.target_id == str(channel.pk)


def test_send_test_to_a_refused_target_says_why_and_each_test_is_its_own_ledger_row(default_policy):
    admin = make_user("Admin", username="admin-tester2")
    with Receiver() as receiver:
        channel = make_channel(receiver.url(), name="Loopback")
        first = send_test(channel, by=admin)
        second = send_test(channel, by=admin)
        assert receiver.requests == []

    assert first[0] is False and first[1].startswith("Refused: 127.0.0.1 resolves to the non-public address")
    assert second == first
    channel.refresh_from_db()
    assert channel.last_test_ok is False and channel.last_test_error == first[1]
    tests = Notification.objects.filter(kind=NotifyKind.TEST)
    assert tests.count() == 2 and set(tests.values_list("status", flat=True)) == {NotificationStatus.FAILED}
    assert len(set(tests.values_list("dedupe_key", flat=True))) == 2
    # A failed test is a fact about the channel, not about any alert: it is never retried.
    assert dispatch_due()["queued"] == 0
    assert AuditEntry.objects.filter(action="channel.tested", changes__ok=False).count() == 2
