"""ASGI entry point: Django for HTTP, Channels for WebSockets (session auth, Origin check)."""

import gc
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

# The web process holds thousands of long-lived objects (every open socket's protocol and
# consumer, Django's own modules). Python's collector walks them all on each full pass,
# and those pauses land on every live frame in flight. Everything loaded by now lives as
# long as the process, so it is moved out of the collector's sight; and young-object
# passes, which each request triggers many of, run less often.
gc.collect()
gc.freeze()
gc.set_threshold(50_000, 20, 50)
