"""The one way to write the audit trail."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from .models import AuditEntry, AuditSource
from .net import client_ip


def record_audit(
    action: str,
    *,
    actor=None,
    target: models.Model | None = None,
    changes: dict[str, Any] | None = None,
    source: str = AuditSource.SYSTEM,
    request: HttpRequest | None = None,
) -> AuditEntry:
    """Record that `actor` did `action` to `target`; call it inside the change's transaction."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEntry.objects.create(
        actor=actor,
        actor_label=actor.get_username() if actor else "system",
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        changes=changes or {},
        source=source,
        ip_address=client_ip(request) or None if request is not None else None,
    )
