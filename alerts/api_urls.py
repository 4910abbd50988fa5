"""REST endpoints of alerting, mounted under /api/v1/."""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from . import api

router = SimpleRouter()
router.trailing_slash = "/?"
# The more specific prefixes first: /alerts/<id> only matches digits anyway.
router.register("alerts/rules", api.RuleViewSet, basename="alert-rule")
router.register("alerts/silences", api.SilenceViewSet, basename="alert-silence")
router.register("alerts/channels", api.ChannelViewSet, basename="alert-channel")
router.register("alerts", api.AlertViewSet, basename="alert")

urlpatterns = [
    re_path(r"^alerts/evaluator/?$", api.EvaluatorStateView.as_view(), name="alert-evaluator"),
    *router.urls,
    path("", include("alerts.slo_api")),
]
