"""SLO REST endpoints (placeholder until the SLO part lands)."""

urlpatterns: list = []
