"""SLOs: indicators counted from the domain tables, error budgets, burn rates, burn-rate alert
rules, the defaults bootstrap creates, and the monthly SLA report.

An SLO says "at least `objective` % of the events of `indicator` are good over the last
`window_days` days". Each indicator counts (good, total) events for a time range [start, end)
straight from the tables that hold the truth — deliveries, health-check flips, content
decisions, or two counters in the metric store — so the figures are exact, not sampled:

    SLI               = good ÷ total over the window
    error budget      = 1 − objective/100            (the bad share the objective allows)
    budget remaining  = 1 − (bad share ÷ error budget)  (below 0: the objective is missed)
    burn rate over w  = bad share in w ÷ error budget   (1 = spending exactly on budget)

`record_slos()` (beat, every ALERTS_SLO_SECONDS) writes those figures to the metric store;
two alert rules per SLO (Google SRE's multiwindow, multi-burn-rate alerts) read them:
fast = min(burn 1 h, burn 5 min) > 14.4, slow = min(burn 6 h, burn 30 min) > 6.

Cost: the window is split into local days. A day that ended more than SETTLE_SECONDS ago is
counted once and its (good, total) kept in the cache (Redis) for DAY_CACHE_SECONDS; only the
two partial days at the window's edges and the short burn windows are counted every time.
So the 30-day window costs about as much as the last day, and a late change to a closed day
(a person retrying a failed delivery) shows within the hour.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import math
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncDate
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from opscenter.audit import record_audit
from opscenter.models import AuditSource

from .matchers import MatcherError, equality_labels, format_matchers, matches_all, parse_matchers
from .models import SLO, BuiltinDefault, Indicator, Rule, Severity

logger = logging.getLogger(__name__)

# Burn-rate windows (label → seconds) and the multiwindow pairs the alert rules read.
BURN_WINDOWS: dict[str, int] = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600}
FAST_BURN = 14.4  # 2 % of a 30-day budget in one hour
SLOW_BURN = 6.0  # 5 % of a 30-day budget in six hours
AT_RISK_BUDGET = 0.25  # met, but less than a quarter of the budget left
SETTLE_SECONDS = 600  # a day is final (cacheable) this long after it ended: late commits, receipts
DAY_CACHE_SECONDS = 3600
CACHE_VERSION = 1
MAX_WINDOW_DAYS = 365

SLI_METRIC = "opscenter_slo_sli_ratio"
BUDGET_METRIC = "opscenter_slo_error_budget_remaining_ratio"
BURN_METRIC = "opscenter_slo_burn_rate"
FAST_METRIC = "opscenter_slo_fast_burn"
SLOW_METRIC = "opscenter_slo_slow_burn"


class IndicatorError(Exception):
    """The indicator cannot be counted (its health check is gone, a metric is unknown …)."""


@dataclass(frozen=True)
class Events:
    """Good and total events of an indicator over some time (seconds, for uptime)."""

    good: float = 0.0
    total: float = 0.0

    def __add__(self, other: Events) -> Events:
        return Events(self.good + other.good, self.total + other.total)

    @property
    def bad(self) -> float:
        return max(0.0, self.total - self.good)

    @property
    def ratio(self) -> float | None:
        """Return good ÷ total (0..1), or None when nothing was counted."""
        if self.total <= 0:
            return None
        return min(1.0, max(0.0, self.good / self.total))


def _sum(events: Iterable[Events]) -> Events:
    return reduce(lambda a, b: a + b, events, Events())


def display_zone() -> zoneinfo.ZoneInfo:
    """Return the zone days, months and the report are counted in (settings.TIME_ZONE)."""
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def day_start(day: date, zone: zoneinfo.ZoneInfo) -> datetime:
    """Return the start of a local day, in UTC (arithmetic on UTC datetimes is DST-safe)."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


# --- indicators -----------------------------------------------------------------------------------


def _unknown_keys(params: dict, allowed: set[str]) -> list[str]:
    return [f"{key}: unknown setting (this indicator takes {', '.join(sorted(allowed)) or 'none'})"
            for key in sorted(set(params) - allowed)]


class DeliverySuccess:
    """Deliveries that finished in the range: good = reached the advisor (sent, delivered, read), total = those + failed.

    A sent delivery finished when it was sent (sent_at); a failed one when it last changed
    (updated_at: the failure is its last change). Queued and sending ones have not finished.
    """

    kind = Indicator.DELIVERY_SUCCESS
    unit = "deliveries"
    PARAMS = {"channel"}

    @staticmethod
    def clean(params: dict, *, enabled: bool = True) -> dict:
        errors = _unknown_keys(params, DeliverySuccess.PARAMS)
        channel = params.get("channel")
        if channel is not None and (not isinstance(channel, str) or not channel.strip() or len(channel) > 20):
            errors.append("channel: a channel name such as outbox, webhook or whatsapp (at most 20 characters), "
                          "or leave it out for every channel")
        if errors:
            raise ValidationError({"params": errors})
        return {"channel": channel.strip()} if channel else {}

    def __init__(self, params: dict) -> None:
        self.channel = (params or {}).get("channel") or ""

    @property
    def cache_key(self) -> str:
        return f"delivery:{self.channel}"

    def _rows(self):
        from advisors.models import Delivery

        rows = Delivery.objects.all()
        return rows.filter(channel=self.channel) if self.channel else rows

    GOOD = ("sent", "delivered", "read")
    FAILED = "failed"

    def count(self, start: datetime, end: datetime) -> Events:
        good = self._rows().filter(status__in=self.GOOD, sent_at__gte=start, sent_at__lt=end).count()
        failed = self._rows().filter(status=self.FAILED, updated_at__gte=start, updated_at__lt=end).count()
        return Events(float(good), float(good + failed))

    def daily(self, days: list[tuple[date, datetime, datetime]], zone: zoneinfo.ZoneInfo) -> dict[date, Events]:
        lo, hi = min(d[1] for d in days), max(d[2] for d in days)
        good = dict(self._rows().filter(status__in=self.GOOD, sent_at__gte=lo, sent_at__lt=hi)
                    .annotate(day=TruncDate("sent_at", tzinfo=zone)).values_list("day")
                    .annotate(n=Count("id")).order_by())
        failed = dict(self._rows().filter(status=self.FAILED, updated_at__gte=lo, updated_at__lt=hi)
                      .annotate(day=TruncDate("updated_at", tzinfo=zone)).values_list("day")
                      .annotate(n=Count("id")).order_by())
        return {d: Events(float(good.get(d, 0)), float(good.get(d, 0) + failed.get(d, 0))) for d, _, _ in days}

    def describe(self) -> str:
        where = f"over {self.channel}" if self.channel else "over every channel"
        return f"deliveries sent, delivered or read of all that finished, {where}"


