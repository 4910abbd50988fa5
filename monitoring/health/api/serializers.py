from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from ..admin import SYSTEM_READONLY
from ..models import HealthCheck, HealthFlip, HealthResult, redact_url

STATE_FIELDS = ["state", "state_since", "last_checked_at", "last_ok", "last_latency_ms", "last_status_code",
                "last_detail", "recent", "next_due_at"]
MASK = "•••"


class UptimeSerializer(serializers.Serializer):
    day = serializers.FloatField(source="24h", allow_null=True, help_text="share of the last 24 h the check was up")
    week = serializers.FloatField(source="7d", allow_null=True, help_text="… of the last 7 days")
    month = serializers.FloatField(source="30d", allow_null=True, help_text="… of the last 30 days")


class HealthCheckSerializer(serializers.ModelSerializer):
    system = serializers.BooleanField(source="is_system", read_only=True,
                                      help_text="one of OpsCenter's own components (created by bootstrap)")
    target = serializers.CharField(read_only=True, help_text="what the check looks at, in words")
    uptime = serializers.SerializerMethodField(help_text="time-weighted uptime, 0..1; null without data")

    class Meta:
        model = HealthCheck
        fields = [
            "id", "name", "kind", "description", "enabled", "interval_seconds", "timeout_seconds",
            "url", "method", "expected_status", "keyword", "json_path", "json_expected", "headers", "verify_tls",
            "follow_redirects", "is_webhook_service", "host", "port", "expected_workers", "path",
            "threshold_percent", "pid_file", "process_name", "system", "target", *STATE_FIELDS, "uptime",
            "created_at", "updated_at",
        ]
        read_only_fields = [*STATE_FIELDS, "created_at", "updated_at"]

    def get_uptime(self, obj) -> UptimeSerializer:
        from ..services import uptimes

        found = self.context.get("uptimes", {}).get(obj.pk)
        if found is None:
            found = uptimes([obj])[obj.pk]
        return {"day": found["24h"], "week": found["7d"], "month": found["30d"]}

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None and not request.user.has_perm("health.change_healthcheck"):
            # Header values and URL passwords may be credentials: only for those who may change them.
            data["headers"] = {name: MASK for name in (data.get("headers") or {})}
            data["url"] = redact_url(instance.url)
        return data

    def validate(self, attrs):
        instance = self.instance
        if instance is not None and instance.is_system:
            locked = {f: ["OpsCenter's own checks take this from the settings; it cannot be changed here."]
                      for f in SYSTEM_READONLY if f in attrs and attrs[f] != getattr(instance, f)}
            if locked:
                raise serializers.ValidationError(locked)
        probe = HealthCheck(**{f.attname: getattr(instance, f.attname) for f in HealthCheck._meta.concrete_fields}) \
            if instance is not None else HealthCheck()
        for field, value in attrs.items():
            setattr(probe, field, value)
        try:
            probe.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


class HealthResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthResult
        fields = ["id", "at", "ok", "latency_ms", "status_code", "detail"]
        read_only_fields = fields


class HealthFlipSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthFlip
        fields = ["id", "at", "from_state", "to_state", "previous_duration_seconds", "detail"]
        read_only_fields = fields


class RunResultSerializer(serializers.Serializer):
    result = HealthResultSerializer()
    check = HealthCheckSerializer()
