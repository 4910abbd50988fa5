"""Analytics endpoints, mounted under /api/v1/."""

from django.urls import path

from .api import AnalyticsDailyView, AnalyticsSummaryView

urlpatterns = [
    path("analytics/summary", AnalyticsSummaryView.as_view(), name="analytics-summary"),
    path("analytics/daily", AnalyticsDailyView.as_view(), name="analytics-daily"),
]
