"""The daily operations page and the demo data: figures by stage, per advisor, permissions."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.urls import reverse

from advisors.models import Advisor, ComplianceVerdict, ContentStatus, Delivery, DeliveryStatus
from agents.engine.models import ComplianceRule, Cycle, CycleAdvisor, Stage, Topic
from agents.models import Agent, AgentRun, RunStatus
from tests.factories import make_advisor, make_content, make_user

DAY = datetime.date(2026, 11, 24)
PAGE = "/admin/operations/"


def cycle_with(entries: list[tuple], *, day=DAY) -> Cycle:
    run = AgentRun.objects.create(agent=Agent.objects.get(slug="content-orchestrator"), status=RunStatus.SUCCEEDED)
    cycle = Cycle.objects.create(cycle_date=day, run=run, advisors_targeted=len(entries))
    for advisor, stage, content, flagged in entries:
        CycleAdvisor.objects.create(cycle=cycle, advisor=advisor, stage=stage, content=content, fatigue_flagged=flagged,
                                    error="The writer failed: 503" if stage == Stage.FAILED else "")
    return cycle


@pytest.fixture
def day_with_everything(db):
    advisors = [make_advisor() for _ in range(5)]
    pending = make_content(advisors[0], cycle_date=DAY, compliance_verdict=ComplianceVerdict.FAIL)
    approved = make_content(advisors[1], cycle_date=DAY, status=ContentStatus.APPROVED)
    delivered = make_content(advisors[2], cycle_date=DAY, status=ContentStatus.DELIVERED)
    flagged = make_content(advisors[3], cycle_date=DAY)
    Delivery.objects.create(content=delivered, channel="outbox", recipient="x", status=DeliveryStatus.DELIVERED)
    cycle_with([
        (advisors[0], Stage.SUBMITTED, pending, False),
        (advisors[1], Stage.SUBMITTED, approved, False),
        (advisors[2], Stage.SUBMITTED, delivered, False),
        (advisors[3], Stage.SUBMITTED, flagged, True),
        (advisors[4], Stage.FAILED, None, False),
    ])
    return advisors


def figures(response) -> dict[str, int]:
    return {key: value for key, _, _, value in response.context["stages"]}


def test_the_page_counts_the_cycle_by_stage_and_lists_every_advisor(client, day_with_everything):
    client.force_login(make_user("Viewer"))
    response = client.get(PAGE, {"date": DAY.isoformat()})

    assert response.status_code == 200
    assert figures(response) == {
        "targeted": 5, "generated": 4, "compliance_failed": 1, "fatigue_flagged": 1, "pending_review": 2,
        "approved": 2, "delivered": 1, "failed": 1,
    }
    text = response.content.decode()
    for advisor in day_with_everything:
        assert advisor.name in text
    assert "The writer failed: 503" in text
    assert reverse("admin:agents_run", args=[Cycle.objects.get().run_id]) in text


def test_past_days_show_the_same_figures(client, day_with_everything):
    earlier = DAY - datetime.timedelta(days=2)
    make_content(make_advisor(), cycle_date=earlier, status=ContentStatus.APPROVED)
    client.force_login(make_user("Viewer"))
    response = client.get(PAGE, {"date": DAY.isoformat()})
    past = dict(response.context["past"])
    assert dict(past[earlier])["Generated"] == 1 and dict(past[earlier])["Approved"] == 1
    assert dict(past[DAY - datetime.timedelta(days=1)])["Generated"] == 0


def test_the_state_endpoint_returns_the_live_part_for_the_date(client, day_with_everything):
    client.force_login(make_user("Reviewer"))
    data = client.get(reverse("admin:engine_operations_state"), {"date": DAY.isoformat()}).json()
    assert data["date"] == DAY.isoformat()
    assert 'data-stage="generated">4<' in data["html"]


def test_a_bad_date_shows_a_form_error_and_the_current_cycle(client, db):
    client.force_login(make_user("Viewer"))
    response = client.get(PAGE, {"date": "2026-13-45"})
    assert response.status_code == 200
    assert "Enter a valid date" in response.content.decode()


@pytest.mark.parametrize("path", [PAGE, "/admin/operations/state/"])
def test_people_without_a_role_cannot_see_the_page(client, db, path):
    client.force_login(make_user(None))
    assert client.get(path).status_code in (302, 403)


def test_seed_demo_creates_advisors_topics_rules_and_starts_a_cycle_through_the_real_paths(db, settings):
    settings.OPSCENTER_DEMO = True
    call_command("seed_demo", "--first-start", advisors=6)

    assert Advisor.objects.count() == 6
    assert Topic.objects.filter(enabled=True).count() >= 15
    assert ComplianceRule.objects.filter(enabled=True).count() >= 5
    run = AgentRun.objects.get(agent__slug="content-orchestrator")
    assert run.status == RunStatus.QUEUED and run.params["cycle_date"]

    call_command("seed_demo", "--first-start")  # not a fresh database any more: nothing happens
    assert Advisor.objects.count() == 6
    assert AgentRun.objects.filter(agent__slug="content-orchestrator").count() == 1


def test_seed_demo_on_first_start_does_nothing_when_turned_off(db, settings):
    settings.OPSCENTER_DEMO = False
    call_command("seed_demo", "--first-start")
    assert not Advisor.objects.exists()


def test_engine_agents_get_their_default_schedules_in_the_engine_time_zone(db):
    from agents.schedules import cron_of

    orchestrator = Agent.objects.select_related("schedule__crontab").get(slug="content-orchestrator")
    assert cron_of(orchestrator) == "30 20 * * *; 0 5 * * *"
    assert str(orchestrator.schedule.crontab.timezone) == "Asia/Kolkata"
    assert cron_of(Agent.objects.get(slug="approval-guardian")) == "0 23 * * *"
