"""What the content engine's agents do, as functions the agents (and tests) call.

A cycle is planned into batches of advisors; each batch then goes through the stages
write → fatigue check → image → compliance check + submission, each stage one agent run
that picks up the batch's entries still at the previous stage. So a retried or repeated
run continues where its batch stopped, and a failure of one advisor never stops the rest.
"""

from __future__ import annotations

import logging
import random
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone

from advisors.models import Advisor, AdvisorStatus, ComplianceVerdict, Content, ContentKind, ContentStatus, Delivery
from advisors.services import approve_content, submit_for_review
from opscenter.models import AuditSource

from . import compliance, fatigue, images, writer
from .models import (
    ComplianceRule,
    Cycle,
    CycleAdvisor,
    CycleStatus,
    DailyRollup,
    EngineSettings,
    RuleKind,
    Stage,
    Topic,
)

logger = logging.getLogger(__name__)

GUARDIAN_USERNAME = "approval-guardian"
# Content in these states counts as the advisor's post for a cycle date: a new cycle run
# for the same date leaves the advisor alone (the 05:00 run only picks up who was missed).
SERVED_STATUSES = [s for s in ContentStatus.values if s not in {ContentStatus.REJECTED, ContentStatus.FAILED}]

Progress = Callable[[int, int], None]
SUBMIT_CHUNK = 10


def engine_zone() -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.ENGINE_TIME_ZONE)


def default_cycle_date(now: datetime | None = None) -> date:
    """Return the date the next posts are for: tomorrow after noon (the evening run), else today."""
    local = (now or timezone.now()).astimezone(engine_zone())
    return local.date() + timedelta(days=1) if local.hour >= 12 else local.date()


# --- planning (orchestrator + strategist) -----------------------------------------------------


def select_advisors(
    cycle_date: date, *, advisor_ids: Iterable[int] = (), segment: str = "", limit: int | None = None
) -> list[Advisor]:
    """Return the active advisors a cycle should write for: the subset asked for, minus those
    who already have a post for the date."""
    served = Content.objects.filter(advisor=OuterRef("pk"), cycle_date=cycle_date, status__in=SERVED_STATUSES)
    advisors = Advisor.objects.filter(status=AdvisorStatus.ACTIVE).exclude(Exists(served)).order_by("id")
    ids = list(advisor_ids)
    if ids:
        advisors = advisors.filter(pk__in=ids)
    if segment:
        advisors = advisors.filter(segment__iexact=segment)
    if limit:
        advisors = advisors[:limit]
    return list(advisors)


