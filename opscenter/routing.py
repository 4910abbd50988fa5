"""WebSocket routes and the Origin allowlist they sit behind."""

from __future__ import annotations

from urllib.parse import urlparse

from django.conf import settings
from django.urls import path

from .live import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]


def allowed_origins() -> list[str]:
    """Return the hosts a browser page may open our WebSockets from.

    Derived from ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS and applied whatever DEBUG says:
    a page on another site must never ride a user's session into our live feed.
    """
    hosts = list(settings.ALLOWED_HOSTS)
    for origin in settings.CSRF_TRUSTED_ORIGINS:
        host = urlparse(origin).hostname
        if host:
            hosts.append(host)
    return hosts
