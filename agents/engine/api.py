"""The analytics figures over REST: the same documents the analytics page renders."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from opscenter.api.errors import documented_errors as _errors
from opscenter.api.permissions import require

from . import analytics

READ = [require("engine.view_dailyrollup")]
MAX_DAYS = 731


class SummaryQuery(serializers.Serializer):
    period = serializers.ChoiceField(choices=analytics.PERIODS, default="week")
    date = serializers.DateField(required=False, help_text="Any day inside the period; today by default.")


class DailyQuery(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()

    def validate(self, data):
        if data["end"] < data["start"]:
            raise serializers.ValidationError({"end": "The end must not be before the start."})
        if (data["end"] - data["start"]).days >= MAX_DAYS:
            raise serializers.ValidationError({"end": f"Ask for at most {MAX_DAYS} days at a time."})
        return data


class AnalyticsSummaryView(APIView):
    permission_classes = READ

    @extend_schema(
        summary="Figures of a day, week or month, with the previous period and the changes",
        parameters=[SummaryQuery],
        responses={200: OpenApiResponse(description="period, previous_period, figures, previous, changes, daily, "
                                                    "top, active_conversations"), **_errors(400, 401, 403)},
    )
    def get(self, request):
        query = SummaryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        anchor = query.validated_data.get("date") or analytics.today()
        return Response(analytics.summary(query.validated_data["period"], anchor))


class AnalyticsDailyView(APIView):
    permission_classes = READ

    @extend_schema(
        summary="The daily figures between two dates (inclusive)",
        parameters=[OpenApiParameter("start", str, required=True, description="YYYY-MM-DD"),
                    OpenApiParameter("end", str, required=True, description="YYYY-MM-DD")],
        responses={200: OpenApiResponse(description="{days: [{day, generated, approved, …}]}"),
                   **_errors(400, 401, 403)},
    )
    def get(self, request):
        query = DailyQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end = query.validated_data["start"], query.validated_data["end"]
        period = analytics.Period("range", start, end)
        return Response({"start": start.isoformat(), "end": end.isoformat(), "days": analytics.daily_series(period)})


