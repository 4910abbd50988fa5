"""REST endpoints of the metric registry and store: list metrics, read a series over a window."""

from __future__ import annotations

import time
from datetime import datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from opscenter.api.errors import documented_errors as _errors
from opscenter.api.permissions import require

from . import services, store
from .registry import get_metric

VIEW = [require("monitoring.view_metricseries")]
MAX_WINDOW_SECONDS = 2 * 366 * 86400


class MetricSerializer(serializers.Serializer):
    name = serializers.CharField()
    help = serializers.CharField()
    kind = serializers.ChoiceField(choices=["gauge", "counter", "histogram"])
    unit = serializers.CharField(help_text='"seconds", "bytes", "percent", "ratio" or "" (a count)')
    labels = serializers.ListField(child=serializers.CharField())
    stored = serializers.BooleanField(help_text="sampled into the metric store (has a series to read)")


class PointSerializer(serializers.Serializer):
    t = serializers.IntegerField(help_text="Unix seconds at the start of the bucket (or of the raw sample)")
    count = serializers.IntegerField(help_text="raw samples in the bucket")
    avg = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()
    last = serializers.FloatField()


class SeriesSerializer(serializers.Serializer):
    labels = serializers.DictField(child=serializers.CharField())
    points = PointSerializer(many=True)


class SeriesWindowSerializer(serializers.Serializer):
    name = serializers.CharField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    resolution = serializers.IntegerField(help_text="seconds per point: 0 raw samples, 60, 3600 or 86400")
    series = SeriesSerializer(many=True)


class TimeField(serializers.Field):
    """A moment as ISO 8601 or Unix seconds."""

    default_error_messages = {"invalid": "Use ISO 8601 (2026-11-22T10:00:00Z) or Unix seconds."}

    def to_internal_value(self, data) -> float:
        text = str(data).strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail("invalid")
        if moment.tzinfo is None:
            self.fail("invalid")
        return moment.timestamp()


class SeriesQuerySerializer(serializers.Serializer):
    start = TimeField(required=False, help_text="default: an hour before end")
    end = TimeField(required=False, help_text="default: now")
    labels = serializers.CharField(required=False, allow_blank=True, help_text="exact matches: key=value,key2=value2")
    resolution = serializers.ChoiceField(
        choices=[0, 60, 3600, 86400], required=False, help_text="force a resolution (0 = raw); default: chosen from the window"
    )
    max_points = serializers.IntegerField(required=False, min_value=10, max_value=5000, default=500)

    def validate_labels(self, value: str) -> dict[str, str]:
        labels = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise serializers.ValidationError(f"{part!r} is not key=value.")
            labels[key.strip()] = val.strip()
        return labels

    def validate(self, data: dict) -> dict:
        end = data.get("end", time.time())
        start = data.get("start", end - 3600)
        if start >= end:
            raise serializers.ValidationError({"start": ["Must be before end."]})
        if end - start > MAX_WINDOW_SECONDS:
            raise serializers.ValidationError({"start": ["The window may span at most two years."]})
        return {**data, "start": start, "end": end}


@extend_schema(tags=["metrics"])
class MetricListView(APIView):
    """Every metric in the registry."""

    permission_classes = VIEW

    @extend_schema(summary="The metrics in the registry", responses={200: MetricSerializer(many=True), **_errors(401, 403)})
    def get(self, request):
        return Response(MetricSerializer(services.describe_metrics(), many=True).data)


@extend_schema(tags=["metrics"])
class MetricSeriesView(APIView):
    """One stored metric over a window, per label set."""

    permission_classes = VIEW

    @extend_schema(
        summary="A metric's series over a window",
        parameters=[
            OpenApiParameter("start", OpenApiTypes.STR, description="ISO 8601 or Unix seconds; default an hour before end"),
            OpenApiParameter("end", OpenApiTypes.STR, description="ISO 8601 or Unix seconds; default now"),
            OpenApiParameter("labels", OpenApiTypes.STR, description="exact label matches: key=value,key2=value2"),
            OpenApiParameter("resolution", OpenApiTypes.INT, enum=[0, 60, 3600, 86400],
                             description="seconds per point (0 = raw); default: the finest that fits max_points"),
            OpenApiParameter("max_points", OpenApiTypes.INT, description="points per series, 10–5000 (default 500)"),
        ],
        responses={200: SeriesWindowSerializer, **_errors(400, 401, 403, 404)},
    )
    def get(self, request, name: str):
        metric = get_metric(name)
        if metric is None:
            raise exceptions.NotFound(f"There is no metric {name!r}.")
        query = SeriesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if not metric.store:
            raise exceptions.ValidationError({"name": [f"{name} is exposed to Prometheus only, not stored."]})
        window = store.read_series(
            name, params.get("labels"), params["start"], params["end"],
            resolution=params.get("resolution"), max_points=params["max_points"],
        )
        body = {
            "name": window.name, "start": window.start, "end": window.end, "resolution": window.resolution,
            "series": [{"labels": s.labels, "points": [p.as_dict() for p in s.points]} for s in window.series],
        }
        return Response(body)
