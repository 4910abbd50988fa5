"""Agents and runs over REST: thin viewsets whose actions call agents.services."""

from __future__ import annotations

import django_filters
from django.db.models import F
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from opscenter.api.errors import documented_errors as _errors
from opscenter.api.permissions import RoleModelPermissions, TokenScopePermission, require
from opscenter.models import AuditSource

from .. import services
from ..models import Agent, AgentRun, RunStatus, RunTrigger
from .serializers import (
    AgentSerializer,
    LogBatchSerializer,
    RetrySerializer,
    RunDetailSerializer,
    RunLogSerializer,
    RunReportSerializer,
    RunSerializer,
    RunStartSerializer,
    TriggerSerializer,
    WebhookAttemptSerializer,
)

TRIGGER = [TokenScopePermission, require("agents.trigger_agent")]
REPORT = [TokenScopePermission, require("agents.report_agentrun")]


@extend_schema_view(
    list=extend_schema(summary="The agents, with each one's state", responses={200: AgentSerializer(many=True),
                                                                            **_errors(401, 403)}),
    retrieve=extend_schema(summary="One agent", responses={200: AgentSerializer, **_errors(401, 403, 404)}),
)
@extend_schema(tags=["agents"])
class AgentViewSet(viewsets.ReadOnlyModelViewSet):
    """The agent hierarchy: definitions and their current state."""

    queryset = Agent.objects.select_related("parent", "schedule__crontab").order_by("position", "name")
    serializer_class = AgentSerializer
    lookup_field = "slug"
    pagination_class = None
    filter_backends = []

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "states": services.agent_states()}

    @extend_schema(
        summary="Start a run of the agent",
        request=TriggerSerializer,
        responses={202: RunSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], permission_classes=TRIGGER)
    def trigger(self, request, slug=None):
        agent = self.get_object()
        body = TriggerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = services.trigger_run(
            agent, by=request.user, params=body.validated_data["params"], dry_run=body.validated_data["dry_run"],
            trigger=RunTrigger.API, source=AuditSource.API, request=request,
        )
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunFilter(django_filters.FilterSet):
    agent = django_filters.CharFilter(field_name="agent__slug", help_text="agent slug")
    status = django_filters.MultipleChoiceFilter(choices=RunStatus.choices)
    trigger = django_filters.ChoiceFilter(choices=RunTrigger.choices)
    parent = django_filters.NumberFilter(field_name="parent_id")
    root = django_filters.NumberFilter(field_name="root_id", help_text="every run of one tree")
    roots_only = django_filters.BooleanFilter(method="filter_roots_only", help_text="only runs without a parent")
    since = django_filters.IsoDateTimeFilter(field_name="queued_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="queued_at", lookup_expr="lt")
    external_id = django_filters.CharFilter()

    class Meta:
        model = AgentRun
        fields = []

    def filter_roots_only(self, queryset, name, value):
        return queryset.filter(root_id=F("pk")) if value else queryset.exclude(root_id=F("pk"))


class OldestFirstCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 200
    page_size_query_param = "page_size"
    max_page_size = 1000


@extend_schema_view(
    list=extend_schema(summary="Runs, newest first", responses={200: RunSerializer(many=True), **_errors(400, 401, 403)}),
    retrieve=extend_schema(summary="One run with its children", responses={200: RunDetailSerializer,
                                                                             **_errors(401, 403, 404)}),
)
@extend_schema(tags=["runs"])
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Agent runs. External agents report theirs with POST (start), PATCH (progress, end) and logs."""

    queryset = AgentRun.objects.select_related("agent", "triggered_by", "cancelled_by")
    serializer_class = RunSerializer
    filterset_class = RunFilter
    filter_backends = [DjangoFilterBackend]
    permission_classes = [RoleModelPermissions]

    def get_permissions(self):
        if self.action in {"create", "partial_update"} or (self.action == "logs" and self.request.method == "POST"):
            return [p() for p in REPORT]
        if self.action in {"cancel", "retry"}:
            return [p() for p in TRIGGER]
        return super().get_permissions()

    def get_serializer_class(self):
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("children__agent")
        return queryset

    @extend_schema(
        summary="Report the start of an external agent's run (idempotent on external_id)",
        request=RunStartSerializer,
        responses={201: RunSerializer, 200: RunSerializer, **_errors(400, 401, 403)},
    )
    def create(self, request):
        body = RunStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run, created = services.report_run_start(
            data["agent"], by=request.user, external_id=data["external_id"], params=data["params"],
            parent=data["parent"], request=request,
        )
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        summary="Report progress, metrics or the end of an external agent's run",
        request=RunReportSerializer,
        responses={200: RunSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    def partial_update(self, request, pk=None):
        run = self.get_object()
        body = RunReportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = services.report_run_update(run, by=request.user, request=request, **body.validated_data)
        return Response(RunSerializer(run).data)

    @extend_schema(summary="Cancel a run and everything under it", request=None,
                   responses={200: RunSerializer, **_errors(401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = services.cancel_run(self.get_object(), by=request.user, source=AuditSource.API, request=request)
        return Response(RunSerializer(run).data)

    @extend_schema(summary="Start a finished run again, with the same or edited parameters", request=RetrySerializer,
                   responses={202: RunSerializer, **_errors(400, 401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        body = RetrySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = services.retry_run(
            self.get_object(), by=request.user, params=body.validated_data["params"],
            dry_run=body.validated_data["dry_run"], source=AuditSource.API, request=request,
        )
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        methods=["GET"], summary="The run's log, oldest first",
        parameters=[OpenApiParameter("level", str, description="debug, info, warning or error: this level and up")],
        responses={200: RunLogSerializer(many=True), **_errors(401, 403, 404)},
    )
    @extend_schema(methods=["POST"], summary="Append a batch of log lines (external agents)",
                   request=LogBatchSerializer, responses={201: RunLogSerializer(many=True),
                                                          **_errors(400, 401, 403, 404, 409)})
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def logs(self, request, pk=None):
        run = self.get_object()
        if request.method == "POST":
            body = LogBatchSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            created = services.append_run_logs(run, body.validated_data["entries"])
            return Response(RunLogSerializer(created, many=True).data, status=status.HTTP_201_CREATED)
        from ..models import LEVEL_ORDER

        logs = run.logs.all()
        level = request.query_params.get("level")
        if level:
            if level not in LEVEL_ORDER:
                raise exceptions.ValidationError({"level": ["Use debug, info, warning or error."]})
            logs = logs.filter(level__in=[lv for lv, n in LEVEL_ORDER.items() if n >= LEVEL_ORDER[level]])
        paginator = OldestFirstCursorPagination()
        page = paginator.paginate_queryset(logs, request, view=self)
        return paginator.get_paginated_response(RunLogSerializer(page, many=True).data)

    @extend_schema(summary="Attempts to trigger a webhook agent for this run",
                   responses={200: WebhookAttemptSerializer(many=True), **_errors(401, 403, 404)})
    @action(detail=True, methods=["get"], url_path="webhook-attempts", filter_backends=[])
    def webhook_attempts(self, request, pk=None):
        return Response(WebhookAttemptSerializer(self.get_object().webhook_attempts.all(), many=True).data)

    @extend_schema(summary="The live hierarchy snapshot: agents tree with state", responses={200: dict})
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=None)
    def tree(self, request):
        return Response(services.hierarchy_snapshot(request.user))
