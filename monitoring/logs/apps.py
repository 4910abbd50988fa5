from importlib import import_module

from django.apps import AppConfig


class LogsConfig(AppConfig):
    name = "monitoring.logs"
    label = "logs"
    verbose_name = "Logs"

    def ready(self) -> None:
        from agents.services import run_logs_written
        from monitoring.registry import Sample, register_metric
        from opscenter import roles
        from opscenter.admin_site import register_console_urls
        from opscenter.live import register_topic

        from . import services

        # Logs hold exception text, request paths and whatever code put in a message (names,
        # phone numbers, provider errors): for the people who run the system, not for every
        # read-only account. Viewers and reviewers see run logs on the run pages instead.
        for role in (roles.ADMIN, roles.OPERATOR):
            roles.grant(role, ["logs.view_logentry"])
        register_topic(services.TOPIC, permission="logs.view_logentry", snapshot=services.logs_snapshot)
        register_console_urls(lambda site: import_module("monitoring.logs.urls").console_urls(site))
        # Run log lines are copied into the store as agents writes them (one searchable store).
        run_logs_written.connect(services.store_run_logs, dispatch_uid="logs.store_run_logs")
        register_metric(
            "opscenter_log_entries_recent",
            "Log entries stored in the last 5 minutes, by level (alert on error bursts).",
            read=lambda: [Sample({"level": level}, n) for level, n in services.recent_counts().items()],
            labels=("level",),
        )
