"""Admin for what people tune in the engine: topics, feeds, compliance rules and settings.
Cycles and their entries are read-only records of what the agents did."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin, TabularInline

from opscenter.audit import record_audit
from opscenter.models import AuditSource

from .models import ComplianceRule, Cycle, CycleAdvisor, DailyRollup, EngineSettings, Topic, TopicFeed


class AuditedAdmin(ModelAdmin):
    """Writes an audit row for every change made through the admin."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        name = obj._meta.model_name
        record_audit(f"{name}.changed" if change else f"{name}.created", actor=request.user, target=obj,
                     changes={"fields": sorted(form.changed_data)}, source=AuditSource.UI, request=request)

    def delete_model(self, request, obj):
        record_audit(f"{obj._meta.model_name}.deleted", actor=request.user, target=obj,
                     changes={"repr": str(obj)}, source=AuditSource.UI, request=request)
        super().delete_model(request, obj)


@admin.register(Topic)
class TopicAdmin(AuditedAdmin):
    list_display = ["title", "category", "source", "enabled", "created_at"]
    list_filter = ["enabled", "source", "category"]
    search_fields = ["title", "summary", "category"]
    list_editable = ["enabled"]
    readonly_fields = ["source", "feed", "external_id", "published_at"]


@admin.register(TopicFeed)
class TopicFeedAdmin(AuditedAdmin):
    list_display = ["name", "url", "category", "enabled", "last_fetched_at", "items_added", "last_error"]
    list_filter = ["enabled"]
    readonly_fields = ["last_fetched_at", "items_added", "last_error"]
    actions = ["refresh_now"]

    @admin.action(description="Refresh now (add new items to the topic bank)")
    def refresh_now(self, request, queryset):
        from .feeds import refresh_feed

        for feed in queryset:
            added = refresh_feed(feed)
            feed.refresh_from_db()
            if feed.last_error:
                self.message_user(request, f"{feed.name}: {feed.last_error}", messages.ERROR)
            else:
                self.message_user(request, f"{feed.name}: {added} new topics.", messages.SUCCESS)


@admin.register(ComplianceRule)
class ComplianceRuleAdmin(AuditedAdmin):
    list_display = ["name", "kind", "severity", "value_short", "limit", "enabled"]
    list_filter = ["kind", "severity", "enabled"]
    search_fields = ["name", "value", "message"]
    list_editable = ["enabled"]

    @admin.display(description="Value")
    def value_short(self, obj: ComplianceRule) -> str:
        return obj.value if len(obj.value) <= 60 else obj.value[:57] + "…"


@admin.register(EngineSettings)
class EngineSettingsAdmin(AuditedAdmin):
    fieldsets = [
        ("Brand (image cards)", {"fields": ["brand_name", "brand_primary", "brand_accent", "brand_text"]}),
        ("Cycle", {"fields": ["batch_size"]}),
        ("Fatigue", {"fields": ["fatigue_history", "fatigue_threshold", "max_regenerations"]}),
        ("Approval guardian", {"fields": ["guardian_enabled", "guardian_min_age_minutes"]}),
    ]

    def has_add_permission(self, request) -> bool:
        return False  # one row, made on first use

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        """There is one settings row: open it instead of a list of one."""
        from django.shortcuts import redirect

        return redirect("admin:engine_enginesettings_change", EngineSettings.load().pk)


class CycleAdvisorInline(TabularInline):
    model = CycleAdvisor
    fields = ["advisor", "batch", "topic", "stage", "fatigue_flagged", "regenerations", "content_link", "error"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0
    show_change_link = False

    @admin.display(description="Content")
    def content_link(self, obj: CycleAdvisor) -> str:
        if not obj.content_id:
            return "—"
        return format_html('<a href="{}">#{}</a>', reverse("admin:advisors_content_change", args=[obj.content_id]),
                           obj.content_id)

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Cycle)
class CycleAdmin(ModelAdmin):
    list_display = ["__str__", "cycle_date", "status", "dry_run", "advisors_targeted", "batches", "run_link",
                    "created_at", "finished_at"]
    list_filter = ["status", "dry_run", "cycle_date"]
    date_hierarchy = "cycle_date"
    inlines = [CycleAdvisorInline]
    readonly_fields = ["cycle_date", "run", "status", "dry_run", "topic_override", "advisors_targeted", "batches",
                       "created_at", "finished_at"]

    @admin.display(description="Run")
    def run_link(self, obj: Cycle) -> str:
        if not obj.run_id:
            return "—"
        return format_html('<a href="{}">#{}</a>', reverse("admin:agents_run", args=[obj.run_id]), obj.run_id)

    def has_add_permission(self, request) -> bool:
        return False  # cycles are started by triggering the content orchestrator

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DailyRollup)
class DailyRollupAdmin(ModelAdmin):
    list_display = ["day", "advisors_served", "generated", "compliance_failed", "fatigue_flagged", "approved",
                    "rejected", "delivered", "delivery_failed", "computed_at"]
    date_hierarchy = "day"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
