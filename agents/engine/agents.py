"""The content engine's agents: thin wrappers that log, report progress and honour
cancellation around agents/engine/services.py.

    content-orchestrator ─┬─ content-strategist      (one run: plans topics for the cycle)
                          └─ per batch of advisors, each stage starting when the previous succeeded:
                             content-generator → fatigue-checker → image-creator → compliance-validator
    approval-guardian, revision-handler, distribution-manager, analytics-tracker: on their own.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db.models import Q
from django.utils import timezone

from agents.registry import agent
from agents.runtime import RunContext

from . import services, writer
from .models import Cycle, CycleStatus, Topic

BATCH_PARAMS = {
    "type": "object",
    "properties": {
        "cycle": {"type": "integer", "title": "Cycle id", "minimum": 1},
        "batch": {"type": "integer", "title": "Batch number", "minimum": 0, "default": 0},
    },
    "required": ["cycle"],
}


def _progress(ctx: RunContext, note: str):
    return lambda done, total: ctx.progress(done, total, note=f"{done} of {total} {note}")


@agent(
    "content-orchestrator",
    name="Content orchestrator",
    description="Runs a content cycle: picks the advisors, plans topics, then writes, checks, illustrates "
    "and submits a post for each, batch by batch.",
    params={
        "type": "object",
        "properties": {
            "cycle_date": {"type": "string", "format": "date", "title": "Cycle date",
                           "description": "The day the posts are for. Empty: tomorrow after noon, else today."},
            "advisors": {"type": "array", "items": {"type": "integer"}, "title": "Only these advisor ids",
                         "description": "Comma-separated ids; empty: every active advisor without a post yet."},
            "segment": {"type": "string", "title": "Only this segment", "maxLength": 50},
            "limit": {"type": "integer", "title": "At most this many advisors", "minimum": 1, "maximum": 100000},
            "topic": {"type": "integer", "title": "Topic override (topic id)", "minimum": 1,
                      "description": "Write every post on this topic instead of letting the strategist choose."},
        },
    },
    timeout=300,
    retries=0,
    position=10,
    # The evening run writes tomorrow's posts; the morning run picks up anyone it missed.
    schedule="30 20 * * *; 0 5 * * *",
    schedule_tz_setting="ENGINE_TIME_ZONE",
)
def content_orchestrator(ctx: RunContext) -> dict:
    """Plan the cycle and start its stage runs; the run ends when the last stage has."""
    p = ctx.params
    cycle_date = date.fromisoformat(p["cycle_date"]) if p.get("cycle_date") else services.default_cycle_date()
    topic = None
    if p.get("topic"):
        topic = Topic.objects.filter(pk=p["topic"], enabled=True).first()
        if topic is None:
            raise services.EngineError(f"Topic #{p['topic']} does not exist or is disabled.")
    advisors = services.select_advisors(
        cycle_date, advisor_ids=p.get("advisors") or (), segment=p.get("segment", ""), limit=p.get("limit")
    )
    cycle = services.plan_cycle(ctx.run.pk, cycle_date=cycle_date, advisors=advisors, dry_run=ctx.dry_run,
                                topic=topic)
    ctx.metric("items", len(advisors))
    ctx.log(f"Cycle {cycle_date:%Y-%m-%d}: {len(advisors)} advisors in {cycle.batches} batches"
            + (f", all on “{topic.title}”" if topic else "") + ".")
    if not advisors:
        services.finish_cycle(cycle, CycleStatus.SUCCEEDED)
        return {"cycle": cycle.pk, "advisors": 0}
    strategist = ctx.child("content-strategist", {"cycle": cycle.pk})
    if ctx.dry_run:
        ctx.log("Dry run: the strategist plans topics; nothing is written or submitted.")
        return {"cycle": cycle.pk, "advisors": len(advisors), "dry_run": True}
    for batch in range(cycle.batches):
        ctx.check_cancelled()
        params = {"cycle": cycle.pk, "batch": batch}
        written = ctx.child("content-generator", params, after=strategist)
        checked = ctx.child("fatigue-checker", params, after=written)
        illustrated = ctx.child("image-creator", params, after=checked)
        ctx.child("compliance-validator", params, after=illustrated)
    ctx.progress(0, len(advisors), note="stages started")
    return {"cycle": cycle.pk, "advisors": len(advisors), "batches": cycle.batches}


def _cycle(ctx: RunContext) -> Cycle:
    return Cycle.objects.get(pk=ctx.params["cycle"])


@agent(
    "content-strategist",
    parent="content-orchestrator",
    name="Content strategist",
    description="Chooses a topic from the topic bank for each advisor of a cycle (segment, preferences, "
    "nothing repeated within 30 days); refreshes the configured feeds first.",
    params={"type": "object", "properties": {"cycle": BATCH_PARAMS["properties"]["cycle"]}, "required": ["cycle"]},
    timeout=300,
    retries=2,
    position=1,
)
def content_strategist(ctx: RunContext) -> dict:
    from . import feeds

    added = feeds.refresh_feeds()
    if added:
        ctx.log(f"Feeds refreshed: {sum(added.values())} new topics from {len(added)} feeds.")
    planned = services.choose_topics(_cycle(ctx), progress=_progress(ctx, "advisors planned"))
    ctx.metric("items", planned)
    ctx.log(f"Topics chosen for {planned} advisors.")
    return {"planned": planned}


def _stage(ctx: RunContext, work, note: str) -> dict:
    p = ctx.params
    result = work(p["cycle"], p.get("batch", 0), check=ctx.check_cancelled, progress=_progress(ctx, note))
    ctx.metric("items", result.processed)
    ctx.log(f"Batch {p.get('batch', 0)}: {result.processed} {note}"
            + (f", {result.failed} failed" if result.failed else "")
            + (f", {result.flagged} flagged" if result.flagged else "") + ".",
            level="warning" if result.failed else "info")
    return result.as_dict()


@agent("content-generator", parent="content-orchestrator", name="Content generator",
       description="Writes each advisor's post with the configured writer (local templates, or an "
       "OpenAI-compatible API when configured).", params=BATCH_PARAMS, timeout=600, retries=2, position=2)
def content_generator(ctx: RunContext) -> dict:
    p = ctx.params
    result = services.write_batch(p["cycle"], p.get("batch", 0), run_id=ctx.run.pk, check=ctx.check_cancelled,
                                  progress=_progress(ctx, "posts written"))
    ctx.metric("items", result.processed)
    ctx.log(f"Batch {p.get('batch', 0)}: {result.processed} posts written"
            + (f", {result.failed} failed" if result.failed else "") + ".",
            level="warning" if result.failed else "info")
    return result.as_dict()


@agent("fatigue-checker", parent="content-orchestrator", name="Fatigue checker",
       description="Compares each post with the advisor's recent ones; rewrites a too-similar post, then "
       "flags it.", params=BATCH_PARAMS, timeout=600, retries=2, position=3)
def fatigue_checker(ctx: RunContext) -> dict:
    return _stage(ctx, services.check_fatigue_batch, "posts checked")


@agent("image-creator", parent="content-orchestrator", name="Image creator",
       description="Renders each post's image card (headline, advisor name and ARN, brand colours).",
       params=BATCH_PARAMS, timeout=600, retries=2, position=4)
def image_creator(ctx: RunContext) -> dict:
    return _stage(ctx, services.illustrate_batch, "images made")


@agent("compliance-validator", parent="content-orchestrator", name="Compliance validator",
       description="Checks each post against the compliance rules, keeps the findings with their "
       "positions, and submits it for review.", params=BATCH_PARAMS, timeout=600, retries=2, position=5)
def compliance_validator(ctx: RunContext) -> dict:
    return _stage(ctx, services.validate_batch, "posts checked and submitted")


@agent(
    "approval-guardian",
    name="Approval guardian",
    description="Auto-approves clean items nobody reviewed, when the policy is on (engine settings; off "
    "by default). Acts as the user “approval-guardian” in the audit trail.",
    params={"type": "object", "properties": {
        "limit": {"type": "integer", "title": "At most this many items", "default": 5000, "minimum": 1,
                  "maximum": 100000}}},
    timeout=900,
    position=20,
    schedule="0 23 * * *",
    schedule_tz_setting="ENGINE_TIME_ZONE",
)
def approval_guardian(ctx: RunContext) -> dict:
    from .models import EngineSettings

    if not EngineSettings.load().guardian_enabled:
        ctx.log("Auto-approval is off (engine settings); nothing to do.")
        return {"approved": 0, "enabled": False}
    items = list(services.guardian_candidates()[: ctx.params.get("limit", 5000)])
    ctx.log(f"{len(items)} clean items waiting long enough with no reviewer.")
    if ctx.dry_run:
        return {"would_approve": len(items)}
    user = services.guardian_user()
    approved = 0
    for done, item in enumerate(items, 1):
        ctx.check_cancelled()
        approved += services.approve_as_guardian(item, user)
        ctx.progress(done, len(items), note=f"{approved} approved")
    ctx.metric("items", approved)
    ctx.log(f"Approved {approved}; {len(items) - approved} were taken by someone else first.")
    return {"approved": approved}


@agent(
    "revision-handler",
    name="Revision handler",
    description="Rewrites items sent back for revision, with the reviewer's note as the instruction, and "
    "submits the new version linked to the original.",
    params={"type": "object", "properties": {
        "limit": {"type": "integer", "title": "At most this many items", "default": 200, "minimum": 1,
                  "maximum": 5000}}},
    timeout=900,
    retries=1,
    position=21,
    schedule="*/10 * * * *",
)
def revision_handler(ctx: RunContext) -> dict:
    items = services.items_to_revise(ctx.params.get("limit", 200))
    ctx.log(f"{len(items)} items wait for a revision.")
    if ctx.dry_run:
        return {"would_revise": len(items)}
    revised = failed = 0
    for done, item in enumerate(items, 1):
        ctx.check_cancelled()
        try:
            revision, notes = services.revise(item, run_id=ctx.run.pk)
        except writer.ProviderError as exc:
            failed += 1
            ctx.log(f"#{item.pk} “{item.title}”: the writer failed: {exc}", level="error")
            continue
        if revision is not None:
            revised += 1
            ctx.log(f"#{item.pk} “{item.title}” → revision #{revision.pk} ({revision.compliance_verdict}). "
                    + "; ".join(notes))
        ctx.progress(done, len(items))
    ctx.metric("items", revised)
    if items and failed == len(items):
        raise services.EngineError(f"The writer failed for all {failed} items.")
    return {"revised": revised, "failed": failed}


@agent(
    "distribution-manager",
    name="Distribution manager",
    description="Delivers approved items: creates any missing delivery and sends the queued ones through "
    "the configured channel (each send is a Celery task with its own retries).",
    params={"type": "object", "properties": {
        "limit": {"type": "integer", "title": "At most this many deliveries", "default": 5000, "minimum": 1,
                  "maximum": 100000}}},
    timeout=600,
    position=22,
    schedule="*/5 * * * *",
)
def distribution_manager(ctx: RunContext) -> dict:
    from advisors import services as content_services
    from advisors.models import Delivery, DeliveryStatus
    from advisors.tasks import deliver_content

    limit = ctx.params.get("limit", 5000)
    missing = list(services.approved_without_delivery().select_related("advisor")[:limit])
    # Queued and due (not waiting out a back-off), and not just created: those have their
    # task on the way already.
    now = timezone.now()
    queued = list(
        Delivery.objects.filter(status=DeliveryStatus.QUEUED, updated_at__lt=now - timedelta(minutes=1))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .values_list("pk", flat=True)[:limit]
    )
    ctx.log(f"{len(missing)} approved items without a delivery, {len(queued)} deliveries waiting.")
    if ctx.dry_run:
        return {"would_create": len(missing), "would_send": len(queued)}
    created = sum(1 for item in missing if content_services.create_delivery(item) is not None)
    for delivery_id in queued:
        deliver_content.delay(delivery_id)
    ctx.metric("items", created + len(queued))
    return {"created": created, "sent": len(queued)}


@agent(
    "analytics-tracker",
    name="Analytics tracker",
    description="Recomputes the daily figures (generated, approved, delivered…) the pages read.",
    params={"type": "object", "properties": {
        "days": {"type": "integer", "title": "Days back to recompute", "default": 2, "minimum": 1, "maximum": 730}}},
    timeout=600,
    position=23,
    schedule="10 * * * *",
)
def analytics_tracker(ctx: RunContext) -> dict:
    today = services.default_cycle_date() + timedelta(days=1)
    days = [today - timedelta(days=n) for n in range(ctx.params.get("days", 2) + 1)]
    for done, day in enumerate(days, 1):
        ctx.check_cancelled()
        services.compute_rollup(day)
        ctx.progress(done, len(days))
    ctx.metric("items", len(days))
    return {"days": [d.isoformat() for d in days]}