def plan_cycle(
    run_id: int,
    *,
    cycle_date: date,
    advisors: list[Advisor],
    dry_run: bool = False,
    topic: Topic | None = None,
) -> Cycle:
    """Create the cycle and one entry per advisor, numbered into batches."""
    batch_size = EngineSettings.load().batch_size
    with transaction.atomic():
        cycle = Cycle.objects.create(
            cycle_date=cycle_date,
            run_id=run_id,
            dry_run=dry_run,
            topic_override=topic,
            advisors_targeted=len(advisors),
            batches=(len(advisors) + batch_size - 1) // batch_size,
        )
        CycleAdvisor.objects.bulk_create(
            CycleAdvisor(cycle=cycle, advisor=advisor, batch=index // batch_size, topic=topic)
            for index, advisor in enumerate(advisors)
        )
    return cycle


def _recent_topics(advisor_ids: list[int], days: int = 30) -> dict[int, set[str]]:
    since = timezone.now().date() - timedelta(days=days)
    recent: dict[int, set[str]] = {}
    rows = Content.objects.filter(advisor_id__in=advisor_ids, cycle_date__gte=since).values_list("advisor_id", "topic")
    for advisor_id, title in rows:
        recent.setdefault(advisor_id, set()).add(title)
    return recent


def _suits(topic: Topic, advisor: Advisor) -> bool:
    segments = {s.lower() for s in topic.segments or []}
    return not segments or (advisor.segment or "").lower() in segments


def _preference(topic: Topic, advisor: Advisor) -> int:
    wanted = {str(t).lower() for t in advisor.topics or []}
    return 1 if wanted and (topic.category.lower() in wanted or topic.title.lower() in wanted) else 0


def choose_topics(cycle: Cycle, *, progress: Progress | None = None) -> int:
    """Pick a topic for every planned entry: one that suits the advisor's segment, prefers
    the topics the advisor asked for, and was not used for them in the last 30 days."""
    topics = list(Topic.objects.filter(enabled=True))
    if not topics and cycle.topic_override_id is None:
        raise EngineError("The topic bank is empty: add topics (or a feed) in the admin, or run seed_demo.")
    entries = list(cycle.entries.filter(topic__isnull=True).select_related("advisor"))
    recent = _recent_topics([e.advisor_id for e in entries])
    # Seeded by the cycle, so a re-run of the strategist picks the same topics.
    rng = random.Random(f"{cycle.pk}:{cycle.cycle_date}")  # noqa: S311 (variety, not secrecy)
    for done, entry in enumerate(entries, 1):
        advisor = entry.advisor
        used = recent.get(advisor.pk, set())
        candidates = [t for t in topics if _suits(t, advisor)] or topics
        fresh = [t for t in candidates if t.title[:100] not in used] or candidates
        best = max(_preference(t, advisor) for t in fresh)
        entry.topic = rng.choice([t for t in fresh if _preference(t, advisor) == best])
        if progress and done % 100 == 0:
            progress(done, len(entries))
    CycleAdvisor.objects.bulk_update(entries, ["topic"], batch_size=500)
    return len(entries)


class EngineError(Exception):
    """The engine cannot do its job (no topics, no working writer…); the run fails with it."""


# --- stages of one batch ----------------------------------------------------------------------


@dataclass
class StageResult:
    processed: int = 0
    failed: int = 0
    flagged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"processed": self.processed, "failed": self.failed, "flagged": self.flagged}


def _entries(cycle_id: int, batch: int, stage: str):
    return (
        CycleAdvisor.objects.filter(cycle_id=cycle_id, batch=batch, stage=stage)
        .select_related("advisor", "topic", "content", "cycle")
        .order_by("id")
    )


def required_disclaimer() -> str:
    """Return the text the enabled disclaimer rule requires ("" when there is none)."""
    rule = ComplianceRule.objects.filter(enabled=True, kind=RuleKind.REQUIRED_DISCLAIMER).order_by("id").first()
    return rule.value.strip() if rule else ""


def _brief(entry: CycleAdvisor, *, disclaimer: str, variation: int = 0, instruction: str = "",
           avoid: tuple[str, ...] = ()) -> writer.Brief:
    advisor, topic = entry.advisor, entry.topic
    return writer.Brief(
        advisor_name=advisor.name,
        arn=advisor.arn,
        language=advisor.language,
        segment=advisor.segment,
        topic_title=topic.title if topic else "Investing with discipline",
        topic_category=topic.category if topic else "",
        summary=topic.summary if topic else "",
        key_points=tuple(topic.key_points or ()) if topic else (),
        cycle_date=entry.cycle.cycle_date,
        disclaimer=disclaimer,
        variation=variation,
        instruction=instruction,
        avoid=avoid,
    )


def _fail_entry(entry: CycleAdvisor, error: str) -> None:
    entry.stage, entry.error = Stage.FAILED, error[:2000]
    entry.save(update_fields=["stage", "error", "updated_at"])


