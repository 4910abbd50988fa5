"""How the review queue page is rendered fast without changing what it shows.

The cards are Jinja2 (templates/jinja2/advisors/), rendered by one function for every view
that shows them; the filter form uses Django's Jinja2 widget templates; Unfold's sidebar
links are rendered once per distinct state ({% cached_sidebar %}, opscenter.navigation);
Unfold's settings are merged once (OpsAdminSite._get_config). Each must show exactly
what the slow path showed, and never a stale or someone else's sidebar.
"""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import Group
from django.forms.renderers import DjangoTemplates
from django.http import QueryDict
from django.test import Client
from django.urls import reverse
from django.utils import translation

from advisors.models import ContentStatus
from advisors.review.views import QueueFilterForm, build_card, filter_widgets, render_cards
from opscenter import navigation
from tests.factories import make_advisor, make_content, make_user

QUEUE = "/admin/review/"
JSON = {"HTTP_ACCEPT": "application/json"}
HOSTILE = """<script>alert("x")</script> & 'quotes'"""
UNFOLD_APP_LIST = re.compile(r"site-packages/unfold/templates/unfold/helpers/app_list\.html$")


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


def signed_in(client, user):
    client.force_login(user)
    return client


def sidebar(page: str) -> str:
    """The sidebar links of a page (Unfold's app_list.html output)."""
    match = re.search(r'<div id="nav-sidebar-apps".*?</ol>\s*</div>\s*</div>', page, re.S)
    assert match, "no sidebar links on the page"
    return match.group(0)


def sidebar_titles(page: str) -> list[str]:
    return [t.strip() for t in re.findall(r"<span>([^<]+)</span>\s*</a>", sidebar(page))]


