"""Analytics figures equal the ones computed here, independently, from the raw rows.

A week of made-up activity (content through every status, deliveries read and failed,
clicks at all hours, conversations with timed answers) is rolled up by the analytics
tracker's service; the API's figures must match plain Python over the same rows.
"""

from __future__ import annotations

import csv
import io
import math
import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import Client

from advisors.inbound.models import ButtonClick, ChatMessage, Conversation, InboundEvent, InboundSource
from agents.engine.analytics import period_of
from agents.engine.services import RESPONSE_BUCKETS_MS, compute_rollup
from tests.factories import make_advisor, make_content, make_delivery, make_user

pytestmark = pytest.mark.django_db

ZONE = ZoneInfo("Asia/Kolkata")
WEEK = [date(2026, 11, 16) + timedelta(days=n) for n in range(7)]  # Monday to Sunday
PREVIOUS_WEEK = [d - timedelta(days=7) for d in WEEK]
STATUSES = ["pending_review", "approved", "rejected", "needs_revision", "scheduled", "delivered", "failed"]


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE)


@pytest.fixture
def activity(settings):
    settings.ENGINE_TIME_ZONE = "Asia/Kolkata"
    rng = random.Random(11)
    source = InboundSource.objects.create(slug="bot", name="Bot")
    advisors = [make_advisor(phone=f"+9198000000{n:02d}", arn=f"ARN-{1000 + n}") for n in range(6)]
    content, deliveries, clicks, messages, conversations = [], [], [], [], []
    event_n = 0

    def event():
        nonlocal event_n
        event_n += 1
        return InboundEvent.objects.create(source=source, event_id=f"e{event_n}", type="x", status="processed")

    for day in PREVIOUS_WEEK + WEEK:
        for advisor in rng.sample(advisors, rng.randint(2, 6)):
            status = rng.choice(STATUSES)
            item = make_content(advisor, status=status, cycle_date=day, compliance_verdict=rng.choice(["pass", "fail"]))
            content.append(item)
            if status in ("scheduled", "delivered", "failed"):
                delivery_status = {"scheduled": "sent", "failed": "failed"}.get(status) or rng.choice(["delivered", "read"])
                deliveries.append(make_delivery(item, status=delivery_status, provider_message_id=f"m{item.pk}"))
            if status in ("delivered", "scheduled") and rng.random() < 0.7:
                for _ in range(rng.randint(1, 3)):
                    outcome = rng.choice([True, False, None])
                    clicks.append(ButtonClick.objects.create(
                        event=event(), action=rng.choice(["RETRIEVE_CONTENT", "UNLOCK_CONTENT", "SHARE_WITH_CLIENTS"]),
                        at=local(day, rng.randint(0, 23), rng.randint(0, 59)), advisor=advisor, content=item,
                        response_ms=rng.choice([None, rng.randint(100, 5000)]), succeeded=outcome))
        for n in range(rng.randint(0, 3)):
            advisor = rng.choice(advisors)
            started = local(day, rng.randint(6, 20))
            conversation = Conversation.objects.create(
                source=source, external_id=f"c-{day}-{n}", advisor=advisor, started_at=started,
                last_message_at=started, completed_at=started + timedelta(minutes=5) if rng.random() < 0.6 else None)
            conversations.append(conversation)
            for m in range(rng.randint(1, 4)):
                at = started + timedelta(minutes=m)
                messages.append(ChatMessage.objects.create(event=event(), conversation=conversation,
                                                           direction="inbound", at=at))
                messages.append(ChatMessage.objects.create(
                    event=event(), conversation=conversation, direction="outbound", at=at + timedelta(seconds=3),
                    response_ms=rng.choice([None, rng.randint(200, 90_000)]),
                    ai_quality_score=rng.choice([None, round(rng.random(), 2)])))
    for day in PREVIOUS_WEEK + WEEK:
        compute_rollup(day)
    return {"content": content, "deliveries": deliveries, "clicks": clicks, "messages": messages,
            "conversations": conversations}


