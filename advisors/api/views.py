"""Advisors and content over REST: thin viewsets whose actions call the services."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, filters, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from opscenter.api.errors import documented_errors as _errors
from opscenter.api.permissions import RoleModelPermissions, TokenScopePermission, require
from opscenter.models import AuditSource

from ..advisor_services import create_advisor, update_advisor
from ..models import Advisor, Content, Delivery
from ..services import (
    approve_content,
    bulk_review,
    reject_content,
    request_revision,
    retry_delivery,
    set_advisor_status,
)
from .filters import AdvisorFilter, ContentFilter, DeliveryFilter
from .serializers import (
    AdvisorSerializer,
    AdvisorStatusSerializer,
    ApproveReviewActionSerializer,
    BulkApproveResultSerializer,
    BulkRejectResultSerializer,
    BulkRejectSerializer,
    BulkReviewSerializer,
    ContentSerializer,
    DeliverySerializer,
    NoteRequiredReviewActionSerializer,
)


def _as_validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    """Turn a model validation error into the API's field-level 400."""
    if not hasattr(exc, "error_dict"):
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    return exceptions.ValidationError(
        {("non_field_errors" if field == "__all__" else field): messages for field, messages in exc.message_dict.items()}
    )


class OfferedMethodPermissions(RoleModelPermissions):
    """RoleModelPermissions, but a method the view does not offer is 405 for everyone.

    Without this, DELETE on an advisor or POST on content would be refused as 403 (nobody
    holds delete_advisor or add_content) instead of saying the API has no such operation.
    """

    def has_permission(self, request, view) -> bool:
        if not hasattr(view, request.method.lower()):
            raise exceptions.MethodNotAllowed(request.method, detail=getattr(view, "method_not_allowed_detail", None))
        return super().has_permission(request, view)


# Review actions: a write-scoped token (or a session) and the review permission.
REVIEW_PERMISSIONS = [TokenScopePermission, require("advisors.review_content")]


def _approve_errors() -> dict:
    """The approve action's errors, with what 403 and 409 mean for a compliance override."""
    errors = _errors(400, 401, 403, 404, 409)
    errors[403] = OpenApiResponse(
        errors[403].response,
        "your role or your token's scope does not allow this, or override_reason was sent by someone "
        "who is not an Admin (code permission_denied)",
    )
    errors[409] = OpenApiResponse(
        errors[409].response,
        "someone acted first or the item is no longer pending (code conflict), or it fails compliance and "
        "needs an Admin's override_reason (code compliance_blocked)",
    )
    return errors


