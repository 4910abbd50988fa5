"""The dispatcher: claims each due check once (two dispatchers, a duplicate delivery), runs
them concurrently, stores results in bulk, records flips and publishes one event per cycle."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from monitoring.health import services
from monitoring.health.models import HealthCheck, HealthResult
from monitoring.health.tasks import dispatch_checks

from .conftest import make_check


def _in_threads(count: int, target) -> list:
    """Run `target` in `count` threads released together; return their results in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = target()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


@pytest.mark.django_db
def test_due_checks_are_claimed_once_and_scheduled_one_interval_on(only_our_checks):
    due = [make_check(interval_seconds=30), make_check(interval_seconds=300)]
    disabled = make_check(enabled=False)
    now = timezone.now()
    later = make_check()
    HealthCheck.objects.filter(pk=later.pk).update(next_due_at=now + timedelta(minutes=5))

    claimed = services.claim_due_checks(now)
    again = services.claim_due_checks(now)

    assert sorted(c.pk for c in claimed) == sorted(c.pk for c in due)
    assert again == []
    rows = {c.pk: c for c in HealthCheck.objects.all()}
    assert rows[due[0].pk].next_due_at == now + timedelta(seconds=30)
    assert rows[due[1].pk].next_due_at == now + timedelta(seconds=300)
    assert rows[disabled.pk].next_due_at <= now  # untouched


@pytest.mark.django_db
def test_the_claim_takes_at_most_the_cycle_limit_oldest_due_first(only_our_checks):
    now = timezone.now()
    checks = [make_check() for _ in range(5)]
    for n, check in enumerate(checks):
        HealthCheck.objects.filter(pk=check.pk).update(next_due_at=now - timedelta(seconds=10 - n))

    first = services.claim_due_checks(now, limit=3)
    rest = services.claim_due_checks(now, limit=3)

    assert [c.pk for c in first] == [c.pk for c in checks[:3]]
    assert [c.pk for c in rest] == [c.pk for c in checks[3:]]


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_claim_each_due_check_exactly_once(only_our_checks):
    for round_ in range(3):
        HealthCheck.objects.all().delete()
        checks = [make_check(name=f"race {round_}-{n}", interval_seconds=[30, 60, 90][n % 3]) for n in range(300)]
        now = timezone.now()

        claimed = _in_threads(2, lambda now=now: [c.pk for c in services.claim_due_checks(now)])

        first, second = (set(c) for c in claimed)
        assert not first & second, f"round {round_}: {len(first & second)} checks claimed twice"
        assert first | second == {c.pk for c in checks}


@pytest.mark.django_db(transaction=True)
def test_two_whole_cycles_at_once_store_one_result_per_check(only_our_checks, http_server):
    checks = [make_check(url=f"{http_server.base}/ok", timeout_seconds=10) for _ in range(40)]

    reports = _in_threads(2, services.dispatch_due_checks)

    assert sum(r.claimed for r in reports) == 40
    assert HealthResult.objects.count() == 40
    assert sorted(HealthResult.objects.values_list("health_check_id", flat=True)) == sorted(c.pk for c in checks)
    assert len(http_server.hits) == 40
    assert all(c.state == "up" for c in HealthCheck.objects.all())


@pytest.mark.django_db
def test_a_cycle_runs_the_due_checks_stores_results_records_flips_and_publishes_once(
    only_our_checks, http_server, monkeypatch, django_capture_on_commit_callbacks
):
    published = []
    monkeypatch.setattr(services, "publish", lambda topic, type, payload: published.append((topic, type, payload)))
    up = [make_check(url=f"{http_server.base}/ok") for _ in range(5)]
    down = [make_check(url=f"{http_server.base}/status/500") for _ in range(3)]

    report = services.dispatch_due_checks()

    assert (report.claimed, report.results, report.up, report.down, report.flips) == (8, 8, 5, 3, 8)
    states = dict(HealthCheck.objects.values_list("pk", "state"))
    assert {states[c.pk] for c in up} == {"up"} and {states[c.pk] for c in down} == {"down"}
    assert len(published) == 1
    topic, type_, payload = published[0]
    assert (topic, type_) == ("health", "checks.updated")
    assert {c["id"] for c in payload["checks"]} == {c.pk for c in up + down}
    assert all(c["flipped"] for c in payload["checks"])
    assert services.dispatch_due_checks().claimed == 0  # nothing is due until the interval passes


@pytest.mark.django_db
def test_a_duplicate_delivery_of_the_task_finds_nothing_to_do(only_our_checks, http_server):
    make_check(url=f"{http_server.base}/ok")

    first = dispatch_checks()
    second = dispatch_checks()

    assert first["claimed"] == 1 and first["results"] == 1
    assert second["claimed"] == 0
    assert HealthResult.objects.count() == 1


@pytest.mark.django_db
def test_the_check_flips_down_and_back_up_as_its_target_does(only_our_checks, http_server):
    check = make_check(url=f"{http_server.base}/flip", interval_seconds=5)

    def cycle():
        HealthCheck.objects.filter(pk=check.pk).update(next_due_at=timezone.now())
        services.dispatch_due_checks()
        check.refresh_from_db()
        return check.state

    assert cycle() == "up"
    http_server.flip_status = 502
    assert cycle() == "down"
    assert cycle() == "down"
    http_server.flip_status = 200
    assert cycle() == "up"
    assert [(f.from_state, f.to_state) for f in check.flips.order_by("at")] == [
        ("unknown", "up"), ("up", "down"), ("down", "up"),
    ]
