"""The agents console: the live hierarchy, an agent's page, triggering, and a run's page.

Views hold no rules: they call agents.services and map its refusals to form errors (400)
or messages (409). Every action is a plain POST form, so the pages work without
JavaScript; the page scripts add live updates over the `agents` topic.
"""

from __future__ import annotations

import json
import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from opscenter.models import AuditSource
from opscenter.services import DomainError

from .. import schedules, services
from ..models import LEVEL_ORDER, Agent, AgentRun, LogLevel, RunStatus
from ..params import ParamsForm

VIEW = "agents.view_agent"
VIEW_RUNS = "agents.view_agentrun"
TRIGGER = "agents.trigger_agent"
CHANGE = "agents.change_agent"
RECENT_RUNS = 20
LOG_TAIL = 500


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> TemplateResponse:
    from django.contrib import admin

    return TemplateResponse(request, template, {**admin.site.each_context(request), **context}, status=status)


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


# --- the hierarchy ------------------------------------------------------------------------------


@require_GET
def hierarchy(request: HttpRequest) -> TemplateResponse:
    """The agent tree with each node's live state."""
    _require(request, VIEW)
    snapshot = services.hierarchy_snapshot(request.user)
    return _page(request, "agents/hierarchy.html", {
        "title": "Agents",
        "snapshot": snapshot,
        "snapshot_json": snapshot,
        "can_trigger": request.user.has_perm(TRIGGER),
        "highlight": request.GET.get("run", ""),
    })


@require_GET
def agent_runs(request: HttpRequest, slug: str) -> JsonResponse:
    """The agent's recent runs, for a node expanded in the tree."""
    _require(request, VIEW_RUNS)
    agent = get_object_or_404(Agent, slug=slug)
    runs = agent.runs.select_related("agent", "triggered_by")[:10]
    return JsonResponse({"runs": [{**services.run_event(r), "url": reverse("admin:agents_run", args=[r.pk]),
                                   "duration": r.duration_seconds} for r in runs]})


# --- one agent ----------------------------------------------------------------------------------


class TriggerOptionsForm(forms.Form):
    dry_run = forms.BooleanField(required=False, label="Dry run", help_text="Do the work but change nothing outside the run.")


class ScheduleForm(forms.Form):
    cron = forms.CharField(
        label="Crontab", required=False, max_length=100,
        help_text="minute hour day-of-month month day-of-week, e.g. “30 20 * * *”; several separated by “;” "
        "(“30 20 * * *; 0 5 * * *”); empty removes the schedule",
        widget=forms.TextInput(attrs={"placeholder": "30 20 * * *", "autocomplete": "off", "spellcheck": "false"}),
    )
    timezone = forms.CharField(label="Time zone", max_length=64)
    enabled = forms.BooleanField(label="Enabled", required=False)

    def clean_timezone(self) -> str:
        value = self.cleaned_data["timezone"].strip()
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise forms.ValidationError("Use an IANA time zone such as Asia/Kolkata or UTC.") from None
        return value

    def clean_cron(self) -> str:
        value = self.cleaned_data["cron"].strip()
        for expression in schedules.split_crons(value):
            try:
                schedules.parse_cron(expression)
            except DomainError as exc:
                raise forms.ValidationError(str(exc)) from None
        return value


def _schedule_form(agent: Agent, data=None) -> ScheduleForm:
    task = agent.schedule
    initial = {
        "cron": schedules.cron_of(agent),
        "timezone": str(task.crontab.timezone) if task and task.crontab else settings.TIME_ZONE,
        "enabled": task.enabled if task else True,
    }
    return ScheduleForm(data=data, initial=initial)


