"""The code registry: agent code declares itself with `@agent(...)`; rows follow the code.

    @agent("prune-run-history", parent="housekeeping", params={...}, timeout=300)
    def prune_run_history(ctx: RunContext) -> dict: ...

Modules listed in settings.AGENT_MODULES are imported when the app is ready. `sync_agents()`
(after every migrate and in bootstrap) writes each definition to its Agent row: the
identity (name, parent, description, parameter schema) always comes from code; how it runs
(enabled, timeout, retries, schedule) is set from code only when the row is created and is
the admin's to change afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from .params import check_schema

AgentFunction = Callable[..., Any]


@dataclass(frozen=True)
class AgentSpec:
    slug: str
    func: AgentFunction
    name: str
    parent: str | None = None
    description: str = ""
    params: dict = field(default_factory=dict)
    timeout: int = 600
    retries: int = 0
    position: int = 0
    # Default crontab(s) "30 20 * * *; 0 5 * * *" and their time zone setting, applied once.
    schedule: str = ""
    schedule_tz_setting: str = "TIME_ZONE"


_specs: dict[str, AgentSpec] = {}


def agent(
    slug: str,
    *,
    parent: str | None = None,
    name: str | None = None,
    description: str | None = None,
    params: dict | None = None,
    timeout: int = 600,
    retries: int = 0,
    position: int = 0,
    schedule: str = "",
    schedule_tz_setting: str = "TIME_ZONE",
) -> Callable[[AgentFunction], AgentFunction]:
    """Register the decorated function as the code of agent `slug`."""

    def register(func: AgentFunction) -> AgentFunction:
        schema = check_schema(params or {})
        doc = (func.__doc__ or "").strip()
        _specs[slug] = AgentSpec(
            slug=slug,
            func=func,
            name=name or slug.replace("-", " ").capitalize(),
            parent=parent,
            description=description if description is not None else doc,
            params=schema,
            timeout=timeout,
            retries=retries,
            position=position,
            schedule=schedule,
            schedule_tz_setting=schedule_tz_setting,
        )
        return func

    return register


def get_spec(slug: str) -> AgentSpec | None:
    return _specs.get(slug)


def all_specs() -> list[AgentSpec]:
    return list(_specs.values())


def autodiscover(modules: list[str]) -> None:
    """Import the modules that hold agent code, so their decorators run."""
    for module in modules:
        import_module(module)


def sync_agents() -> dict[str, list[str]]:
    """Bring the Agent rows in line with the registered code; return what changed."""
    from django.db import transaction

    from .models import Agent, AgentKind

    created, updated, orphaned = [], [], []
    with transaction.atomic():
        rows = {a.slug: a for a in Agent.objects.select_for_update()}
        for spec in _specs.values():
            row = rows.get(spec.slug)
            identity = {
                "name": spec.name,
                "description": spec.description,
                "params_schema": spec.params,
                "kind": AgentKind.BUILTIN,
                "position": spec.position,
                "in_code": True,
            }
            if row is None:
                rows[spec.slug] = Agent.objects.create(
                    slug=spec.slug, timeout_seconds=spec.timeout, retries=spec.retries, **identity
                )
                created.append(spec.slug)
            elif any(getattr(row, key) != value for key, value in identity.items()):
                for key, value in identity.items():
                    setattr(row, key, value)
                row.save(update_fields=[*identity, "updated_at"])
                updated.append(spec.slug)
        for spec in _specs.values():
            row = rows[spec.slug]
            parent = rows.get(spec.parent) if spec.parent else None
            if spec.parent and parent is None:
                raise LookupError(f"agent {spec.slug!r} names parent {spec.parent!r}, which is not registered")
            if row.parent_id != (parent.pk if parent else None):
                row.parent = parent
                row.save(update_fields=["parent", "updated_at"])
                if spec.slug not in created:
                    updated.append(spec.slug)
        for slug, row in rows.items():
            if row.kind == AgentKind.BUILTIN and row.in_code and slug not in _specs:
                row.in_code = False
                row.enabled = False
                row.save(update_fields=["in_code", "enabled", "updated_at"])
                orphaned.append(slug)
        _apply_default_schedules([rows[slug] for slug in created])
    return {"created": created, "updated": sorted(set(updated)), "orphaned": orphaned}


def _apply_default_schedules(new_rows) -> None:
    """Give newly created agents the schedule their code proposes; afterwards it is the admin's."""
    from django.conf import settings

    from opscenter.models import AuditSource

    from .schedules import set_schedule

    for row in new_rows:
        spec = _specs[row.slug]
        if spec.schedule:
            set_schedule(row, cron=spec.schedule, tz=getattr(settings, spec.schedule_tz_setting), enabled=True,
                         by=None, source=AuditSource.SYSTEM)
