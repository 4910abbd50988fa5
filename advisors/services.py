"""Business rules for advisors, content review and delivery.

Every transition has one shape: guard, a conditional UPDATE inside a transaction (so of
two reviewers acting on one item exactly one wins), an audit row, then a live event and
any follow-up task after commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Min
from django.http import HttpRequest
from django.utils import timezone

from opscenter.audit import record_audit
from opscenter.live import publish
from opscenter.models import AuditSource
from opscenter.services import DomainError

from .models import Advisor, AdvisorStatus, Content, ContentStatus, Delivery, DeliveryStatus
from .transports import TransportError, default_channel, get_transport

S = ContentStatus


class TransitionConflict(DomainError):
    """The item is no longer in a state that allows the action (someone acted first)."""


class InvalidAction(DomainError):
    code = "invalid"
    status = 400


# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "submit": (frozenset({S.DRAFT, S.NEEDS_REVISION}), S.PENDING_REVIEW),
    "approve": (frozenset({S.PENDING_REVIEW}), S.APPROVED),
    "reject": (frozenset({S.PENDING_REVIEW}), S.REJECTED),
    "request_revision": (frozenset({S.PENDING_REVIEW}), S.NEEDS_REVISION),
    "schedule": (frozenset({S.APPROVED}), S.SCHEDULED),
    "mark_delivered": (frozenset({S.APPROVED, S.SCHEDULED}), S.DELIVERED),
    "mark_failed": (frozenset({S.APPROVED, S.SCHEDULED}), S.FAILED),
}
REVIEW_ACTIONS = {"approve", "reject", "request_revision"}
NOTE_REQUIRED = {"reject", "request_revision"}


def content_event(content: Content) -> dict[str, Any]:
    """The payload the `content` topic carries for one item."""
    return {
        "id": content.pk,
        "status": content.status,
        "version": content.version,
        "advisor_id": content.advisor_id,
        "cycle_date": content.cycle_date.isoformat(),
        "kind": content.kind,
        "compliance_verdict": content.compliance_verdict,
        "reviewer": content.reviewer.get_username() if content.reviewer_id else None,
        "claimed_by": content.claimed_by.get_username() if content.claimed_by_id else None,
        "claim_expires_at": content.claim_expires_at.isoformat() if content.claim_expires_at else None,
    }


# How each action reads in "it can no longer be …".
_ACTION_PAST = {
    "submit": "submitted for review",
    "approve": "approved",
    "reject": "rejected",
    "request_revision": "sent back for revision",
    "schedule": "scheduled",
    "mark_delivered": "marked delivered",
    "mark_failed": "marked failed",
    "claim": "claimed for review",
}


def _conflict_message(content: Content, action: str) -> str:
    who = f" by {content.reviewer.get_username()}" if content.reviewer_id else ""
    label = ContentStatus(content.status).label.lower()
    return f"“{content.title}” is already {label}{who}; it can no longer be {_ACTION_PAST.get(action, action)}."


def transition_content(
    content: Content,
    action: str,
    *,
    by=None,
    note: str = "",
    expected_version: int | None = None,
    source: str = AuditSource.SYSTEM,
    request: HttpRequest | None = None,
) -> Content:
    """Apply `action` to `content` if its current state allows it, atomically.

    Raises TransitionConflict when the item moved on (another reviewer, another worker)
    or `expected_version` is stale, and InvalidAction for a missing note.
    """
    if action not in TRANSITIONS:
        raise InvalidAction(f"Unknown action {action!r}.")
    allowed_from, target = TRANSITIONS[action]
    note = (note or "").strip()
    if action in NOTE_REQUIRED and not note:
        raise InvalidAction("Write a note: the writer needs to know what to change.")
    now = timezone.now()
    changes: dict[str, Any] = {"status": target, "version": F("version") + 1, "updated_at": now}
    if action in REVIEW_ACTIONS:
        changes.update(reviewer=by, reviewed_at=now, review_note=note, claimed_by=None, claim_expires_at=None)
    if action == "submit":
        changes.update(submitted_at=now, reviewer=None, reviewed_at=None)
    with transaction.atomic():
        rows = Content.objects.filter(pk=content.pk, status__in=allowed_from)
        if expected_version is not None:
            rows = rows.filter(version=expected_version)
        if rows.update(**changes) == 0:
            current = Content.objects.select_related("reviewer").get(pk=content.pk)
            if current.status in allowed_from and expected_version is not None:
                raise TransitionConflict(
                    f"“{current.title}” changed since you loaded it (version {current.version}, you had "
                    f"{expected_version}). Reload and try again."
                )
            raise TransitionConflict(_conflict_message(current, action))
        before = content.status
        content.refresh_from_db()
        record_audit(
            f"content.{action}",
            actor=by,
            target=content,
            changes={"status": [before, content.status], **({"note": note} if note else {})},
            source=source,
            request=request,
        )
        if action == "approve":
            _create_delivery(content)
        publish("content", "content.changed", content_event(content))
    return content


def _create_delivery(content: Content) -> Delivery | None:
    """Create the item's delivery row once; the unique constraint, not a lookup, decides."""
    from .tasks import deliver_content

    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                content=content, channel=default_channel(), recipient=content.advisor.phone
            )
    except IntegrityError:
        return None  # it exists already: never deliver twice
    deliver_content.delay_on_commit(delivery.pk)
    return delivery


