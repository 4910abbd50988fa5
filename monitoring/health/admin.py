"""Health checks are created and edited here (Admins); everyone with a role may look."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from unfold.admin import ModelAdmin

from opscenter.models import AuditSource
from opscenter.services import DomainError

from . import services
from .models import HealthCheck

# The fields of a system check that the settings decide (see services.SYSTEM_TARGET_FIELDS).
SYSTEM_READONLY = ["kind", "url", "headers", "path", "is_webhook_service"]


class HealthCheckForm(forms.ModelForm):
    class Meta:
        model = HealthCheck
        fields = ["name", "kind", "description", "enabled", "interval_seconds", "timeout_seconds", "url", "method",
                  "expected_status", "keyword", "json_path", "json_expected", "headers", "verify_tls",
                  "follow_redirects", "is_webhook_service", "host", "port", "expected_workers", "path",
                  "threshold_percent", "pid_file", "process_name"]
        widgets = {
            "headers": forms.Textarea(attrs={"rows": 3, "placeholder": '{"Accept": "application/json"}'}),
            "description": forms.TextInput(),
        }

    def clean_headers(self):
        value = self.cleaned_data.get("headers")
        return {} if value in (None, "") else value


@admin.register(HealthCheck)
class HealthCheckAdmin(ModelAdmin):
    form = HealthCheckForm
    list_display = ["name", "kind", "target_text", "enabled", "state", "last_checked_at", "last_latency_ms", "page"]
    list_filter = ["kind", "enabled", "state"]
    search_fields = ["name", "url", "host", "path", "process_name", "description"]
    list_per_page = 100
    fieldsets = [
        (None, {"fields": ["name", "kind", "description", "enabled", "interval_seconds", "timeout_seconds"]}),
        ("HTTP(S) — also the URL of a Redis check", {
            "fields": ["url", "method", "expected_status", "keyword", "json_path", "json_expected", "headers",
                       "verify_tls", "follow_redirects", "is_webhook_service"],
        }),
        ("TCP", {"fields": ["host", "port"]}),
        ("Celery workers", {"fields": ["expected_workers"]}),
        ("Disk", {"fields": ["path", "threshold_percent"]}),
        ("Process", {"fields": ["pid_file", "process_name"],
                     "description": "Looked for on the machine of the worker that runs the check."}),
    ]

    @admin.display(description="Target")
    def target_text(self, obj: HealthCheck) -> str:
        return obj.target()

    @admin.display(description="Page")
    def page(self, obj: HealthCheck) -> str:
        return format_html('<a href="{}">open</a>', reverse("admin:health_check", args=[obj.pk]))

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        # Request headers may carry credentials: only those who may change a check see them.
        return [(title, {**options, "fields": [f for f in options["fields"] if f != "headers"]})
                for title, options in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_system:
            return SYSTEM_READONLY  # bootstrap keeps these in line with the settings
        return []

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_system:
            return False  # it would come back at the next start: disable it instead
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change) -> None:
        services.save_check(obj, by=request.user, changed=form.changed_data, source=AuditSource.UI, request=request)

    def delete_model(self, request, obj) -> None:
        try:
            services.delete_check(obj, by=request.user, source=AuditSource.UI, request=request)
        except DomainError as exc:
            messages.error(request, str(exc))

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def response_add(self, request, obj, post_url_continue=None):
        if "_continue" in request.POST or "_addanother" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        super().response_add(request, obj, post_url_continue)
        return redirect("admin:health_check", pk=obj.pk)

    def response_change(self, request, obj):
        if "_continue" in request.POST or "_save" not in request.POST:
            return super().response_change(request, obj)
        super().response_change(request, obj)
        return redirect("admin:health_check", pk=obj.pk)

