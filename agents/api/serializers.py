from __future__ import annotations

from rest_framework import serializers

from ..models import Agent, AgentRun, LogLevel, RunLog, RunStatus, WebhookAttempt


class AgentSerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    state = serializers.SerializerMethodField(help_text="status of the latest run, or idle")
    success_rate = serializers.SerializerMethodField(help_text="share of finished runs that succeeded, last 30 days")
    active_runs = serializers.SerializerMethodField()
    last_run_id = serializers.SerializerMethodField()
    schedule = serializers.SerializerMethodField(help_text="crontab, time zone and whether it is on")

    class Meta:
        model = Agent
        fields = [
            "slug", "name", "parent", "description", "kind", "enabled", "in_code", "params_schema",
            "timeout_seconds", "retries", "state", "active_runs", "success_rate", "last_run_id", "schedule",
        ]
        read_only_fields = fields

    def _state(self, obj: Agent) -> dict:
        return self.context.get("states", {}).get(obj.pk, {})

    def get_state(self, obj) -> str:
        last = self._state(obj).get("last_run")
        return last["status"] if last else "idle"

    def get_success_rate(self, obj) -> float | None:
        return self._state(obj).get("success_rate")

    def get_active_runs(self, obj) -> int:
        return self._state(obj).get("active_runs", 0)

    def get_last_run_id(self, obj) -> int | None:
        last = self._state(obj).get("last_run")
        return last["id"] if last else None

    def get_schedule(self, obj) -> dict | None:
        from ..schedules import cron_of

        if obj.schedule is None:
            return None
        return {"cron": cron_of(obj), "timezone": str(obj.schedule.crontab.timezone) if obj.schedule.crontab else None,
                "enabled": obj.schedule.enabled}


class TriggerSerializer(serializers.Serializer):
    params = serializers.JSONField(required=False, default=dict, help_text="values for the agent's params_schema")
    dry_run = serializers.BooleanField(required=False, default=False)


class RetrySerializer(serializers.Serializer):
    params = serializers.JSONField(required=False, allow_null=True, default=None,
                                   help_text="edited parameters; leave out to reuse the run's own")
    dry_run = serializers.BooleanField(required=False, allow_null=True, default=None)


class RunSerializer(serializers.ModelSerializer):
    agent = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    triggered_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    cancelled_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True)

    class Meta:
        model = AgentRun
        fields = [
            "id", "agent", "parent", "root", "retry_of", "attempt", "trigger", "triggered_by", "params", "dry_run",
            "status", "progress", "queued_at", "started_at", "finished_at", "heartbeat_at", "duration_seconds",
            "cancel_requested_at", "cancelled_by", "awaiting_children", "error", "result", "metrics", "task_id",
            "worker", "external_id",
        ]
        read_only_fields = fields

    def get_progress(self, obj) -> dict:
        return {"done": obj.progress_done, "total": obj.progress_total, "percent": obj.progress_percent,
                "note": obj.progress_note}


class RunDetailSerializer(RunSerializer):
    children = RunSerializer(many=True, read_only=True)
    traceback = serializers.CharField(read_only=True)

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "traceback", "children"]
        read_only_fields = fields


class RunStartSerializer(serializers.Serializer):
    """An external agent announcing a run it started."""

    agent = serializers.SlugField(help_text="slug of an external or webhook agent")
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=200, default="",
                                        help_text="your id for the run; the same id returns the same run")
    parent = serializers.IntegerField(required=False, allow_null=True, default=None, help_text="id of a parent run")
    params = serializers.JSONField(required=False, default=dict)

    def validate_agent(self, value: str) -> Agent:
        agent = Agent.objects.filter(slug=value).first()
        if agent is None:
            raise serializers.ValidationError(f"There is no agent “{value}”; an admin adds external agents.")
        return agent

    def validate_parent(self, value: int | None) -> AgentRun | None:
        if value is None:
            return None
        parent = AgentRun.objects.filter(pk=value).first()
        if parent is None:
            raise serializers.ValidationError(f"There is no run {value}.")
        return parent


class RunReportSerializer(serializers.Serializer):
    """An external agent reporting progress, metrics or its end."""

    status = serializers.ChoiceField(choices=[RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED,
                                              RunStatus.CANCELLED, RunStatus.TIMED_OUT], required=False)
    progress_done = serializers.IntegerField(required=False, min_value=0)
    progress_total = serializers.IntegerField(required=False, min_value=0, allow_null=True)
    progress_note = serializers.CharField(required=False, allow_blank=True, max_length=200)
    result = serializers.JSONField(required=False)
    error = serializers.CharField(required=False, allow_blank=True)
    metrics = serializers.DictField(required=False)


class LogEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField(required=False)
    level = serializers.ChoiceField(choices=LogLevel.choices, required=False, default=LogLevel.INFO)
    message = serializers.CharField(max_length=10_000)
    context = serializers.DictField(required=False, default=dict)


class LogBatchSerializer(serializers.Serializer):
    entries = LogEntrySerializer(many=True, allow_empty=False, max_length=500)


class RunLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunLog
        fields = ["id", "at", "level", "message", "context"]


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "at", "url", "status_code", "ok", "error", "duration_ms"]