def write_batch(cycle_id: int, batch: int, *, run_id: int, check: Callable[[], None] = lambda: None,
                progress: Progress | None = None) -> StageResult:
    """Write each planned entry's post (a draft Content) with the configured writer."""
    provider = writer.get_provider()
    disclaimer = required_disclaimer()
    result = StageResult()
    entries = list(_entries(cycle_id, batch, Stage.PLANNED))
    for done, entry in enumerate(entries, 1):
        check()
        try:
            draft = provider.write(_brief(entry, disclaimer=disclaimer))
        except writer.ProviderError as exc:
            _fail_entry(entry, f"The writer failed: {exc}")
            result.failed += 1
            continue
        with transaction.atomic():
            entry.content = Content.objects.create(
                advisor=entry.advisor,
                cycle_date=entry.cycle.cycle_date,
                kind=ContentKind.POST,
                title=draft.title[:200],
                body=draft.body,
                topic=(entry.topic.title if entry.topic else "")[:100],
                generating_run_id=run_id,
            )
            entry.stage, entry.error = Stage.WRITTEN, ""
            entry.save(update_fields=["content", "stage", "error", "updated_at"])
        result.processed += 1
        if progress:
            progress(done, len(entries))
    if entries and result.failed == len(entries):
        raise EngineError(f"The writer failed for every advisor of batch {batch}; last error: {entries[-1].error}")
    return result


def _previous_posts(advisor_id: int, *, exclude: int, limit: int) -> tuple[list[str], list[str]]:
    """Return the bodies and titles of the advisor's most recent posts (drafts aside)."""
    rows = (
        Content.objects.filter(advisor_id=advisor_id)
        .exclude(pk=exclude)
        .exclude(status=ContentStatus.DRAFT)
        .order_by("-cycle_date", "-id")
        .values_list("body", "title")[:limit]
    )
    rows = list(rows)
    return [body for body, _ in rows], [title for _, title in rows]


def check_fatigue_batch(cycle_id: int, batch: int, *, check: Callable[[], None] = lambda: None,
                        progress: Progress | None = None) -> StageResult:
    """Score each written post against the advisor's recent ones; rewrite a too-similar post
    up to the configured number of times, then flag it for the reviewer."""
    knobs = EngineSettings.load()
    provider = writer.get_provider()
    disclaimer = required_disclaimer()
    result = StageResult()
    entries = list(_entries(cycle_id, batch, Stage.WRITTEN))
    for done, entry in enumerate(entries, 1):
        check()
        content = entry.content
        ignore = [p for p in (disclaimer, entry.advisor.arn) if p]
        previous, titles = _previous_posts(entry.advisor_id, exclude=content.pk, limit=knobs.fatigue_history)
        score, _ = fatigue.most_similar(content.body, previous, ignore=ignore)
        rewrites = 0
        while score > knobs.fatigue_threshold and rewrites < knobs.max_regenerations:
            rewrites += 1
            try:
                draft = provider.write(_brief(entry, disclaimer=disclaimer, variation=rewrites,
                                              avoid=tuple(titles[:5])))
            except writer.ProviderError as exc:
                logger.warning("rewrite %s of content %s failed: %s", rewrites, content.pk, exc)
                break
            new_score, _ = fatigue.most_similar(draft.body, previous, ignore=ignore)
            if new_score < score:
                content.title, content.body, score = draft.title[:200], draft.body, new_score
        flagged = score > knobs.fatigue_threshold
        content.fatigue_score = round(score, 4)
        with transaction.atomic():
            content.save(update_fields=["title", "body", "fatigue_score", "updated_at"])
            entry.stage, entry.regenerations, entry.fatigue_flagged = Stage.FATIGUE_CHECKED, rewrites, flagged
            entry.save(update_fields=["stage", "regenerations", "fatigue_flagged", "updated_at"])
        result.processed += 1
        result.flagged += flagged
        if progress:
            progress(done, len(entries))
    return result