def submit_for_review(content: Content, *, by=None, source: str = AuditSource.SYSTEM, request=None) -> Content:
    """Put a draft (or a revised item) in the review queue."""
    return transition_content(content, "submit", by=by, source=source, request=request)


def approve_content(content: Content, *, by, note: str = "", expected_version=None, source=AuditSource.UI, request=None):
    """Approve a pending item: creates its delivery once and queues sending after commit."""
    return transition_content(
        content, "approve", by=by, note=note, expected_version=expected_version, source=source, request=request
    )


def reject_content(content: Content, *, by, note: str, expected_version=None, source=AuditSource.UI, request=None):
    """Reject a pending item; the note says why."""
    return transition_content(
        content, "reject", by=by, note=note, expected_version=expected_version, source=source, request=request
    )


def request_revision(content: Content, *, by, note: str, expected_version=None, source=AuditSource.UI, request=None):
    """Send a pending item back for rewriting; the note is the instruction."""
    return transition_content(
        content, "request_revision", by=by, note=note, expected_version=expected_version, source=source,
        request=request,
    )


@dataclass
class BulkResult:
    id: int
    ok: bool
    status: str | None = None
    error: str | None = None
    code: str | None = None


def bulk_review(
    ids: Iterable[int], action: str, *, by, note: str = "", source: str = AuditSource.UI, request=None
) -> list[BulkResult]:
    """Apply one review action to many items; each succeeds or fails on its own."""
    if action not in REVIEW_ACTIONS:
        raise InvalidAction(f"Bulk action must be one of {', '.join(sorted(REVIEW_ACTIONS))}.")
    if action in NOTE_REQUIRED and not (note or "").strip():
        raise InvalidAction("Write a note: the writer needs to know what to change.")
    wanted = list(dict.fromkeys(int(i) for i in ids))
    found = Content.objects.in_bulk(wanted)
    results = []
    for content_id in wanted:
        content = found.get(content_id)
        if content is None:
            results.append(BulkResult(content_id, False, error="No such content.", code="not_found"))
            continue
        try:
            done = transition_content(content, action, by=by, note=note, source=source, request=request)
        except DomainError as exc:
            results.append(BulkResult(content_id, False, error=str(exc), code=exc.code))
        else:
            results.append(BulkResult(content_id, True, status=done.status))
    return results


def claim_content(content: Content, *, by) -> Content:
    """Mark a pending item as being reviewed by `by` for a short while.

    A claim is advice, not a lock: it shows other reviewers "being reviewed by …" and
    expires by itself; renewing your own claim extends it. Raises TransitionConflict if
    someone else holds a live claim.
    """
    now = timezone.now()
    expires = now + timedelta(seconds=settings.REVIEW_CLAIM_SECONDS)
    with transaction.atomic():
        from django.db.models import Q

        claimable = Q(claimed_by__isnull=True) | Q(claim_expires_at__lt=now) | Q(claimed_by=by)
        updated = (
            Content.objects.filter(pk=content.pk, status=S.PENDING_REVIEW)
            .filter(claimable)
            .update(claimed_by=by, claim_expires_at=expires)
        )
        content.refresh_from_db()
        if not updated:
            if content.status != S.PENDING_REVIEW:
                raise TransitionConflict(_conflict_message(content, "claim"))
            raise TransitionConflict(f"Being reviewed by {content.claimed_by.get_username()}.")
        publish("content", "content.claimed", content_event(content))
    return content


def release_claim(content: Content, *, by) -> None:
    """Drop `by`'s claim on the item, if they hold it."""
    with transaction.atomic():
        if Content.objects.filter(pk=content.pk, claimed_by=by).update(claimed_by=None, claim_expires_at=None):
            content.refresh_from_db()
            publish("content", "content.claimed", content_event(content))


