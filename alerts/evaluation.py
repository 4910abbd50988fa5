"""Alert evaluation: every enabled rule against the metric store, once per cycle.

A cycle (beat, every ALERTS_EVALUATION_SECONDS) claims the one EvaluatorState row with a
conditional UPDATE of its lease, so two workers never run the same cycle; a tick that finds
the lease held is counted (`skipped`) and logged, and a cycle that takes longer than the
interval is counted (`overruns`) and logged: reported, never silent.

Reading is batched: every series of the metrics the rules use is aggregated over all of
their windows in a few statements (monitoring.store.windows_stats: one for plain aggregates,
one for counters, one for percentiles on PostgreSQL), however many rules there are. Each rule
then picks its series with its label matchers (cached per process while a metric's series stay
the same), takes each series' value, combines the series of a group, and compares.

Writing is only what changed, in one transaction with a savepoint per rule (a rule whose
changes fail rolls back alone). Every transition is a conditional write — an INSERT … ON
CONFLICT against the partial unique index of one open alert per fingerprint, or an UPDATE
conditioned on the status the decision saw — and its side effects (the timeline line, the
notification request, the live event) happen only when that write took effect; so two
evaluators racing past the lease open one alert and ask for one notification. Open alerts
that did not change get their value and evaluation time in one UPDATE.

Semantics worth knowing:
- group_by empty: one alert per series; a ratio rule (denominator) without group_by is one
  alert for the total (failed runs ÷ all runs), since numerator and denominator series do
  not share label sets. A missing numerator counts as 0 for sum, count, rate and increase.
- rate is the counter's increase per second between the first and last sample in the
  window; increase and rate need at least two samples of a series.
- no data: `ok` resolves what has no data; `keep` leaves open alerts of groups without data
  as they are; `alert` opens one alert labelled nodata="true" when the rule has no data at
  all (its other open alerts are then kept — their state is unknown), which resolves when
  data returns.
- timeline events recorded here: pending, firing, resolved, flapping, no_data, silenced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import operator
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Case, Count, F, Q, Value, When
from django.db.models.fields.json import KT

from monitoring import store
from monitoring.registry import Kind, get_metric

from . import services
from .matchers import MatcherError, parse_matchers
from .models import (
    OPEN_STATUSES,
    Aggregation,
    Alert,
    AlertEventKind,
    AlertStatus,
    Comparator,
    EvaluatorState,
    NoDataPolicy,
    NotificationStatus,
    NotifyKind,
    Rule,
)

logger = logging.getLogger(__name__)

SYMBOLS = {Comparator.GT: ">", Comparator.GTE: "≥", Comparator.LT: "<", Comparator.LTE: "≤",
           Comparator.EQ: "=", Comparator.NE: "≠"}


def _eq(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


COMPARE: dict[str, Callable[[float, float], bool]] = {
    Comparator.GT: operator.gt, Comparator.GTE: operator.ge, Comparator.LT: operator.lt,
    Comparator.LTE: operator.le, Comparator.EQ: _eq, Comparator.NE: lambda a, b: not _eq(a, b),
}
COUNTER_AGGREGATIONS = {Aggregation.RATE, Aggregation.INCREASE}
# Aggregations whose group value is the sum of its series' values; a missing numerator of
# a ratio counts as zero for them (no failed runs yet: the failure rate is 0, not unknown).
ADDITIVE = {Aggregation.SUM, Aggregation.COUNT, Aggregation.RATE, Aggregation.INCREASE}
NODATA_LABELS = {"nodata": "true"}
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BULK_ROWS = 2000
PRUNE_SLICE = 500


class RuleError(Exception):
    """The rule cannot be evaluated as configured (the message says why)."""


# --- the rule's plan and the series catalogue ------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    metric: str
    matchers: str


@dataclass
class _Plan:
    """What a rule reads and how it combines it: checked once per cycle."""

    window: int
    how: str
    pct: float | None
    group_by: tuple[str, ...]
    numerator: _Side
    denominator: _Side | None
    compare: Callable[[float, float], bool]

    @property
    def per_series(self) -> bool:
        return not self.group_by and self.denominator is None

    def sides(self) -> list[_Side]:
        return [self.numerator] + ([self.denominator] if self.denominator else [])


def _plan(rule: Rule) -> _Plan:
    """Check a rule enough to evaluate it; raise RuleError saying what is wrong."""
    numerator = _Side(rule.metric, rule.matchers or "")
    denominator = _Side(rule.denominator_metric, rule.denominator_matchers or "") if rule.denominator_metric else None
    for side in [numerator] + ([denominator] if denominator else []):
        metric = get_metric(side.metric)
        if metric is None:
            raise RuleError(f"unknown metric {side.metric!r}: it is not in the registry")
        if metric.kind is Kind.HISTOGRAM:
            raise RuleError(f"{side.metric} is a histogram: histograms are exposed, not stored")
        try:
            parse_matchers(side.matchers)
        except MatcherError as exc:
            raise RuleError(f"matchers of {side.metric}: {exc}") from None
    if rule.aggregation not in Aggregation.values:
        raise RuleError(f"unknown aggregation {rule.aggregation!r}")
    if rule.comparator not in COMPARE:
        raise RuleError(f"unknown comparator {rule.comparator!r}")
    if rule.aggregation == Aggregation.PERCENTILE and (rule.percentile is None or not 0 <= rule.percentile <= 100):
        raise RuleError("the percentile aggregation needs a percentile between 0 and 100")
    group_by = rule.group_by or []
    if not isinstance(group_by, list) or not all(isinstance(n, str) and LABEL_NAME.match(n) for n in group_by):
        raise RuleError("group_by must be a list of label names")
    if rule.window_seconds <= 0:
        raise RuleError("the window must be longer than 0 s")
    return _Plan(
        window=int(rule.window_seconds), how=rule.aggregation, pct=rule.percentile, group_by=tuple(group_by),
        numerator=numerator, denominator=denominator, compare=COMPARE[rule.comparator],
    )


@dataclass
class _MetricSeries:
    """The stored series of one metric, and which of them each matcher list selects."""

    rows: list[tuple[int, str]]  # (id, labels_key), by id
    ids: list[int]
    labels: dict[int, dict[str, str]]
    keys: dict[int, str]
    by_key: dict[str, int]
    index: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    matched: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, rows: list[tuple[int, str]]) -> _MetricSeries:
        labels = {sid: json.loads(key) for sid, key in rows}
        index: dict[tuple[str, str], list[int]] = defaultdict(list)
        for sid, lab in labels.items():
            for pair in lab.items():
                index[pair].append(sid)
        return cls(rows=rows, ids=[sid for sid, _ in rows], labels=labels, keys=dict(rows),
                   by_key={key: sid for sid, key in rows}, index=dict(index))

    def match(self, matchers_text: str) -> list[int]:
        found = self.matched.get(matchers_text)
        if found is not None:
            return found
        matchers = parse_matchers(matchers_text)
        # Narrow by the most selective equality matcher through the index, then check them all.
        best: list[int] | None = None
        for m in matchers:
            if m.op == "=" and m.value != "":
                narrowed = self.index.get((m.name, m.value), [])
                if best is None or len(narrowed) < len(best):
                    best = narrowed
        candidates: Iterable[int] = self.labels.keys() if best is None else best
        found = [sid for sid in candidates if all(m.matches(self.labels[sid]) for m in matchers)]
        found.sort()
        if len(self.matched) > 10_000:  # matchers edited again and again: start over
            self.matched.clear()
        self.matched[matchers_text] = found
        return found


# Per process, across cycles: a metric's series and the matcher lookups over them stay valid
# while its (id, labels_key) rows are the same; any series added or pruned rebuilds them.
_catalogue: dict[str, _MetricSeries] = {}


def _load_catalogue(names: Iterable[str]) -> dict[str, _MetricSeries]:
    rows_by_name: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for sid, name, key in store.series_index(names):
        rows_by_name[name].append((sid, key))
    out = {}
    for name in names:
        rows = rows_by_name.get(name, [])
        cached = _catalogue.get(name)
        if cached is None or cached.rows != rows:
            cached = _catalogue[name] = _MetricSeries.build(rows)
        out[name] = cached
    return out


def forget_cached_series() -> None:
    """Drop the per-process series catalogue (tests whose databases reuse series ids)."""
    _catalogue.clear()
    _fingerprints.clear()
    _group_keys.clear()


# --- reading and combining ---------------------------------------------------------------------------


@dataclass
class _Data:
    """One window's reads: stats per series id, and sample values where percentiles pool them."""

    stats: dict[int, store.WindowStats] = field(default_factory=dict)
    values: dict[int, list[float]] = field(default_factory=dict)
    per_how: dict[tuple[str, str, float | None], dict[int, float]] = field(default_factory=dict)


