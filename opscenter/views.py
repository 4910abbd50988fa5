"""Pages of the opscenter app: the Overview, section pages, the user's API tokens."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.sites import site
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import __version__
from .forms import ApiTokenForm
from .models import ApiToken, AuditSource
from .readiness import ComponentStatus, beat_age_seconds, beat_max_age_seconds, check_database, check_redis
from .sections import get_section
from .services import DomainError, create_api_token, revoke_api_token
from .tasks import last_heartbeat


def _page(request, template: str, context: dict) -> TemplateResponse:
    return TemplateResponse(request, template, {**site.each_context(request), **context})


def overview_context(request) -> dict:
    """Component statuses for the first paint; the page then follows the system topic.

    The web process checks what it can reach itself (database, Redis, beat's tick). The
    worker is judged by the last heartbeat, which only a running worker publishes, so
    rendering the page never waits on a broadcast ping.
    """
    if not request.user.has_perm("opscenter.view_overview"):
        return {"can_view_overview": False}
    database = check_database()
    redis_status = check_redis()
    heartbeat = None
    if redis_status.ok:
        heartbeat = last_heartbeat()
        age = beat_age_seconds()
        beat = ComponentStatus(
            "beat",
            age is not None and age <= beat_max_age_seconds(),
            None,
            "has not ticked yet" if age is None else f"last tick {age:.0f}s ago",
        )
        worker = ComponentStatus("worker", False, None, "no heartbeat from any worker yet")
        if heartbeat:
            age = (timezone.now() - datetime.fromisoformat(heartbeat["server_time"])).total_seconds()
            if age <= settings.SYSTEM_HEARTBEAT_SECONDS * 3:
                worker = ComponentStatus(**heartbeat["components"]["worker"])
            else:
                worker = ComponentStatus("worker", False, None, f"last heartbeat {age:.0f}s ago")
    else:
        beat = ComponentStatus("beat", False, None, "unknown: Redis is down")
        worker = ComponentStatus("worker", False, None, "unknown: Redis (the broker) is down")
    return {
        "can_view_overview": True,
        "components": [c.as_dict() for c in (database, redis_status, worker, beat)],
        "heartbeat": heartbeat,
        "version": __version__,
        "heartbeat_seconds": settings.SYSTEM_HEARTBEAT_SECONDS,
        "database_vendor": database.detail if database.ok else "",
        "redis_mode": "embedded" if settings.REDIS_EMBEDDED else "external",
    }


def section(request, slug: str) -> TemplateResponse:
    """A section that has not been built yet says so, plainly."""
    found = get_section(slug)
    if found is None:
        raise Http404("No such section")
    if found.url_name:
        return redirect(found.url_name)
    return _page(request, "opscenter/section_pending.html", {"title": found.title, "section": found})


def api_tokens(request) -> TemplateResponse:
    """List the user's own tokens and create one; the secret is shown once."""
    created_secret = None
    form = ApiTokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            token, created_secret = create_api_token(
                request.user,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                days=form.cleaned_data["days"],
                source=AuditSource.UI,
                request=request,
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Token “{token.name}” created. Copy it now: it is not shown again.")
            form = ApiTokenForm()
    tokens = ApiToken.objects.filter(user=request.user)
    return _page(
        request,
        "opscenter/api_tokens.html",
        {"title": "API tokens", "form": form, "tokens": tokens, "created_secret": created_secret},
    )


@require_POST
def revoke_token(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk)
    if token.user_id != request.user.pk:
        raise PermissionDenied
    try:
        revoke_api_token(token, by=request.user, source=AuditSource.UI, request=request)
    except DomainError as exc:
        messages.warning(request, str(exc))
    else:
        messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("admin:opscenter_tokens")