def expected(activity, days: list[date]) -> dict:
    """The week's figures from the raw rows, without the code under test."""
    start, end = local(days[0], 0), local(days[-1] + timedelta(days=1), 0)
    content = [c for c in activity["content"] if days[0] <= c.cycle_date <= days[-1]]
    deliveries = [d for d in activity["deliveries"] if days[0] <= d.content.cycle_date <= days[-1]]
    clicks = [c for c in activity["clicks"] if start <= c.at < end]
    messages = [m for m in activity["messages"] if start <= m.at < end]
    answers = [m for m in messages if m.direction == "outbound"]
    timed = [m.response_ms for m in answers if m.response_ms is not None]
    scored = [m.ai_quality_score for m in answers if m.ai_quality_score is not None]
    approved = sum(c.status in ("approved", "scheduled", "delivered", "failed") for c in content)
    rejected = sum(c.status == "rejected" for c in content)
    revisions = sum(c.status == "needs_revision" for c in content)
    delivered = sum(d.status in ("sent", "delivered", "read") for d in deliveries)
    failed = sum(d.status == "failed" for d in deliveries)
    read = sum(d.status == "read" for d in deliveries)
    clicked = len({c.content_id for c in activity["clicks"] if days[0] <= c.content.cycle_date <= days[-1]})
    with_outcome = [c for c in clicks if c.succeeded is not None]
    click_times = [c.response_ms for c in clicks if c.response_ms is not None]
    started = [c for c in activity["conversations"] if start <= c.started_at < end]
    completed = [c for c in activity["conversations"] if c.completed_at and start <= c.completed_at < end]
    ordered = sorted(timed)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else None
    hours = [0] * 24
    for c in clicks:
        hours[c.at.astimezone(ZONE).hour] += 1
    return {
        "advisors_served": len({c.advisor_id for c in content}),
        "generated": len(content), "approved": approved, "delivered": delivered, "read": read, "clicked": clicked,
        "approval_rate": round(approved / (approved + rejected + revisions), 4),
        "delivery_rate": round(delivered / (delivered + failed), 4) if delivered + failed else None,
        "read_rate": round(read / delivered, 4) if delivered else None,
        "clicks": len(clicks),
        "clicks_share": sum(c.action == "SHARE_WITH_CLIENTS" for c in clicks),
        "click_success_rate": (round(sum(bool(c.succeeded) for c in with_outcome) / len(with_outcome), 4)
                               if with_outcome else None),
        "click_response_ms_avg": round(sum(click_times) / len(click_times), 1) if click_times else None,
        "clicks_by_hour": hours,
        "chat_messages": len(messages),
        "chat_response_ms_avg": round(sum(timed) / len(timed), 1) if timed else None,
        "p95_bucket": None if p95 is None else next((b for b in RESPONSE_BUCKETS_MS if p95 <= b), "slower"),
        "ai_quality_avg": round(sum(scored) / len(scored), 3) if scored else None,
        "conversations_started": len(started), "conversations_completed": len(completed),
        "engaged_advisors": len({c.advisor_id for c in clicks} | {m.conversation.advisor_id for m in messages}),
    }


