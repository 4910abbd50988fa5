"""`manage.py restore_backup <id | file name | path>`: restore the database, after a safety backup."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from opscenter.backups import services
from opscenter.backups.models import Backup, JobStatus


class Command(BaseCommand):
    help = ("Replace the database's contents with a backup: give its id, its file name in the backup "
            "storage, or the path of a dump file. A safety backup of the current data is taken first.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("backup", help="backup id, stored file name, or path to a dump file")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, backup: str, yes: bool = False, **options) -> None:
        row, path = self._find(backup)
        label = row.file_name if row else str(path)
        if not yes:
            self.stdout.write(self.style.WARNING(
                f"This replaces every table of the database with the contents of {label}.\n"
                "A safety backup of the current data is taken first."))
            try:
                answer = input("Type “restore” to go on: ").strip().lower()
            except EOFError:
                answer = ""
            if answer != "restore":
                raise CommandError("Not confirmed; nothing was restored.")
        restore = services.restore_now(row, path=path)
        if restore.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Restore #{restore.pk} failed: {restore.error}")
        self.stdout.write(self.style.SUCCESS(
            f"Restored from {label} (restore #{restore.pk}; safety backup #{restore.safety_backup_id})."))

    def _find(self, value: str) -> tuple[Backup | None, Path | None]:
        row = None
        if value.isdigit():
            row = Backup.objects.filter(pk=int(value)).first()
        row = row or Backup.objects.filter(file_name=value).first()
        if row is not None:
            if not row.is_usable:
                raise CommandError(f"Backup #{row.pk} is {row.status}; only a succeeded backup can be restored.")
            return row, None
        path = Path(value)
        if path.is_file():
            return None, path.resolve()
        raise CommandError(f"No backup with id or file name {value!r}, and no such file.")
