from importlib import import_module

from django.apps import AppConfig

READ = [
    "alerts.view_rule", "alerts.view_alert", "alerts.view_alertevent", "alerts.view_channel",
    "alerts.view_escalationpolicy", "alerts.view_escalationstep", "alerts.view_notification",
    "alerts.view_notificationattempt", "alerts.view_silence", "alerts.view_maintenancewindow",
    "alerts.view_evaluatorstate", "alerts.view_slo",
]
# On call: acknowledge, resolve, silence, maintenance windows.
OPERATE = [
    "alerts.acknowledge_alert", "alerts.resolve_alert", "alerts.add_silence", "alerts.change_silence",
    "alerts.add_maintenancewindow", "alerts.change_maintenancewindow", "alerts.delete_maintenancewindow",
]
# Configuration: rules, channels (their secrets), escalation, SLOs.
CONFIGURE = [
    f"alerts.{verb}_{model}"
    for model in ("rule", "channel", "escalationpolicy", "escalationstep", "slo")
    for verb in ("add", "change", "delete")
] + ["alerts.test_channel"]


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from opscenter import roles
        from opscenter.admin_site import register_console_urls
        from opscenter.live import register_topic

        from . import metrics, slo

        for role in roles.ROLES:
            roles.grant(role, READ)
        roles.grant(roles.OPERATOR, OPERATE)
        roles.grant(roles.ADMIN, [*OPERATE, *CONFIGURE])

        def snapshot(user) -> dict:
            from .services import alerts_snapshot

            return alerts_snapshot(user)

        register_topic("alerts", permission="alerts.view_alert", snapshot=snapshot)
        register_console_urls(lambda site: import_module("alerts.views").console_urls(site))
        register_console_urls(lambda site: import_module("alerts.slo_views").console_urls(site))
        metrics.register_alert_metrics()
        slo.register_slo_metrics()
