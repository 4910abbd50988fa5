"""The content state machine: every allowed and forbidden transition, audited, race-safe."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from advisors.models import Content, ContentStatus, Delivery
from advisors.services import (
    TRANSITIONS,
    InvalidAction,
    TransitionConflict,
    approve_content,
    bulk_review,
    claim_content,
    reject_content,
    release_claim,
    request_revision,
    submit_for_review,
    transition_content,
)
from opscenter.models import AuditEntry
from tests.factories import make_advisor, make_content, make_user

ALL_STATES = list(ContentStatus.values)
NOTE = "Add the risk disclaimer at the end."


def cases():
    for action, (allowed_from, target) in TRANSITIONS.items():
        for state in ALL_STATES:
            yield pytest.param(action, state, target if state in allowed_from else None, id=f"{action}-from-{state}")


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "state", "expected"), list(cases()))
def test_every_transition_is_allowed_or_refused_as_the_table_says(action, state, expected):
    reviewer = make_user("Reviewer")
    content = make_content(status=state)
    note = NOTE if action in {"reject", "request_revision"} else ""
    if expected is None:
        with pytest.raises(TransitionConflict):
            transition_content(content, action, by=reviewer, note=note)
        content.refresh_from_db()
        assert content.status == state
        assert content.version == 1
        assert not AuditEntry.objects.filter(action=f"content.{action}").exists()
    else:
        transition_content(content, action, by=reviewer, note=note)
        content.refresh_from_db()
        assert content.status == expected
        assert content.version == 2
        entry = AuditEntry.objects.get(action=f"content.{action}")
        assert entry.changes["status"] == [state, expected]


@pytest.mark.django_db
@pytest.mark.parametrize("service", [reject_content, request_revision])
def test_reject_and_revision_need_a_note(service):
    content = make_content()
    with pytest.raises(InvalidAction, match="note"):
        service(content, by=make_user("Reviewer"), note="   ")
    content.refresh_from_db()
    assert content.status == ContentStatus.PENDING_REVIEW


@pytest.mark.django_db
def test_second_reviewer_gets_a_conflict_naming_the_first():
    alice, bob = make_user("Reviewer", username="alice"), make_user("Reviewer", username="bob")
    content = make_content()
    stale_copy = Content.objects.get(pk=content.pk)
    approve_content(content, by=alice)
    with pytest.raises(TransitionConflict, match="already approved by alice"):
        reject_content(stale_copy, by=bob, note=NOTE)


@pytest.mark.django_db
def test_stale_version_is_refused_even_while_the_state_allows_the_action():
    content = make_content()
    with pytest.raises(TransitionConflict, match="changed since you loaded it"):
        approve_content(content, by=make_user("Reviewer"), expected_version=content.version + 1)


@pytest.mark.django_db
def test_approval_records_reviewer_note_and_a_single_delivery():
    reviewer = make_user("Reviewer")
    content = make_content()
    approve_content(content, by=reviewer, note="Looks good")
    content.refresh_from_db()
    assert content.reviewer == reviewer and content.review_note == "Looks good" and content.reviewed_at
    delivery = Delivery.objects.get(content=content)
    assert delivery.channel == "outbox"
    assert delivery.recipient == content.advisor.phone


@pytest.mark.django_db
def test_resubmitting_a_revised_item_puts_it_back_in_the_queue():
    reviewer = make_user("Reviewer")
    content = make_content()
    request_revision(content, by=reviewer, note=NOTE)
    submit_for_review(content)
    content.refresh_from_db()
    assert content.status == ContentStatus.PENDING_REVIEW
    assert content.reviewer is None and content.submitted_at


@pytest.mark.django_db
def test_bulk_review_reports_each_item():
    reviewer = make_user("Reviewer")
    pending, done = make_content(), make_content(status="approved")
    results = bulk_review([pending.pk, done.pk, 999_999, pending.pk], "approve", by=reviewer)
    assert [(r.id, r.ok, r.code) for r in results] == [
        (pending.pk, True, None),
        (done.pk, False, "conflict"),
        (999_999, False, "not_found"),
    ]


@pytest.mark.django_db
def test_claims_block_others_until_they_expire(settings):
    from datetime import timedelta

    from django.utils import timezone

    alice, bob = make_user("Reviewer", username="alice"), make_user("Reviewer", username="bob")
    content = make_content()
    claim_content(content, by=alice)
    claim_content(content, by=alice)  # renewing your own claim is fine
    with pytest.raises(TransitionConflict, match="Being reviewed by alice"):
        claim_content(content, by=bob)
    Content.objects.filter(pk=content.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    claim_content(content, by=bob)
    release_claim(content, by=alice)  # not alice's any more: nothing happens
    content.refresh_from_db()
    assert content.claimed_by == bob
    release_claim(content, by=bob)
    content.refresh_from_db()
    assert content.claimed_by is None


@pytest.mark.django_db
def test_reviewing_clears_the_claim():
    alice = make_user("Reviewer")
    content = make_content()
    claim_content(content, by=alice)
    approve_content(content, by=alice)
    content.refresh_from_db()
    assert content.claimed_by is None and content.claim_expires_at is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_on_postgres_give_one_approval_and_one_delivery():
    advisor = make_advisor()
    content = make_content(advisor)
    reviewers = [make_user("Reviewer") for _ in range(6)]
    barrier = threading.Barrier(len(reviewers))
    outcomes: list[str] = []
    lock = threading.Lock()

    def approve(reviewer):
        try:
            copy = Content.objects.get(pk=content.pk)
            barrier.wait(timeout=10)
            approve_content(copy, by=reviewer)
            result = "approved"
        except TransitionConflict:
            result = "conflict"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=approve, args=(r,)) for r in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["approved"] + ["conflict"] * 5
    assert Delivery.objects.filter(content=content).count() == 1
    assert AuditEntry.objects.filter(action="content.approve", target_id=str(content.pk)).count() == 1
    content.refresh_from_db()
    assert content.version == 2
