"""Business rules for advisors, content review and delivery.

Every transition has one shape: guard, a conditional UPDATE inside a transaction (so of
two reviewers acting on one item exactly one wins), an audit row, then a live event and
any follow-up task after commit.
"""

from __future__ import annotations

import logging
import random
import time
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

from .models import (
    Advisor,
    AdvisorStatus,
    AttemptOutcome,
    ComplianceVerdict,
    Content,
    ContentStatus,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
)
from .transports import OutcomeUnknown, Sent, TransportError, default_channel, get_transport

logger = logging.getLogger(__name__)

S = ContentStatus


class TransitionConflict(DomainError):
    """The item is no longer in a state that allows the action (someone acted first)."""


class InvalidAction(DomainError):
    code = "invalid"
    status = 400


class ComplianceBlocked(DomainError):
    """The item fails compliance: only an Admin, giving a reason, may approve it."""

    code = "compliance_blocked"
    status = 409


class OverrideNotAllowed(DomainError):
    """Someone who is not an Admin tried to override a failed compliance check."""

    code = "permission_denied"
    status = 403


# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "submit": (frozenset({S.DRAFT, S.NEEDS_REVISION}), S.PENDING_REVIEW),
    "approve": (frozenset({S.PENDING_REVIEW}), S.APPROVED),
    "reject": (frozenset({S.PENDING_REVIEW}), S.REJECTED),
    "request_revision": (frozenset({S.PENDING_REVIEW}), S.NEEDS_REVISION),
    "schedule": (frozenset({S.APPROVED}), S.SCHEDULED),
    "mark_delivered": (frozenset({S.APPROVED, S.SCHEDULED}), S.DELIVERED),
    "mark_failed": (frozenset({S.APPROVED, S.SCHEDULED}), S.FAILED),
    # A person sends a failed delivery again: the item is approved and on its way once more.
    "retry_delivery": (frozenset({S.FAILED}), S.APPROVED),
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
    "retry_delivery": "sent again",
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
    override_reason: str = "",
    source: str = AuditSource.SYSTEM,
    request: HttpRequest | None = None,
) -> Content:
    """Apply `action` to `content` if its current state allows it, atomically.

    Raises TransitionConflict when the item moved on (another reviewer, another worker)
    or `expected_version` is stale, InvalidAction for a missing note, ComplianceBlocked
    when approving an item that fails compliance without an Admin's `override_reason`, and
    OverrideNotAllowed when someone who is not an Admin gives one.
    """
    if action not in TRANSITIONS:
        raise InvalidAction(f"Unknown action {action!r}.")
    allowed_from, target = TRANSITIONS[action]
    note = (note or "").strip()
    override_reason = (override_reason or "").strip() if action == "approve" else ""
    if action in NOTE_REQUIRED and not note:
        raise InvalidAction("Write a note: the writer needs to know what to change.")
    if override_reason and not is_admin(by):
        raise OverrideNotAllowed("Only an Admin may override a failed compliance check (override_reason).")
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
        if action == "approve" and not override_reason:
            # In the UPDATE itself, so a verdict that turned "fail" a moment ago still counts.
            rows = rows.exclude(compliance_verdict=ComplianceVerdict.FAIL)
        if rows.update(**changes) == 0:
            current = Content.objects.select_related("reviewer").get(pk=content.pk)
            if (
                action == "approve"
                and not override_reason
                and current.status in allowed_from
                and current.compliance_verdict == ComplianceVerdict.FAIL
            ):
                raise ComplianceBlocked(_blocked_message(current, by))
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
        if override_reason and content.compliance_verdict == ComplianceVerdict.FAIL:
            record_audit(
                "content.compliance_override",
                actor=by,
                target=content,
                changes={"reason": override_reason, "findings": len(content.compliance_findings or [])},
                source=source,
                request=request,
            )
        if action == "approve":
            create_delivery(content)
        publish("content", "content.changed", content_event(content))
    return content


def is_admin(user) -> bool:
    """Return whether `user` may override a failed compliance check: a superuser or in the Admin role."""
    from opscenter.roles import ADMIN

    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_superuser or user.groups.filter(name=ADMIN).exists()


