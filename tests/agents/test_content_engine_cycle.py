"""The built-in content engine end to end, on a real Celery worker and Redis.

A cycle is triggered the way the schedule or an operator does; the worker runs the
orchestrator, the strategist and every batch's stages; the outcome is read from the rows.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from PIL import Image

from advisors.models import ComplianceVerdict, Content, ContentStatus, Delivery, DeliveryStatus, OutboxMessage
from advisors.services import approve_content
from agents import services
from agents.engine import services as engine_services
from agents.engine.compliance import ensure_default_rules
from agents.engine.models import (
    ComplianceRule,
    Cycle,
    CycleAdvisor,
    CycleStatus,
    EngineSettings,
    RuleKind,
    Severity,
    Stage,
    Topic,
)
from agents.engine.topics import ensure_starter_topics
from agents.engine.writer import LocalTemplateProvider
from agents.models import Agent, AgentRun, RunStatus
from tests.factories import make_advisor, make_content, make_user

pytestmark = pytest.mark.django_db(transaction=True)

CYCLE_TIMEOUT = 120


@pytest.fixture
def engine(transactional_db):
    """The engine's starting state: the starter topics and rules, batches of four advisors."""
    ensure_starter_topics()
    ensure_default_rules()
    knobs = EngineSettings.load()
    knobs.batch_size = 4
    knobs.save()
    return knobs


def start_cycle(operator, **params) -> AgentRun:
    return services.trigger_run(Agent.objects.get(slug="content-orchestrator"), by=operator, params=params)


def test_a_cycle_for_ten_advisors_writes_checks_illustrates_and_submits_a_post_for_each(worker, engine):
    operator = make_user("Operator")
    advisors = [make_advisor(segment=("retail", "HNI", "NRI")[n % 3], language=("en", "hi")[n % 2]) for n in range(10)]
    day = date.today() + timedelta(days=1)

    root = start_cycle(operator, cycle_date=day.isoformat(), advisors=[a.pk for a in advisors])
    worker.wait_for_run(root.pk, [RunStatus.SUCCEEDED], timeout=CYCLE_TIMEOUT)

    cycle = Cycle.objects.get(run=root)
    assert cycle.status == CycleStatus.SUCCEEDED and cycle.batches == 3 and cycle.advisors_targeted == 10
    stages = AgentRun.objects.filter(root=root).exclude(pk=root.pk)
    assert stages.filter(agent__slug="content-strategist").count() == 1
    for slug in ("content-generator", "fatigue-checker", "image-creator", "compliance-validator"):
        assert stages.filter(agent__slug=slug, status=RunStatus.SUCCEEDED).count() == 3, slug
    posts = Content.objects.filter(cycle_date=day)
    assert posts.count() == 10
    assert set(posts.values_list("advisor_id", flat=True)) == {a.pk for a in advisors}
    for post in posts:
        assert post.status == ContentStatus.PENDING_REVIEW
        assert post.compliance_verdict == ComplianceVerdict.PASS, post.compliance_findings
        assert post.advisor.arn in post.body
        assert post.fatigue_score is not None
        assert post.generating_run_id in set(stages.filter(agent__slug="content-generator").values_list("pk", flat=True))
        with Image.open(post.image.path) as picture:
            assert picture.size[0] == picture.size[1] >= 600
    assert set(CycleAdvisor.objects.filter(cycle=cycle).values_list("stage", flat=True)) == {Stage.SUBMITTED}


def test_compliance_catches_a_planted_banned_claim_and_a_missing_disclaimer(worker, engine):
    operator = make_user("Operator")
    advisor = make_advisor()
    # The writer leaves out the claims it knows are banned; this one only the admin's rule knows.
    planted = Topic.objects.create(
        title="Why this fund is special", category="Markets", summary="A look at one fund.",
        key_points=["This fund beats every bank FD over any five years.", "It is a large-cap fund."],
    )
    ComplianceRule.objects.create(name="FD comparison", kind=RuleKind.BANNED_PHRASE, severity=Severity.CRITICAL,
                                  value="beats every bank FD")
    # A second disclaimer rule: the writer includes the first one only.
    ComplianceRule.objects.create(name="SEBI risk line", kind=RuleKind.REQUIRED_DISCLAIMER, severity=Severity.HIGH,
                                  value="Past performance is not indicative of future returns.")
    day = date.today() + timedelta(days=2)

    root = start_cycle(operator, cycle_date=day.isoformat(), advisors=[advisor.pk], topic=planted.pk)
    worker.wait_for_run(root.pk, [RunStatus.SUCCEEDED], timeout=CYCLE_TIMEOUT)

    post = Content.objects.get(advisor=advisor, cycle_date=day)
    assert post.compliance_verdict == ComplianceVerdict.FAIL
    rules = {finding["rule"]: finding for finding in post.compliance_findings}
    banned = [f for f in post.compliance_findings if f.get("start") is not None]
    assert any(post.body[f["start"]:f["end"]].lower() == "beats every bank fd" for f in banned), post.compliance_findings
    assert "SEBI risk line" in rules and rules["SEBI risk line"].get("start") is None


