"""Business rules of health checks: claim and run due checks, record results and flips,
run one now, uptime, the live snapshot, the checks bootstrap creates, and pruning.

The dispatcher's shape: claim (a conditional UPDATE that moves `next_due_at` on, so a
second dispatcher or a duplicate delivery finds nothing to take), run everything
concurrently (probes.run_checks), then store in one transaction with the rows locked —
results in bulk, the rows' state in bulk, a flip for every change of state — and publish
one `health` event after commit.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from opscenter.audit import record_audit
from opscenter.live import publish
from opscenter.models import AuditSource
from opscenter.services import DomainError

from .models import CheckKind, CheckState, HealthCheck, HealthFlip, HealthResult
from .probes import Outcome, run_checks_sync

logger = logging.getLogger(__name__)

TOPIC = "health"
WINDOWS: dict[str, timedelta] = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
STATE_FIELDS = ["state", "state_since", "last_checked_at", "last_ok", "last_latency_ms", "last_status_code",
                "last_detail", "recent"]


class CheckDisabled(DomainError):
    """A disabled check is not run, not even by hand."""


class SystemCheckProtected(DomainError):
    """Checks of OpsCenter's own components are disabled, not deleted (bootstrap would recreate them)."""


# --- claim, run, store ---------------------------------------------------------------------


def claim_due_checks(now: datetime | None = None, *, limit: int | None = None) -> list[HealthCheck]:
    """Claim the enabled checks that are due: move their next_due_at on and return them.

    One conditional UPDATE per distinct interval (`next_due_at <= now` is part of it), so of
    two dispatchers racing for a row exactly one updates it; the other's UPDATE re-reads the
    row, finds it no longer due and leaves it. The token tells us which rows were ours.
    """
    now = now or timezone.now()
    limit = limit or settings.HEALTH_MAX_CHECKS_PER_CYCLE
    token = uuid.uuid4().hex
    due = HealthCheck.objects.filter(enabled=True, next_due_at__lte=now)
    intervals = sorted(set(due.values_list("interval_seconds", flat=True)))
    claimed = 0
    for interval in intervals:
        if claimed >= limit:
            break
        batch = due.filter(interval_seconds=interval).order_by("next_due_at", "pk").values("pk")[: limit - claimed]
        claimed += HealthCheck.objects.filter(
            pk__in=batch, enabled=True, next_due_at__lte=now, interval_seconds=interval
        ).update(next_due_at=now + timedelta(seconds=interval), claim_token=token)
    if not claimed:
        return []
    return list(HealthCheck.objects.filter(claim_token=token).order_by("pk"))


@dataclass
class CycleReport:
    claimed: int = 0
    up: int = 0
    down: int = 0
    flips: int = 0
    results: int = 0


def _strip_entry(outcome: Outcome) -> list:
    return [outcome.at.isoformat(), outcome.ok, None if outcome.latency_ms is None else round(outcome.latency_ms, 1)]


def record_outcomes(outcomes: Sequence[Outcome]) -> tuple[list[HealthResult], list[HealthFlip]]:
    """Store outcomes: result rows, each check's state and strip, and a flip per change of state.

    The rows are locked for the duration, so a "run now" of the same check and this batch
    never both record the same flip. Checks deleted or disabled meanwhile are skipped, and an
    outcome older than the check's last result adds a row but does not turn the state back.
    """
    if not outcomes:
        return [], []
    keep = settings.HEALTH_RECENT_RESULTS
    with transaction.atomic():
        rows = {
            check.pk: check
            for check in HealthCheck.objects.select_for_update().filter(pk__in=[o.check_id for o in outcomes])
        }
        results: list[HealthResult] = []
        flips: list[HealthFlip] = []
        changed: list[HealthCheck] = []
        for outcome in outcomes:
            check = rows.get(outcome.check_id)
            if check is None or not check.enabled:
                continue
            results.append(HealthResult(health_check=check, at=outcome.at, ok=outcome.ok,
                                        latency_ms=outcome.latency_ms, status_code=outcome.status_code,
                                        detail=outcome.detail))
            if check.last_checked_at is not None and outcome.at < check.last_checked_at:
                continue
            new_state = CheckState.UP if outcome.ok else CheckState.DOWN
            if new_state != check.state:
                at = max(outcome.at, check.state_since)
                flips.append(HealthFlip(
                    health_check=check, at=at, from_state=check.state, to_state=new_state,
                    previous_duration_seconds=(at - check.state_since).total_seconds(), detail=outcome.detail,
                ))
                check.state, check.state_since = new_state, at
                check._flipped = True
            check.last_checked_at = outcome.at
            check.last_ok = outcome.ok
            check.last_latency_ms = outcome.latency_ms
            check.last_status_code = outcome.status_code
            check.last_detail = outcome.detail
            check.recent = [*(check.recent or []), _strip_entry(outcome)][-keep:]
            changed.append(check)
        HealthResult.objects.bulk_create(results, batch_size=500)
        HealthFlip.objects.bulk_create(flips, batch_size=500)
        _update_states(changed)
        if changed:
            publish(TOPIC, "checks.updated", {
                "checks": [{**c.summary(), "flipped": getattr(c, "_flipped", False)} for c in changed],
            })
    return results, flips


