"""Roles are groups. Each app adds the permissions its features need to each role.

Apps call `grant(role, [...permission codenames...])` from their AppConfig.ready(); the
groups are brought in line after every migrate and by bootstrap, idempotently.
"""

from __future__ import annotations

from collections import defaultdict

ADMIN = "Admin"
REVIEWER = "Reviewer"
OPERATOR = "Operator"
VIEWER = "Viewer"
ROLES = (ADMIN, REVIEWER, OPERATOR, VIEWER)

# role -> {"app_label.codename", ...}
_grants: dict[str, set[str]] = defaultdict(set)


def grant(role: str, permissions: list[str]) -> None:
    """Declare that members of `role` hold these permissions ("app_label.codename")."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    _grants[role].update(permissions)


def granted(role: str) -> frozenset[str]:
    """Return the permissions declared for `role`."""
    return frozenset(_grants[role])


def ensure_roles() -> dict[str, list[str]]:
    """Create the role groups and set their permissions to exactly what is declared.

    Returns, per role, the permissions it gained, so callers can audit the change.
    """
    from django.contrib.auth.models import Group, Permission

    changes: dict[str, list[str]] = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        wanted = set()
        for label in sorted(_grants[role]):
            app_label, codename = label.split(".", 1)
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is None:
                raise LookupError(f"role {role} is granted {label}, which does not exist")
            wanted.add(permission)
        current = set(group.permissions.all())
        if wanted != current:
            group.permissions.set(wanted)
            changes[role] = sorted(
                f"{p.content_type.app_label}.{p.codename}" for p in wanted - current
            )
    return changes


def roles_of(user) -> list[str]:
    """Return the role names the user belongs to."""
    if not user.is_authenticated:
        return []
    return [name for name in user.groups.values_list("name", flat=True) if name in ROLES]


def may_use_console(user) -> bool:
    """Return whether the user may sign in to the console: active, and staff or in a role."""
    if not (user.is_active and user.is_authenticated):
        return False
    return user.is_staff or user.is_superuser or user.groups.filter(name__in=ROLES).exists()
