"""The review queue page: cards, filters, keyset pages, actions, permissions, claims, highlights."""

from __future__ import annotations

import datetime
import html
import random
import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.files.base import ContentFile
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from advisors.models import Content, ContentStatus, Delivery
from advisors.review.highlight import clean_findings, highlight
from advisors.review.views import PAGE_SIZE, build_card, compact_age
from advisors.services import approve_content, claim_content
from tests.factories import make_advisor, make_content, make_user

QUEUE = "/admin/review/"
NOTE = "Add the standard risk disclaimer at the end."
JSON = {"HTTP_ACCEPT": "application/json"}


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


@pytest.fixture
def reviewer(db):
    return make_user("Reviewer", username="alice")


@pytest.fixture
def other_reviewer(db):
    return make_user("Reviewer", username="bob")


def signed_in(client, user):
    client.force_login(user)
    return client


def oldest_first(n: int, **fields) -> list[Content]:
    """n pending items submitted a minute apart, oldest first."""
    start = timezone.now() - timedelta(hours=5)
    return [make_content(submitted_at=start + timedelta(minutes=i), **fields) for i in range(n)]


def card_ids(response) -> list[int]:
    return [card.content.pk for card in response.context["cards"]]


# --- the page ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_url_is_in_the_admin_namespace_and_the_sidebar_links_to_it(client, reviewer):
    assert reverse("admin:review_queue") == QUEUE
    page = signed_in(client, reviewer).get("/admin/")
    assert f'href="{QUEUE}"' in page.content.decode()
    assert client.get("/admin/section/review/")["Location"] == QUEUE


@pytest.mark.django_db
def test_queue_needs_sign_in(client):
    response = client.get(QUEUE)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_staff_without_the_view_permission_is_refused(client):
    response = signed_in(client, make_user(is_staff=True)).get(QUEUE)
    assert response.status_code == 403


@pytest.mark.django_db
def test_card_shows_advisor_title_body_verdict_fatigue_run_cycle_kind_and_age(client, reviewer):
    advisor = make_advisor(name="Anita Deshpande", arn="ARN-104522")
    make_content(
        advisor,
        title="Stay the course",
        kind="image",
        compliance_verdict="warn",
        fatigue_score=0.81,
        generating_run_id=4812,
        cycle_date=datetime.date(2026, 11, 21),
        submitted_at=timezone.now() - timedelta(hours=3, minutes=12),
    )
    text = signed_in(client, reviewer).get(QUEUE).content.decode()
    for expected in [
        "Anita Deshpande",
        "ARN-104522",
        "Stay the course",
        "Warnings",
        "0.81",
        "repetitive",
        "Run #4812",
        "21 Nov 2026",
        "Image card",
        "3 h 12 min",
    ]:
        assert expected in text, expected


# What the card used to compute with template filters, now formatted once in build_card.
FILTERED = Template(
    "{{ c.pk }}|{{ c.version }}|{{ c.advisor_id }}|{{ c.generating_run_id|default_if_none:'' }}|"
    "{{ c.cycle_date|date:'Y-m-d' }}|{{ c.cycle_date|date:'j M Y' }}|{{ c.submitted_at.isoformat }}|"
    "{{ c.submitted_at|date:'j M Y H:i' }}|{{ c.fatigue_score|floatformat:2 }}|"
    "{{ c.fatigue_score|stringformat:'.2f' }}"
)


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
@pytest.mark.parametrize("score", [0.0, 0.4, 0.405, 0.7, 0.705, 1.0])
def test_card_text_prints_numbers_and_dates_as_the_template_filters_did(rf, reviewer, zone, score):
    item = make_content(
        fatigue_score=score,
        generating_run_id=123456,
        cycle_date=datetime.date(2026, 1, 5),
        # Late evening UTC: the next day in India, the same day in Newfoundland.
        submitted_at=datetime.datetime(2026, 1, 4, 21, 7, 9, 123456, tzinfo=datetime.UTC),
    )
    request = rf.get(QUEUE)
    request.user = reviewer
    with timezone.override(zone):
        text = build_card(item, request).text
        expected = FILTERED.render(Context({"c": item}))
    keys = "id version advisor_id run_id cycle_date cycle_label submitted_iso submitted_label fatigue fatigue_value"
    printed = "|".join(text[key] for key in keys.split())
    assert printed == expected