@extend_schema_view(
    list=extend_schema(summary="List advisors", responses={200: AdvisorSerializer(many=True), **_errors(400, 401, 403)}),
    retrieve=extend_schema(summary="One advisor", responses={200: AdvisorSerializer, **_errors(401, 403, 404)}),
    create=extend_schema(summary="Create an advisor", responses={201: AdvisorSerializer, **_errors(400, 401, 403)}),
    update=extend_schema(summary="Replace an advisor", responses={200: AdvisorSerializer, **_errors(400, 401, 403, 404)}),
    partial_update=extend_schema(
        summary="Change some fields of an advisor", responses={200: AdvisorSerializer, **_errors(400, 401, 403, 404)}
    ),
)
@extend_schema(tags=["advisors"])
class AdvisorViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Advisors. Never deleted: disable them with POST /advisors/{id}/status."""

    queryset = Advisor.objects.all()
    serializer_class = AdvisorSerializer
    permission_classes = [OfferedMethodPermissions]
    method_not_allowed_detail = "Advisors are never deleted: POST {\"status\": \"disabled\"} to /advisors/{id}/status."
    filter_backends = [DjangoFilterBackend, filters.SearchFilter, filters.OrderingFilter]
    filterset_class = AdvisorFilter
    search_fields = ["name", "arn", "phone"]
    ordering_fields = ["name", "created_at", "id"]

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = self._saving(
            serializer, lambda: create_advisor(data, by=self.request.user, source=AuditSource.API, request=self.request)
        )

    def perform_update(self, serializer):
        data = serializer.validated_data
        serializer.instance = self._saving(
            serializer,
            lambda: update_advisor(
                serializer.instance, data, by=self.request.user, source=AuditSource.API, request=self.request
            ),
        )

    def _saving(self, serializer, save):
        try:
            return save()
        except DjangoValidationError as exc:
            raise _as_validation_error(exc) from exc
        except IntegrityError as exc:
            # Another request took the ARN or phone between validation and insert:
            # validating again now names the field.
            again = self.get_serializer(serializer.instance, data=self.request.data, partial=serializer.partial)
            again.is_valid(raise_exception=True)
            raise exceptions.ValidationError({"non_field_errors": ["This advisor conflicts with another one."]}) from exc

    @extend_schema(
        summary="Activate, pause or disable an advisor",
        request=AdvisorStatusSerializer,
        responses={200: AdvisorSerializer, **_errors(400, 401, 403, 404)},
    )
    @action(
        detail=True, methods=["post"], url_path="status",
        permission_classes=[TokenScopePermission, require("advisors.change_advisor")],
    )
    def set_status(self, request, pk=None):
        """Change the status through set_advisor_status (audited, history kept)."""
        advisor = self.get_object()
        body = AdvisorStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        advisor = set_advisor_status(
            advisor, body.validated_data["status"], by=request.user, source=AuditSource.API, request=request
        )
        return Response(AdvisorSerializer(advisor, context=self.get_serializer_context()).data)


@extend_schema_view(
    list=extend_schema(
        summary="List content, newest first", responses={200: ContentSerializer(many=True), **_errors(400, 401, 403)}
    ),
    retrieve=extend_schema(summary="One content item", responses={200: ContentSerializer, **_errors(401, 403, 404)}),
)
@extend_schema(tags=["content"])
class ContentViewSet(viewsets.ReadOnlyModelViewSet):
    """Content written by the agents, and the review actions on it."""

    queryset = Content.objects.select_related("advisor", "reviewer").prefetch_related("deliveries")
    serializer_class = ContentSerializer
    permission_classes = [OfferedMethodPermissions]
    method_not_allowed_detail = "Content is written by the agents; the API reads it and reviews it."
    # Filters only: a text search would scan every row of a very large table.
    filter_backends = [DjangoFilterBackend]
    filterset_class = ContentFilter

    def get_serializer_class(self):
        """Return the serializer of the action's request body (responses are ContentSerializer)."""
        return {
            "approve": ApproveReviewActionSerializer,
            "reject": NoteRequiredReviewActionSerializer,
            "request_revision": NoteRequiredReviewActionSerializer,
            "bulk_approve": BulkReviewSerializer,
            "bulk_reject": BulkRejectSerializer,
        }.get(self.action, ContentSerializer)

    def _review(self, request, service, extra_fields: tuple[str, ...] = ()):
        content = self.get_object()
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        done = service(
            content,
            by=request.user,
            note=body.validated_data["note"],
            expected_version=body.validated_data.get("version"),
            source=AuditSource.API,
            request=request,
            **{name: body.validated_data[name] for name in extra_fields},
        )
        done = self.get_queryset().get(pk=done.pk)  # fresh, with its delivery row
        return Response(ContentSerializer(done, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Approve a pending item (creates its delivery once)",
        description=(
            "An item that fails compliance (needs_override) is approved only by an Admin who gives "
            "override_reason; the override is audited on its own. Bulk approval never overrides."
        ),
        request=ApproveReviewActionSerializer,
        responses={200: ContentSerializer, **_approve_errors()},
    )
    @action(detail=True, methods=["post"], permission_classes=REVIEW_PERMISSIONS)
    def approve(self, request, pk=None):
        return self._review(request, approve_content, extra_fields=("override_reason",))

    @extend_schema(
        summary="Reject a pending item (note required)",
        request=NoteRequiredReviewActionSerializer,
        responses={200: ContentSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], permission_classes=REVIEW_PERMISSIONS)
    def reject(self, request, pk=None):
        return self._review(request, reject_content)

    @extend_schema(
        summary="Send a pending item back for rewriting (note required)",
        request=NoteRequiredReviewActionSerializer,
        responses={200: ContentSerializer, **_errors(400, 401, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"], url_path="request-revision", permission_classes=REVIEW_PERMISSIONS)
    def request_revision(self, request, pk=None):
        return self._review(request, request_revision)

    def _bulk(self, request, action_name: str, counter: str):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        results = bulk_review(
            body.validated_data["ids"], action_name, by=request.user, note=body.validated_data["note"],
            source=AuditSource.API, request=request,
        )
        rows = [
            {"id": r.id, "ok": True, "status": r.status} if r.ok else {"id": r.id, "ok": False, "error": r.error, "code": r.code}
            for r in results
        ]
        done = sum(r.ok for r in results)
        return Response({"results": rows, counter: done, "failed": len(results) - done})

    @extend_schema(
        summary="Approve many pending items; each succeeds or fails on its own",
        request=BulkReviewSerializer,
        responses={200: BulkApproveResultSerializer, **_errors(400, 401, 403)},
    )
    @action(detail=False, methods=["post"], url_path="bulk-approve", permission_classes=REVIEW_PERMISSIONS)
    def bulk_approve(self, request):
        return self._bulk(request, "approve", "approved")

    @extend_schema(
        summary="Reject many pending items with one note; each succeeds or fails on its own",
        request=BulkRejectSerializer,
        responses={200: BulkRejectResultSerializer, **_errors(400, 401, 403)},
    )
    @action(detail=False, methods=["post"], url_path="bulk-reject", permission_classes=REVIEW_PERMISSIONS)
    def bulk_reject(self, request):
        return self._bulk(request, "reject", "rejected")



@extend_schema_view(
    list=extend_schema(
        summary="List deliveries, newest first", responses={200: DeliverySerializer(many=True), **_errors(400, 401, 403)}
    ),
    retrieve=extend_schema(
        summary="One delivery with its attempts", responses={200: DeliverySerializer, **_errors(401, 403, 404)}
    ),
)
@extend_schema(tags=["deliveries"])
class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """Deliveries and their attempt ledger; a failed one can be sent again by hand."""

    queryset = Delivery.objects.prefetch_related("attempt_log")
    serializer_class = DeliverySerializer
    permission_classes = [OfferedMethodPermissions]
    method_not_allowed_detail = "Deliveries are created by approval; POST /deliveries/{id}/retry sends a failed one again."
    filter_backends = [DjangoFilterBackend]
    filterset_class = DeliveryFilter

    @extend_schema(
        summary="Send a failed delivery again (you take responsibility: it may have arrived already)",
        request=None,
        responses={200: DeliverySerializer, **_errors(401, 403, 404, 409)},
    )
    @action(
        detail=True, methods=["post"],
        permission_classes=[TokenScopePermission, require("advisors.retry_delivery")],
    )
    def retry(self, request, pk=None):
        delivery = retry_delivery(self.get_object(), by=request.user, source=AuditSource.API, request=request)
        return Response(DeliverySerializer(self.get_queryset().get(pk=delivery.pk)).data)