class HealthUptime:
    """Time-weighted uptime of one health check: good = seconds up, total = seconds up or down.

    The same walk as monitoring.health.services._uptime (back from the current state through
    the flips; unknown time and time before the check existed count neither way), but
    returning the seconds, so days and windows add up exactly.
    """

    kind = Indicator.HEALTH_UPTIME
    unit = "seconds"
    PARAMS = {"check"}

    @staticmethod
    def clean(params: dict, *, enabled: bool = True) -> dict:
        from monitoring.health.models import HealthCheck

        errors = _unknown_keys(params, HealthUptime.PARAMS)
        name = params.get("check")
        if name in (None, ""):
            if enabled:
                errors.append("check: the name of the health check to follow (Health page)")
        elif not isinstance(name, str) or not HealthCheck.objects.filter(name=name).exists():
            errors.append(f"check: there is no health check named “{name}”")
        if errors:
            raise ValidationError({"params": errors})
        return {"check": name} if name else {}

    def __init__(self, params: dict) -> None:
        from monitoring.health.models import HealthCheck

        name = (params or {}).get("check")
        if not name:
            raise IndicatorError("No health check chosen: set params.check to a check's name.")
        self.check = HealthCheck.objects.filter(name=name).first()
        if self.check is None:
            raise IndicatorError(f"There is no health check named “{name}” (renamed or deleted?).")

    @property
    def cache_key(self) -> str:
        return f"health:{self.check.pk}"

    def _flips(self, after: datetime) -> list:
        return list(self.check.flips.filter(at__gt=after).only("at", "from_state").order_by("-at", "-id"))

    def _seconds(self, flips_desc: list, start: datetime, end: datetime) -> Events:
        from monitoring.health.models import CheckState

        seconds = {CheckState.UP: 0.0, CheckState.DOWN: 0.0, CheckState.UNKNOWN: 0.0}
        cursor, state = end, self.check.state
        for flip in flips_desc:
            if flip.at <= start:
                break
            if flip.at < cursor:
                seconds[state] += (cursor - flip.at).total_seconds()
                cursor = flip.at
            state = flip.from_state
        begin = max(start, self.check.created_at)
        if cursor > begin:
            seconds[state] += (cursor - begin).total_seconds()
        up = seconds[CheckState.UP]
        return Events(up, up + seconds[CheckState.DOWN])

    def count(self, start: datetime, end: datetime) -> Events:
        return self._seconds(self._flips(start), start, end)

    def daily(self, days: list[tuple[date, datetime, datetime]], zone: zoneinfo.ZoneInfo) -> dict[date, Events]:
        flips = self._flips(min(d[1] for d in days))
        return {d: self._seconds(flips, s, e) for d, s, e in days}

    def describe(self) -> str:
        return f"time-weighted uptime of the health check “{self.check.name}”"


