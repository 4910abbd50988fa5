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


# --- batched reads (alert evaluation) ----------------------------------------------------------
#
# The alert evaluator reads every series of the metrics its rules use, over each of its
# windows, once per cycle: one statement for many windows ending at the same moment (each
# aggregate filtered to its window) instead of one per rule, per series or per window.


@dataclass(slots=True)
class WindowStats:
    """What one series did within a window: enough for every aggregation an alert rule asks for."""

    count: int
    sum: float  # sum, min and max are left out (0 / last) when read as a counter
    min: float
    max: float
    last: float
    first_ts: int | None  # read as a counter (or from rollups) only
    last_ts: int
    increase: float | None = None  # counters only: growth over the window, a reset counted from zero
    percentiles: dict[float, float] | None = None  # when asked for (PostgreSQL)

    @property
    def avg(self) -> float:
        return self.sum / self.count if self.count else 0.0


def series_index(names: Iterable[str]) -> list[tuple[int, str, str]]:
    """Return (id, name, labels_key) of every stored series of `names`, by id."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    return list(MetricSeries.objects.filter(name__in=wanted).order_by("id").values_list("id", "name", "labels_key"))


def level_for(start: int, now: int) -> int:
    """Return the finest level (RAW or a Resolution) whose retention still holds `start`."""
    for candidate in (RAW, *RESOLUTIONS):
        if start >= now - retention_seconds(candidate):
            return candidate
    return Resolution.DAY


def _names_filter(names: list[str]) -> str:
    # Formatted in: our own table name and placeholders; the names are parameters.
    return (f"series_id IN (SELECT id FROM {_table(MetricSeries)}"  # noqa: S608
            f" WHERE name IN ({', '.join(['%s'] * len(names))}))")


def _raw_windows(names: list[str], starts: list[int], end: int, *, counters: bool) -> dict[int, dict[int, WindowStats]]:
    """One statement over the longest window; every aggregate FILTERed to its own window."""
    sample = _table(MetricSample)
    where = f"ts >= %s AND ts < %s AND {_names_filter(names)}"
    per_window: list[str] = []
    # Formatted in: our table names, integers and aliases; values are parameters.
    if counters:
        # What rate and increase need: samples, the first time, and the growth. A step counts
        # towards a window when both of its samples are inside it.
        step = "CASE WHEN value >= prev_v THEN value - prev_v ELSE value END"
        for start in starts:
            within = f"FILTER (WHERE ts >= {int(start)})"
            per_window += [f"COUNT(*) {within}", f"MIN(ts) {within}", f"SUM({step}) FILTER (WHERE prev_ts >= {int(start)})"]
        # One sort by (series, time) for LAG and LEAD (the last sample is the one without a next).
        sql = (
            f"SELECT series_id, MAX(ts), MIN(value) FILTER (WHERE next_ts IS NULL), {', '.join(per_window)}"  # noqa: S608
            " FROM (SELECT series_id, ts, value, LAG(value) OVER w AS prev_v, LAG(ts) OVER w AS prev_ts,"
            f" LEAD(ts) OVER w AS next_ts FROM {sample} WHERE {where}"
            " WINDOW w AS (PARTITION BY series_id ORDER BY ts, id)) AS steps GROUP BY series_id"
        )
    else:
        for k, start in enumerate(starts):
            within = f"FILTER (WHERE ts >= {int(start)})"
            per_window += [f"COUNT(*) {within} AS w{k}_c", f"SUM(value) {within} AS w{k}_s",
                           f"MIN(value) {within} AS w{k}_lo", f"MAX(value) {within} AS w{k}_hi"]
        # Plain aggregates hash-group without sorting; the last value is then one index probe
        # per series on (series, ts) — far cheaper than sorting every sample.
        aliases = ", ".join(f"a.{column.rsplit(' AS ', 1)[1]}" for column in per_window)
        sql = (
            f"SELECT a.sid, a.last_ts, (SELECT l.value FROM {sample} l WHERE l.series_id = a.sid"  # noqa: S608
            f" AND l.ts = a.last_ts ORDER BY l.id DESC LIMIT 1), {aliases} FROM ("
            f" SELECT series_id AS sid, MAX(ts) AS last_ts, {', '.join(per_window)} FROM {sample} WHERE {where}"
            " GROUP BY series_id) AS a"
        )
    width = 3 if counters else 4
    out: dict[int, dict[int, WindowStats]] = {start: {} for start in starts}
    with connection.cursor() as cursor:
        cursor.execute(sql, [min(starts), end, *names])
        for row in cursor.fetchall():
            sid, last_ts, last = row[0], int(row[1]), float(row[2])
            for k, start in enumerate(starts):
                part = row[3 + k * width: 3 + (k + 1) * width]
                if not part[0]:
                    continue
                if counters:
                    out[start][sid] = WindowStats(int(part[0]), 0.0, last, last, last, int(part[1]), last_ts,
                                                  increase=float(part[2] or 0.0))
                else:
                    out[start][sid] = WindowStats(int(part[0]), float(part[1]), float(part[2]), float(part[3]), last,
                                                  None, last_ts)
    return out


def _stats_from_points(points: list[Point], *, counters: bool) -> WindowStats:
    increase = None
    if counters:
        # As in aggregate(): a counter only grows, so a bucket's min is its first value.
        increase, previous = 0.0, points[0].min
        for point in points:
            increase += point.last - previous if point.last >= previous else point.last
            previous = point.last
    return WindowStats(
        count=sum(p.count for p in points), sum=sum(p.sum for p in points), min=min(p.min for p in points),
        max=max(p.max for p in points), last=points[-1].last, first_ts=points[0].t, last_ts=points[-1].t,
        increase=increase,
    )


def windows_stats(names: Iterable[str], starts: Iterable[int], end: datetime | float, *,
                  now: float | None = None, counters: bool = False) -> dict[int, dict[int, WindowStats]]:
    """Aggregate every series of `names` over windows [start, end) for each start; return {start: {series id: stats}}.

    Windows within the raw retention are read from raw samples in one statement; older ones
    from rollups (the tail not rolled up yet from the finer level). `counters` also computes
    each series' increase. Series without samples in a window are left out of it.
    """
    wanted = sorted(set(names))
    end_s = to_epoch(end)
    current = int(time.time() if now is None else now)
    wanted_starts = sorted({to_epoch(s) for s in starts if to_epoch(s) < end_s})
    out: dict[int, dict[int, WindowStats]] = {start: {} for start in wanted_starts}
    if not wanted or not wanted_starts:
        return out
    raw = [start for start in wanted_starts if level_for(start, current) == RAW]
    if raw:
        out.update(_raw_windows(wanted, raw, end_s, counters=counters))
    older = [start for start in wanted_starts if start not in raw]
    if older:
        ids = [row[0] for row in series_index(wanted)]
        marks = watermarks()
        for start in older:
            level = level_for(start, current)
            for offset in range(0, len(ids), 500):
                chunk = _buckets(ids[offset:offset + 500], level, start // level * level, end_s, marks)
                for sid, buckets in chunk.items():
                    points = [buckets[t] for t in sorted(buckets)]
                    if points:
                        out[start][sid] = _stats_from_points(points, counters=counters)
    return out


def window_stats(names: Iterable[str], start: datetime | float, end: datetime | float, *,
                 now: float | None = None, counters: bool = False) -> dict[int, WindowStats]:
    """Aggregate every series of `names` over [start, end) in one query; return stats by series id."""
    return windows_stats(names, [to_epoch(start)], end, now=now, counters=counters).get(to_epoch(start), {})


def windows_percentiles(names: Iterable[str], starts: Iterable[int], end: datetime | float,
                        percentiles: Iterable[float], *, now: float | None = None) -> dict[int, dict[int, dict]] | None:
    """Return {start: {series id: {pct: value}}} computed by the database, or None where it cannot.

    PostgreSQL's percentile_cont (linear interpolation) over raw samples, one statement for
    every window; None on other databases, or when a window is beyond the raw retention
    (the caller then reads the values with window_values).
    """
    wanted, pcts = sorted(set(names)), sorted({float(p) for p in percentiles})
    end_s = to_epoch(end)
    current = int(time.time() if now is None else now)
    wanted_starts = sorted({to_epoch(s) for s in starts if to_epoch(s) < end_s})
    if connection.vendor != "postgresql" or any(level_for(s, current) != RAW for s in wanted_starts):
        return None
    out: dict[int, dict[int, dict]] = {start: {} for start in wanted_starts}
    if not wanted or not wanted_starts or not pcts:
        return out
    # One sort per window computes all the percentiles (the array form); the outer SELECT takes
    # the array apart, since scalars travel and parse far faster than arrays of floats.
    arrays = ", ".join(
        f"PERCENTILE_CONT(%s::double precision[]) WITHIN GROUP (ORDER BY value) FILTER (WHERE ts >= {int(s)}) AS p{k}"
        for k, s in enumerate(wanted_starts)
    )
    scalars = ", ".join(f"p{k}[{j + 1}]" for k in range(len(wanted_starts)) for j in range(len(pcts)))
    sql = (f"SELECT series_id, {scalars} FROM (SELECT series_id, {arrays} FROM {_table(MetricSample)}"  # noqa: S608
           f" WHERE ts >= %s AND ts < %s AND {_names_filter(wanted)} GROUP BY series_id) AS p")
    fractions = [p / 100.0 for p in pcts]
    width = len(pcts)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*([fractions] * len(wanted_starts)), wanted_starts[0], end_s, *wanted])
        for row in cursor.fetchall():
            for k, start in enumerate(wanted_starts):
                figures = row[1 + k * width: 1 + (k + 1) * width]
                if figures[0] is not None:
                    out[start][row[0]] = dict(zip(pcts, figures, strict=True))
    return out


def window_values(names: Iterable[str], start: datetime | float, end: datetime | float, *,
                  now: float | None = None) -> dict[int, list[float]]:
    """Return every value of every series of `names` in [start, end), by series id (for percentiles).

    Beyond the raw retention they are the rollup buckets' averages: an approximation.
    """
    wanted = sorted(set(names))
    start_s, end_s = to_epoch(start), to_epoch(end)
    current = int(time.time() if now is None else now)
    if not wanted or start_s >= end_s:
        return {}
    level = level_for(start_s, current)
    out: dict[int, list[float]] = {}
    if level == RAW:
        sql = (f"SELECT series_id, value FROM {_table(MetricSample)}"  # noqa: S608
               f" WHERE ts >= %s AND ts < %s AND {_names_filter(wanted)}")
        with connection.cursor() as cursor:
            cursor.execute(sql, [start_s, end_s, *wanted])
            for sid, value in cursor.fetchall():
                out.setdefault(sid, []).append(value)
        return out
    ids = [row[0] for row in series_index(wanted)]
    marks = watermarks()
    for offset in range(0, len(ids), 500):
        for sid, buckets in _buckets(ids[offset:offset + 500], level, start_s // level * level, end_s, marks).items():
            out[sid] = [p.avg for p in buckets.values() if p.count]
    return out


def step_buckets(series_ids: list[int], start: int, end: int, step: int) -> dict[int, dict[int, Point]]:
    """Return the points of `series_ids` in `step`-second buckets over [start, end) (minute rollups, raw tail).

    For charts and previews over the last hours: rolled-up minutes where they exist, raw
    samples after the minute watermark; `step` is a multiple of 60.
    """
    marks = watermarks()
    mark = marks.get(int(Resolution.MINUTE)) or 0
    out: dict[int, dict[int, Point]] = {}
    for offset in range(0, len(series_ids), 500):
        chunk = series_ids[offset:offset + 500]
        part: dict[int, dict[int, Point]] = {}
        if start < mark:
            sql, params = _aggregate_sql(Resolution.MINUTE, step, series_ids=chunk)
            part = _points_from_sql(sql, [start, min(end, mark), *params])
        if max(start, mark) < end:
            sql, params = _aggregate_sql(RAW, step, series_ids=chunk)
            _merge_into(part, _points_from_sql(sql, [max(start, mark), end, *params]))
        out.update(part)
    return out