def _blocked_message(content: Content, by) -> str:
    findings = len(content.compliance_findings or [])
    what = f"“{content.title}” fails compliance ({findings} finding{'s' if findings != 1 else ''})"
    if is_admin(by):
        return f"{what}. To approve it anyway, give an override reason; it is kept in the audit trail."
    return f"{what}. Only an Admin can approve it, with a written override reason; reject it or send it back."


def create_delivery(content: Content) -> Delivery | None:
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


def approve_content(
    content: Content,
    *,
    by,
    note: str = "",
    expected_version: int | None = None,
    override_reason: str = "",
    source: str = AuditSource.UI,
    request: HttpRequest | None = None,
) -> Content:
    """Approve a pending item: creates its delivery once and queues sending after commit.

    An item whose compliance verdict is "fail" is refused (ComplianceBlocked) unless `by`
    is an Admin and gives `override_reason`; the override is audited as its own row.
    """
    return transition_content(
        content, "approve", by=by, note=note, expected_version=expected_version, override_reason=override_reason,
        source=source, request=request,
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


# --- delivery ------------------------------------------------------------------------------------

UNKNOWN_OUTCOME = "Outcome unknown — check the channel, then retry by hand"
# A queued delivery whose due time passed this long ago lost its task (a broker restart):
# the reaper queues it again, at most once per this interval.
OVERDUE_AFTER_SECONDS = 600
REAP_BATCH = 500
CLOCK_SKEW_SECONDS = 2


class DeliveryRetry(TransportError):
    """A retryable failure with attempts left, already recorded: send again in `delay` seconds."""

    def __init__(self, error: TransportError, delay: float) -> None:
        super().__init__(str(error), permanent=False, retry_after=error.retry_after, http_status=error.http_status)
        self.delay = delay


def send_lease_seconds() -> int:
    """Return how long a claimed delivery may stay "sending" before its worker is presumed lost."""
    # Connect, write and read each get the whole timeout; DNS and the outbound check come on top.
    return 4 * settings.DELIVERY_TIMEOUT_SECONDS + 60


def retry_delay(attempt: int, retry_after: float | None = None, *, jitter: float | None = None) -> float:
    """Return the seconds to wait after failed `attempt` (1-based within the budget) before the next.

    Doubles from DELIVERY_RETRY_DELAY_SECONDS up to DELIVERY_RETRY_MAX_DELAY_SECONDS; a
    channel's Retry-After is used as given (it knows when it will take us back), within the
    same ceiling. `jitter` (0..1, random when None) adds up to a quarter.
    """
    ceiling = float(settings.DELIVERY_RETRY_MAX_DELAY_SECONDS)
    if retry_after is not None:
        return min(max(float(retry_after), 0.0), ceiling)
    base = settings.DELIVERY_RETRY_DELAY_SECONDS * 2 ** max(attempt - 1, 0)
    # Thousands of deliveries rate-limited in the same second must not all come back in the same second.
    spread = random.random() if jitter is None else jitter  # noqa: S311 (spreading load, not a secret)
    return min(base * (1 + spread / 4), ceiling)


def deliver(delivery_id: int) -> Delivery | None:
    """Send one queued delivery through its transport, at most once at a time; safe to run twice.

    Claims the row (queued → sending, with a lease) and writes the attempt in one short
    transaction, calls the channel with no transaction or lock open (on SQLite a write lock
    held for the HTTP timeout would stop every writer), then records the outcome in a second
    transaction. Returns None when there is nothing to claim. Raises DeliveryRetry (a
    retryable TransportError) when the try failed and the budget allows another.
    """
    claimed = _claim_delivery(delivery_id)
    if claimed is None:
        # A task redelivered after its worker died finds the row still "sending".
        _fail_unknown(delivery_id, lease_expired_by=timezone.now())
        return None
    delivery, attempt = claimed
    started = time.monotonic()
    try:
        sent = get_transport(delivery.channel).send(delivery)
    except OutcomeUnknown as exc:
        _fail_unknown(delivery.pk, attempt=attempt, reason=str(exc), duration_ms=_elapsed_ms(started))
    except TransportError as exc:
        _record_failure(delivery, attempt, exc, _elapsed_ms(started))
    except Exception as exc:
        # A bug, or the database, failed after the channel may have taken the message: the
        # outcome is unknown, so a person checks rather than a retry sending it twice.
        _fail_unknown(delivery.pk, attempt=attempt, reason=f"{type(exc).__name__}: {exc}", duration_ms=_elapsed_ms(started))
        raise
    else:
        _record_success(delivery, attempt, sent, _elapsed_ms(started))
    delivery.refresh_from_db()
    return delivery


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _claim_delivery(delivery_id: int) -> tuple[Delivery, DeliveryAttempt] | None:
    now = timezone.now()
    with transaction.atomic():
        claimed = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.QUEUED).update(
            status=DeliveryStatus.SENDING,
            attempts=F("attempts") + 1,
            lease_expires_at=now + timedelta(seconds=send_lease_seconds()),
            next_attempt_at=None,
            updated_at=now,
        )
        if not claimed:
            return None
        delivery = Delivery.objects.select_related("content__advisor").get(pk=delivery_id)
        attempt = DeliveryAttempt.objects.create(delivery=delivery, number=delivery.attempts, started_at=now)
    return delivery, attempt