@pytest.mark.django_db
def test_sidebar_marks_the_queue_active_only_on_the_queue_page(client, reviewer):
    # The sidebar's links are built once per process: marking one page active must not stick.
    active_links = re.compile(r'<a href="([^"]+)" class="[^"]*\bactive"')
    signed_in(client, reviewer)
    assert active_links.findall(client.get(QUEUE).content.decode()) == [QUEUE]
    assert active_links.findall(client.get("/admin/alerts/").content.decode()) == ["/admin/alerts/"]
    assert active_links.findall(client.get(QUEUE).content.decode()) == [QUEUE]


@pytest.mark.django_db
def test_findings_are_highlighted_in_the_body_and_listed_with_their_messages(client, reviewer):
    body = "Guaranteed returns of 15% <b>every</b> year."
    make_content(
        body=body,
        compliance_verdict="fail",
        compliance_findings=[
            {
                "rule": "banned-claim",
                "severity": "high",
                "message": "Promises <guaranteed> returns.",
                "start": 0,
                "end": 18,
            },
            {"rule": "disclaimer", "severity": "high", "message": "The risk disclaimer is missing."},
        ],
    )
    text = signed_in(client, reviewer).get(QUEUE).content.decode()
    assert re.search(r'<mark class="rq-mark rq-level-high"[^>]*>Guaranteed returns</mark>', text)
    assert "&lt;b&gt;every&lt;/b&gt;" in text and "<b>every</b>" not in text
    assert "Promises &lt;guaranteed&gt; returns." in text
    assert "The risk disclaimer is missing." in text
    assert "Fails rules" in text


@pytest.mark.django_db
def test_viewer_and_operator_see_the_queue_read_only(client):
    make_content(title="Read me")
    for role in ("Viewer", "Operator"):
        response = signed_in(client, make_user(role)).get(QUEUE)
        text = response.content.decode()
        assert response.status_code == 200
        assert "Read me" in text
        assert not response.context["can_review"]
        assert "/approve/" not in text and "/reject/" not in text and 'id="rq-bulk"' not in text
        assert "approving needs the Reviewer role" in text


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Reviewer", "Admin"])
def test_reviewers_and_admins_get_the_action_forms(client, role):
    content = make_content()
    text = signed_in(client, make_user(role)).get(QUEUE).content.decode()
    for name in ("review_approve", "review_reject", "review_request_revision"):
        assert url(name, content.pk) in text
    assert 'id="rq-bulk"' in text
    assert 'name="csrfmiddlewaretoken"' in text


@pytest.mark.django_db
def test_page_does_not_count_the_queue_unless_asked(client, reviewer):
    oldest_first(2)
    page = signed_in(client, reviewer).get(QUEUE)
    assert page.context["counters"] is None  # the live snapshot brings them to the script
    counted = client.get(QUEUE, {"counts": "1"})
    assert counted.context["counters"]["pending"] == 2
    assert counted.context["counters"]["oldest_age"] == "5 h"


@pytest.mark.django_db
def test_counters_endpoint_gives_pending_and_oldest(client, reviewer):
    items = oldest_first(3)
    make_content(status="approved")
    data = signed_in(client, reviewer).get(url("review_counters")).json()
    assert data["pending"] == 3
    assert data["oldest_submitted_at"] == items[0].submitted_at.isoformat()


@pytest.mark.django_db
def test_empty_queue_says_all_caught_up(client, reviewer):
    text = signed_in(client, reviewer).get(QUEUE).content.decode()
    assert "All caught up" in text


# --- filters -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_filters_by_cycle_date_verdict_and_kind(client, reviewer):
    day = datetime.date(2026, 11, 20)
    wanted = make_content(cycle_date=day, compliance_verdict="warn", kind="image")
    make_content(cycle_date=day, compliance_verdict="pass", kind="image")
    make_content(cycle_date=day, compliance_verdict="warn", kind="post")
    make_content(compliance_verdict="warn", kind="image")
    signed_in(client, reviewer)
    response = client.get(QUEUE, {"cycle_date": "2026-11-20", "verdict": "warn", "kind": "image"})
    assert card_ids(response) == [wanted.pk]
    assert response.context["active_filters"] == 3


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["id", "arn", "arn-lower", "name", "name-part"])
def test_advisor_filter_takes_an_id_an_arn_or_a_name(client, reviewer, query):
    advisor = make_advisor(name="Kavya Iyer", arn="ARN-3310045")
    mine = make_content(advisor)
    make_content(make_advisor(name="Rohit Mehta"))
    text = {
        "id": str(advisor.pk),
        "arn": "ARN-3310045",
        "arn-lower": "arn-3310045",
        "name": "kavya iyer",
        "name-part": "Iyer",
    }[query]
    response = signed_in(client, reviewer).get(QUEUE, {"advisor": text})
    assert card_ids(response) == [mine.pk]
    assert response.context["advisor"] == advisor


