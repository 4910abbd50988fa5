"""State flips and uptime arithmetic over simulated time, and pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitoring.health import services
from monitoring.health.models import HealthCheck, HealthFlip, HealthResult
from monitoring.health.probes import Outcome

from .conftest import make_check

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def record(check, minute: float, ok: bool, detail: str = "") -> None:
    services.record_outcomes([Outcome(check.pk, at(minute), ok, 5.0, detail or ("HTTP 200" if ok else "HTTP 500"))])


def created_at(minute: float, **fields) -> HealthCheck:
    check = make_check(**fields)
    HealthCheck.objects.filter(pk=check.pk).update(created_at=at(minute), state_since=at(minute))
    check.refresh_from_db()
    return check


def test_the_first_result_flips_unknown_to_up_and_repeats_do_not_flip():
    check = created_at(0)

    record(check, 1, True)
    record(check, 2, True)
    record(check, 3, True)

    check.refresh_from_db()
    flips = list(check.flips.order_by("at"))
    assert [(f.from_state, f.to_state) for f in flips] == [("unknown", "up")]
    assert flips[0].previous_duration_seconds == 60
    assert check.state == "up" and check.state_since == at(1)
    assert check.results.count() == 3
    assert [entry[1] for entry in check.recent] == [True, True, True]


def test_up_down_up_records_each_flip_with_the_previous_states_duration():
    check = created_at(0)

    record(check, 0, True)
    record(check, 10, False, "HTTP 503, expected 200")
    record(check, 11, False)
    record(check, 15, True)

    flips = list(check.flips.order_by("at"))
    assert [(f.from_state, f.to_state, f.previous_duration_seconds) for f in flips] == [
        ("unknown", "up", 0.0), ("up", "down", 600.0), ("down", "up", 300.0),
    ]
    assert flips[1].detail == "HTTP 503, expected 200"
    check.refresh_from_db()
    assert check.state == "up" and check.state_since == at(15)
    assert check.last_ok is True and check.last_detail == "HTTP 200"


def test_an_outcome_older_than_the_last_result_is_kept_but_does_not_turn_the_state_back():
    check = created_at(0)
    record(check, 5, False)

    record(check, 4, True)  # a slow run that started before the last one finished after it

    check.refresh_from_db()
    assert check.state == "down"
    assert check.results.count() == 2


def test_the_strip_keeps_only_the_most_recent_results(settings):
    settings.HEALTH_RECENT_RESULTS = 5
    check = created_at(0)

    for minute in range(8):
        record(check, minute, minute % 2 == 0)

    check.refresh_from_db()
    assert [e[0] for e in check.recent] == [at(m).isoformat() for m in range(3, 8)]


def test_uptime_is_weighted_by_time_not_by_the_number_of_results():
    check = created_at(0)
    record(check, 0, True)
    # Up for 18 hours with one result, then down for 6 hours with 100 results.
    record(check, 18 * 60, False)
    for n in range(100):
        record(check, 18 * 60 + 1 + n, False)
    check.refresh_from_db()

    now = at(24 * 60)
    times = services.uptimes([check], now=now)[check.pk]

    assert times["24h"] == pytest.approx(18 / 24)
    assert times["7d"] == pytest.approx(18 / 24)  # time before the check existed does not count
    assert times["30d"] == pytest.approx(18 / 24)


def test_uptime_windows_cut_states_at_their_start():
    check = created_at(-10 * 24 * 60)  # ten days ago
    record(check, -10 * 24 * 60, True)
    record(check, -3 * 24 * 60, False)  # down for a day, three days ago
    record(check, -2 * 24 * 60, True)
    check.refresh_from_db()

    times = services.uptimes([check], now=T0)[check.pk]

    assert times["24h"] == 1.0
    assert times["7d"] == pytest.approx(6 / 7)
    assert times["30d"] == pytest.approx(9 / 10)


def test_unknown_time_counts_neither_up_nor_down():
    check = created_at(0)
    record(check, 60, True)  # unknown for the first hour
    check.refresh_from_db()

    times = services.uptimes([check], now=at(120))[check.pk]

    assert times["24h"] == 1.0


def test_a_check_that_never_ran_has_no_uptime():
    check = created_at(0)

    assert services.uptimes([check], now=at(60))[check.pk] == {"24h": None, "7d": None, "30d": None}


def test_disabling_a_check_moves_it_to_unknown_and_stops_the_clock(admin_user):
    check = created_at(0)
    record(check, 0, False)
    check.refresh_from_db()

    check.enabled = False
    services.save_check(check, by=admin_user, changed=["enabled"])

    check.refresh_from_db()
    assert check.state == "unknown"
    last = check.flips.order_by("-at").first()
    assert (last.from_state, last.to_state, last.detail) == ("down", "unknown", "disabled")


def test_uptime_for_many_checks_costs_one_query(django_assert_max_num_queries):
    checks = [created_at(0) for _ in range(20)]
    for check in checks:
        record(check, 1, True)
        record(check, 30, False)
    checks = list(HealthCheck.objects.filter(pk__in=[c.pk for c in checks]))

    with django_assert_max_num_queries(1):
        times = services.uptimes(checks, now=at(60))

    assert all(t["24h"] == pytest.approx(29 / 59) for t in times.values())


def test_pruning_deletes_results_and_flips_past_their_retention(settings):
    settings.HEALTH_RESULT_RETENTION_DAYS = 7
    settings.HEALTH_FLIP_RETENTION_DAYS = 40
    check = created_at(-60 * 24 * 60)
    for days_ago in (50, 39, 8, 6, 1):
        record(check, -days_ago * 24 * 60, days_ago % 2 == 0)

    deleted = services.prune_history(now=T0, batch=2)

    assert deleted == {"results": 3, "flips": 1}
    assert sorted(round((T0 - r.at).days) for r in HealthResult.objects.all()) == [1, 6]
    assert HealthFlip.objects.filter(at__lt=T0 - timedelta(days=40)).count() == 0
    # The state and uptime do not depend on what was pruned.
    check.refresh_from_db()
    assert check.state == "down"
    assert services.uptimes([check], now=T0)[check.pk]["24h"] == 0.0
