"""Top-level URLs of the monitoring app (the Prometheus endpoint lives at /metrics)."""

from django.urls import path

from .prometheus import metrics_view

urlpatterns = [path("metrics", metrics_view, name="prometheus-metrics")]
