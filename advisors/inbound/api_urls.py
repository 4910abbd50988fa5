"""Inbound webhook URLs, mounted under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import InboundEventViewSet, WebhookIngestView

router = SimpleRouter()
router.trailing_slash = "/?"  # as in advisors.api.urls: a redirected POST would lose its body
router.register("inbound-events", InboundEventViewSet, basename="inbound-event")

urlpatterns = [
    path("webhooks/<slug:source>/", WebhookIngestView.as_view(), name="inbound-webhook"),
    path("webhooks/<slug:source>", WebhookIngestView.as_view()),
    *router.urls,
]
