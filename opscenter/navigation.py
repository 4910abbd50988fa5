"""Callbacks Unfold calls to build the sidebar, account menu and environment badge."""

from __future__ import annotations

from django.conf import settings
from django.templatetags.static import static
from django.urls import reverse

from .sections import SECTIONS


def _section_link(section):
    if section.url_name:
        return reverse(section.url_name)
    return reverse("admin:opscenter_section", args=[section.slug])


def _perm(codename: str):
    return lambda request: request.user.has_perm(codename)


def sidebar(request) -> list[dict]:
    """Return the sidebar: the operations sections, then system administration."""
    operations = [
        {"title": s.title, "icon": s.icon, "link": _section_link(s)} for s in SECTIONS
    ]
    system = [
        {"title": "Users", "icon": "person", "link": reverse("admin:auth_user_changelist"),
         "permission": _perm("auth.view_user")},
        {"title": "Roles", "icon": "badge", "link": reverse("admin:auth_group_changelist"),
         "permission": _perm("auth.view_group")},
        {"title": "Schedules", "icon": "schedule", "link": reverse("admin:django_celery_beat_periodictask_changelist"),
         "permission": _perm("django_celery_beat.view_periodictask")},
        {"title": "Audit trail", "icon": "history", "link": reverse("admin:opscenter_auditentry_changelist"),
         "permission": _perm("opscenter.view_auditentry")},
        {"title": "Login lockouts", "icon": "lock_person", "link": reverse("admin:axes_accessattempt_changelist"),
         "permission": _perm("axes.view_accessattempt")},
        {"title": "API tokens", "icon": "key", "link": reverse("admin:opscenter_tokens")},
        {"title": "API docs", "icon": "api", "link": reverse("api-docs")},
    ]
    return [
        {"title": "Operations", "separator": False, "items": operations},
        {"title": "System", "separator": True, "collapsible": True, "items": system},
    ]


def account_links(request) -> list[dict]:
    return [
        {"title": "API tokens", "link": reverse("admin:opscenter_tokens")},
        {"title": "Change password", "link": reverse("admin:password_change")},
    ]


def environment_badge(request) -> list[str] | None:
    if settings.PRODUCTION:
        return None
    return ["Development", "warning"]


def stylesheet(request) -> str:
    return static("opscenter/opscenter.css")


def live_script(request) -> str:
    return static("opscenter/live.js")


def favicon(request) -> str:
    return static("opscenter/favicon.svg")