def percentile(values: list[float], pct: float) -> float:
    """Return the `pct` percentile of `values` by linear interpolation (as numpy and PERCENTILE_CONT)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def series_value(st: store.WindowStats, how: str, pct: float | None = None,
                 values: list[float] | None = None) -> float | None:
    """Return one series' figure over the window for an aggregation (None: not enough data)."""
    if how == Aggregation.LAST:
        return st.last
    if how == Aggregation.AVG:
        return st.avg
    if how == Aggregation.MIN:
        return st.min
    if how == Aggregation.MAX:
        return st.max
    if how == Aggregation.SUM:
        return st.sum
    if how == Aggregation.COUNT:
        return float(st.count)
    if how in COUNTER_AGGREGATIONS:
        if st.count < 2 or st.increase is None:
            return None
        if how == Aggregation.INCREASE:
            return st.increase
        span = st.last_ts - (st.first_ts or st.last_ts)
        return st.increase / span if span > 0 else None
    if how == Aggregation.PERCENTILE:
        if st.percentiles is not None and pct in st.percentiles:
            return st.percentiles[pct]
        return percentile(values, pct or 0.0) if values else None
    raise RuleError(f"unknown aggregation {how!r}")


def _combine(how: str, pct: float | None, members: list[int], data: _Data, values: dict[int, float]) -> float | None:
    """Combine the series of one group: sums add up, max/last take the largest, avg is weighted."""
    if how == Aggregation.AVG:
        count = sum(data.stats[sid].count for sid in members)
        return sum(data.stats[sid].sum for sid in members) / count if count else None
    if how == Aggregation.PERCENTILE:
        pooled = [v for sid in members for v in data.values.get(sid, ())]
        return percentile(pooled, pct or 0.0) if pooled else None
    found = [values[sid] for sid in members if sid in values]
    if not found:
        return None
    if how in ADDITIVE:
        return float(sum(found))
    if how == Aggregation.MIN:
        return min(found)
    return max(found)  # max, last


_SIMPLE = {Aggregation.LAST: "last", Aggregation.MIN: "min", Aggregation.MAX: "max", Aggregation.SUM: "sum"}


def _values_for(data: _Data, series: _MetricSeries, metric: str, how: str, pct: float | None) -> dict[int, float]:
    """Each series' value of `metric` for one aggregation: computed once per cycle and window, shared by rules."""
    key = (metric, how, pct if how == Aggregation.PERCENTILE else None)
    found = data.per_how.get(key)
    if found is None:
        stats = data.stats
        present = [(sid, stats[sid]) for sid in series.ids if sid in stats]
        if how in _SIMPLE:
            attribute = _SIMPLE[how]
            found = {sid: getattr(st, attribute) for sid, st in present}
        elif how == Aggregation.AVG:
            found = {sid: st.sum / st.count for sid, st in present}
        elif how == Aggregation.COUNT:
            found = {sid: float(st.count) for sid, st in present}
        elif how == Aggregation.INCREASE:
            found = {sid: st.increase for sid, st in present if st.count > 1 and st.increase is not None}
        elif how == Aggregation.RATE:
            found = {sid: st.increase / (st.last_ts - st.first_ts) for sid, st in present
                     if st.count > 1 and st.increase is not None and st.last_ts > (st.first_ts or st.last_ts)}
        else:
            found = {}
            for sid, st in present:
                value = series_value(st, how, pct, data.values.get(sid))
                if value is not None:
                    found[sid] = value
        data.per_how[key] = found
    return found


def _side_groups(plan: _Plan, side: _Side, series: _MetricSeries, data: _Data) -> dict[Any, tuple[dict, float]]:
    """Return {group key: (group labels, value)} of one side of a rule."""
    ids = series.match(side.matchers)
    values = _values_for(data, series, side.metric, plan.how, plan.pct)
    if plan.per_series:
        labels, keys = series.labels, series.keys
        return {keys[sid]: (labels[sid], values[sid]) for sid in ids if sid in values}
    members: dict[tuple, list[int]] = defaultdict(list)
    stats = data.stats
    for sid in ids:
        if sid in stats:
            lab = series.labels[sid]
            members[tuple(lab.get(name, "") for name in plan.group_by)].append(sid)
    out: dict[Any, tuple[dict, float]] = {}
    for key, sids in members.items():
        value = _combine(plan.how, plan.pct, sids, data, values)
        if value is not None:
            out[key] = ({name: v for name, v in zip(plan.group_by, key, strict=True) if v != ""}, value)
    return out


def _rule_groups(plan: _Plan, catalogue: dict[str, _MetricSeries], data: _Data) -> dict[Any, tuple[dict, float]]:
    """Return the rule's value per group (groups without data are left out)."""
    numerator = _side_groups(plan, plan.numerator, catalogue[plan.numerator.metric], data)
    if plan.denominator is None:
        return numerator
    denominator = _side_groups(plan, plan.denominator, catalogue[plan.denominator.metric], data)
    out = {}
    for key, (labels, den) in denominator.items():
        if den == 0:
            continue  # no denominator: no data for this group
        num = numerator.get(key)
        if num is None:
            if plan.how not in ADDITIVE:
                continue
            out[key] = (labels, 0.0)
        else:
            out[key] = (labels, num[1] / den)
    return out


# --- alerts: labels, fingerprints, summaries ----------------------------------------------------------

_fingerprints: dict[tuple[int, Any], str] = {}
_group_keys: dict[str, tuple[Any, Any]] = {}  # fingerprint -> (group_by, group key): the way back


def fingerprint(rule_id: int, group_labels: dict[str, str]) -> str:
    """Return an alert's fingerprint: sha256 hex of the rule's id and its canonical group labels."""
    return hashlib.sha256(f"{rule_id}\n{store.labels_key(group_labels)}".encode()).hexdigest()


def _cached_fingerprint(rule_id: int, key: tuple[Any, Any] | str, group_labels: dict[str, str]) -> str:
    found = _fingerprints.get((rule_id, key))
    if found is None:
        if len(_fingerprints) > 500_000:
            _fingerprints.clear()
            _group_keys.clear()
        found = _fingerprints[(rule_id, key)] = fingerprint(rule_id, group_labels)
        if isinstance(key, tuple):
            _group_keys[found] = key
    return found


def alert_labels(rule: Rule, group_labels: dict[str, str]) -> dict[str, str]:
    """Return the labels of a rule's alert for one group."""
    extra = {str(k): str(v) for k, v in (rule.labels or {}).items()} if isinstance(rule.labels, dict) else {}
    return {"alertname": rule.name, "severity": rule.severity, **extra, **group_labels}


TEMPLATE_MAX_ITEMS = 1000  # longest string or list a summary template may build, widest range


