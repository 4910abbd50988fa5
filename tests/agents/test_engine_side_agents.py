"""The engine's agents outside the cycle: approval guardian, revision handler, analytics tracker.

Run on the real worker where the agent itself is under test; the rules behind them are
checked directly against agents/engine/services.py.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from advisors.models import ComplianceVerdict, Content, ContentStatus
from advisors.services import claim_content, request_revision
from agents import services
from agents.engine import services as engine
from agents.engine.compliance import ensure_default_rules
from agents.engine.models import DailyRollup, EngineSettings
from agents.engine.topics import ensure_starter_topics
from agents.models import Agent, RunStatus
from opscenter.models import AuditEntry
from tests.factories import make_advisor, make_content, make_user

LONG_AGO = timezone.now() - timedelta(hours=5)


def pending(**fields) -> Content:
    defaults = {"compliance_verdict": ComplianceVerdict.PASS, "fatigue_score": 0.1, "submitted_at": LONG_AGO}
    return make_content(**{**defaults, **fields})


@pytest.mark.django_db
def test_guardian_picks_only_clean_items_nobody_touched_that_waited_long_enough():
    knobs = EngineSettings.load()
    clean = pending()
    pending(compliance_verdict=ComplianceVerdict.WARN)
    pending(compliance_verdict=ComplianceVerdict.FAIL)
    pending(fatigue_score=knobs.fatigue_threshold + 0.1)
    pending(submitted_at=timezone.now() - timedelta(minutes=5))
    claimed = pending()
    claim_content(claimed, by=make_user("Reviewer"))
    expired_claim = pending()
    Content.objects.filter(pk=expired_claim.pk).update(claimed_by=make_user("Reviewer"),
                                                       claim_expires_at=timezone.now() - timedelta(minutes=1))

    assert set(engine.guardian_candidates().values_list("pk", flat=True)) == {clean.pk, expired_claim.pk}


@pytest.mark.django_db(transaction=True)
def test_guardian_does_nothing_while_the_policy_is_off(worker):
    item = pending()
    run = services.trigger_run(Agent.objects.get(slug="approval-guardian"), by=make_user("Operator"))
    run = worker.wait_for_run(run.pk, [RunStatus.SUCCEEDED])
    assert run.result == {"approved": 0, "enabled": False}
    item.refresh_from_db()
    assert item.status == ContentStatus.PENDING_REVIEW


@pytest.mark.django_db(transaction=True)
def test_guardian_approves_as_itself_when_the_policy_is_on(worker):
    knobs = EngineSettings.load()
    knobs.guardian_enabled = True
    knobs.save()
    clean, failing = pending(), pending(compliance_verdict=ComplianceVerdict.FAIL)

    run = services.trigger_run(Agent.objects.get(slug="approval-guardian"), by=make_user("Operator"))
    run = worker.wait_for_run(run.pk, [RunStatus.SUCCEEDED])

    assert run.result == {"approved": 1}
    clean.refresh_from_db()
    failing.refresh_from_db()
    assert clean.status in (ContentStatus.APPROVED, ContentStatus.DELIVERED)
    assert clean.reviewer.username == engine.GUARDIAN_USERNAME and not clean.reviewer.is_active
    assert failing.status == ContentStatus.PENDING_REVIEW
    audit = AuditEntry.objects.get(action="content.approve", target_id=str(clean.pk))
    assert audit.actor.username == engine.GUARDIAN_USERNAME


@pytest.mark.django_db(transaction=True)
def test_revision_handler_rewrites_an_item_sent_back_with_the_note_and_links_it(worker):
    ensure_starter_topics()
    ensure_default_rules()
    advisor = make_advisor()
    original = pending(advisor=advisor, title="SIP discipline: invest every month", topic="SIP",
                       body="A long post about SIPs. " * 10)
    request_revision(original, by=make_user("Reviewer"), note="Make it shorter and mention SIP top-ups.")

    run = services.trigger_run(Agent.objects.get(slug="revision-handler"), by=make_user("Operator"))
    run = worker.wait_for_run(run.pk, [RunStatus.SUCCEEDED])

    revision = Content.objects.get(revision_of=original)
    assert revision.status == ContentStatus.PENDING_REVIEW and revision.advisor == advisor
    assert revision.body != original.body and advisor.arn in revision.body
    assert revision.compliance_verdict in (ComplianceVerdict.PASS, ComplianceVerdict.WARN)
    assert revision.generating_run_id == run.pk
    assert any("revision #" in line for line in run.logs.values_list("message", flat=True))

    again = services.trigger_run(Agent.objects.get(slug="revision-handler"), by=make_user("Operator"))
    again = worker.wait_for_run(again.pk, [RunStatus.SUCCEEDED])
    assert again.result["revised"] == 0 and Content.objects.filter(revision_of=original).count() == 1


@pytest.mark.django_db
def test_analytics_tracker_rollup_counts_the_day():
    day = date(2026, 11, 24)
    advisor = make_advisor()
    make_content(advisor, cycle_date=day, status=ContentStatus.APPROVED)
    make_content(advisor, cycle_date=day, status=ContentStatus.REJECTED, compliance_verdict=ComplianceVerdict.FAIL)
    make_content(make_advisor(), cycle_date=day, status=ContentStatus.DELIVERED)
    make_content(make_advisor(), cycle_date=day + timedelta(days=1))

    rollup = engine.compute_rollup(day)

    assert (rollup.advisors_served, rollup.generated, rollup.approved, rollup.rejected, rollup.compliance_failed) == (
        2, 3, 2, 1, 1)
    engine.compute_rollup(day)
    assert DailyRollup.objects.filter(day=day).count() == 1
