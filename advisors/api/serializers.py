from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import Advisor, AdvisorStatus, ComplianceVerdict, Content, Delivery, DeliveryAttempt

BULK_MAX = 500


class AdvisorSerializer(serializers.ModelSerializer):
    """An advisor; ARN, phone (E.164) and uniqueness are checked per field."""

    class Meta:
        model = Advisor
        fields = [
            "id", "name", "arn", "phone", "email", "status", "segment", "language", "topics",
            "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "status": {"help_text": "active, paused or disabled; disabling keeps all history."},
        }

    def validate_topics(self, value):
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise serializers.ValidationError('Send topics as a list of non-empty strings, e.g. ["SIP", "tax saving"].')
        return [item.strip() for item in value]


class AdvisorStatusSerializer(serializers.Serializer):
    # Plain values, not AdvisorStatus.choices: the same choice set in a second component
    # makes drf-spectacular warn about the enum name (W001) unless SPECTACULAR_SETTINGS
    # names it in ENUM_NAME_OVERRIDES.
    status = serializers.ChoiceField(choices=AdvisorStatus.values, help_text="active, paused or disabled")


class DeliverySummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["id", "channel", "status", "attempts", "last_error", "provider_message_id", "sent_at", "delivered_at"]


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    """One try at sending: outcome sent, retryable_error, permanent_error or unknown (also while in flight)."""

    class Meta:
        model = DeliveryAttempt
        fields = [
            "number", "started_at", "finished_at", "outcome", "http_status", "error", "provider_message_id",
            "duration_ms",
        ]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    """A delivery with its attempt ledger (read-only; POST …/retry sends a failed one again)."""

    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id", "content", "channel", "recipient", "status", "attempts", "last_error", "provider_message_id",
            "next_attempt_at", "lease_expires_at", "created_at", "updated_at", "sent_at", "delivered_at",
            "attempt_log",
        ]
        read_only_fields = fields


class FindingSerializer(serializers.Serializer):
    rule = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()
    start = serializers.IntegerField(required=False, help_text="offset of the flagged text in the body")
    end = serializers.IntegerField(required=False)


@extend_schema_field(FindingSerializer(many=True))
class FindingsField(serializers.JSONField):
    """The compliance findings as the validator stored them (documented, passed through)."""


class ContentSerializer(serializers.ModelSerializer):
    """A content item with its review state, checks and deliveries (read-only)."""

    advisor_name = serializers.CharField(source="advisor.name", read_only=True)
    reviewer = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="username of who reviewed it last"
    )
    compliance_findings = FindingsField(read_only=True)
    image_url = serializers.ImageField(source="image", read_only=True, use_url=True, allow_null=True)
    deliveries = DeliverySummarySerializer(many=True, read_only=True)
    needs_override = serializers.SerializerMethodField(
        help_text='The item fails compliance: approving it needs an Admin and an "override_reason".'
    )

    class Meta:
        model = Content
        fields = [
            "id", "advisor", "advisor_name", "cycle_date", "kind", "title", "body", "topic", "image_url",
            "status", "version", "compliance_verdict", "compliance_findings", "fatigue_score",
            "generating_run_id", "reviewer", "reviewed_at", "review_note", "revision_of", "submitted_at",
            "needs_override", "deliveries", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_needs_override(self, obj: Content) -> bool:
        return obj.compliance_verdict == ComplianceVerdict.FAIL


class ReviewActionSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    version = serializers.IntegerField(
        required=False, min_value=1, help_text="The version you reviewed; a newer one on the server gives 409."
    )


class ApproveReviewActionSerializer(ReviewActionSerializer):
    override_reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=2000,
        help_text=(
            "Why an item that fails compliance is approved anyway. Admins only: from anyone else it is "
            "refused with 403. Without it, approving a failing item is refused with 409 (code compliance_blocked). "
            "Audited as content.compliance_override."
        ),
    )


class NoteRequiredReviewActionSerializer(ReviewActionSerializer):
    note = serializers.CharField(max_length=5000, help_text="Why, or what to change: required.")


class BulkReviewSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=BULK_MAX,
        help_text=f"Content ids, at most {BULK_MAX}.",
    )
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class BulkRejectSerializer(BulkReviewSerializer):
    note = serializers.CharField(max_length=5000, help_text="Why: required.")


class BulkItemResultSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ok = serializers.BooleanField()
    status = serializers.CharField(required=False, help_text="the new status, when ok")
    error = serializers.CharField(required=False, help_text="why this item was refused, when not ok")
    code = serializers.CharField(required=False, help_text="conflict, not_found, …, when not ok")


class BulkApproveResultSerializer(serializers.Serializer):
    results = BulkItemResultSerializer(many=True)
    approved = serializers.IntegerField()
    failed = serializers.IntegerField()


class BulkRejectResultSerializer(serializers.Serializer):
    results = BulkItemResultSerializer(many=True)
    rejected = serializers.IntegerField()
    failed = serializers.IntegerField()
