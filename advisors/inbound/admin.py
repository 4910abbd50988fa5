"""Admin of inbound sources (secrets shown once) and the read-only event ledger."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import action, display

from opscenter.audit import record_audit
from opscenter.models import AuditSource
from opscenter.services import DomainError

from . import services
from .models import EventStatus, EventType, InboundEvent, InboundSource

EVENT_COLOURS = {"received": "info", "processing": "info", "processed": "success", "failed": "danger",
                 "rejected": "warning"}


class InboundSourceForm(forms.ModelForm):
    expected_event_types = forms.MultipleChoiceField(
        choices=EventType.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to accept every type.",
    )
    health_url = forms.URLField(required=False, assume_scheme="https",
                                help_text="The service's /health URL, watched by a health check.")

    class Meta:
        model = InboundSource
        fields = ["name", "slug", "enabled", "expected_event_types", "health_url"]


@admin.register(InboundSource)
class InboundSourceAdmin(ModelAdmin):
    form = InboundSourceForm
    list_display = ["name", "slug", "enabled", "last_event_at", "last_heartbeat_at", "secret_state"]
    readonly_fields = ["secret_state", "last_event_at", "last_heartbeat_at", "created_at"]
    actions_detail = ["rotate_secret", "drop_previous_secret"]
    prepopulated_fields = {"slug": ["name"]}

    def get_fields(self, request, obj=None):
        fields = ["name", "slug", "enabled", "expected_event_types", "health_url"]
        return fields + (["secret_state", "last_event_at", "last_heartbeat_at", "created_at"] if obj else [])

    @display(description="Secrets")
    def secret_state(self, obj: InboundSource) -> str:
        # Never the secret itself: it was shown once, when it was made.
        tail = f"…{obj.secret[-4:]}"
        if obj.previous_secret:
            return f"current {tail}; the previous one (…{obj.previous_secret[-4:]}) still accepted"
        return f"current {tail}"

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            record_audit("inbound_source.changed" if change else "inbound_source.created", actor=request.user,
                         target=obj, changes={"fields": form.changed_data}, source=AuditSource.UI, request=request)
        if not change:
            messages.warning(
                request,
                format_html("Secret for “{}”: <code>{}</code> — copy it now, it is not shown again.",
                            obj.name, obj.secret),
            )

    @action(description="Rotate secret", url_path="rotate-secret", permissions=["change"])
    def rotate_secret(self, request, object_id):
        source = get_object_or_404(InboundSource, pk=object_id)
        if request.method != "POST":  # the action's link shows a confirmation; only its POST changes anything
            return self._confirm(request, source, "Rotate the secret?", "Rotate secret", (
                "A new secret is made and shown once. The current one stays valid until you drop it or rotate "
                "again, so the sender can switch without losing events."))
        secret = services.rotate_secret(source, by=request.user, request=request)
        messages.warning(request, format_html(
            "New secret for “{}”: <code>{}</code> — copy it now, it is not shown again. The previous secret "
            "stays valid until you drop it or rotate again.", source.name, secret))
        return redirect("admin:inbound_inboundsource_change", object_id)

    @action(description="Drop previous secret", url_path="drop-previous-secret", permissions=["change"])
    def drop_previous_secret(self, request, object_id):
        source = get_object_or_404(InboundSource, pk=object_id)
        if request.method != "POST":
            return self._confirm(request, source, "Stop accepting the previous secret?", "Drop previous secret",
                                 "Events signed with the previous secret will be refused from now on.")
        services.drop_previous_secret(source, by=request.user, request=request)
        messages.success(request, "Only the current secret is accepted now.")
        return redirect("admin:inbound_inboundsource_change", object_id)

    def _confirm(self, request, source, title, button, explanation):
        context = {**self.admin_site.each_context(request), "title": title, "button": button,
                   "explanation": explanation, "source": source}
        return TemplateResponse(request, "inbound/confirm_source_action.html", context)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # its events keep it; disable it instead


@admin.register(InboundEvent)
class InboundEventAdmin(ModelAdmin):
    list_display = ["event_id", "source", "type", "status_badge", "received_at", "processed_at", "attempts"]
    list_filter = ["status", "type", "source"]
    search_fields = ["event_id"]
    readonly_fields = [f.name for f in InboundEvent._meta.fields if f.name != "payload"] + ["pretty_payload"]
    exclude = ["payload"]
    actions = ["retry_failed"]
    list_select_related = ["source"]
    show_full_result_count = False

    @display(description="Status", label=EVENT_COLOURS)
    def status_badge(self, obj: InboundEvent) -> str:
        return obj.status

    @display(description="Payload")
    def pretty_payload(self, obj: InboundEvent) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(obj.payload, indent=2))

    @admin.action(description="Retry the selected failed events", permissions=["retry"])
    def retry_failed(self, request, queryset):
        retried = 0
        for event in queryset.filter(status=EventStatus.FAILED):
            try:
                services.retry_event(event, by=request.user, request=request)
                retried += 1
            except DomainError:
                pass
        messages.info(request, f"{retried} failed event(s) queued for processing again.")

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("inbound.retry_inboundevent")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