@pytest.mark.django_db
def test_an_ambiguous_advisor_name_offers_the_matches(client, reviewer):
    first = make_advisor(name="Anita Sharma")
    make_advisor(name="Rakesh Sharma")
    make_content(first)
    response = signed_in(client, reviewer).get(QUEUE, {"advisor": "sharma"})
    text = response.content.decode()
    assert "Several advisors match" in text
    assert card_ids(response) == []
    assert f"advisor={first.pk}" in text
    assert "Fix the filters above" in text


@pytest.mark.django_db
def test_unknown_advisor_and_a_bad_date_are_form_errors(client, reviewer):
    make_content()
    signed_in(client, reviewer)
    assert "There is no advisor with id 999999" in client.get(QUEUE, {"advisor": "999999"}).content.decode()
    assert "No advisor&#x27;s name contains" in client.get(QUEUE, {"advisor": "Nobody"}).content.decode()
    response = client.get(QUEUE, {"cycle_date": "22/11/2026"})
    assert response.status_code == 200
    assert response.context["form"].errors["cycle_date"]
    assert card_ids(response) == []


# --- keyset pages ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_queue_pages_with_a_cursor_oldest_first_without_overlap(client, reviewer):
    items = oldest_first(PAGE_SIZE + 5)
    signed_in(client, reviewer)
    first = client.get(QUEUE)
    assert card_ids(first) == [c.pk for c in items[:PAGE_SIZE]]
    next_url = first.context["next_page_url"]
    assert "after=" in next_url
    assert f'href="{html.escape(next_url)}"' in first.content.decode()

    second = client.get(next_url)
    assert card_ids(second) == [c.pk for c in items[PAGE_SIZE:]]
    assert second.context["next_page_url"] == ""
    assert "Back to the oldest" in second.content.decode()


@pytest.mark.django_db
def test_next_page_keeps_the_filters(client, reviewer):
    oldest_first(PAGE_SIZE + 2, compliance_verdict="warn")
    oldest_first(3, compliance_verdict="pass")
    signed_in(client, reviewer)
    first = client.get(QUEUE, {"verdict": "warn"})
    second = client.get(first.context["next_page_url"])
    assert len(card_ids(second)) == 2
    assert all(card.content.compliance_verdict == "warn" for card in second.context["cards"])


@pytest.mark.django_db
def test_page_runs_no_count_query(client, reviewer):
    oldest_first(PAGE_SIZE + 1)
    signed_in(client, reviewer)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert client.get(QUEUE).status_code == 200
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.django_db
def test_load_more_returns_the_next_cards_as_html(client, reviewer):
    items = oldest_first(PAGE_SIZE + 3)
    signed_in(client, reviewer)
    cursor = client.get(QUEUE).context["next_cursor"]
    data = client.get(url("review_items"), {"after": cursor}, **JSON).json()
    assert data["ids"] == [c.pk for c in items[PAGE_SIZE:]]
    assert data["next_cursor"] is None
    assert f'id="card-{items[-1].pk}"' in data["html"]


@pytest.mark.django_db
def test_new_items_by_id_come_back_only_if_pending_and_matching(client, reviewer):
    wanted = make_content(kind="post")
    other_kind = make_content(kind="image")
    gone = make_content(status="approved")
    signed_in(client, reviewer)
    ids = f"{wanted.pk},{other_kind.pk},{gone.pk},nonsense"
    data = client.get(url("review_items"), {"ids": ids, "kind": "post"}, **JSON).json()
    assert data["ids"] == [wanted.pk]


@pytest.mark.django_db
def test_a_broken_cursor_says_so(client, reviewer):
    make_content()
    response = signed_in(client, reviewer).get(QUEUE, {"after": "not-a-cursor"})
    assert response.status_code == 200
    assert "That page link is broken" in response.content.decode()
    assert client.get(url("review_items"), {"after": "nope"}, **JSON).status_code == 400
    bad_filter = client.get(url("review_items"), {"cycle_date": "soon"}, **JSON)
    assert bad_filter.status_code == 400
    assert bad_filter.json()["errors"]["cycle_date"]


