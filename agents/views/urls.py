"""The agents console pages, mounted under /admin/ (names in the admin namespace)."""

from __future__ import annotations

from django.urls import URLPattern


def console_urls(site) -> list[URLPattern]:
    return []
