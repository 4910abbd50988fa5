"""The review queue: a page of cards, the review actions, and the partials the page swaps in.

Every action is a plain POST form that redirects back with a message, so the page works
without JavaScript; review.js sends the same forms with fetch and `Accept:
application/json` and gets JSON back (and HTML partials for cards it inserts). The views
hold no rules: they call advisors.services and map its errors — a missing note is a form
error (400), someone acting first is a conflict (409) shown on the card, an item failing
compliance is approved only through an Admin's override reason (the service decides).
Every view that shows cards renders them with render_cards (Jinja2, see TEMPLATES).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.forms.boundfield import BoundField
from django.forms.renderers import Jinja2 as Jinja2FormRenderer
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template import engines
from django.template.backends.utils import csrf_input
from django.template.defaultfilters import floatformat
from django.template.response import TemplateResponse
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import dateformat, timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_POST

from opscenter.models import AuditSource
from opscenter.services import DomainError

from .. import services
from ..models import ARN_VALIDATOR, Advisor, ComplianceVerdict, Content, ContentKind, ContentStatus
from ..services import (
    InvalidAction,
    QueueFilters,
    approve_content,
    bulk_review,
    claim_content,
    content_event,
    encode_cursor,
    queue_counters,
    reject_content,
    release_claim,
    request_revision,
    review_queue,
)
from .highlight import Finding, clean_findings, mark_findings

VIEW = "advisors.view_content"
REVIEW = "advisors.review_content"
PAGE_SIZE = 10  # a phone shows two or three cards; "Load more" fetches the next ten
MAX_IDS = 200  # per bulk action or partial request
MAX_ITEM_MESSAGES = 5  # per-item messages after a bulk action without the script; the summary counts all
COMPLIANCE_BLOCKED = "compliance_blocked"  # the code of a result the service skipped for failing compliance

# action -> (service, what the reviewer did, in words)
ACTIONS = {
    "approve": (approve_content, "approved"),
    "reject": (reject_content, "rejected"),
    "request_revision": (request_revision, "sent back for revision"),
}
# What a status says about an item that has left the queue.
LEFT_QUEUE = {
    ContentStatus.APPROVED: "approved",
    ContentStatus.SCHEDULED: "approved",
    ContentStatus.DELIVERED: "approved",
    ContentStatus.FAILED: "approved",
    ContentStatus.REJECTED: "rejected",
    ContentStatus.NEEDS_REVISION: "sent back for revision",
    ContentStatus.DRAFT: "moved back to draft",
}
GENERIC_REASONS = (
    "Add the standard risk disclaimer.",
    "Show the advisor's ARN.",
    "Too similar to a recent post; pick another angle.",
)


# --- helpers -----------------------------------------------------------------------------------


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _wants_json(request: HttpRequest) -> bool:
    """Whether the page's script sent this (it asks for JSON; a browser form asks for HTML)."""
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


@lru_cache(maxsize=64)
def _reversed(name: str, prefix: str, urlconf: str) -> str:
    return reverse(name, urlconf=urlconf)


def _url(name: str) -> str:
    """Return reverse(name) for a URL without arguments, reversed once per process.

    The page needs its own address half a dozen times and the endpoints its script calls;
    they only change with the URL prefix and the URLconf, which are part of the key.
    """
    return _reversed(name, get_script_prefix(), str(get_urlconf() or settings.ROOT_URLCONF))


def _queue_url() -> str:
    return _url("admin:review_queue")


def _safe_next(request: HttpRequest) -> str:
    """The queue page the form came from (with its filters), never a foreign address."""
    target = request.POST.get("next") or ""
    if (
        target
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        and urlsplit(target).path == _queue_url()
    ):
        return target
    return _queue_url()


