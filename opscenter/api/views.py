"""The API skeleton: who am I, liveness, readiness, my tokens, the audit trail."""

from __future__ import annotations

import django_filters
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import __version__
from ..models import ApiToken, AuditEntry, AuditSource
from ..readiness import check_all, check_task_roundtrip
from ..roles import roles_of
from ..services import create_api_token, revoke_api_token
from .serializers import (
    ApiTokenSerializer,
    AuditEntrySerializer,
    CreatedApiTokenSerializer,
    HealthSerializer,
    MeSerializer,
    ReadySerializer,
)


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="The signed-in user, roles and permissions")
    def get(self, request):
        user = request.user
        token = request.auth if isinstance(request.auth, ApiToken) else None
        data = {
            "id": user.pk,
            "username": user.get_username(),
            "email": user.email,
            "full_name": user.get_full_name(),
            "roles": roles_of(user),
            "permissions": sorted(user.get_all_permissions()),
            "is_superuser": user.is_superuser,
            "authenticated_by": "token" if token else "session",
            "token": ApiTokenSerializer(token).data if token else None,
        }
        return Response(data)


class HealthView(APIView):
    """Liveness: the web process answers. No authentication, no database."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []

    @extend_schema(responses=HealthSerializer, summary="Liveness (no auth)")
    def get(self, request):
        return Response({"status": "ok", "version": __version__, "time": timezone.now()})


class ReadyView(APIView):
    """Readiness: database, Redis, a worker answering, beat ticking. 503 when any is down."""

    authentication_classes = [SessionAuthentication]
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "deep", bool, description="also send the ping task and wait (≤5 s) for a worker to run it"
            )
        ],
        responses={200: ReadySerializer, 503: OpenApiResponse(ReadySerializer, "a component is down")},
        summary="Readiness of every component (no auth; details for signed-in users)",
    )
    def get(self, request):
        components = check_all()
        if request.query_params.get("deep") in {"1", "true", "yes"} and components[1].ok:
            components.append(check_task_roundtrip())
        show_detail = request.user.is_authenticated and request.user.has_perm("opscenter.view_overview")
        body = {
            "status": "ready" if all(c.ok for c in components) else "not_ready",
            "components": [
                {"name": c.name, "ok": c.ok, "latency_ms": c.latency_ms, **({"detail": c.detail} if show_detail else {})}
                for c in components
            ],
        }
        return Response(body, status=200 if body["status"] == "ready" else 503)


@extend_schema(tags=["tokens"])
class ApiTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Your own API tokens. Managed with the browser session only: a token cannot mint tokens."""

    serializer_class = ApiTokenSerializer
    authentication_classes = [SessionAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    filterset_fields = ["scope"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(request=ApiTokenSerializer, responses={201: CreatedApiTokenSerializer}, summary="Create a token")
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = create_api_token(
            request.user,
            name=serializer.validated_data["name"],
            scope=serializer.validated_data["scope"],
            days=serializer.validated_data["expires_in_days"],
            source=AuditSource.API,
            request=request,
        )
        token.token = secret
        return Response(CreatedApiTokenSerializer(token).data, status=201)

    @extend_schema(summary="Revoke a token", responses={204: None, 409: OpenApiResponse(description="already revoked")})
    def destroy(self, request, *args, **kwargs):
        revoke_api_token(self.get_object(), by=request.user, source=AuditSource.API, request=request)
        return Response(status=204)


class AuditEntryFilter(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    actor = django_filters.CharFilter(field_name="actor_label")

    class Meta:
        model = AuditEntry
        fields = ["action", "target_type", "target_id", "source", "actor", "since", "until"]


@extend_schema(tags=["audit"])
class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The audit trail (Admin)."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilter
    search_fields = ["action", "target_repr", "actor_label"]
