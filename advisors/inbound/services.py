"""Inbound events: accept every genuine one exactly once, refuse forged ones, lose nothing.

`ingest()` runs in the web request: it checks the signature, stores each event as it came
(valid ones `received`, signed-but-invalid ones `rejected` with the reason) in one INSERT
that skips event ids already stored, and after the commit asks a worker to process.
`process_pending()` runs in Celery: it claims received events in batches and turns each
one into its typed row in its own transaction; a failure is recorded on the event and
retried with back-off, then left `failed` for a person to retry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from advisors.models import Advisor, Content, Delivery
from advisors.services import apply_delivery_receipt
from opscenter.audit import record_audit
from opscenter.models import AuditSource
from opscenter.redis import redis_client
from opscenter.services import DomainError
from opscenter.signing import SignatureInvalid, verify

from .models import (
    ButtonAction,
    ButtonClick,
    ChatMessage,
    Conversation,
    Direction,
    EventStatus,
    EventType,
    InboundEvent,
    InboundSource,
)

logger = logging.getLogger(__name__)

KICK_KEY = "opscenter:inbound:kick"
# Events per source and outcome since Redis started (fields "<slug>|<outcome>"): what
# /metrics exposes as a counter; refused (forged or stale) requests are never stored, so
# this is the only place they are counted.
COUNTS_KEY = "opscenter:inbound:counts"
OUTCOMES = ("accepted", "duplicate", "rejected", "refused")


class IngestRefused(DomainError):
    """The whole request is refused; nothing was stored."""

    code = "refused"
    status = 400


class SourceUnknown(IngestRefused):
    code = "not_found"
    status = 404


class SignatureRefused(IngestRefused):
    code = "signature_invalid"
    status = 401


class BodyTooLarge(IngestRefused):
    code = "too_large"
    status = 413


class NotRetryable(DomainError):
    code = "conflict"
    status = 409


@dataclass
class IngestResult:
    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": len(self.accepted),
            "duplicates": len(self.duplicates),
            "rejected": self.rejected,
        }


# --- ingest ----------------------------------------------------------------------------------------


def ingest(slug: str, body: bytes, *, timestamp: str | None, signature: str | None) -> IngestResult:
    """Verify and store one event or a batch ({"events": [...]}) from the source `slug`."""
    source = _source(slug)
    if len(body) > settings.INBOUND_MAX_BODY_BYTES:
        raise BodyTooLarge(f"The body is {len(body)} bytes; the limit is {settings.INBOUND_MAX_BODY_BYTES}.")
    try:
        _verify(source, body, timestamp, signature)
    except SignatureInvalid:
        # The kept copy may predate a rotation made in another process: ask the database once more.
        source = _source(slug, fresh=True)
        try:
            _verify(source, body, timestamp, signature)
        except SignatureInvalid as exc:
            _count_refused(slug)
            raise SignatureRefused(f"Signature refused: {exc}.") from None
    document = _parse_json(body)
    events = _events_of(document)
    now = timezone.now()
    token = uuid.uuid4().hex
    result = IngestResult()
    rows = [_row_for(source, raw, now=now, token=token) for raw in events]
    # Event ids already stored are skipped by the unique constraint, so a replay (or two
    # senders racing with the same id) stores nothing new; RETURNING names the new ones.
    # One statement needs no transaction of its own; a COPY batch does (its stage table).
    with transaction.atomic() if len(rows) >= COPY_FROM else nullcontext():
        stored = _insert_new(rows)
    has_heartbeat = any(r.type == EventType.HEARTBEAT and r.status == EventStatus.RECEIVED for r in rows)
    _note_arrival(source, now, heartbeat=has_heartbeat)
    new_work = any(r.status == EventStatus.RECEIVED and r.event_id in stored for r in rows)
    # Each id counts once: its first occurrence in the batch, if this request stored it.
    seen: set[str] = set()
    result.rejected = []
    for row in rows:
        if row.event_id in seen or row.event_id not in stored:
            result.duplicates.append(row.event_id)
        elif row.status == EventStatus.REJECTED:
            result.rejected.append({"id": row.event_id, "reason": row.reason})
        else:
            result.accepted.append(row.event_id)
        seen.add(row.event_id)
    _after_ingest(slug, result, new_work=new_work)
    return result


# Sources by slug, kept a moment per process: the lookup was a quarter of a one-event
# request. A change saved in this process drops its copy at once (see the receiver in
# apps.py); another process's change (disabling a source) is seen within SOURCE_TTL_SECONDS,
# and a rotated secret at once (a failed signature looks again before refusing).
SOURCE_TTL_SECONDS = 2.0
_sources: dict[str, tuple[float, InboundSource]] = {}
_arrivals: dict[int, float] = {}  # source id -> when this process last wrote its last_event_at


def _source(slug: str, *, fresh: bool = False) -> InboundSource:
    now = time.monotonic()
    kept = None if fresh else _sources.get(slug)
    if kept is not None and kept[0] > now:
        return kept[1]
    source = InboundSource.objects.filter(slug=slug, enabled=True).first()
    if source is None:
        _sources.pop(slug, None)
        raise SourceUnknown(f"No enabled inbound source “{slug}”.")
    _sources[slug] = (now + SOURCE_TTL_SECONDS, source)
    return source


def forget_source(slug: str, pk: int | None = None) -> None:
    """Drop this process's copy of a source (it was saved or deleted)."""
    _sources.pop(slug, None)
    _arrivals.pop(pk, None)


