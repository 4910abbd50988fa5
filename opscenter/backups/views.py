"""The backups console page: list, back up now, verify, download and restore (with a typed confirmation).

Views hold no rules: they check the permission, call opscenter.backups.services and map its
refusals to form errors (400) or messages. While a job is queued or running the list polls
itself with htmx every two seconds, so a backup's progress shows without a reload.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from opscenter.models import AuditSource
from opscenter.services import DomainError

from . import engines, services
from .models import Backup, Restore

VIEW = "backups.view_backup"
TAKE = "backups.take_backup"
DOWNLOAD = "backups.download_backup"
RESTORE = "backups.restore_backup"
LISTED = 100


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> TemplateResponse:
    from django.contrib import admin

    return TemplateResponse(request, template, {**admin.site.each_context(request), **context}, status=status)


def _list_context(request: HttpRequest) -> dict[str, Any]:
    user = request.user
    return {
        "backups": list(Backup.objects.all()[:LISTED]),
        "restores": list(Restore.objects.all()[:5]),
        "busy": services.busy(),
        "can_take": user.has_perm(TAKE),
        "can_download": user.has_perm(DOWNLOAD),
        "can_restore": user.has_perm(RESTORE),
    }


def _storage_label() -> str:
    if settings.BACKUPS_S3_BUCKET:
        return f"S3 bucket {settings.BACKUPS_S3_BUCKET}"
    return str(settings.BACKUPS_DIR)


@require_GET
def backups_page(request: HttpRequest) -> TemplateResponse:
    """The backups: status of each, and the actions the user's role allows."""
    _require(request, VIEW)
    next_run, schedule = services.next_scheduled_run()
    last = services.last_success()
    return _page(request, "backups/backups.html", {
        "title": "Backups",
        **_list_context(request),
        "last": last,
        "next_run": next_run,
        "schedule": schedule,
        "keep_daily": settings.BACKUPS_KEEP_DAILY,
        "keep_weekly": settings.BACKUPS_KEEP_WEEKLY,
        "storage": _storage_label(),
        "vendor": {"postgresql": "PostgreSQL", "sqlite": "SQLite"}[engines.vendor()],
    })


@require_GET
def backups_list(request: HttpRequest) -> TemplateResponse:
    """The list alone, for the page's polling while a job runs."""
    _require(request, VIEW)
    return TemplateResponse(request, "backups/_list.html", _list_context(request))


@require_POST
def create(request: HttpRequest) -> HttpResponse:
    """Queue a backup now."""
    _require(request, TAKE)
    try:
        backup = services.request_backup(by=request.user, source=AuditSource.UI, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Backup #{backup.pk} is queued; this page follows it.")
    return redirect("admin:backups")


@require_POST
def verify(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a verify of one backup."""
    _require(request, TAKE)
    backup = get_object_or_404(Backup, pk=pk)
    try:
        services.request_verify(backup, by=request.user, source=AuditSource.UI, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Verifying {backup}: it is restored into a scratch database and counted.")
    return redirect("admin:backups")


@require_GET
def download(request: HttpRequest, pk: int) -> HttpResponse:
    """Stream one backup file, its SHA-256 in the X-Checksum-SHA256 header."""
    _require(request, DOWNLOAD)
    backup = get_object_or_404(Backup, pk=pk)
    try:
        handle = services.open_backup_file(backup, by=request.user, source=AuditSource.UI, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("admin:backups")
    return file_response(backup, handle)


def file_response(backup: Backup, handle) -> FileResponse:
    """Build the streamed download of a backup file (shared with the API)."""
    response = FileResponse(handle, as_attachment=True, filename=backup.file_name,
                            content_type="application/octet-stream")
    response["X-Checksum-SHA256"] = backup.sha256
    if backup.size is not None:
        response["Content-Length"] = str(backup.size)
    response["Cache-Control"] = "no-store"
    return response


class RestoreForm(forms.Form):
    confirmation = forms.CharField(
        label="Type the backup's file name, or the word “restore”", max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}),
    )


@require_http_methods(["GET", "POST"])
def restore(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask for the typed confirmation, then queue the restore (Admin only)."""
    _require(request, RESTORE)
    backup = get_object_or_404(Backup, pk=pk)
    form = RestoreForm(data=request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                restore_row = services.request_restore(backup, by=request.user,
                                                       confirmation=form.cleaned_data["confirmation"],
                                                       source=AuditSource.UI, request=request)
            except services.BackupInvalid as exc:
                for field, errors in (getattr(exc, "fields", None) or {None: [str(exc)]}).items():
                    for error in errors:
                        form.add_error(field, error)
            except DomainError as exc:
                form.add_error(None, str(exc))
            else:
                messages.warning(request, f"Restore #{restore_row.pk} from {backup} is queued: a safety backup is "
                                 "taken first. You may have to sign in again when it is done.")
                return redirect("admin:backups")
        status = 400
    return _page(request, "backups/confirm_restore.html", {
        "title": f"Restore {backup}?", "backup": backup, "form": form,
    }, status=status)


def console_urls(site) -> list[URLPattern]:
    """Return the backups pages, each behind the admin site's sign-in."""
    wrap = site.admin_view
    return [
        path("backups/", wrap(backups_page), name="backups"),
        path("backups/list/", wrap(backups_list), name="backups_list"),
        path("backups/create/", wrap(create), name="backups_create"),
        path("backups/<int:pk>/verify/", wrap(verify), name="backups_verify"),
        path("backups/<int:pk>/download/", wrap(download), name="backups_download"),
        path("backups/<int:pk>/restore/", wrap(restore), name="backups_restore"),
    ]
