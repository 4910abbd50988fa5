"""REST endpoints of alerting, mounted under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("alerts.slo_api")),
]
