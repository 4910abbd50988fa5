"""URL map: the admin shell (all pages), the REST API and its docs."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .api import views as api_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/me", api_views.MeView.as_view(), name="api-me"),
    path("api/v1/health", api_views.HealthView.as_view(), name="api-health"),
    path("api/v1/ready", api_views.ReadyView.as_view(), name="api-ready"),
    path("api/v1/", include("opscenter.api.urls")),
    path("api/v1/", include("advisors.api.urls")),
    path("api/v1/", include("agents.api.urls")),
    path("api/v1/", include("advisors.inbound.api_urls")),
    path("api/v1/", include("agents.engine.api_urls")),
    path("api/v1/", include("opscenter.backups.api_urls")),
    path("api/v1/", include("monitoring.api_urls")),
    path("api/v1/", include("monitoring.health.api_urls")),
    path("api/v1/", include("monitoring.logs.api_urls")),
    path("api/v1/", include("alerts.api_urls")),
    path("", include("monitoring.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