def _update_states(checks: list[HealthCheck]) -> None:
    """Write the state fields of many checks: one prepared UPDATE, executed per row.

    bulk_update() would build a CASE over every row for every field, which costs the
    database rows × rows comparisons; executemany reuses one statement (psycopg pipelines it).
    """
    if not checks:
        return
    fields = [HealthCheck._meta.get_field(name) for name in STATE_FIELDS]
    quote = connection.ops.quote_name
    # Only our own table and column names go into the text; every value is a parameter.
    sql = (f"UPDATE {quote(HealthCheck._meta.db_table)} SET "  # noqa: S608
           + ", ".join(f"{quote(f.column)} = %s" for f in fields) + f" WHERE {quote('id')} = %s")
    params = [[f.get_db_prep_save(getattr(check, f.attname), connection) for f in fields] + [check.pk]
              for check in checks]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def dispatch_due_checks(now: datetime | None = None) -> CycleReport:
    """Claim the due checks, run them concurrently, store what they found (the beat task's body)."""
    checks = claim_due_checks(now)
    report = CycleReport(claimed=len(checks))
    if not checks:
        return report
    outcomes = run_checks_sync(checks)
    results, flips = record_outcomes(outcomes)
    report.results, report.flips = len(results), len(flips)
    report.up = sum(1 for r in results if r.ok)
    report.down = len(results) - report.up
    for flip in flips:
        log = logger.warning if flip.to_state == CheckState.DOWN else logger.info
        log("health check %s is %s: %s", flip.health_check.name, flip.to_state, flip.detail)
    return report


def run_check_now(check: HealthCheck, *, by, source: str = AuditSource.UI,
                  request: HttpRequest | None = None) -> HealthResult:
    """Run one check at once (Operators and Admins), store its result and audit it."""
    check.refresh_from_db()
    if not check.enabled:
        raise CheckDisabled("This check is disabled: enable it before running it.")
    (outcome,) = run_checks_sync([check], overall_timeout=check.timeout_seconds + 5)
    with transaction.atomic():
        results, flips = record_outcomes([outcome])
        if not results:
            raise CheckDisabled("This check was disabled or deleted while it ran.")
        record_audit("health_check.run", actor=by, target=check, source=source, request=request,
                     changes={"ok": outcome.ok, "detail": outcome.detail, "latency_ms": outcome.latency_ms,
                              **({"state": flips[0].to_state} if flips else {})})
    return results[0]


# --- state changes people make -----------------------------------------------------------------


def _set_state(check: HealthCheck, state: str, *, at: datetime, detail: str) -> HealthFlip | None:
    """Move a locked check to `state` with a flip (used when disabling: unknown, not down)."""
    if check.state == state:
        return None
    at = max(at, check.state_since)
    flip = HealthFlip.objects.create(health_check=check, at=at, from_state=check.state, to_state=state,
                                     previous_duration_seconds=(at - check.state_since).total_seconds(), detail=detail)
    check.state, check.state_since = state, at
    return flip