def _agent_context(request, agent: Agent, *, params_form=None, options_form=None, schedule_form=None) -> dict:
    runs = list(agent.runs.select_related("triggered_by")[:RECENT_RUNS])
    state = services.agent_states().get(agent.pk, {})
    return {
        "title": agent.name,
        "agent": agent,
        "runs": runs,
        "state": state,
        "params_form": params_form or ParamsForm(agent.params_schema),
        "options_form": options_form or TriggerOptionsForm(),
        "schedule_form": schedule_form or _schedule_form(agent),
        "cron": schedules.cron_of(agent),
        "next_runs": schedules.next_runs(agent),
        "schedule_tz": str(agent.schedule.crontab.timezone) if agent.schedule and agent.schedule.crontab else None,
        "can_trigger": request.user.has_perm(TRIGGER) and agent.enabled and agent.triggerable,
        "may_trigger": request.user.has_perm(TRIGGER),
        "can_change": request.user.has_perm(CHANGE),
        "children": list(agent.children.all()),
        "schema_json": json.dumps(agent.params_schema, indent=2),
        "next": _safe_next(request, ""),
    }


@require_GET
def agent_detail(request: HttpRequest, slug: str) -> TemplateResponse:
    """An agent: what it does, its parameters, trigger form, schedule and recent runs."""
    _require(request, VIEW)
    agent = get_object_or_404(Agent.objects.select_related("parent", "schedule__crontab"), slug=slug)
    return _page(request, "agents/agent.html", _agent_context(request, agent))


@require_POST
def trigger(request: HttpRequest, slug: str) -> HttpResponse:
    """Validate the parameters, ask for confirmation, then queue the run."""
    _require(request, TRIGGER)
    agent = get_object_or_404(Agent.objects.select_related("parent", "schedule__crontab"), slug=slug)
    params_form = ParamsForm(agent.params_schema, data=request.POST)
    options_form = TriggerOptionsForm(data=request.POST)
    if not (params_form.is_valid() and options_form.is_valid()):
        return _page(request, "agents/agent.html",
                     _agent_context(request, agent, params_form=params_form, options_form=options_form), status=400)
    params = params_form.json_data()
    dry_run = options_form.cleaned_data["dry_run"]
    if request.POST.get("confirmed") != "1":
        return _page(request, "agents/confirm_trigger.html", {
            "title": f"Start {agent.name}?", "agent": agent, "params": params, "dry_run": dry_run,
            "hidden": request.POST, "next": _safe_next(request, ""),
        })
    try:
        run = services.trigger_run(agent, by=request.user, params=params, dry_run=dry_run,
                                   source=AuditSource.UI, request=request)
    except services.InvalidParams as exc:
        for name, errors in exc.fields.items():
            for error in errors:
                params_form.add_error(name if name in params_form.fields else None, error)
        return _page(request, "agents/agent.html",
                     _agent_context(request, agent, params_form=params_form, options_form=options_form), status=400)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("admin:agents_agent", slug=agent.slug)
    messages.success(request, f"Run #{run.pk} of {agent.name} is queued" + (" (dry run)." if dry_run else "."))
    default = reverse("admin:agents_run", args=[run.pk])
    target = _safe_next(request, default)
    if target != default:
        target += ("&" if "?" in target else "?") + f"run={run.pk}"
    return redirect(target)


@require_POST
def schedule(request: HttpRequest, slug: str) -> HttpResponse:
    """Set, change or remove the agent's schedule."""
    _require(request, CHANGE)
    agent = get_object_or_404(Agent.objects.select_related("parent", "schedule__crontab"), slug=slug)
    form = _schedule_form(agent, data=request.POST)
    if not form.is_valid():
        return _page(request, "agents/agent.html", _agent_context(request, agent, schedule_form=form), status=400)
    data = form.cleaned_data
    try:
        task = schedules.set_schedule(agent, cron=data["cron"], tz=data["timezone"], enabled=data["enabled"],
                                      by=request.user, request=request)
    except DomainError as exc:
        form.add_error(None, str(exc))
        return _page(request, "agents/agent.html", _agent_context(request, agent, schedule_form=form), status=400)
    if task is None:
        messages.success(request, f"{agent.name} has no schedule now.")
    else:
        messages.success(request, f"Schedule of {agent.name} saved ({'on' if task.enabled else 'off'}).")
    return redirect(reverse("admin:agents_agent", args=[agent.slug]) + "#schedule")


# --- one run ------------------------------------------------------------------------------------


