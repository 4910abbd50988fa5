"""The default rule pack: what every pipeline should be alerted about from day one.

Bootstrap creates each rule once (alerts.models.BuiltinDefault remembers it): an admin may
edit, disable or delete them and bootstrap leaves that alone. Thresholds follow the issue
that asked for them; descriptions say what to do, since they are what on-call reads first.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from opscenter.audit import record_audit

from .models import BuiltinDefault, Rule

DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {
        "key": "agent-failure-rate",
        "name": "Agent failure rate above 5 %",
        "description": "More than 5 % of an agent's runs failed or timed out in the last 5 minutes. Open the agent's "
                       "recent runs (Agents page), read the error and traceback of a failed run, fix the cause, then "
                       "retry the failed runs.",
        "metric": "opscenter_agent_runs_total", "matchers": 'status=~"failed|timed_out"',
        "aggregation": "increase", "window_seconds": 300,
        "denominator_metric": "opscenter_agent_runs_total",
        "comparator": "gt", "threshold": 0.05, "for_seconds": 0, "keep_firing_for_seconds": 300,
        "severity": "critical", "group_by": ["agent"],
        "summary_template": "{{ labels.agent }}: {{ (value * 100) | round(1) }} % of runs failed in 5 min",
    },
    {
        "key": "run-without-heartbeat",
        "name": "Agent run without heartbeat",
        "description": "A running agent run stopped sending heartbeats: its worker is stuck or gone. The reaper marks "
                       "it failed (and retries it if the agent allows) within AGENT_LOST_AFTER_SECONDS; check the "
                       "System page for the worker and the Logs page for what it was doing.",
        "metric": "opscenter_agent_runs_without_heartbeat", "aggregation": "max", "window_seconds": 60,
        "comparator": "gt", "threshold": 0, "for_seconds": 0, "severity": "critical", "group_by": ["agent"],
        "summary_template": "{{ labels.agent }}: {{ value | int }} running run(s) without heartbeat",
    },
    {
        "key": "evening-cycle-late",
        "name": "Evening cycle not finished by 23:00",
        "description": "The content cycle for tomorrow's posts has not finished by 23:00. Open Daily operations to "
                       "see which stage is stuck; the approval guardian and the reviewers need it done tonight.",
        "metric": "opscenter_engine_cycle_finished", "aggregation": "last", "window_seconds": 300,
        "comparator": "lt", "threshold": 1, "for_seconds": 0, "no_data": "alert", "severity": "high",
        "active_from": datetime.time(23, 0), "active_until": datetime.time(5, 0), "timezone": "ENGINE",
        "summary_template": "Tonight's content cycle has not finished",
    },
    {
        "key": "approvals-waiting",
        "name": "Approvals waiting more than 2 hours",
        "description": "The oldest post in the review queue has waited more than 2 hours. Ask a reviewer to work "
                       "through the queue (it works on a phone).",
        "metric": "opscenter_pending_approval_oldest_age_seconds", "aggregation": "last", "window_seconds": 120,
        "comparator": "gt", "threshold": 7200, "for_seconds": 0, "severity": "high",
        "summary_template": "The oldest post has waited {{ (value / 3600) | round(1) }} h for a reviewer",
    },
    {
        "key": "delivery-failure-rate",
        "name": "Delivery failure rate above 2 %",
        "description": "More than 2 % of the deliveries of the last hour failed. Look at the failed deliveries' "
                       "last error (Advisors → deliveries) — a channel's credentials or the provider are the usual "
                       "cause — then retry them.",
        "metric": "opscenter_delivery_outcomes_total", "matchers": 'outcome="failed"',
        "aggregation": "increase", "window_seconds": 3600,
        "denominator_metric": "opscenter_delivery_outcomes_total",
        "comparator": "gt", "threshold": 0.02, "for_seconds": 0, "severity": "high",
        "summary_template": "{{ (value * 100) | round(1) }} % of deliveries failed in the last hour",
    },
    {
        "key": "health-check-down",
        "name": "Health check down",
        "description": "A health check has been failing for a minute. Its page (Health) shows the last results and "
                       "why they failed.",
        "metric": "opscenter_health_up", "aggregation": "last", "window_seconds": 60,
        "comparator": "lt", "threshold": 1, "for_seconds": 60, "severity": "critical", "group_by": ["check"],
        "summary_template": "{{ labels.check }} is down",
    },
    {
        "key": "disk-80",
        "name": "Disk above 80 %",
        "description": "The disk holding OpsCenter's var directory (database, backups, images) is more than 80 % "
                       "full. Prune old backups (Backups page) or grow the disk before it reaches 90 %.",
        "metric": "opscenter_system_disk_used_percent", "aggregation": "last", "window_seconds": 120,
        "comparator": "gt", "threshold": 80, "for_seconds": 300, "severity": "medium", "group_by": ["host"],
        "summary_template": "{{ labels.host }}: disk {{ value | round | int }} % full",
    },
    {
        "key": "disk-90",
        "name": "Disk above 90 %",
        "description": "The disk holding OpsCenter's var directory is more than 90 % full: the database and backups "
                       "will fail when it fills. Free space now.",
        "metric": "opscenter_system_disk_used_percent", "aggregation": "last", "window_seconds": 120,
        "comparator": "gt", "threshold": 90, "for_seconds": 120, "severity": "critical", "group_by": ["host"],
        "summary_template": "{{ labels.host }}: disk {{ value | round | int }} % full",
    },
    {
        "key": "memory-90",
        "name": "Memory above 90 %",
        "description": "A host has used more than 90 % of its memory for 5 minutes. The System page shows which "
                       "process grew; restart it or lower the worker concurrency.",
        "metric": "opscenter_system_memory_used_percent", "aggregation": "avg", "window_seconds": 300,
        "comparator": "gt", "threshold": 90, "for_seconds": 300, "severity": "critical", "group_by": ["host"],
        "summary_template": "{{ labels.host }}: memory {{ value | round | int }} % used",
    },
    {
        "key": "inbound-silent",
        "name": "Inbound webhook silent for 10 minutes",
        "description": "A messaging source sent neither an event nor a heartbeat for 10 minutes during active hours "
                       "(08:00–22:00). Check the Integration page and the source's own status.",
        "metric": "opscenter_inbound_silence_seconds", "aggregation": "last", "window_seconds": 120,
        "comparator": "gt", "threshold": 600, "for_seconds": 0, "severity": "high", "group_by": ["source"],
        "active_from": datetime.time(8, 0), "active_until": datetime.time(22, 0), "timezone": "ENGINE",
        "summary_template": "{{ labels.source }} silent for {{ (value / 60) | round | int }} min",
    },
)


def ensure_default_rules() -> list[Rule]:
    """Create the default rules bootstrap has never created before; return the new ones."""
    created = []
    for spec in DEFAULT_RULES:
        fields = dict(spec)
        key = f"rule:{fields.pop('key')}"
        if fields.get("timezone") == "ENGINE":
            fields["timezone"] = settings.ENGINE_TIME_ZONE
        try:
            with transaction.atomic():
                BuiltinDefault.objects.create(key=key)
                if Rule.objects.filter(name=fields["name"]).exists():
                    continue  # someone made one by that name: theirs stands
                rule = Rule.objects.create(builtin_key=key, **fields)
                record_audit("alert_rule.created", target=rule, changes={"by": "bootstrap", "builtin": key})
                created.append(rule)
        except IntegrityError:
            continue  # created before (or by a bootstrap running at the same moment)
    return created
