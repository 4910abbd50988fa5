"""The analytics section's figures: a day, week or month of the daily rollups, against the one before.

Everything here reads DailyRollup rows (one per day, recomputed by the analytics tracker), so a
page costs the same on years of data as on a week. Sums add up across days; rates and
averages are derived from the sums, and the chat response p95 from summed histogram
buckets — never by averaging daily averages. Two lists read raw rows inside the period
(top content and advisors by clicks, conversations active now), each through an index.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from .models import DailyRollup
from .services import RESPONSE_BUCKETS_MS, engine_zone

PERIODS = ("day", "week", "month")
SUMMED = [
    "advisors_served", "generated", "compliance_failed", "fatigue_flagged", "approved", "rejected",
    "revisions_requested", "delivered", "delivery_failed", "read", "clicked", "clicks_retrieve", "clicks_unlock",
    "clicks_share", "clicks_succeeded", "clicks_with_outcome", "click_response_ms_sum", "click_response_count",
    "engaged_advisors", "conversations_started", "conversations_completed", "chat_messages_in", "chat_messages_out",
    "chat_response_ms_sum", "chat_response_count", "ai_quality_sum", "ai_quality_count",
]
FUNNEL = [("generated", "Generated"), ("approved", "Approved"), ("delivered", "Delivered"), ("read", "Read"),
          ("clicked", "Clicked")]
ACTIVE_CONVERSATION_MINUTES = 15


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        if self.kind == "day":
            return self.start.strftime("%a %d %b %Y")
        if self.kind == "week":
            return f"Week of {self.start:%d %b} – {self.end:%d %b %Y}"
        return self.start.strftime("%B %Y")

    def previous(self) -> Period:
        return period_of(self.kind, self.start - timedelta(days=1))

    def next(self) -> Period:
        return period_of(self.kind, self.end + timedelta(days=1))


def period_of(kind: str, anchor: date) -> Period:
    """Return the day, ISO week (Monday to Sunday) or calendar month holding `anchor`."""
    if kind == "day":
        return Period(kind, anchor, anchor)
    if kind == "week":
        start = anchor - timedelta(days=anchor.weekday())
        return Period(kind, start, start + timedelta(days=6))
    if kind == "month":
        last = calendar.monthrange(anchor.year, anchor.month)[1]
        return Period(kind, anchor.replace(day=1), anchor.replace(day=last))
    raise ValueError(f"period must be one of {', '.join(PERIODS)}")


def today() -> date:
    return timezone.now().astimezone(engine_zone()).date()


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(total: float, count: int) -> float | None:
    return round(total / count, 1) if count else None


def percentile_from_buckets(buckets: list[int], q: float) -> dict[str, Any] | None:
    """Return the bucket holding the q-quantile: {"at_most_ms": bound} or {"over_ms": last bound}."""
    total = sum(buckets)
    if not total:
        return None
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= q * total:
            if index < len(RESPONSE_BUCKETS_MS):
                return {"at_most_ms": RESPONSE_BUCKETS_MS[index]}
            return {"over_ms": RESPONSE_BUCKETS_MS[-1]}
    return {"over_ms": RESPONSE_BUCKETS_MS[-1]}


def figures(period: Period) -> dict[str, Any]:
    """Sum the period's rollups and derive its rates; the raw sums are kept for exports."""
    rows = list(DailyRollup.objects.filter(day__gte=period.start, day__lte=period.end).order_by("day"))
    totals = {name: sum(getattr(row, name) for row in rows) for name in SUMMED}
    if period.days > 1:
        # Distinct advisors do not add up across days (the same advisor is served every day).
        totals["advisors_served"], totals["engaged_advisors"] = _distinct_advisors(period)
    buckets = [0] * (len(RESPONSE_BUCKETS_MS) + 1)
    hours = [0] * 24
    for row in rows:
        for i, count in enumerate(row.chat_response_buckets or []):
            buckets[i] += count
        for h, count in enumerate(row.clicks_by_hour or []):
            hours[h] += count
    reviewed = totals["approved"] + totals["rejected"] + totals["revisions_requested"]
    clicks = totals["clicks_retrieve"] + totals["clicks_unlock"] + totals["clicks_share"]
    return {
        **totals,
        "days_with_figures": len(rows),
        "clicks": clicks,
        "approval_rate": _ratio(totals["approved"], reviewed),
        "delivery_rate": _ratio(totals["delivered"], totals["delivered"] + totals["delivery_failed"]),
        "read_rate": _ratio(totals["read"], totals["delivered"]),
        "click_rate": _ratio(totals["clicked"], totals["delivered"]),
        "click_success_rate": _ratio(totals["clicks_succeeded"], totals["clicks_with_outcome"]),
        "click_response_ms_avg": _mean(totals["click_response_ms_sum"], totals["click_response_count"]),
        "chat_response_ms_avg": _mean(totals["chat_response_ms_sum"], totals["chat_response_count"]),
        "chat_response_p95": percentile_from_buckets(buckets, 0.95),
        "chat_response_buckets": buckets,
        "ai_quality_avg": (round(totals["ai_quality_sum"] / totals["ai_quality_count"], 3)
                           if totals["ai_quality_count"] else None),
        "chat_messages": totals["chat_messages_in"] + totals["chat_messages_out"],
        "conversation_completion_rate": _ratio(totals["conversations_completed"], totals["conversations_started"]),
        "clicks_by_hour": hours,
        "funnel": [{"stage": key, "label": label, "count": totals[key]} for key, label in FUNNEL],
        "computed_at": max((row.computed_at for row in rows), default=None),
    }