def illustrate_batch(cycle_id: int, batch: int, *, check: Callable[[], None] = lambda: None,
                     progress: Progress | None = None) -> StageResult:
    """Render each post's image card and attach it to the content."""
    brand = images.Brand.from_settings(EngineSettings.load())
    result = StageResult()
    entries = list(_entries(cycle_id, batch, Stage.FATIGUE_CHECKED))
    for done, entry in enumerate(entries, 1):
        check()
        content, advisor = entry.content, entry.advisor
        topic = entry.topic
        try:
            picture = images.render_card(
                headline=content.title,
                fallback_headline=topic.title if topic else "",
                advisor_name=advisor.name,
                arn=advisor.arn,
                brand=brand,
                topic=topic.category if topic else "",
            )
        except Exception as exc:  # a broken card must not stop the batch; the post can go without one
            logger.exception("image for content %s failed", content.pk)
            entry.error = f"No image: {exc}"[:2000]
        else:
            content.image.save(images.card_filename(advisor.arn, content.cycle_date, content.pk),
                               ContentFile(picture), save=False)
            content.kind = ContentKind.IMAGE
            entry.error = ""
        with transaction.atomic():  # one commit per post (each is a disk sync on SQLite)
            if not entry.error:
                content.save(update_fields=["image", "kind", "updated_at"])
            entry.stage = Stage.ILLUSTRATED
            entry.save(update_fields=["stage", "error", "updated_at"])
        result.processed += 1
        if progress:
            progress(done, len(entries))
    return result


def validate_batch(cycle_id: int, batch: int, *, check: Callable[[], None] = lambda: None,
                   progress: Progress | None = None) -> StageResult:
    """Check each post against the compliance rules, store the findings and submit it for review."""
    rules = list(ComplianceRule.objects.filter(enabled=True))
    result = StageResult()
    entries = list(_entries(cycle_id, batch, Stage.ILLUSTRATED))
    # A few posts per transaction: each one is still checked, stored and submitted together
    # with its stage, and a commit per post would be most of the stage's time on SQLite.
    for start in range(0, len(entries), SUBMIT_CHUNK):
        check()
        with transaction.atomic():
            for entry in entries[start : start + SUBMIT_CHUNK]:
                content = entry.content
                verdict = compliance.check_post(content.body, title=content.title, arn=entry.advisor.arn,
                                                rules=rules)
                content.compliance_verdict = verdict.verdict
                content.compliance_findings = verdict.findings
                content.save(update_fields=["compliance_verdict", "compliance_findings", "updated_at"])
                submit_for_review(content, source=AuditSource.SYSTEM)
                entry.stage = Stage.SUBMITTED
                entry.save(update_fields=["stage", "updated_at"])
                result.processed += 1
                result.flagged += verdict.verdict == ComplianceVerdict.FAIL
        if progress:
            progress(result.processed, len(entries))
    return result


def finish_cycle(cycle: Cycle, status: str) -> None:
    """Record how the cycle's orchestrator run ended."""
    Cycle.objects.filter(pk=cycle.pk, status=CycleStatus.RUNNING).update(status=status, finished_at=timezone.now())


# --- revisions --------------------------------------------------------------------------------


def items_to_revise(limit: int = 200) -> list[Content]:
    """Return items sent back for revision that have no revision yet, oldest first."""
    return list(
        Content.objects.filter(status=ContentStatus.NEEDS_REVISION)
        .exclude(Exists(Content.objects.filter(revision_of=OuterRef("pk"))))
        .select_related("advisor")
        .order_by("reviewed_at", "id")[:limit]
    )


def revise(original: Content, *, run_id: int) -> tuple[Content | None, tuple[str, ...]]:
    """Write a new version of an item sent back, with the reviewer's note as the instruction,
    check it like a new post, and submit it (linked to the original).

    Returns the revision (None if another handler made it first) and what the writer did
    about the note, for the run log. Raises writer.ProviderError when the writer fails.
    """
    topic = Topic.objects.filter(title=original.topic).first() if original.topic else None
    entry = CycleAdvisor(advisor=original.advisor, topic=topic, cycle=Cycle(cycle_date=original.cycle_date))
    draft = writer.get_provider().write(
        _brief(entry, disclaimer=required_disclaimer(), variation=original.revisions.count() + 1,
               instruction=original.review_note, avoid=(original.title,))
    )
    rules = list(ComplianceRule.objects.filter(enabled=True))
    verdict = compliance.check_post(draft.body, title=draft.title, arn=original.advisor.arn, rules=rules)
    previous, _ = _previous_posts(original.advisor_id, exclude=original.pk,
                                  limit=EngineSettings.load().fatigue_history)
    score, _ = fatigue.most_similar(draft.body, previous)
    notes = tuple(draft.revision_notes)
    try:
        with transaction.atomic():
            # One revision per original: the lock makes a second handler wait, then see it.
            locked = Content.objects.select_for_update().get(pk=original.pk)
            if locked.revisions.exists():
                return None, notes
            revision = Content.objects.create(
                advisor=original.advisor,
                cycle_date=original.cycle_date,
                kind=original.kind,
                title=draft.title[:200],
                body=draft.body,
                topic=original.topic,
                revision_of=original,
                generating_run_id=run_id,
                compliance_verdict=verdict.verdict,
                compliance_findings=verdict.findings,
                fatigue_score=round(score, 4),
            )
            if original.image:
                revision.image.save(images.card_filename(original.advisor.arn, original.cycle_date, revision.pk),
                                    ContentFile(original.image.read()), save=True)
            submit_for_review(revision, source=AuditSource.SYSTEM)
    except IntegrityError:
        return None, notes
    return revision, notes


