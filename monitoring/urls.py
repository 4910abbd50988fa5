"""Top-level URLs of the monitoring app (the Prometheus endpoint lives at /metrics)."""

urlpatterns: list = []