def _verify(source: InboundSource, body: bytes, timestamp: str | None, signature: str | None) -> None:
    verify(source.active_secrets(), timestamp, signature, body,
           tolerance_seconds=settings.INBOUND_SIGNATURE_TOLERANCE_SECONDS)


def _note_arrival(source: InboundSource, now: datetime, *, heartbeat: bool) -> None:
    """Record when the source was last heard from: at most once a second per process (or on a heartbeat).

    Under load, a write per request would queue every request on this one row's lock.
    """
    if not heartbeat and time.monotonic() - _arrivals.get(source.pk, -10.0) < 1.0:
        return
    _arrivals[source.pk] = time.monotonic()
    InboundSource.objects.filter(pk=source.pk).update(
        last_event_at=now, **({"last_heartbeat_at": now} if heartbeat else {})
    )


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _parse_json(body: bytes) -> Any:
    """Parse strict JSON: no NaN / Infinity, no NUL characters (PostgreSQL's jsonb stores neither)."""
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise IngestRefused(f"The body is not JSON: {exc}.") from None
    if b"\\u0000" in body and _holds_nul(document):
        raise IngestRefused("The body holds a NUL character (\\u0000), which cannot be stored.")
    return document


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


_INSERT_COLUMNS = ("source_id", "event_id", "type", "occurred_at", "payload", "signature_ok", "status", "reason",
                   "received_at", "attempts", "ingest_token", "claim_token")


_STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS inbound_stage (source_id bigint, event_id varchar(200), type varchar(32), "
    "occurred_at timestamptz, payload jsonb, signature_ok boolean, status varchar(12), reason text, "
    "received_at timestamptz, attempts smallint, ingest_token varchar(32), claim_token varchar(32)) "
    "ON COMMIT DELETE ROWS"
)
COPY_FROM = 20  # events in a request from which PostgreSQL gets them by COPY


