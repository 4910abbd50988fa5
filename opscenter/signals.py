"""Receivers that keep the roles in line after migrations."""

import logging

from django.db import DEFAULT_DB_ALIAS

logger = logging.getLogger(__name__)


def sync_roles_after_migrate(using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    """Bring the role groups in line with the declared grants (runs after every migrate)."""
    from django.apps import apps
    from django.contrib.auth.management import create_permissions

    # Permissions of every app must exist before groups can point at them, and
    # post_migrate runs per app in an order we do not control.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    from .audit import record_audit
    from .roles import ensure_roles

    changes = ensure_roles()
    if changes:
        record_audit("roles.synced", changes=changes)
        logger.debug("roles updated: %s", changes)
