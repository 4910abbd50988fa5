"""The figures of the daily operations page: a cycle date by stage, per advisor, and past days."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q

from advisors.models import ComplianceVerdict, Content, ContentStatus, Delivery, DeliveryStatus

from .models import Cycle, CycleAdvisor, Stage
from .services import default_cycle_date

APPROVED_OR_LATER = [ContentStatus.APPROVED, ContentStatus.SCHEDULED, ContentStatus.DELIVERED, ContentStatus.FAILED]
DELIVERED_STATUSES = [DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ]

# The stage counters, in pipeline order: (key, label, help).
STAGES = [
    ("targeted", "Advisors targeted", "Active advisors the day's cycles planned a post for."),
    ("generated", "Generated", "Posts written for the day (revisions included)."),
    ("compliance_failed", "Compliance failed", "Posts with a critical or high compliance finding."),
    ("fatigue_flagged", "Fatigue flagged", "Posts still too close to a recent one after the rewrites."),
    ("pending_review", "Pending review", "Waiting in the review queue."),
    ("approved", "Approved", "Approved by a reviewer or the guardian (delivered or not yet)."),
    ("delivered", "Delivered", "Sent through the delivery channel."),
    ("failed", "Failed", "Advisors whose post failed to be written, or failed to be delivered."),
]


def current_cycle_date() -> date:
    """Return the date the page opens on: the date being worked on, else the latest with a cycle."""
    wanted = default_cycle_date()
    if Cycle.objects.filter(cycle_date=wanted).exists():
        return wanted
    latest = Cycle.objects.filter(cycle_date__lte=wanted).order_by("-cycle_date").values_list("cycle_date", flat=True)
    return latest.first() or wanted


def day_figures(days: list[date]) -> dict[date, dict[str, int]]:
    """Return the stage counters of each day, in a handful of grouped queries."""
    figures = {day: {key: 0 for key, _, _ in STAGES} for day in days}
    content = Content.objects.filter(cycle_date__in=days)
    for row in content.values("cycle_date").annotate(
        generated=Count("id"),
        compliance_failed=Count("id", filter=Q(compliance_verdict=ComplianceVerdict.FAIL)),
        pending_review=Count("id", filter=Q(status=ContentStatus.PENDING_REVIEW)),
        approved=Count("id", filter=Q(status__in=APPROVED_OR_LATER)),
    ).order_by():
        figures[row["cycle_date"]].update({k: row[k] for k in ("generated", "compliance_failed", "pending_review",
                                                                   "approved")})
    entries = CycleAdvisor.objects.filter(cycle__cycle_date__in=days, cycle__dry_run=False)
    for row in entries.values("cycle__cycle_date").annotate(
        targeted=Count("advisor", distinct=True),
        fatigue_flagged=Count("id", filter=Q(fatigue_flagged=True)),
        entry_failed=Count("id", filter=Q(stage=Stage.FAILED)),
    ).order_by():
        day = figures[row["cycle__cycle_date"]]
        day.update(targeted=row["targeted"], fatigue_flagged=row["fatigue_flagged"])
        day["failed"] += row["entry_failed"]
    deliveries = Delivery.objects.filter(content__cycle_date__in=days)
    for row in deliveries.values("content__cycle_date").annotate(
        delivered=Count("id", filter=Q(status__in=DELIVERED_STATUSES)),
        delivery_failed=Count("id", filter=Q(status=DeliveryStatus.FAILED)),
    ).order_by():
        day = figures[row["content__cycle_date"]]
        day["delivered"] = row["delivered"]
        day["failed"] += row["delivery_failed"]
    return figures


@dataclass
class AdvisorRow:
    advisor_id: int
    advisor_name: str
    arn: str
    stage: str
    stage_label: str
    error: str = ""
    content: dict[str, Any] | None = None
    delivery: str = ""
    runs: list[int] = field(default_factory=list)


def advisor_rows(day: date, *, limit: int = 500) -> list[AdvisorRow]:
    """Return one row per advisor of the day's cycles: how far their post got, and links."""
    entries = (
        CycleAdvisor.objects.filter(cycle__cycle_date=day, cycle__dry_run=False)
        .select_related("advisor", "content", "cycle")
        .order_by("advisor__name", "-cycle_id")[: limit * 2]
    )
    deliveries = dict(
        Delivery.objects.filter(content__cycle_date=day).values_list("content_id", "status")
    )
    rows: dict[int, AdvisorRow] = {}
    for entry in entries:
        if entry.advisor_id in rows:  # the newest cycle of the day speaks for the advisor
            continue
        content = entry.content
        rows[entry.advisor_id] = AdvisorRow(
            advisor_id=entry.advisor_id,
            advisor_name=entry.advisor.name,
            arn=entry.advisor.arn,
            stage=entry.stage,
            stage_label=Stage(entry.stage).label,
            error=entry.error,
            content=None if content is None else {
                "id": content.pk,
                "title": content.title,
                "status": content.status,
                "status_label": ContentStatus(content.status).label,
                "verdict": content.compliance_verdict,
                "fatigue": content.fatigue_score,
                "flagged": entry.fatigue_flagged,
                "run_id": content.generating_run_id,
            },
            delivery=deliveries.get(content.pk, "") if content else "",
            runs=[entry.cycle.run_id] if entry.cycle.run_id else [],
        )
        if len(rows) >= limit:
            break
    return list(rows.values())


def cycles_of(day: date) -> list[Cycle]:
    return list(Cycle.objects.filter(cycle_date=day).select_related("run", "topic_override").order_by("-id"))


def past_days(day: date, count: int = 14) -> list[date]:
    return [day - timedelta(days=n) for n in range(1, count + 1)]
