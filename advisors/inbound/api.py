"""The inbound webhook endpoint and the read API over the event ledger."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from opscenter.api.errors import documented_errors as _errors
from opscenter.api.permissions import RoleModelPermissions, TokenScopePermission, require
from opscenter.models import AuditSource
from opscenter.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

from . import services
from .models import InboundEvent

_RESULT = inline_serializer(
    "InboundIngestResult",
    {
        "accepted": serializers.IntegerField(help_text="New events stored for processing."),
        "duplicates": serializers.IntegerField(help_text="Event ids already stored: nothing new was stored."),
        "rejected": serializers.ListField(
            child=inline_serializer("InboundRejection", {"id": serializers.CharField(),
                                                         "reason": serializers.CharField()}),
            help_text="Signed but invalid events, kept with the reason and never processed.",
        ),
    },
)


class WebhookIngestView(APIView):
    """Receive events from a messaging service; authenticated by the request's HMAC signature."""

    # The signature is the authentication: no session (so no CSRF), no token, no throttle —
    # senders are our own services, and a refused signature costs us one HMAC.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []

    @extend_schema(
        summary="Receive one event or a batch from the messaging service",
        description=(
            f"Sign `<timestamp>.<raw body>` with HMAC-SHA256 and the source's secret; send the Unix-seconds "
            f"timestamp in `{TIMESTAMP_HEADER}` and `sha256=<hex>` in `{SIGNATURE_HEADER}` (several, comma-"
            "separated, while rotating). Requests older or newer than the window (300 s by default) are refused. "
            "The body is one event `{id, type, occurred_at, data}` or `{\"events\": [...]}`. Types: "
            "`button_click` (data: action RETRIEVE_CONTENT | UNLOCK_CONTENT | SHARE_WITH_CLIENTS, advisor_phone "
            "or advisor_arn, content_id or provider_message_id, response_ms, succeeded), `chat_message` (data: "
            "conversation_id, direction inbound | outbound, advisor_phone or advisor_arn, text, response_ms, "
            "ai_quality_score 0–1, ends_conversation), `delivery_receipt` (data: provider_message_id, status "
            "sent | delivered | read | failed, error), `heartbeat`. An event id already received answers 200 "
            "and stores nothing new."
        ),
        request={"application/json": {"type": "object"}},
        responses={
            200: _RESULT,
            400: OpenApiResponse(description="malformed JSON or not an event / batch"),
            401: OpenApiResponse(description="missing, stale, future or wrong signature"),
            404: OpenApiResponse(description="no enabled source of that name"),
            413: OpenApiResponse(description="body larger than INBOUND_MAX_BODY_BYTES"),
        },
        examples=[OpenApiExample("A click", value={
            "id": "evt_01", "type": "button_click", "occurred_at": "2026-11-23T07:45:00+05:30",
            "data": {"action": "RETRIEVE_CONTENT", "advisor_phone": "+919812345678", "content_id": 42},
        })],
        auth=[],
    )
    def post(self, request, source: str):
        result = services.ingest(
            source, request.body,
            timestamp=request.headers.get(TIMESTAMP_HEADER), signature=request.headers.get(SIGNATURE_HEADER),
        )
        return Response(result.as_dict())


class InboundEventSerializer(serializers.ModelSerializer):
    source = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = InboundEvent
        fields = ["id", "source", "event_id", "type", "status", "reason", "occurred_at", "received_at",
                  "processed_at", "attempts", "payload"]


class InboundEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The ledger of received events, newest first; failed ones can be retried."""

    queryset = InboundEvent.objects.select_related("source")
    serializer_class = InboundEventSerializer
    permission_classes = [RoleModelPermissions]
    filterset_fields = ["status", "type", "source__slug"]

    @extend_schema(summary="Process a failed event again", request=None,
                   responses={200: InboundEventSerializer, **_errors(401, 403, 404, 409)})
    @action(detail=True, methods=["post"], permission_classes=[TokenScopePermission,
                                                               require("inbound.retry_inboundevent")])
    def retry(self, request, pk=None):
        event = services.retry_event(self.get_object(), by=request.user, source=AuditSource.API, request=request)
        return Response(self.get_serializer(event).data)