def _insert_new(rows: list[_Row]) -> set[str]:
    """INSERT the rows, skipping event ids already stored; return the ids this call stored.

    Plain SQL rather than bulk_create: RETURNING names the new rows (no second query), and
    no model is built field by field per event. On PostgreSQL a batch goes by COPY into a
    temporary table and one INSERT … SELECT from it: binding thousands of parameters, or
    the ORM's arrays, cost several times the insert itself.
    """
    from django.db import connection

    table = connection.ops.quote_name(InboundEvent._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _INSERT_COLUMNS)
    conflict = "ON CONFLICT (source_id, event_id) DO NOTHING RETURNING event_id"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) >= COPY_FROM:
            cursor.execute(_STAGE_DDL)
            with cursor.cursor.copy(f"COPY inbound_stage ({columns}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row((r.source_id, r.event_id, r.type, r.occurred_at, json.dumps(r.payload), True,
                                    r.status, r.reason, r.received_at, 0, r.ingest_token, ""))
            # Names come from the model's meta; nothing here comes from the request.
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM inbound_stage {conflict}")  # noqa: S608
            return {row[0] for row in cursor.fetchall()}
        adapt = connection.ops.adapt_datetimefield_value
        stored: set[str] = set()
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            values = ", ".join(["(" + ", ".join(["%s"] * len(_INSERT_COLUMNS)) + ")"] * len(chunk))
            params: list[Any] = []
            for r in chunk:
                params += [r.source_id, r.event_id, r.type, adapt(r.occurred_at), json.dumps(r.payload), True,
                           r.status, r.reason, adapt(r.received_at), 0, r.ingest_token, ""]
            # Names come from the model's meta and values are bound as parameters.
            sql = f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608
            cursor.execute(sql + conflict, params)
            stored.update(row[0] for row in cursor.fetchall())
    return stored


def _after_ingest(slug: str, result: IngestResult, *, new_work: bool) -> None:
    """Count the outcome, ask a worker to process, tell open pages: one Redis round trip, after commit."""
    try:
        client = redis_client()
        pipe = client.pipeline(transaction=False)
        for outcome, n in (("accepted", len(result.accepted)), ("duplicate", len(result.duplicates)),
                           ("rejected", len(result.rejected))):
            if n:
                pipe.hincrby(COUNTS_KEY, f"{slug}|{outcome}", n)
        if new_work:
            pipe.set(KICK_KEY, "1", nx=True, ex=60)
        pipe.set(LIVE_THROTTLE_KEY.format(slug=slug), "1", nx=True, px=1000)
        answers = pipe.execute()
    except Exception:  # the events are stored: the periodic sweep processes them, pages catch up
        logger.warning("could not count or announce inbound events", exc_info=True)
        return
    live_won = answers[-1]
    kick_won = new_work and answers[-2]
    if new_work and kick_won:
        from .tasks import process_inbound_events

        try:
            process_inbound_events.delay()
        except Exception:
            logger.warning("could not ask a worker to process inbound events", exc_info=True)
    if live_won and (result.accepted or result.rejected):
        from opscenter.live import publish

        publish("inbound", "inbound.received", {"source": slug})


def _events_of(document: Any) -> list[Any]:
    if isinstance(document, dict) and "events" in document:
        events = document["events"]
        if not isinstance(events, list) or not events:
            raise IngestRefused("“events” must be a non-empty list of events.")
    elif isinstance(document, dict):
        events = [document]
    else:
        raise IngestRefused("The body must be an event object or {\"events\": [...]}.")
    if len(events) > settings.INBOUND_MAX_BATCH:
        raise IngestRefused(f"A batch holds at most {settings.INBOUND_MAX_BATCH} events; this one has {len(events)}.")
    return events


@dataclass(slots=True)
class _Row:
    """One event as it will be stored (a model instance per event cost more than the INSERT)."""

    source_id: int
    event_id: str
    type: str
    occurred_at: datetime | None
    payload: Any
    status: str
    reason: str
    received_at: datetime
    ingest_token: str


def _row_for(source: InboundSource, raw: Any, *, now: datetime, token: str) -> _Row:
    """Return the ledger row for one event: received if it is valid, else rejected with the reason."""
    event_id = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 200:
        # Without a usable id the event still gets one, derived from its content, so the
        # same broken event sent twice is stored once.
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:40]
        event_id = f"invalid-{digest}"
        reason = "“id” must be a string of 1 to 200 characters."
        return _rejected(source, event_id, raw, reason, now=now, token=token)
    try:
        event_type, occurred_at = _validate(source, raw)
    except ValueError as exc:
        return _rejected(source, event_id, raw, str(exc), now=now, token=token)
    return _Row(source.pk, event_id, event_type, occurred_at, raw, EventStatus.RECEIVED, "", now, token)