def test_the_weekly_figures_equal_the_ones_computed_from_the_raw_rows(activity, api_client):
    api_client.force_authenticate(make_user("Viewer"))

    response = api_client.get("/api/v1/analytics/summary", {"period": "week", "date": "2026-11-19"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["period"]["start"] == "2026-11-16" and body["period"]["end"] == "2026-11-22"
    figures, want = body["figures"], expected(activity, WEEK)
    for key in ["advisors_served", "generated", "approved", "delivered", "read", "clicked", "approval_rate",
                "delivery_rate", "read_rate", "clicks", "clicks_share", "click_success_rate", "click_response_ms_avg",
                "clicks_by_hour", "chat_messages", "chat_response_ms_avg", "ai_quality_avg", "conversations_started",
                "conversations_completed", "engaged_advisors"]:
        assert figures[key] == pytest.approx(want[key]), key
    p95 = figures["chat_response_p95"]
    if want["p95_bucket"] == "slower":
        assert p95 == {"over_ms": RESPONSE_BUCKETS_MS[-1]}
    elif want["p95_bucket"] is not None:
        assert p95 == {"at_most_ms": want["p95_bucket"]}
    assert [s["count"] for s in figures["funnel"]] == [want[k] for k in ("generated", "approved", "delivered", "read",
                                                                         "clicked")]


def test_the_previous_week_and_the_change_are_reported(activity, api_client):
    api_client.force_authenticate(make_user("Viewer"))
    body = api_client.get("/api/v1/analytics/summary", {"period": "week", "date": "2026-11-22"}).json()

    before = expected(activity, PREVIOUS_WEEK)
    now = expected(activity, WEEK)
    assert body["previous"]["generated"] == before["generated"]
    assert body["changes"]["generated"] == round((now["generated"] - before["generated"]) / before["generated"], 4)


def test_a_day_and_a_month_are_periods_too(activity, api_client):
    api_client.force_authenticate(make_user("Viewer"))
    day = api_client.get("/api/v1/analytics/summary", {"period": "day", "date": "2026-11-18"}).json()
    month = api_client.get("/api/v1/analytics/summary", {"period": "month", "date": "2026-11-18"}).json()

    assert day["figures"]["generated"] == expected(activity, [date(2026, 11, 18)])["generated"]
    assert (month["period"]["start"], month["period"]["end"]) == ("2026-11-01", "2026-11-30")
    assert month["figures"]["generated"] == len(activity["content"])  # every day made is in November
    assert month["previous_period"]["start"] == "2026-10-01"


def test_the_daily_endpoint_and_the_csv_export_carry_every_day(activity, api_client):
    api_client.force_authenticate(make_user("Viewer"))
    days = api_client.get("/api/v1/analytics/daily", {"start": "2026-11-16", "end": "2026-11-22"}).json()["days"]
    assert [d["day"] for d in days] == [d.isoformat() for d in WEEK]
    assert sum(d["generated"] for d in days) == expected(activity, WEEK)["generated"]

    client = Client()
    client.force_login(make_user("Viewer"))
    export = client.get("/admin/analytics/export.csv", {"period": "week", "date": "2026-11-16"})
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [r["day"] for r in rows] == [d.isoformat() for d in WEEK]
    assert sum(int(r["generated"]) for r in rows) == expected(activity, WEEK)["generated"]


def test_bad_parameters_get_field_errors(api_client):
    api_client.force_authenticate(make_user("Viewer"))
    bad = api_client.get("/api/v1/analytics/summary", {"period": "year", "date": "soon"})
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"period", "date"}
    backwards = api_client.get("/api/v1/analytics/daily", {"start": "2026-11-20", "end": "2026-11-10"})
    assert backwards.status_code == 400 and "end" in backwards.json()["error"]["fields"]


def test_the_analytics_page_renders_for_every_role_and_needs_sign_in(activity):
    for role in ("Viewer", "Reviewer", "Operator", "Admin"):
        client = Client()
        client.force_login(make_user(role))
        page = client.get("/admin/analytics/", {"period": "week", "date": "2026-11-16"})
        assert page.status_code == 200, role
        assert "Approval rate" in page.content.decode()
    assert Client().get("/admin/analytics/").status_code == 302
    assert Client().get("/api/v1/analytics/summary").status_code in (401, 403)


def test_periods_are_iso_weeks_and_calendar_months():
    assert period_of("week", date(2026, 11, 22)).start == date(2026, 11, 16)
    assert period_of("month", date(2024, 2, 10)).end == date(2024, 2, 29)
    assert period_of("week", date(2026, 11, 16)).previous().start == date(2026, 11, 9)
