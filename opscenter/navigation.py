"""Callbacks Unfold calls to build the sidebar, account menu and environment badge.

Unfold calls them on every admin page. Their links are the same on every page, so they
are reversed once per process (per URL prefix and URLconf) instead of a dozen reverse()
calls a page; Unfold deep-copies the sidebar before marking the active item, so sharing
one structure between requests is safe.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.templatetags.static import static
from django.urls import get_script_prefix, get_urlconf, reverse

from .sections import SECTIONS


def _perm(codename: str):
    return lambda request: request.user.has_perm(codename)


def _cache_key() -> tuple[str, str]:
    """What a reversed URL depends on besides its name: the URL prefix and the URLconf."""
    return get_script_prefix(), str(get_urlconf() or settings.ROOT_URLCONF)


def _section_link(section):
    if section.url_name:
        return reverse(section.url_name)
    return reverse("admin:opscenter_section", args=[section.slug])


def _item(title: str, icon: str, link: str, permission=None) -> dict:
    # Keys Unfold's templates read are present even when empty: a missing key costs the
    # template engine a failed lookup (an exception and a dir()) per item on every page.
    item = {"title": title, "icon": icon, "link": link, "link_callback": None, "badge": None}
    if permission is not None:
        item["permission"] = permission
    return item


@lru_cache(maxsize=8)
def _sidebar(prefix: str, urlconf: str) -> list[dict]:
    operations = [_item(s.title, s.icon, _section_link(s)) for s in SECTIONS]
    system = [
        _item("Users", "person", reverse("admin:auth_user_changelist"), _perm("auth.view_user")),
        _item("Roles", "badge", reverse("admin:auth_group_changelist"), _perm("auth.view_group")),
        _item(
            "Schedules",
            "schedule",
            reverse("admin:django_celery_beat_periodictask_changelist"),
            _perm("django_celery_beat.view_periodictask"),
        ),
        _item(
            "Audit trail",
            "history",
            reverse("admin:opscenter_auditentry_changelist"),
            _perm("opscenter.view_auditentry"),
        ),
        _item(
            "Login lockouts",
            "lock_person",
            reverse("admin:axes_accessattempt_changelist"),
            _perm("axes.view_accessattempt"),
        ),
        _item("API tokens", "key", reverse("admin:opscenter_tokens")),
        _item("API docs", "api", reverse("api-docs")),
    ]
    return [
        {"title": "Operations", "separator": False, "collapsible": False, "badge": None, "items": operations},
        {"title": "System", "separator": True, "collapsible": True, "badge": None, "items": system},
    ]


def sidebar(request) -> list[dict]:
    """Return the sidebar: the operations sections, then system administration."""
    return _sidebar(*_cache_key())


@lru_cache(maxsize=8)
def _account_links(prefix: str, urlconf: str) -> tuple[tuple[str, str], ...]:
    return (
        ("API tokens", reverse("admin:opscenter_tokens")),
        ("Change password", reverse("admin:password_change")),
    )


def account_links(request) -> list[dict]:
    return [{"title": title, "link": link} for title, link in _account_links(*_cache_key())]


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
