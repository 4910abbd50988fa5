"""The log viewer page, mounted under /admin/ (names in the admin namespace)."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import views


def console_urls(site) -> list[URLPattern]:
    """Return the log store's pages, each behind the admin site's sign-in."""
    return [path("logs/", site.admin_view(views.log_viewer), name="logs")]
