"""REST endpoints of the monitoring app, mounted under /api/v1/."""

from django.urls import re_path

from . import api

urlpatterns = [
    re_path(r"^metrics/?$", api.MetricListView.as_view(), name="api-metrics"),
    re_path(r"^metrics/(?P<name>[a-z0-9_]+)/series/?$", api.MetricSeriesView.as_view(), name="api-metric-series"),
]
