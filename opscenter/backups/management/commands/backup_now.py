"""`manage.py backup_now`: take a backup in this process and print where it went."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from opscenter.backups import services
from opscenter.backups.models import BackupKind, JobStatus


class Command(BaseCommand):
    help = "Back up the database now (pg_dump or SQLite's online backup), store it and optionally verify it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--verify", action="store_true", help="restore it into a scratch database and compare")

    def handle(self, *args, verify: bool = False, **options) -> None:
        backup = services.take_backup(kind=BackupKind.MANUAL)
        if backup.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Backup #{backup.pk} failed: {backup.error}")
        self.stdout.write(f"Backup #{backup.pk} stored as {backup.file_name} ({backup.size} bytes, "
                          f"sha256 {backup.sha256})")
        if verify:
            backup = services.verify(backup.pk, trigger="command")
            if backup is None or backup.verify_status != "passed":
                detail = backup.verify_result if backup else "it is being verified elsewhere"
                raise CommandError(f"Verify failed: {detail}")
            self.stdout.write(f"Verified: {len(backup.verify_result['tables'])} tables, row counts identical.")
