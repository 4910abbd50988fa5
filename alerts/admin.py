"""Admin editors of alerting: rules (with a 24-hour preview), channels (secret URLs, send test),
escalation policies, maintenance windows and SLOs; silences, the notification ledger and the
evaluator's state to read.

Changes go through alerts.services (rules, channels, silences) or are audited here like the
other admins do; Admins configure, Operators manage maintenance windows, everyone reads.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin, TabularInline
from unfold.decorators import action, display

from opscenter.audit import record_audit
from opscenter.models import AuditSource
from opscenter.services import DomainError

from . import services
from .forms import ChannelForm, MaintenanceWindowForm, RuleForm, SLOForm
from .models import (
    OPEN_STATUSES,
    SLO,
    Channel,
    EscalationPolicy,
    EscalationStep,
    EvaluatorState,
    MaintenanceWindow,
    Notification,
    NotificationAttempt,
    Rule,
    Silence,
)
from .views.common import describe_rule

SEVERITY_COLOURS = {"critical": "danger", "high": "warning", "medium": "info", "low": "success"}
NOTIFICATION_COLOURS = {"pending": "info", "sending": "info", "sent": "success", "failed": "danger"}
# What a rule preview depends on: errors elsewhere (a duplicate name) do not stop a preview.
PREVIEW_FIELDS = {
    "metric", "matchers", "aggregation", "percentile", "window_seconds", "denominator_metric", "denominator_matchers",
    "comparator", "threshold", "for_seconds", "keep_firing_for_seconds", "no_data", "labels", "group_by",
    "active_days", "active_from", "active_until", "timezone", "summary_template",
}


class AuditedAdmin(ModelAdmin):
    """Writes an audit row for every change made through the admin (models without a service)."""

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            name = obj._meta.model_name
            record_audit(f"{name}.changed" if change else f"{name}.created", actor=request.user, target=obj,
                         changes={"fields": sorted(form.changed_data)}, source=AuditSource.UI, request=request)

    def delete_model(self, request, obj):
        with transaction.atomic():
            record_audit(f"{obj._meta.model_name}.deleted", actor=request.user, target=obj,
                         changes={"repr": str(obj)}, source=AuditSource.UI, request=request)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


def _metric_names() -> list[dict]:
    from monitoring.registry import Kind, all_metrics

    return [{"name": m.name, "help": m.help} for m in all_metrics() if m.kind is not Kind.HISTOGRAM and m.store]


# --- rules ----------------------------------------------------------------------------------------


@admin.register(Rule)
class RuleAdmin(ModelAdmin):
    form = RuleForm
    list_display = ["name", "severity_badge", "condition", "enabled", "open_alerts", "last_evaluated_at", "error"]
    list_filter = ["enabled", "severity", "aggregation"]
    search_fields = ["name", "metric", "description"]
    list_per_page = 100
    readonly_fields = ["last_evaluated_at", "last_error", "builtin_key", "created_at", "updated_at"]
    change_form_outer_after_template = "alerts/admin/rule_preview.html"
    # Tabs keep the long form short, so the preview under it is close to the condition being edited.
    fieldsets = [
        ("Rule", {"classes": ["tab"], "fields": ["name", "description", "enabled", "severity", "labels", "group_by",
                                                 "summary_template", "runbook_url"]}),
        ("Condition", {
            "classes": ["tab"],
            "fields": ["metric", "matchers", "aggregation", "percentile", "window_seconds", "denominator_metric",
                       "denominator_matchers", "comparator", "threshold", "for_seconds", "keep_firing_for_seconds",
                       "no_data"],
            "description": "The aggregation of the metric over the window, per group, compared with the threshold; "
                           "it fires once it has held for the 'for' duration.",
        }),
        ("Notifications", {"classes": ["tab"], "fields": ["channels", "escalation_policy", "group_wait_seconds",
                                                          "repeat_interval_seconds"]}),
        ("Active hours", {"classes": ["tab"], "fields": ["active_days", "active_from", "active_until", "timezone"],
                          "description": "Outside them the rule is not evaluated and its open alerts resolve."}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            open_count=Count("alerts", filter=Q(alerts__status__in=OPEN_STATUSES)))

    def get_fieldsets(self, request, obj=None):
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None:
            fieldsets.append(("Status", {"classes": ["tab"], "fields": ["last_evaluated_at", "last_error", "builtin_key", "created_at",
                                                    "updated_at"]}))
        return fieldsets

    @display(description="Severity", label=SEVERITY_COLOURS)
    def severity_badge(self, obj: Rule) -> str:
        return obj.severity

    @admin.display(description="Condition")
    def condition(self, obj: Rule) -> str:
        return describe_rule(obj)

    @admin.display(description="Open alerts", ordering="open_count")
    def open_alerts(self, obj: Rule) -> str:
        count = getattr(obj, "open_count", 0)
        if not count:
            return "0"
        return format_html('<a href="{}">{}</a>', reverse("admin:alerts"), count)

    @admin.display(description="Last error")
    def error(self, obj: Rule) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra = {"metric_names": _metric_names(), "preview_url": reverse("admin:alerts_rule_preview"),
                 **(extra_context or {})}
        return super().changeform_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):
        services.save_rule(obj, by=request.user, changed=form.changed_data, channels=form.cleaned_data.get("channels"),
                           source=AuditSource.UI, request=request)

    def save_related(self, request, form, formsets, change):
        # save_rule set the channels (and audited them); the form has no other relations.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        services.delete_rule(obj, by=request.user, source=AuditSource.UI, request=request)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def get_urls(self):
        urls = [path("preview/", self.admin_site.admin_view(rule_preview), name="alerts_rule_preview")]
        return urls + super().get_urls()


@require_POST
def rule_preview(request: HttpRequest) -> JsonResponse:
    """Answer the rule form's preview: the form's values (or the saved rule's) over the last 24 hours."""
    if not request.user.has_perm("alerts.view_rule"):
        raise PermissionDenied
    from .evaluation import preview_rule

    rule_id = request.POST.get("rule_id", "")
    instance = get_object_or_404(Rule, pk=int(rule_id)) if rule_id.isdigit() else Rule()
    if request.POST.get("saved") == "1":
        if instance.pk is None:
            return JsonResponse({"ok": False, "error": "Save the rule first, or preview the form."}, status=400)
        candidate = instance
    else:
        if not request.user.has_perm("alerts.change_rule" if instance.pk else "alerts.add_rule"):
            raise PermissionDenied
        form = RuleForm(request.POST, instance=instance)
        form.is_valid()
        errors = {name: [str(e) for e in errs] for name, errs in form.errors.items()
                  if name in PREVIEW_FIELDS or name == "__all__"}
        if errors:
            return JsonResponse({"ok": False, "error": "Fix these fields to preview:", "errors": errors},
                                status=400)
        candidate = form.instance
    try:
        result = preview_rule(candidate, hours=24)
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        return JsonResponse({"ok": False, "error": "The rule cannot be previewed.", "errors": errors}, status=400)
    return JsonResponse({"ok": True, **result})


# --- channels -------------------------------------------------------------------------------------


@admin.register(Channel)
class ChannelAdmin(ModelAdmin):
    form = ChannelForm
    list_display = ["name", "scheme_text", "masked", "enabled", "route_all", "min_severity", "test_status"]
    list_filter = ["enabled", "route_all", "min_severity"]
    search_fields = ["name"]
    readonly_fields = ["masked", "test_status", "created_at", "updated_at"]
    actions = ["send_test_selected"]
    actions_detail = ["send_test"]

    def get_fields(self, request, obj=None):
        fields = ["name"]
        if obj is not None:
            fields.append("masked")
        if self.has_change_permission(request, obj) or obj is None:
            fields.append("url")  # the input for a new URL (never filled with the saved one)
        fields += ["enabled", "route_all", "min_severity", "matchers", "send_resolved"]
        if obj is not None:
            fields += ["test_status", "created_at", "updated_at"]
        return fields

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": self.get_fields(request, obj)})]

    @admin.display(description="Kind")
    def scheme_text(self, obj: Channel) -> str:
        return f"{obj.scheme}://" if obj.scheme else "—"

    @admin.display(description="URL (hidden)")
    def masked(self, obj: Channel) -> str:
        return obj.masked_url

    @admin.display(description="Last test")
    def test_status(self, obj: Channel) -> str:
        if obj.last_test_at is None:
            return "never tested"
        when = timezone.localtime(obj.last_test_at).strftime("%d %b %H:%M")
        if obj.last_test_ok:
            return f"ok at {when}"
        return f"failed at {when}: {obj.last_test_error}"

    def save_model(self, request, obj, form, change):
        services.save_channel(obj, by=request.user, changed=form.changed_data if change else None,
                              source=AuditSource.UI, request=request)

    def delete_model(self, request, obj):
        services.delete_channel(obj, by=request.user, source=AuditSource.UI, request=request)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def has_test_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("alerts.test_channel")

    def _send_test(self, request, channel: Channel) -> bool:
        from .notify import send_test

        ok, what = send_test(channel, by=request.user, source=AuditSource.UI, request=request)
        if ok:
            messages.success(request, what)
        else:
            messages.error(request, f"The test message to {channel.name} failed: {what}")
        return ok

    @action(description="Send test", url_path="send-test", permissions=["test"], icon="send")
    def send_test(self, request, object_id):
        channel = get_object_or_404(Channel, pk=object_id)
        if request.method != "POST":  # the action's link shows a confirmation; only its POST sends
            context = {**self.admin_site.each_context(request), "title": f"Send a test message to {channel.name}?",
                       "channel": channel, "opts": self.model._meta}
            return TemplateResponse(request, "alerts/admin/confirm_channel_test.html", context)
        self._send_test(request, channel)
        return redirect("admin:alerts_channel_change", channel.pk)

    @admin.action(description="Send a test message to the selected channels", permissions=["test"])
    def send_test_selected(self, request, queryset):
        for channel in queryset:
            self._send_test(request, channel)


# --- escalation -------------------------------------------------------------------------------------


class EscalationStepInline(TabularInline):
    model = EscalationStep
    fields = ["level", "after_minutes", "channels"]
    extra = 0
    min_num = 1


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(AuditedAdmin):
    list_display = ["name", "ladder", "rules_count"]
    search_fields = ["name", "description"]
    inlines = [EscalationStepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(rule_count=Count("rules", distinct=True)).prefetch_related(
            "steps__channels")

    @admin.display(description="Steps")
    def ladder(self, obj: EscalationPolicy) -> str:
        steps = [f"{s.after_minutes} min → {', '.join(c.name for c in s.channels.all()) or 'nobody'}"
                 for s in obj.steps.all()]
        return "; ".join(steps) or "no steps"

    @admin.display(description="Rules", ordering="rule_count")
    def rules_count(self, obj: EscalationPolicy) -> int:
        return getattr(obj, "rule_count", 0)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if any(formset.has_changed() for formset in formsets):
            policy = form.instance
            steps = [{"level": s.level, "after_minutes": s.after_minutes,
                      "channels": sorted(c.name for c in s.channels.all())} for s in policy.steps.all()]
            record_audit("escalationpolicy.steps_changed", actor=request.user, target=policy,
                         changes={"steps": steps}, source=AuditSource.UI, request=request)


# --- silences and maintenance windows ------------------------------------------------------------------


@admin.register(Silence)
class SilenceAdmin(ModelAdmin):
    list_display = ["matchers", "state", "starts_at", "ends_at", "ended_at", "created_by", "comment"]
    list_filter = ["expire_on_resolve"]
    search_fields = ["matchers", "comment"]
    list_select_related = ["created_by"]
    actions = ["expire_selected"]
    readonly_fields = ["matchers", "starts_at", "ends_at", "comment", "created_by", "created_at", "alert",
                       "expire_on_resolve", "ended_at", "ended_by"]

    @admin.display(description="State")
    def state(self, obj: Silence) -> str:
        now = timezone.now()
        if obj.effective_end <= now:
            return "ended"
        return "upcoming" if obj.starts_at > now else "active"

    def changelist_view(self, request, extra_context=None):
        extra = {"subtitle": "Silences are created and ended on the silences page.",
                 **(extra_context or {})}
        return super().changelist_view(request, extra)

    def has_expire_permission(self, request) -> bool:
        return request.user.has_perm("alerts.change_silence")

    @admin.action(description="End the selected silences now", permissions=["expire"])
    def expire_selected(self, request, queryset):
        ended = 0
        for silence in queryset:
            try:
                services.expire_silence(silence, by=request.user, source=AuditSource.UI, request=request)
                ended += 1
            except DomainError:
                pass
        messages.info(request, f"{ended} silence(s) ended.")

    def has_add_permission(self, request) -> bool:
        return False  # on the silences page, through services.create_silence

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of who muted what stays


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(AuditedAdmin):
    form = MaintenanceWindowForm
    list_display = ["name", "when", "matchers", "enabled", "open_now"]
    list_filter = ["enabled"]
    search_fields = ["name", "matchers", "comment"]
    readonly_fields = ["created_by"]

    @admin.display(description="When")
    def when(self, obj: MaintenanceWindow) -> str:
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        days = ", ".join(names[d] for d in sorted(obj.days) if 0 <= d < 7) or "every day"
        return f"{days} {obj.start_time:%H:%M}–{obj.end_time:%H:%M} {obj.timezone}"

    @admin.display(description="Open now", boolean=True)
    def open_now(self, obj: MaintenanceWindow) -> bool:
        return obj.enabled and services.window_is_open(obj.days, obj.start_time, obj.end_time, obj.timezone,
                                                       timezone.now())

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


# --- the ledger and the evaluator (read only) ---------------------------------------------------------


class NotificationAttemptInline(TabularInline):
    model = NotificationAttempt
    fields = ["at", "ok", "duration_ms", "error"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ModelAdmin):
    list_display = ["created_at", "kind", "channel_name", "title", "status_badge", "attempts", "sent_at", "error"]
    list_filter = ["status", "kind", "channel_name"]
    search_fields = ["title", "dedupe_key", "channel_name"]
    inlines = [NotificationAttemptInline]
    show_full_result_count = False
    readonly_fields = ["channel_name", "kind", "escalation_level", "title", "body", "status", "attempts",
                       "next_attempt_at", "lease_until", "last_error", "created_at", "sent_at", "dedupe_key",
                       "group_key", "alert_links"]
    fields = readonly_fields

    @display(description="Status", label=NOTIFICATION_COLOURS)
    def status_badge(self, obj: Notification) -> str:
        return obj.status

    @admin.display(description="Last error")
    def error(self, obj: Notification) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    @admin.display(description="Alerts")
    def alert_links(self, obj: Notification) -> str:
        links = [format_html('<a href="{}">#{} {}</a>', reverse("admin:alerts_alert", args=[a.pk]), a.pk, a.rule_name)
                 for a in obj.alerts.all()[:50]]
        return format_html("{}", ", ".join(str(link) for link in links)) if links else "—"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EvaluatorState)
class EvaluatorStateAdmin(ModelAdmin):
    list_display = ["__str__", "last_started_at", "last_finished_at", "last_duration_ms", "rules_evaluated",
                    "overruns", "skipped", "last_error"]
    readonly_fields = ["cycles", "lease_until", "last_started_at", "last_finished_at", "last_duration_ms",
                       "rules_evaluated", "overruns", "last_overrun_at", "skipped", "last_error"]
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- SLOs (the figures and the report live on the SLO pages) -----------------------------------------


@admin.register(SLO)
class SLOAdmin(AuditedAdmin):
    form = SLOForm
    list_display = ["name", "indicator", "objective", "window_days", "enabled", "burn_rate_alerts", "severity"]
    list_filter = ["enabled", "indicator", "severity"]
    search_fields = ["name", "description"]

    def save_model(self, request, obj, form, change):
        from .slo import save_slo

        save_slo(obj, by=request.user, changed=form.changed_data if change else None, source=AuditSource.UI,
                 request=request)

    def delete_model(self, request, obj):
        from .slo import delete_slo

        delete_slo(obj, by=request.user, source=AuditSource.UI, request=request)