def run_state(run: AgentRun, *, after_log: int = 0, level: str = "") -> dict[str, Any]:
    """The run page's data: the run, its whole tree (for the timeline) and its log tail."""
    tree = list(AgentRun.objects.filter(root_id=run.root_id).select_related("agent").order_by("queued_at", "id"))
    logs = run.logs.filter(id__gt=after_log)
    if level in LEVEL_ORDER:
        logs = logs.filter(level__in=[lv for lv, n in LEVEL_ORDER.items() if n >= LEVEL_ORDER[level]])
    tail = list(logs.order_by("-id")[:LOG_TAIL])[::-1]
    return {
        "run": {**services.run_event(run), "result": run.result, "metrics": run.metrics,
                "traceback": run.traceback, "error": run.error, "params": run.params,
                "duration": run.duration_seconds},
        "tree": [{**services.run_event(r), "url": reverse("admin:agents_run", args=[r.pk])} for r in tree],
        "logs": [services.log_entry_event(e) for e in tail],
    }


@require_GET
def run_detail(request: HttpRequest, pk: int) -> TemplateResponse:
    _require(request, VIEW_RUNS)
    run = get_object_or_404(AgentRun.objects.select_related("agent", "triggered_by", "cancelled_by", "retry_of"), pk=pk)
    state = run_state(run)
    may_trigger = request.user.has_perm(TRIGGER)
    retry_form = ParamsForm(run.agent.params_schema, initial=run.params) if run.is_final else None
    return _page(request, "agents/run.html", {
        "title": f"{run.agent.name} · run #{run.pk}",
        "run": run,
        "state": state,
        "logs": state["logs"],
        "levels": LogLevel.choices,
        "can_cancel": may_trigger and not run.is_final,
        "can_retry": may_trigger and run.is_final and run.agent.enabled and run.agent.triggerable,
        "retry_form": retry_form,
        "retries": list(run.retries.all()),
        "children": [r for r in state["tree"] if r["parent_id"] == run.pk],
        "webhook_attempts": list(run.webhook_attempts.all()),
        "params_json": json.dumps(run.params, indent=2),
        # As pairs: in a template `run.metrics.items` would read the metric named "items".
        "metrics": sorted((run.metrics or {}).items()),
        "result_json": json.dumps(run.result, indent=2) if run.result is not None else "",
    })


@require_GET
def run_state_view(request: HttpRequest, pk: int) -> JsonResponse:
    """JSON for the run page after a reconnect or a gap: the run, its tree and new log lines."""
    _require(request, VIEW_RUNS)
    run = get_object_or_404(AgentRun.objects.select_related("agent"), pk=pk)
    try:
        after = int(request.GET.get("after_log", 0))
    except ValueError:
        after = 0
    return JsonResponse(run_state(run, after_log=after, level=request.GET.get("level", "")))


@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, TRIGGER)
    run = get_object_or_404(AgentRun, pk=pk)
    try:
        run = services.cancel_run(run, by=request.user, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        if run.status == RunStatus.CANCELLED:
            messages.success(request, f"Run #{run.pk} cancelled.")
        else:
            messages.success(request, f"Run #{run.pk} will stop at its next checkpoint.")
    return redirect(_safe_next(request, reverse("admin:agents_run", args=[pk])))


@require_POST
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, TRIGGER)
    run = get_object_or_404(AgentRun.objects.select_related("agent"), pk=pk)
    params = None
    if request.POST.get("edited") == "1":
        form = ParamsForm(run.agent.params_schema, data=request.POST)
        if not form.is_valid():
            messages.error(request, "Some parameters are invalid: " + "; ".join(
                f"{form.fields[n].label if n in form.fields else n}: {' '.join(e)}" for n, e in form.errors.items()))
            return redirect(reverse("admin:agents_run", args=[pk]) + "#retry")
        params = form.json_data()
    try:
        dry_run = (request.POST.get("dry_run") == "on") if params is not None else None
        new = services.retry_run(run, by=request.user, params=params, dry_run=dry_run, request=request)
    except DomainError as exc:
        messages.error(request, str(exc))
        return redirect("admin:agents_run", pk=pk)
    messages.success(request, f"Run #{new.pk} queued as a retry of #{run.pk}.")
    return redirect("admin:agents_run", pk=new.pk)
