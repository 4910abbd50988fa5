"""WebSocket routes and the Origin allowlist they sit behind."""

from __future__ import annotations

from urllib.parse import urlparse

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.urls import path

from .live import RAW_SEND, RAW_SOCKET, LiveConsumer, websocket_of

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]


def allowed_origins() -> list[str]:
    """Return the hosts a browser page may open our WebSockets from.

    Derived from ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS and applied whatever DEBUG says:
    a page on another site must never ride a user's session into our live feed. A
    wildcard host is left out: with it, only same-origin pages are let in (see
    SameOriginOrAllowlistValidator).
    """
    hosts = [host for host in settings.ALLOWED_HOSTS if host != "*"]
    for origin in settings.CSRF_TRUSTED_ORIGINS:
        host = urlparse(origin).hostname
        if host:
            hosts.append(host)
    return hosts


class SameOriginOrAllowlistValidator(OriginValidator):
    """Let a WebSocket in when its Origin is allowlisted or is the very host it connects to.

    The second rule matters when ALLOWED_HOSTS is "*": a cross-site page can make the
    browser connect to our Host, but it cannot make the Origin header match it.
    """

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        origin = headers.get(b"origin", b"").decode("latin1")
        host = headers.get(b"host", b"").decode("latin1").lower()
        parsed = urlparse(origin) if origin else None
        same_origin = bool(parsed and host and parsed.netloc.lower() == host)
        if same_origin or self.valid_origin(parsed):
            # The server's own send, for the live hub's frames: they need none of the layers
            # in between (session saving, consumer dispatch), and there are thousands a second.
            extra = {RAW_SEND: send}
            socket = websocket_of(send)
            if socket is not None:
                extra[RAW_SOCKET] = socket
            return await self.application(dict(scope, **extra), receive, send)
        return await WebsocketDenier()(scope, receive, send)
