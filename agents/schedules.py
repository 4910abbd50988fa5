"""Agent schedules: a timezone-aware crontab per agent, stored for django-celery-beat."""

from __future__ import annotations

import json
import re
import zoneinfo
from datetime import datetime, timedelta

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from opscenter.audit import record_audit
from opscenter.models import AuditSource
from opscenter.services import DomainError

from .models import Agent

TASK = "agents.tasks.run_scheduled_agent"


class InvalidSchedule(DomainError):
    code = "invalid"
    status = 400


def parse_cron(expression: str) -> dict[str, str]:
    """Split "minute hour day-of-month month day-of-week" and check each field."""
    from celery.schedules import crontab

    fields = (expression or "").split()
    if len(fields) != 5:
        raise InvalidSchedule("Write five fields: minute hour day-of-month month day-of-week, e.g. “30 20 * * *”.")
    minute, hour, day_of_month, month_of_year, day_of_week = fields
    try:
        crontab(minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
                day_of_week=day_of_week)
    except (ValueError, TypeError) as exc:
        raise InvalidSchedule(f"“{expression}” is not a valid crontab: {exc}") from None
    return {"minute": minute, "hour": hour, "day_of_month": day_of_month, "month_of_year": month_of_year,
            "day_of_week": day_of_week}


def split_crons(text: str) -> list[str]:
    """Split several crontabs written one per line or separated by “;”."""
    return [" ".join(part.split()) for part in re.split(r"[;\n]", text or "") if part.strip()]


def _extra_tasks(agent: Agent):
    """The agent's schedules after the first ("30 20 * * *; 0 5 * * *" is two periodic tasks)."""
    return PeriodicTask.objects.filter(task=TASK, name__startswith=f"agent: {agent.slug} (").order_by("name")


def _tasks(agent: Agent) -> list[PeriodicTask]:
    if agent.schedule is None:
        return []
    return [agent.schedule, *_extra_tasks(agent).select_related("crontab")]


def _cron_text(task: PeriodicTask) -> str:
    c = task.crontab
    return f"{c.minute} {c.hour} {c.day_of_month} {c.month_of_year} {c.day_of_week}"


def cron_of(agent: Agent) -> str:
    """Return the agent's crontabs, five fields each, separated by “; ” ("" when it has none)."""
    return "; ".join(_cron_text(task) for task in _tasks(agent) if task.crontab is not None)


def set_schedule(
    agent: Agent,
    *,
    cron: str,
    tz: str,
    enabled: bool,
    by,
    source: str = AuditSource.UI,
    request: HttpRequest | None = None,
) -> PeriodicTask | None:
    """Set, change or (with an empty crontab) remove the agent's schedule."""
    crons = split_crons(cron)
    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"“{tz}” is not a time zone; use an IANA name such as Asia/Kolkata.") from None
    with transaction.atomic():
        agent = Agent.objects.select_for_update(of=("self",)).select_related("schedule__crontab").get(pk=agent.pk)
        before = {"cron": cron_of(agent), "enabled": bool(agent.schedule and agent.schedule.enabled)}
        if not crons:
            if agent.schedule is None:
                return None
            _extra_tasks(agent).delete()
            agent.schedule.delete()  # SET_NULL clears agent.schedule
            record_audit("agent.schedule_removed", actor=by, target=agent, changes={"before": before},
                         source=source, request=request)
            return None
        parsed = [parse_cron(expression) for expression in crons]
        _check_runs_without_input(agent)
        tabs = [CrontabSchedule.objects.get_or_create(timezone=zone, **fields)[0] for fields in parsed]
        task = agent.schedule
        if task is None:
            task = PeriodicTask(name=f"agent: {agent.slug}", task=TASK, args=json.dumps([agent.slug]))
        _configure(task, agent, tabs[0], enabled)
        if agent.schedule_id != task.pk:
            agent.schedule = task
            agent.save(update_fields=["schedule", "updated_at"])
        _extra_tasks(agent).delete()
        for number, crontab in enumerate(tabs[1:], 2):
            extra = PeriodicTask(name=f"agent: {agent.slug} ({number})", task=TASK, args=json.dumps([agent.slug]))
            _configure(extra, agent, crontab, enabled)
        record_audit(
            "agent.schedule_set", actor=by, target=agent,
            changes={"before": before, "after": {"cron": "; ".join(crons), "timezone": tz, "enabled": enabled}},
            source=source, request=request,
        )
    return task


def _configure(task: PeriodicTask, agent: Agent, crontab: CrontabSchedule, enabled: bool) -> None:
    task.crontab = crontab
    task.interval = None
    task.enabled = enabled
    task.description = f"Starts {agent.name}."
    task.save()


def _check_runs_without_input(agent: Agent) -> None:
    """A schedule starts runs with the defaults: refuse one that could never start."""
    from .params import ParamsInvalid, clean_params

    try:
        clean_params(agent.params_schema, {})
    except ParamsInvalid as exc:
        raise InvalidSchedule(
            f"{agent.name} needs parameters without defaults ({', '.join(exc.errors)}); a schedule cannot supply them."
        ) from None


def next_runs(agent: Agent, count: int = 5, *, now: datetime | None = None) -> list[datetime]:
    """Return the next `count` times the agent's schedule fires, in its own time zone."""
    times: list[datetime] = []
    for task in _tasks(agent):
        if task.crontab is not None and task.enabled:
            times.extend(_next_runs_of(task, count, now=now))
    return sorted(times)[:count]


def _next_runs_of(task: PeriodicTask, count: int, *, now: datetime | None) -> list[datetime]:
    schedule = task.crontab.schedule  # a celery crontab that knows its time zone
    zone = task.crontab.timezone
    moment = (now or timezone.now()).astimezone(zone).replace(second=0, microsecond=0)
    out: list[datetime] = []
    # Step minute by minute through the first matching minutes: crontab's own is_due
    # arithmetic is built for "since the last run", not for listing future ones.
    limit = moment + timedelta(days=400)
    while len(out) < count and moment < limit:
        moment = _next_match(schedule, moment + timedelta(minutes=1), limit)
        if moment is None:
            break
        out.append(moment)
    return out


def _next_match(schedule, start: datetime, limit: datetime) -> datetime | None:
    t = start
    while t < limit:
        if t.month not in schedule.month_of_year:
            t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            continue
        # celery numbers days of the week from Sunday = 0; Python from Monday = 0.
        if t.day not in schedule.day_of_month or (t.isoweekday() % 7) not in schedule.day_of_week:
            t = t.replace(hour=0, minute=0) + timedelta(days=1)
            continue
        if t.hour not in schedule.hour:
            t = t.replace(minute=0) + timedelta(hours=1)
            continue
        if t.minute not in schedule.minute:
            t += timedelta(minutes=1)
            continue
        return t
    return None
