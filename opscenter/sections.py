"""The sections of the operations center, in sidebar order.

A section whose feature has not been built yet has `ready=False`: its page says so
plainly instead of showing anything made up. Later work sets `url_name` when it lands.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Badge:
    """A live count beside a section's link, on every page (opscenter/static/opscenter/nav_badges.js).

    The count comes from the `counts` of the topic's snapshot and of its events, so showing
    it costs the page no query; users who may not follow the topic do not see the link.
    """

    topic: str  # the live topic whose snapshot and events carry {"counts": {key: n}}
    key: str
    label: str  # what the number counts, for screen readers and the tooltip


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    icon: str
    summary: str
    url_name: str | None = None  # the page once built; None: the "not built yet" page
    permission: str | None = None  # shown in the sidebar only to users who hold it ("app.codename")
    badge: Badge | None = None


SECTIONS: tuple[Section, ...] = (
    Section("overview", "Overview", "dashboard", "Components, live connection and version.", "admin:index"),
    Section("operations", "Daily operations", "event_note",
            "Today's content cycle by stage, per advisor, with its runs and the previous days.",
            "admin:engine_operations"),
    Section("agents", "Agents", "account_tree", "The live agent hierarchy, runs, logs, manual triggers and schedules.",
            "admin:agents_hierarchy"),
    Section("review", "Review queue", "fact_check", "Approve, reject or send back generated content, on a phone too.",
            "admin:review_queue"),
    Section("advisors", "Advisors", "groups", "Advisor profiles, import and export, content history and deliveries.",
            "admin:advisors_advisor_changelist"),
    Section("health", "Health", "monitor_heart", "Health checks of every component, uptime and latency history.",
            "admin:health", "health.view_healthcheck"),
    Section("system", "System", "memory", "CPU, memory, disk and network of every host; web, worker and beat processes.",
            "admin:monitoring_system", "monitoring.view_metricseries"),
    Section("alerts", "Alerts", "notifications_active", "Alert rules, firing alerts, acknowledgements, silences and SLOs.",
            "admin:alerts", "alerts.view_alert",
            Badge("alerts", "unacknowledged", "firing alerts nobody has acknowledged")),
    Section("logs", "Logs", "receipt_long", "Searchable logs from web, workers and agents with live tail.", "admin:logs",
            "logs.view_logentry"),
    Section("integration", "Integration", "webhook",
            "The messaging service's webhook: status, event rate, recent and failed events.", "admin:inbound_integration",
            "inbound.view_inboundevent"),
    Section("analytics", "Analytics", "monitoring", "Content funnel, engagement and delivery figures over time.",
            "admin:engine_analytics", "engine.view_dailyrollup"),
    Section("backups", "Backups", "backup", "Scheduled and manual backups, verification and restore.", "admin:backups",
            "backups.view_backup"),
)


def get_section(slug: str) -> Section | None:
    return next((s for s in SECTIONS if s.slug == slug), None)
