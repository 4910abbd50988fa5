from importlib import import_module

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def create_schedule_after_migrate(sender, **kwargs) -> None:
    """Create the daily backup's periodic task the first time (idempotent; admin edits stay)."""
    from opscenter.audit import record_audit

    from .services import SCHEDULE_NAME, ensure_schedule

    if ensure_schedule():
        record_audit("backup.schedule_created", changes={"task": SCHEDULE_NAME})


def _metrics() -> None:
    from monitoring.registry import Sample, register_metric

    def last_success():
        from .services import last_success as newest

        backup = newest()
        return [Sample({}, backup.finished_at.timestamp())] if backup else []

    def last_verified_ok():
        from .models import VerifyStatus
        from .services import last_success as newest

        backup = newest()
        return [Sample({}, 1.0 if backup and backup.verify_status == VerifyStatus.PASSED else 0.0)]

    def last_size():
        from .services import last_success as newest

        backup = newest()
        return [Sample({}, float(backup.size))] if backup else []

    register_metric("opscenter_backup_last_success_timestamp_seconds",
                    "When the newest good backup (scheduled or manual) finished, Unix time.",
                    read=last_success, unit="seconds")
    register_metric("opscenter_backup_last_verified_ok",
                    "1 when the newest good backup was restored into a scratch database with matching row counts.",
                    read=last_verified_ok)
    register_metric("opscenter_backup_last_size_bytes", "Size of the newest good backup file.",
                    read=last_size, unit="bytes")


class BackupsConfig(AppConfig):
    name = "opscenter.backups"
    label = "backups"
    verbose_name = "Backups"

    def ready(self) -> None:
        from opscenter import roles
        from opscenter.admin_site import register_console_urls

        for role in roles.ROLES:
            roles.grant(role, ["backups.view_backup", "backups.view_restore"])
        operate = ["backups.take_backup", "backups.download_backup"]
        roles.grant(roles.OPERATOR, operate)
        roles.grant(roles.ADMIN, [*operate, "backups.restore_backup"])
        register_console_urls(lambda site: import_module("opscenter.backups.views").console_urls(site))
        post_migrate.connect(create_schedule_after_migrate, sender=self)
        _metrics()
