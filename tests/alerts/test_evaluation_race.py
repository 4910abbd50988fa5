"""Two evaluators racing on real PostgreSQL: one alert per fingerprint, one notification request.

Each thread has its own database connection (Django's are per thread), so the two
evaluations really run side by side in two transactions. SQLite serialises writers, so the
race cannot happen there: these tests need PostgreSQL.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from alerts import evaluation
from alerts.models import Alert, AlertEvent, EvaluatorState
from monitoring import store
from tests.alerts.factories import make_rule

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("test_metrics")]

HOSTS = [f"h{i:02d}" for i in range(40)]


def race(target, *args) -> list:
    """Run `target(*args)` in two threads released together; return their results (or exceptions)."""
    barrier = threading.Barrier(2)
    results: list = []
    lock = threading.Lock()

    def run():
        try:
            barrier.wait(timeout=10)
            outcome = target(*args)
        except Exception as exc:  # reported to the test, not swallowed
            outcome = exc
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def breaching_samples(now: float) -> None:
    store.write_samples([("opscenter_test_gauge", {"host": h}, 50.0) for h in HOSTS], at=now)


def assert_one_alert_and_one_request_per_host(rule) -> None:
    alerts = list(Alert.objects.filter(rule=rule))
    assert len(alerts) == len(HOSTS)
    assert len({a.fingerprint for a in alerts}) == len(HOSTS)
    assert {a.status for a in alerts} == {"firing"}
    assert {a.notify_seq for a in alerts} == {1}
    assert AlertEvent.objects.filter(alert__rule=rule, kind="firing").count() == len(HOSTS)


def test_two_evaluations_bypassing_the_lease_open_one_alert_and_one_notification_per_fingerprint():
    rule = make_rule(threshold=10)
    now = time.time()
    breaching_samples(now)
    for round_number in range(3):  # a race is a matter of timing: several rounds, several hosts each
        Alert.objects.all().delete()
        evaluation.forget_cached_series()
        results = race(evaluation.evaluate_rules, now + round_number)
        assert not [r for r in results if isinstance(r, Exception)], results
        assert sum(r["opened"] for r in results) == len(HOSTS)
        assert_one_alert_and_one_request_per_host(rule)


def test_two_evaluations_firing_the_same_pending_alerts_fire_each_once():
    rule = make_rule(threshold=10, for_seconds=30)
    now = time.time()
    breaching_samples(now)
    evaluation.evaluate_rules(now)
    assert set(Alert.objects.filter(rule=rule).values_list("status", flat=True)) == {"pending"}
    breaching_samples(now + 31)
    results = race(evaluation.evaluate_rules, now + 31)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r["fired"] for r in results) == len(HOSTS)
    assert_one_alert_and_one_request_per_host(rule)


def test_two_cycles_at_once_take_turns_through_the_lease():
    rule = make_rule(threshold=10)
    now = time.time()
    breaching_samples(now)
    results = race(evaluation.run_cycle, now)
    assert not [r for r in results if isinstance(r, Exception)], results
    state = EvaluatorState.objects.get(pk=1)
    # Either the second tick found the lease held (skipped), or the first had finished and
    # released it, and the second found nothing new to do.
    assert state.cycles + state.skipped == 2 and state.lease_until is None
    assert [r.get("opened", 0) for r in results if not r["skipped"]] in ([len(HOSTS)], [len(HOSTS), 0], [0, len(HOSTS)])
    assert_one_alert_and_one_request_per_host(rule)