def active_links(page: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" class="[^"]*\bactive"', page)


def unfold_app_list_renders(response) -> int:
    """How many times Unfold's own app_list.html was rendered for this response."""
    return sum(1 for t in response.templates if t.origin and UNFOLD_APP_LIST.search(str(t.origin.name)))


@pytest.fixture(autouse=True)
def _empty_sidebar_cache():
    navigation.clear_sidebar_cache()
    yield
    navigation.clear_sidebar_cache()


@pytest.fixture
def reviewer(db):
    return make_user("Reviewer", username="alice")


# --- the cards -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cards_escape_every_piece_of_text_from_the_database(client, reviewer):
    advisor = make_advisor(name=f"Advisor {HOSTILE}")
    item = make_content(
        advisor,
        title=f"Title {HOSTILE}",
        topic=f"Topic {HOSTILE}",
        body=f"Body {HOSTILE}",
        compliance_verdict="warn",
        compliance_findings=[{"rule": f"rule {HOSTILE}", "severity": HOSTILE, "message": f"msg {HOSTILE}"}],
    )
    page = signed_in(client, reviewer).get(QUEUE).content.decode()
    card = re.search(rf'<article class="rq-card" id="card-{item.pk}".*?</article>', page, re.S).group(0)

    assert "<script>" not in card
    for text in ("Advisor", "Title", "Topic", "Body", "rule", "msg"):
        # The same text, entity-escaped (markupsafe spells quotes &#34; and &#39;).
        assert f"{text} &lt;script&gt;alert(" in card, text
    for attribute in ("data-title", "aria-label"):
        value = re.search(rf'{attribute}="([^"]*)"', card).group(1)
        assert "Title" in html.unescape(value) and HOSTILE in html.unescape(value), attribute


@pytest.mark.django_db
def test_the_page_load_more_and_one_card_render_the_same_card(client, reviewer):
    items = [make_content(compliance_verdict=v, fatigue_score=0.55) for v in ("pass", "warn", "fail", "")]
    signed_in(client, reviewer)
    page = client.get(QUEUE).content.decode()
    more = client.get(url("review_items"), {"ids": ",".join(str(i.pk) for i in items), "next": QUEUE}, **JSON)

    def cards(text: str) -> list[str]:
        text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", text)
        return re.findall(r'<article class="rq-card.*?</article>', text, re.S)

    assert len(cards(page)) == 4
    assert cards(more.json()["html"]) == cards(page)
    for item, on_page in zip(items, cards(page), strict=True):
        assert cards(client.get(url("review_card", item.pk), {"next": QUEUE}).content.decode()) == [on_page]


@pytest.mark.django_db
def test_the_csrf_token_on_the_cards_is_accepted_by_the_actions(reviewer):
    item = make_content()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(reviewer)
    page = strict.get(QUEUE).content.decode()
    card = re.search(rf'<article class="rq-card" id="card-{item.pk}".*?</article>', page, re.S).group(0)
    tokens = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', card))
    assert len(tokens) == 1, "every form on the cards carries the one token made for the request"

    response = strict.post(url("review_approve", item.pk), {"csrfmiddlewaretoken": tokens.pop(), "version": 1})
    assert response.status_code == 302
    item.refresh_from_db()
    assert item.status == ContentStatus.APPROVED


@pytest.mark.django_db
def test_read_only_cards_carry_no_forms_and_no_token(client):
    item = make_content(compliance_verdict="fail")
    page = signed_in(client, make_user("Viewer")).get(QUEUE).content.decode()
    card = re.search(rf'<article class="rq-card" id="card-{item.pk}".*?</article>', page, re.S).group(0)
    assert "<form" not in card and "csrfmiddlewaretoken" not in card
    assert "data-claim-url" not in card and "only an Admin" not in card


@pytest.mark.django_db
def test_render_cards_of_nothing_is_empty(rf, reviewer):
    request = rf.get(QUEUE)
    request.user = reviewer
    assert render_cards(request, [], QUEUE) == ""
    card = build_card(make_content(), request)
    assert render_cards(request, [card], QUEUE).count("<article") == 1


# --- the filter form -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    ["", "verdict=warn&kind=image&cycle_date=2026-11-22", "advisor=O'Brien \"&<x>&cycle_date=soon&verdict=nope"],
)
def test_the_filter_form_renders_the_same_fields_as_django_templates_did(query):
    def fields(form: QueueFilterForm) -> str:
        if form.is_bound:
            form.is_valid()
        text = "".join(str(field) for field in form)
        return html.unescape(re.sub(r"\s+", " ", text))  # whitespace and entity spelling aside

    data = QueryDict(query) if query else None
    assert fields(QueueFilterForm(data)) == fields(QueueFilterForm(data, renderer=DjangoTemplates()))


@pytest.mark.django_db
def test_filter_widgets_show_each_requests_own_values_and_errors(client, reviewer):
    make_advisor(name="Kavya Iyer")
    signed_in(client, reviewer)

    def advisor_input(query: dict) -> str:
        return re.search(r'<input type="text" name="advisor"[^>]*>', client.get(QUEUE, query).content.decode()).group(0)

    def selected_verdicts(query: dict) -> list[str]:
        page = client.get(QUEUE, query).content.decode()
        select = re.search(r'<select name="verdict".*?</select>', page, re.S).group(0)
        return re.findall(r'<option value="([^"]*)" selected>', select)

    for _ in range(2):  # the second round is served from the widget cache
        assert selected_verdicts({"verdict": "warn"}) == ["warn"]
        assert selected_verdicts({"verdict": "pass"}) == ["pass"]
        assert selected_verdicts({}) == [""]
        refused = advisor_input({"advisor": "Nobody"})
        assert 'value="Nobody"' in refused and 'aria-invalid="true"' in refused
        found = advisor_input({"advisor": "Kavya"})
        assert 'value="Kavya"' in found and "aria-invalid" not in found
        assert "value=" not in advisor_input({})

    # The same text, an error one moment and fine the next: the error is part of the key.
    assert 'aria-invalid="true"' in advisor_input({"advisor": "Mehta"})
    make_advisor(name="Rohit Mehta")
    assert "aria-invalid" not in advisor_input({"advisor": "Mehta"})


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "verdict=fail&advisor=x&cycle_date=2026-11-22", "cycle_date=bad&kind=zzz"])
def test_filter_widgets_are_the_fields_own_rendering(query):
    data = QueryDict(query) if query else None
    form = QueueFilterForm(data)
    if data:
        form.is_valid()
    for _ in range(2):
        assert [str(html) for _, html in filter_widgets(form)] == [str(field) for field in form]