def _bounds(period: Period):
    from datetime import datetime, time

    zone = engine_zone()
    return (datetime.combine(period.start, time(0), tzinfo=zone),
            datetime.combine(period.end + timedelta(days=1), time(0), tzinfo=zone))


def _distinct_advisors(period: Period) -> tuple[int, int]:
    """Advisors served (content for a cycle in the period) and engaged (clicked or chatted in it)."""
    from advisors.inbound.models import ButtonClick, ChatMessage
    from advisors.models import Content

    start, end = _bounds(period)
    served = (Content.objects.filter(cycle_date__gte=period.start, cycle_date__lte=period.end)
              .values("advisor_id").distinct().count())
    engaged = set(ButtonClick.objects.filter(at__gte=start, at__lt=end).exclude(advisor=None)
                  .values_list("advisor_id", flat=True).distinct())
    engaged |= set(ChatMessage.objects.filter(at__gte=start, at__lt=end).exclude(conversation__advisor=None)
                   .values_list("conversation__advisor_id", flat=True).distinct())
    return served, len(engaged)


def daily_series(period: Period) -> list[dict[str, Any]]:
    """Return one entry per day of the period (zeros for days without figures yet)."""
    rows = {row.day: row for row in DailyRollup.objects.filter(day__gte=period.start, day__lte=period.end)}
    series = []
    for n in range(period.days):
        day = period.start + timedelta(days=n)
        row = rows.get(day)
        entry = {"day": day.isoformat()}
        for name in SUMMED:
            entry[name] = getattr(row, name) if row else 0
        entry["clicks"] = entry["clicks_retrieve"] + entry["clicks_unlock"] + entry["clicks_share"]
        series.append(entry)
    return series


def top_by_clicks(period: Period, *, limit: int = 10) -> dict[str, list[dict[str, Any]]]:
    """The content items and advisors clicked most in the period (raw clicks, through their time index)."""
    from advisors.inbound.models import ButtonClick

    start, end = _bounds(period)
    clicks = ButtonClick.objects.filter(at__gte=start, at__lt=end)
    content = (clicks.exclude(content=None).values("content_id", "content__title", "content__advisor__name")
               .annotate(clicks=Count("id"), succeeded=Count("id", filter=Q(succeeded=True)),
                         response_total=Sum("response_ms"), responses=Count("response_ms"))
               .order_by("-clicks", "content_id")[:limit])
    advisors = (clicks.exclude(advisor=None).values("advisor_id", "advisor__name", "advisor__arn")
                .annotate(clicks=Count("id"), items=Count("content_id", distinct=True))
                .order_by("-clicks", "advisor_id")[:limit])
    return {
        "content": [{"content_id": r["content_id"], "title": r["content__title"], "advisor": r["content__advisor__name"],
                     "clicks": r["clicks"], "succeeded": r["succeeded"],
                     "response_ms_avg": _mean(r["response_total"] or 0, r["responses"])} for r in content],
        "advisors": [{"advisor_id": r["advisor_id"], "name": r["advisor__name"], "arn": r["advisor__arn"],
                      "clicks": r["clicks"], "items": r["items"]} for r in advisors],
    }


def active_conversations(now=None) -> int:
    """Conversations with a message in the last few minutes."""
    from advisors.inbound.models import Conversation

    since = (now or timezone.now()) - timedelta(minutes=ACTIVE_CONVERSATION_MINUTES)
    return Conversation.objects.filter(last_message_at__gte=since, completed_at__isnull=True).count()


def change(current: float | None, previous: float | None) -> float | None:
    """Relative change from the previous period (None when there is nothing to compare with)."""
    if current is None or previous in (None, 0):
        return None
    return round((current - previous) / previous, 4)


COMPARED = ["advisors_served", "generated", "approval_rate", "delivered", "delivery_rate", "read_rate", "click_rate",
            "clicks", "click_success_rate", "click_response_ms_avg", "chat_messages", "chat_response_ms_avg",
            "ai_quality_avg", "conversation_completion_rate"]


def summary(kind: str, anchor: date) -> dict[str, Any]:
    """The analytics page and API in one document: figures, the previous period's, changes, series, tops."""
    period = period_of(kind, anchor)
    previous = period.previous()
    current_figures = figures(period)
    previous_figures = figures(previous)
    return {
        "period": {"kind": kind, "start": period.start.isoformat(), "end": period.end.isoformat(),
                   "label": period.label},
        "previous_period": {"start": previous.start.isoformat(), "end": previous.end.isoformat(),
                            "label": previous.label},
        "figures": current_figures,
        "previous": previous_figures,
        "changes": {name: change(current_figures[name], previous_figures[name]) for name in COMPARED},
        "daily": daily_series(period),
        "top": top_by_clicks(period),
        "active_conversations": active_conversations(),
    }


CSV_COLUMNS = ["day", *SUMMED, "clicks"]


def csv_rows(period: Period) -> list[list[Any]]:
    """The period's daily figures as CSV rows, header first."""
    return [CSV_COLUMNS, *([entry[c] for c in CSV_COLUMNS] for entry in daily_series(period))]
