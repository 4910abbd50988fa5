"""The log store over REST: GET /api/v1/logs/ (filters, cursor pages) and /api/v1/logs/<id>/."""

from __future__ import annotations

from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from opscenter.api.errors import documented_errors as _errors
from opscenter.api.pagination import NewestFirstCursorPagination
from opscenter.api.permissions import RoleModelPermissions

from .filters import LogFilter
from .models import NAME_BY_LEVEL, LogEntry


class LogEntrySerializer(serializers.ModelSerializer):
    # A plain string, not an enum: agents' run log levels are an enum named "level" already.
    level = serializers.CharField(source="level_name", read_only=True,
                                  help_text=f"one of {', '.join(NAME_BY_LEVEL.values())}")
    run_url = serializers.SerializerMethodField(help_text="the run's console page, for entries of a run")

    class Meta:
        model = LogEntry
        fields = ["id", "at", "level", "source", "logger", "message", "context", "host", "pid", "agent", "run",
                  "run_url"]
        read_only_fields = fields

    def get_run_url(self, obj: LogEntry) -> str | None:
        return reverse("admin:agents_run", args=[obj.run_id]) if obj.run_id else None


class LogPagination(NewestFirstCursorPagination):
    page_size = 100


@extend_schema_view(
    list=extend_schema(
        summary="Log entries, newest first",
        description="Everything the log store holds: WARNING and above from web, worker and beat, and every "
        "agent run log line. Filters combine; pages are cursors (follow `next`).",
        responses={200: LogEntrySerializer(many=True), **_errors(400, 401, 403)},
    ),
    retrieve=extend_schema(summary="One log entry with its context",
                           responses={200: LogEntrySerializer, **_errors(401, 403, 404)}),
)
@extend_schema(tags=["logs"])
class LogEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The log store, read-only (logs.view_logentry: Admin and Operator)."""

    queryset = LogEntry.objects.all()
    serializer_class = LogEntrySerializer
    filterset_class = LogFilter
    filter_backends = [DjangoFilterBackend]
    permission_classes = [RoleModelPermissions]
    pagination_class = LogPagination
