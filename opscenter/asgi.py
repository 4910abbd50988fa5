"""ASGI entry point: Django for HTTP, Channels for WebSockets (session auth, Origin check)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opscenter.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from .routing import SameOriginOrAllowlistValidator, allowed_origins, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": SameOriginOrAllowlistValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), allowed_origins()
        ),
    }
)