# --- actions -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_approve_without_script_redirects_back_with_a_message_and_queues_delivery(client, reviewer):
    content = make_content(title="SIP basics")
    signed_in(client, reviewer)
    response = client.post(url("review_approve", content.pk), {"version": 1, "next": f"{QUEUE}?verdict=pending"})
    assert response.status_code == 302
    assert response["Location"] == f"{QUEUE}?verdict=pending"
    content.refresh_from_db()
    assert content.status == ContentStatus.APPROVED
    assert content.reviewer == reviewer
    assert Delivery.objects.filter(content=content).count() == 1
    assert "Approved “SIP basics”" in [str(m) for m in get_messages(response.wsgi_request)][0]


@pytest.mark.django_db
def test_approve_from_the_script_answers_json(client, reviewer):
    content = make_content()
    response = signed_in(client, reviewer).post(url("review_approve", content.pk), {"version": 1}, **JSON)
    assert response.status_code == 200
    assert response.json()["ok"] and response.json()["status"] == "approved"


@pytest.mark.django_db
def test_a_foreign_next_address_is_ignored(client, reviewer):
    content = make_content()
    response = signed_in(client, reviewer).post(url("review_approve", content.pk), {"next": "https://evil.example/"})
    assert response["Location"] == QUEUE


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "status"), [("review_reject", "rejected"), ("review_request_revision", "needs_revision")]
)
def test_reject_and_request_revision_with_a_note(client, reviewer, name, status):
    content = make_content()
    response = signed_in(client, reviewer).post(url(name, content.pk), {"note": NOTE, "version": 1})
    assert response.status_code == 302
    content.refresh_from_db()
    assert content.status == status
    assert content.review_note == NOTE


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["review_reject", "review_request_revision"])
def test_a_missing_note_is_a_form_error_on_the_card(client, reviewer, name):
    content = make_content(title="Needs a note")
    response = signed_in(client, reviewer).post(url(name, content.pk), {"note": "   ", "next": QUEUE})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Write a note: the writer needs to know what to change." in text
    assert 'aria-invalid="true"' in text
    assert "rq-note is-open" in text
    content.refresh_from_db()
    assert content.status == ContentStatus.PENDING_REVIEW

    data = client.post(url(name, content.pk), {"note": ""}, **JSON)
    assert data.status_code == 400
    assert data.json()["field"] == "note"


@pytest.mark.django_db
def test_a_form_error_for_an_item_on_another_page_still_shows_that_card(client, reviewer):
    items = oldest_first(PAGE_SIZE + 1)
    late = items[-1]
    response = signed_in(client, reviewer).post(url("review_reject", late.pk), {"note": "", "next": QUEUE})
    assert response.status_code == 400
    assert card_ids(response)[0] == late.pk


@pytest.mark.django_db
def test_second_reviewer_gets_a_conflict_naming_who_acted_first(client, reviewer, other_reviewer):
    content = make_content()
    approve_content(content, by=other_reviewer)
    signed_in(client, reviewer)

    response = client.post(url("review_reject", content.pk), {"note": NOTE, "version": 1}, **JSON)
    assert response.status_code == 409
    assert response.json()["error"] == "Already approved by bob."
    assert response.json()["stale"] is False

    response = client.post(url("review_approve", content.pk), {"next": QUEUE})
    assert response.status_code == 302
    assert "Already approved by bob." in [str(m) for m in get_messages(response.wsgi_request)][0]


@pytest.mark.django_db
def test_a_stale_version_is_a_conflict_that_keeps_the_item(client, reviewer):
    content = make_content()
    Content.objects.filter(pk=content.pk).update(version=3)
    response = signed_in(client, reviewer).post(url("review_approve", content.pk), {"version": 1}, **JSON)
    assert response.status_code == 409
    assert response.json()["stale"] is True
    assert "changed since you loaded it" in response.json()["error"]
    content.refresh_from_db()
    assert content.status == ContentStatus.PENDING_REVIEW


