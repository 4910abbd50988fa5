"""Alerting over REST: alerts (list, acknowledge, resolve, comment, silence), silences, rules and channels.

Thin viewsets: every write and action calls alerts.services (or the notifier), so the API,
the pages and the admin behave the same and are audited the same way.
"""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from opscenter.api.errors import documented_errors as _errors
from opscenter.api.permissions import TokenScopePermission, require
from opscenter.models import AuditSource

from . import services
from .models import Alert as AlertModel
from .models import AlertStatus, Channel, EvaluatorState, Rule, Severity, Silence
from .serializers import (
    AcknowledgeSerializer,
    AlertDetailSerializer,
    AlertSerializer,
    ChannelSerializer,
    ChannelTestSerializer,
    CommentSerializer,
    EvaluatorStateSerializer,
    ResolveSerializer,
    RuleSerializer,
    SilenceAlertSerializer,
    SilenceSerializer,
    raise_field_errors,
)

API = AuditSource.API


class AlertFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=AlertStatus.choices)
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    rule = django_filters.NumberFilter(field_name="rule_id")
    fingerprint = django_filters.CharFilter()
    acknowledged = django_filters.BooleanFilter(field_name="acknowledged_at", lookup_expr="isnull", exclude=True)
    open = django_filters.BooleanFilter(method="filter_open", label="pending or firing")
    since = django_filters.IsoDateTimeFilter(field_name="pending_since", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="pending_since", lookup_expr="lt")

    class Meta:
        model = AlertModel
        fields = []

    def filter_open(self, queryset, name, value):
        wanted = Q(status__in=[AlertStatus.PENDING, AlertStatus.FIRING])
        return queryset.filter(wanted) if value else queryset.exclude(wanted)


