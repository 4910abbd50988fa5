"""Inbound webhook URLs, mounted under /api/v1/."""

from django.urls import re_path
from rest_framework.routers import SimpleRouter

from .api import InboundEventViewSet, WebhookIngestView

router = SimpleRouter()
router.trailing_slash = "/?"  # as in advisors.api.urls: a redirected POST would lose its body
router.register("inbound-events", InboundEventViewSet, basename="inbound-event")

urlpatterns = [
    # The slash is optional: a sender's POST redirected by APPEND_SLASH would lose its body.
    re_path(r"^webhooks/(?P<source>[-a-zA-Z0-9_]+)/?$", WebhookIngestView.as_view(), name="inbound-webhook"),
    *router.urls,
]
