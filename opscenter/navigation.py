"""Callbacks Unfold calls to build the sidebar, account menu and environment badge.

Unfold calls them on every admin page. Their links are the same on every page, so they
are reversed once per process (per URL prefix and URLconf) instead of a dozen reverse()
calls a page; Unfold deep-copies the sidebar before marking the active item, so sharing
one structure between requests is safe.

A section with a badge (a live count, e.g. unacknowledged alerts) gets an empty slot in its
title; opscenter/static/opscenter/nav_badges.js fills it from the topic's snapshot and events.

Also the `{% cached_sidebar %}` tag (library `opscenter_sidebar`, see TEMPLATES), which
templates/unfold/helpers/app_list.html uses to render Unfold's sidebar links once per
distinct state instead of on every page.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Any

from django import template
from django.conf import settings
from django.template.base import Origin
from django.templatetags.static import static
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import translation
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.safestring import SafeData, SafeString, mark_safe

from .sections import SECTIONS

register = template.Library()


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
    operations = [_item(_section_title(s), s.icon, _section_link(s), _perm(s.permission) if s.permission else None)
                  for s in SECTIONS]
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
    # What people tune or inspect in the pipeline itself (admin model pages of later apps,
    # named here as URL names, like the sections).
    pipeline = [
        _item("Agent definitions", "smart_toy", reverse("admin:agents_agent_changelist"), _perm("agents.view_agent")),
        _item("Topic bank", "topic", reverse("admin:engine_topic_changelist"), _perm("engine.view_topic")),
        _item("Topic feeds", "rss_feed", reverse("admin:engine_topicfeed_changelist"), _perm("engine.view_topicfeed")),
        _item("Compliance rules", "policy", reverse("admin:engine_compliancerule_changelist"),
              _perm("engine.view_compliancerule")),
        _item("Engine settings", "tune", reverse("admin:engine_enginesettings_changelist"),
              _perm("engine.view_enginesettings")),
        _item("Cycles", "cycle", reverse("admin:engine_cycle_changelist"), _perm("engine.view_cycle")),
        _item("Deliveries", "send", reverse("admin:advisors_delivery_changelist"), _perm("advisors.view_delivery")),
        _item("Inbound sources", "webhook", reverse("admin:inbound_inboundsource_changelist"),
              _perm("inbound.view_inboundsource")),
        _item("Inbound events", "inbox", reverse("admin:inbound_inboundevent_changelist"),
              _perm("inbound.view_inboundevent")),
        _item("Daily figures", "table_chart", reverse("admin:engine_dailyrollup_changelist"),
              _perm("engine.view_dailyrollup")),
    ]
    return [
        {"title": "Operations", "separator": False, "collapsible": False, "badge": None, "items": operations},
        {"title": "Pipeline", "separator": True, "collapsible": True, "badge": None, "items": pipeline},
        {"title": "System", "separator": True, "collapsible": True, "badge": None, "items": system},
    ]


def sidebar(request) -> list[dict]:
    """Return the sidebar: the operations sections, then system administration."""
    return _sidebar(*_cache_key())


# Unfold's own badge look (unfold/helpers/app_list_badge.html), so its stylesheet has the classes.
_BADGE_CLASSES = ("font-semibold h-[18px] leading-[18px] ml-2 px-1 rounded-xs text-center text-[11px] "
                  "whitespace-nowrap min-w-[18px] text-white text-shadow-xs bg-red-500")


def _section_title(section) -> str | SafeString:
    """Return a section's sidebar title, with an empty slot for its live count if it has one.

    The number is filled in and kept current in the browser (nav_badges.js, from the topic's
    snapshot and events), never printed here: the sidebar HTML is cached per state, and
    reading a count would cost a query on every page.
    """
    badge = section.badge
    if badge is None:
        return section.title
    return format_html('{}<span class="{}" data-nav-badge data-topic="{}" data-key="{}" data-label="{}" hidden></span>',
                       section.title, _BADGE_CLASSES, badge.topic, badge.key, badge.label)


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


# --- the sidebar links, rendered once per state ------------------------------------------------

SIDEBAR_TEMPLATE = "unfold/helpers/app_list.html"
_SIDEBAR_CACHE_SIZE = 256
_sidebar_html: OrderedDict[tuple, SafeString] = OrderedDict()
_sidebar_lock = threading.Lock()


class _Unkeyable(Exception):
    """A value the sidebar key cannot stand for faithfully: render without the cache."""


def _frozen(value: Any) -> Any:
    """Return `value` as a hashable stand-in that is equal only when the value renders the same."""
    kind = type(value)
    if kind is str or kind is int or value is None:
        return value
    if kind is bool:
        return ("bool", value)  # True == 1 as a key, but they print differently
    if kind is dict:
        # In insertion order: the same state is built in the same order; another order is a miss.
        return ("dict", tuple((key, _frozen(item)) for key, item in value.items()))
    if isinstance(value, SafeData):
        return ("safe", str(value))  # printed as it is, where a plain string is escaped
    if isinstance(value, str | int | float):
        return (kind.__name__, value)
    if isinstance(value, Promise):
        return ("lazy", str(value))  # link and badge callbacks: their answer for this request
    if isinstance(value, list | tuple):
        return ("list", tuple(_frozen(item) for item in value))
    if isinstance(value, dict):
        return ("dict", tuple((key, _frozen(item)) for key, item in value.items()))
    if callable(value):
        # Permission callbacks and the like: the template reads their answers (has_permission),
        # which are keyed above; the function itself, held in the key, stands for its code.
        return ("callable", value)
    raise _Unkeyable(kind.__name__)


def sidebar_key(context: template.Context) -> tuple | None:
    """Return what the sidebar links' HTML depends on, or None if it cannot be cached.

    Everything Unfold's app_list.html reads: every group and item of `sidebar_navigation`
    as this request sees it (titles, links, icons, which item is active, each item's
    permission answer, badges), the language, and the user. "All applications" lists the
    models a user may see, which is not in the key: with it on, nothing is cached.
    """
    if context.get("sidebar_show_all_applications"):
        return None
    request = context.get("request")
    user = getattr(request, "user", None)
    try:
        navigation = _frozen(context.get("sidebar_navigation") or [])
    except _Unkeyable:
        return None
    return (getattr(user, "pk", None), translation.get_language(), navigation)


class CachedSidebarNode(template.Node):
    """Render Unfold's own app_list.html (the template this tag's template overrides), cached by sidebar_key()."""

    def __init__(self, origin: Origin) -> None:
        self.template_origin = origin

    def render(self, context: template.Context) -> SafeString:
        # Unfold's template, found past the override this tag is in (as {% extends %} does).
        unfold_template, _ = context.template.engine.find_template(SIDEBAR_TEMPLATE, skip=[self.template_origin])
        key = sidebar_key(context)
        if key is not None:
            key = (unfold_template, *key)  # a new template object (reloaded, other settings): new entries
            with _sidebar_lock:
                html = _sidebar_html.get(key)
                if html is not None:
                    _sidebar_html.move_to_end(key)
                    return html
        with context.push():
            html = mark_safe(unfold_template.render(context))  # noqa: S308 (Unfold's template escaped it)
        if key is not None:
            with _sidebar_lock:
                _sidebar_html[key] = html
                while len(_sidebar_html) > _SIDEBAR_CACHE_SIZE:
                    _sidebar_html.popitem(last=False)
        return html


@register.tag("cached_sidebar")
def cached_sidebar(parser, token) -> CachedSidebarNode:
    """Compile {% cached_sidebar %}: Unfold's sidebar links, rendered once per distinct state."""
    if len(token.split_contents()) != 1:
        raise template.TemplateSyntaxError("{% cached_sidebar %} takes no arguments.")
    return CachedSidebarNode(parser.origin)


def clear_sidebar_cache() -> None:
    """Forget every rendered sidebar (tests; nothing else needs to: the key covers every input)."""
    with _sidebar_lock:
        _sidebar_html.clear()
