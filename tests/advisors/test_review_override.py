"""The compliance override on the review queue: who may approve an item that fails compliance, and how.

A Reviewer sees Approve switched off on such an item; an Admin sees "Override & approve",
which opens a reason field (the note form's pattern) and posts `override_reason` to the
approve endpoint. The rule itself is advisors.services.approve_content's; these tests hold
the page and the views to it, with and without the page's script.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from advisors.models import Content, ContentStatus
from opscenter.models import AuditEntry
from tests.factories import make_content, make_user

QUEUE = "/admin/review/"
JSON = {"HTTP_ACCEPT": "application/json"}
REASON = "Checked with the compliance officer: the fund's returns are contractually guaranteed."
FINDINGS = [
    {"rule": "banned-claim", "severity": "high", "message": "Promises guaranteed returns.", "start": 0, "end": 10},
    {"rule": "disclaimer", "severity": "high", "message": "The risk disclaimer is missing."},
]


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def signed_in(client, user):
    client.force_login(user)
    return client


def failing(**fields) -> Content:
    return make_content(compliance_verdict="fail", compliance_findings=FINDINGS, **fields)


def card_html(page: str, pk: int) -> str:
    """The HTML of one card on a page."""
    match = re.search(rf'<article class="rq-card[^"]*" id="card-{pk}".*?</article>', page, re.S)
    assert match, f"card {pk} is not on the page"
    return match.group(0)


@pytest.fixture
def reviewer(db):
    return make_user("Reviewer", username="alice")


@pytest.fixture
def admin_user(db):
    return make_user("Admin", username="asha")


def status_of(content: Content) -> str:
    content.refresh_from_db()
    return content.status


# --- what the card shows ------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_reviewer_sees_approve_switched_off_on_an_item_that_fails_compliance(client, reviewer):
    bad = failing(title="Guaranteed growth")
    good = make_content(compliance_verdict="pass")
    page = signed_in(client, reviewer).get(QUEUE).content.decode()

    card = card_html(page, bad.pk)
    assert re.search(r'<button type="button" class="rq-btn rq-btn-approve" disabled data-blocked', card)
    assert "Fails compliance — only an Admin can override" in card
    # No approve form on it at all: neither the button nor the "a" key has anything to send.
    assert 'class="rq-approve"' not in card and url("review_approve", bad.pk) not in card
    assert "override_reason" not in card and "Override &amp; approve" not in card
    # Reject and revise stay available.
    assert url("review_reject", bad.pk) in card and url("review_request_revision", bad.pk) in card
    # Items that pass keep their ordinary Approve.
    assert f'action="{url("review_approve", good.pk)}" class="rq-approve"' in card_html(page, good.pk)


@pytest.mark.django_db
def test_an_admin_sees_override_and_approve_which_opens_a_required_reason_form(client, admin_user):
    bad = failing()
    card = card_html(signed_in(client, admin_user).get(QUEUE).content.decode(), bad.pk)

    assert f'href="#override-form-{bad.pk}" class="rq-btn rq-btn-override" data-open-override' in card
    assert "Override &amp; approve" in card
    form = re.search(rf'<form method="post" action="([^"]+)" id="override-form-{bad.pk}".*?</form>', card, re.S)
    assert form and form.group(1) == url("review_approve", bad.pk)
    assert 'name="override_reason"' in form.group(0) and "required" in form.group(0)
    assert 'name="csrfmiddlewaretoken"' in form.group(0) and 'name="version" value="1"' in form.group(0)
    assert 'class="rq-approve"' not in card  # no one-click approval, for an Admin either
    assert "only an Admin can override" not in card


@pytest.mark.django_db
def test_an_admin_sees_no_override_control_on_items_that_pass(client, admin_user):
    item = make_content(compliance_verdict="warn")
    card = card_html(signed_in(client, admin_user).get(QUEUE).content.decode(), item.pk)
    assert "override" not in card.lower()
    assert 'class="rq-approve"' in card


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Reviewer", "Admin"])
def test_load_more_and_a_single_card_show_the_same_control_as_the_page(client, role):
    bad = failing()
    signed_in(client, make_user(role))
    page_card = card_html(client.get(QUEUE).content.decode(), bad.pk)
    # As the page's script asks for them: with the page's own address to come back to.
    more = client.get(url("review_items"), {"ids": str(bad.pk), "next": QUEUE}, **JSON).json()["html"]
    one = client.get(url("review_card", bad.pk), {"next": QUEUE}).content.decode()

    def without_token(html: str) -> str:
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)

    assert without_token(card_html(more, bad.pk)) == without_token(page_card)
    assert without_token(card_html(one, bad.pk)) == without_token(page_card)


# --- approving with the page's script (JSON) -----------------------------------------------------


@pytest.mark.django_db
def test_a_reviewer_approving_an_item_that_fails_compliance_gets_the_reason_and_the_item_stays(client, reviewer):
    bad = failing(title="Guaranteed growth")
    response = signed_in(client, reviewer).post(url("review_approve", bad.pk), {"version": 1}, **JSON)

    assert response.status_code == 409
    data = response.json()
    assert data["code"] == "compliance_blocked" and data["stale"] is False and not data["ok"]
    assert "“Guaranteed growth” fails compliance (2 findings)" in data["error"]
    assert "Only an Admin can approve it" in data["error"]
    assert "field" not in data  # a plain Approve: the message goes on the card
    assert status_of(bad) == ContentStatus.PENDING_REVIEW


@pytest.mark.django_db
def test_an_admin_override_without_a_reason_is_refused_under_the_reason_field(client, admin_user):
    bad = failing()
    response = signed_in(client, admin_user).post(
        url("review_approve", bad.pk), {"version": 1, "override_reason": "   "}, **JSON
    )
    assert response.status_code == 409
    assert response.json()["code"] == "compliance_blocked"
    assert response.json()["field"] == "override_reason"
    assert "give an override reason" in response.json()["error"]
    assert status_of(bad) == ContentStatus.PENDING_REVIEW


@pytest.mark.django_db
def test_an_admin_override_with_a_reason_approves_and_is_audited_with_the_reason(client, admin_user):
    bad = failing()
    response = signed_in(client, admin_user).post(
        url("review_approve", bad.pk), {"version": 1, "override_reason": REASON}, **JSON
    )
    assert response.status_code == 200
    assert response.json()["ok"] and response.json()["status"] == "approved"
    assert status_of(bad) == ContentStatus.APPROVED
    override = AuditEntry.objects.get(action="content.compliance_override", target_id=str(bad.pk))
    assert override.changes["reason"] == REASON
    assert override.actor == admin_user


@pytest.mark.django_db
def test_a_reviewer_who_sends_an_override_reason_anyway_is_refused(client, reviewer):
    bad = failing()
    response = signed_in(client, reviewer).post(
        url("review_approve", bad.pk), {"version": 1, "override_reason": REASON}, **JSON
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert response.json()["field"] == "override_reason"
    assert "Only an Admin" in response.json()["error"]
    assert status_of(bad) == ContentStatus.PENDING_REVIEW
    assert not AuditEntry.objects.filter(action="content.compliance_override").exists()


# --- without the script (plain forms) ---------------------------------------------------------


@pytest.mark.django_db
def test_without_script_a_refused_approval_is_shown_on_the_card(client, reviewer):
    bad = failing()
    response = signed_in(client, reviewer).post(url("review_approve", bad.pk), {"version": 1, "next": QUEUE})

    assert response.status_code == 409
    card = card_html(response.content.decode(), bad.pk)
    error = re.search(r'<p class="rq-error" role="alert" data-card-error>([^<]*)</p>', card)
    assert error and "fails compliance" in error.group(1)
    assert 'class="rq-card is-conflict"' in card
    assert status_of(bad) == ContentStatus.PENDING_REVIEW


@pytest.mark.django_db
def test_without_script_an_empty_reason_reopens_the_form_with_the_error_and_keeps_the_text(client, admin_user):
    bad = failing()
    response = signed_in(client, admin_user).post(
        url("review_approve", bad.pk), {"version": 1, "override_reason": "  ", "next": QUEUE}
    )
    assert response.status_code == 409
    card = card_html(response.content.decode(), bad.pk)
    assert f'id="override-form-{bad.pk}"\n    class="rq-note rq-override is-open"' in card
    assert 'aria-invalid="true" autofocus>  </textarea>' in card
    error = re.search(rf'<p class="rq-field-error" id="override-{bad.pk}-error" data-note-error>([^<]+)</p>', card)
    assert error and "give an override reason" in error.group(1)
    assert status_of(bad) == ContentStatus.PENDING_REVIEW


@pytest.mark.django_db
def test_without_script_an_override_with_a_reason_approves_and_says_so(client, admin_user):
    bad = failing(title="Guaranteed growth")
    response = signed_in(client, admin_user).post(
        url("review_approve", bad.pk), {"version": 1, "override_reason": REASON, "next": QUEUE}
    )
    assert response.status_code == 302 and response["Location"] == QUEUE
    message = [str(m) for m in get_messages(response.wsgi_request)][0]
    assert message.startswith("Approved “Guaranteed growth”") and "despite failing compliance" in message
    assert status_of(bad) == ContentStatus.APPROVED


# --- bulk approval ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Reviewer", "Admin"])
def test_bulk_approve_skips_items_that_fail_compliance_each_with_its_message(client, role):
    good, bad = make_content(compliance_verdict="pass"), failing(title="Guaranteed growth")
    response = signed_in(client, make_user(role)).post(url("review_bulk"), {"ids": [good.pk, bad.pk]}, **JSON)

    data = response.json()
    assert response.status_code == 200
    assert data["done"] == 1 and not data["ok"]
    assert data["message"] == "Approved 1 item. 1 skipped: it fails compliance."
    by_id = {r["id"]: r for r in data["results"]}
    assert by_id[good.pk]["ok"]
    assert not by_id[bad.pk]["ok"] and by_id[bad.pk]["code"] == "compliance_blocked"
    assert "“Guaranteed growth” fails compliance" in by_id[bad.pk]["error"]
    assert status_of(good) == ContentStatus.APPROVED and status_of(bad) == ContentStatus.PENDING_REVIEW


@pytest.mark.django_db
def test_bulk_approve_without_script_reports_the_skipped_items_one_by_one(client, reviewer):
    good, bad = make_content(compliance_verdict="pass"), failing(title="Guaranteed growth")
    other_bad = failing(title="Double your money")
    response = signed_in(client, reviewer).post(
        url("review_bulk"), {"ids": [good.pk, bad.pk, other_bad.pk], "next": QUEUE}
    )
    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert texts[0] == "Approved 1 item. 2 skipped: they fail compliance."
    assert len(texts) == 3
    assert "“Guaranteed growth” fails compliance" in texts[1]
    assert "“Double your money” fails compliance" in texts[2]