def _act(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema_view(
    list=extend_schema(summary="Alerts, newest first (filter: status, severity, open, acknowledged, rule)",
                       responses={200: AlertSerializer(many=True), **_errors(400, 401, 403)}),
    retrieve=extend_schema(summary="One alert with its timeline and notification log",
                           responses={200: AlertDetailSerializer, **_errors(401, 403, 404)}),
)
@extend_schema(tags=["alerts"])
class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts: pending, firing and resolved; acknowledge, comment, resolve and silence them."""

    queryset = AlertModel.objects.select_related("acknowledged_by", "resolved_by")
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    lookup_value_regex = r"[0-9]+"  # leaves /alerts/rules/, /alerts/silences/ … to their viewsets

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            return queryset.prefetch_related("events__user", "notifications__attempt_rows")
        return queryset

    def get_serializer_class(self):
        return AlertDetailSerializer if self.action == "retrieve" else AlertSerializer

    def get_permissions(self):
        needed = {
            "acknowledge": "alerts.acknowledge_alert", "unacknowledge": "alerts.acknowledge_alert",
            "comment": "alerts.acknowledge_alert", "resolve": "alerts.resolve_alert", "silence": "alerts.add_silence",
        }.get(self.action)
        if needed:
            return [TokenScopePermission(), require(needed)()]
        return super().get_permissions()

    def _answer(self, alert):
        alert = self.get_queryset().get(pk=alert.pk)
        return Response(AlertSerializer(alert, context=self.get_serializer_context()).data)

    @extend_schema(summary="Acknowledge: escalation and repeats stop (Operator, Admin)",
                   request=AcknowledgeSerializer, responses={200: AlertSerializer, **_errors(400, 401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        data = _act(AcknowledgeSerializer, request)
        alert = services.acknowledge_alert(self.get_object(), by=request.user, comment=data.get("comment", ""),
                                           source=API, request=request)
        return self._answer(alert)

    @extend_schema(summary="Withdraw an acknowledgement (Operator, Admin)", request=None,
                   responses={200: AlertSerializer, **_errors(401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def unacknowledge(self, request, pk=None):
        alert = services.unacknowledge_alert(self.get_object(), by=request.user, source=API, request=request)
        return self._answer(alert)

    @extend_schema(summary="Add a comment to the alert's timeline (Operator, Admin)", request=CommentSerializer,
                   responses={200: AlertSerializer, **_errors(400, 401, 403, 404)})
    @action(detail=True, methods=["post"])
    def comment(self, request, pk=None):
        data = _act(CommentSerializer, request)
        alert = self.get_object()
        try:
            services.comment_on_alert(alert, by=request.user, comment=data["comment"], source=API, request=request)
        except DjangoValidationError as exc:
            raise_field_errors(exc)
        return self._answer(alert)

    @extend_schema(summary="Resolve by hand (Operator, Admin); if the condition still holds, a new alert opens",
                   request=ResolveSerializer, responses={200: AlertSerializer, **_errors(400, 401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        data = _act(ResolveSerializer, request)
        alert = services.resolve_alert(self.get_object(), by=request.user, note=data.get("note", ""),
                                       source=API, request=request)
        return self._answer(alert)

    @extend_schema(summary="Silence exactly this alert for a duration and/or until it resolves (Operator, Admin)",
                   request=SilenceAlertSerializer, responses={201: SilenceSerializer, **_errors(400, 401, 403, 404, 409)})
    @action(detail=True, methods=["post"])
    def silence(self, request, pk=None):
        data = _act(SilenceAlertSerializer, request)
        minutes = data.get("duration_minutes")
        try:
            silence = services.silence_alert(
                self.get_object(), by=request.user, comment=data["comment"],
                duration=timedelta(minutes=minutes) if minutes else None, until_resolved=data["until_resolved"],
                source=API, request=request,
            )
        except DjangoValidationError as exc:
            raise_field_errors(exc)
        return Response(SilenceSerializer(silence).data, status=status.HTTP_201_CREATED)


class SilenceFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=[("active", "active"), ("upcoming", "upcoming"), ("ended", "ended")],
                                        method="filter_state")

    class Meta:
        model = Silence
        fields = []

    def filter_state(self, queryset, name, value):
        now = timezone.now()
        not_ended = Q(ends_at__gt=now) & (Q(ended_at__isnull=True) | Q(ended_at__gt=now))
        if value == "ended":
            return queryset.exclude(not_ended)
        if value == "upcoming":
            return queryset.filter(not_ended, starts_at__gt=now)
        return queryset.filter(not_ended, starts_at__lte=now)


@extend_schema_view(
    list=extend_schema(summary="Silences, newest first (filter: state=active|upcoming|ended)",
                       responses={200: SilenceSerializer(many=True), **_errors(400, 401, 403)}),
    retrieve=extend_schema(summary="One silence", responses={200: SilenceSerializer, **_errors(401, 403, 404)}),
    create=extend_schema(summary="Silence the alerts the matchers match (Operator, Admin)",
                         responses={201: SilenceSerializer, **_errors(400, 401, 403)}),
    update=extend_schema(summary="Change a running silence's end, comment or matchers (Operator, Admin)",
                         responses={200: SilenceSerializer, **_errors(400, 401, 403, 404, 409)}),
    partial_update=extend_schema(summary="Change some fields of a running silence (Operator, Admin)",
                                 responses={200: SilenceSerializer, **_errors(400, 401, 403, 404, 409)}),
    destroy=extend_schema(summary="End a silence now (kept in the history) (Operator, Admin)",
                          responses={204: None, **_errors(401, 403, 404, 409)}),
)
@extend_schema(tags=["alerts"])
class SilenceViewSet(viewsets.ModelViewSet):
    """Silences: matchers and a time window in which matching alerts notify no one."""

    queryset = Silence.objects.select_related("created_by", "ended_by")
    serializer_class = SilenceSerializer
    filterset_class = SilenceFilter

    def get_permissions(self):
        if self.action == "destroy":  # ending a silence changes it; nobody deletes the history
            return [TokenScopePermission(), require("alerts.change_silence")()]
        return super().get_permissions()

    def perform_create(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = services.create_silence(
                matchers=data["matchers"], comment=data.get("comment", ""), by=self.request.user,
                starts_at=data.get("starts_at"), ends_at=data.get("ends_at"), source=API, request=self.request,
            )
        except DjangoValidationError as exc:
            raise_field_errors(exc)

    def perform_update(self, serializer):
        data = serializer.validated_data
        try:
            serializer.instance = services.update_silence(
                serializer.instance, by=self.request.user, ends_at=data.get("ends_at"), comment=data.get("comment"),
                matchers=data.get("matchers"), source=API, request=self.request,
            )
        except DjangoValidationError as exc:
            raise_field_errors(exc)

    def perform_destroy(self, instance):
        services.expire_silence(instance, by=self.request.user, source=API, request=self.request)


class RuleFilter(django_filters.FilterSet):
    enabled = django_filters.BooleanFilter()
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices)
    metric = django_filters.CharFilter()

    class Meta:
        model = Rule
        fields = []


@extend_schema_view(
    list=extend_schema(summary="Alert rules", responses={200: RuleSerializer(many=True), **_errors(400, 401, 403)}),
    retrieve=extend_schema(summary="One alert rule", responses={200: RuleSerializer, **_errors(401, 403, 404)}),
    create=extend_schema(summary="Add an alert rule (Admin)", responses={201: RuleSerializer, **_errors(400, 401, 403)}),
    update=extend_schema(summary="Replace an alert rule (Admin)",
                         responses={200: RuleSerializer, **_errors(400, 401, 403, 404)}),
    partial_update=extend_schema(summary="Change some fields of an alert rule (Admin)",
                                 responses={200: RuleSerializer, **_errors(400, 401, 403, 404)}),
    destroy=extend_schema(summary="Delete an alert rule; its open alerts resolve (Admin)",
                          responses={204: None, **_errors(401, 403, 404)}),
)
@extend_schema(tags=["alerts"])
class RuleViewSet(viewsets.ModelViewSet):
    """Alert rules over the registry's metrics."""

    queryset = Rule.objects.prefetch_related("channels")
    serializer_class = RuleSerializer
    filterset_class = RuleFilter

    def _save(self, serializer, rule, changed):
        data = dict(serializer.validated_data)
        channels = data.pop("channels", None)
        for field, value in data.items():
            setattr(rule, field, value)
        try:
            serializer.instance = services.save_rule(rule, by=self.request.user, changed=changed, channels=channels,
                                                     source=API, request=self.request)
        except DjangoValidationError as exc:
            raise_field_errors(exc)

    def perform_create(self, serializer):
        self._save(serializer, Rule(), None)

    def perform_update(self, serializer):
        rule = serializer.instance
        changed = [f for f, v in serializer.validated_data.items() if f == "channels" or getattr(rule, f) != v]
        self._save(serializer, rule, changed)

    def perform_destroy(self, instance):
        services.delete_rule(instance, by=self.request.user, source=API, request=self.request)


@extend_schema_view(
    list=extend_schema(summary="Notification channels (URLs masked)",
                       responses={200: ChannelSerializer(many=True), **_errors(400, 401, 403)}),
    retrieve=extend_schema(summary="One channel (URL masked)", responses={200: ChannelSerializer, **_errors(401, 403, 404)}),
    create=extend_schema(summary="Add a channel (Admin)", responses={201: ChannelSerializer, **_errors(400, 401, 403)}),
    update=extend_schema(summary="Replace a channel (Admin); leave url out to keep it",
                         responses={200: ChannelSerializer, **_errors(400, 401, 403, 404)}),
    partial_update=extend_schema(summary="Change some fields of a channel (Admin)",
                                 responses={200: ChannelSerializer, **_errors(400, 401, 403, 404)}),
    destroy=extend_schema(summary="Delete a channel; its notification log stays (Admin)",
                          responses={204: None, **_errors(401, 403, 404)}),
)
@extend_schema(tags=["alerts"])
class ChannelViewSet(viewsets.ModelViewSet):
    """Notification channels (Apprise URLs, kept secret)."""

    queryset = Channel.objects.all()
    serializer_class = ChannelSerializer

    def get_permissions(self):
        if self.action == "test":
            return [TokenScopePermission(), require("alerts.test_channel")()]
        return super().get_permissions()

    def _save(self, serializer, channel, changed):
        for field, value in serializer.validated_data.items():
            setattr(channel, field, value)
        try:
            serializer.instance = services.save_channel(channel, by=self.request.user, changed=changed, source=API,
                                                        request=self.request)
        except DjangoValidationError as exc:
            raise_field_errors(exc)

    def perform_create(self, serializer):
        self._save(serializer, Channel(), None)

    def perform_update(self, serializer):
        channel = serializer.instance
        changed = [f for f, v in serializer.validated_data.items() if getattr(channel, f) != v]
        self._save(serializer, channel, changed)

    def perform_destroy(self, instance):
        services.delete_channel(instance, by=self.request.user, source=API, request=self.request)

    @extend_schema(summary="Send a test notification now (Admin); answers whether it went out and why not",
                   request=None, responses={200: ChannelTestSerializer, **_errors(401, 403, 404)})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        from .notify import send_test

        ok, detail = send_test(self.get_object(), by=request.user, source=API, request=request)
        return Response({"ok": ok, "detail": detail})


@extend_schema(tags=["alerts"], summary="The alert evaluator: last cycle, its duration, overruns and skipped ticks",
               responses={200: EvaluatorStateSerializer, **_errors(401, 403)})
class EvaluatorStateView(APIView):
    queryset = EvaluatorState.objects.all()

    def get(self, request):
        state = EvaluatorState.objects.filter(pk=1).first() or EvaluatorState()
        return Response(EvaluatorStateSerializer(state).data)