ACTION_ENDPOINTS = [
    ("review_approve", {}),
    ("review_reject", {"note": NOTE}),
    ("review_request_revision", {"note": NOTE}),
    ("review_claim", {}),
    ("review_release", {}),
]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Viewer", "Operator"])
@pytest.mark.parametrize(("name", "data"), ACTION_ENDPOINTS, ids=[n for n, _ in ACTION_ENDPOINTS])
def test_viewers_and_operators_get_403_from_every_action(client, role, name, data):
    content = make_content()
    response = signed_in(client, make_user(role)).post(url(name, content.pk), data)
    assert response.status_code == 403
    content.refresh_from_db()
    assert content.status == ContentStatus.PENDING_REVIEW and content.claimed_by is None


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Viewer", "Operator"])
def test_viewers_and_operators_get_403_from_bulk(client, role):
    content = make_content()
    response = signed_in(client, make_user(role)).post(url("review_bulk"), {"ids": [content.pk]})
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Reviewer", "Admin"])
@pytest.mark.parametrize(("name", "data"), ACTION_ENDPOINTS[:3], ids=[n for n, _ in ACTION_ENDPOINTS[:3]])
def test_reviewers_and_admins_may_act(client, role, name, data):
    content = make_content()
    response = signed_in(client, make_user(role)).post(url(name, content.pk), data, **JSON)
    assert response.status_code == 200


@pytest.mark.django_db
def test_a_user_with_both_operator_and_reviewer_roles_may_approve(client):
    user = make_user("Operator")
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name="Reviewer"))
    content = make_content()
    assert signed_in(client, user).post(url("review_approve", content.pk), **JSON).status_code == 200


@pytest.mark.django_db
def test_actions_refuse_get_and_need_the_csrf_token(reviewer):
    from django.test import Client

    content = make_content()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(reviewer)
    assert strict.get(url("review_approve", content.pk)).status_code == 405
    assert strict.post(url("review_approve", content.pk)).status_code == 403
    content.refresh_from_db()
    assert content.status == ContentStatus.PENDING_REVIEW


@pytest.mark.django_db
def test_bulk_approve_reports_each_item(client, reviewer, other_reviewer):
    fresh = oldest_first(2)
    taken = make_content()
    approve_content(taken, by=other_reviewer)
    signed_in(client, reviewer)
    response = client.post(url("review_bulk"), {"ids": [fresh[0].pk, fresh[1].pk, taken.pk]}, **JSON)
    data = response.json()
    assert response.status_code == 200
    assert data["done"] == 2 and not data["ok"]
    by_id = {r["id"]: r for r in data["results"]}
    assert by_id[fresh[0].pk]["ok"] and by_id[fresh[1].pk]["ok"]
    assert by_id[taken.pk]["error"] == "Already approved by bob."
    assert Content.objects.filter(pk__in=[c.pk for c in fresh], status="approved").count() == 2


@pytest.mark.django_db
def test_bulk_approve_without_script_and_with_nothing_selected(client, reviewer):
    items = oldest_first(2)
    signed_in(client, reviewer)
    response = client.post(url("review_bulk"), {"ids": [c.pk for c in items], "next": QUEUE})
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Approved 2 items."]
    empty = client.post(url("review_bulk"), {"ids": []}, **JSON)
    assert empty.status_code == 400
    assert empty.json()["error"] == "Select at least one item first."


# --- partials ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_card_partial_for_a_pending_item_and_409_once_handled(client, reviewer, other_reviewer):
    content = make_content(title="Fresh card")
    signed_in(client, reviewer)
    response = client.get(url("review_card", content.pk))
    assert response.status_code == 200
    assert f'id="card-{content.pk}"' in response.content.decode()
    approve_content(content, by=other_reviewer)
    gone = client.get(url("review_card", content.pk))
    assert gone.status_code == 409
    assert gone.json()["error"] == "Already approved by bob."


@pytest.mark.django_db
def test_state_endpoint_describes_items_like_the_live_topic(client, reviewer, other_reviewer):
    content = make_content()
    approve_content(content, by=other_reviewer)
    data = signed_in(client, reviewer).get(url("review_state"), {"ids": f"{content.pk},x"}).json()
    assert data["items"][0]["id"] == content.pk
    assert data["items"][0]["status"] == "approved"
    assert data["items"][0]["reviewer"] == "bob"