# Fields whose change means the old results say nothing about the new target: run it soon.
TARGET_FIELDS = {"kind", "url", "method", "expected_status", "keyword", "json_path", "json_expected", "headers",
                 "verify_tls", "follow_redirects", "host", "port", "expected_workers", "path", "threshold_percent",
                 "pid_file", "process_name", "interval_seconds", "timeout_seconds", "enabled"}


def save_check(check: HealthCheck, *, by, changed: Iterable[str] | None = None, source: str = AuditSource.UI,
               request: HttpRequest | None = None) -> HealthCheck:
    """Create or update a (validated) check; audit it, and schedule it at once when its target changed."""
    creating = check.pk is None
    changed = set(changed or ()) | set(check.clear_unused_fields())
    now = timezone.now()
    with transaction.atomic():
        if creating:
            check.state, check.state_since, check.next_due_at = CheckState.UNKNOWN, now, now
            check.created_at = now
            check.save()
        else:
            # The state is the dispatcher's: take the locked row's, never the copy a form loaded.
            locked = HealthCheck.objects.select_for_update().get(pk=check.pk)
            for field in (*STATE_FIELDS, "next_due_at", "claim_token", "created_at"):
                setattr(check, field, getattr(locked, field))
            if "enabled" in changed and not check.enabled:
                _set_state(check, CheckState.UNKNOWN, at=now, detail="disabled")
            if changed & TARGET_FIELDS:
                check.next_due_at = now
            check.save()
        fields = sorted(changed - {"headers"}) + (["headers (hidden)"] if "headers" in changed else [])
        record_audit("health_check.created" if creating else "health_check.changed", actor=by, target=check,
                     source=source, request=request,
                     changes={"fields": fields} if not creating else {"kind": check.kind, "target": check.target()})
        publish(TOPIC, "checks.updated", {"checks": [{**check.summary(), "flipped": True}]})
    return check


def delete_check(check: HealthCheck, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None) -> None:
    """Delete a check and its history; OpsCenter's own checks are disabled instead."""
    if check.is_system:
        raise SystemCheckProtected(
            "This check watches one of OpsCenter's own components and would come back at the next start: "
            "disable it instead."
        )
    with transaction.atomic():
        record_audit("health_check.deleted", actor=by, target=check, source=source, request=request,
                     changes={"kind": check.kind, "target": check.target()})
        pk = check.pk
        check.delete()
        publish(TOPIC, "check.deleted", {"id": pk})


# --- uptime ----------------------------------------------------------------------------------


def _uptime(check: HealthCheck, flips_desc: list[HealthFlip], start: datetime, now: datetime) -> float | None:
    """Share of known (up or down) time in [start, now] that the check was up, or None.

    Walks back from the current state through the flips: before each flip the check was in
    the flip's `from_state`. Time before the check existed, and time in `unknown` (never
    checked, or disabled), counts neither way.
    """
    seconds = {CheckState.UP: 0.0, CheckState.DOWN: 0.0, CheckState.UNKNOWN: 0.0}
    end = now
    state = check.state
    for flip in flips_desc:
        if flip.at <= start:
            break
        if flip.at < end:
            seconds[state] += (end - flip.at).total_seconds()
            end = flip.at
        state = flip.from_state
    begin = max(start, check.created_at)
    if end > begin:
        seconds[state] += (end - begin).total_seconds()
    known = seconds[CheckState.UP] + seconds[CheckState.DOWN]
    return None if known <= 0 else seconds[CheckState.UP] / known


def uptimes(checks: Sequence[HealthCheck], now: datetime | None = None) -> dict[int, dict[str, float | None]]:
    """Return each check's time-weighted uptime over 24 h, 7 d and 30 d (0..1, None: no data)."""
    now = now or timezone.now()
    oldest = now - max(WINDOWS.values())
    by_check: dict[int, list[HealthFlip]] = defaultdict(list)
    if checks:
        for flip in HealthFlip.objects.filter(health_check__in=[c.pk for c in checks], at__gt=oldest).only(
            "health_check_id", "at", "from_state", "to_state"
        ).order_by("health_check_id", "-at", "-id"):
            by_check[flip.health_check_id].append(flip)
    return {
        check.pk: {name: _uptime(check, by_check[check.pk], now - window, now) for name, window in WINDOWS.items()}
        for check in checks
    }