def queue_counters() -> dict[str, Any]:
    """Pending items and when the oldest was submitted (served by the queue index).

    The count is exact up to ten thousand and the planner's estimate above that on
    PostgreSQL: it runs on every live-feed connect, and nobody needs 68,912 over 68,900.
    """
    from opscenter.paginators import estimated_count

    pending = Content.objects.filter(status=S.PENDING_REVIEW)
    oldest = pending.aggregate(oldest=Min("submitted_at"))["oldest"]
    return {"pending": estimated_count(pending), "oldest_submitted_at": oldest.isoformat() if oldest else None}


def deliver(delivery_id: int) -> Delivery | None:
    """Send one queued delivery through its transport; safe to run twice.

    The row is locked for the send, so a second worker skips it; a delivery that is
    no longer queued is left alone.
    """
    retry_error: TransportError | None = None
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True)
            .select_related("content__advisor")
            .filter(pk=delivery_id, status=DeliveryStatus.QUEUED)
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts = F("attempts") + 1
        try:
            sent = get_transport(delivery.channel).send(delivery)
        except TransportError as exc:
            delivery.last_error = str(exc)[:2000]
            if exc.permanent:
                delivery.status = DeliveryStatus.FAILED
            delivery.save(update_fields=["attempts", "last_error", "status", "updated_at"])
            if exc.permanent:
                transition_content(delivery.content, "mark_failed")
            else:
                # Raised after the commit, so the attempt and its error are kept.
                retry_error = exc
        else:
            now = timezone.now()
            delivery.status = DeliveryStatus.DELIVERED if sent.delivered else DeliveryStatus.SENT
            delivery.provider_message_id = sent.provider_message_id
            delivery.sent_at = now
            delivery.delivered_at = now if sent.delivered else None
            delivery.last_error = ""
            delivery.save()
            record_audit("delivery.sent", target=delivery, changes={"status": delivery.status})
            if sent.delivered:
                transition_content(delivery.content, "mark_delivered")
    if retry_error is not None:
        raise retry_error
    delivery.refresh_from_db()
    return delivery


# --- advisors ----------------------------------------------------------------------------------


def set_advisor_status(
    advisor: Advisor, status: str, *, by, source: str = AuditSource.UI, request=None
) -> Advisor:
    """Activate, pause or disable an advisor; history is kept whatever the status."""
    if status not in AdvisorStatus.values:
        raise InvalidAction(f"Status must be one of {', '.join(AdvisorStatus.values)}.")
    with transaction.atomic():
        before = Advisor.objects.select_for_update().get(pk=advisor.pk).status
        if before == status:
            return advisor
        Advisor.objects.filter(pk=advisor.pk).update(status=status, updated_at=timezone.now())
        advisor.refresh_from_db()
        record_audit(
            "advisor.status_changed", actor=by, target=advisor, changes={"status": [before, status]},
            source=source, request=request,
        )
    return advisor


# --- the review queue ----------------------------------------------------------------------


@dataclass
class QueueFilters:
    cycle_date: Any = None  # datetime.date
    advisor_id: int | None = None
    verdict: str | None = None
    kind: str | None = None


@dataclass
class QueuePage:
    items: list[Content]
    next_cursor: str | None


def encode_cursor(content: Content) -> str:
    return f"{content.submitted_at.isoformat()}_{content.pk}"


def decode_cursor(cursor: str) -> tuple[Any, int]:
    """Parse a queue cursor; raises InvalidAction for anything malformed."""
    from datetime import datetime

    try:
        stamp, _, pk = cursor.rpartition("_")
        return datetime.fromisoformat(stamp), int(pk)
    except (ValueError, TypeError):
        raise InvalidAction("That page link is broken; start from the first page.") from None


def review_queue(filters: QueueFilters, *, after: str | None = None, limit: int = 20) -> QueuePage:
    """Pending items, oldest first, one keyset page at a time (no OFFSET, no COUNT)."""
    from django.db.models import Q

    rows = Content.objects.filter(status=S.PENDING_REVIEW).select_related("advisor", "claimed_by")
    if filters.cycle_date:
        rows = rows.filter(cycle_date=filters.cycle_date)
    if filters.advisor_id:
        rows = rows.filter(advisor_id=filters.advisor_id)
    if filters.verdict:
        rows = rows.filter(compliance_verdict=filters.verdict)
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if after:
        stamp, pk = decode_cursor(after)
        # The plain range lets the index seek to the cursor; the OR alone would make
        # PostgreSQL scan from the oldest item and discard everything before it.
        rows = rows.filter(submitted_at__gte=stamp).filter(Q(submitted_at__gt=stamp) | Q(submitted_at=stamp, id__gt=pk))
    items = list(rows.order_by("submitted_at", "id")[: limit + 1])
    has_more = len(items) > limit
    items = items[:limit]
    return QueuePage(items=items, next_cursor=encode_cursor(items[-1]) if has_more and items else None)