@pytest.mark.django_db
def test_image_is_served_to_those_who_may_see_the_queue(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    content = make_content(kind="image")
    content.image.save("card.png", ContentFile(b"\x89PNG fake"), save=True)
    text_only = make_content()
    signed_in(client, make_user("Viewer"))
    response = client.get(url("review_image", content.pk))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\x89PNG fake"
    assert client.get(url("review_image", text_only.pk)).status_code == 404
    page = client.get(QUEUE).content.decode()
    assert f'src="{url("review_image", content.pk)}"' in page


# --- claims ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_claim_shows_being_reviewed_by_to_others_but_not_to_the_claimer(client, reviewer, other_reviewer):
    content = make_content()
    signed_in(client, reviewer)
    response = client.post(url("review_claim", content.pk), **JSON)
    assert response.status_code == 200
    assert response.json()["claimed_by"] == "alice"

    own = client.get(QUEUE)
    assert own.context["cards"][0].claimed_by == ""
    client.force_login(other_reviewer)
    theirs = client.get(QUEUE)
    assert theirs.context["cards"][0].claimed_by == "alice"
    assert re.search(r"Being reviewed by <strong data-claim-name>alice</strong>", theirs.content.decode())


@pytest.mark.django_db
def test_a_live_claim_refuses_another_reviewer_and_renewing_extends_it(client, reviewer, other_reviewer):
    content = make_content()
    claim_content(content, by=reviewer)
    first_expiry = Content.objects.get(pk=content.pk).claim_expires_at

    response = signed_in(client, other_reviewer).post(url("review_claim", content.pk), **JSON)
    assert response.status_code == 409
    assert response.json()["error"] == "Being reviewed by alice."
    assert response.json()["claimed_by"] == "alice"

    client.force_login(reviewer)
    assert client.post(url("review_claim", content.pk), **JSON).status_code == 200
    assert Content.objects.get(pk=content.pk).claim_expires_at >= first_expiry


@pytest.mark.django_db
def test_release_drops_only_your_own_claim(client, reviewer, other_reviewer):
    content = make_content()
    claim_content(content, by=reviewer)
    signed_in(client, other_reviewer).post(url("review_release", content.pk), **JSON)
    assert Content.objects.get(pk=content.pk).claimed_by == reviewer
    client.force_login(reviewer)
    assert client.post(url("review_release", content.pk), **JSON).json() == {"ok": True}
    assert Content.objects.get(pk=content.pk).claimed_by is None


@pytest.mark.django_db
def test_a_claim_expires_by_itself(client, reviewer, other_reviewer, settings):
    settings.REVIEW_CLAIM_SECONDS = 30
    content = make_content()
    claim_content(content, by=reviewer)
    signed_in(client, other_reviewer)
    assert client.get(QUEUE).context["cards"][0].claimed_by == "alice"

    # Half a minute later nobody renewed it: it no longer shows, and bob may take it.
    Content.objects.filter(pk=content.pk).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    assert client.get(QUEUE).context["cards"][0].claimed_by == ""
    assert client.post(url("review_claim", content.pk), **JSON).json()["claimed_by"] == "bob"


@pytest.mark.django_db
def test_claiming_a_handled_item_says_who_handled_it(client, reviewer, other_reviewer):
    content = make_content()
    approve_content(content, by=other_reviewer)
    response = signed_in(client, reviewer).post(url("review_claim", content.pk), **JSON)
    assert response.status_code == 409
    assert response.json()["error"] == "Already approved by bob."


@pytest.mark.django_db
def test_acting_on_an_item_drops_its_claim(client, reviewer):
    content = make_content()
    claim_content(content, by=reviewer)
    signed_in(client, reviewer).post(url("review_approve", content.pk), **JSON)
    content.refresh_from_db()
    assert content.claimed_by is None and content.claim_expires_at is None


# --- ages --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "label"),
    [
        (-5, "0 s"),
        (42, "42 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3 * 3600 + 720, "3 h 12 min"),
        (86400, "1 d"),
        (2 * 86400 + 4 * 3600 + 59, "2 d 4 h"),
    ],
)
def test_compact_age(seconds, label):
    assert compact_age(timedelta(seconds=seconds)) == label


# --- highlighting findings --------------------------------------------------------------------


def visible_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def test_highlight_marks_the_finding_and_escapes_everything():
    body = 'Get <script>alert("x")</script> guaranteed returns & more'
    start = body.index("guaranteed")
    out = str(
        highlight(
            body, [{"rule": "r", "severity": "high", "message": 'Say "no" <b>', "start": start, "end": start + 18}]
        )
    )
    assert "<script>" not in out
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in out
    assert (
        '<mark class="rq-mark rq-level-high" data-findings="0" title="Say &quot;no&quot; &lt;b&gt;">guaranteed returns</mark>'
        in out
    )
    assert '<span class="rq-anchor" id="finding-0"></span><mark' in out
    assert visible_text(out) == body


def test_overlapping_findings_give_adjacent_marks_never_nested():
    body = "0123456789ABCDEF"
    out = str(
        highlight(
            body,
            [
                {"rule": "a", "severity": "low", "message": "a", "start": 2, "end": 10},
                {"rule": "b", "severity": "high", "message": "b", "start": 6, "end": 14},
            ],
            id_prefix="f-7",
        )
    )
    marks = re.findall(r'<mark class="rq-mark rq-level-(\w+)" data-findings="([\d ]+)"[^>]*>([^<]*)</mark>', out)
    assert marks == [("low", "0", "2345"), ("high", "0 1", "6789"), ("high", "1", "ABCD")]
    assert out.count("<mark") == out.count("</mark>") == 3
    assert 'id="f-7-0"' in out and 'id="f-7-1"' in out
    assert visible_text(out) == body


def test_findings_starting_at_the_same_place_each_get_an_anchor():
    out = str(
        highlight(
            "abcdef",
            [
                {"rule": "a", "message": "a", "start": 0, "end": 3},
                {"rule": "b", "message": "b", "start": 0, "end": 6},
            ],
        )
    )
    assert 'id="finding-0"' in out and 'id="finding-1"' in out


@pytest.mark.parametrize(
    ("start", "end", "marked"),
    [
        (-5, 3, "abc"),  # clamped at the start
        (4, 999, "ef"),  # clamped at the end
        ("2", "4", "cd"),  # numbers written as text
        (1.0, 3.0, "bc"),  # whole floats
        (5, 2, None),  # reversed
        (3, 3, None),  # empty
        (50, 60, None),  # wholly outside
        ("a", 2, None),  # not a number
        (None, None, None),  # missing
        (True, 3, None),  # a boolean is no offset
        (1.5, 3, None),  # a fraction is no offset
        ("--1", 3, None),
    ],
)
def test_offsets_that_are_out_of_range_or_invalid_never_break_the_text(start, end, marked):
    body = "abcdef"
    finding = {"rule": "r", "severity": "medium", "message": "m", "start": start, "end": end}
    out = str(highlight(body, [finding]))
    assert visible_text(out) == body
    found = re.findall(r"<mark[^>]*>([^<]*)</mark>", out)
    assert found == ([marked] if marked else [])
    (cleaned,) = clean_findings([finding], len(body))
    assert cleaned.located == bool(marked)  # listed either way


def test_junk_findings_are_skipped_and_a_non_list_is_no_findings():
    assert str(highlight("a<b", "not a list")) == "a&lt;b"
    assert str(highlight("a<b", None)) == "a&lt;b"
    junk = ["text", 3, None, {}, {"start": 0, "end": 1}, {"rule": "kept", "start": 0, "end": 1}]
    cleaned = clean_findings(junk, 3)
    assert [f.rule for f in cleaned] == ["kept"]
    assert cleaned[0].level == "medium" and cleaned[0].severity == "unrated"


@pytest.mark.parametrize(
    ("severity", "level"),
    [("HIGH", "high"), ("critical", "high"), ("warn", "medium"), ("low", "low"), ("odd", "medium")],
)
def test_severity_words_map_to_three_levels(severity, level):
    (finding,) = clean_findings([{"rule": "r", "severity": severity, "start": 0, "end": 1}], 1)
    assert finding.level == level


def test_many_random_findings_always_keep_the_text_and_balanced_marks():
    rng = random.Random(20261122)
    alphabet = "ab <>&\"'\n₹ई"
    for _ in range(500):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        findings = [
            {
                "rule": "r",
                "severity": rng.choice(["high", "medium", "low", "x"]),
                "message": rng.choice(["<m>", "m&m"]),
                "start": rng.randint(-10, 50),
                "end": rng.randint(-10, 50),
            }
            for _ in range(rng.randint(0, 6))
        ]
        out = str(highlight(body, findings))
        assert visible_text(out) == body
        assert out.count("<mark") == out.count("</mark>")
        assert not re.search(r"<mark[^>]*>[^<]*<mark", out)  # never nested
        assert "<" not in re.sub(r"</?(mark|span)[^>]*>", "", out)  # no other tags get through
