"""Health checks over REST: thin viewsets whose writes and actions call health.services."""

from __future__ import annotations

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from opscenter.api.errors import documented_errors as _errors
from opscenter.api.pagination import NewestFirstCursorPagination
from opscenter.api.permissions import TokenScopePermission, require
from opscenter.models import AuditSource

from .. import services
from ..models import CheckKind, CheckState, HealthCheck
from .serializers import HealthCheckSerializer, HealthFlipSerializer, HealthResultSerializer, RunResultSerializer

RUN = [TokenScopePermission, require("health.run_healthcheck")]


class ByNamePagination(CursorPagination):
    ordering = "name"  # unique
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class HealthCheckFilter(django_filters.FilterSet):
    kind = django_filters.MultipleChoiceFilter(choices=CheckKind.choices)
    state = django_filters.MultipleChoiceFilter(choices=CheckState.choices)
    enabled = django_filters.BooleanFilter()

    class Meta:
        model = HealthCheck
        fields = []


class ResultFilter(django_filters.FilterSet):
    ok = django_filters.BooleanFilter()
    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt")


@extend_schema_view(
    list=extend_schema(summary="Health checks with their state and uptime, by name",
                       responses={200: HealthCheckSerializer(many=True), **_errors(400, 401, 403)}),
    retrieve=extend_schema(summary="One health check", responses={200: HealthCheckSerializer, **_errors(401, 403, 404)}),
    create=extend_schema(summary="Add a health check (Admin)",
                         responses={201: HealthCheckSerializer, **_errors(400, 401, 403)}),
    update=extend_schema(summary="Replace a health check (Admin)",
                         responses={200: HealthCheckSerializer, **_errors(400, 401, 403, 404)}),
    partial_update=extend_schema(summary="Change some fields of a health check (Admin)",
                                 responses={200: HealthCheckSerializer, **_errors(400, 401, 403, 404)}),
    destroy=extend_schema(summary="Delete a health check and its history (Admin; OpsCenter's own: disable them)",
                          responses={204: None, **_errors(401, 403, 404, 409)}),
)
@extend_schema(tags=["health"])
class HealthCheckViewSet(viewsets.ModelViewSet):
    """Health checks: what is watched, how, and how it is doing."""

    queryset = HealthCheck.objects.all()
    serializer_class = HealthCheckSerializer
    filterset_class = HealthCheckFilter
    filter_backends = [DjangoFilterBackend]
    pagination_class = ByNamePagination

    def get_permissions(self):
        if self.action == "run":
            return [p() for p in RUN]
        return super().get_permissions()

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {**self.get_serializer_context(), "uptimes": services.uptimes(page)}
        return self.get_paginated_response(HealthCheckSerializer(page, many=True, context=context).data)

    def perform_create(self, serializer):
        check = HealthCheck(**serializer.validated_data)
        serializer.instance = services.save_check(check, by=self.request.user, changed=serializer.validated_data,
                                                  source=AuditSource.API, request=self.request)

    def perform_update(self, serializer):
        check = serializer.instance
        changed = [f for f, v in serializer.validated_data.items() if getattr(check, f) != v]
        for field, value in serializer.validated_data.items():
            setattr(check, field, value)
        serializer.instance = services.save_check(check, by=self.request.user, changed=changed,
                                                  source=AuditSource.API, request=self.request)

    def perform_destroy(self, instance):
        services.delete_check(instance, by=self.request.user, source=AuditSource.API, request=self.request)

    @extend_schema(summary="Run the check now (Operator, Admin); answers with the result and the check",
                   request=None, responses={200: RunResultSerializer, **_errors(401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        check = self.get_object()
        result = services.run_check_now(check, by=request.user, source=AuditSource.API, request=request)
        check.refresh_from_db()
        context = self.get_serializer_context()
        return Response({"result": HealthResultSerializer(result).data,
                         "check": HealthCheckSerializer(check, context=context).data}, status=status.HTTP_200_OK)

    @extend_schema(summary="The check's results, newest first",
                   parameters=[OpenApiParameter("ok", bool, description="only successes (true) or failures (false)"),
                               OpenApiParameter("since", OpenApiTypes.DATETIME, description="at or after"),
                               OpenApiParameter("until", OpenApiTypes.DATETIME, description="before")],
                   responses={200: HealthResultSerializer(many=True), **_errors(400, 401, 403, 404)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=NewestFirstCursorPagination)
    def results(self, request, pk=None):
        check = self.get_object()
        filterset = ResultFilter(request.query_params, queryset=check.results.all())
        if not filterset.is_valid():
            raise ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(HealthResultSerializer(page, many=True).data)

    @extend_schema(summary="The check's state changes, newest first",
                   responses={200: HealthFlipSerializer(many=True), **_errors(401, 403, 404)})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=NewestFirstCursorPagination)
    def flips(self, request, pk=None):
        check = self.get_object()
        page = self.paginate_queryset(check.flips.all())
        return self.get_paginated_response(HealthFlipSerializer(page, many=True).data)
