"""The metric store: write samples, roll them up, prune, and read a series over a window.

Raw samples are kept `METRICS_RAW_RETENTION_HOURS`; rollups at 1 minute, 1 hour and 1 day
keep count, sum, min, max and the last value of each bucket for 7 days, 90 days and 2 years
by default. Rollups are computed by the database in one INSERT … SELECT … ON CONFLICT per
chunk (PostgreSQL and SQLite ≥ 3.25 share the syntax), never row by row in Python.

Readers ask for a window and get it at the finest resolution that both still exists for
its start and fits in `max_points`; the part of the window not rolled up yet (the last
minutes) is aggregated on the fly from the finer level, so a chart is never missing its end.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from .models import MetricRollup, MetricSample, MetricSeries, Resolution, RollupState

logger = logging.getLogger(__name__)

RAW = 0  # "resolution" of raw samples
RESOLUTIONS = (Resolution.MINUTE, Resolution.HOUR, Resolution.DAY)
# Where each resolution is computed from: raw samples, or the next finer rollup.
SOURCE = {Resolution.MINUTE: RAW, Resolution.HOUR: Resolution.MINUTE, Resolution.DAY: Resolution.HOUR}
# Seconds of source data rolled up per transaction (bounded work, so a long catch-up after
# downtime is many short transactions that each make progress).
CHUNK_SECONDS = {Resolution.MINUTE: 3600, Resolution.HOUR: 86400, Resolution.DAY: 30 * 86400}
# A minute is closed this long after it ends: a sampler that read the clock just before the
# minute ended may commit its samples a little after.
MINUTE_GRACE_SECONDS = 30
INSERT_BATCH = 5000
MAX_LABELS_KEY = 1000


def to_epoch(moment: datetime | float | int) -> int:
    """Return whole Unix seconds for a datetime (aware) or a number."""
    if isinstance(moment, datetime):
        return int(moment.timestamp())
    return int(moment)


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def labels_key(labels: Mapping[str, str]) -> str:
    """Return the canonical form of a label set (sorted keys, compact JSON)."""
    return json.dumps({str(k): str(v) for k, v in labels.items()}, sort_keys=True, separators=(",", ":"))


def retention_seconds(resolution: int) -> int:
    """Return how long data at `resolution` (RAW or a Resolution) is kept."""
    return {
        RAW: settings.METRICS_RAW_RETENTION_HOURS * 3600,
        Resolution.MINUTE: settings.METRICS_MINUTE_RETENTION_DAYS * 86400,
        Resolution.HOUR: settings.METRICS_HOUR_RETENTION_DAYS * 86400,
        Resolution.DAY: settings.METRICS_DAY_RETENTION_DAYS * 86400,
    }[resolution]


# --- writing ------------------------------------------------------------------------------

# (name, labels_key) -> series id, per process: the sampler writes the same few hundred (or
# ten thousand) series every few seconds and should not look each one up every time.
_series_ids: dict[tuple[str, str], int] = {}


def _resolve_series(keys: set[tuple[str, str]], labels_of: dict[tuple[str, str], Mapping[str, str]]) -> dict:
    missing = [key for key in keys if key not in _series_ids]
    if missing:
        names = {name for name, _ in missing}
        for row in MetricSeries.objects.filter(name__in=names).values_list("id", "name", "labels_key"):
            _series_ids[(row[1], row[2])] = row[0]
        new = [key for key in missing if key not in _series_ids]
        if new:
            # Another sampler may create the same series at the same moment: let the
            # database keep one and read back whichever won.
            MetricSeries.objects.bulk_create(
                [MetricSeries(name=name, labels_key=key, labels=dict(labels_of[(name, key)])) for name, key in new],
                ignore_conflicts=True,
                batch_size=INSERT_BATCH,
            )
            for row in MetricSeries.objects.filter(name__in={n for n, _ in new}).values_list("id", "name", "labels_key"):
                _series_ids[(row[1], row[2])] = row[0]
    return {key: _series_ids[key] for key in keys if key in _series_ids}


def write_samples(rows: Iterable[tuple[str, Mapping[str, str], float]], *, at: datetime | float | None = None) -> int:
    """Store one value per (name, labels) at one moment; return how many were stored.

    Non-finite values (NaN, ±inf) are skipped: no aggregate can use them.
    """
    ts = to_epoch(at if at is not None else time.time())
    values: dict[tuple[str, str], float] = {}
    labels_of: dict[tuple[str, str], Mapping[str, str]] = {}
    for name, labels, value in rows:
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            continue
        key = labels_key(labels)
        if len(key) > MAX_LABELS_KEY:
            logger.warning("metric %s: labels too long to store (%d characters)", name, len(key))
            continue
        values[(name, key)] = number
        labels_of[(name, key)] = labels
    if not values:
        return 0
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                ids = _resolve_series(set(values), labels_of)
                MetricSample.objects.bulk_create(
                    [MetricSample(series_id=ids[key], ts=ts, value=value) for key, value in values.items() if key in ids],
                    batch_size=INSERT_BATCH,
                )
            return len(ids)
        except IntegrityError:
            # A cached series was pruned meanwhile (it had no data for the whole retention).
            _series_ids.clear()
            if attempt == 2:
                raise
    return 0


# --- rolling up ----------------------------------------------------------------------------


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _aggregate_sql(source: int, target: int, *, series_ids: list[int] | None = None) -> tuple[str, list]:
    """SQL selecting (series_id, bucket, count, sum, min, max, last) of `source` data grouped by `target` buckets.

    Parameters: start, end (Unix seconds, on the source's time column), then the series ids.
    """
    target = int(target)
    if source == RAW:
        time_col, table = "ts", _table(MetricSample)
        cols = "1 AS c, value AS s, value AS lo, value AS hi, value AS v"
        order = "ts DESC, id DESC"
        where = "ts >= %s AND ts < %s"
    else:
        time_col, table = "bucket", _table(MetricRollup)
        cols = "sample_count AS c, value_sum AS s, value_min AS lo, value_max AS hi, value_last AS v"
        order = "bucket DESC"
        where = f"resolution = {int(source)} AND bucket >= %s AND bucket < %s"
    params: list = []
    if series_ids is not None:
        where += f" AND series_id IN ({', '.join(['%s'] * len(series_ids))})"
        params = list(series_ids)
    bucket = f"(({time_col} / {target}) * {target})"
    # Only integers and our own table and column names are formatted in; values are parameters.
    sql = (
        f"SELECT series_id, b, SUM(c) AS c, SUM(s) AS s, MIN(lo) AS lo, MAX(hi) AS hi, MAX(last_v) AS v FROM ("  # noqa: S608
        f" SELECT series_id, {bucket} AS b, {cols},"
        f" FIRST_VALUE({'value' if source == RAW else 'value_last'}) OVER"
        f" (PARTITION BY series_id, {bucket} ORDER BY {order}) AS last_v"
        f" FROM {table} WHERE {where}"
        f") AS src WHERE 1 = 1 GROUP BY series_id, b"
    )
    return sql, params


def _source_bounds(source: int, after: int) -> int | None:
    """Return the earliest time with source data at or after `after`, or None."""
    if source == RAW:
        qs = MetricSample.objects.filter(ts__gte=after).order_by("ts").values_list("ts", flat=True)
    else:
        qs = MetricRollup.objects.filter(resolution=source, bucket__gte=after).order_by("bucket").values_list(
            "bucket", flat=True
        )
    return qs.first()


def _closed_until(resolution: int, now: int) -> int | None:
    """Return the end of the last bucket at `resolution` whose source data is complete."""
    if resolution == Resolution.MINUTE:
        return (now - MINUTE_GRACE_SECONDS) // 60 * 60
    finer = RollupState.objects.filter(resolution=SOURCE[resolution]).values_list("done_until", flat=True).first()
    if finer is None:
        return None
    return finer // resolution * resolution


def _rollup_chunk(resolution: int, limit: int) -> bool:
    """Roll up one chunk of `resolution`; return False when there was nothing left to do."""
    source = SOURCE[resolution]
    with transaction.atomic():
        state = RollupState.objects.select_for_update().filter(resolution=resolution).first()
        start = state.done_until if state else 0
        first = _source_bounds(source, start)
        if first is None or first >= limit:
            # No source data before the limit: everything up to it is final (and empty).
            if state and state.done_until < limit:
                state.done_until = limit
                state.save(update_fields=["done_until", "updated_at"])
            return False
        # Skip empty stretches (downtime) in one step instead of chunk by chunk.
        start = max(start, first // resolution * resolution)
        end = min(limit, start + CHUNK_SECONDS[resolution])
        end = max(end // resolution * resolution, start + resolution)
        select, _ = _aggregate_sql(source, resolution)
        with connection.cursor() as cursor:
            # Formatted in: our table name, an integer and the SQL above; values are parameters.
            cursor.execute(
                f"INSERT INTO {_table(MetricRollup)}"  # noqa: S608
                " (series_id, resolution, bucket, sample_count, value_sum, value_min, value_max, value_last)"
                f" SELECT series_id, {int(resolution)}, b, c, s, lo, hi, v FROM ({select}) AS agg"
                " WHERE 1 = 1"
                " ON CONFLICT (series_id, resolution, bucket) DO UPDATE SET"
                " sample_count = excluded.sample_count, value_sum = excluded.value_sum,"
                " value_min = excluded.value_min, value_max = excluded.value_max, value_last = excluded.value_last",
                [start, end],
            )
        if state is None:
            RollupState.objects.create(resolution=resolution, done_until=end)
        else:
            state.done_until = end
            state.save(update_fields=["done_until", "updated_at"])
    return end < limit


def rollup(*, now: datetime | float | None = None, budget_seconds: float = 45.0) -> dict[int, int | None]:
    """Roll up every resolution as far as its source data is final; return each one's watermark.

    Idempotent: each chunk and its watermark commit together, and a bucket written twice is
    overwritten with the same figures. After downtime it catches up chunk by chunk until the
    time budget is spent; the next run continues.
    """
    current = to_epoch(now if now is not None else time.time())
    deadline = time.monotonic() + budget_seconds
    for resolution in RESOLUTIONS:
        limit = _closed_until(resolution, current)
        if limit is None:
            continue
        while _rollup_chunk(resolution, limit):
            if time.monotonic() > deadline:
                logger.info("metric rollup at %s s stopped for its time budget; the next run continues", resolution)
                break
    return watermarks()


def watermarks() -> dict[int, int | None]:
    """Return, per resolution, until when it is rolled up (None: never)."""
    done = dict(RollupState.objects.values_list("resolution", "done_until"))
    return {int(r): done.get(int(r)) for r in RESOLUTIONS}


# --- pruning --------------------------------------------------------------------------------

PRUNE_SLICE_SECONDS = {RAW: 3600, Resolution.MINUTE: 86400, Resolution.HOUR: 30 * 86400, Resolution.DAY: 365 * 86400}


def _delete_before(level: int, cutoff: int) -> int:
    """Delete `level` data older than `cutoff`, one time slice per statement (short transactions)."""
    if level == RAW:
        qs, col = MetricSample.objects.all(), "ts"
    else:
        qs, col = MetricRollup.objects.filter(resolution=level), "bucket"
    oldest = qs.filter(**{f"{col}__lt": cutoff}).order_by(col).values_list(col, flat=True).first()
    deleted = 0
    while oldest is not None and oldest < cutoff:
        upto = min(cutoff, oldest + PRUNE_SLICE_SECONDS[level])
        # QuerySet.delete() would collect rows in Python first; _raw_delete is one DELETE.
        deleted += qs.filter(**{f"{col}__lt": upto})._raw_delete(qs.db)
        oldest = upto
    return deleted


def prune(*, now: datetime | float | None = None) -> dict[str, int]:
    """Delete data past its retention, but never data not yet rolled up into the next level."""
    current = to_epoch(now if now is not None else time.time())
    marks = watermarks()
    result = {}
    for level, name, rolled_into in (
        (RAW, "raw", Resolution.MINUTE),
        (Resolution.MINUTE, "minute", Resolution.HOUR),
        (Resolution.HOUR, "hour", Resolution.DAY),
        (Resolution.DAY, "day", None),
    ):
        cutoff = current - retention_seconds(level)
        if rolled_into is not None:
            mark = marks.get(int(rolled_into))
            if mark is None:
                result[name] = 0  # nothing rolled up yet: keep everything
                continue
            cutoff = min(cutoff, mark)
        result[name] = _delete_before(level, cutoff)
    # Series left without any data (an old process's pid, a removed agent) go too.
    from django.db.models import Exists, OuterRef

    empty = MetricSeries.objects.filter(
        ~Exists(MetricSample.objects.filter(series_id=OuterRef("pk"))),
        ~Exists(MetricRollup.objects.filter(series_id=OuterRef("pk"))),
        created_at__lt=from_epoch(current - retention_seconds(RAW)),
    )
    result["series"] = empty._raw_delete(empty.db) if empty.exists() else 0
    if result["series"]:
        _series_ids.clear()
    return result


# --- reading --------------------------------------------------------------------------------


@dataclass
class Point:
    """A bucket of one series (or one raw sample, with count 1)."""

    t: int  # Unix seconds at the bucket's start
    count: int
    sum: float
    min: float
    max: float
    last: float

    @property
    def avg(self) -> float:
        return self.sum / self.count if self.count else 0.0

    def merge(self, later: Point) -> None:
        """Fold in a later partial bucket with the same start."""
        self.count += later.count
        self.sum += later.sum
        self.min = min(self.min, later.min)
        self.max = max(self.max, later.max)
        self.last = later.last

    def as_dict(self) -> dict:
        return {"t": self.t, "count": self.count, "avg": self.avg, "min": self.min, "max": self.max, "last": self.last}


@dataclass
class Series:
    """One series' labels and its points, oldest first."""

    id: int
    labels: dict
    points: list[Point] = field(default_factory=list)


@dataclass
class SeriesWindow:
    name: str
    start: int
    end: int
    resolution: int  # 0: raw samples
    series: list[Series]


def find_series(name: str, labels: Mapping[str, str] | None = None) -> list[MetricSeries]:
    """Return the stored series of `name` whose labels include every pair in `labels`."""
    wanted = {str(k): str(v) for k, v in (labels or {}).items()}
    rows = MetricSeries.objects.filter(name=name).order_by("labels_key")
    # Label filters run in Python: a name has few series, and JSON containment is not portable.
    return [row for row in rows if all(row.labels.get(k) == v for k, v in wanted.items())]


def choose_resolution(start: int, end: int, *, now: int, max_points: int) -> int:
    """Return the finest resolution that still holds `start` and gives at most `max_points` per series."""
    span = max(1, end - start)
    step = {RAW: max(1, settings.METRICS_SAMPLE_SECONDS)}
    for level in (RAW, *RESOLUTIONS):
        if start < now - retention_seconds(level):
            continue
        if span / step.get(level, int(level)) <= max_points:
            return level
    return Resolution.DAY


def _points_from_sql(sql: str, params: list) -> dict[int, dict[int, Point]]:
    out: dict[int, dict[int, Point]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for series_id, bucket, count, total, low, high, last in cursor.fetchall():
            out.setdefault(series_id, {})[int(bucket)] = Point(int(bucket), int(count), total, low, high, last)
    return out


def _merge_into(target: dict[int, dict[int, Point]], later: dict[int, dict[int, Point]]) -> None:
    for series_id, buckets in later.items():
        mine = target.setdefault(series_id, {})
        for bucket, point in sorted(buckets.items()):
            if bucket in mine:
                mine[bucket].merge(point)
            else:
                mine[bucket] = point


def _buckets(series_ids: list[int], resolution: int, start: int, end: int, marks: dict) -> dict[int, dict[int, Point]]:
    """Points of `series_ids` in `resolution` buckets over [start, end): stored, then computed for the tail."""
    if not series_ids or start >= end:
        return {}
    if resolution == RAW:
        out: dict[int, dict[int, Point]] = {}
        rows = (
            MetricSample.objects.filter(series_id__in=series_ids, ts__gte=start, ts__lt=end)
            .order_by("series_id", "ts", "id")
            .values_list("series_id", "ts", "value")
        )
        for series_id, ts, value in rows:
            points = out.setdefault(series_id, {})
            if ts in points:
                points[ts].merge(Point(ts, 1, value, value, value, value))
            else:
                points[ts] = Point(ts, 1, value, value, value, value)
        return out
    mark = marks.get(int(resolution)) or 0
    out = {}
    if start < mark:
        sql, params = _aggregate_sql(resolution, resolution, series_ids=series_ids)
        out = _points_from_sql(sql, [start, min(end, mark), *params])
    tail_start = max(start, mark)
    if tail_start < end:
        # Not rolled up yet: aggregate the finer level (itself stored or computed) into our buckets.
        finer = SOURCE[resolution]
        if finer == RAW:
            sql, params = _aggregate_sql(RAW, resolution, series_ids=series_ids)
            tail = _points_from_sql(sql, [tail_start, end, *params])
        else:
            tail = {}
            for series_id, points in _buckets(series_ids, finer, tail_start, end, marks).items():
                regrouped = tail.setdefault(series_id, {})
                for point in sorted(points.values(), key=lambda p: p.t):
                    bucket = point.t // resolution * resolution
                    if bucket in regrouped:
                        regrouped[bucket].merge(point)
                    else:
                        regrouped[bucket] = Point(bucket, point.count, point.sum, point.min, point.max, point.last)
        _merge_into(out, tail)
    return out


def read_series(
    name: str,
    labels: Mapping[str, str] | None = None,
    start: datetime | float | None = None,
    end: datetime | float | None = None,
    *,
    resolution: int | None = None,
    max_points: int = 500,
    now: float | None = None,
) -> SeriesWindow:
    """Read every series of `name` matching `labels` over [start, end), at a fitting resolution.

    `resolution` forces one (0 = raw samples, 60, 3600 or 86400); by default the finest one
    that still holds `start` and yields at most `max_points` points per series is used.
    """
    now = int(time.time() if now is None else now)
    end_s = to_epoch(end) if end is not None else now + 1
    start_s = to_epoch(start) if start is not None else end_s - 3600
    level = resolution if resolution is not None else choose_resolution(start_s, end_s, now=now, max_points=max_points)
    rows = find_series(name, labels)
    aligned = start_s if level == RAW else start_s // level * level
    data = _buckets([row.id for row in rows], level, aligned, end_s, watermarks())
    series = [
        Series(id=row.id, labels=row.labels, points=[data[row.id][t] for t in sorted(data.get(row.id, {}))])
        for row in rows
    ]
    return SeriesWindow(name=name, start=start_s, end=end_s, resolution=int(level), series=series)


AGGREGATIONS = ("avg", "min", "max", "sum", "count", "last", "increase")


def aggregate(
    name: str,
    labels: Mapping[str, str] | None,
    start: datetime | float,
    end: datetime | float | None = None,
    how: str = "avg",
    *,
    now: float | None = None,
) -> list[tuple[dict, float]]:
    """Return one figure per matching series over [start, end): avg, min, max, sum, count, last or increase.

    `sum` adds the values of every sample; `increase` is last minus first, for counters
    (a reset within the window is counted from zero). Series without data in the window are left out.
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}: use one of {', '.join(AGGREGATIONS)}")
    start_s = to_epoch(start)
    now = int(time.time() if now is None else now)
    level = RAW
    for candidate in (RAW, *RESOLUTIONS):
        if start_s >= now - retention_seconds(candidate):
            level = candidate
            break
    else:
        level = Resolution.DAY
    window = read_series(name, labels, start, end if end is not None else now + 1, resolution=level, now=now)
    out = []
    for series in window.series:
        points = series.points
        if not points:
            continue
        if how == "avg":
            value = sum(p.sum for p in points) / sum(p.count for p in points)
        elif how == "min":
            value = min(p.min for p in points)
        elif how == "max":
            value = max(p.max for p in points)
        elif how == "sum":
            value = sum(p.sum for p in points)
        elif how == "count":
            value = float(sum(p.count for p in points))
        elif how == "last":
            value = points[-1].last
        else:  # increase: a counter only grows, so a bucket's min is its first value
            value, previous = 0.0, points[0].min
            for point in points:
                value += point.last - previous if point.last >= previous else point.last
                previous = point.last
        out.append((series.labels, value))
    return out


def latest(name: str, labels: Mapping[str, str] | None = None, *, within_seconds: int = 600) -> list[tuple[dict, float]]:
    """Return each matching series' most recent raw value, if it has one within `within_seconds`."""
    return aggregate(name, labels, time.time() - within_seconds, None, "last")