def compact_age(delta: timedelta) -> str:
    """Return an age as a reviewer reads it at a glance: 40 s, 12 min, 3 h 5 min, 2 d 4 h."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _who(username: str | None, request: HttpRequest) -> str:
    if not username:
        return ""
    return "you" if username == request.user.get_username() else username


def handled_message(content: Content, request: HttpRequest) -> str:
    """Say, in a few words, what became of an item that is no longer pending."""
    what = LEFT_QUEUE.get(content.status, f"no longer pending ({content.get_status_display().lower()})")
    who = _who(content.reviewer.get_username() if content.reviewer_id else None, request)
    return f"Already {what}{f' by {who}' if who else ''}."


# --- filters -----------------------------------------------------------------------------------


class QueueFilterForm(forms.Form):
    # Django's Jinja2 copies of its widget templates: the same HTML in half the time (the
    # four fields took as long as a card).
    default_renderer = Jinja2FormRenderer()

    cycle_date = forms.DateField(required=False, label="Cycle date", widget=forms.DateInput(attrs={"type": "date"}))
    advisor = forms.CharField(
        required=False,
        max_length=200,
        label="Advisor",
        widget=forms.TextInput(
            attrs={"placeholder": "Name, ARN or id", "autocomplete": "off", "enterkeyhint": "search"}
        ),
    )
    verdict = forms.ChoiceField(
        required=False, label="Verdict", choices=[("", "Any verdict"), *ComplianceVerdict.choices]
    )
    kind = forms.ChoiceField(required=False, label="Kind", choices=[("", "Any kind"), *ContentKind.choices])

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.advisor_obj: Advisor | None = None
        self.advisor_choices: list[Advisor] = []

    def clean_advisor(self) -> str:
        """Find the one advisor meant by an id, an ARN or (part of) a name."""
        text = self.cleaned_data["advisor"].strip()
        if not text:
            return ""
        if text.isdigit():
            self.advisor_obj = Advisor.objects.filter(pk=int(text)).first()
            if self.advisor_obj is None:
                raise forms.ValidationError(f"There is no advisor with id {text}.")
            return text
        arn = text.upper()
        if re.match(ARN_VALIDATOR.regex, arn):
            self.advisor_obj = Advisor.objects.filter(arn=arn).first()
            if self.advisor_obj is None:
                raise forms.ValidationError(f"There is no advisor with ARN {arn}.")
            return text
        exact = list(Advisor.objects.filter(name__iexact=text)[:2])
        matches = exact if len(exact) == 1 else list(Advisor.objects.filter(name__icontains=text).order_by("name")[:9])
        if not matches:
            raise forms.ValidationError(f"No advisor's name contains “{text}”.")
        if len(matches) > 1:
            self.advisor_choices = matches[:8]
            more = " (showing the first 8)" if len(matches) > 8 else ""
            raise forms.ValidationError(f"Several advisors match “{text}”{more}: pick one.")
        self.advisor_obj = matches[0]
        return text

    def queue_filters(self) -> QueueFilters:
        data = self.cleaned_data
        return QueueFilters(
            cycle_date=data.get("cycle_date"),
            advisor_id=self.advisor_obj.pk if self.advisor_obj else None,
            verdict=data.get("verdict") or None,
            kind=data.get("kind") or None,
        )


_WIDGET_CACHE_SIZE = 256
_widget_html: dict[tuple, SafeString] = {}


def filter_widgets(form: QueueFilterForm) -> list[tuple[BoundField, SafeString]]:
    """Return each filter field with its widget's HTML, rendered once per distinct input.

    A widget's HTML is made of the field (fixed), what was typed or picked (the raw value),
    whether the field has an error (aria-invalid) and the language (the choices' labels):
    the key holds all of them. Building the four widgets cost about as much as a card.
    """
    language = translation.get_language()
    widgets = []
    for bound in form:
        raw = form.data.get(bound.html_name) if form.is_bound else None
        key = (bound.name, form.is_bound, raw, bool(bound.errors), language)
        html = _widget_html.get(key)
        if html is None:
            html = _widget_html[key] = SafeString(str(bound))
            if len(_widget_html) > _WIDGET_CACHE_SIZE:
                _widget_html.pop(next(iter(_widget_html)), None)  # the oldest entry
        widgets.append((bound, html))
    return widgets


def _filter_query(params: QueryDict, **extra: str) -> str:
    """The filters of `params` as a query string (no cursor), plus `extra`."""
    query = QueryDict(mutable=True)
    for name in QueueFilterForm.base_fields:
        if params.get(name):
            query[name] = params[name]
    for name, value in extra.items():
        query[name] = value
    return query.urlencode()


def _matches(content: Content, filters: QueueFilters) -> bool:
    return (
        (not filters.cycle_date or content.cycle_date == filters.cycle_date)
        and (not filters.advisor_id or content.advisor_id == filters.advisor_id)
        and (not filters.verdict or content.compliance_verdict == filters.verdict)
        and (not filters.kind or content.kind == filters.kind)
    )


# --- cards -------------------------------------------------------------------------------------


@dataclass
class Card:
    """What one queue card shows."""

    content: Content
    body_html: str
    findings: list[Finding]
    cursor: str
    age: str
    claimed_by: str  # someone else's live claim, or ""
    claim_expires_at: datetime | None
    reasons: list[str]
    error: str = ""
    note: str = ""
    note_error: str = ""
    note_action: str = ""
    # Fails compliance: approving it takes an Admin's written override reason.
    blocked: bool = False
    override_reason: str = ""
    override_error: str = ""
    fatigue_level: str = ""
    urls: dict[str, str] = field(default_factory=dict)
    # Numbers and dates as the card prints them, formatted once here (see build_card).
    text: dict[str, str] = field(default_factory=dict)


_CARD_URL_NAMES = ("card", "claim", "release", "image", "approve", "reject", "request_revision")
_PK_SENTINEL = "2147483647"
# The verdict badge: (icon, words) per verdict; anything else reads as not checked.
VERDICT_BADGES = {
    ComplianceVerdict.PASS: ("verified", "Compliant"),
    ComplianceVerdict.WARN: ("warning", "Warnings"),
    ComplianceVerdict.FAIL: ("gpp_bad", "Fails rules"),
}
UNCHECKED_BADGE = ("help", "Not checked")
# get_kind_display() without its per-call rebuilding of the choices.
KIND_LABELS = dict(ContentKind.choices)
FATIGUE_WORDS = {"high": "repetitive", "medium": "familiar"}


@cache
def _card_url_templates() -> dict[str, str]:
    # Reversing seven URLs per card is a measurable share of the page: reverse each once
    # per process with a sentinel id and fill the real id in per card.
    return {name: reverse(f"admin:review_{name}", args=[int(_PK_SENTINEL)]) for name in _CARD_URL_NAMES}


def card_urls(pk: int) -> dict[str, str]:
    """Return the card's action URLs by name (approve, reject, claim, …)."""
    return {name: url.replace(f"/{_PK_SENTINEL}/", f"/{pk}/") for name, url in _card_url_templates().items()}


@lru_cache(maxsize=512)
def _day_label(day: date, language: str) -> str:
    """Return |date:"j M Y" of a day in a language (a page's cards share a few days)."""
    return dateformat.format(day, "j M Y")


@lru_cache(maxsize=1024)
def _score_label(score: float, language: str) -> str:
    """Return |floatformat:2 of a score in a language (Decimal arithmetic, so worth keeping)."""
    return floatformat(score, 2)


def _card_text(content: Content, claim_expires_at: datetime | None, fatigue_level: str) -> dict[str, str]:
    """Return the card's numbers and dates as text, exactly as the template's filters would print them.

    The template engine localizes every number it prints and every date filter looks up
    its format and the language again; for about twenty numbers and four dates a card,
    ten cards a page, that was a large share of the page. Formatted here once instead,
    with the functions those filters call (dates in the active time zone, as |date does).
    """
    score = content.fatigue_score
    submitted = timezone.template_localtime(content.submitted_at) if content.submitted_at else None
    language = translation.get_language()
    icon, verdict = VERDICT_BADGES.get(content.compliance_verdict, UNCHECKED_BADGE)
    return {
        "id": str(content.pk),
        "version": str(content.version),
        "advisor_id": str(content.advisor_id),
        "run_id": "" if content.generating_run_id is None else str(content.generating_run_id),
        "revision_of_id": "" if content.revision_of_id is None else str(content.revision_of_id),
        "cycle_date": content.cycle_date.isoformat() if content.cycle_date else "",  # |date:'Y-m-d'
        "cycle_label": _day_label(content.cycle_date, language) if content.cycle_date else "",
        "submitted_iso": content.submitted_at.isoformat() if content.submitted_at else "",
        # |date:'j M Y H:i' is the day's label and then H:i, hours and minutes with two digits.
        "submitted_label": f"{_day_label(submitted.date(), language)} {submitted:%H:%M}" if submitted else "",
        "claim_expires": claim_expires_at.isoformat() if claim_expires_at else "",
        "kind": str(KIND_LABELS.get(content.kind, content.kind)),
        "verdict_icon": icon,
        "verdict": verdict,
        "fatigue": "" if score is None else _score_label(score, language),
        "fatigue_value": "" if score is None else f"{score:.2f}",
        "fatigue_word": FATIGUE_WORDS.get(fatigue_level, "fresh"),
    }


def build_card(content: Content, request: HttpRequest, *, now: datetime | None = None, **state: str) -> Card:
    """Prepare one content item for the card template."""
    now = now or timezone.now()
    findings = clean_findings(content.compliance_findings, len(content.body or ""))
    claimed_by = ""
    if (
        content.claimed_by_id
        and content.claimed_by_id != request.user.pk
        and content.claim_expires_at
        and content.claim_expires_at > now
    ):
        claimed_by = content.claimed_by.get_username()
    reasons = [f"Fix: {f.message}" for f in findings if f.message][:3]
    reasons += GENERIC_REASONS[: max(0, 5 - len(reasons))]
    score = content.fatigue_score
    # The same bands as the card's <meter low=0.4 high=0.7>: up to 0.4 fresh, above 0.7 repetitive.
    fatigue_level = "" if score is None else ("high" if score > 0.7 else "medium" if score > 0.4 else "low")
    claim_expires_at = content.claim_expires_at if claimed_by else None
    return Card(
        content=content,
        body_html=mark_findings(content.body, findings, id_prefix=f"f-{content.pk}"),
        findings=findings,
        cursor=encode_cursor(content) if content.submitted_at else "",
        age=compact_age(now - content.submitted_at) if content.submitted_at else "",
        claimed_by=claimed_by,
        claim_expires_at=claim_expires_at,
        reasons=reasons,
        blocked=content.compliance_verdict == ComplianceVerdict.FAIL,
        fatigue_level=fatigue_level,
        urls=card_urls(content.pk),
        text=_card_text(content, claim_expires_at, fatigue_level),
        **state,
    )


def may_override(request: HttpRequest) -> bool:
    """Return whether the signed-in user may approve an item that fails compliance (asked once per request)."""
    allowed = getattr(request, "_may_override_compliance", None)
    if allowed is None:
        # The rule is the service's; without it (an older services module) nobody may
        # override, which is what approve_content without override_reason enforces too.
        rule = getattr(services, "is_admin", None)
        allowed = request._may_override_compliance = bool(rule and rule(request.user))
    return allowed


def render_cards(request: HttpRequest, cards: list[Card], next_url: str) -> SafeString:
    """Return the cards as HTML: the one way every view renders them (page, load more, one card).

    Jinja2, not Django templates: the card is a dozen conditionals and some fifty values,
    ten times a page, and the Django engine's per-variable lookup made it a third of the
    page's time. The CSRF field is made once and shared by every form on every card.
    """
    if not cards:
        return SafeString("")
    can_review = request.user.has_perm(REVIEW)
    context = {
        "cards": cards,
        "can_review": can_review,
        "can_override": can_review and any(card.blocked for card in cards) and may_override(request),
        "next_url": next_url,
        "csrf_input": csrf_input(request) if can_review else "",
    }
    return SafeString(engines["jinja2"].get_template("advisors/_review_cards.html").render(context))


def _with_cards_html(request: HttpRequest, context: dict[str, Any]) -> dict[str, Any]:
    """Add the page's cards, rendered, to a page context whose cards and next_url are final."""
    return {**context, "cards_html": render_cards(request, context["cards"], context["next_url"])}


# --- the page ----------------------------------------------------------------------------------


def _page_context(request: HttpRequest, params: QueryDict, *, card_state: dict[int, dict] | None = None) -> dict:
    """Everything the queue page shows for these query parameters."""
    form = QueueFilterForm(params or None)
    valid = form.is_valid() if params else True
    filters = form.queue_filters() if params and valid else QueueFilters()
    after = params.get("after") or None
    cards, next_cursor, page_error = [], None, ""
    if valid:
        try:
            page = review_queue(filters, after=after, limit=PAGE_SIZE)
        except InvalidAction as exc:
            page_error = str(exc)
        else:
            now = timezone.now()
            state = card_state or {}
            cards = [build_card(c, request, now=now, **state.get(c.pk, {})) for c in page.items]
            next_cursor = page.next_cursor
    this_page = f"{_queue_url()}?{params.urlencode()}" if params else _queue_url()
    active = sum(1 for name in ("cycle_date", "advisor", "verdict", "kind") if params.get(name))
    return {
        "title": "Review queue",
        "form": form,
        "filter_widgets": filter_widgets(form),
        "filters": filters,
        "filters_valid": valid,
        "advisor": form.advisor_obj,
        "advisor_choices": form.advisor_choices,
        "advisor_choice_links": [
            (a, f"{_queue_url()}?{_filter_query(params, advisor=str(a.pk))}") for a in form.advisor_choices
        ],
        "active_filters": active,
        "cards": cards,
        "page_error": page_error,
        "after": after,
        "next_cursor": next_cursor,
        "next_page_url": f"{_queue_url()}?{_filter_query(params, after=next_cursor)}" if next_cursor else "",
        "first_page_url": f"{_queue_url()}?{_filter_query(params)}",
        "clear_url": _queue_url(),
        "queue_url": _queue_url(),
        "items_url": _url("admin:review_items"),
        "state_url": _url("admin:review_state"),
        "counters_url": _url("admin:review_counters"),
        "bulk_url": _url("admin:review_bulk"),
        "filter_query": _filter_query(params),
        "this_page": this_page,
        "next_url": this_page,
        "can_review": request.user.has_perm(REVIEW),
        "claim_seconds": settings.REVIEW_CLAIM_SECONDS,
        "server_now": timezone.now().isoformat(),
        # Counting the queue costs a scan of every pending row: the live feed's snapshot
        # brings the counters to the script, so the page only counts when asked to.
        "counters": _counters() if params.get("counts") else None,
        "counts_url": f"{_queue_url()}?{_filter_query(params, counts='1')}",
    }


def _counters() -> dict[str, Any]:
    counters = queue_counters()
    oldest = counters.get("oldest_submitted_at")
    age = compact_age(timezone.now() - datetime.fromisoformat(oldest)) if oldest else ""
    return {**counters, "oldest_age": age}


@require_GET
def queue(request: HttpRequest) -> TemplateResponse:
    """The review queue page: pending items, oldest first, one keyset page at a time."""
    _require(request, VIEW)
    context = _with_cards_html(request, _page_context(request, request.GET))
    return TemplateResponse(request, "advisors/review_queue.html", {**admin.site.each_context(request), **context})


@require_GET
def items(request: HttpRequest) -> JsonResponse:
    """Cards as HTML for the script: the next page (`after`) or named items (`ids`)."""
    _require(request, VIEW)
    form = QueueFilterForm(request.GET)
    if not form.is_valid():
        return JsonResponse(
            {
                "ok": False,
                "error": "Those filters are not valid.",
                "errors": {k: [str(e) for e in v] for k, v in form.errors.items()},
            },
            status=400,
        )
    filters = form.queue_filters()
    next_url = request.GET.get("next") or f"{_queue_url()}?{_filter_query(request.GET)}"
    now = timezone.now()
    if "ids" in request.GET:
        ids = _ids(request.GET.get("ids", ""))
        rows = (
            Content.objects.filter(pk__in=ids, status=ContentStatus.PENDING_REVIEW)
            .select_related("advisor", "claimed_by")
            .order_by("submitted_at", "id")
        )
        contents = [c for c in rows if _matches(c, filters)]
        next_cursor = None
    else:
        try:
            page = review_queue(filters, after=request.GET.get("after") or None, limit=PAGE_SIZE)
        except InvalidAction as exc:
            return JsonResponse({"ok": False, "error": str(exc)}, status=400)
        contents, next_cursor = page.items, page.next_cursor
    cards = [build_card(c, request, now=now) for c in contents]
    return JsonResponse(
        {
            "ok": True,
            "html": render_cards(request, cards, next_url),
            "ids": [c.pk for c in contents],
            "next_cursor": next_cursor,
            "next_page_url": f"{_queue_url()}?{_filter_query(request.GET, after=next_cursor)}" if next_cursor else "",
        }
    )


def _ids(raw: str | list[str]) -> list[int]:
    values = raw if isinstance(raw, list) else raw.split(",")
    ids = []
    for value in values:
        value = str(value).strip()
        if value.isdigit():
            ids.append(int(value))
    return list(dict.fromkeys(ids))[:MAX_IDS]


@require_GET
def card(request: HttpRequest, pk: int) -> HttpResponse:
    """One card as HTML, to refresh it in place; 409 once the item has left the queue."""
    _require(request, VIEW)
    content = get_object_or_404(Content.objects.select_related("advisor", "claimed_by", "reviewer"), pk=pk)
    if content.status != ContentStatus.PENDING_REVIEW:
        return JsonResponse(
            {"ok": False, "code": "conflict", "error": handled_message(content, request), **content_event(content)},
            status=409,
        )
    next_url = request.GET.get("next") or _queue_url()
    return HttpResponse(render_cards(request, [build_card(content, request)], next_url))


@require_GET
def state(request: HttpRequest) -> JsonResponse:
    """The live state of named items (as the `content` topic describes them), to catch up."""
    _require(request, VIEW)
    rows = Content.objects.filter(pk__in=_ids(request.GET.get("ids", ""))).select_related("reviewer", "claimed_by")
    return JsonResponse({"items": [content_event(c) for c in rows]})


@require_GET
def counters(request: HttpRequest) -> JsonResponse:
    """Pending items and the age of the oldest."""
    _require(request, VIEW)
    return JsonResponse(_counters())


@require_GET
def image(request: HttpRequest, pk: int) -> FileResponse:
    """The item's image, to those who may see the queue (media is not public)."""
    _require(request, VIEW)
    content = get_object_or_404(Content, pk=pk)
    if not content.image:
        raise Http404("This item has no image.")
    try:
        handle = content.image.open("rb")
    except FileNotFoundError:
        raise Http404("The image file is missing.") from None
    response = FileResponse(handle)
    response["Cache-Control"] = "private, max-age=3600"
    return response


# --- actions -----------------------------------------------------------------------------------


def _version(request: HttpRequest) -> int | None:
    raw = request.POST.get("version", "")
    return int(raw) if raw.isdigit() else None


def _compliance_refusals() -> tuple[type[DomainError], ...]:
    """Return the service's refusals of an approval on compliance grounds (those it defines)."""
    names = ("ComplianceBlocked", "OverrideNotAllowed")
    return tuple(error for error in (getattr(services, name, None) for name in names) if error is not None)


@require_POST
def act(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Approve, reject or send back one item, for the button that was pressed."""
    _require(request, REVIEW)
    service, done = ACTIONS[action]
    content = get_object_or_404(Content.objects.select_related("advisor"), pk=pk)
    note = request.POST.get("note", "")
    # Only the override form sends a reason; the service decides whether it is enough.
    overriding = action == "approve" and "override_reason" in request.POST
    extra = {"override_reason": request.POST.get("override_reason", "")} if overriding else {}
    try:
        service(
            content,
            by=request.user,
            note=note,
            expected_version=_version(request),
            source=AuditSource.UI,
            request=request,
            **extra,
        )
    except InvalidAction as exc:
        return _note_error(request, content, action, note, str(exc))
    except _compliance_refusals() as exc:
        return _compliance_refused(request, content, exc, extra.get("override_reason"))
    except DomainError as exc:
        return _conflict(request, content, str(exc))
    if _wants_json(request):
        return JsonResponse({"ok": True, **content_event(content), "message": f"{done.capitalize()}."})
    overridden = overriding and content.compliance_verdict == ComplianceVerdict.FAIL
    how = " despite failing compliance (your reason is in the audit trail)" if overridden else ""
    messages.success(request, f"{done.capitalize()} “{content.title}” ({content.advisor.name}){how}.")
    return redirect(_safe_next(request))


def _refused_on_card(request: HttpRequest, content: Content, state: dict[str, str], status: int) -> HttpResponse:
    """Show the queue page the form came from again, this card in `state` (its error, the text kept)."""
    params = QueryDict(urlsplit(_safe_next(request)).query)
    context = _page_context(request, params, card_state={content.pk: state})
    if not any(c.content.pk == content.pk for c in context["cards"]) and content.status == ContentStatus.PENDING_REVIEW:
        # The item is not on that page (another page of the queue): show it first.
        context["cards"].insert(0, build_card(content, request, **state))
    context = _with_cards_html(request, {**context, "next_url": _safe_next(request)})
    return TemplateResponse(
        request, "advisors/review_queue.html", {**admin.site.each_context(request), **context}, status=status
    )


def _note_error(request: HttpRequest, content: Content, action: str, note: str, error: str) -> HttpResponse:
    """A refused form: the card shows the error under the note, the note kept."""
    if _wants_json(request):
        return JsonResponse({"ok": False, "code": "invalid", "field": "note", "error": error}, status=400)
    return _refused_on_card(request, content, {"note": note, "note_error": error, "note_action": action}, 400)


def _compliance_refused(
    request: HttpRequest, content: Content, error: DomainError, override_reason: str | None
) -> HttpResponse:
    """The item fails compliance and this approval may not override it: say why, on the card.

    From the override form the message goes under the reason (the reason kept); from a plain
    Approve (a page from before the verdict changed) it is the card's error. The item stays.
    """
    message, status = str(error), getattr(error, "status", 409)
    field = {} if override_reason is None else {"field": "override_reason"}
    if _wants_json(request):
        code = getattr(error, "code", "compliance_blocked")
        return JsonResponse({"ok": False, "code": code, "error": message, "stale": False, **field}, status=status)
    if override_reason is None:
        state = {"error": message}
    else:
        state = {"override_reason": override_reason, "override_error": message}
    return _refused_on_card(request, content, state, status)


def _conflict(request: HttpRequest, content: Content, error: str) -> HttpResponse:
    """Someone acted first (or the item changed): say so, plainly."""
    current = Content.objects.select_related("reviewer", "claimed_by").get(pk=content.pk)
    stale = current.status == ContentStatus.PENDING_REVIEW
    message = error if stale else handled_message(current, request)
    if _wants_json(request):
        return JsonResponse(
            {"ok": False, "code": "conflict", "error": message, "stale": stale, **content_event(current)}, status=409
        )
    messages.warning(request, f"“{current.title}”: {message}")
    return redirect(_safe_next(request))


@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    """Apply one review action (approve, unless told otherwise) to the selected items."""
    _require(request, REVIEW)
    ids = _ids(request.POST.getlist("ids"))
    action = request.POST.get("action") or "approve"
    if not ids:
        return _bulk_refused(request, "Select at least one item first.")
    try:
        results = bulk_review(
            ids, action, by=request.user, note=request.POST.get("note", ""), source=AuditSource.UI, request=request
        )
    except InvalidAction as exc:
        return _bulk_refused(request, str(exc))
    failed = [r for r in results if not r.ok]
    # Items failing compliance are skipped by the service, each with its own message.
    blocked = [r for r in failed if r.code == COMPLIANCE_BLOCKED]
    conflicts = len(failed) - len(blocked)
    done = len(results) - len(failed)
    _, verb = ACTIONS[action]
    summary = f"{verb.capitalize()} {done} item{'s' if done != 1 else ''}."
    if conflicts:
        summary += f" {conflicts} could not be: someone acted on {'it' if conflicts == 1 else 'them'} first."
    if blocked:
        summary += f" {len(blocked)} skipped: {'it fails' if len(blocked) == 1 else 'they fail'} compliance."
    if _wants_json(request):
        current = Content.objects.select_related("reviewer").in_bulk([r.id for r in failed])
        return JsonResponse(
            {
                "ok": not failed,
                "message": summary,
                "done": done,
                "results": [
                    {
                        "id": r.id,
                        "ok": r.ok,
                        "status": r.status,
                        "code": r.code,
                        "error": handled_message(current[r.id], request)
                        if r.id in current and current[r.id].status != ContentStatus.PENDING_REVIEW
                        else r.error,
                    }
                    for r in results
                ],
            }
        )
    (messages.warning if failed else messages.success)(request, summary)
    for result in blocked[:MAX_ITEM_MESSAGES]:
        messages.warning(request, result.error or "It fails compliance.")
    return redirect(_safe_next(request))


def _bulk_refused(request: HttpRequest, error: str) -> HttpResponse:
    if _wants_json(request):
        return JsonResponse({"ok": False, "code": "invalid", "error": error}, status=400)
    messages.error(request, error)
    return redirect(_safe_next(request))


@require_POST
def claim(request: HttpRequest, pk: int) -> HttpResponse:
    """Claim (or renew the claim on) an item while the reviewer has it open."""
    _require(request, REVIEW)
    content = get_object_or_404(Content, pk=pk)
    try:
        content = claim_content(content, by=request.user)
    except DomainError as exc:
        current = Content.objects.select_related("reviewer", "claimed_by").get(pk=pk)
        error = str(exc) if current.status == ContentStatus.PENDING_REVIEW else handled_message(current, request)
        if _wants_json(request):
            return JsonResponse({"ok": False, "code": "conflict", "error": error, **content_event(current)}, status=409)
        messages.warning(request, error)
        return redirect(_safe_next(request))
    if _wants_json(request):
        return JsonResponse({"ok": True, "seconds": settings.REVIEW_CLAIM_SECONDS, **content_event(content)})
    return redirect(_safe_next(request))


@require_POST
def release(request: HttpRequest, pk: int) -> HttpResponse:
    """Drop the reviewer's own claim (moving on, leaving the page)."""
    _require(request, REVIEW)
    content = get_object_or_404(Content, pk=pk)
    release_claim(content, by=request.user)
    if _wants_json(request):
        return JsonResponse({"ok": True})
    return redirect(_safe_next(request))
