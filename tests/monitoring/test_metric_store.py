"""The metric store over simulated time: rollups, catch-up after downtime, idempotence, pruning, reads."""

from __future__ import annotations

import pytest

from monitoring import store
from monitoring.models import MetricRollup, MetricSample, MetricSeries, Resolution, RollupState

pytestmark = pytest.mark.django_db

DAY = 86400
T0 = 1_800_000_000 // DAY * DAY  # a midnight (UTC), in 2027
CPU = "opscenter_test_cpu"


def write_every(seconds: int, start: int, end: int, *, name: str = CPU, labels=None, value=lambda t: float(t % 1000)):
    """Write one sample every `seconds` in [start, end) for one series."""
    for t in range(start, end, seconds):
        store.write_samples([(name, labels or {"host": "a"}, value(t))], at=t)


def rollups(resolution: int) -> dict[int, tuple]:
    return {
        r.bucket: (r.sample_count, r.value_sum, r.value_min, r.value_max, r.value_last)
        for r in MetricRollup.objects.filter(resolution=resolution).order_by("bucket")
    }


def test_minute_rollups_hold_count_sum_min_max_and_last_of_their_samples():
    write_every(10, T0, T0 + 180)
    store.rollup(now=T0 + 180 + store.MINUTE_GRACE_SECONDS)
    got = rollups(Resolution.MINUTE)
    assert sorted(got) == [T0, T0 + 60, T0 + 120]
    values = [float(t % 1000) for t in range(T0 + 60, T0 + 120, 10)]
    assert got[T0 + 60] == (6, sum(values), min(values), max(values), values[-1])


def test_an_open_minute_is_not_rolled_up_until_its_grace_has_passed():
    write_every(10, T0, T0 + 90)
    store.rollup(now=T0 + 60 + store.MINUTE_GRACE_SECONDS - 1)
    assert sorted(rollups(Resolution.MINUTE)) == []
    store.rollup(now=T0 + 60 + store.MINUTE_GRACE_SECONDS)
    assert sorted(rollups(Resolution.MINUTE)) == [T0]
    assert store.watermarks()[Resolution.MINUTE] == T0 + 60