def _rejected(source, event_id, raw, reason, *, now, token) -> _Row:
    event_type = raw.get("type") if isinstance(raw, dict) and isinstance(raw.get("type"), str) else ""
    payload = raw if isinstance(raw, dict) else {"raw": raw}
    return _Row(source.pk, event_id, event_type[:32], None, payload, EventStatus.REJECTED, reason, now, token)


def _validate(source: InboundSource, raw: dict) -> tuple[str, datetime | None]:
    """Check an event's shape; raise ValueError naming the first thing wrong."""
    event_type = raw.get("type")
    if not _one_of(event_type, _EVENT_TYPES):
        raise ValueError(f"“type” must be one of {', '.join(EventType.values)}.")
    if not source.accepts(event_type):
        raise ValueError(f"This source is not expected to send {event_type} events.")
    occurred_at = None
    if raw.get("occurred_at") is not None:
        occurred_at = _parse_time(raw["occurred_at"], "occurred_at")
    data = raw.get("data", {})
    if not isinstance(data, dict):
        raise ValueError("“data” must be an object.")
    _VALIDATORS[event_type](data)
    return event_type, occurred_at


# The choices as sets, made once: a TextChoices' .values builds a new list at each call.
_EVENT_TYPES = frozenset(EventType.values)
_ACTIONS = frozenset(ButtonAction.values)
_DIRECTIONS = frozenset(Direction.values)


def _one_of(value: Any, allowed: frozenset[str]) -> bool:
    return isinstance(value, str) and value in allowed  # a list or dict is not hashable


def _parse_time(value: Any, name: str) -> datetime:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError(f"“{name}” must be an ISO 8601 date-time, e.g. 2026-11-23T20:30:00+05:30.")
    if timezone.is_naive(parsed):
        raise ValueError(f"“{name}” needs a time zone offset (Z or +05:30).")
    return parsed


def _need_advisor(data: dict) -> None:
    if not any(isinstance(data.get(key), str) and data[key] for key in ("advisor_phone", "advisor_arn")):
        raise ValueError("“data.advisor_phone” or “data.advisor_arn” is required.")


def _optional_int(data: dict, key: str, *, minimum: int = 0, maximum: int = 10**9) -> None:
    value = data.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum):
        raise ValueError(f"“data.{key}” must be a whole number from {minimum} to {maximum}.")


def _validate_click(data: dict) -> None:
    if not _one_of(data.get("action"), _ACTIONS):
        raise ValueError(f"“data.action” must be one of {', '.join(ButtonAction.values)}.")
    _need_advisor(data)
    _optional_int(data, "content_id", minimum=1)
    _optional_int(data, "response_ms")
    if data.get("succeeded") is not None and not isinstance(data["succeeded"], bool):
        raise ValueError("“data.succeeded” must be true or false.")


