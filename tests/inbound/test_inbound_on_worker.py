"""Inbound events on a real Celery worker: processed after commit, and nothing lost when it dies."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.test import Client

from advisors.inbound.models import ButtonClick, EventStatus, InboundEvent, InboundSource
from advisors.inbound.tasks import process_inbound_events
from tests.factories import make_advisor
from tests.inbound.conftest import click, post_events

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(predicate, timeout: float, message: str, worker):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"{message}\n{worker.logs()}", pytrace=False)


def test_a_received_event_is_processed_by_the_worker_after_commit(worker):
    source = InboundSource.objects.create(slug="bot", name="Bot")
    make_advisor(phone="+919800000001")

    response = post_events(Client(), source, click("evt-1"))

    assert response.status_code == 200
    wait_until(lambda: ButtonClick.objects.exists(), 20, "the worker did not process the click", worker)
    assert InboundEvent.objects.get().status == EventStatus.PROCESSED


def test_a_worker_killed_while_processing_leaves_events_that_are_processed_after_restart(worker):
    source = InboundSource.objects.create(slug="bot", name="Bot")
    make_advisor(phone="+919800000001")
    client = Client()
    total = 2000
    for start in range(0, total, 500):
        body = {"events": [click(f"evt-{n}") for n in range(start, start + 500)]}
        assert post_events(client, source, body).json()["accepted"] == 500

    wait_until(lambda: ButtonClick.objects.count() >= 50, 30, "processing did not start", worker)
    os.killpg(worker.process.pid, signal.SIGKILL)  # the whole worker, mid-batch
    worker.process.wait()
    processed = InboundEvent.objects.filter(status=EventStatus.PROCESSED).count()
    assert processed < total, "the worker finished before it was killed: make the test slower"
    assert InboundEvent.objects.exclude(status=EventStatus.PROCESSED).exists()

    worker.start()
    # Its claimed batch waits out its lease; then the periodic sweep (sent by hand here) takes it again.
    time.sleep(worker.timings["INBOUND_LEASE_SECONDS"] + 0.5)
    process_inbound_events.delay()
    wait_until(
        lambda: InboundEvent.objects.filter(status=EventStatus.PROCESSED).count() == total, 60,
        "not every event was processed after the restart", worker,
    )
    assert ButtonClick.objects.count() == total  # each once: none lost, none doubled