@lru_cache(maxsize=1)
def _jinja():
    from jinja2.sandbox import SandboxedEnvironment, SecurityError

    class Sandbox(SandboxedEnvironment):
        """Jinja's sandbox (no attributes or callables that reach the server), also bounded in size.

        The sandbox alone lets `"x" * 10**9` or `9 ** 9 ** 9` run; the evaluator renders
        templates inline, so a template must not be able to stall it or eat its memory.
        """

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context, operator, left, right):
            if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
                raise SecurityError("exponent too large")
            if operator == "*":
                for sized, times in ((left, right), (right, left)):
                    if isinstance(sized, str | list | tuple) and isinstance(times, int) and \
                            len(sized) * times > TEMPLATE_MAX_ITEMS:
                        raise SecurityError("result too long")
            return super().call_binop(context, operator, left, right)

    def bounded_range(*args):
        found = range(*args)
        if len(found) > TEMPLATE_MAX_ITEMS:
            raise SecurityError(f"range too wide (at most {TEMPLATE_MAX_ITEMS})")
        return found

    # Plain text: a message line, not HTML.
    env = Sandbox(autoescape=False)
    env.globals["range"] = bounded_range
    return env


@lru_cache(maxsize=1024)
def _template(source: str):
    return _jinja().from_string(source)


def _fmt(value: float | None) -> str:
    if value is None:
        return "no data"
    return f"{value:.4g}" if abs(value) < 1e15 else f"{value:.3e}"


def default_summary(rule: Rule, value: float | None, labels: dict[str, str], *, nodata: bool = False) -> str:
    """Return the summary used when a rule has no template (or a broken one)."""
    shown = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in {"alertname", "severity"})
    if nodata:
        text = f"{rule.name}: no data for {rule.metric} in the last {rule.window_seconds} s"
    else:
        text = f"{rule.name}: {_fmt(value)} {SYMBOLS.get(rule.comparator, rule.comparator)} {_fmt(rule.threshold)}"
    return f"{text} ({shown})" if shown else text


def render_summary(rule: Rule, value: float | None, labels: dict[str, str], *,
                   nodata: bool = False) -> tuple[str, str]:
    """Return (summary, error): the rule's template filled in, or the default text and why."""
    if not rule.summary_template or nodata:
        return default_summary(rule, value, labels, nodata=nodata)[:500], ""
    try:
        text = _template(rule.summary_template).render(
            value=value, threshold=rule.threshold, labels=labels, rule=rule.name, name=rule.name,
            severity=rule.severity, comparator=SYMBOLS.get(rule.comparator, rule.comparator),
            window=rule.window_seconds, metric=rule.metric,
        )
    except Exception as exc:  # a template error must not stop the alert
        return default_summary(rule, value, labels)[:500], f"summary template: {exc}"
    return (" ".join(text.split()) or default_summary(rule, value, labels))[:500], ""


# --- active hours ----------------------------------------------------------------------------------


def rule_is_active(rule: Rule, at: datetime) -> bool:
    """Return whether `at` is within the rule's active hours (no hours set: always)."""
    days = rule.active_days or []
    if rule.active_from is None or rule.active_until is None:
        if not days:
            return True
        return at.astimezone(ZoneInfo(rule.timezone or settings.TIME_ZONE)).weekday() in days
    if rule.active_from == rule.active_until:
        return not days or at.astimezone(ZoneInfo(rule.timezone)).weekday() in days
    return services.window_is_open(days, rule.active_from, rule.active_until, rule.timezone or settings.TIME_ZONE, at)


# --- one evaluation ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Open:
    """An open alert as the decision needs it; full rows are read only for alerts that change."""

    pk: int
    fingerprint: str
    status: str
    pending_since: float
    condition_false_since: float | None
    flapping: bool
    nodata: bool
    value: float | None

    @classmethod
    def of(cls, alert: Alert) -> _Open:
        return cls(alert.pk, alert.fingerprint, alert.status, alert.pending_since.timestamp(),
                   alert.condition_false_since.timestamp() if alert.condition_false_since else None,
                   alert.flapping, alert.labels.get("nodata") == "true", alert.value)


def _open_alerts() -> dict[int, dict[str, _Open]]:
    """Return the open alerts of every rule, by rule id and fingerprint (a few columns, no model rows)."""
    out: dict[int, dict[str, _Open]] = defaultdict(dict)
    rows = (Alert.objects.filter(status__in=OPEN_STATUSES, rule__isnull=False)
            .values_list("pk", "rule_id", "fingerprint", "status", "pending_since", "condition_false_since",
                         "flapping", KT("labels__nodata"), "value"))
    for pk, rule_id, fp, status, pending, false_since, flapping, nodata, value in rows:
        out[rule_id][fp] = _Open(pk, fp, status, pending.timestamp(), false_since.timestamp() if false_since else None,
                                 flapping, nodata == "true", value)
    return out


@dataclass
class _Group:
    labels: dict[str, str]  # the group's own labels (empty for a total, nodata="true" for no data)
    value: float | None
    holds: bool
    nodata: bool = False


