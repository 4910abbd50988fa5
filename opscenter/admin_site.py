"""The admin site is the application shell: Unfold, our sidebar, the Overview as index."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.admin.apps import AdminConfig
from django.urls import URLPattern, URLResolver, path
from django.utils.functional import SimpleLazyObject
from unfold.sites import UnfoldAdminSite

from .roles import may_use_console

# Apps add their console pages here from AppConfig.ready(); each provider gets the site
# (for site.admin_view) and returns URL patterns mounted under /admin/.
_console_url_providers: list[Callable[[UnfoldAdminSite], list[URLPattern | URLResolver]]] = []


def register_console_urls(provider: Callable[[UnfoldAdminSite], list[URLPattern | URLResolver]]) -> None:
    """Mount an app's console pages in the admin shell (names live in the admin namespace)."""
    _console_url_providers.append(provider)


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
