"""Idempotent first-run set-up: roles and the first admin user."""

from __future__ import annotations

import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from opscenter.audit import record_audit
from opscenter.roles import ADMIN, ensure_roles


class Command(BaseCommand):
    help = "Create the roles and, if missing, the admin user (OPSCENTER_ADMIN_USER / OPSCENTER_ADMIN_PASSWORD)."

    def handle(self, *args, **options) -> None:
        changes = ensure_roles()
        if changes:
            record_audit("roles.synced", changes=changes)
        self.stdout.write(f"Roles ready: {', '.join(Group.objects.order_by('name').values_list('name', flat=True))}")
        self._ensure_admin()
        self._ensure_alerting_defaults()

    def _ensure_alerting_defaults(self) -> None:
        # Composed here, at the top: bootstrap is the one place that sets a new system up.
        from alerts import slo
        from alerts.defaults import ensure_default_rules

        rules = ensure_default_rules()
        slos = slo.ensure_default_slos()
        if rules or slos:
            self.stdout.write(f"Default alert rules created: {len(rules)}; default SLOs created: {len(slos)}.")

    def _ensure_admin(self) -> None:
        User = get_user_model()
        username = settings.OPSCENTER_ADMIN_USER
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"Admin user “{username}” exists.")
            return
        password = settings.OPSCENTER_ADMIN_PASSWORD
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        with transaction.atomic():
            user = User.objects.create_superuser(username=username, email="", password=password)
            user.groups.add(Group.objects.get(name=ADMIN))
            record_audit("user.created", target=user, changes={"by": "bootstrap", "roles": [ADMIN]})
        if generated:
            path = settings.VAR_DIR / "admin_password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{username}\n{password}\n")
            banner = "=" * 64
            self.stdout.write(
                self.style.WARNING(
                    f"\n{banner}\n  Admin user created.\n  username: {username}\n  password: {password}\n"
                    f"  (shown once; also saved to {path}, readable only by you)\n{banner}\n"
                )
            )
        else:
            self.stdout.write(f"Admin user “{username}” created with the password from OPSCENTER_ADMIN_PASSWORD.")