@dataclass
class _Cycle:
    """What one evaluation pass knows, and what it did."""

    now: float
    at: datetime
    silences: list
    flap_window: int
    flap_threshold: int
    unchanged: list[tuple[int, float | None]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    changed: list[Alert] = field(default_factory=list)  # to publish once their rule's changes committed
    notes: dict[int, str] = field(default_factory=dict)  # rule id -> a problem that did not stop it (template)


def _groups_of(rule: Rule, plan: _Plan, catalogue: dict[str, _MetricSeries], data: _Data,
               open_alerts: dict[str, _Open]) -> tuple[dict[str, _Group], bool]:
    """Return the rule's groups that matter, by fingerprint, and whether it had any data.

    Those are the groups whose condition holds, and the groups of its open alerts (found
    through the fingerprint's group key, remembered per process); the rest — most groups of
    most rules, most cycles — are never fingerprinted.
    """
    if plan.per_series:
        return _series_groups_of(rule, plan, catalogue[plan.numerator.metric], data, open_alerts)
    compare, threshold = plan.compare, rule.threshold
    groups: dict[str, _Group] = {}
    values = _rule_groups(plan, catalogue, data)
    for key, (labels, value) in values.items():
        if compare(value, threshold):
            groups[_cached_fingerprint(rule.pk, (plan.group_by, key), labels)] = _Group(labels, value, True)
    for fp in open_alerts:
        if fp in groups:
            continue
        known = _group_keys.get(fp)
        if known is None or known[0] != plan.group_by:
            # An alert opened by another process (or before a restart, or an edit of the rule):
            # fingerprint every group once; the keys are remembered from then on.
            for key, (labels, _value) in values.items():
                _cached_fingerprint(rule.pk, (plan.group_by, key), labels)
            known = _group_keys.get(fp)
        if known is not None and known[1] in values:
            labels, value = values[known[1]]
            groups[fp] = _Group(labels, value, compare(value, threshold))
    if not values and rule.no_data == NoDataPolicy.ALERT:
        fp = _cached_fingerprint(rule.pk, "\0nodata", NODATA_LABELS)
        groups[fp] = _Group(dict(NODATA_LABELS), None, True, nodata=True)
    return groups, bool(values)


def _series_groups_of(rule: Rule, plan: _Plan, series: _MetricSeries, data: _Data,
                      open_alerts: dict[str, _Open]) -> tuple[dict[str, _Group], bool]:
    """_groups_of for the common rule, one alert per series: the same result, without a dict of every series."""
    compare, threshold, rule_id = plan.compare, rule.threshold, rule.pk
    values = _values_for(data, series, plan.numerator.metric, plan.how, plan.pct)
    labels, keys = series.labels, series.keys
    groups: dict[str, _Group] = {}
    has_data = False
    for sid in series.match(plan.numerator.matchers):
        value = values.get(sid)
        if value is None:
            continue
        has_data = True
        if compare(value, threshold):
            key = keys[sid]
            groups[_cached_fingerprint(rule_id, ((), key), labels[sid])] = _Group(labels[sid], value, True)
    matched: set[int] | None = None
    for fp in open_alerts:
        if fp in groups:
            continue
        if matched is None:
            matched = set(series.match(plan.numerator.matchers))
        known = _group_keys.get(fp)
        if known is None or known[0] != ():
            # Opened by another process (or before a restart): fingerprint every series once.
            for sid in matched:
                _cached_fingerprint(rule_id, ((), keys[sid]), labels[sid])
            known = _group_keys.get(fp)
        sid = series.by_key.get(known[1]) if known is not None else None
        if sid is not None and sid in matched and sid in values:
            groups[fp] = _Group(labels[sid], values[sid], compare(values[sid], threshold))
    if not has_data and rule.no_data == NoDataPolicy.ALERT:
        fp = _cached_fingerprint(rule_id, "\0nodata", NODATA_LABELS)
        groups[fp] = _Group(dict(NODATA_LABELS), None, True, nodata=True)
    return groups, has_data


def _decide(rule: Rule, groups: dict[str, _Group] | None, has_data: bool, open_alerts: dict[str, _Open],
            cycle: _Cycle, actions: list) -> None:
    """Compare a rule's groups with its open alerts: append transitions to `actions`, note the unchanged.

    `groups` None means the rule is outside its active hours: its open alerts resolve.
    """
    if groups is None:
        for alert in open_alerts.values():
            actions.append(("resolve", alert, None, "Outside the rule's active hours: not evaluated, resolved."))
        return
    open_alerts = dict(open_alerts)
    for fp, group in groups.items():
        alert = open_alerts.pop(fp, None)
        if group.holds:
            if alert is None:
                actions.append(("open", fp, group))
            elif alert.status == AlertStatus.PENDING:
                if cycle.now - alert.pending_since >= rule.for_seconds:
                    actions.append(("fire", alert, group))
                else:
                    cycle.unchanged.append((alert.pk, group.value))
            elif alert.condition_false_since is not None:
                actions.append(("hold_end", alert, group))
            else:
                cycle.unchanged.append((alert.pk, group.value))
        elif alert is not None:
            _clears(rule, alert, group.value, cycle, actions,
                    f"The condition no longer holds (value {_fmt(group.value)}).")
    # Open alerts whose group has no data now.
    for alert in open_alerts.values():
        if alert.nodata:
            _clears(rule, alert, None, cycle, actions, "Data arrived again.")
        elif rule.no_data == NoDataPolicy.KEEP or (rule.no_data == NoDataPolicy.ALERT and not has_data):
            continue  # its state is unknown: leave it as it is
        else:
            _clears(rule, alert, None, cycle, actions, "No data for this alert's series any more.")


def _clears(rule: Rule, alert: _Open, value: float | None, cycle: _Cycle, actions: list, message: str) -> None:
    """Handle an open alert whose condition is false: resolve it, or keep it firing a while."""
    if alert.status == AlertStatus.PENDING:
        actions.append(("resolve", alert, value,
                        f"{message} It had not held for {rule.for_seconds} s: resolved without a notification."))
        return
    hold = rule.keep_firing_for_seconds
    if alert.flapping:
        hold = max(hold, cycle.flap_window)
    if hold <= 0:
        actions.append(("resolve", alert, value, message))
    elif alert.condition_false_since is None:
        actions.append(("hold", alert, value))
    elif cycle.now - alert.condition_false_since >= hold:
        why = "flapping: quiet for the whole flap window" if alert.flapping else f"kept firing for {hold} s"
        actions.append(("resolve", alert, value, f"{message} ({why})"))
    else:
        cycle.unchanged.append((alert.pk, value if value is not None else alert.value))


def _flap_counts(rule_ids: set[int], fingerprints: set[str], cycle: _Cycle) -> dict[str, int]:
    """Return per fingerprint how many earlier incidents fired and resolved within the flap window."""
    if not fingerprints:
        return {}
    since = cycle.at - timedelta(seconds=cycle.flap_window)
    # rule_id first: the (rule, status) index narrows it to the rules that fire now.
    rows = (Alert.objects.filter(rule_id__in=rule_ids, status=AlertStatus.RESOLVED, fingerprint__in=fingerprints,
                                 fired_at__isnull=False, resolved_at__gte=since)
            .values_list("fingerprint").annotate(n=Count("id")).order_by())
    return dict(rows)


def _firing_fields(rule: Rule, group: _Group, flaps: int, cycle: _Cycle) -> dict[str, Any]:
    summary, problem = render_summary(rule, group.value, alert_labels(rule, group.labels), nodata=group.nodata)
    if problem:
        cycle.notes[rule.pk] = problem
    return {"summary": summary, "flap_count": flaps, "flapping": flaps >= cycle.flap_threshold}


def _after_firing(rule: Rule, alert: Alert, cycle: _Cycle) -> None:
    shown = f" (value {_fmt(alert.value)})" if alert.value is not None else ""
    services.record_event(alert, AlertEventKind.FIRING, f"Firing{shown}.", at=cycle.at, value=alert.value)
    if alert.flapping:
        services.record_event(
            alert, AlertEventKind.FLAPPING,
            f"Fired {alert.flap_count + 1} times within {cycle.flap_window // 60} min: it keeps firing until the "
            "condition has been clear for the whole flap window.", at=cycle.at, flap_count=alert.flap_count)
    services.request_notification(alert, NotifyKind.FIRING,
                                  due_at=cycle.at + timedelta(seconds=rule.group_wait_seconds))
    cycle.counts["fired"] += 1


def _open(rule: Rule, fp: str, group: _Group, flaps: int, cycle: _Cycle) -> bool:
    """Insert a new alert, pending or (for_seconds 0) firing; False when another evaluator opened it first."""
    labels = alert_labels(rule, group.labels)
    fire_now = rule.for_seconds == 0
    fields = _firing_fields(rule, group, flaps, cycle)
    if not fire_now:
        fields.update(flap_count=0, flapping=False)  # counted when it fires
    silence = services.silence_for(labels, silences=cycle.silences)
    alert = Alert(
        rule=rule, rule_name=rule.name, fingerprint=fp, labels=labels, severity=rule.severity,
        status=AlertStatus.FIRING if fire_now else AlertStatus.PENDING, value=group.value,
        pending_since=cycle.at, fired_at=cycle.at if fire_now else None, last_evaluated_at=cycle.at,
        silenced_by=silence, **fields,
    )
    if not _insert_open(alert):
        # The partial unique index: another evaluator opened this fingerprint a moment ago (we
        # waited for its commit) and did the side effects.
        return False
    cycle.counts["opened"] += 1
    if group.nodata:
        services.record_event(alert, AlertEventKind.NO_DATA,
                              f"No data for {rule.metric} in the last {rule.window_seconds} s.", at=cycle.at)
    if fire_now:
        _after_firing(rule, alert, cycle)
    else:
        services.record_event(alert, AlertEventKind.PENDING,
                              f"Pending (value {_fmt(group.value)}); fires if it holds for {rule.for_seconds} s.",
                              at=cycle.at, value=group.value)
    if silence is not None:
        services.record_event(alert, AlertEventKind.SILENCED, silence.comment, user=silence.created_by,
                              at=cycle.at, silence=silence.pk)
    cycle.changed.append(alert)
    return True


def _insert_open(alert: Alert) -> bool:
    """INSERT an open alert unless its fingerprint is open already; return whether it was inserted.

    ON CONFLICT against the partial unique index (one open alert per fingerprint) instead of a
    savepoint and an IntegrityError: one statement, and a racing evaluator waits for the other's
    commit and then does nothing. PostgreSQL and SQLite share the syntax.
    """
    fields = [f for f in Alert._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    statuses = ", ".join(f"'{s}'" for s in OPEN_STATUSES)  # our own constants, as in the index
    # Formatted in: our table and column names, placeholders and constants; values are parameters.
    sql = (f"INSERT INTO {quote(Alert._meta.db_table)} ({', '.join(quote(f.column) for f in fields)})"  # noqa: S608
           f" VALUES ({', '.join(['%s'] * len(fields))})"
           f" ON CONFLICT ({quote('fingerprint')}) WHERE {quote('status')} IN ({statuses}) DO NOTHING"
           f" RETURNING {quote('id')}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [f.get_db_prep_save(f.pre_save(alert, True), connection) for f in fields])
        row = cursor.fetchone()
    if row is None:
        return False
    alert.pk = row[0]
    alert._state.adding, alert._state.db = False, connection.alias
    return True


def _fire(rule: Rule, alert: Alert, group: _Group, flaps: int, cycle: _Cycle) -> None:
    fields = _firing_fields(rule, group, flaps, cycle)
    at = cycle.at
    updated = Alert.objects.filter(pk=alert.pk, status=AlertStatus.PENDING).update(
        status=AlertStatus.FIRING, fired_at=at, value=group.value, last_evaluated_at=at, condition_false_since=None,
        **fields)
    if not updated:
        return  # resolved by hand, or fired by another evaluator, meanwhile
    alert.status, alert.fired_at, alert.value, alert.last_evaluated_at = AlertStatus.FIRING, at, group.value, at
    alert.condition_false_since = None
    for name, value in fields.items():
        setattr(alert, name, value)
    _after_firing(rule, alert, cycle)
    cycle.changed.append(alert)


def _resolve(alert: Alert, status: str, value: float | None, message: str, cycle: _Cycle) -> None:
    at = cycle.at
    # `status` is what the decision saw: if it changed since, the decision no longer stands.
    updated = Alert.objects.filter(pk=alert.pk, status=status).update(
        status=AlertStatus.RESOLVED, resolved_at=at, last_evaluated_at=at,
        value=value if value is not None else alert.value)
    if not updated:
        return  # changed meanwhile (by hand or by another evaluator): the next cycle looks again
    alert.status, alert.resolved_at, alert.last_evaluated_at = AlertStatus.RESOLVED, at, at
    if value is not None:
        alert.value = value
    services.record_event(alert, AlertEventKind.RESOLVED, message, at=at, value=value)
    services.on_alert_resolved(alert)
    if status == AlertStatus.FIRING:
        services.request_notification(alert, NotifyKind.RESOLVED)
    cycle.changed.append(alert)
    cycle.counts["resolved"] += 1


def _apply(rule: Rule, actions: list, flaps: dict[str, int], rows: dict[int, Alert], cycle: _Cycle) -> None:
    """Carry out one rule's transitions: each a conditional write, its side effects only if it took."""
    at = cycle.at
    for action in actions:
        kind = action[0]
        if kind == "open":
            _, fp, group = action
            if not _open(rule, fp, group, flaps.get(fp, 0), cycle):
                existing = Alert.objects.filter(fingerprint=fp, status__in=OPEN_STATUSES).first()
                if existing is not None:
                    # Carry on from the winner's row as if we had read it at the start.
                    later: list = []
                    _decide(rule, {fp: group}, True, {fp: _Open.of(existing)}, cycle, later)
                    _apply(rule, [a for a in later if a[0] != "open"], flaps, {existing.pk: existing}, cycle)
        elif kind == "fire":
            alert = rows.get(action[1].pk)
            if alert is not None:
                _fire(rule, alert, action[2], flaps.get(alert.fingerprint, 0), cycle)
        elif kind == "resolve":
            alert = rows.get(action[1].pk)
            if alert is not None:
                _resolve(alert, action[1].status, action[2], action[3], cycle)
        elif kind == "hold":
            # Keep firing for a while: remember when the condition cleared.
            _, alert, value = action
            Alert.objects.filter(pk=alert.pk, status=AlertStatus.FIRING, condition_false_since__isnull=True).update(
                condition_false_since=at, last_evaluated_at=at, value=value if value is not None else alert.value)
        elif kind == "hold_end":
            _, alert, group = action
            Alert.objects.filter(pk=alert.pk, status=AlertStatus.FIRING).update(
                condition_false_since=None, last_evaluated_at=at, value=group.value)


def _publish(alerts: list[Alert]) -> None:
    """Announce the alerts that changed on the `alerts` topic.

    With the counts read once for the whole cycle: by default publish_alert counts every open
    alert for each alert it announces, which a cycle that changes many alerts cannot afford.
    """
    if not alerts:
        return
    counts = services.alert_counts()
    for alert in alerts:
        services.publish_alert(alert, counts=counts)


def _write_unchanged(rows: list[tuple[int, float | None]], at: datetime) -> None:
    """Write value and evaluation time of the open alerts that did not change: one UPDATE (per 2,000)."""
    if not rows:
        return
    table = connection.ops.quote_name(Alert._meta.db_table)
    stamp = Alert._meta.get_field("last_evaluated_at").get_db_prep_save(at, connection)
    statuses = ", ".join(f"'{s}'" for s in OPEN_STATUSES)  # our own constants
    with connection.cursor() as cursor:
        for offset in range(0, len(rows), BULK_ROWS):
            chunk = rows[offset:offset + BULK_ROWS]
            params: list = [stamp]
            for pk, value in chunk:
                params += [pk, value]
            # Formatted in: our table name, placeholders and status constants; values are parameters.
            if connection.vendor == "postgresql":
                values = ", ".join(["(%s::bigint, %s::double precision)"] * len(chunk))
                sql = (f"UPDATE {table} AS a SET last_evaluated_at = %s, value = v.value"  # noqa: S608
                       f" FROM (VALUES {values}) AS v(id, value) WHERE a.id = v.id AND a.status IN ({statuses})")
            else:
                values = ", ".join(["(%s, %s)"] * len(chunk))
                sql = (f"UPDATE {table} SET last_evaluated_at = %s, value = v.column2"  # noqa: S608
                       f" FROM (VALUES {values}) AS v WHERE {table}.id = v.column1 AND {table}.status IN ({statuses})")
            cursor.execute(sql, params)


def _window_bounds(now: float, window: int) -> tuple[int, int]:
    """Return [start, end) in whole seconds for the window (now − window, now]: a sample at `now` counts."""
    end = int(math.floor(now)) + 1
    return end - int(window), end


def _by_window_set(per_metric: dict[str, set[int]]) -> list[tuple[frozenset[int], list[str]]]:
    """Group metrics that need the same windows: one statement per group."""
    groups: dict[frozenset[int], list[str]] = defaultdict(list)
    for metric, windows in sorted(per_metric.items()):
        if windows:
            groups[frozenset(windows)].append(metric)
    return list(groups.items())


def _read(plans: Iterable[_Plan], now: float) -> tuple[dict[str, _MetricSeries], dict[int, _Data]]:
    """Read what the planned rules need: the series catalogue and every window's stats, in few statements."""
    plain: dict[str, set[int]] = defaultdict(set)
    counters: dict[str, set[int]] = defaultdict(set)
    percentiles: dict[str, dict[int, set[float]]] = defaultdict(lambda: defaultdict(set))
    pooled: dict[int, set[str]] = defaultdict(set)  # window -> metrics whose sample values a group pools
    windows: set[int] = set()
    for plan in plans:
        windows.add(plan.window)
        for side in plan.sides():
            (counters if plan.how in COUNTER_AGGREGATIONS else plain)[side.metric].add(plan.window)
            if plan.how == Aggregation.PERCENTILE:
                if plan.per_series:
                    percentiles[side.metric][plan.window].add(float(plan.pct))
                else:
                    pooled[plan.window].add(side.metric)
    catalogue = _load_catalogue(sorted(set(plain) | set(counters)))
    data = {window: _Data() for window in windows}
    end = _window_bounds(now, 0)[1]
    for needed, metrics in _by_window_set(plain):
        found = store.windows_stats(metrics, [end - w for w in needed], end, now=now)
        for window in needed:
            data[window].stats.update(found[end - window])
    for needed, metrics in _by_window_set(counters):
        found = store.windows_stats(metrics, [end - w for w in needed], end, now=now, counters=True)
        for window in needed:
            stats = data[window].stats
            for sid, st in found[end - window].items():
                if sid in stats:  # read plainly too (another rule's avg of the same counter)
                    stats[sid].first_ts, stats[sid].increase = st.first_ts, st.increase
                else:
                    stats[sid] = st
    by_pcts: dict[tuple[frozenset[int], frozenset[float]], list[str]] = defaultdict(list)
    for metric, per_window in percentiles.items():
        by_pcts[(frozenset(per_window), frozenset(p for ps in per_window.values() for p in ps))].append(metric)
    for (needed, pcts), metrics in by_pcts.items():
        found = store.windows_percentiles(metrics, [end - w for w in needed], end, pcts, now=now)
        for window in needed:
            if found is None:  # not on this database: the values come to us
                pooled[window].update(metrics)
                continue
            stats = data[window].stats
            for sid, figures in found[end - window].items():
                if sid in stats:
                    stats[sid].percentiles = figures
    for window, metrics in pooled.items():
        data[window].values = store.window_values(metrics, end - window, end, now=now)
    return catalogue, data


def evaluate_rules(now: float | None = None) -> dict[str, int]:
    """Evaluate every enabled rule once and write what changed (without the lease: run_cycle holds it)."""
    now = time.time() if now is None else float(now)
    at = datetime.fromtimestamp(now, tz=UTC)
    cycle = _Cycle(now=now, at=at, silences=services.active_silences(),
                   flap_window=settings.ALERTS_FLAP_WINDOW_SECONDS, flap_threshold=settings.ALERTS_FLAP_THRESHOLD)
    began = time.perf_counter()
    # Open alerts first, rules second: a rule enabled in between is simply evaluated.
    open_by_rule = _open_alerts()
    rules = list(Rule.objects.filter(enabled=True))
    errors: dict[int, str] = {}
    plans: dict[int, _Plan] = {}
    inactive: set[int] = set()
    for rule in rules:
        try:
            if not rule_is_active(rule, at):
                inactive.add(rule.pk)
            else:
                plans[rule.pk] = _plan(rule)
        except Exception as exc:  # one broken rule must not stop the others
            errors[rule.pk] = f"{exc}" if isinstance(exc, RuleError) else f"{type(exc).__name__}: {exc}"
    started = time.perf_counter()
    catalogue, data = _read(plans.values(), now)
    read_at = time.perf_counter()

    decided: list[tuple[Rule, list]] = []
    for rule in rules:
        if rule.pk in errors:
            continue
        actions: list = []
        open_alerts = open_by_rule.pop(rule.pk, {})
        try:
            if rule.pk in inactive:
                _decide(rule, None, False, open_alerts, cycle, actions)
            else:
                plan = plans[rule.pk]
                groups, has_data = _groups_of(rule, plan, catalogue, data[plan.window], open_alerts)
                _decide(rule, groups, has_data, open_alerts, cycle, actions)
        except Exception as exc:
            errors[rule.pk] = f"{type(exc).__name__}: {exc}"
            continue
        if actions:
            decided.append((rule, actions))
    # Rules disabled (not deleted) since their alerts opened: those alerts resolve.
    enabled = {rule.pk for rule in rules}
    disabled = [("resolve", alert, None, "The rule was disabled.")
                for rule_id, alerts in open_by_rule.items() if rule_id not in enabled for alert in alerts.values()]

    decided_at = time.perf_counter()
    # The full rows of the alerts that change, and the flap history of what fires: one query each.
    changing = [a[1].pk for _, acts in decided for a in acts if a[0] in ("fire", "resolve")]
    rows = Alert.objects.in_bulk(changing + [a[1].pk for a in disabled])
    firing = {a[1] for rule, acts in decided if rule.for_seconds == 0 for a in acts if a[0] == "open"}
    firing |= {a[1].fingerprint for _, acts in decided for a in acts if a[0] == "fire"}
    flaps = _flap_counts({rule.pk for rule, _ in decided}, firing, cycle)
    published: list[Alert] = []
    # One transaction for everything the cycle writes (one commit, one WAL flush), a savepoint
    # per rule: a rule whose changes fail rolls back alone, and the others are written.
    with transaction.atomic():
        for rule, actions in decided:
            try:
                with transaction.atomic():
                    _apply(rule, actions, flaps, rows, cycle)
                published += cycle.changed
            except Exception as exc:
                logger.warning("alert rule %r: its changes could not be written", rule.name, exc_info=True)
                errors[rule.pk] = f"{type(exc).__name__}: {exc}"
            cycle.changed = []
        for action in disabled:
            try:
                with transaction.atomic():
                    _apply(Rule(), [action], {}, rows, cycle)
                published += cycle.changed
            except Exception:
                logger.warning("alert %s of a disabled rule could not be resolved", action[1].pk, exc_info=True)
            cycle.changed = []
        _write_unchanged(cycle.unchanged, at)
        _record_rule_outcomes(rules, errors, cycle, inactive)
    _publish(published)
    done = time.perf_counter()
    return {"rules": len(rules), "evaluated": len(rules) - len(errors) - len(inactive), "errors": len(errors),
            "inactive": len(inactive), "opened": cycle.counts["opened"], "fired": cycle.counts["fired"],
            "resolved": cycle.counts["resolved"], "unchanged": len(cycle.unchanged),
            "load_ms": int((started - began) * 1000), "read_ms": int((read_at - started) * 1000),
            "decide_ms": int((decided_at - read_at) * 1000),
            "write_ms": int((done - decided_at) * 1000)}


def _record_rule_outcomes(rules: list[Rule], errors: dict[int, str], cycle: _Cycle, inactive: set[int]) -> None:
    """Stamp the evaluated rules in one UPDATE; store new problems, clear solved ones."""
    ok = [rule.pk for rule in rules if rule.pk not in errors and rule.pk not in inactive]
    for offset in range(0, len(ok), BULK_ROWS):
        Rule.objects.filter(pk__in=ok[offset:offset + BULK_ROWS]).update(last_evaluated_at=cycle.at)
    for rule in rules:
        if rule.pk in inactive and rule.pk not in errors:
            continue
        problem = (errors.get(rule.pk) or cycle.notes.get(rule.pk, ""))[:2000]
        if problem != (rule.last_error or ""):
            Rule.objects.filter(pk=rule.pk).update(last_error=problem)
            if problem:
                # Logged when it changes, not every cycle.
                logger.warning("alert rule %r: %s", rule.name, problem)


# --- the cycle ----------------------------------------------------------------------------------------


_clock = time.perf_counter  # how run_cycle measures its duration (tests stand in a slow clock)


def _lease_seconds() -> float:
    return max(settings.ALERTS_EVALUATION_SECONDS * 4, 60)


def _claim(at: datetime) -> datetime | None:
    """Take the evaluator's lease with a conditional UPDATE; return its end (our token) or None if held."""
    until = at + timedelta(seconds=_lease_seconds())
    free = Q(lease_until__isnull=True) | Q(lease_until__lte=at)
    if EvaluatorState.objects.filter(free, pk=1).update(lease_until=until, last_started_at=at):
        return until
    if not EvaluatorState.objects.filter(pk=1).exists():
        # get_or_create retries its read when another worker creates the row at the same moment.
        EvaluatorState.objects.get_or_create(pk=1)
        if EvaluatorState.objects.filter(free, pk=1).update(lease_until=until, last_started_at=at):
            return until
    return None


def run_cycle(now: float | None = None) -> dict:
    """Run one evaluation cycle under the evaluator's lease (the beat task's body); report what it did."""
    wall = time.time() if now is None else float(now)
    at = datetime.fromtimestamp(wall, tz=UTC)
    interval = settings.ALERTS_EVALUATION_SECONDS
    token = _claim(at)
    if token is None:
        EvaluatorState.objects.filter(pk=1).update(skipped=F("skipped") + 1)
        logger.warning("alert evaluation skipped: the previous evaluation is still running (lease held)")
        return {"skipped": True}
    started = _clock()
    report: dict = {"skipped": False}
    error = ""
    try:
        report.update(evaluate_rules(wall))
        # With no silence active and no open alert pointing at one, refreshing would change
        # nothing: skip loading and locking every open alert.
        if services.active_silences() or Alert.objects.filter(status__in=OPEN_STATUSES,
                                                              silenced_by__isnull=False).exists():
            report["silences_changed"] = services.refresh_silences()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        logger.exception("alert evaluation cycle failed")
        raise
    finally:
        duration = _clock() - started
        overran = duration > interval
        finished = at + timedelta(seconds=duration)
        changes: dict[str, Any] = {
            "cycles": F("cycles") + 1, "last_finished_at": finished, "last_duration_ms": int(duration * 1000),
            "rules_evaluated": report.get("evaluated", 0), "last_error": error[:2000],
            # Released only if it is still ours (a cycle that outlived its lease lost it).
            "lease_until": Case(When(lease_until=token, then=Value(None)), default=F("lease_until")),
        }
        if overran:
            changes.update(overruns=F("overruns") + 1, last_overrun_at=finished)
        EvaluatorState.objects.filter(pk=1).update(**changes)
        if overran:
            logger.warning("alert evaluation overran its interval: %.1f s for a %s s interval (%s rules)",
                           duration, interval, report.get("rules", "?"))
        report.update(duration_ms=int(duration * 1000), overran=overran)
    return report


# --- validation ---------------------------------------------------------------------------------------


def validate_rule(rule: Rule) -> None:
    """Raise ValidationError with field errors for anything that would keep `rule` from evaluating.

    Works on an unsaved rule: the admin form and the API serializer call it before saving.
    """
    errors: dict[str, str] = {}
    for name in ("metric", "denominator_metric"):
        metric_name = (getattr(rule, name) or "").strip()
        if not metric_name:
            if name == "metric":
                errors[name] = "Choose a metric from the registry."
            continue
        metric = get_metric(metric_name)
        if metric is None:
            errors[name] = f"Unknown metric “{metric_name}”: choose one from the registry."
        elif metric.kind is Kind.HISTOGRAM:
            errors[name] = (f"“{metric_name}” is a histogram: histograms are exposed to Prometheus but not stored, "
                            "so a rule cannot read them.")
    for name in ("matchers", "denominator_matchers"):
        try:
            parse_matchers(getattr(rule, name) or "")
        except MatcherError as exc:
            errors[name] = str(exc)[:1].upper() + str(exc)[1:]
    if (rule.denominator_matchers or "").strip() and not (rule.denominator_metric or "").strip():
        errors.setdefault("denominator_matchers", "Matchers for the denominator need a denominator metric.")
    if rule.aggregation not in Aggregation.values:
        errors["aggregation"] = "Choose an aggregation."
    if rule.aggregation == Aggregation.PERCENTILE and rule.percentile is None:
        errors["percentile"] = "Give the percentile to compute, from 0 to 100 (e.g. 95)."
    elif rule.percentile is not None and not (math.isfinite(rule.percentile) and 0 <= rule.percentile <= 100):
        errors["percentile"] = "The percentile is a number from 0 to 100."
    sample = settings.METRICS_SAMPLE_SECONDS
    if rule.window_seconds is None or rule.window_seconds < sample:
        errors["window_seconds"] = f"At least {sample} s: metrics are sampled every {sample} s."
    elif rule.aggregation in COUNTER_AGGREGATIONS and rule.window_seconds < 2 * sample:
        errors["window_seconds"] = (f"At least {2 * sample} s for {rule.aggregation}: it needs two samples "
                                    f"(metrics are sampled every {sample} s).")
    if rule.comparator not in COMPARE:
        errors["comparator"] = "Choose a comparison."
    if rule.threshold is None or not isinstance(rule.threshold, int | float) or not math.isfinite(rule.threshold):
        errors["threshold"] = "Give a number."
    if rule.no_data not in NoDataPolicy.values:
        errors["no_data"] = "Choose what no data means."
    group_by = rule.group_by
    if group_by in (None, ""):
        group_by = []
    if not isinstance(group_by, list) or not all(isinstance(n, str) and LABEL_NAME.match(n) for n in group_by):
        errors["group_by"] = 'A list of label names, e.g. ["host"] (empty: one alert per series).'
    elif len(set(group_by)) != len(group_by):
        errors["group_by"] = "Name each label once."
    labels = rule.labels if rule.labels not in (None, "") else {}
    if not isinstance(labels, dict) or not all(
            isinstance(k, str) and LABEL_NAME.match(k) and isinstance(v, str | int | float) for k, v in labels.items()):
        errors["labels"] = 'An object of label names to values, e.g. {"team": "content"}.'
    elif {"alertname", "severity"} & set(labels):
        errors["labels"] = "alertname and severity are set from the rule's name and severity."
    days = rule.active_days if rule.active_days not in (None, "") else []
    if not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6
                                             for d in days):
        errors["active_days"] = "Weekdays as numbers: 0 (Monday) to 6 (Sunday)."
    if (rule.active_from is None) != (rule.active_until is None):
        errors["active_until" if rule.active_until is None else "active_from"] = (
            "Give both the start and the end of the active hours, or neither.")
    try:
        ZoneInfo(rule.timezone or "")
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        errors["timezone"] = f"Unknown time zone “{rule.timezone}”: use an IANA name such as Asia/Kolkata or UTC."
    if rule.summary_template:
        from jinja2 import TemplateError

        try:
            _jinja().parse(rule.summary_template)
        except TemplateError as exc:
            errors["summary_template"] = f"The template does not compile: {exc}"
    if errors:
        raise ValidationError(errors)


# --- preview ------------------------------------------------------------------------------------------

PREVIEW_MAX_SERIES = 300
PREVIEW_MAX_GROUPS = 20


@dataclass
class _MinuteSeries:
    """One series' minute buckets over the preview, with prefix sums for sliding windows."""

    counts: list[int]
    sums: list[float]
    mins: list[float]
    maxs: list[float]
    lasts: list[float]
    avgs: list[float]
    prefix_count: list[int]
    prefix_sum: list[float]
    prefix_delta: list[float]  # counter growth up to each bucket (resets counted from zero)
    prev_data: list[int]  # the last bucket with data at or before i (-1: none)
    next_data: list[int]  # the first bucket with data at or after i (len: none)

    @classmethod
    def build(cls, points: dict[int, store.Point], first: int, size: int) -> _MinuteSeries:
        counts, sums = [0] * size, [0.0] * size
        mins, maxs, lasts, avgs = [math.inf] * size, [-math.inf] * size, [0.0] * size, [0.0] * size
        for t, p in points.items():
            i = (t - first) // 60
            if 0 <= i < size and p.count:
                counts[i], sums[i], mins[i], maxs[i], lasts[i], avgs[i] = p.count, p.sum, p.min, p.max, p.last, p.avg
        prefix_count, prefix_sum, prefix_delta = [0] * (size + 1), [0.0] * (size + 1), [0.0] * size
        prev_data, next_data = [-1] * size, [size] * size
        previous, delta = -1, 0.0
        for i in range(size):
            prefix_count[i + 1] = prefix_count[i] + counts[i]
            prefix_sum[i + 1] = prefix_sum[i] + sums[i]
            if counts[i]:
                if previous >= 0:
                    delta += lasts[i] - lasts[previous] if lasts[i] >= lasts[previous] else lasts[i]
                previous = i
            prefix_delta[i] = delta
            prev_data[i] = previous
        following = size
        for i in range(size - 1, -1, -1):
            if counts[i]:
                following = i
            next_data[i] = following
        return cls(counts, sums, mins, maxs, lasts, avgs, prefix_count, prefix_sum, prefix_delta, prev_data, next_data)

    def stats(self, lo: int, hi: int, first: int) -> store.WindowStats | None:
        """Return the stats of buckets [lo, hi), or None without data."""
        lo = max(lo, 0)
        count = self.prefix_count[hi] - self.prefix_count[lo]
        if not count:
            return None
        a, b = self.next_data[lo], self.prev_data[hi - 1]
        increase = (self.lasts[a] - self.mins[a]) + (self.prefix_delta[b] - self.prefix_delta[a])
        return store.WindowStats(
            count=count, sum=self.prefix_sum[hi] - self.prefix_sum[lo], min=min(self.mins[lo:hi]),
            max=max(self.maxs[lo:hi]), last=self.lasts[b], first_ts=first + a * 60,
            last_ts=first + (b + 1) * 60, increase=increase,
        )

    def values(self, lo: int, hi: int) -> list[float]:
        return [self.avgs[i] for i in range(max(lo, 0), hi) if self.counts[i]]


def _would_fire(rule: Rule, points: list[tuple[int, float | None]], compare) -> list[dict]:
    """Return the intervals during which an alert over these points would have fired (for and keep-firing honoured)."""
    intervals: list[dict] = []
    pending_since = firing_from = false_since = None
    for t, value in points:
        if value is None and rule.no_data == NoDataPolicy.KEEP:
            continue
        holds = value is not None and compare(value, rule.threshold)
        if holds:
            false_since = None
            if firing_from is None:
                pending_since = t if pending_since is None else pending_since
                # Held at pending_since and now: assume in between too, so it fired on time.
                if t - pending_since >= rule.for_seconds:
                    firing_from = pending_since + rule.for_seconds
        else:
            pending_since = None
            if firing_from is not None:
                false_since = t if false_since is None else false_since
                if t - false_since >= rule.keep_firing_for_seconds:
                    intervals.append({"from": firing_from, "until": t})
                    firing_from = false_since = None
    if firing_from is not None:
        intervals.append({"from": firing_from, "until": None})
    return intervals


def preview_rule(rule: Rule, *, hours: int = 24, now: float | None = None) -> dict:
    """Return the rule's value per group over the last `hours` and when it would have fired.

    Works on an unsaved rule; raises ValidationError as validate_rule does. Points are one
    per minute (up to 6 h) or per 5 minutes, computed from minute rollups (the raw samples
    for the minutes not rolled up yet): windows are whole minutes, percentiles are over
    minute averages, flap damping is left out — a close preview, not a replay. Shape
    (JSON-ready, times in Unix seconds):

        {"start", "end", "step", "hours", "threshold", "comparator", "aggregation",
         "series": series read, "truncated": more series matched than were read,
         "groups_total", "groups": [{"labels", "points": [[t, value|null], …],
                                     "firing": [{"from", "until"|null}, …]}],  # the top 20
         "firing": [{"labels", "from", "until"|null}, …] (every group, by time), "fired_count"}
    """
    validate_rule(rule)
    plan = _plan(rule)
    hours = max(1, min(int(hours), 7 * 24))
    step = 60 if hours <= 6 else 300
    now_s = int(time.time() if now is None else now)
    end = -(-now_s // 60) * 60  # the minute under way counts, as far as it goes
    steps = hours * 3600 // step
    times = [end - (steps - 1 - k) * step for k in range(steps)]
    span = max(1, math.ceil(plan.window / 60))  # minute buckets per window
    first = times[0] - span * 60
    size = (end - first) // 60

    names = sorted({side.metric for side in plan.sides()})
    rows_by_name: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for sid, name, key in store.series_index(names):
        rows_by_name[name].append((sid, key))
    full = {name: _MetricSeries.build(rows_by_name.get(name, [])) for name in names}
    matched: dict[str, list[int]] = {}
    truncated = False
    for side in plan.sides():
        ids = full[side.metric].match(side.matchers)
        truncated |= len(ids) > PREVIEW_MAX_SERIES
        matched.setdefault(side.metric, [])
        matched[side.metric] = sorted(set(matched[side.metric]) | set(ids[:PREVIEW_MAX_SERIES]))
    catalogue = {}
    for name in names:
        keep = set(matched.get(name, []))
        catalogue[name] = _MetricSeries.build([(sid, key) for sid, key in rows_by_name.get(name, []) if sid in keep])
    all_ids = sorted({sid for ids in matched.values() for sid in ids})
    buckets = store.step_buckets(all_ids, first, end, 60)
    minutes = {sid: _MinuteSeries.build(buckets.get(sid, {}), first, size) for sid in all_ids}

    series_points: dict[Any, dict] = {}
    for k, t in enumerate(times):
        hi = (t - first) // 60
        data = _Data()
        for sid, m in minutes.items():
            st = m.stats(hi - span, hi, first)
            if st is not None:
                data.stats[sid] = st
                if plan.how == Aggregation.PERCENTILE:
                    data.values[sid] = m.values(hi - span, hi)
        groups = _rule_groups(plan, catalogue, data)
        if rule.no_data == NoDataPolicy.ALERT:
            # The no-data alert's "value": 1 while the rule has no data at all, else 0.
            entry = series_points.setdefault("\0nodata", {"labels": dict(NODATA_LABELS), "values": [0.0] * steps})
            entry["values"][k] = 0.0 if groups else 1.0
        for key, (labels, value) in groups.items():
            entry = series_points.setdefault(key, {"labels": labels, "values": [None] * steps})
            entry["values"][k] = value
    compare = plan.compare
    out_groups = []
    for entry in series_points.values():
        if entry["labels"] == NODATA_LABELS and not any(entry["values"]):
            continue  # it always had data
        points = list(zip(times, entry["values"], strict=True))
        if entry["labels"] == NODATA_LABELS:
            intervals = _would_fire(rule, points, lambda v, _: v >= 1)
        else:
            intervals = _would_fire(rule, points, compare)
        out_groups.append({"labels": entry["labels"], "points": [[t, v] for t, v in points], "firing": intervals})
    high = rule.comparator in (Comparator.GT, Comparator.GTE, Comparator.NE, Comparator.EQ)

    def worst(group: dict) -> tuple:
        found = [v for _, v in group["points"] if v is not None]
        extreme = (max(found) if high else -min(found)) if found else -math.inf
        return (not group["firing"], -extreme)

    out_groups.sort(key=worst)
    firing = sorted(({"labels": g["labels"], **i} for g in out_groups for i in g["firing"]), key=lambda f: f["from"])
    return {
        "start": times[0] - step, "end": end, "step": step, "hours": hours, "threshold": rule.threshold,
        "comparator": rule.comparator, "aggregation": rule.aggregation, "series": len(all_ids),
        "truncated": truncated, "groups_total": len(out_groups), "groups": out_groups[:PREVIEW_MAX_GROUPS],
        "firing": firing, "fired_count": len(firing),
    }


# --- retention ----------------------------------------------------------------------------------------


def prune_resolved(now: float | None = None) -> dict:
    """Delete resolved alerts (their timeline with them) and sent or failed notifications past retention."""
    at = datetime.fromtimestamp(time.time() if now is None else float(now), tz=UTC)
    cutoff = at - timedelta(days=settings.ALERTS_RESOLVED_RETENTION_DAYS)
    from .models import Notification

    counts = {"alerts": 0, "notifications": 0}
    for key, model, old in (
        ("alerts", Alert, Q(status=AlertStatus.RESOLVED, resolved_at__lt=cutoff)),
        ("notifications", Notification,
         Q(status__in=[NotificationStatus.SENT, NotificationStatus.FAILED], created_at__lt=cutoff)),
    ):
        # Slices in short transactions: a long backlog never holds locks for long.
        while True:
            ids = list(model.objects.filter(old).order_by("pk").values_list("pk", flat=True)[:PRUNE_SLICE])
            if not ids:
                break
            with transaction.atomic():
                _, per_model = model.objects.filter(old, pk__in=ids).delete()
            deleted = per_model.get(model._meta.label, 0)
            counts[key] += deleted
            if not deleted:
                break
    if any(counts.values()):
        logger.info("pruned %(alerts)d resolved alerts and %(notifications)d notifications", counts)
    return counts