# --- the sidebar ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sidebar_is_rendered_once_and_then_served_the_same(client, reviewer):
    signed_in(client, reviewer)
    first, second = client.get(QUEUE), client.get(QUEUE)
    assert unfold_app_list_renders(first) == 1
    assert unfold_app_list_renders(second) == 0
    assert sidebar(second.content.decode()) == sidebar(first.content.decode())
    assert active_links(second.content.decode()) == [QUEUE]


@pytest.mark.django_db
def test_a_permission_change_never_shows_a_stale_sidebar(client):
    user = make_user("Reviewer")
    signed_in(client, user)
    before = client.get(QUEUE).content.decode()
    assert "Users" not in sidebar_titles(before) and "Review queue" in sidebar_titles(before)

    user.groups.add(Group.objects.get(name="Admin"))  # Admins may see users and the audit trail
    granted = client.get(QUEUE)
    assert unfold_app_list_renders(granted) == 1
    assert {"Users", "Audit trail"} <= set(sidebar_titles(granted.content.decode()))

    user.groups.remove(Group.objects.get(name="Admin"))
    revoked = client.get(QUEUE)
    assert unfold_app_list_renders(revoked) == 0  # the first state again: its rendering is reused
    assert sidebar(revoked.content.decode()) == sidebar(before)


@pytest.mark.django_db
def test_another_pages_active_item_never_shows(client, reviewer):
    signed_in(client, reviewer)
    other = "/admin/alerts/"
    pages = [QUEUE, other, QUEUE, other, QUEUE]
    assert [active_links(client.get(path).content.decode()) for path in pages] == [[p] for p in pages]


@pytest.mark.django_db
def test_users_with_the_same_permissions_get_the_same_links_but_their_own_entries(client):
    first, second = make_user("Reviewer", username="alice"), make_user("Reviewer", username="bob")
    page_a = signed_in(client, first).get(QUEUE)
    page_b = signed_in(client, second).get(QUEUE)
    assert unfold_app_list_renders(page_b) == 1  # keyed by user too: no one is served another's entry
    assert sidebar(page_b.content.decode()) == sidebar(page_a.content.decode())
    assert "alice" not in page_b.content.decode()


@pytest.mark.django_db
def test_cached_sidebar_fragments_hold_no_csrf_token(client, reviewer):
    page = signed_in(client, reviewer).get(QUEUE).content.decode()
    tokens = set(re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page))
    assert tokens  # the page has forms with tokens (bulk approve, cards, sign out)
    fragments = list(navigation._sidebar_html.values())
    assert fragments
    for fragment in fragments:
        assert "csrfmiddlewaretoken" not in fragment
        assert not any(token in fragment for token in tokens)


@pytest.mark.django_db
def test_the_sidebar_key_follows_the_language_and_every_item(rf, reviewer):
    from django.contrib import admin
    from django.template import Context

    request = rf.get(QUEUE)
    request.user = reviewer
    context = Context({**admin.site.each_context(request), "request": request})
    key = navigation.sidebar_key(context)
    assert key == navigation.sidebar_key(Context({**admin.site.each_context(request), "request": request}))
    with translation.override("hi"):
        assert navigation.sidebar_key(context) != key
    context["sidebar_navigation"][0]["items"][0]["badge"] = "3"
    assert navigation.sidebar_key(context) != key


@pytest.mark.django_db
def test_with_all_applications_shown_nothing_is_cached(client, reviewer, settings):
    settings.UNFOLD = {**settings.UNFOLD, "SIDEBAR": {**settings.UNFOLD["SIDEBAR"], "show_all_applications": True}}
    signed_in(client, reviewer)
    assert unfold_app_list_renders(client.get(QUEUE)) == 1
    assert unfold_app_list_renders(client.get(QUEUE)) == 1
    assert not navigation._sidebar_html


# --- Unfold's settings ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_changed_unfold_setting_shows_on_the_next_page(client, reviewer, settings):
    signed_in(client, reviewer)
    assert "Advisor content pipeline" in client.get(QUEUE).content.decode()
    settings.UNFOLD = {**settings.UNFOLD, "SITE_SUBHEADER": "Night shift"}
    page = client.get(QUEUE).content.decode()
    assert "Night shift" in page and "Advisor content pipeline" not in page