def _validate_chat(data: dict) -> None:
    conversation = data.get("conversation_id")
    if not isinstance(conversation, str) or not 1 <= len(conversation) <= 200:
        raise ValueError("“data.conversation_id” must be a string of 1 to 200 characters.")
    if not _one_of(data.get("direction"), _DIRECTIONS):
        raise ValueError(f"“data.direction” must be one of {', '.join(Direction.values)}.")
    _need_advisor(data)
    if not isinstance(data.get("text", ""), str):
        raise ValueError("“data.text” must be a string.")
    _optional_int(data, "response_ms")
    score = data.get("ai_quality_score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1):
        raise ValueError("“data.ai_quality_score” must be a number from 0 to 1.")
    if data.get("ends_conversation") is not None and not isinstance(data["ends_conversation"], bool):
        raise ValueError("“data.ends_conversation” must be true or false.")


RECEIPT_STATUSES = ("sent", "delivered", "read", "failed")


def _validate_receipt(data: dict) -> None:
    message_id = data.get("provider_message_id")
    if not isinstance(message_id, str) or not 1 <= len(message_id) <= 200:
        raise ValueError("“data.provider_message_id” must be a string of 1 to 200 characters.")
    if data.get("status") not in RECEIPT_STATUSES:
        raise ValueError(f"“data.status” must be one of {', '.join(RECEIPT_STATUSES)}.")
    if not isinstance(data.get("error", ""), str):
        raise ValueError("“data.error” must be a string.")


_VALIDATORS = {
    EventType.BUTTON_CLICK: _validate_click,
    EventType.CHAT_MESSAGE: _validate_chat,
    EventType.DELIVERY_RECEIPT: _validate_receipt,
    EventType.HEARTBEAT: lambda data: None,
}


def _count(slug: str, **outcomes: int) -> None:
    try:
        pipe = redis_client().pipeline(transaction=False)
        for outcome, n in outcomes.items():
            if n:
                pipe.hincrby(COUNTS_KEY, f"{slug}|{outcome}", n)
        pipe.execute()
    except Exception:  # counting must never turn an answer into a 500
        logger.warning("could not count inbound events", exc_info=True)


def _count_refused(slug: str) -> None:
    _count(slug, refused=1)


def event_counts() -> dict[tuple[str, str], int]:
    """Return {(source slug, outcome): events} since Redis started."""
    counts = {}
    for key, value in redis_client().hgetall(COUNTS_KEY).items():
        slug, _, outcome = (key.decode() if isinstance(key, bytes) else key).partition("|")
        counts[(slug, outcome)] = int(value)
    return counts


def refused_count(slug: str) -> int:
    """Return how many requests for `slug` were refused for their signature (since Redis started)."""
    value = redis_client().hget(COUNTS_KEY, f"{slug}|refused")
    return int(value or 0)


def kick_processing() -> None:
    """Ask a worker to process received events, unless a request is already pending.

    Called after each commit that stored events. The flag makes a burst of requests cost
    one task, not one each; the task clears it before each claim, so an event committed
    after its last claim always finds the flag clear and sends a new task.
    """
    from .tasks import process_inbound_events

    try:
        if redis_client().set(KICK_KEY, "1", nx=True, ex=60):
            process_inbound_events.delay()
    except Exception:  # the event is stored; the periodic sweep will process it
        logger.warning("could not ask a worker to process inbound events", exc_info=True)


# --- processing ------------------------------------------------------------------------------------


class ProcessLater(Exception):
    """The event cannot be processed yet (e.g. a receipt for a delivery not recorded as sent)."""


def process_pending(*, limit: int | None = None) -> dict[str, int]:
    """Claim received events (and ones whose worker died) in batches and process them all."""
    totals = {"processed": 0, "failed": 0, "deferred": 0}
    batch = settings.INBOUND_PROCESS_BATCH if limit is None else limit
    while True:
        _clear_kick()
        claimed = claim_events(batch)
        if not claimed:
            return totals
        for event in claimed:
            totals[process_event(event)] += 1
        if limit is not None:
            return totals


def _clear_kick() -> None:
    try:
        redis_client().delete(KICK_KEY)
    except Exception:
        logger.warning("could not clear the inbound kick flag", exc_info=True)


def claim_events(limit: int, *, now: datetime | None = None) -> list[InboundEvent]:
    """Claim up to `limit` due events for this worker with one conditional UPDATE.

    Due: received and not waiting out a back-off, or processing with an expired lease
    (its worker died). The claim token tells the rows this worker won from rows another
    worker claimed between our SELECT and our UPDATE.
    """
    now = now or timezone.now()
    due = (Q(status=EventStatus.RECEIVED) & (Q(lease_until__isnull=True) | Q(lease_until__lte=now))) | Q(
        status=EventStatus.PROCESSING, lease_until__lte=now
    )
    ids = list(InboundEvent.objects.filter(due).order_by("id").values_list("id", flat=True)[:limit])
    if not ids:
        return []
    token = uuid.uuid4().hex
    InboundEvent.objects.filter(due, id__in=ids).update(
        status=EventStatus.PROCESSING, claim_token=token,
        lease_until=now + timedelta(seconds=settings.INBOUND_LEASE_SECONDS),
    )
    claimed = InboundEvent.objects.filter(claim_token=token, status=EventStatus.PROCESSING)
    return list(claimed.select_related("source").order_by("id"))


def process_event(event: InboundEvent) -> str:
    """Turn one claimed event into its typed row; return processed, deferred or failed."""
    handler = _HANDLERS[event.type]
    now = timezone.now()
    try:
        with transaction.atomic():
            handler(event)
            updated = InboundEvent.objects.filter(pk=event.pk, claim_token=event.claim_token).update(
                status=EventStatus.PROCESSED, processed_at=now, reason="", lease_until=None,
                attempts=event.attempts + 1,
            )
            if not updated:  # our lease ran out and another worker took it: let its work stand
                transaction.set_rollback(True)
        return "processed"
    except Exception as exc:  # recorded on the row, retried with back-off, then left to a person
        attempts = event.attempts + 1
        give_up = attempts >= settings.INBOUND_MAX_ATTEMPTS
        deferred = isinstance(exc, ProcessLater)
        if not deferred:
            logger.warning("inbound event %s failed (attempt %s)", event.pk, attempts, exc_info=True)
        delay = min(600, 5 * 2 ** (attempts - 1))
        InboundEvent.objects.filter(pk=event.pk, claim_token=event.claim_token).update(
            status=EventStatus.FAILED if give_up else EventStatus.RECEIVED,
            reason=f"{type(exc).__name__}: {exc}"[:2000] if not deferred else str(exc)[:2000],
            attempts=attempts,
            lease_until=None if give_up else now + timedelta(seconds=delay),
        )
        return "failed" if give_up else "deferred"


def _advisor_of(data: dict) -> Advisor | None:
    if data.get("advisor_arn"):
        found = Advisor.objects.filter(arn=data["advisor_arn"]).first()
        if found:
            return found
    if data.get("advisor_phone"):
        return Advisor.objects.filter(phone=data["advisor_phone"]).first()
    return None


def _at(event: InboundEvent) -> datetime:
    return event.occurred_at or event.received_at


def _process_click(event: InboundEvent) -> None:
    data = event.payload.get("data", {})
    advisor = _advisor_of(data)
    content = None
    if data.get("content_id"):
        content = Content.objects.filter(pk=data["content_id"]).first()
    delivery = None
    if data.get("provider_message_id"):
        delivery = Delivery.objects.filter(provider_message_id=data["provider_message_id"]).select_related(
            "content"
        ).first()
    if delivery is not None and content is None:
        content = delivery.content
    if delivery is None and content is not None:
        delivery = content.deliveries.order_by("id").first()
    if advisor is None and content is not None:
        advisor = content.advisor
    ButtonClick.objects.get_or_create(
        event=event,
        defaults={
            "action": data["action"], "at": _at(event), "advisor": advisor, "content": content,
            "delivery": delivery, "response_ms": data.get("response_ms"), "succeeded": data.get("succeeded"),
        },
    )


def _process_chat(event: InboundEvent) -> None:
    data = event.payload.get("data", {})
    at = _at(event)
    conversation, _ = Conversation.objects.select_for_update().get_or_create(
        source=event.source, external_id=data["conversation_id"],
        defaults={"advisor": _advisor_of(data), "started_at": at, "last_message_at": at},
    )
    if ChatMessage.objects.filter(event=event).exists():
        return
    response_ms = data.get("response_ms")
    if response_ms is None and data["direction"] == Direction.OUTBOUND:
        # Not sent: measure from the advisor's last message before this answer.
        asked = (
            conversation.chat_messages.filter(direction=Direction.INBOUND, at__lte=at).order_by("-at").first()
        )
        if asked is not None:
            response_ms = int((at - asked.at).total_seconds() * 1000)
    ChatMessage.objects.create(
        event=event, conversation=conversation, direction=data["direction"], at=at,
        text=data.get("text", ""), response_ms=response_ms, ai_quality_score=data.get("ai_quality_score"),
    )
    if data["direction"] == Direction.INBOUND:
        _measure_late_answer(conversation, at)
    changes: dict[str, Any] = {"messages": conversation.messages + 1}
    if at > conversation.last_message_at:
        changes["last_message_at"] = at
    if at < conversation.started_at:
        changes["started_at"] = at
    if data.get("ends_conversation") and conversation.completed_at is None:
        changes["completed_at"] = at
    if conversation.advisor_id is None:
        advisor = _advisor_of(data)
        if advisor is not None:
            changes["advisor"] = advisor
    Conversation.objects.filter(pk=conversation.pk).update(**changes)


def _measure_late_answer(conversation: Conversation, asked_at: datetime) -> None:
    """Give the answer to a question that was processed after it its response time.

    Events of one conversation may arrive (or be processed) out of order.
    """
    answer = conversation.chat_messages.filter(direction=Direction.OUTBOUND, at__gte=asked_at).order_by("at").first()
    if answer is None or answer.response_ms is not None:
        return
    if conversation.chat_messages.filter(direction=Direction.INBOUND, at__gt=asked_at, at__lte=answer.at).exists():
        return  # a later question is the one it answered
    ChatMessage.objects.filter(pk=answer.pk).update(response_ms=int((answer.at - asked_at).total_seconds() * 1000))


def _process_receipt(event: InboundEvent) -> None:
    data = event.payload.get("data", {})
    delivery = Delivery.objects.filter(provider_message_id=data["provider_message_id"]).first()
    if delivery is None:
        raise ProcessLater(f"No delivery has provider message id {data['provider_message_id']!r} (yet).")
    outcome = apply_delivery_receipt(delivery, status=data["status"], at=_at(event), error=data.get("error", ""))
    if outcome == "not_sent_yet":
        raise ProcessLater(f"Delivery {delivery.pk} is not recorded as sent yet.")


_HANDLERS = {
    EventType.BUTTON_CLICK: _process_click,
    EventType.CHAT_MESSAGE: _process_chat,
    EventType.DELIVERY_RECEIPT: _process_receipt,
    EventType.HEARTBEAT: lambda event: None,
}


def retry_event(event: InboundEvent, *, by, source: str = AuditSource.UI, request=None) -> InboundEvent:
    """Put a failed event back in the queue with a fresh attempt budget; audited."""
    with transaction.atomic():
        updated = InboundEvent.objects.filter(pk=event.pk, status=EventStatus.FAILED).update(
            status=EventStatus.RECEIVED, attempts=0, lease_until=None, claim_token=""
        )
        if not updated:
            event.refresh_from_db()
            raise NotRetryable(f"Event {event.event_id} is {event.get_status_display().lower()}, not failed.")
        record_audit("inbound_event.retried", target=event, actor=by, source=source, request=request,
                     changes={"reason_was": event.reason[:500]})
        transaction.on_commit(kick_processing)
    event.refresh_from_db()
    return event


# --- sources -------------------------------------------------------------------------------------


def rotate_secret(source: InboundSource, *, by, request=None, source_of_change: str = AuditSource.UI) -> str:
    """Give the source a new secret; the current one keeps verifying until the next rotation.

    Returns the new secret, to be shown once: the sender switches to it at its own pace.
    """
    from .models import new_secret

    secret = new_secret()
    with transaction.atomic():
        current = InboundSource.objects.select_for_update().get(pk=source.pk)
        current.previous_secret = current.secret
        current.secret = secret
        current.secret_rotated_at = timezone.now()
        current.save(update_fields=["previous_secret", "secret", "secret_rotated_at"])
        record_audit("inbound_source.secret_rotated", actor=by, target=current, source=source_of_change,
                     request=request)
    source.refresh_from_db()
    return secret


def drop_previous_secret(source: InboundSource, *, by, request=None) -> None:
    """Stop accepting the previous secret (the sender has moved to the current one)."""
    with transaction.atomic():
        InboundSource.objects.filter(pk=source.pk).update(previous_secret="")
        forget_source(source.slug, source.pk)
        record_audit("inbound_source.previous_secret_dropped", actor=by, target=source, request=request,
                     source=AuditSource.UI)
    source.refresh_from_db()


# --- the integration page ------------------------------------------------------------------------

HealthLookup = Callable[[InboundSource], "dict | None"]
_health_lookup: HealthLookup | None = None
LIVE_THROTTLE_KEY = "opscenter:inbound:live:{slug}"


def register_health_lookup(lookup: HealthLookup) -> None:
    """Let the health app tell this one how a source's /health URL is doing.

    The lookup returns {"state": "up" | "down" | "unknown", "uptime_24h": 0..1 | None,
    "checked_at": datetime | None, "url": str} or None when the source has no check. The
    health app sits above this one in the import order, so it registers itself here.
    """
    global _health_lookup
    _health_lookup = lookup


def source_status(source: InboundSource, *, failed: int, health: dict | None, now: datetime) -> tuple[str, str]:
    """Return (healthy | down | error | unknown, why) for a source."""
    silent_after = timedelta(minutes=settings.INBOUND_SILENT_AFTER_MINUTES)
    last = max(filter(None, [source.last_event_at, source.last_heartbeat_at]), default=None)
    if health and health.get("state") == "down":
        return "down", f"its health check ({health.get('url')}) is failing"
    if last is None and not health:
        return "unknown", "nothing received yet"
    if last is not None and now - last > silent_after and not (health and health.get("state") == "up"):
        return "down", f"silent for more than {settings.INBOUND_SILENT_AFTER_MINUTES} min"
    if failed:
        return "error", f"{failed} event{'s' if failed != 1 else ''} failed processing and wait for a retry"
    return "healthy", "receiving, and its events are processed"


def integration_overview(*, now: datetime | None = None, recent: int = 15) -> list[dict[str, Any]]:
    """Return, per source, its status, counters, hourly event rate and recent / failed events."""
    from django.db.models import Count
    from django.db.models.functions import TruncHour

    now = now or timezone.now()
    day_ago = now - timedelta(hours=24)
    first_hour = (now - timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
    sources = []
    for source in InboundSource.objects.order_by("name"):
        events = InboundEvent.objects.filter(source=source)
        counts = dict(events.filter(received_at__gte=day_ago).values_list("status").annotate(n=Count("id")))
        failed = events.filter(status=EventStatus.FAILED).count()
        hourly = {
            (row["hour"], row["status"]): row["n"]
            for row in events.filter(received_at__gte=first_hour)
            .annotate(hour=TruncHour("received_at")).values("hour", "status").annotate(n=Count("id"))
        }
        hours = [first_hour + timedelta(hours=h) for h in range(24)]
        rate = {
            "labels": [timezone.localtime(h).strftime("%H:00") for h in hours],
            "processed": [hourly.get((h, EventStatus.PROCESSED), 0) for h in hours],
            "failed": [hourly.get((h, EventStatus.FAILED), 0) + hourly.get((h, EventStatus.REJECTED), 0)
                       for h in hours],
            "waiting": [hourly.get((h, EventStatus.RECEIVED), 0) + hourly.get((h, EventStatus.PROCESSING), 0)
                        for h in hours],
        }
        health = _health_lookup(source) if _health_lookup else None
        status, why = source_status(source, failed=failed, health=health, now=now)
        try:
            refused = refused_count(source.slug)
        except Exception:
            refused = None
        sources.append({
            "source": source, "status": status, "why": why, "health": health, "counts": counts,
            "received_24h": sum(counts.values()), "failed_total": failed,
            "waiting": events.filter(status__in=[EventStatus.RECEIVED, EventStatus.PROCESSING]).count(),
            "refused": refused, "rate": rate,
            "recent": list(events.order_by("-id")[:recent]),
            "failed_events": list(events.filter(status=EventStatus.FAILED).order_by("-id")[:recent]),
        })
    return sources


def integration_snapshot(user) -> dict[str, Any]:
    """The `inbound` topic's snapshot: each source's status (pages re-render from the server)."""
    return {"sources": [{"slug": s["source"].slug, "status": s["status"], "received_24h": s["received_24h"]}
                        for s in integration_overview(recent=0)]}
