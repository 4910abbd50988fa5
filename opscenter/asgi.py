"""ASGI entry point: Django for HTTP, Channels for WebSockets (session auth, Origin check)."""

import asyncio
import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opscenter.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from .routing import SameOriginOrAllowlistValidator, allowed_origins, websocket_urlpatterns  # noqa: E402


class BoundedConcurrency:
    """Let at most `limit` HTTP requests into Django at once in this process; the rest queue.

    Each request Django runs holds a thread and a database connection; the bound keeps a
    burst of clients from exhausting the database's connections (it refuses, the request
    fails). WebSockets are not counted: they hold no thread while idle.
    """

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._slots: asyncio.Semaphore | None = None  # made in the server's event loop

    async def __call__(self, scope, receive, send):
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            await self.app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": BoundedConcurrency(django_asgi_app, settings.WEB_MAX_CONCURRENT_REQUESTS),
        "websocket": SameOriginOrAllowlistValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), allowed_origins()
        ),
    }
)

# Monitoring hook: a web server process reports its own pid, RSS and CPU to Redis every few
# seconds (a daemon thread, see monitoring.processes), so the system page and /metrics see
# every web process on every machine. Importing this module elsewhere (tests) starts nothing.
from monitoring.processes import start_web_reporter  # noqa: E402

start_web_reporter()

# The web process holds thousands of long-lived objects (every open socket's protocol and
# consumer, Django's own modules). Python's collector walks them all on each full pass,
# and those pauses land on every live frame in flight. Everything loaded by now lives as
# long as the process, so it is moved out of the collector's sight; and young-object
# passes, which each request triggers many of, run less often.
gc.collect()
gc.freeze()
gc.set_threshold(50_000, 20, 50)