def test_hour_and_day_rollups_are_built_from_the_finer_level_with_the_same_figures():
    write_every(60, T0, T0 + DAY + 2 * 3600, value=lambda t: float((t - T0) // 60))
    store.rollup(now=T0 + DAY + 2 * 3600 + 60)
    hours = rollups(Resolution.HOUR)
    assert len(hours) == 26
    count, total, low, high, last = hours[T0 + 3600]
    assert (count, low, high, last) == (60, 60.0, 119.0, 119.0)
    assert total == sum(range(60, 120))
    days = rollups(Resolution.DAY)
    assert list(days) == [T0]  # the second day is not over
    assert days[T0] == (1440, float(sum(range(1440))), 0.0, 1439.0, 1439.0)


def test_running_the_rollup_twice_changes_nothing():
    write_every(10, T0, T0 + 2 * 3600)
    store.rollup(now=T0 + 2 * 3600 + 60)
    before = {res: rollups(res) for res in store.RESOLUTIONS}
    marks = store.watermarks()
    store.rollup(now=T0 + 2 * 3600 + 60)
    assert {res: rollups(res) for res in store.RESOLUTIONS} == before
    assert store.watermarks() == marks
    assert MetricRollup.objects.filter(resolution=Resolution.MINUTE).count() == 120


def test_a_bucket_rolled_up_again_is_overwritten_not_doubled():
    write_every(10, T0, T0 + 120)
    store.rollup(now=T0 + 200)
    first = rollups(Resolution.MINUTE)
    # As if a crash lost the watermark after the buckets were written.
    RollupState.objects.filter(resolution=Resolution.MINUTE).delete()
    store.rollup(now=T0 + 200)
    assert rollups(Resolution.MINUTE) == first


def test_catch_up_after_downtime_rolls_up_both_sides_of_the_gap():
    write_every(30, T0, T0 + 3600)  # an hour of data, then two days of downtime
    restart = T0 + 2 * DAY + 600
    write_every(30, restart, restart + 1800)
    store.rollup(now=restart + 1800 + 60)
    minutes = rollups(Resolution.MINUTE)
    assert len(minutes) == 60 + 30
    assert min(minutes) == T0 and max(minutes) == restart + 1800 - 60
    assert sorted(rollups(Resolution.HOUR)) == [T0]  # the restart's hour is not over yet
    days = rollups(Resolution.DAY)
    assert sorted(days) == [T0]  # day 0 is final; day 1 had no data; day 2 is open
    assert days[T0][0] == 120
    assert store.watermarks()[Resolution.DAY] == T0 + 2 * DAY


def test_catch_up_in_small_steps_gives_the_same_result_as_one_pass():
    write_every(60, T0, T0 + 3 * 3600)
    now = T0 + 3 * 3600 + 60
    runs = 0
    # No time budget: each call does one chunk per resolution and leaves the rest.
    while True:
        runs += 1
        marks = store.watermarks()
        store.rollup(now=now, budget_seconds=0)
        if store.watermarks() == marks:
            break
    stepped = {res: rollups(res) for res in store.RESOLUTIONS}
    MetricRollup.objects.all().delete()
    RollupState.objects.all().delete()
    store.rollup(now=now)
    assert runs > 2
    assert {res: rollups(res) for res in store.RESOLUTIONS} == stepped


def test_pruning_deletes_raw_samples_past_24_hours_once_rolled_up():
    write_every(600, T0, T0 + 2 * DAY)
    now = T0 + 2 * DAY + 60
    store.rollup(now=now)
    deleted = store.prune(now=now)
    assert deleted["raw"] == len(range(T0, now - DAY, 600))
    assert MetricSample.objects.filter(ts__lt=now - DAY).count() == 0
    assert MetricSample.objects.filter(ts__gte=now - DAY).count() > 0
    # The rollups keep what was pruned.
    assert rollups(Resolution.DAY)[T0][0] == 144
    assert store.prune(now=now)["raw"] == 0  # twice: nothing more


def test_pruning_never_deletes_samples_that_are_not_rolled_up_yet():
    write_every(600, T0, T0 + 3 * 3600)
    store.rollup(now=T0 + 3600 + 60)  # rolled up to one hour in; then the rollup stops running
    long_after = T0 + 10 * DAY
    store.prune(now=long_after)
    assert MetricSample.objects.filter(ts__lt=T0 + 3600).count() == 0
    assert MetricSample.objects.filter(ts__gte=T0 + 3600).count() == 12
    # Once the rollup catches up, the rest goes too, and nothing was lost on the way.
    store.rollup(now=long_after)
    store.prune(now=long_after)
    assert MetricSample.objects.count() == 0
    assert sum(c for c, *_ in rollups(Resolution.HOUR).values()) == 18
    assert rollups(Resolution.DAY)[T0][0] == 18


def test_rollups_expire_after_their_own_retention():
    write_every(3600, T0, T0 + 3 * DAY)
    store.rollup(now=T0 + 3 * DAY + 60)
    assert MetricRollup.objects.filter(resolution=Resolution.MINUTE).count() == 72
    store.prune(now=T0 + 11 * DAY)  # minutes kept 7 days
    assert MetricRollup.objects.filter(resolution=Resolution.MINUTE).count() == 0
    assert MetricRollup.objects.filter(resolution=Resolution.HOUR).count() == 72
    store.prune(now=T0 + 800 * DAY)  # hours 90 days, days 2 years
    assert MetricRollup.objects.count() == 0


def test_series_without_any_data_left_are_pruned():
    write_every(600, T0, T0 + 600, labels={"host": "gone"})
    store.rollup(now=T0 + DAY + 3600)
    store.prune(now=T0 + 800 * DAY)
    assert not MetricSeries.objects.filter(name=CPU).exists()
    # The sampler's cached id is forgotten: writing the series again works.
    assert store.write_samples([(CPU, {"host": "gone"}, 1.0)], at=T0 + 800 * DAY) == 1


def test_read_series_fills_the_not_yet_rolled_up_tail_from_finer_data():
    write_every(10, T0, T0 + 2 * 3600 + 300, value=lambda t: 1.0)
    store.rollup(now=T0 + 3600 + 60)  # minutes and one hour rolled up; the rest is raw
    window = store.read_series(CPU, {"host": "a"}, T0, T0 + 2 * 3600 + 300, resolution=Resolution.HOUR)
    (series,) = window.series
    assert [p.t for p in series.points] == [T0, T0 + 3600, T0 + 7200]
    assert [p.count for p in series.points] == [360, 360, 30]
    minutes = store.read_series(CPU, None, T0 + 3000, T0 + 4200, resolution=Resolution.MINUTE).series[0].points
    assert len(minutes) == 20 and all(p.count == 6 for p in minutes)


def test_read_series_filters_by_labels_and_reads_raw_samples():
    write_every(10, T0, T0 + 60, labels={"host": "a"}, value=lambda t: 1.0)
    write_every(10, T0, T0 + 60, labels={"host": "b"}, value=lambda t: 2.0)
    window = store.read_series(CPU, {"host": "b"}, T0, T0 + 60, resolution=store.RAW)
    assert [s.labels for s in window.series] == [{"host": "b"}]
    assert [p.last for p in window.series[0].points] == [2.0] * 6


def test_aggregations_over_a_window_per_series(settings):
    now = T0 + 600
    write_every(60, T0, now, labels={"host": "a"}, value=lambda t: float((t - T0) // 60))
    got = {how: store.aggregate(CPU, {"host": "a"}, T0, now, how, now=now)[0][1] for how in store.AGGREGATIONS}
    assert got == {"avg": 4.5, "min": 0.0, "max": 9.0, "sum": 45.0, "count": 10.0, "last": 9.0, "increase": 9.0}


def test_writing_ten_thousand_series_needs_no_lookup_once_they_are_known():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows = [("opscenter_test_many", {"n": str(i)}, float(i)) for i in range(10_000)]
    assert store.write_samples(rows, at=T0) == 10_000
    with CaptureQueriesContext(connection) as queries:
        assert store.write_samples(rows, at=T0 + 10) == 10_000
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if "metricseries" in sql.lower()]
    assert all(sql.startswith(("INSERT", "SAVEPOINT", "RELEASE")) for sql in statements)
    assert MetricSample.objects.count() == 20_000


def test_non_finite_values_are_not_stored():
    assert store.write_samples([(CPU, {}, float("nan")), (CPU, {"x": "1"}, float("inf")), (CPU, {"y": "1"}, 3)], at=T0) == 1