# --- what the pages and the topic show -----------------------------------------------------------


def overall_status(summaries: Iterable[dict]) -> dict[str, Any]:
    """Sum up the enabled checks: down if any is down, unknown if any is unknown, else up."""
    counts = {CheckState.UP: 0, CheckState.DOWN: 0, CheckState.UNKNOWN: 0}
    total = 0
    for summary in summaries:
        if not summary["enabled"]:
            continue
        total += 1
        counts[summary["state"]] += 1
    state = CheckState.DOWN if counts[CheckState.DOWN] else (
        CheckState.UNKNOWN if counts[CheckState.UNKNOWN] or not total else CheckState.UP)
    return {"state": state, "total": total, "up": counts[CheckState.UP], "down": counts[CheckState.DOWN],
            "unknown": counts[CheckState.UNKNOWN]}


def health_snapshot(user=None, *, check_id: int | None = None) -> dict[str, Any]:
    """The `health` topic's snapshot: every check with its state and uptime, and the overall status."""
    checks = list(HealthCheck.objects.all() if check_id is None else HealthCheck.objects.filter(pk=check_id))
    times = uptimes(checks)
    summaries = [{**c.summary(), "uptime": times[c.pk]} for c in checks]
    order = {CheckState.DOWN: 0, CheckState.UNKNOWN: 1, CheckState.UP: 2}
    summaries.sort(key=lambda s: (not s["enabled"], order[s["state"]], s["name"].lower()))
    return {"server_time": timezone.now().isoformat(), "overall": overall_status(summaries), "checks": summaries}


def latency_series(check: HealthCheck, *, hours: int = 24, limit: int = 1500) -> list[dict[str, Any]]:
    """Return the check's results of the last `hours`, oldest first (the latency chart)."""
    since = timezone.now() - timedelta(hours=hours)
    rows = list(check.results.filter(at__gte=since).order_by("-at").values("at", "ok", "latency_ms")[:limit])
    rows.reverse()
    return [{"at": r["at"].isoformat(), "ok": r["ok"], "latency_ms": r["latency_ms"]} for r in rows]


# --- OpsCenter's own checks ------------------------------------------------------------------------


def _web_check_headers(url: str) -> dict[str, str]:
    """A Host header the site accepts, when the URL's own host is not in ALLOWED_HOSTS."""
    host = urlsplit(url).hostname or ""
    allowed = settings.ALLOWED_HOSTS
    if "*" in allowed or host in allowed or not allowed:
        return {}
    return {"Host": allowed[0].lstrip(".")}


def system_check_specs() -> list[dict[str, Any]]:
    """Describe the checks of OpsCenter's own components, from the settings."""
    web_url = settings.HEALTH_WEB_BASE_URL.rstrip("/") + "/api/v1/health"
    specs = [
        {"system_key": "web", "name": "Web (API liveness)", "kind": CheckKind.HTTP, "url": web_url,
         "headers": _web_check_headers(web_url), "expected_status": 200, "interval_seconds": 30,
         "description": "The web process answers GET /api/v1/health."},
        {"system_key": "database", "name": "Database", "kind": CheckKind.DATABASE, "interval_seconds": 30,
         "description": "SELECT 1 on OpsCenter's database."},
        {"system_key": "redis", "name": "Redis", "kind": CheckKind.REDIS, "url": "", "interval_seconds": 30,
         "description": "PING to the Redis that carries the broker and the live events."},
        {"system_key": "workers", "name": "Celery workers", "kind": CheckKind.WORKERS, "expected_workers": 1,
         "interval_seconds": 30, "description": "At least one worker answers a ping."},
        {"system_key": "beat", "name": "Celery beat", "kind": CheckKind.BEAT, "interval_seconds": 30,
         "description": "The scheduler ticked recently."},
        {"system_key": "disk-var", "name": "Disk (var directory)", "kind": CheckKind.DISK,
         "path": str(settings.VAR_DIR), "threshold_percent": settings.HEALTH_DISK_THRESHOLD_PERCENT,
         "interval_seconds": 60, "description": "Free space where the database, Redis and backups live."},
    ]
    specs.extend(inbound_source_specs())
    if settings.HEALTH_WEBHOOK_SERVICE_URL:
        specs.append({"system_key": "webhook-service", "name": "Inbound webhook service", "kind": CheckKind.HTTP,
                      "url": settings.HEALTH_WEBHOOK_SERVICE_URL, "is_webhook_service": True,
                      "expected_status": 200, "interval_seconds": 30,
                      "description": "The service that receives the advisors' clicks and messages answers /health."})
    return specs


