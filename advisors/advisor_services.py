"""Creating and editing advisors, with the audit row every change needs.

Kept apart from advisors.services (the content state machine) so the API, the admin and
the CSV import can share one way to write an advisor.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest

from opscenter.audit import record_audit
from opscenter.models import AuditSource

from .models import Advisor
from .services import set_advisor_status


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | list | dict | type(None)) else str(value)


def create_advisor(
    data: dict[str, Any], *, by, source: str = AuditSource.UI, request: HttpRequest | None = None
) -> Advisor:
    """Create an advisor from validated field values and audit it."""
    with transaction.atomic():
        advisor = Advisor(**data)
        advisor.full_clean()
        advisor.save()
        record_audit(
            "advisor.created",
            actor=by,
            target=advisor,
            changes={name: _jsonable(value) for name, value in data.items()},
            source=source,
            request=request,
        )
    return advisor


def update_advisor(
    advisor: Advisor, data: dict[str, Any], *, by, source: str = AuditSource.UI, request: HttpRequest | None = None
) -> Advisor:
    """Change an advisor's fields; a status change goes through set_advisor_status.

    Writes one `advisor.updated` row with {field: [before, after]} for the fields that
    really changed (and nothing when none did).
    """
    data = dict(data)
    status = data.pop("status", None)
    with transaction.atomic():
        advisor = Advisor.objects.select_for_update().get(pk=advisor.pk)
        changes = {
            name: [_jsonable(getattr(advisor, name)), _jsonable(value)]
            for name, value in data.items()
            if getattr(advisor, name) != value
        }
        if changes:
            for name, value in data.items():
                setattr(advisor, name, value)
            advisor.full_clean()
            advisor.save(update_fields=[*changes, "updated_at"])
            record_audit("advisor.updated", actor=by, target=advisor, changes=changes, source=source, request=request)
        if status is not None and status != advisor.status:
            advisor = set_advisor_status(advisor, status, by=by, source=source, request=request)
    return advisor
