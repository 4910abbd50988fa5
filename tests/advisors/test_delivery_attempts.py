"""The delivery attempt ledger: one row per try, the claim before the call, back-off and
retries, never sending twice (duplicate tasks, a worker lost mid-send), and the retry by hand
in the service, the admin and the API."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from advisors import services, tasks
from advisors.models import AttemptOutcome, ContentStatus, Delivery, DeliveryAttempt, DeliveryStatus
from advisors.services import (
    UNKNOWN_OUTCOME,
    DeliveryRetry,
    TransitionConflict,
    deliver,
    delivery_wait,
    reap_deliveries,
    retry_delay,
    retry_delivery,
)
from advisors.tasks import deliver_content
from advisors.transports import Sent, Transport, register_transport
from opscenter.models import AuditEntry
from tests.advisors.test_transports import HOOK, SECRET, FakeNetwork, fake_network
from tests.factories import make_content, make_delivery, make_user


@pytest.fixture
def network(monkeypatch) -> FakeNetwork:
    return fake_network(monkeypatch)


@pytest.fixture
def channel(settings):
    """Deliveries go through the real webhook transport; only the network under it is fake."""
    settings.DELIVERY_CHANNEL = "webhook"
    settings.DELIVERY_WEBHOOK_URL = HOOK
    settings.DELIVERY_WEBHOOK_SECRET = SECRET
    settings.OUTBOUND_ALLOWED_HOSTS = ["hooks.example.com"]
    settings.DELIVERY_MAX_ATTEMPTS = 5
    settings.DELIVERY_RETRY_DELAY_SECONDS = 10
    settings.DELIVERY_RETRY_MAX_DELAY_SECONDS = 25
    settings.DELIVERY_TIMEOUT_SECONDS = 5
    return settings


@pytest.fixture
def no_jitter(monkeypatch):
    monkeypatch.setattr(services.random, "random", lambda: 0.0)


def queued_delivery() -> Delivery:
    return make_delivery(make_content(status="approved"), channel="webhook")


def attempts_of(delivery: Delivery) -> list[tuple[int, str]]:
    return list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("number", "outcome"))


@pytest.fixture
def retries(monkeypatch) -> list[float]:
    """Record the countdown of every retry the task asks Celery for (it still retries, eagerly)."""
    seen: list[float] = []
    original = deliver_content.retry

    def spy(*args, **kwargs):
        seen.append(kwargs.get("countdown"))
        return original(*args, **kwargs)

    monkeypatch.setattr(deliver_content, "retry", spy)
    return seen


# --- one row per try ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_successful_send_is_one_attempt_row_and_marks_the_delivery_sent(network, channel):
    delivery = queued_delivery()
    network.answers = [httpx.Response(202, json={"id": "recv-1"})]

    done = deliver(delivery.pk)

    assert done.status == DeliveryStatus.SENT and done.attempts == 1
    assert done.provider_message_id == "recv-1" and done.sent_at is not None and done.delivered_at is None
    assert done.lease_expires_at is None and done.last_error == ""
    [attempt] = DeliveryAttempt.objects.filter(delivery=delivery)
    assert (attempt.number, attempt.outcome, attempt.http_status, attempt.provider_message_id) == (
        1, AttemptOutcome.SENT, 202, "recv-1"
    )
    assert attempt.finished_at >= attempt.started_at and attempt.duration_ms is not None and attempt.error == ""
    # Accepted by the channel is not delivered: the item waits for a receipt.
    delivery.content.refresh_from_db()
    assert delivery.content.status == ContentStatus.APPROVED
    assert AuditEntry.objects.get(action="delivery.sent").changes == {"status": "sent", "attempt": 1}


@pytest.mark.django_db(transaction=True)
def test_the_channel_is_called_with_the_row_claimed_and_no_transaction_open(network, channel):
    delivery = queued_delivery()
    seen = {}

    def answer(request):
        # What another worker would see while the call is in flight.
        row = Delivery.objects.get(pk=delivery.pk)
        attempt = DeliveryAttempt.objects.get(delivery=delivery)
        seen.update(
            in_transaction=connection.in_atomic_block,
            status=row.status,
            lease=row.lease_expires_at,
            attempt=(attempt.number, attempt.outcome, attempt.finished_at),
        )
        return httpx.Response(200, json={"id": "x"})

    network.answers = [answer]
    before = timezone.now()
    deliver(delivery.pk)

    assert seen["in_transaction"] is False
    assert seen["status"] == DeliveryStatus.SENDING
    assert seen["attempt"] == (1, AttemptOutcome.UNKNOWN, None)  # written before the call, open
    lease = (seen["lease"] - before).total_seconds()
    assert 4 * 5 + 60 - 2 <= lease <= 4 * 5 + 60 + 2


@pytest.mark.django_db
def test_a_permanent_error_fails_the_delivery_and_its_content(network, channel):
    delivery = queued_delivery()
    network.answers = [httpx.Response(400, text="unknown advisor")]

    done = deliver(delivery.pk)

    assert done.status == DeliveryStatus.FAILED and done.attempts == 1
    assert "HTTP 400" in done.last_error and "unknown advisor" in done.last_error
    assert attempts_of(delivery) == [(1, AttemptOutcome.PERMANENT_ERROR)]
    assert DeliveryAttempt.objects.get(delivery=delivery).http_status == 400
    delivery.content.refresh_from_db()
    assert delivery.content.status == ContentStatus.FAILED
    assert AuditEntry.objects.get(action="delivery.failed").changes["permanent"] is True


# --- back-off and retries -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_retryable_error_queues_the_delivery_again_after_its_back_off(network, channel, no_jitter):
    delivery = queued_delivery()
    network.answers = [httpx.Response(503, text="busy")]
    before = timezone.now()

    with pytest.raises(DeliveryRetry) as retry:
        deliver(delivery.pk)

    assert retry.value.delay == 10 and retry.value.permanent is False
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED and delivery.attempts == 1
    assert "HTTP 503" in delivery.last_error
    assert 9 <= (delivery.next_attempt_at - before).total_seconds() <= 11
    assert attempts_of(delivery) == [(1, AttemptOutcome.RETRYABLE_ERROR)]
    assert 8 <= delivery_wait(delivery.pk) <= 10  # an early duplicate task waits for it


@pytest.mark.django_db
def test_the_task_backs_off_honours_retry_after_and_sends_exactly_once(network, channel, no_jitter, retries):
    delivery = queued_delivery()
    network.answers = [
        httpx.Response(503, text="busy"),
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.ConnectError("connection reset"),
        httpx.Response(200, json={"id": "recv-77"}),
    ]

    deliver_content.apply(args=[delivery.pk])

    # 10 s, then what the receiver asked for, then 40 s capped at the 25 s maximum.
    assert retries == [10, 7, 25]
    assert attempts_of(delivery) == [
        (1, AttemptOutcome.RETRYABLE_ERROR),
        (2, AttemptOutcome.RETRYABLE_ERROR),
        (3, AttemptOutcome.RETRYABLE_ERROR),
        (4, AttemptOutcome.SENT),
    ]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT and delivery.attempts == 4
    assert delivery.provider_message_id == "recv-77"
    assert len(network.requests) == 4
    # Every try carries the same key, so a receiver that got a try whose answer was lost drops the repeat.
    assert {r.headers["Idempotency-Key"] for r in network.requests} == {f"delivery-{delivery.pk}"}
    assert AuditEntry.objects.filter(action="delivery.sent").count() == 1


@pytest.mark.django_db
def test_retryable_errors_give_up_after_the_last_attempt(network, channel, no_jitter, retries):
    channel.DELIVERY_MAX_ATTEMPTS = 3
    delivery = queued_delivery()
    network.answers = [httpx.Response(500, text="down")]

    deliver_content.apply(args=[delivery.pk])

    assert len(network.requests) == 3 and retries == [10, 20]
    assert attempts_of(delivery) == [(n, AttemptOutcome.RETRYABLE_ERROR) for n in (1, 2, 3)]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("Gave up after 3 attempts. Last error: The delivery webhook answered HTTP 500")
    delivery.content.refresh_from_db()
    assert delivery.content.status == ContentStatus.FAILED


def test_back_off_doubles_spreads_and_stops_at_the_maximum(settings):
    settings.DELIVERY_RETRY_DELAY_SECONDS = 30
    settings.DELIVERY_RETRY_MAX_DELAY_SECONDS = 1800
    assert [retry_delay(n, jitter=0) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(1, jitter=1) == 37.5
    assert retry_delay(12, jitter=0) == 1800
    assert retry_delay(1, retry_after=90) == 90
    assert retry_delay(1, retry_after=86400) == 1800


# --- never twice ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_duplicate_task_finds_nothing_to_claim(network, channel):
    delivery = queued_delivery()
    network.answers = [httpx.Response(200, json={"id": "recv-1"})]
    deliver_content.apply(args=[delivery.pk])
    deliver_content.apply(args=[delivery.pk])
    assert deliver(delivery.pk) is None
    assert len(network.requests) == 1
    assert attempts_of(delivery) == [(1, AttemptOutcome.SENT)]
    assert Delivery.objects.get(pk=delivery.pk).attempts == 1


@pytest.mark.django_db
def test_a_delivery_being_sent_is_left_alone_until_its_lease_ends(network, channel):
    delivery = queued_delivery()
    lease = timezone.now() + timedelta(seconds=90)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SENDING, attempts=1, lease_expires_at=lease)
    DeliveryAttempt.objects.create(delivery=delivery, number=1)

    assert deliver(delivery.pk) is None
    assert network.requests == []
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SENDING
    assert 89 <= delivery_wait(delivery.pk) <= 92  # a duplicate task looks again when the lease ends


@pytest.mark.django_db
def test_a_worker_lost_mid_send_leaves_an_unknown_outcome_that_is_never_sent_again(network, channel):
    delivery = queued_delivery()
    # The worker process dies inside the call: nothing after it runs.
    network.answers = [SystemExit("worker killed")]
    with pytest.raises(SystemExit):
        deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENDING
    assert attempts_of(delivery) == [(1, AttemptOutcome.UNKNOWN)]

    # Celery redelivers the task at once: the lease still runs, so nothing happens.
    network.answers = [httpx.Response(200, json={"id": "second-send"})]
    deliver_content.apply(args=[delivery.pk])
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SENDING

    # After the lease, the next look fails it as unknown: not sent again.
    Delivery.objects.filter(pk=delivery.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    deliver_content.apply(args=[delivery.pk])

    delivery.refresh_from_db()
    assert len(network.requests) == 1
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert delivery.last_error.startswith(UNKNOWN_OUTCOME)
    assert UNKNOWN_OUTCOME == "Outcome unknown — check the channel, then retry by hand"
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.outcome == AttemptOutcome.UNKNOWN and attempt.finished_at is not None
    assert "never reported back" in attempt.error
    delivery.content.refresh_from_db()
    assert delivery.content.status == ContentStatus.FAILED
    assert AuditEntry.objects.filter(action="delivery.outcome_unknown").count() == 1


@pytest.mark.django_db
def test_the_reaper_fails_sends_past_their_lease_and_requeues_lost_tasks(
    network, channel, monkeypatch, django_capture_on_commit_callbacks
):
    stuck, live, waiting, fresh = (queued_delivery() for _ in range(4))
    now = timezone.now()
    Delivery.objects.filter(pk=stuck.pk).update(
        status=DeliveryStatus.SENDING, attempts=2, lease_expires_at=now - timedelta(minutes=1)
    )
    DeliveryAttempt.objects.create(delivery=stuck, number=1, outcome=AttemptOutcome.RETRYABLE_ERROR, finished_at=now)
    DeliveryAttempt.objects.create(delivery=stuck, number=2)
    Delivery.objects.filter(pk=live.pk).update(status=DeliveryStatus.SENDING, lease_expires_at=now + timedelta(minutes=1))
    Delivery.objects.filter(pk=waiting.pk).update(next_attempt_at=now - timedelta(minutes=30))
    queued = []
    monkeypatch.setattr(tasks.deliver_content, "delay", lambda delivery_id: queued.append(delivery_id))

    with django_capture_on_commit_callbacks(execute=True):
        reaped = reap_deliveries()

    assert reaped == {"unknown": [stuck.pk], "requeued": [waiting.pk]}
    assert queued == [waiting.pk]
    assert Delivery.objects.get(pk=stuck.pk).status == DeliveryStatus.FAILED
    assert attempts_of(stuck) == [(1, AttemptOutcome.RETRYABLE_ERROR), (2, AttemptOutcome.UNKNOWN)]
    assert Delivery.objects.get(pk=live.pk).status == DeliveryStatus.SENDING
    assert Delivery.objects.get(pk=fresh.pk).status == DeliveryStatus.QUEUED
    # Pushed forward: the next reaper tick does not queue it a second time.
    assert reap_deliveries() == {"unknown": [], "requeued": []}
    assert network.requests == []


class ExplodingTransport(Transport):
    name = "exploding-test"

    def send(self, delivery):
        raise RuntimeError("bug after the provider took the message")


@pytest.mark.django_db
def test_an_unexpected_error_during_the_send_is_an_unknown_outcome_not_a_retry(settings):
    register_transport(ExplodingTransport)
    delivery = make_delivery(make_content(status="approved"), channel="exploding-test")
    with pytest.raises(RuntimeError):
        deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.last_error.startswith(UNKNOWN_OUTCOME)
    assert "RuntimeError: bug after the provider took the message" in delivery.last_error
    assert attempts_of(delivery) == [(1, AttemptOutcome.UNKNOWN)]


class LateTransport(Transport):
    """Answers "sent" only after the reaper gave the send up (a very slow channel)."""

    name = "late-test"

    def send(self, delivery):
        Delivery.objects.filter(pk=delivery.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert reap_deliveries()["unknown"] == [delivery.pk]
        return Sent(provider_message_id="late-1", delivered=False, http_status=200)


@pytest.mark.django_db
def test_an_answer_after_the_send_was_given_up_is_recorded_for_whoever_retries(monkeypatch):
    monkeypatch.setattr(tasks.deliver_content, "delay", lambda delivery_id: None)
    register_transport(LateTransport)
    delivery = make_delivery(make_content(status="approved"), channel="late-test")
    deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert "Attempt 1 answered after it was given up: sent, provider message id late-1" in delivery.last_error
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.outcome == AttemptOutcome.SENT and attempt.provider_message_id == "late-1"


# --- retry by hand ------------------------------------------------------------------------------------


def failed_delivery(network) -> Delivery:
    delivery = queued_delivery()
    network.answers = [httpx.Response(422, text="bad phone")]
    deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    return delivery


@pytest.mark.django_db
def test_retry_by_hand_queues_a_failed_delivery_again_audited_and_sends_it(
    network, channel, monkeypatch, django_capture_on_commit_callbacks
):
    delivery = failed_delivery(network)
    admin = make_user("Admin", username="anita")
    queued = []
    monkeypatch.setattr(tasks.deliver_content, "delay", lambda delivery_id: queued.append(delivery_id))

    with django_capture_on_commit_callbacks(execute=True):
        retry_delivery(delivery, by=admin)

    assert queued == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED and delivery.last_error == ""
    delivery.content.refresh_from_db()
    assert delivery.content.status == ContentStatus.APPROVED
    audit = AuditEntry.objects.get(action="delivery.retried")
    assert audit.actor == admin and audit.target_id == str(delivery.pk)
    assert audit.changes["status"] == ["failed", "queued"] and "bad phone" in audit.changes["last_error"]
    assert AuditEntry.objects.get(action="content.retry_delivery").actor == admin

    network.answers = [httpx.Response(200, json={"id": "recv-2"})]
    done = deliver(delivery.pk)
    assert done.status == DeliveryStatus.SENT and done.attempts == 2
    assert attempts_of(delivery) == [(1, AttemptOutcome.PERMANENT_ERROR), (2, AttemptOutcome.SENT)]


@pytest.mark.django_db
def test_a_retry_by_hand_starts_a_fresh_attempt_budget(network, channel, no_jitter):
    channel.DELIVERY_MAX_ATTEMPTS = 2
    delivery = queued_delivery()
    network.answers = [httpx.Response(500)]
    with pytest.raises(DeliveryRetry):
        deliver(delivery.pk)
    deliver(delivery.pk)
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.FAILED

    retry_delivery(delivery, by=make_user("Admin"))
    with pytest.raises(DeliveryRetry):  # attempt 3 is the first of the new budget, not over it
        deliver(delivery.pk)
    deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 4
    assert delivery.last_error.startswith("Gave up after 2 attempts")


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["queued", "sending", "sent", "delivered", "read"])
def test_only_a_failed_delivery_can_be_retried(status):
    delivery = make_delivery(status=status)
    with pytest.raises(TransitionConflict, match="only a failed delivery can be sent again"):
        retry_delivery(delivery, by=make_user("Admin"))
    assert Delivery.objects.get(pk=delivery.pk).status == status
    assert not AuditEntry.objects.filter(action="delivery.retried").exists()


def client_with(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def retrier():
    user = make_user("Operator")
    user.user_permissions.add(Permission.objects.get(codename="retry_delivery"))
    return user


@pytest.mark.django_db
def test_the_api_lists_deliveries_with_their_attempts(network, channel):
    delivery = failed_delivery(network)
    response = client_with(make_user("Viewer")).get(f"/api/v1/deliveries/?status=failed&content={delivery.content_id}")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == delivery.pk and row["status"] == "failed"
    [attempt] = row["attempt_log"]
    assert (attempt["number"], attempt["outcome"], attempt["http_status"]) == (1, "permanent_error", 422)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["superuser", "granted"])
def test_the_api_retries_a_failed_delivery_for_whoever_holds_the_permission(network, channel, who):
    delivery = failed_delivery(network)
    user = make_user(is_superuser=True) if who == "superuser" else retrier()
    response = client_with(user).post(f"/api/v1/deliveries/{delivery.pk}/retry", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "queued"
    audit = AuditEntry.objects.get(action="delivery.retried")
    assert audit.actor == user and audit.source == "api"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Viewer", "Reviewer"])
def test_the_api_refuses_a_retry_without_the_permission(network, channel, role):
    delivery = failed_delivery(network)
    response = client_with(make_user(role)).post(f"/api/v1/deliveries/{delivery.pk}/retry", {}, format="json")
    assert response.status_code == 403
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.FAILED


@pytest.mark.django_db
def test_the_api_answers_conflict_for_a_delivery_that_has_not_failed(network, channel):
    delivery = make_delivery(status="sent")
    response = client_with(retrier()).post(f"/api/v1/deliveries/{delivery.pk}/retry/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert APIClient().post(f"/api/v1/deliveries/{delivery.pk}/retry", {}, format="json").status_code == 401


@pytest.mark.django_db
def test_the_api_offers_no_way_to_create_or_delete_deliveries():
    delivery = make_delivery()
    client = client_with(make_user(is_superuser=True))
    assert client.post("/api/v1/deliveries/", {}, format="json").status_code == 405
    assert client.delete(f"/api/v1/deliveries/{delivery.pk}/").status_code == 405


# --- the admin -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_shows_attempts_on_the_delivery_and_the_content_pages(client, network, channel):
    delivery = failed_delivery(network)
    client.force_login(make_user(is_superuser=True, is_staff=True))
    page = client.get(f"/admin/advisors/delivery/{delivery.pk}/change/").content.decode()
    assert "Permanent error" in page and "bad phone" in page
    page = client.get(f"/admin/advisors/content/{delivery.content_id}/change/").content.decode()
    assert 'data-testid="delivery-attempts"' in page and "Permanent error" in page and "bad phone" in page


@pytest.mark.django_db
def test_the_admin_action_retries_failed_deliveries_and_skips_others(client, network, channel):
    failed = failed_delivery(network)
    sent = make_delivery(status="sent")
    user = make_user(is_superuser=True, is_staff=True)
    client.force_login(user)
    response = client.post(
        "/admin/advisors/delivery/",
        {"action": "retry", "_selected_action": [failed.pk, sent.pk]},
        follow=True,
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "1 delivery queued again." in text and "only a failed delivery can be sent again" in text
    assert Delivery.objects.get(pk=failed.pk).status == DeliveryStatus.QUEUED
    assert Delivery.objects.get(pk=sent.pk).status == DeliveryStatus.SENT
    assert AuditEntry.objects.get(action="delivery.retried").actor == user


@pytest.mark.django_db
def test_the_admin_action_is_not_offered_without_the_permission(client, network, channel):
    failed = failed_delivery(network)
    client.force_login(make_user("Viewer", is_staff=True))
    response = client.post("/admin/advisors/delivery/", {"action": "retry", "_selected_action": [failed.pk]})
    assert response.status_code == 200  # the list again: the action is not among the offered ones
    assert Delivery.objects.get(pk=failed.pk).status == DeliveryStatus.FAILED
    assert not AuditEntry.objects.filter(action="delivery.retried").exists()
