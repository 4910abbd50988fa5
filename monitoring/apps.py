from importlib import import_module

from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from celery import signals as celery_signals

        from agents.services import run_finished
        from opscenter import roles
        from opscenter.admin_site import register_console_urls
        from opscenter.live import register_topic

        from . import metrics, processes, services

        for role in roles.ROLES:
            roles.grant(role, ["monitoring.view_metricseries"])

        register_topic("metrics", permission="monitoring.view_metricseries", snapshot=services.system_snapshot)
        register_console_urls(lambda site: import_module("monitoring.views").console_urls(site))
        metrics.register_core_metrics()
        run_finished.connect(metrics.on_run_finished, dispatch_uid="monitoring.count_finished_runs")

        # Worker and beat report their own pid, RSS and CPU to Redis (see monitoring.processes);
        # these Celery signals fire only inside those processes. The web process starts its
        # reporter from opscenter/asgi.py.
        celery_signals.worker_ready.connect(processes.start_worker_reporter, dispatch_uid="monitoring.worker_reporter", weak=False)
        celery_signals.worker_shutdown.connect(processes.stop_worker_reporter, dispatch_uid="monitoring.worker_reporter_stop", weak=False)
        celery_signals.beat_init.connect(processes.start_beat_reporter, dispatch_uid="monitoring.beat_reporter", weak=False)