INBOUND_KEY = "inbound:{slug}"


def inbound_source_specs() -> list[dict[str, Any]]:
    """A check of each enabled inbound source's /health URL (Pipeline → Inbound sources)."""
    from advisors.inbound.models import InboundSource

    return [
        {"system_key": INBOUND_KEY.format(slug=source.slug), "name": f"Inbound service: {source.name}",
         "kind": CheckKind.HTTP, "url": source.health_url, "is_webhook_service": True, "expected_status": 200,
         "interval_seconds": 30,
         "description": f"The service sending events to /api/v1/webhooks/{source.slug}/ answers its /health."}
        for source in InboundSource.objects.filter(enabled=True).exclude(health_url="").order_by("slug")
    ]


def inbound_source_health(source) -> dict[str, Any] | None:
    """How the source's /health check is doing, for the integration page (None: no check)."""
    check = HealthCheck.objects.filter(system_key=INBOUND_KEY.format(slug=source.slug), enabled=True).first()
    if check is None:
        return None
    return {"state": check.state, "uptime_24h": uptimes([check])[check.pk]["24h"],
            "checked_at": check.last_checked_at, "url": check.url}


# Fields of a system check that follow the settings at every start; the rest (interval,
# timeout, enabled, expected status, threshold…) belong to the people running it.
SYSTEM_TARGET_FIELDS = ("kind", "url", "headers", "path", "is_webhook_service")


def ensure_system_checks() -> dict[str, list[str]]:
    """Create the checks of OpsCenter's own components, and keep their targets in line (idempotent)."""
    created: list[str] = []
    updated: list[str] = []
    disabled: list[str] = []
    specs = system_check_specs()
    wanted = {spec["system_key"] for spec in specs}
    with transaction.atomic():
        existing = {c.system_key: c for c in HealthCheck.objects.select_for_update().filter(system_key__isnull=False)}
        for spec in specs:
            check = existing.get(spec["system_key"])
            if check is None:
                name = spec["name"]
                if HealthCheck.objects.filter(name=name).exists():
                    name = f"{name} (OpsCenter)"
                check = HealthCheck(**{**spec, "name": name})
                check.full_clean()
                check.save()
                created.append(check.system_key)
                continue
            changes = [f for f in SYSTEM_TARGET_FIELDS if f in spec and getattr(check, f) != spec[f]]
            if changes:
                for field in changes:
                    setattr(check, field, spec[field])
                check.next_due_at = timezone.now()
                check.save()
                updated.append(check.system_key)
        for key, check in existing.items():
            # The webhook service's URL setting was removed: stop checking it, keep its history.
            if key not in wanted and check.enabled:
                check.enabled = False
                _set_state(check, CheckState.UNKNOWN, at=timezone.now(), detail="its setting was removed")
                check.save()
                disabled.append(key)
        changes = {k: v for k, v in {"created": created, "updated": updated, "disabled": disabled}.items() if v}
        if changes:
            record_audit("health_checks.synced", changes=changes)
    return changes


# --- retention -------------------------------------------------------------------------------------


def prune_history(now: datetime | None = None, *, batch: int = 5000) -> dict[str, int]:
    """Delete results and flips older than their retention, in batches (short locks)."""
    now = now or timezone.now()
    deleted = {"results": 0, "flips": 0}
    for model, key, days in ((HealthResult, "results", settings.HEALTH_RESULT_RETENTION_DAYS),
                             (HealthFlip, "flips", settings.HEALTH_FLIP_RETENTION_DAYS)):
        cutoff = now - timedelta(days=days)
        while True:
            ids = list(model.objects.filter(at__lt=cutoff).order_by("at").values_list("pk", flat=True)[:batch])
            if not ids:
                break
            deleted[key] += model.objects.filter(pk__in=ids).delete()[0]
    return deleted