def _settle(delivery: Delivery, attempt: DeliveryAttempt, **changes: Any) -> bool:
    """Write the outcome if the row is still this attempt's: not given up meanwhile."""
    return bool(
        Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=attempt.number).update(
            lease_expires_at=None, updated_at=timezone.now(), **changes
        )
    )


def _close_attempt(attempt: DeliveryAttempt, outcome: str, duration_ms: int | None, **fields: Any) -> None:
    attempt.outcome = outcome
    attempt.finished_at = timezone.now()
    attempt.duration_ms = duration_ms
    for name, value in fields.items():
        setattr(attempt, name, value)
    attempt.save()


def _note_late_answer(delivery: Delivery, attempt: DeliveryAttempt, answer: str) -> None:
    """Keep what the channel said after the delivery was given up as outcome unknown.

    Whoever decides on a retry by hand must see it: "sent" means retrying sends it twice.
    """
    logger.warning("delivery %s: attempt %s answered after it was given up: %s", delivery.pk, attempt.number, answer)
    current = Delivery.objects.select_for_update().get(pk=delivery.pk)
    note = f"Attempt {attempt.number} answered after it was given up: {answer}."
    current.last_error = f"{current.last_error}\n{note}".strip()[:4000]
    current.save(update_fields=["last_error", "updated_at"])


def _move_content(content: Content, action: str) -> None:
    """Move the item along with its delivery; if it moved on meanwhile, the delivery's record stands."""
    try:
        with transaction.atomic():
            transition_content(content, action)
    except TransitionConflict as exc:
        logger.warning("content %s not %s after its delivery: %s", content.pk, _ACTION_PAST[action], exc)


def _record_success(delivery: Delivery, attempt: DeliveryAttempt, sent: Sent, duration_ms: int) -> None:
    now = timezone.now()
    status = DeliveryStatus.DELIVERED if sent.delivered else DeliveryStatus.SENT
    with transaction.atomic():
        _close_attempt(
            attempt, AttemptOutcome.SENT, duration_ms, http_status=sent.http_status,
            provider_message_id=sent.provider_message_id[:200],
        )
        settled = _settle(
            delivery, attempt, status=status, provider_message_id=sent.provider_message_id[:200], sent_at=now,
            delivered_at=now if sent.delivered else None, last_error="",
        )
        if not settled:
            _note_late_answer(delivery, attempt, f"sent, provider message id {sent.provider_message_id}")
            return
        delivery.refresh_from_db()
        record_audit("delivery.sent", target=delivery, changes={"status": status, "attempt": attempt.number})
        if sent.delivered:
            _move_content(delivery.content, "mark_delivered")