# --- approval guardian ------------------------------------------------------------------------


def guardian_user():
    """Return the user the approval guardian acts as (created on first use, cannot sign in)."""
    user, created = get_user_model().objects.get_or_create(
        username=GUARDIAN_USERNAME, defaults={"first_name": "Approval", "last_name": "guardian", "is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def guardian_candidates(now: datetime | None = None):
    """Return pending items the guardian may approve: compliant, not repetitive, waiting long
    enough, and not touched by a person (no reviewer, no live claim)."""
    knobs = EngineSettings.load()
    now = now or timezone.now()
    return (
        Content.objects.filter(
            status=ContentStatus.PENDING_REVIEW,
            compliance_verdict=ComplianceVerdict.PASS,
            reviewer__isnull=True,
            submitted_at__lte=now - timedelta(minutes=knobs.guardian_min_age_minutes),
        )
        .filter(Q(fatigue_score__isnull=True) | Q(fatigue_score__lte=knobs.fatigue_threshold))
        .filter(Q(claimed_by__isnull=True) | Q(claim_expires_at__lt=now))
        .order_by("submitted_at", "id")
    )


# --- distribution -----------------------------------------------------------------------------


def approved_without_delivery():
    return Content.objects.filter(status=ContentStatus.APPROVED).exclude(
        Exists(Delivery.objects.filter(content=OuterRef("pk")))
    )


# --- analytics --------------------------------------------------------------------------------


RESPONSE_BUCKETS_MS = (250, 500, 1000, 2000, 3000, 5000, 10_000, 30_000, 60_000)  # then one for slower


def compute_rollup(day: date) -> DailyRollup:
    """Recompute one day's figures from the rows: content by cycle date, engagement by the day it happened."""
    content = Content.objects.filter(cycle_date=day)
    by_status = dict(content.values_list("status").annotate(n=Count("id")).order_by())
    entries = CycleAdvisor.objects.filter(cycle__cycle_date=day, cycle__dry_run=False)
    deliveries = Delivery.objects.filter(content__cycle_date=day)
    delivered = deliveries.filter(status__in=["sent", "delivered", "read"]).count()
    figures = {
        "advisors_served": content.values("advisor_id").distinct().count(),
        "generated": content.count(),
        "compliance_failed": content.filter(compliance_verdict=ComplianceVerdict.FAIL).count(),
        "fatigue_flagged": entries.filter(fatigue_flagged=True).count(),
        "approved": sum(by_status.get(s, 0) for s in ("approved", "scheduled", "delivered", "failed")),
        "rejected": by_status.get("rejected", 0),
        "revisions_requested": by_status.get("needs_revision", 0),
        "delivered": delivered,
        "delivery_failed": deliveries.filter(status="failed").count(),
        "read": deliveries.filter(status="read").count(),
        "clicked": content.filter(button_clicks__isnull=False).distinct().count(),
        **_engagement_figures(day),
        "computed_at": timezone.now(),
    }
    rollup, _ = DailyRollup.objects.update_or_create(day=day, defaults=figures)
    return rollup


def _engagement_figures(day: date) -> dict:
    """Clicks and chats that happened on `day` in the engine's time zone."""
    from django.db.models.functions import ExtractHour

    from advisors.inbound.models import ButtonAction, ButtonClick, ChatMessage, Conversation, Direction

    zone = engine_zone()
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = start + timedelta(days=1)
    clicks = ButtonClick.objects.filter(at__gte=start, at__lt=end)
    click = clicks.aggregate(
        n_retrieve=Count("id", filter=Q(action=ButtonAction.RETRIEVE_CONTENT)),
        n_unlock=Count("id", filter=Q(action=ButtonAction.UNLOCK_CONTENT)),
        n_share=Count("id", filter=Q(action=ButtonAction.SHARE_WITH_CLIENTS)),
        n_succeeded=Count("id", filter=Q(succeeded=True)),
        n_with_outcome=Count("id", filter=Q(succeeded__isnull=False)),
        response_sum=Sum("response_ms"),
        response_count=Count("response_ms"),
    )
    hours = dict(clicks.annotate(h=ExtractHour("at", tzinfo=zone)).values_list("h").annotate(n=Count("id")).order_by())
    messages = ChatMessage.objects.filter(at__gte=start, at__lt=end)
    answers = messages.filter(direction=Direction.OUTBOUND)
    bounds = [0, *RESPONSE_BUCKETS_MS]
    chat = messages.aggregate(
        inbound=Count("id", filter=Q(direction=Direction.INBOUND)),
        outbound=Count("id", filter=Q(direction=Direction.OUTBOUND)),
    )
    answer = answers.aggregate(
        response_sum=Sum("response_ms"), response_count=Count("response_ms"),
        quality_sum=Sum("ai_quality_score"), quality_count=Count("ai_quality_score"),
        **{f"b{i}": Count("id", filter=Q(response_ms__gt=low, response_ms__lte=high) if i else Q(response_ms__lte=high))
           for i, (low, high) in enumerate(zip(bounds, RESPONSE_BUCKETS_MS, strict=False))},
        slower=Count("id", filter=Q(response_ms__gt=RESPONSE_BUCKETS_MS[-1])),
    )
    engaged = set(clicks.exclude(advisor=None).values_list("advisor_id", flat=True).distinct())
    engaged |= set(messages.exclude(conversation__advisor=None).values_list("conversation__advisor_id", flat=True)
                   .distinct())
    conversations = Conversation.objects.all()
    return {
        "clicks_retrieve": click["n_retrieve"], "clicks_unlock": click["n_unlock"], "clicks_share": click["n_share"],
        "clicks_succeeded": click["n_succeeded"], "clicks_with_outcome": click["n_with_outcome"],
        "click_response_ms_sum": click["response_sum"] or 0, "click_response_count": click["response_count"],
        "clicks_by_hour": [hours.get(h, 0) for h in range(24)],
        "engaged_advisors": len(engaged),
        "conversations_started": conversations.filter(started_at__gte=start, started_at__lt=end).count(),
        "conversations_completed": conversations.filter(completed_at__gte=start, completed_at__lt=end).count(),
        "chat_messages_in": chat["inbound"], "chat_messages_out": chat["outbound"],
        "chat_response_ms_sum": answer["response_sum"] or 0, "chat_response_count": answer["response_count"],
        "chat_response_buckets": [answer[f"b{i}"] for i in range(len(RESPONSE_BUCKETS_MS))] + [answer["slower"]],
        "ai_quality_sum": answer["quality_sum"] or 0.0, "ai_quality_count": answer["quality_count"],
    }


def approve_as_guardian(content: Content, user) -> bool:
    """Approve one item as the guardian; False when someone else acted on it first."""
    from opscenter.services import DomainError

    try:
        approve_content(content, by=user, note="Approved automatically by the approval guardian.",
                        expected_version=content.version, source=AuditSource.SYSTEM)
    except DomainError:
        return False
    return True
