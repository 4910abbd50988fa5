"""SLOs over REST (mounted under /api/v1/ by alerts.api_urls):

    GET    /slos/                 every SLO with its current figures (SLI, budget left, burn rates)
    GET    /slos/{id}/            one SLO, with its daily SLI for the last 30 days
    POST   /slos/                 add one (Admin: alerts.add_slo)
    PATCH  /slos/{id}/            change one (Admin: alerts.change_slo)
    DELETE /slos/{id}/            delete one and its burn-rate rules (Admin: alerts.delete_slo)
    GET    /slos/report/?month=YYYY-MM   the monthly SLA report; CSV with ?format=csv or Accept: text/csv

Thin: validation and changes go through alerts.slo (validate_slo, save_slo, delete_slo),
which audit them; reading needs alerts.view_slo (every role).
"""

from __future__ import annotations

import csv
import io

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from opscenter.api.errors import documented_errors as _errors
from opscenter.models import AuditSource

from . import slo as slos
from .models import SLO, Indicator

DETAIL_DAYS = 30
STATUSES = ["met", "at_risk", "breached", "no_data", "disabled"]


# --- serializers --------------------------------------------------------------------------------------


# The windows are the keys ("5m", "30m" …), which are not Python names: the class is built from a dict.
SLOBurnRatesSerializer = type("SLOBurnRatesSerializer", (serializers.Serializer,), {
    window: serializers.FloatField(allow_null=True, help_text=f"bad share ÷ error budget over the last {window} "
                                   "(null: no events)")
    for window in slos.BURN_WINDOWS
})


class SLODailySerializer(serializers.Serializer):
    day = serializers.DateField(help_text=f"a local day in TIME_ZONE; the last {DETAIL_DAYS}, today so far")
    good = serializers.FloatField(allow_null=True)
    total = serializers.FloatField(allow_null=True)
    sli = serializers.FloatField(allow_null=True, help_text="good ÷ total, 0..1; null without events")


class SLOFiguresSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUSES, help_text="met, at_risk (met but under a quarter of the "
                                     "budget left or burning too fast), breached, no_data, disabled")
    sli = serializers.FloatField(allow_null=True, help_text="good ÷ total over the window, 0..1; null without events")
    met = serializers.BooleanField(allow_null=True)
    good = serializers.FloatField(allow_null=True, help_text="good events (seconds up, for uptime)")
    total = serializers.FloatField(allow_null=True)
    bad = serializers.FloatField(allow_null=True)
    unit = serializers.CharField(help_text="what an event is: deliveries, seconds, items or events")
    error_budget = serializers.FloatField(help_text="the bad share the objective allows: 1 − objective/100")
    budget_remaining = serializers.FloatField(allow_null=True, help_text="share of the budget left; below 0: missed")
    burn_rates = SLOBurnRatesSerializer(help_text="bad share ÷ error budget per window (5m, 30m, 1h, 6h)")
    fast_burn = serializers.FloatField(allow_null=True, help_text="min(1h, 5m): the fast alert fires over 14.4")
    slow_burn = serializers.FloatField(allow_null=True, help_text="min(6h, 30m): the slow alert fires over 6")
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    subject = serializers.CharField(help_text="what the indicator counts, in words")
    error = serializers.CharField(help_text="why there are no figures (e.g. the health check is gone), or empty")
    daily = SLODailySerializer(many=True, required=False, help_text="on GET /slos/{id}/ only")


class SLOSerializer(serializers.ModelSerializer):
    builtin = serializers.SerializerMethodField(help_text="one of the defaults bootstrap created")
    figures = serializers.SerializerMethodField(help_text="the current figures over the rolling window")
    params = serializers.JSONField(
        required=False,
        help_text='the indicator\'s settings — delivery_success: {"channel"?}; health_uptime: {"check": name}; '
                  'decided_before: {"time": "08:00", "timezone"?}; metric_ratio: {"good_metric", "good_matchers"?, '
                  '"total_metric", "total_matchers"?} (counters)',
    )
    objective = serializers.FloatField(help_text="percent, strictly between 0 and 100, e.g. 99.5")
    window_days = serializers.IntegerField(required=False, help_text="rolling window in days, 1 to 365")

    class Meta:
        model = SLO
        fields = ["id", "name", "description", "indicator", "params", "objective", "window_days", "enabled",
                  "burn_rate_alerts", "severity", "builtin", "figures", "created_at", "updated_at"]
        read_only_fields = ["builtin", "figures", "created_at", "updated_at"]

    def get_builtin(self, obj) -> bool:
        return bool(obj.builtin_key)

    @extend_schema_field(SLOFiguresSerializer)
    def get_figures(self, obj) -> dict:
        days = self.context.get("daily_days", 0)
        figures = slos.slo_status(obj, self.context.get("now"), daily_days=days)
        keep = set(SLOFiguresSerializer().fields) - ({"daily"} if not days else set())
        out = {key: figures[key] for key in keep}
        out["burn_rates"] = dict(figures["burn_rates"])
        return out

    def validate(self, attrs):
        instance = self.instance
        probe = SLO(**{f.attname: getattr(instance, f.attname) for f in SLO._meta.concrete_fields}) \
            if instance is not None else SLO()
        for field, value in attrs.items():
            setattr(probe, field, value)
        if instance is not None and "indicator" in attrs and attrs["indicator"] != instance.indicator \
                and "params" not in attrs:
            probe.params = {}  # another indicator's settings mean nothing to the new one
        try:
            slos.validate_slo(probe)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        attrs["params"] = probe.params
        attrs["name"] = probe.name
        return attrs


class SLOReportRowSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    indicator = serializers.ChoiceField(choices=Indicator.choices)
    unit = serializers.CharField()
    objective = serializers.FloatField(help_text="percent")
    enabled = serializers.BooleanField()
    good = serializers.FloatField(allow_null=True)
    total = serializers.FloatField(allow_null=True)
    achieved = serializers.FloatField(allow_null=True, help_text="good ÷ total over the month, 0..1")
    met = serializers.BooleanField(allow_null=True)
    budget_used = serializers.FloatField(allow_null=True, help_text="the month's bad share ÷ error budget (over 1: missed)")
    worst_day = serializers.DateField(allow_null=True)
    worst_day_sli = serializers.FloatField(allow_null=True)
    error = serializers.CharField()


class SLOReportSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    label = serializers.CharField()
    time_zone = serializers.CharField(help_text="the month's days are counted in TIME_ZONE")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    partial = serializers.BooleanField(help_text="the month is in progress: figures so far")
    future = serializers.BooleanField()
    previous = serializers.CharField()
    next = serializers.CharField()
    slos = SLOReportRowSerializer(many=True)


class SLOReportQuery(serializers.Serializer):
    month = serializers.CharField(required=False, allow_blank=True, help_text="YYYY-MM; this month by default")

    def validate_month(self, value: str):
        try:
            return slos.parse_month(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class ReportCSVRenderer(BaseRenderer):
    """The monthly report as CSV (one row per SLO); an error as a one-line CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if isinstance(data, dict) and "slos" in data:
            writer.writerows(slos.report_csv_rows(data))
        else:
            error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
            writer.writerows([["error", "message"], [error.get("code", "error"), error.get("message", "")]])
        return buffer.getvalue().encode("utf-8")


# --- views ----------------------------------------------------------------------------------------------


class ByNamePagination(CursorPagination):
    ordering = "name"  # unique
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema_view(
    list=extend_schema(summary="SLOs with their current figures (SLI, error budget left, burn rates), by name",
                       responses={200: SLOSerializer(many=True), **_errors(401, 403)}),
    retrieve=extend_schema(summary="One SLO with its figures and daily SLI for the last 30 days",
                           responses={200: SLOSerializer, **_errors(401, 403, 404)}),
    create=extend_schema(summary="Add an SLO (Admin); its burn-rate alert rules are created with it",
                         responses={201: SLOSerializer, **_errors(400, 401, 403)}),
    partial_update=extend_schema(summary="Change some fields of an SLO (Admin); its burn-rate rules follow",
                                 responses={200: SLOSerializer, **_errors(400, 401, 403, 404)}),
    destroy=extend_schema(summary="Delete an SLO and its burn-rate rules (Admin); past alerts stay",
                          responses={204: None, **_errors(401, 403, 404)}),
)
@extend_schema(tags=["slos"])
class SLOViewSet(viewsets.ModelViewSet):
    """Service level objectives: an indicator that must stay at or above an objective over a rolling window."""

    queryset = SLO.objects.all()
    serializer_class = SLOSerializer
    pagination_class = ByNamePagination
    filter_backends: list = []
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["now"] = timezone.now()
        if self.action == "retrieve":
            context["daily_days"] = DETAIL_DAYS
        return context

    def perform_create(self, serializer):
        slo = SLO(**serializer.validated_data)
        serializer.instance = self._save(slo, None)

    def perform_update(self, serializer):
        slo = serializer.instance
        changed = [f for f, v in serializer.validated_data.items() if getattr(slo, f) != v]
        for field, value in serializer.validated_data.items():
            setattr(slo, field, value)
        serializer.instance = self._save(slo, changed) if changed else slo

    def _save(self, slo: SLO, changed):
        try:
            return slos.save_slo(slo, by=self.request.user, changed=changed, source=AuditSource.API,
                                 request=self.request)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None

    def perform_destroy(self, instance):
        slos.delete_slo(instance, by=self.request.user, source=AuditSource.API, request=self.request)

    @extend_schema(
        summary="The monthly SLA report: per SLO, the calendar month's good/total, achieved, met, budget used, "
                "worst day (JSON, or CSV with ?format=csv / Accept: text/csv)",
        parameters=[SLOReportQuery,
                    OpenApiParameter("format", str, enum=["json", "csv"], description="csv for the CSV export")],
        responses={(200, "application/json"): SLOReportSerializer,
                   (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="one row per SLO, a header first"),
                   **_errors(400, 401, 403)},
    )
    @action(detail=False, methods=["get"], url_path="report", renderer_classes=[JSONRenderer, ReportCSVRenderer],
            pagination_class=None)
    def report(self, request):
        query = SLOReportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        month = query.validated_data.get("month") or slos.parse_month(None)
        report = slos.monthly_report(month)
        response = Response(report)
        if getattr(request, "accepted_renderer", None) is not None and request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = f'attachment; filename="opscenter-sla-{report["month"]}.csv"'
        return response


router = SimpleRouter()
router.trailing_slash = "/?"
router.register("slos", SLOViewSet, basename="slo")

urlpatterns = router.urls
