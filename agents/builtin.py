"""Built-in agents that keep OpsCenter itself in shape (the content engine lives in agents/engine/)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from .models import ACTIVE_STATUSES, FINAL_STATUSES, AgentRun
from .registry import agent
from .runtime import RunContext


@agent(
    "housekeeping",
    name="Housekeeping",
    description="Tidies OpsCenter's own records; starts one child per chore.",
    params={
        "type": "object",
        "properties": {
            "keep_run_days": {"type": "integer", "title": "Keep runs for (days)", "default": 90, "minimum": 1,
                              "maximum": 3650},
        },
    },
    timeout=300,
    position=100,
)
def housekeeping(ctx: RunContext) -> dict:
    """Start each chore as a child run; the chores run in parallel on the workers."""
    child = ctx.child("prune-run-history", {"days": ctx.params["keep_run_days"]})
    ctx.log(f"Started prune-run-history as run #{child.pk}.")
    return {"children": [child.pk]}


@agent(
    "prune-run-history",
    name="Prune run history",
    parent="housekeeping",
    description="Deletes finished run trees (with their logs) older than the given number of days.",
    params={
        "type": "object",
        "properties": {
            "days": {"type": "integer", "title": "Older than (days)", "default": 90, "minimum": 1, "maximum": 3650},
            "batch_size": {"type": "integer", "title": "Batch size", "default": 500, "minimum": 1,
                           "maximum": 10000},
        },
        "required": ["days"],
    },
    timeout=1800,
    retries=1,
)
def prune_run_history(ctx: RunContext) -> dict:
    """Delete old finished run trees in batches; a dry run only counts them."""
    cutoff = timezone.now() - timedelta(days=ctx.params["days"])
    old_roots = AgentRun.objects.filter(root_id=F("pk"), status__in=FINAL_STATUSES, finished_at__lt=cutoff).exclude(
        descendants__status__in=ACTIVE_STATUSES
    )
    ids = list(old_roots.values_list("pk", flat=True).distinct())
    total = len(ids)
    ctx.log(f"{total} finished run trees older than {cutoff:%Y-%m-%d %H:%M} UTC.")
    ctx.metric("items", total)
    if ctx.dry_run:
        ctx.progress(total, total, note="dry run: nothing deleted")
        return {"would_delete_trees": total}
    deleted = 0
    size = ctx.params.get("batch_size", 500)
    for start in range(0, total, size):
        ctx.check_cancelled()
        batch = ids[start : start + size]
        AgentRun.objects.filter(pk__in=batch).delete()  # descendants and logs go with their root
        deleted += len(batch)
        ctx.progress(deleted, total, note=f"{deleted} of {total} trees deleted")
    ctx.log(f"Deleted {deleted} run trees.")
    return {"deleted_trees": deleted}