def test_a_near_duplicate_of_a_recent_post_is_rewritten(worker, engine):
    operator = make_user("Operator")
    advisor = make_advisor()
    topic = Topic.objects.filter(enabled=True).first()
    day = date.today() + timedelta(days=4)
    # Plant, as last week's delivered post, exactly what the writer is about to write.
    brief = engine_services._brief(
        CycleAdvisor(advisor=advisor, topic=topic, cycle=Cycle(cycle_date=day)),
        disclaimer=engine_services.required_disclaimer(),
    )
    planted = LocalTemplateProvider().write(brief)
    make_content(advisor, status=ContentStatus.DELIVERED, cycle_date=day - timedelta(days=7), title=planted.title,
                 body=planted.body)

    root = start_cycle(operator, cycle_date=day.isoformat(), advisors=[advisor.pk], topic=topic.pk)
    worker.wait_for_run(root.pk, [RunStatus.SUCCEEDED], timeout=CYCLE_TIMEOUT)

    entry = CycleAdvisor.objects.select_related("content").get(cycle__run=root)
    assert entry.regenerations >= 1
    assert entry.content.body != planted.body
    assert entry.content.fatigue_score < 0.99
    assert entry.fatigue_flagged == (entry.content.fatigue_score > engine.fatigue_threshold)


def test_approved_post_is_delivered_once_through_the_outbox(worker, engine):
    operator = make_user("Operator")
    advisor = make_advisor()
    day = date.today() + timedelta(days=5)
    root = start_cycle(operator, cycle_date=day.isoformat(), advisors=[advisor.pk])
    worker.wait_for_run(root.pk, [RunStatus.SUCCEEDED], timeout=CYCLE_TIMEOUT)
    post = Content.objects.get(advisor=advisor, cycle_date=day)

    approve_content(post, by=make_user("Reviewer"))
    worker.wait_until(
        lambda: Content.objects.filter(pk=post.pk, status=ContentStatus.DELIVERED).exists(), CYCLE_TIMEOUT,
        "the approved post was not delivered",
    )
    manager = services.trigger_run(Agent.objects.get(slug="distribution-manager"), by=operator)
    worker.wait_for_run(manager.pk, [RunStatus.SUCCEEDED], timeout=CYCLE_TIMEOUT)

    delivery = Delivery.objects.get(content=post)
    assert delivery.status == DeliveryStatus.DELIVERED
    assert OutboxMessage.objects.filter(delivery__content=post).count() == 1
    assert OutboxMessage.objects.get(delivery=delivery).payload["body"] == post.body


def test_a_second_cycle_for_the_same_date_only_takes_advisors_without_a_post(worker, engine):
    operator = make_user("Operator")
    served, missed = make_advisor(), make_advisor()
    day = date.today() + timedelta(days=6)
    root = start_cycle(operator, cycle_date=day.isoformat(), advisors=[served.pk])
    worker.wait_for_run(root.pk, [RunStatus.SUCCEEDED], timeout=CYCLE_TIMEOUT)

    again = start_cycle(operator, cycle_date=day.isoformat(), advisors=[served.pk, missed.pk])
    worker.wait_for_run(again.pk, [RunStatus.SUCCEEDED], timeout=CYCLE_TIMEOUT)

    assert list(CycleAdvisor.objects.filter(cycle__run=again).values_list("advisor_id", flat=True)) == [missed.pk]
    assert Content.objects.filter(cycle_date=day, advisor=served).count() == 1


def test_a_dry_run_plans_topics_and_writes_nothing(worker, engine):
    operator = make_user("Operator")
    advisor = make_advisor()
    day = date.today() + timedelta(days=7)
    root = services.trigger_run(Agent.objects.get(slug="content-orchestrator"), by=operator,
                                params={"cycle_date": day.isoformat(), "advisors": [advisor.pk]}, dry_run=True)
    worker.wait_for_run(root.pk, [RunStatus.SUCCEEDED], timeout=CYCLE_TIMEOUT)

    entry = CycleAdvisor.objects.get(cycle__run=root)
    assert entry.cycle.dry_run and entry.topic_id is not None and entry.stage == Stage.PLANNED
    assert not Content.objects.filter(cycle_date=day).exists()
