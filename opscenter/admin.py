"""Admin registrations: the audit trail, and Unfold-styled users, roles and schedules."""

from __future__ import annotations

from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from .audit import record_audit
from .models import AuditEntry, AuditSource


@admin.register(AuditEntry)
class AuditEntryAdmin(ModelAdmin):
    list_display = ["created_at", "actor_label", "action", "target_type", "target_repr", "source", "ip_address"]
    list_filter = ["source", "action", "target_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["actor_label", "action", "target_repr", "target_id"]
    date_hierarchy = "created_at"
    list_per_page = 50

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _group_names(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ["username", "email", "first_name", "last_name", "roles", "is_active", "last_login"]
    list_filter = ["is_active", "groups", "is_superuser"]

    @admin.display(description="Roles")
    def roles(self, obj: User) -> str:
        return ", ".join(_group_names(obj)) or "—"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        fields = sorted(set(form.changed_data) - {"groups", "password", "password1", "password2"})
        record_audit(
            "user.changed" if change else "user.created",
            actor=request.user,
            target=obj,
            changes={"fields": fields},
            source=AuditSource.UI,
            request=request,
        )

    def save_related(self, request, form, formsets, change):
        before = _group_names(form.instance) if change else []
        super().save_related(request, form, formsets, change)
        after = _group_names(form.instance)
        if before != after:
            record_audit(
                "user.roles_changed",
                actor=request.user,
                target=form.instance,
                changes={"before": before, "after": after},
                source=AuditSource.UI,
                request=request,
            )


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    def save_related(self, request, form, formsets, change):
        before = sorted(form.instance.permissions.values_list("codename", flat=True)) if change else []
        super().save_related(request, form, formsets, change)
        after = sorted(form.instance.permissions.values_list("codename", flat=True))
        if before != after:
            record_audit(
                "role.permissions_changed",
                actor=request.user,
                target=form.instance,
                changes={"added": sorted(set(after) - set(before)), "removed": sorted(set(before) - set(after))},
                source=AuditSource.UI,
                request=request,
            )


# django-celery-beat's schedules, restyled: the schedule lives in the database and is
# edited here (beat picks changes up by itself).
for model in (PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule):
    admin.site.unregister(model)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin, ModelAdmin):
    pass


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(beat_admin.CrontabScheduleAdmin, ModelAdmin):
    pass


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(beat_admin.IntervalScheduleAdmin, ModelAdmin):
    pass


@admin.register(SolarSchedule)
class SolarScheduleAdmin(beat_admin.SolarScheduleAdmin, ModelAdmin):
    pass


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(beat_admin.ClockedScheduleAdmin, ModelAdmin):
    pass


# django-axes' lockout records, restyled: Admins see and clear lockouts here.
for model in (AccessAttempt, AccessLog, AccessFailureLog):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(axes_admin.AccessAttemptAdmin, ModelAdmin):
    pass


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(axes_admin.AccessFailureLogAdmin, ModelAdmin):
    pass


@admin.register(AccessLog)
class AccessLogAdmin(axes_admin.AccessLogAdmin, ModelAdmin):
    pass
