"""The admin site is the application shell: Unfold, our sidebar, the Overview as index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.admin.apps import AdminConfig
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import URLPattern, URLResolver, path
from django.utils.functional import SimpleLazyObject
from unfold.settings import get_config
from unfold.sites import UnfoldAdminSite

from .roles import may_use_console

# Apps add their console pages here from AppConfig.ready(); each provider gets the site
# (for site.admin_view) and returns URL patterns mounted under /admin/.
_console_url_providers: list[Callable[[UnfoldAdminSite], list[URLPattern | URLResolver]]] = []


def register_console_urls(provider: Callable[[UnfoldAdminSite], list[URLPattern | URLResolver]]) -> None:
    """Mount an app's console pages in the admin shell (names live in the admin namespace)."""
    _console_url_providers.append(provider)


# Unfold's settings merged with its defaults, per settings name. Unfold merges them afresh
# for each of the ~30 values it reads per page; they change only with the settings.
_unfold_configs: dict[str, dict[str, Any]] = {}


@receiver(setting_changed)
def _forget_unfold_configs(**kwargs) -> None:
    _unfold_configs.clear()


class OpsAdminSite(UnfoldAdminSite):
    site_header = "OpsCenter"
    site_title = "OpsCenter"
    index_title = "Overview"
    index_template = "opscenter/overview.html"

    def has_permission(self, request) -> bool:
        """Members of any role may enter; what they see is decided per page."""
        # Asked several times per page (admin_view, each_context, Unfold's callbacks); the
        # answer is a query, and it cannot change within one request.
        allowed = getattr(request, "_may_use_console", None)
        if allowed is None:
            allowed = request._may_use_console = may_use_console(request.user)
        return allowed

    def _get_config(self, key: str, *args) -> Any:
        """Read one Unfold setting as Unfold does (callables called per request), merged once."""
        config = _unfold_configs.get(self.settings_name)
        if config is None:
            config = _unfold_configs[self.settings_name] = get_config(self.settings_name)
        if key in config and config[key]:
            return self._get_value(config[key], *args)
        return None

    def _call_permission_callback(self, callback, request) -> bool:
        """Ask a sidebar item's permission callback, as Unfold does, without a lazy proxy per item."""
        if callable(callback):
            return callback(request) == True  # noqa: E712 (Unfold's own test: truthy values that are not True fail)
        return super()._call_permission_callback(callback, request)

    def get_app_list(self, request, app_label=None):
        """Return the app list, built only when something reads it.

        Django builds it for every page's context (`available_apps`, a permission check and
        URL reversal per registered model) for a sidebar Unfold replaces with ours; with
        "show all applications" off nothing reads it, and it was a fifth of a page's time.
        """
        if app_label is not None:
            return super().get_app_list(request, app_label)
        return SimpleLazyObject(lambda: super(OpsAdminSite, self).get_app_list(request))

    def index(self, request, extra_context=None):
        from .views import overview_context

        return super().index(request, {**overview_context(request), **(extra_context or {})})

    def extra_urls(self):
        from . import views

        return [
            path("section/<slug:slug>/", self.admin_view(views.section), name="opscenter_section"),
            path("account/tokens/", self.admin_view(views.api_tokens), name="opscenter_tokens"),
            path("account/tokens/<int:pk>/revoke/", self.admin_view(views.revoke_token), name="opscenter_token_revoke"),
            *(pattern for provider in _console_url_providers for pattern in provider(self)),
        ]


class OpsAdminConfig(AdminConfig):
    default_site = "opscenter.admin_site.OpsAdminSite"
