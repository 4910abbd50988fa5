"""REST shapes of alerting. Writes are validated here for field errors, then saved by alerts.services."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from .matchers import MatcherError, parse_matchers
from .models import (
    Alert,
    AlertEvent,
    Channel,
    EvaluatorState,
    Notification,
    NotificationAttempt,
    Rule,
    Silence,
)


def _matchers_field(value: str) -> str:
    try:
        return ", ".join(str(m) for m in parse_matchers(value or ""))
    except MatcherError as exc:
        raise serializers.ValidationError(str(exc)) from None


def raise_field_errors(exc: DjangoValidationError):
    """Turn a Django ValidationError from a service into a DRF field-level 400."""
    if hasattr(exc, "message_dict"):
        raise serializers.ValidationError(exc.message_dict) from None
    raise serializers.ValidationError({"non_field_errors": exc.messages}) from None


class AlertEventSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = AlertEvent
        fields = ["id", "at", "kind", "message", "user", "data"]
        read_only_fields = fields


class NotificationAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = NotificationAttempt
        fields = ["at", "ok", "error", "duration_ms"]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    attempt_log = NotificationAttemptSerializer(source="attempt_rows", many=True, read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "channel", "channel_name", "kind", "dedupe_key", "escalation_level", "title", "status",
                  "attempts", "next_attempt_at", "last_error", "created_at", "sent_at", "attempt_log"]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    resolved_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    rule = serializers.PrimaryKeyRelatedField(read_only=True, help_text="null once the rule is deleted")
    silenced = serializers.SerializerMethodField(help_text="a silence holds its notifications back now")

    class Meta:
        model = Alert
        fields = ["id", "rule", "rule_name", "fingerprint", "labels", "severity", "status", "summary", "value",
                  "pending_since", "fired_at", "resolved_at", "resolved_by", "resolve_note", "acknowledged_at",
                  "acknowledged_by", "ack_comment", "escalation_level", "escalated_at", "flapping", "silenced",
                  "silenced_by", "notification_failed", "last_notified_at", "last_evaluated_at"]
        read_only_fields = fields

    def get_silenced(self, obj) -> bool:
        return obj.silenced_by_id is not None


class AlertDetailSerializer(AlertSerializer):
    timeline = AlertEventSerializer(source="events", many=True, read_only=True)
    notifications = NotificationSerializer(many=True, read_only=True)

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "timeline", "notifications"]
        read_only_fields = fields


class AcknowledgeSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                    help_text="what you are doing about it; shown to everyone on call")


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000)


class ResolveSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class SilenceAlertSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=2000)
    duration_minutes = serializers.IntegerField(required=False, min_value=1, max_value=90 * 24 * 60)
    until_resolved = serializers.BooleanField(default=False, help_text="end the silence when this alert resolves")

    def validate(self, attrs):
        if not attrs.get("duration_minutes") and not attrs.get("until_resolved"):
            raise serializers.ValidationError({"duration_minutes": "Give a duration, or set until_resolved."})
        return attrs


class SilenceSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    ended_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    state = serializers.SerializerMethodField(help_text="upcoming, active or ended")
    duration_minutes = serializers.IntegerField(write_only=True, required=False, min_value=1,
                                                max_value=90 * 24 * 60, help_text="instead of ends_at")
    ends_at = serializers.DateTimeField(required=False)

    class Meta:
        model = Silence
        fields = ["id", "matchers", "starts_at", "ends_at", "duration_minutes", "comment", "created_by",
                  "created_at", "alert", "expire_on_resolve", "ended_at", "ended_by", "state"]
        read_only_fields = ["created_by", "created_at", "alert", "expire_on_resolve", "ended_at", "ended_by"]

    def get_state(self, obj) -> str:
        from django.utils import timezone

        now = timezone.now()
        if obj.effective_end <= now:
            return "ended"
        return "active" if obj.starts_at <= now else "upcoming"

    def validate_matchers(self, value: str) -> str:
        return _matchers_field(value)

    def validate(self, attrs):
        if self.instance is None and not attrs.get("ends_at") and not attrs.get("duration_minutes"):
            raise serializers.ValidationError({"ends_at": "Give ends_at or duration_minutes."})
        if self.instance is not None and "starts_at" in attrs and attrs["starts_at"] != self.instance.starts_at:
            raise serializers.ValidationError({"starts_at": "The start cannot change; expire it and create another."})
        if "duration_minutes" in attrs:
            start = attrs.get("starts_at") or (self.instance.starts_at if self.instance else None)
            if start is None:
                from django.utils import timezone

                start = timezone.now()
                attrs["starts_at"] = start
            attrs["ends_at"] = start + timedelta(minutes=attrs.pop("duration_minutes"))
        return attrs


class RuleSerializer(serializers.ModelSerializer):
    channels = serializers.PrimaryKeyRelatedField(queryset=Channel.objects.all(), many=True, required=False)
    builtin = serializers.SerializerMethodField(help_text="created by bootstrap (the default rule pack)")
    firing = serializers.SerializerMethodField(help_text="open alerts of the rule that are firing")

    class Meta:
        model = Rule
        fields = ["id", "name", "description", "enabled", "metric", "matchers", "aggregation", "percentile",
                  "window_seconds", "denominator_metric", "denominator_matchers", "comparator", "threshold",
                  "for_seconds", "keep_firing_for_seconds", "no_data", "severity", "labels", "group_by",
                  "summary_template", "runbook_url", "channels", "escalation_policy", "group_wait_seconds",
                  "repeat_interval_seconds", "active_days", "active_from", "active_until", "timezone", "builtin",
                  "firing", "last_evaluated_at", "last_error", "created_at", "updated_at"]
        read_only_fields = ["builtin", "firing", "last_evaluated_at", "last_error", "created_at", "updated_at"]

    def get_builtin(self, obj) -> bool:
        return bool(obj.builtin_key)

    def get_firing(self, obj) -> int:
        return obj.alerts.filter(status="firing").count()

    def validate(self, attrs):
        from .evaluation import validate_rule

        probe = Rule(**{f.attname: getattr(self.instance, f.attname) for f in Rule._meta.concrete_fields}) \
            if self.instance is not None else Rule()
        for field, value in attrs.items():
            if field != "channels":
                setattr(probe, field, value)
        try:
            validate_rule(probe)
        except DjangoValidationError as exc:
            raise_field_errors(exc)
        return attrs


class ChannelSerializer(serializers.ModelSerializer):
    url = serializers.CharField(write_only=True, required=False,
                                help_text="an Apprise URL (mailto://, slack://, json:// …); never shown back")
    masked_url = serializers.CharField(read_only=True, help_text="the URL's scheme and its last four characters")

    class Meta:
        model = Channel
        fields = ["id", "name", "url", "masked_url", "scheme", "enabled", "route_all", "min_severity", "matchers",
                  "send_resolved", "last_test_at", "last_test_ok", "last_test_error", "created_at", "updated_at"]
        read_only_fields = ["scheme", "last_test_at", "last_test_ok", "last_test_error", "created_at", "updated_at"]

    def validate_matchers(self, value: str) -> str:
        return _matchers_field(value)

    def validate(self, attrs):
        if self.instance is None and not attrs.get("url"):
            raise serializers.ValidationError({"url": "A channel needs an Apprise URL."})
        return attrs


class ChannelTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class EvaluatorStateSerializer(serializers.ModelSerializer):
    interval_seconds = serializers.SerializerMethodField()

    class Meta:
        model = EvaluatorState
        fields = ["cycles", "last_started_at", "last_finished_at", "last_duration_ms", "rules_evaluated",
                  "overruns", "last_overrun_at", "skipped", "last_error", "interval_seconds"]
        read_only_fields = fields

    def get_interval_seconds(self, obj) -> int:
        from django.conf import settings

        return settings.ALERTS_EVALUATION_SECONDS