def _record_failure(delivery: Delivery, attempt: DeliveryAttempt, exc: TransportError, duration_ms: int) -> None:
    """Record a failed try; fail the delivery, or queue it again and raise DeliveryRetry after commit."""
    now = timezone.now()
    error = str(exc)[:2000]
    in_budget = delivery.attempts - delivery.attempts_at_retry
    give_up = exc.permanent or in_budget >= settings.DELIVERY_MAX_ATTEMPTS
    delay = None if give_up else retry_delay(in_budget, exc.retry_after)
    with transaction.atomic():
        _close_attempt(
            attempt,
            AttemptOutcome.PERMANENT_ERROR if exc.permanent else AttemptOutcome.RETRYABLE_ERROR,
            duration_ms,
            http_status=exc.http_status,
            error=error,
        )
        if give_up:
            last_error = error if exc.permanent else f"Gave up after {in_budget} attempts. Last error: {error}"
            if not _settle(delivery, attempt, status=DeliveryStatus.FAILED, last_error=last_error[:2000]):
                _note_late_answer(delivery, attempt, f"failed: {error}")
                return
            delivery.refresh_from_db()
            record_audit(
                "delivery.failed", target=delivery,
                changes={"attempt": attempt.number, "permanent": exc.permanent, "error": last_error[:500]},
            )
            _move_content(delivery.content, "mark_failed")
            return
        if not _settle(
            delivery, attempt, status=DeliveryStatus.QUEUED, last_error=error,
            next_attempt_at=now + timedelta(seconds=delay),
        ):
            _note_late_answer(delivery, attempt, f"failed: {error}")
            return
    # Raised after the commit, so the attempt and its error are kept.
    raise DeliveryRetry(exc, delay) from exc


_RECEIPT_RANK = {DeliveryStatus.SENT: 1, DeliveryStatus.DELIVERED: 2, DeliveryStatus.READ: 3}


def apply_delivery_receipt(delivery: Delivery, *, status: str, at, error: str = "") -> str:
    """Advance a delivery by a receipt from the channel: sent → delivered → read, or failed.

    Receipts arrive late, twice or out of order: a delivery never moves backwards (a
    "delivered" after "read" changes nothing; "read" first implies delivered), and "failed"
    counts only before the advisor got the message. Returns what happened: advanced,
    unchanged, or not_sent_yet (our own record of the send is not in yet: try later).
    """
    with transaction.atomic():
        current = Delivery.objects.select_for_update().select_related("content").get(pk=delivery.pk)
        if current.status in (DeliveryStatus.QUEUED, DeliveryStatus.SENDING):
            return "not_sent_yet"
        if status == DeliveryStatus.FAILED:
            if current.status != DeliveryStatus.SENT:
                return "unchanged"
            Delivery.objects.filter(pk=current.pk).update(
                status=DeliveryStatus.FAILED, last_error=(error or "the channel reported the message failed")[:2000]
            )
            record_audit("delivery.failed", target=current, changes={"by": "receipt", "error": error[:500]})
            _move_content(current.content, "mark_failed")
            return "advanced"
        if current.status == DeliveryStatus.FAILED or _RECEIPT_RANK[status] <= _RECEIPT_RANK[current.status]:
            return "unchanged"
        changes: dict[str, Any] = {"status": status}
        if status in (DeliveryStatus.DELIVERED, DeliveryStatus.READ) and current.delivered_at is None:
            changes["delivered_at"] = at
        if status == DeliveryStatus.READ:
            changes["read_at"] = at
        Delivery.objects.filter(pk=current.pk).update(**changes)
        record_audit(f"delivery.{status}", target=current, changes={"by": "receipt", "from": current.status})
        if "delivered_at" in changes:
            _move_content(current.content, "mark_delivered")
        return "advanced"


def _fail_unknown(
    delivery_id: int,
    *,
    attempt: DeliveryAttempt | None = None,
    reason: str = "",
    duration_ms: int | None = None,
    lease_expired_by=None,
) -> bool:
    """Fail a "sending" delivery whose outcome nobody knows; never send it again by itself.

    With `lease_expired_by` (a time), only a row whose lease ended before it; with
    `attempt`, only while the row is still that attempt's. Returns whether it failed one.
    """
    now = timezone.now()
    with transaction.atomic():
        rows = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING)
        if lease_expired_by is not None:
            rows = rows.filter(lease_expires_at__lt=lease_expired_by)
        if attempt is not None:
            rows = rows.filter(attempts=attempt.number)
        current = rows.select_related("content").first()
        if current is None:
            return False
        attempt = attempt or DeliveryAttempt.objects.filter(delivery=current, number=current.attempts).first()
        if not reason:
            started = attempt.started_at.isoformat(timespec="seconds") if attempt else "?"
            reason = f"attempt {current.attempts} (started {started}) never reported back; its worker was probably lost"
        message = f"{UNKNOWN_OUTCOME}: {reason}"[:2000]
        if not rows.update(status=DeliveryStatus.FAILED, last_error=message, lease_expires_at=None, updated_at=now):
            return False
        if attempt is not None:
            DeliveryAttempt.objects.filter(pk=attempt.pk).update(
                outcome=AttemptOutcome.UNKNOWN, finished_at=now, error=reason[:2000], duration_ms=duration_ms
            )
        current.refresh_from_db()
        record_audit(
            "delivery.outcome_unknown", target=current, changes={"attempt": current.attempts, "reason": reason[:500]}
        )
        _move_content(current.content, "mark_failed")
    return True


