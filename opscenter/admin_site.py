"""The admin site is the application shell: Unfold, our sidebar, the Overview as index."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig
from django.urls import path
from unfold.sites import UnfoldAdminSite

from .roles import may_use_console


class OpsAdminSite(UnfoldAdminSite):
    site_header = "OpsCenter"
    site_title = "OpsCenter"
    index_title = "Overview"
    index_template = "opscenter/overview.html"

    def has_permission(self, request) -> bool:
        """Members of any role may enter; what they see is decided per page."""
        return may_use_console(request.user)

    def index(self, request, extra_context=None):
        from .views import overview_context

        return super().index(request, {**overview_context(request), **(extra_context or {})})

    def extra_urls(self):
        from . import views

        return [
            path("section/<slug:slug>/", self.admin_view(views.section), name="opscenter_section"),
            path("account/tokens/", self.admin_view(views.api_tokens), name="opscenter_tokens"),
            path("account/tokens/<int:pk>/revoke/", self.admin_view(views.revoke_token), name="opscenter_token_revoke"),
        ]


class OpsAdminConfig(AdminConfig):
    default_site = "opscenter.admin_site.OpsAdminSite"
