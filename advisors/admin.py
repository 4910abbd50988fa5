"""Admin of advisors, their content and deliveries.

Advisors: CRUD with search and filters, enable / pause / disable through the service (never
deleted), CSV import with a preview, CSV export of the current filter, and an advisor page
(the change view) with content history and delivery figures. Content, deliveries and the
outbox are read-mostly: their states move only through advisors.services.
"""

from __future__ import annotations

import csv
import re
from collections.abc import AsyncIterator, Iterator
from datetime import date, datetime
from itertools import islice
from typing import Any

from asgiref.sync import sync_to_async
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, Max
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import RangeDateFilter
from unfold.decorators import display
from unfold.widgets import UnfoldAdminFileFieldWidget, UnfoldAdminTextInputWidget

from opscenter.audit import record_audit
from opscenter.models import AuditSource
from opscenter.paginators import EstimatedCountPaginator
from opscenter.services import DomainError

from . import importing
from .models import (
    Advisor,
    AdvisorStatus,
    ComplianceVerdict,
    Content,
    ContentStatus,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    OutboxMessage,
)
from .services import retry_delivery, set_advisor_status

STATUS_COLOURS = {"active": "success", "paused": "warning", "disabled": "danger"}
CONTENT_COLOURS = {
    ContentStatus.DRAFT: "",
    ContentStatus.PENDING_REVIEW: "info",
    ContentStatus.APPROVED: "primary",
    ContentStatus.REJECTED: "danger",
    ContentStatus.NEEDS_REVISION: "warning",
    ContentStatus.SCHEDULED: "primary",
    ContentStatus.DELIVERED: "success",
    ContentStatus.FAILED: "danger",
}
VERDICT_COLOURS = {
    ComplianceVerdict.PENDING: "",
    ComplianceVerdict.PASS: "success",
    ComplianceVerdict.WARN: "warning",
    ComplianceVerdict.FAIL: "danger",
}
DELIVERY_COLOURS = {
    "queued": "", "sending": "warning", "sent": "info", "delivered": "success", "read": "success", "failed": "danger",
}
OUTCOME_COLOURS = {"sent": "success", "retryable_error": "warning", "permanent_error": "danger", "unknown": "danger"}
PREVIEW_PAGE_SIZE = 100
PHONE_LIKE = re.compile(r"\+?[\d\s\-().]{6,}")
HISTORY_LENGTH = 20


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class TopicsField(forms.CharField):
    """Topics typed as text, separated by ; or | (or commas), stored as a list."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return "; ".join(value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return importing.normalise("topics", text.replace(",", ";"))


class ArnField(forms.CharField):
    """An ARN, upper-cased and without spaces before the validators see it."""

    def to_python(self, value):
        return importing.normalise("arn", super().to_python(value))


class PhoneField(forms.CharField):
    """A phone without spaces, dashes or brackets before the validators see it."""

    def to_python(self, value):
        return importing.normalise("phone", super().to_python(value))


class AdvisorForm(forms.ModelForm):
    topics = TopicsField(
        required=False,
        widget=UnfoldAdminTextInputWidget,
        help_text="Topics this advisor wants, separated by ; — e.g. SIP; tax saving; retirement",
    )

    class Meta:
        model = Advisor
        fields = ["name", "arn", "phone", "email", "status", "segment", "language", "topics"]
        field_classes = {"arn": ArnField, "phone": PhoneField}


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        widget=UnfoldAdminFileFieldWidget(attrs={"accept": ".csv,text/csv"}),
        help_text=f"UTF-8 CSV, up to {importing.MAX_BYTES // 1024 // 1024} MB and {importing.MAX_ROWS:,} rows.",
    )


def _streamed(lines: Iterator[str], request: HttpRequest) -> Iterator[str] | AsyncIterator[str]:
    """Return `lines` in the form the server streams without holding them all in memory.

    Under ASGI (daphne) Django would turn a plain iterator into one list first; an async
    iterator that pulls batches in the request's own thread (its database connection) streams.
    """
    if not isinstance(request, ASGIRequest):
        return lines

    take = sync_to_async(lambda: "".join(islice(lines, 500)), thread_sensitive=True)

    async def batches() -> AsyncIterator[str]:
        while chunk := await take():
            yield chunk

    return batches()


class _Echo:
    """A file-like object that hands back what is written: csv.writer into a stream."""

    def write(self, value: str) -> str:
        return value


@admin.register(Advisor)
class AdvisorAdmin(ModelAdmin):
    form = AdvisorForm
    list_display = ["name", "arn", "phone", "status_label", "segment", "language", "updated_at"]
    search_fields = ["name", "arn", "phone"]
    search_help_text = "Name, ARN or phone"
    list_filter = ["status", "language", "segment"]
    actions = ["enable", "pause", "disable"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    fieldsets = (
        (None, {"fields": ["name", "arn", "phone", "email"]}),
        ("Content and delivery", {"fields": ["status", "segment", "language", "topics"]}),
        ("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    )
    readonly_fields = ["created_at", "updated_at"]
    list_before_template = "advisors/advisor_changelist_tools.html"
    change_form_outer_before_template = "advisors/advisor_summary.html"
    change_form_outer_after_template = "advisors/advisor_history.html"

    class Media:
        css = {"all": ["advisors/advisors.css"]}

    @display(description="Status", ordering="status", label=STATUS_COLOURS)
    def status_label(self, obj: Advisor):
        return obj.status, obj.get_status_display()

    def get_search_results(self, request, queryset, search_term):
        # "+91 98123-45678" finds the advisor stored as +919812345678.
        if PHONE_LIKE.fullmatch(search_term.strip()):
            search_term = importing.normalise("phone", search_term)
        return super().get_search_results(request, queryset, search_term)

    @display(description="Topics")
    def topics_list(self, obj: Advisor) -> str:
        return ", ".join(obj.topics) or "—"

    def _read_only(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._read_only(request, obj):
            return fieldsets
        # Who can only view sees topics as a list, not as JSON.
        return [
            (name, {**options, "fields": ["topics_list" if f == "topics" else f for f in options["fields"]]})
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "topics_list"] if self._read_only(request, obj) else fields

    # --- never deleted: disabled ----------------------------------------------------------------

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_import_permission(self, request) -> bool:
        return request.user.has_perm("advisors.import_advisor")

    # --- saving: an audit row; status changes go through the service ----------------------------

    def save_model(self, request, obj: Advisor, form, change: bool) -> None:
        if not change:
            obj.save()
            record_audit(
                "advisor.created",
                actor=request.user,
                target=obj,
                changes={name: _json_safe(form.cleaned_data.get(name)) for name in form.fields},
                source=AuditSource.UI,
                request=request,
            )
            return
        fields = [name for name in form.changed_data if name != "status"]
        if fields:
            # Only what the form changed: a status set meanwhile by someone else is not undone.
            obj.save(update_fields=[*fields, "updated_at"])
            record_audit(
                "advisor.changed",
                actor=request.user,
                target=obj,
                changes={
                    name: [_json_safe(form.initial.get(name)), _json_safe(form.cleaned_data.get(name))]
                    for name in fields
                },
                source=AuditSource.UI,
                request=request,
            )
        if "status" in form.changed_data:
            set_advisor_status(obj, form.cleaned_data["status"], by=request.user, source=AuditSource.UI, request=request)

    # --- status actions ---------------------------------------------------------------------------

    def _set_status(self, request, queryset, status: str) -> None:
        label = AdvisorStatus(status).label.lower()
        changed = unchanged = 0
        for advisor in queryset.iterator(chunk_size=500):
            if advisor.status == status:
                unchanged += 1
                continue
            set_advisor_status(advisor, status, by=request.user, source=AuditSource.UI, request=request)
            self.log_change(request, advisor, f"Status set to {label}.")
            changed += 1
        text = f"{changed} advisor{'s' if changed != 1 else ''} set to {label}."
        if unchanged:
            text += f" {unchanged} already {'were' if unchanged != 1 else 'was'} {label}."
        self.message_user(request, text, messages.SUCCESS if changed else messages.INFO)

    @admin.action(description="Enable (set active)", permissions=["change"])
    def enable(self, request, queryset) -> None:
        self._set_status(request, queryset, AdvisorStatus.ACTIVE)

    @admin.action(description="Pause", permissions=["change"])
    def pause(self, request, queryset) -> None:
        self._set_status(request, queryset, AdvisorStatus.PAUSED)

    @admin.action(description="Disable (keeps all history)", permissions=["change"])
    def disable(self, request, queryset) -> None:
        self._set_status(request, queryset, AdvisorStatus.DISABLED)

    # --- the advisor page ---------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        advisor = self.get_object(request, unquote(object_id))
        if advisor is not None:
            extra_context = {**(extra_context or {}), "advisor_page": advisor_page_context(advisor)}
        return super().change_view(request, object_id, form_url, extra_context)

    # --- import and export --------------------------------------------------------------------

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="advisors_advisor_import"),
            path("import/template.csv", wrap(self.import_template_view), name="advisors_advisor_import_template"),
            path("import/<str:token>/", wrap(self.import_preview_view), name="advisors_advisor_import_preview"),
            path(
                "import/<str:token>/confirm/",
                wrap(require_POST(self.import_confirm_view)),
                name="advisors_advisor_import_confirm",
            ),
            path("export.csv", wrap(self.export_view), name="advisors_advisor_export"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_import": self.has_import_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def _page(self, request, template: str, context: dict) -> TemplateResponse:
        return TemplateResponse(
            request,
            template,
            # model_admin (not opts): Unfold's header then reads "Advisors and content › Advisors › <title>".
            {**self.admin_site.each_context(request), "model_admin": self, **context},
        )

    def _require_import(self, request) -> None:
        if not self.has_import_permission(request):
            raise PermissionDenied

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a CSV; on success, show its preview (nothing is written yet)."""
        self._require_import(request)
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        file_error = None
        if request.method == "POST" and form.is_valid():
            try:
                preview = importing.read_upload(form.cleaned_data["file"])
            except importing.ImportFileError as exc:
                file_error = str(exc)
            else:
                token = importing.store_preview(preview, request.user)
                return redirect("admin:advisors_advisor_import_preview", token=token)
        return self._page(
            request,
            "advisors/import_upload.html",
            {
                "title": "Import advisors from CSV",
                "form": form,
                "file_error": file_error,
                "columns": importing.COLUMNS,
                "required_columns": importing.REQUIRED_COLUMNS,
                "max_rows": importing.MAX_ROWS,
            },
        )

    def import_template_view(self, request: HttpRequest) -> HttpResponse:
        """Download the CSV template."""
        self._require_import(request)
        response = HttpResponse("\ufeff" + importing.template_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="advisors-template.csv"'
        return response

    def import_preview_view(self, request: HttpRequest, token: str) -> HttpResponse:
        """Show a stored preview, a page of rows at a time (all rows, or only those with errors)."""
        self._require_import(request)
        preview = importing.load_preview(token, request.user)
        if preview is None:
            messages.warning(request, "That import preview has expired or is not yours; upload the file again.")
            return redirect("admin:advisors_advisor_import")
        return self._preview_page(request, token, preview)

    def _preview_page(self, request, token: str, preview: importing.ImportPreview, status: int = 200):
        only_errors = request.GET.get("show") == "errors"
        rows = [r for r in preview.rows if not r.valid] if only_errors else preview.rows
        page = Paginator(rows, PREVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
        response = self._page(
            request,
            "advisors/import_preview.html",
            {
                "title": "Check the import",
                "token": token,
                "preview": preview,
                "counts": preview.counts,
                "page": page,
                "rows": [{"row": r, "cells": r.cells(preview.columns)} for r in page.object_list],
                "only_errors": only_errors,
            },
        )
        response.status_code = status
        return response

    def import_confirm_view(self, request: HttpRequest, token: str) -> HttpResponse:
        """Write the confirmed preview: all rows, or only the valid ones."""
        self._require_import(request)
        preview = importing.load_preview(token, request.user)
        if preview is None:
            messages.warning(request, "That import preview has expired or is not yours; upload the file again.")
            return redirect("admin:advisors_advisor_import")
        mode = request.POST.get("mode", "")
        try:
            with transaction.atomic():
                result = importing.apply_import(
                    preview, mode=mode, by=request.user, source=AuditSource.UI, request=request
                )
                self._log_import_history(request, result, preview.filename)
        except importing.ImportChanged as exc:
            importing.store_preview(exc.preview, request.user, token=token)
            messages.warning(request, str(exc))
            return redirect("admin:advisors_advisor_import_preview", token=token)
        except importing.ImportRefused as exc:
            messages.error(request, str(exc))
            return redirect("admin:advisors_advisor_import_preview", token=token)
        importing.drop_preview(token, request.user)
        messages.success(request, f"Import done: {result.summary()}.")
        return redirect("admin:advisors_advisor_changelist")

    def _log_import_history(self, request, result: importing.ImportResult, filename: str) -> None:
        """Put the import into each advisor's change history."""
        from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

        source = f" {filename}" if filename else ""
        for ids, flag, text in (
            (result.created_ids, ADDITION, f"Imported from CSV{source}."),
            (result.updated_ids, CHANGE, f"Updated from CSV{source}."),
        ):
            for start in range(0, len(ids), 1000):
                LogEntry.objects.log_actions(
                    user_id=request.user.pk,
                    queryset=Advisor.objects.filter(pk__in=ids[start : start + 1000]),
                    action_flag=flag,
                    change_message=text,
                )

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Stream the advisors the changelist shows for the same filters and search, as CSV."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            messages.error(request, "Those filters are not valid; nothing was exported.")
            return HttpResponseRedirect(reverse("admin:advisors_advisor_changelist"))
        rows = changelist.queryset.values_list(*importing.COLUMNS)
        record_audit(
            "advisor.exported",
            actor=request.user,
            changes={"filters": {k: v for k, v in request.GET.items()}},
            source=AuditSource.UI,
            request=request,
        )
        writer = csv.writer(_Echo())

        def lines():
            yield "\ufeff" + writer.writerow(importing.COLUMNS)
            for row in rows.iterator(chunk_size=2000):
                yield writer.writerow([importing.export_cell(value) for value in row])

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(_streamed(lines(), request), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="advisors-{stamp}.csv"'
        return response


def advisor_page_context(advisor: Advisor) -> dict[str, Any]:
    """Gather what the advisor page shows besides the profile: content history and deliveries."""
    content_counts = dict(
        Content.objects.filter(advisor=advisor).values_list("status").annotate(n=Count("id")).order_by()
    )
    delivery_rows = (
        Delivery.objects.filter(content__advisor=advisor).values_list("status").annotate(n=Count("id")).order_by()
    )
    by_status = dict.fromkeys(DeliveryStatus.values, 0)
    by_status.update(dict(delivery_rows))
    total = sum(by_status.values())
    left_queue = total - by_status[DeliveryStatus.QUEUED]
    delivered = by_status[DeliveryStatus.DELIVERED] + by_status[DeliveryStatus.READ]
    last_delivered = Delivery.objects.filter(content__advisor=advisor).aggregate(at=Max("delivered_at"))["at"]
    recent = list(
        Content.objects.filter(advisor=advisor)
        .order_by("-cycle_date", "-id")
        .only("id", "title", "status", "cycle_date", "kind", "compliance_verdict")[:HISTORY_LENGTH]
    )
    return {
        "status_colour": STATUS_COLOURS.get(advisor.status, ""),
        "content_total": sum(content_counts.values()),
        "content_pending": content_counts.get(ContentStatus.PENDING_REVIEW, 0),
        "content_counts": [
            {"status": s, "label": s.label, "count": content_counts.get(s.value, 0), "colour": CONTENT_COLOURS[s]}
            for s in ContentStatus
            if content_counts.get(s.value)
        ],
        "deliveries": [
            {"status": s, "label": s.label, "count": by_status[s.value], "colour": DELIVERY_COLOURS[s.value]}
            for s in DeliveryStatus
        ],
        "deliveries_total": total,
        "delivered": delivered,
        "delivered_rate": round(100 * delivered / left_queue, 1) if left_queue else None,
        "last_delivered_at": last_delivered,
        "recent": [
            {"item": c, "colour": CONTENT_COLOURS.get(c.status, ""), "status_label": c.get_status_display()}
            for c in recent
        ],
        "more": sum(content_counts.values()) > len(recent),
    }


# --- content, deliveries, outbox: read-mostly ------------------------------------------------


@admin.register(Content)
class ContentAdmin(ModelAdmin):
    list_display = ["title", "advisor", "cycle_date", "kind", "status_label", "verdict_label", "fatigue"]
    list_filter = [
        "status",
        "compliance_verdict",
        "kind",
        ("cycle_date", RangeDateFilter),
    ]
    list_filter_submit = True
    search_fields = ["title", "advisor__name", "advisor__arn"]
    list_select_related = ["advisor"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    raw_id_fields = ["advisor", "revision_of"]
    readonly_fields = [
        "status",
        "reviewer",
        "reviewed_at",
        "version",
        "submitted_at",
        "claimed_by",
        "claim_expires_at",
        "compliance_verdict",
        "compliance_findings",
        "fatigue_score",
        "generating_run_id",
        "created_at",
        "updated_at",
        "delivery_attempts",
    ]
    fieldsets = (
        (None, {"fields": ["advisor", "cycle_date", "kind", "title", "body", "image", "topic"]}),
        ("Review", {"fields": ["status", "version", "reviewer", "reviewed_at", "review_note", "submitted_at",
                               "claimed_by", "claim_expires_at"]}),
        ("Checks", {"fields": ["compliance_verdict", "compliance_findings", "fatigue_score"]}),
        ("Delivery", {"fields": ["delivery_attempts"]}),
        ("Origin", {"fields": ["generating_run_id", "revision_of", "created_at", "updated_at"]}),
    )

    @display(description="Delivery attempts")
    def delivery_attempts(self, obj: Content) -> str:
        attempts = (
            DeliveryAttempt.objects.filter(delivery__content=obj)
            .select_related("delivery")
            .order_by("delivery_id", "number")
        )
        if not attempts:
            return "No delivery attempt yet."
        rows = format_html_join(
            "",
            "<tr><td><a href=\"{}\">{} #{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:advisors_delivery_change", args=[a.delivery_id]),
                    a.delivery.channel,
                    a.number,
                    timezone.localtime(a.started_at).strftime("%Y-%m-%d %H:%M:%S"),
                    a.get_outcome_display() if a.finished_at else "in flight",
                    a.http_status or "—",
                    a.provider_message_id or "—",
                    a.error or "",
                )
                for a in attempts
            ),
        )
        return format_html(
            '<table class="w-full text-sm" data-testid="delivery-attempts"><thead><tr><th>Attempt</th>'
            "<th>Started</th><th>Outcome</th><th>HTTP</th><th>Provider id</th><th>Error</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @display(description="Status", ordering="status", label=CONTENT_COLOURS)
    def status_label(self, obj: Content):
        return obj.status, obj.get_status_display()

    @display(description="Compliance", ordering="compliance_verdict", label=VERDICT_COLOURS)
    def verdict_label(self, obj: Content):
        return obj.compliance_verdict, obj.get_compliance_verdict_display()

    @display(description="Fatigue", ordering="fatigue_score")
    def fatigue(self, obj: Content) -> str:
        return "—" if obj.fatigue_score is None else f"{obj.fatigue_score:.2f}"

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # Review notes are written by the review actions, not edited afterwards.
            fields.append("review_note")
        return fields

    def has_add_permission(self, request) -> bool:
        # Content is written by the engine; states move through the review services.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: Content, form, change: bool) -> None:
        fields = [name for name in form.changed_data if name not in self.readonly_fields]
        if not fields:
            return
        # An edited text is a new version: a reviewer holding the old one gets a conflict.
        obj.version = F("version") + 1
        obj.save(update_fields=[*fields, "version", "updated_at"])
        obj.refresh_from_db(fields=["version"])
        record_audit(
            "content.edited",
            actor=request.user,
            target=obj,
            changes={"fields": sorted(fields), "version": obj.version},
            source=AuditSource.UI,
            request=request,
        )


class _ReadOnlyAdmin(ModelAdmin):
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class DeliveryAttemptInline(TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "finished_at", "outcome", "http_status", "duration_ms", "provider_message_id",
              "error"]
    readonly_fields = fields
    ordering = ["number"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(_ReadOnlyAdmin):
    list_display = ["id", "content", "channel", "recipient", "status_label", "attempts", "sent_at", "delivered_at"]
    list_filter = ["status"]  # not channel: its DISTINCT would scan every delivery per page view
    search_fields = ["recipient", "provider_message_id", "content__title"]
    list_select_related = ["content__advisor"]
    raw_id_fields = ["content"]
    inlines = [DeliveryAttemptInline]
    actions = ["retry"]

    @display(description="Status", ordering="status", label=DELIVERY_COLOURS)
    def status_label(self, obj: Delivery):
        return obj.status, obj.get_status_display()

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("advisors.retry_delivery")

    @admin.action(description="Retry delivery (send a failed one again)", permissions=["retry"])
    def retry(self, request, queryset) -> None:
        """Queue the selected failed deliveries again; you take responsibility for a possible repeat."""
        retried, refused = 0, []
        for delivery in queryset.iterator(chunk_size=200):
            try:
                retry_delivery(delivery, by=request.user, source=AuditSource.UI, request=request)
            except DomainError as exc:
                refused.append(f"#{delivery.pk}: {exc}")
                continue
            self.log_change(request, delivery, "Queued again by hand.")
            retried += 1
        if retried:
            self.message_user(
                request, f"{retried} deliver{'ies' if retried != 1 else 'y'} queued again.", messages.SUCCESS
            )
        for text in refused[:20]:
            self.message_user(request, text, messages.WARNING)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(_ReadOnlyAdmin):
    list_display = ["id", "recipient", "delivery", "created_at"]
    search_fields = ["recipient"]
    list_select_related = ["delivery"]
    raw_id_fields = ["delivery"]