def delivery_wait(delivery_id: int) -> float | None:
    """Return the seconds to wait before sending this delivery is worth trying, or None for no wait.

    A queued delivery waits for its back-off (next_attempt_at); one being sent waits for
    the end of its lease, after which a send that never reported back is failed as unknown.
    """
    row = Delivery.objects.filter(pk=delivery_id).values("status", "next_attempt_at", "lease_expires_at").first()
    if row is None:
        return None
    now = timezone.now()
    if row["status"] == DeliveryStatus.SENDING:
        expires = row["lease_expires_at"]
        return 1.0 + max(0.0, (expires - now).total_seconds()) if expires else None
    if row["status"] == DeliveryStatus.QUEUED and row["next_attempt_at"]:
        wait = (row["next_attempt_at"] - now).total_seconds()
        # Workers' clocks differ a little: a retry that fires a moment early is due.
        return wait if wait > CLOCK_SKEW_SECONDS else None
    return None


def reap_deliveries(now=None) -> dict[str, list[int]]:
    """Fail deliveries stuck "sending" past their lease (outcome unknown); queue again ones whose task was lost."""
    from .tasks import deliver_content

    now = now or timezone.now()
    reaped: dict[str, list[int]] = {"unknown": [], "requeued": []}
    stuck = Delivery.objects.filter(status=DeliveryStatus.SENDING, lease_expires_at__lt=now)
    for delivery_id in list(stuck.values_list("pk", flat=True)[:REAP_BATCH]):
        if _fail_unknown(delivery_id, lease_expired_by=now):
            reaped["unknown"].append(delivery_id)
    overdue_before = now - timedelta(seconds=OVERDUE_AFTER_SECONDS)
    overdue = Delivery.objects.filter(status=DeliveryStatus.QUEUED, next_attempt_at__lt=overdue_before)
    for delivery_id in list(overdue.values_list("pk", flat=True)[:REAP_BATCH]):
        with transaction.atomic():
            # Pushed forward, so one lost task means one more task, not one per reaper tick.
            if Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.QUEUED, next_attempt_at__lt=overdue_before).update(
                next_attempt_at=now + timedelta(seconds=OVERDUE_AFTER_SECONDS)
            ):
                deliver_content.delay_on_commit(delivery_id)
                reaped["requeued"].append(delivery_id)
    return reaped


def retry_delivery(
    delivery: Delivery, *, by, source: str = AuditSource.UI, request: HttpRequest | None = None
) -> Delivery:
    """Queue a failed delivery again, with a fresh attempt budget; audited.

    The person takes responsibility: after an unknown outcome the message may have reached
    the advisor already. A failed content item goes back to approved.
    """
    from .tasks import deliver_content

    now = timezone.now()
    with transaction.atomic():
        previous = Delivery.objects.filter(pk=delivery.pk).values("status", "last_error", "attempts").first()
        queued = Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.QUEUED,
            attempts_at_retry=F("attempts"),
            next_attempt_at=now,
            lease_expires_at=None,
            last_error="",
            updated_at=now,
        )
        if not queued:
            label = DeliveryStatus(previous["status"]).label.lower() if previous else "gone"
            raise TransitionConflict(f"This delivery is {label}; only a failed delivery can be sent again.")
        delivery.refresh_from_db()
        record_audit(
            "delivery.retried",
            actor=by,
            target=delivery,
            changes={
                "status": [DeliveryStatus.FAILED, DeliveryStatus.QUEUED],
                "attempts_so_far": previous["attempts"],
                "last_error": previous["last_error"][:500],
            },
            source=source,
            request=request,
        )
        content = Content.objects.get(pk=delivery.content_id)
        if content.status == S.FAILED:
            transition_content(content, "retry_delivery", by=by, source=source, request=request)
        deliver_content.delay_on_commit(delivery.pk)
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
