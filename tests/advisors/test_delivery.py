"""Delivery: created once on approval, sent after commit, never twice."""

from __future__ import annotations

import pytest
from django.db import IntegrityError

from advisors.models import ContentStatus, Delivery, DeliveryStatus, OutboxMessage
from advisors.services import approve_content, deliver
from advisors.transports import Sent, Transport, TransportError, register_transport
from tests.factories import make_content, make_user


@pytest.mark.django_db
def test_the_unique_constraint_refuses_a_second_delivery_row():
    content = make_content(status="approved")
    Delivery.objects.create(content=content, channel="outbox", recipient="+911234567890")
    with pytest.raises(IntegrityError):
        Delivery.objects.create(content=content, channel="outbox", recipient="+911234567890")


@pytest.mark.django_db
def test_outbox_delivery_records_the_message_and_marks_everything_delivered():
    content = make_content()
    approve_content(content, by=make_user("Reviewer"))
    delivery = Delivery.objects.get(content=content)
    deliver(delivery.pk)
    delivery.refresh_from_db()
    content.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.attempts == 1 and delivery.provider_message_id.startswith("outbox-")
    assert content.status == ContentStatus.DELIVERED
    message = OutboxMessage.objects.get(delivery=delivery)
    assert message.payload["title"] == content.title
    assert message.recipient == content.advisor.phone


@pytest.mark.django_db
def test_running_the_delivery_twice_sends_once():
    content = make_content()
    approve_content(content, by=make_user("Reviewer"))
    delivery = Delivery.objects.get(content=content)
    deliver(delivery.pk)
    assert deliver(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert OutboxMessage.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_approval_queues_the_delivery_task_only_after_commit(monkeypatch):
    from django.db import transaction

    from advisors import tasks

    sent = []
    monkeypatch.setattr(tasks.deliver_content, "delay", lambda delivery_id: sent.append(delivery_id))
    content = make_content()
    with transaction.atomic():
        approve_content(content, by=make_user("Reviewer"))
        assert sent == []
    assert sent == [Delivery.objects.get(content=content).pk]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_approval_queues_nothing(monkeypatch):
    from django.db import transaction

    from advisors import tasks

    sent = []
    monkeypatch.setattr(tasks.deliver_content, "delay", lambda delivery_id: sent.append(delivery_id))
    content = make_content()
    with pytest.raises(RuntimeError), transaction.atomic():
        approve_content(content, by=make_user("Reviewer"))
        raise RuntimeError("something later in the request failed")
    assert sent == []
    assert not Delivery.objects.exists()


class FlakyTransport(Transport):
    name = "flaky-test"
    failures: list[TransportError] = []

    def send(self, delivery):
        if self.failures:
            raise self.failures.pop(0)
        return Sent(provider_message_id="flaky-1", delivered=False)


@pytest.mark.django_db
def test_retryable_errors_keep_the_delivery_queued_and_permanent_ones_fail_it(settings):
    register_transport(FlakyTransport)
    settings.DELIVERY_CHANNEL = "flaky-test"
    content = make_content()
    approve_content(content, by=make_user("Reviewer"))
    delivery = Delivery.objects.get(content=content)

    FlakyTransport.failures[:] = [TransportError("timeout", permanent=False)]
    with pytest.raises(TransportError):
        deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.QUEUED and delivery.attempts == 1 and delivery.last_error == "timeout"

    FlakyTransport.failures[:] = [TransportError("number not on WhatsApp", permanent=True)]
    deliver(delivery.pk)
    delivery.refresh_from_db()
    content.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2
    assert content.status == ContentStatus.FAILED
