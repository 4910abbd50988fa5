"""Backups over REST: list, take now, verify, download and (Admin, with a typed confirmation) restore."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from opscenter.api.errors import documented_errors as _errors
from opscenter.api.permissions import RoleModelPermissions, TokenScopePermission, require
from opscenter.models import AuditSource

from . import services
from .models import Backup, Restore
from .views import file_response

TAKE = [TokenScopePermission, require("backups.take_backup")]
DOWNLOAD = [TokenScopePermission, require("backups.download_backup")]
RESTORE = [TokenScopePermission, require("backups.restore_backup")]


class BackupSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by_label", read_only=True)
    verify_requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Backup
        fields = [
            "id", "kind", "status", "vendor", "file_name", "size", "sha256", "row_counts", "created_by",
            "queued_at", "started_at", "finished_at", "error", "verify_status", "verify_trigger",
            "verify_requested_by", "verify_started_at", "verified_at", "verify_result",
        ]
        read_only_fields = fields


class RestoreSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    backup = serializers.PrimaryKeyRelatedField(read_only=True)
    safety_backup = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Restore
        fields = ["id", "backup", "backup_label", "safety_backup", "status", "requested_by", "source",
                  "queued_at", "started_at", "finished_at", "error"]
        read_only_fields = fields


class RestoreRequestSerializer(serializers.Serializer):
    confirmation = serializers.CharField(
        max_length=255, help_text="the backup's file_name, or the word “restore”: an explicit confirmation")


@extend_schema_view(
    list=extend_schema(summary="Backups, newest first", responses={200: BackupSerializer(many=True),
                                                                   **_errors(401, 403)}),
    retrieve=extend_schema(summary="One backup", responses={200: BackupSerializer, **_errors(401, 403, 404)}),
)
@extend_schema(tags=["backups"])
class BackupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Database backups: each is a row with status, times, checksum and its verification."""

    queryset = Backup.objects.all()
    serializer_class = BackupSerializer
    permission_classes = [RoleModelPermissions]
    filter_backends = []
    lookup_value_regex = r"\d+"

    def get_permissions(self):
        if self.action in {"create", "verify"}:
            return [p() for p in TAKE]
        if self.action == "download":
            return [p() for p in DOWNLOAD]
        if self.action == "restore":
            return [p() for p in RESTORE]
        return super().get_permissions()

    @extend_schema(summary="Take a backup now (queued for the worker)", request=None,
                   responses={202: BackupSerializer, **_errors(401, 403, 409)})
    def create(self, request):
        backup = services.request_backup(by=request.user, source=AuditSource.API, request=request)
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Verify a backup: restore it into a scratch database and compare row counts",
                   request=None, responses={202: BackupSerializer, **_errors(401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        backup = services.request_verify(self.get_object(), by=request.user, source=AuditSource.API,
                                         request=request)
        return Response(BackupSerializer(backup).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Download the backup file (its SHA-256 in the X-Checksum-SHA256 header)",
                   responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY),
                              **_errors(401, 403, 404, 409)})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        backup = self.get_object()
        handle = services.open_backup_file(backup, by=request.user, source=AuditSource.API, request=request)
        return file_response(backup, handle)

    @extend_schema(
        summary="Restore the database from this backup (Admin; a safety backup is taken first)",
        description="Replaces every table's contents. `confirmation` must be the backup's file name or "
        "the word “restore”; anything else is refused with 400 and nothing is restored.",
        request=RestoreRequestSerializer, responses={202: RestoreSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        backup = self.get_object()
        body = RestoreRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        restore = services.request_restore(backup, by=request.user, confirmation=body.validated_data["confirmation"],
                                           source=AuditSource.API, request=request)
        return Response(RestoreSerializer(restore).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(
    list=extend_schema(summary="Restores, newest first", responses={200: RestoreSerializer(many=True),
                                                                    **_errors(401, 403)}),
    retrieve=extend_schema(summary="One restore", responses={200: RestoreSerializer, **_errors(401, 403, 404)}),
)
@extend_schema(tags=["backups"])
class RestoreViewSet(viewsets.ReadOnlyModelViewSet):
    """Restores of the database, each with its safety backup."""

    queryset = Restore.objects.all()
    serializer_class = RestoreSerializer
    permission_classes = [RoleModelPermissions]
    filter_backends = []
