from django.conf import settings
from rest_framework import serializers

from ..models import ApiToken, AuditEntry, TokenScope


class ApiTokenSerializer(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True)
    expires_in_days = serializers.IntegerField(
        write_only=True, min_value=1, max_value=settings.API_TOKEN_MAX_DAYS, default=90,
        help_text="Days until the token stops working.",
    )
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.READ)

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "scope", "state", "created_at", "expires_at",
            "last_used_at", "revoked_at", "expires_in_days",
        ]
        read_only_fields = ["prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]


class CreatedApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret. Shown this once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True)

    class Meta:
        model = AuditEntry
        fields = [
            "id", "created_at", "actor", "action", "target_type", "target_id", "target_repr",
            "changes", "source", "ip_address",
        ]


class ComponentSerializer(serializers.Serializer):
    name = serializers.CharField()
    ok = serializers.BooleanField()
    latency_ms = serializers.FloatField(allow_null=True)
    detail = serializers.CharField(required=False)


class ReadySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "not_ready"])
    components = ComponentSerializer(many=True)


class HealthSerializer(serializers.Serializer):
    status = serializers.CharField()
    version = serializers.CharField()
    time = serializers.DateTimeField()


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField()
    full_name = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    permissions = serializers.ListField(child=serializers.CharField())
    is_superuser = serializers.BooleanField()
    authenticated_by = serializers.ChoiceField(choices=["session", "token"])
    token = ApiTokenSerializer(allow_null=True)


class ErrorBodySerializer(serializers.Serializer):
    status = serializers.IntegerField()
    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="per-field messages, for validation errors only",
    )


class ErrorSerializer(serializers.Serializer):
    """The project's one error shape."""

    error = ErrorBodySerializer()
