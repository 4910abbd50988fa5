"""Admin for agent definitions (how they run) and the list of runs (links to the run page)."""

from __future__ import annotations

from django.contrib import admin
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from opscenter.audit import record_audit
from opscenter.models import AuditSource

from .models import Agent, AgentKind, AgentRun


@admin.register(Agent)
class AgentAdmin(ModelAdmin):
    list_display = ["name", "slug", "parent", "kind", "enabled", "timeout_seconds", "retries", "page"]
    list_filter = ["kind", "enabled", "in_code"]
    search_fields = ["name", "slug", "description"]
    list_editable = ["enabled"]

    @admin.display(description="Page")
    def page(self, obj: Agent) -> str:
        return format_html('<a href="{}">open</a>', reverse("admin:agents_agent", args=[obj.slug]))

    def get_fields(self, request, obj=None):
        run = ["enabled", "timeout_seconds", "retries"]
        if obj is not None and obj.kind == AgentKind.BUILTIN:
            return ["slug", "name", "parent", "description", *run]
        return ["slug", "name", "kind", "parent", "description", "params_schema", *run, "position",
                "webhook_url", "webhook_secret"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.kind == AgentKind.BUILTIN:
            return ["slug", "name", "parent", "description"]  # the code defines these
        return ["slug"] if obj is not None else []

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "kind":  # built-in agents come from code, never from this form
            kwargs["choices"] = [(k, v) for k, v in AgentKind.choices if k != AgentKind.BUILTIN]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # disable instead: runs keep pointing at their agent

    def save_model(self, request, obj, form, change):
        if not change and not obj.kind:
            obj.kind = AgentKind.EXTERNAL
        super().save_model(request, obj, form, change)
        changed = sorted(set(form.changed_data) - {"webhook_secret"})
        if "webhook_secret" in form.changed_data:
            changed.append("webhook_secret (hidden)")
        record_audit("agent.changed" if change else "agent.created", actor=request.user, target=obj,
                     changes={"fields": changed}, source=AuditSource.UI, request=request)

    def response_change(self, request, obj):
        if "_continue" in request.POST or "_save" not in request.POST:
            return super().response_change(request, obj)
        super().response_change(request, obj)
        return redirect("admin:agents_agent", slug=obj.slug)


@admin.register(AgentRun)
class AgentRunAdmin(ModelAdmin):
    list_display = ["id", "agent", "status", "trigger", "triggered_by", "queued_at", "started_at", "finished_at",
                    "open_page"]
    list_filter = ["status", "trigger", "dry_run", "agent"]
    search_fields = ["id", "agent__slug", "external_id", "error"]
    list_select_related = ["agent", "triggered_by"]
    date_hierarchy = "queued_at"
    list_per_page = 50
    show_full_result_count = False

    @admin.display(description="Run page")
    def open_page(self, obj: AgentRun) -> str:
        return format_html('<a href="{}">open</a>', reverse("admin:agents_run", args=[obj.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return redirect("admin:agents_run", pk=object_id)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