_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class DecidedBefore:
    """Content of a cycle decided (approved or rejected, by a reviewer or the approval guardian) before a
    local time of day on the cycle date.

    The engine's cycle date is the day the posts are for: the 20:30 run plans tomorrow's
    posts (agents.engine.services.default_cycle_date), so "before 08:00 the morning after the
    evening run" is 08:00 on the cycle date itself. Each item counts when its deadline passes:
    total = items submitted for review whose deadline is in the range; good = those decided
    before it. An item sent back for revision counts through its revision (the original is
    left out once a revision exists), so each advisor's post counts once.
    """

    kind = Indicator.DECIDED_BEFORE
    unit = "items"
    PARAMS = {"time", "timezone"}
    DECIDED = ("approved", "rejected", "scheduled", "delivered", "failed")
    CHUNK = 31  # cycle dates per query (each adds one OR clause)

    @staticmethod
    def clean(params: dict, *, enabled: bool = True) -> dict:
        errors = _unknown_keys(params, DecidedBefore.PARAMS)
        value = params.get("time", "08:00")
        if not isinstance(value, str) or not _TIME.match(value.strip()):
            errors.append("time: a local time of day as HH:MM, e.g. 08:00")
        zone = params.get("timezone")
        if zone not in (None, ""):
            try:
                zoneinfo.ZoneInfo(str(zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                errors.append(f"timezone: “{zone}” is not an IANA time zone such as Asia/Kolkata")
        if errors:
            raise ValidationError({"params": errors})
        hours, minutes = _TIME.match(value.strip()).groups()
        cleaned = {"time": f"{int(hours):02d}:{minutes}"}
        if zone:
            cleaned["timezone"] = str(zone)
        return cleaned

    def __init__(self, params: dict) -> None:
        params = params or {}
        found = _TIME.match(str(params.get("time", "08:00")).strip())
        if not found:
            raise IndicatorError(f"params.time “{params.get('time')}” is not HH:MM.")
        self.time = time(int(found.group(1)), int(found.group(2)))
        try:
            self.zone = zoneinfo.ZoneInfo(params.get("timezone") or settings.ENGINE_TIME_ZONE)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise IndicatorError(f"params.timezone is not a time zone: {exc}") from None

    @property
    def cache_key(self) -> str:
        return f"decided:{self.time:%H:%M}:{self.zone.key}"

    def deadline(self, cycle_date: date) -> datetime:
        return datetime.combine(cycle_date, self.time, tzinfo=self.zone).astimezone(UTC)

    def _dates(self, start: datetime, end: datetime) -> list[date]:
        """Return the cycle dates whose deadline falls in [start, end)."""
        first = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date() + timedelta(days=1)
        out, day = [], first
        while day <= last:
            if start <= self.deadline(day) < end:
                out.append(day)
            day += timedelta(days=1)
        return out

    def _by_cycle_date(self, dates: list[date]) -> dict[date, Events]:
        from advisors.models import Content

        out: dict[date, Events] = {}
        superseded = Content.objects.filter(revision_of=OuterRef("pk"))
        for i in range(0, len(dates), self.CHUNK):
            chunk = dates[i:i + self.CHUNK]
            in_time = reduce(or_, (Q(cycle_date=d, reviewed_at__lt=self.deadline(d)) for d in chunk))
            rows = (Content.objects.filter(cycle_date__in=chunk, submitted_at__isnull=False)
                    .filter(~Exists(superseded)).values_list("cycle_date")
                    .annotate(total=Count("id"), good=Count("id", filter=Q(status__in=self.DECIDED) & in_time))
                    .order_by())
            for cycle_date, total, good in rows:
                out[cycle_date] = Events(float(good), float(total))
        return out

    def count(self, start: datetime, end: datetime) -> Events:
        dates = self._dates(start, end)
        return _sum(self._by_cycle_date(dates).values()) if dates else Events()

    def daily(self, days: list[tuple[date, datetime, datetime]], zone: zoneinfo.ZoneInfo) -> dict[date, Events]:
        owner = {cycle_date: d for d, s, e in days for cycle_date in self._dates(s, e)}
        out = {d: Events() for d, _, _ in days}
        for cycle_date, events in self._by_cycle_date(sorted(owner)).items():
            out[owner[cycle_date]] = out[owner[cycle_date]] + events
        return out

    def describe(self) -> str:
        return f"posts approved or rejected before {self.time:%H:%M} ({self.zone.key}) on their cycle date"


class MetricRatio:
    """Good ÷ total of two counters in the metric store: their increase over the range, summed over the
    series the matchers select. As exact as the store's resolution for the range (raw for a day, then
    1-minute and 1-hour rollups)."""

    kind = Indicator.METRIC_RATIO
    unit = "events"
    PARAMS = {"good_metric", "good_matchers", "total_metric", "total_matchers"}

    @staticmethod
    def clean(params: dict, *, enabled: bool = True) -> dict:
        from monitoring.registry import Kind, get_metric

        errors = _unknown_keys(params, MetricRatio.PARAMS)
        cleaned: dict[str, str] = {}
        for side in ("good", "total"):
            name = params.get(f"{side}_metric")
            metric = get_metric(name) if isinstance(name, str) else None
            if not name:
                errors.append(f"{side}_metric: the name of a counter from the metric registry")
            elif metric is None:
                errors.append(f"{side}_metric: “{name}” is not a registered metric")
            elif metric.kind is not Kind.COUNTER:
                errors.append(f"{side}_metric: “{name}” is a {metric.kind.value}; use a counter (its increase "
                              "counts the events)")
            else:
                cleaned[f"{side}_metric"] = name
            matchers = params.get(f"{side}_matchers", "")
            if not isinstance(matchers, str):
                errors.append(f'{side}_matchers: label matchers as text, e.g. status="ok"')
                continue
            try:
                parse_matchers(matchers)
            except MatcherError as exc:
                errors.append(f"{side}_matchers: {exc}")
            else:
                if matchers.strip():
                    cleaned[f"{side}_matchers"] = matchers.strip()
        if errors:
            raise ValidationError({"params": errors})
        return cleaned

    def __init__(self, params: dict) -> None:
        params = params or {}
        if not params.get("good_metric") or not params.get("total_metric"):
            raise IndicatorError("Set params.good_metric and params.total_metric.")
        try:
            self.good = (params["good_metric"], parse_matchers(params.get("good_matchers", "")))
            self.total = (params["total_metric"], parse_matchers(params.get("total_matchers", "")))
        except MatcherError as exc:
            raise IndicatorError(str(exc)) from None

    @property
    def cache_key(self) -> str:
        return "metric:" + json.dumps([self.good[0], [str(m) for m in self.good[1]],
                                       self.total[0], [str(m) for m in self.total[1]]])

    @staticmethod
    def _increase(name: str, matchers: tuple, start: datetime, end: datetime) -> float:
        from monitoring.store import aggregate

        rows = aggregate(name, equality_labels(matchers), start, end, "increase")
        return sum(value for labels, value in rows if matches_all(matchers, labels))

    def count(self, start: datetime, end: datetime) -> Events:
        total = self._increase(*self.total, start, end)
        good = self._increase(*self.good, start, end)
        return Events(min(good, total), total)

    def daily(self, days: list[tuple[date, datetime, datetime]], zone: zoneinfo.ZoneInfo) -> dict[date, Events]:
        return {d: self.count(s, e) for d, s, e in days}

    def describe(self) -> str:
        return f"{self.good[0]} ÷ {self.total[0]}"


INDICATORS: dict[str, type] = {cls.kind: cls for cls in (DeliverySuccess, HealthUptime, DecidedBefore, MetricRatio)}
UNITS = {key: cls.unit for key, cls in INDICATORS.items()}


def bind(slo: SLO):
    """Return the SLO's indicator ready to count; raise IndicatorError when it cannot be."""
    cls = INDICATORS.get(slo.indicator)
    if cls is None:
        raise IndicatorError(f"Unknown indicator “{slo.indicator}”.")
    return cls(slo.params or {})


# --- counting over time, with closed days cached ---------------------------------------------------


def _day_key(bound, zone: zoneinfo.ZoneInfo, day: date) -> str:
    digest = hashlib.sha1(f"{bound.kind}|{bound.cache_key}|{zone.key}".encode()).hexdigest()[:16]  # noqa: S324
    return f"slo:{CACHE_VERSION}:{digest}:{day.isoformat()}"


def _closed_days(bound, days: list[date], zone: zoneinfo.ZoneInfo, *, use_cache: bool = True) -> dict[date, Events]:
    """Return (good, total) of whole local days that are over: from the cache, counting the missing ones once."""
    if not days:
        return {}
    keys = {day: _day_key(bound, zone, day) for day in days}
    found: dict[str, Any] = {}
    if use_cache:
        try:
            found = cache.get_many(list(keys.values()))
        except Exception:  # Redis away: count from the database, which is the truth anyway
            logger.warning("SLO day cache unavailable; counting from the database", exc_info=True)
    out = {day: Events(*found[key]) for day, key in keys.items() if key in found}
    missing = [day for day in days if day not in out]
    if missing:
        counted = bound.daily([(day, day_start(day, zone), day_start(day + timedelta(days=1), zone))
                               for day in missing], zone)
        out.update(counted)
        if use_cache:
            try:
                cache.set_many({keys[day]: (e.good, e.total) for day, e in counted.items()}, timeout=DAY_CACHE_SECONDS)
            except Exception:
                logger.warning("SLO day cache unavailable; figures not kept", exc_info=True)
    return out


def count_events(bound, start: datetime, end: datetime, *, now: datetime, zone: zoneinfo.ZoneInfo | None = None,
                 use_cache: bool = True) -> Events:
    """Return (good, total) over [start, end): whole days that are over from the day cache, the edges counted."""
    zone = zone or display_zone()
    end = min(end, now)
    if end <= start:
        return Events()
    settled = now - timedelta(seconds=SETTLE_SECONDS)
    edges: list[tuple[datetime, datetime]] = []
    closed: list[date] = []
    day = start.astimezone(zone).date()
    if day_start(day, zone) < start:
        edges.append((start, min(day_start(day + timedelta(days=1), zone), end)))
        day += timedelta(days=1)
    while day_start(day + timedelta(days=1), zone) <= end:
        day_end = day_start(day + timedelta(days=1), zone)
        if day_end <= settled:
            closed.append(day)
        else:
            edges.append((day_start(day, zone), day_end))
        day += timedelta(days=1)
    tail = day_start(day, zone)
    if start <= tail < end:
        edges.append((tail, end))
    total = _sum(_closed_days(bound, closed, zone, use_cache=use_cache).values())
    return total + _sum(bound.count(a, b) for a, b in edges)


def daily_events(bound, days: list[date], *, now: datetime, zone: zoneinfo.ZoneInfo | None = None,
                 use_cache: bool = True) -> dict[date, Events | None]:
    """Return each local day's (good, total); today's so far; None for days still to come."""
    zone = zone or display_zone()
    settled = now - timedelta(seconds=SETTLE_SECONDS)
    out: dict[date, Events | None] = {}
    closed = []
    for day in days:
        start, end = day_start(day, zone), day_start(day + timedelta(days=1), zone)
        if start >= now:
            out[day] = None
        elif end <= settled:
            closed.append(day)
        else:
            out[day] = bound.count(start, min(end, now))
    out.update(_closed_days(bound, closed, zone, use_cache=use_cache))
    return {day: out[day] for day in days}


# --- figures of one SLO -------------------------------------------------------------------------------


def error_budget(slo: SLO) -> float:
    """Return the bad share the objective allows (1 − objective/100)."""
    return max(0.0, 1.0 - float(slo.objective) / 100.0)


def burn_rate(events: Events, allowed: float) -> float | None:
    """Return how many times faster than allowed the budget burns (None without events)."""
    if events.total <= 0:
        return None
    bad_share = events.bad / events.total
    if allowed <= 0:
        return 0.0 if bad_share == 0 else math.inf
    return bad_share / allowed


def _min_burn(a: float | None, b: float | None) -> float:
    # A window without events burnt nothing: the pair's minimum is then 0, so an alert on it clears.
    return min(a or 0.0, b or 0.0)


def slo_status(slo: SLO, now: datetime | None = None, *, daily_days: int = 0, use_cache: bool = True) -> dict[str, Any]:
    """Return an SLO's figures: SLI over its window, objective, met, error budget and what is left, burn rates.

    Status: "met", "at_risk" (met, but under a quarter of the budget left or a burn-rate pair
    over its threshold), "breached" (below the objective), "no_data" (nothing counted), or
    "disabled". With `daily_days`, also the SLI of each of the last that many local days.
    """
    now = now or timezone.now()
    start = now - timedelta(days=slo.window_days)
    allowed = error_budget(slo)
    figures: dict[str, Any] = {
        "id": slo.pk, "name": slo.name, "description": slo.description, "indicator": slo.indicator,
        "indicator_label": Indicator(slo.indicator).label if slo.indicator in Indicator.values else slo.indicator,
        "params": slo.params, "objective": slo.objective, "window_days": slo.window_days, "enabled": slo.enabled,
        "severity": slo.severity, "burn_rate_alerts": slo.burn_rate_alerts, "unit": UNITS.get(slo.indicator, "events"),
        "window_start": start.isoformat(), "window_end": now.isoformat(), "computed_at": now.isoformat(),
        "error_budget": allowed, "good": None, "total": None, "bad": None, "sli": None, "met": None,
        "budget_remaining": None, "burn_rates": dict.fromkeys(BURN_WINDOWS), "fast_burn": None, "slow_burn": None,
        "subject": "", "error": "", "daily": [],
    }
    try:
        bound = bind(slo)
        events = count_events(bound, start, now, now=now, use_cache=use_cache)
        burns = {label: burn_rate(bound.count(now - timedelta(seconds=secs), now), allowed)
                 for label, secs in BURN_WINDOWS.items()}
        figures["subject"] = bound.describe()
        if daily_days:
            figures["daily"] = daily_sli(slo, days=daily_days, now=now, bound=bound, use_cache=use_cache)
    except IndicatorError as exc:
        figures["error"] = str(exc)
        figures["status"] = "disabled" if not slo.enabled else "no_data"
        return figures
    sli = events.ratio
    figures.update(good=events.good, total=events.total, bad=events.bad, sli=sli, burn_rates=burns,
                   fast_burn=_min_burn(burns["1h"], burns["5m"]), slow_burn=_min_burn(burns["6h"], burns["30m"]))
    if sli is not None:
        figures["met"] = sli * 100 >= float(slo.objective) - 1e-9
        consumed = burn_rate(events, allowed)
        figures["budget_remaining"] = 1.0 - consumed if consumed is not None and math.isfinite(consumed) else (
            1.0 if events.bad == 0 else -math.inf)
    figures["status"] = _status(slo, figures)
    return figures


def _status(slo: SLO, f: dict) -> str:
    if not slo.enabled:
        return "disabled"
    if f["sli"] is None:
        return "no_data"
    if not f["met"]:
        return "breached"
    if (f["budget_remaining"] is not None and f["budget_remaining"] < AT_RISK_BUDGET) or \
            f["fast_burn"] > FAST_BURN or f["slow_burn"] > SLOW_BURN:
        return "at_risk"
    return "met"


def daily_sli(slo: SLO, *, days: int = 30, now: datetime | None = None, bound=None,
              use_cache: bool = True) -> list[dict[str, Any]]:
    """Return the last `days` local days (today included, so far) with good, total and the SLI (0..1 or None)."""
    now = now or timezone.now()
    zone = display_zone()
    today = now.astimezone(zone).date()
    wanted = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    bound = bound or bind(slo)
    figures = daily_events(bound, wanted, now=now, zone=zone, use_cache=use_cache)
    return [{"day": day.isoformat(), "good": e.good if e else None, "total": e.total if e else None,
             "sli": e.ratio if e else None} for day, e in figures.items()]


# --- recording ----------------------------------------------------------------------------------------


def record_slos(now: datetime | None = None) -> int:
    """Compute every enabled SLO and write its figures to the metric store; return how many were written.

    Also keeps the burn-rate rules in line with the SLOs (a save through a path without the
    signal, a renamed SLO) and adopts the webhook-service check for the default SLO waiting
    for one. Safe to run twice: a second run writes the same figures again.
    """
    from monitoring.store import write_samples

    now = now or timezone.now()
    for housekeeping in (_adopt_webhook_check, sync_burn_rate_rules):
        try:
            housekeeping()
        except Exception:  # the figures matter more: record them whatever happens here
            logger.warning("SLO %s failed", housekeeping.__name__, exc_info=True)
    rows: list[tuple[str, dict[str, str], float]] = []
    recorded = 0
    for slo in SLO.objects.filter(enabled=True):
        try:
            f = slo_status(slo, now)
        except Exception:  # one broken SLO must not stop the others
            logger.warning("SLO %s could not be computed", slo.name, exc_info=True)
            continue
        if f["error"]:
            logger.info("SLO %s has no figures: %s", slo.name, f["error"])
            continue
        labels = {"slo": slo.name}
        if f["sli"] is not None:
            rows.append((SLI_METRIC, labels, f["sli"]))
            rows.append((BUDGET_METRIC, labels, f["budget_remaining"]))
        for window, value in f["burn_rates"].items():
            rows.append((BURN_METRIC, {"slo": slo.name, "window": window}, value or 0.0))
        rows.append((FAST_METRIC, labels, f["fast_burn"]))
        rows.append((SLOW_METRIC, labels, f["slow_burn"]))
        recorded += 1
    if rows:
        write_samples(rows, at=now)
    return recorded


def _latest_reader(name: str):
    def read():
        from monitoring.registry import Sample
        from monitoring.store import latest

        # A deleted, renamed or disabled SLO's last figures linger in the store for a while: leave them out.
        names = set(SLO.objects.filter(enabled=True).values_list("name", flat=True))
        within = max(600, 3 * settings.ALERTS_SLO_SECONDS)
        return [Sample(labels, value) for labels, value in latest(name, within_seconds=within)
                if labels.get("slo") in names]

    return read


def register_slo_metrics() -> None:
    """Register the SLO metrics in the registry (written by record_slos, exposed on /metrics)."""
    from monitoring.registry import register_metric

    register_metric(SLI_METRIC, "SLI of each SLO over its rolling window (good ÷ total, 0..1).",
                    read=_latest_reader(SLI_METRIC), labels=("slo",), unit="ratio", store=False)
    register_metric(BUDGET_METRIC, "Share of each SLO's error budget left over its window (below 0: missed).",
                    read=_latest_reader(BUDGET_METRIC), labels=("slo",), unit="ratio", store=False)
    register_metric(BURN_METRIC, "How many times faster than allowed each SLO spends its error budget, per window "
                    "(5m, 30m, 1h, 6h).", read=_latest_reader(BURN_METRIC), labels=("slo", "window"), store=False)
    register_metric(FAST_METRIC, "min(burn rate 1 h, burn rate 5 min) of each SLO: the fast-burn alert reads it.",
                    read=_latest_reader(FAST_METRIC), labels=("slo",), store=False)
    register_metric(SLOW_METRIC, "min(burn rate 6 h, burn rate 30 min) of each SLO: the slow-burn alert reads it.",
                    read=_latest_reader(SLOW_METRIC), labels=("slo",), store=False)


# --- burn-rate alert rules ------------------------------------------------------------------------------

LOWER = {Severity.CRITICAL: Severity.HIGH, Severity.HIGH: Severity.MEDIUM, Severity.MEDIUM: Severity.LOW,
         Severity.LOW: Severity.LOW}
HINTS = {
    Indicator.DELIVERY_SUCCESS: "look at the failed deliveries and their last error (Advisors → Deliveries); a "
                                "channel's credentials or the provider are the usual cause. Retry them once fixed.",
    Indicator.HEALTH_UPTIME: "open the health check's page (Health) for its recent results and why they failed.",
    Indicator.DECIDED_BEFORE: "open the review queue: items are waiting for a decision. Ask reviewers to work "
                              "through it, or check the approval guardian's policy and runs.",
    Indicator.METRIC_RATIO: "chart the two metrics (Monitoring) to see which series dropped.",
}


@dataclass(frozen=True)
class BurnRule:
    suffix: str
    metric: str
    threshold: float
    for_seconds: int
    window_seconds: int
    long: str
    short: str


BURN_RULES = (
    BurnRule("fast", FAST_METRIC, FAST_BURN, 120, 120, "1 hour", "5 minutes"),
    BurnRule("slow", SLOW_METRIC, SLOW_BURN, 900, 300, "6 hours", "30 minutes"),
)


def burn_rule_key(slo: SLO, suffix: str) -> str:
    return f"slo:{slo.pk}:{suffix}"


def _rule_description(slo: SLO, spec: BurnRule) -> str:
    window_hours = slo.window_days * 24
    long_hours = {"fast": 1, "slow": 6}[spec.suffix]
    spent = spec.threshold * long_hours / window_hours * 100
    empty = window_hours / spec.threshold
    urgency = ("Page-worthy: act now." if spec.suffix == "fast"
               else "Not an emergency, but it needs attention today.")
    return (
        f"The SLO “{slo.name}” ({slo.objective:g} % over {slo.window_days} days) is spending its error budget more "
        f"than {spec.threshold:g} times faster than the objective allows, both over the last {spec.long} and the "
        f"last {spec.short}. At this rate {spent:.0f} % of the whole budget goes in {spec.long} and all of it in "
        f"{empty:.0f} hours. {urgency}\n\n"
        "Why two windows: this is the multiwindow, multi-burn-rate alert of Google's SRE workbook. The long "
        "window shows the burn is big enough to matter; the short one shows it is still going on, so the alert "
        "fires within minutes of a real problem and clears soon after it stops, without paging for a brief blip.\n\n"
        f"Runbook: open Alerts → SLOs for the SLO's figures and daily chart; then {HINTS.get(slo.indicator, '')} "
        "The SLO is managed on that page; this rule follows it (turn its burn-rate alerts off there, not here)."
    )


def _wanted_rule(slo: SLO, spec: BurnRule) -> dict[str, Any]:
    severity = slo.severity if spec.suffix == "fast" else LOWER.get(slo.severity, Severity.LOW)
    return {
        "name": f"SLO {slo.name}: {spec.suffix} burn"[:200],
        "description": _rule_description(slo, spec),
        "metric": spec.metric,
        "matchers": format_matchers({"slo": slo.name}),
        "enabled": bool(slo.enabled and slo.burn_rate_alerts),
        "severity": severity,
        "labels": {"slo": slo.name, "burn": spec.suffix},
        "summary_template": "{{ labels.slo }}: error budget burning {{ value | round(1) }}× too fast "
                            f"({spec.long} and {spec.short})",
    }


# Set once when the rule is created; after that they are the people's to tune (channels too).
_CREATE_ONLY = ("aggregation", "window_seconds", "comparator", "threshold", "for_seconds", "no_data")


def ensure_burn_rate_rules(slo: SLO, *, rules: dict[str, Rule] | None = None) -> list[Rule]:
    """Create or update the SLO's two burn-rate rules (disabled when the SLO or its burn-rate alerts are off).

    The fields that follow the SLO (name, matchers, severity, enabled, description) are
    kept in line; the threshold, for-duration, window and channels are set at creation and
    then left to people. Nothing is written when nothing changed.
    """
    from .services import save_rule

    out = []
    for spec in BURN_RULES:
        key = burn_rule_key(slo, spec.suffix)
        rule = rules.get(key) if rules is not None else Rule.objects.filter(builtin_key=key).first()
        wanted = _wanted_rule(slo, spec)
        if rule is None:
            if not wanted["enabled"]:
                continue  # created when first needed
            rule = Rule(builtin_key=key, aggregation="last", window_seconds=spec.window_seconds, comparator="gt",
                        threshold=spec.threshold, for_seconds=spec.for_seconds, no_data="ok",
                        group_wait_seconds=30, **wanted)
            rule.name = _free_rule_name(wanted["name"], key)
            try:
                save_rule(rule, by=None, source=AuditSource.SYSTEM)
            except IntegrityError:
                continue  # another process created it at the same moment (save_rule's savepoint rolled back)
            out.append(rule)
            continue
        wanted["name"] = _free_rule_name(wanted["name"], key)
        changed = [field for field, value in wanted.items() if getattr(rule, field) != value]
        if changed:
            for field in changed:
                setattr(rule, field, wanted[field])
            save_rule(rule, by=None, changed=changed, source=AuditSource.SYSTEM)
        out.append(rule)
    return out


def _free_rule_name(name: str, key: str) -> str:
    """Return `name`, or it with a suffix when another rule (not this SLO's) holds it already."""
    taken = Rule.objects.filter(name=name).exclude(builtin_key=key).exists()
    return name if not taken else f"{name[:180]} ({key})"


def remove_burn_rate_rules(slo_pk: int) -> int:
    """Delete the burn-rate rules of a deleted SLO (their open alerts resolve; history stays)."""
    from .services import delete_rule

    removed = 0
    for rule in Rule.objects.filter(builtin_key__in=[f"slo:{slo_pk}:{spec.suffix}" for spec in BURN_RULES]):
        delete_rule(rule, by=None, source=AuditSource.SYSTEM)
        removed += 1
    return removed


def sync_burn_rate_rules() -> None:
    """Bring every SLO's burn-rate rules in line, and delete those of SLOs that no longer exist."""
    rules = {rule.builtin_key: rule for rule in Rule.objects.filter(builtin_key__startswith="slo:")}
    slos = list(SLO.objects.all())
    for slo in slos:
        ensure_burn_rate_rules(slo, rules=rules)
    live = {burn_rule_key(slo, spec.suffix) for slo in slos for spec in BURN_RULES}
    for key, rule in rules.items():
        if key not in live and re.fullmatch(r"slo:\d+:(fast|slow)", key):
            from .services import delete_rule

            delete_rule(rule, by=None, source=AuditSource.SYSTEM)


@receiver(post_save, sender=SLO, dispatch_uid="alerts.slo.rules_follow_slo")
def _slo_saved(sender, instance: SLO, raw: bool = False, **kwargs) -> None:
    if raw:
        return  # loading a fixture or a restore: the rows come as they were, rules included
    ensure_burn_rate_rules(instance)


@receiver(post_delete, sender=SLO, dispatch_uid="alerts.slo.rules_go_with_slo")
def _slo_deleted(sender, instance: SLO, **kwargs) -> None:
    remove_burn_rate_rules(instance.pk)


# --- validation and changes people make --------------------------------------------------------------


def validate_slo(slo: SLO) -> None:
    """Check an SLO field by field (objective, window, indicator, its params); raise ValidationError.

    Normalises `params` in place (defaults filled, whitespace trimmed).
    """
    errors: dict[str, list[str]] = {}
    if not (slo.name or "").strip():
        errors["name"] = ["Give the SLO a name."]
    elif SLO.objects.filter(name=slo.name.strip()).exclude(pk=slo.pk).exists():
        errors["name"] = ["Another SLO has this name."]
    try:
        objective = float(slo.objective)
    except (TypeError, ValueError):
        objective = math.nan
    if not (0 < objective < 100):
        errors["objective"] = ["A percentage strictly between 0 and 100, e.g. 99.5."]
    if not isinstance(slo.window_days, int) or not (1 <= slo.window_days <= MAX_WINDOW_DAYS):
        errors["window_days"] = [f"Whole days from 1 to {MAX_WINDOW_DAYS}."]
    if slo.severity not in Severity.values:
        errors["severity"] = [f"One of {', '.join(Severity.values)}."]
    cls = INDICATORS.get(slo.indicator)
    if cls is None:
        errors["indicator"] = [f"One of {', '.join(INDICATORS)}."]
    elif not isinstance(slo.params, dict):
        errors["params"] = ["An object with the indicator's settings, e.g. {\"check\": \"Web (API liveness)\"}."]
    else:
        try:
            slo.params = cls.clean(slo.params, enabled=slo.enabled)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    slo.name = slo.name.strip()


AUDITED = ("name", "description", "indicator", "params", "objective", "window_days", "enabled", "burn_rate_alerts",
           "severity")


def save_slo(slo: SLO, *, by, changed: Iterable[str] | None = None, source: str = AuditSource.UI,
             request: HttpRequest | None = None) -> SLO:
    """Validate and save an SLO (new or changed); audit it; its burn-rate rules follow (post_save)."""
    validate_slo(slo)
    creating = slo.pk is None
    with transaction.atomic():
        slo.save()
        fields = list(changed) if changed is not None else list(AUDITED)
        record_audit("slo.created" if creating else "slo.changed", actor=by, target=slo, source=source,
                     request=request, changes={f: getattr(slo, f) for f in fields if f in AUDITED})
    return slo


def delete_slo(slo: SLO, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None) -> None:
    """Delete an SLO; its burn-rate rules go with it (their alerts' history stays)."""
    with transaction.atomic():
        record_audit("slo.deleted", actor=by, target=slo, source=source, request=request,
                     changes={"name": slo.name, "objective": slo.objective})
        slo.delete()


# --- defaults -----------------------------------------------------------------------------------------

WEBHOOK_KEY = "slo:webhook-service-uptime"
WAITING_FOR_CHECK = (
    "Uptime of the service that receives the advisors' clicks and messages. Waiting for its health check: set "
    "OPSCENTER_WEBHOOK_SERVICE_HEALTH_URL (or give an inbound source a /health URL under Pipeline → Inbound "
    "sources) and restart; this SLO then follows that check and turns itself on. Or choose any check by name "
    "here (params.check) and enable it."
)
DEFAULT_SLOS: tuple[dict[str, Any], ...] = (
    {"key": "slo:delivery-success", "name": "Delivery success", "indicator": Indicator.DELIVERY_SUCCESS,
     "objective": 99.5, "window_days": 30, "severity": Severity.CRITICAL, "params": {},
     "description": "Approved content that reaches the advisor: deliveries sent, delivered or read, out of those "
                    "plus the failed ones, counted when they finish."},
    {"key": WEBHOOK_KEY, "name": "Webhook service uptime", "indicator": Indicator.HEALTH_UPTIME,
     "objective": 99.9, "window_days": 30, "severity": Severity.CRITICAL, "params": {},
     "description": "Uptime of the service that receives the advisors' clicks and messages (its /health check), "
                    "weighted by time."},
    {"key": "slo:decided-before-0800", "name": "Decided before 08:00", "indicator": Indicator.DECIDED_BEFORE,
     "objective": 95.0, "window_days": 30, "severity": Severity.HIGH, "params": {"time": "08:00"},
     "description": "Posts approved or rejected (by a reviewer or the approval guardian) before 08:00 on their "
                    "cycle date, in the engine's time zone (ENGINE_TIME_ZONE), so advisors have them in the morning."},
)


def webhook_service_check():
    """Return the health check of the inbound webhook service, if there is one (the setting's, then a source's)."""
    from monitoring.health.models import HealthCheck

    checks = HealthCheck.objects.filter(is_webhook_service=True, enabled=True)
    return (checks.filter(system_key="webhook-service").first()
            or checks.filter(system_key__startswith="inbound:").order_by("system_key").first()
            or checks.order_by("name").first())


def ensure_default_slos() -> list[SLO]:
    """Create the default SLOs bootstrap has never created before; return the new ones.

    Each is created once (alerts.models.BuiltinDefault remembers it): an edited or deleted
    default stays that way. The webhook-service SLO starts disabled when there is no check of
    that service yet, and adopts the check (and turns on) once one appears.
    """
    created = []
    for spec in DEFAULT_SLOS:
        fields = dict(spec)
        key = fields.pop("key")
        try:
            with transaction.atomic():
                BuiltinDefault.objects.create(key=key)
                if SLO.objects.filter(Q(name=fields["name"]) | Q(builtin_key=key)).exists():
                    continue  # someone made one by that name: theirs stands
                if key == WEBHOOK_KEY:
                    check = webhook_service_check()
                    if check is None:
                        fields.update(enabled=False, description=WAITING_FOR_CHECK)
                    else:
                        fields["params"] = {"check": check.name}
                slo = SLO.objects.create(builtin_key=key, **fields)
                record_audit("slo.created", target=slo, changes={"by": "bootstrap", "builtin": key})
                created.append(slo)
        except IntegrityError:
            continue  # created before (or by a bootstrap running at the same moment)
    _adopt_webhook_check()
    return created


def _adopt_webhook_check() -> SLO | None:
    """Point the default webhook SLO still waiting for a check at the webhook service's check, and enable it.

    Only while it is exactly as bootstrap left it (disabled, no check, the waiting text): a
    person's edit is never overridden.
    """
    slo = SLO.objects.filter(builtin_key=WEBHOOK_KEY, enabled=False, description=WAITING_FOR_CHECK).first()
    if slo is None or (slo.params or {}).get("check"):
        return None
    check = webhook_service_check()
    if check is None:
        return None
    with transaction.atomic():
        slo.params = {"check": check.name}
        slo.enabled = True
        slo.description = DEFAULT_SLOS[1]["description"]
        slo.save()
        record_audit("slo.changed", target=slo, changes={"by": "system", "params": slo.params, "enabled": True,
                                                         "why": "the webhook service's health check appeared"})
    return slo


# --- the monthly SLA report ------------------------------------------------------------------------------


def parse_month(text: str | None, *, now: datetime | None = None) -> date:
    """Return the first day of the month "YYYY-MM" (this month when empty); raise ValueError when malformed."""
    if not text:
        local = (now or timezone.now()).astimezone(display_zone())
        return local.date().replace(day=1)
    found = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not found or not (1 <= int(found.group(2)) <= 12) or not (2000 <= int(found.group(1)) <= 2100):
        raise ValueError("Give the month as YYYY-MM, e.g. 2026-11.")
    return date(int(found.group(1)), int(found.group(2)), 1)


def _shift_month(month: date, by: int) -> date:
    index = month.year * 12 + month.month - 1 + by
    return date(index // 12, index % 12 + 1, 1)


def monthly_report(month: date, *, now: datetime | None = None, use_cache: bool = True) -> dict[str, Any]:
    """Return each SLO's figures for a calendar month in settings.TIME_ZONE: good/total, achieved, met, budget used, worst day."""
    now = now or timezone.now()
    zone = display_zone()
    days_in = calendar.monthrange(month.year, month.month)[1]
    days = [month + timedelta(days=n) for n in range(days_in)]
    start, end = day_start(days[0], zone), day_start(days[-1] + timedelta(days=1), zone)
    rows = []
    for slo in SLO.objects.all():
        row: dict[str, Any] = {
            "id": slo.pk, "name": slo.name, "indicator": slo.indicator, "unit": UNITS.get(slo.indicator, "events"),
            "objective": slo.objective, "enabled": slo.enabled, "good": None, "total": None, "achieved": None,
            "met": None, "budget_used": None, "worst_day": None, "worst_day_sli": None, "error": "",
        }
        try:
            bound = bind(slo)
            daily = daily_events(bound, days, now=now, zone=zone, use_cache=use_cache)
        except IndicatorError as exc:
            if slo.enabled:
                row["error"] = str(exc)
                rows.append(row)
            continue
        counted = {day: e for day, e in daily.items() if e is not None}
        events = _sum(counted.values())
        allowed = error_budget(slo)
        if events.total > 0:
            achieved = events.ratio
            row.update(good=events.good, total=events.total, achieved=achieved,
                       met=achieved * 100 >= float(slo.objective) - 1e-9,
                       budget_used=(events.bad / events.total / allowed) if allowed > 0 else None)
            with_data = [(e.ratio, day) for day, e in counted.items() if e.total > 0]
            worst_ratio, worst_day = min(with_data)  # ties: the earliest day
            row.update(worst_day=worst_day.isoformat(), worst_day_sli=worst_ratio)
        elif not slo.enabled:
            continue  # a disabled SLO with nothing to report this month is left out
        rows.append(row)
    return {
        "month": f"{month:%Y-%m}", "label": f"{month:%B %Y}", "time_zone": zone.key,
        "start": start.isoformat(), "end": end.isoformat(), "partial": start < now < end, "future": start >= now,
        "previous": f"{_shift_month(month, -1):%Y-%m}", "next": f"{_shift_month(month, 1):%Y-%m}",
        "slos": rows,
    }


REPORT_COLUMNS = ("month", "time_zone", "slo", "indicator", "unit", "objective_percent", "good", "total",
                  "achieved_percent", "met", "budget_used_percent", "worst_day", "worst_day_percent", "note")


def _csv_number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return ""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def report_csv_rows(report: dict[str, Any]) -> list[list[str]]:
    """Return the monthly report as CSV rows (a header first): one row per SLO."""
    out = [list(REPORT_COLUMNS)]
    for row in report["slos"]:
        note = row["error"] or ("" if row["total"] else "no data")
        if report.get("partial") and not note:
            note = "month in progress"
        out.append([
            report["month"], report["time_zone"], row["name"], row["indicator"], row["unit"],
            _csv_number(row["objective"]), _csv_number(row["good"], 3), _csv_number(row["total"], 3),
            _csv_number(row["achieved"] * 100 if row["achieved"] is not None else None, 4),
            "" if row["met"] is None else ("yes" if row["met"] else "no"),
            _csv_number(row["budget_used"] * 100 if row["budget_used"] is not None else None, 2),
            row["worst_day"] or "",
            _csv_number(row["worst_day_sli"] * 100 if row["worst_day_sli"] is not None else None, 4),
            note,
        ])
    return out

