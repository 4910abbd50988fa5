from importlib import import_module

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def follow_inbound_sources(sender, instance, **kwargs) -> None:
    """A source's /health URL added, changed or removed: its check follows, after the commit."""
    from django.db import transaction

    from .services import ensure_system_checks

    transaction.on_commit(ensure_system_checks)


def ensure_system_checks_after_migrate(sender, **kwargs) -> None:
    """Create (or re-point) the checks of OpsCenter's own components after every migrate."""
    from .services import ensure_system_checks

    ensure_system_checks()


class HealthConfig(AppConfig):
    name = "monitoring.health"
    label = "health"
    verbose_name = "Health"

    def ready(self) -> None:
        from monitoring.registry import Sample, register_metric
        from opscenter import roles
        from opscenter.admin_site import register_console_urls
        from opscenter.live import register_topic

        read = ["health.view_healthcheck", "health.view_healthresult", "health.view_healthflip"]
        for role in roles.ROLES:
            roles.grant(role, read)
        roles.grant(roles.OPERATOR, ["health.run_healthcheck"])
        roles.grant(roles.ADMIN, ["health.run_healthcheck", "health.add_healthcheck", "health.change_healthcheck",
                                  "health.delete_healthcheck"])

        def snapshot(user) -> dict:
            from .services import health_snapshot

            return health_snapshot(user)

        register_topic("health", permission="health.view_healthcheck", snapshot=snapshot)
        register_console_urls(lambda site: import_module("monitoring.health.views").console_urls(site))

        def read_up():
            from .models import CheckState, HealthCheck

            rows = HealthCheck.objects.filter(enabled=True).exclude(state=CheckState.UNKNOWN)
            for name, kind, state in rows.values_list("name", "kind", "state"):
                yield Sample({"check": name, "kind": kind}, 1.0 if state == CheckState.UP else 0.0)

        def read_latency():
            from .models import HealthCheck

            rows = HealthCheck.objects.filter(enabled=True, last_latency_ms__isnull=False)
            for name, kind, latency in rows.values_list("name", "kind", "last_latency_ms"):
                yield Sample({"check": name, "kind": kind}, latency / 1000.0)

        register_metric("opscenter_health_up", "Whether each enabled health check is up (1) or down (0).",
                        read=read_up, labels=("check", "kind"))
        register_metric("opscenter_health_latency_seconds", "How long each health check's last run took.",
                        read=read_latency, labels=("check", "kind"), unit="seconds")
        post_migrate.connect(ensure_system_checks_after_migrate, sender=self)

        from django.db.models.signals import post_save

        from advisors.inbound import services as inbound_services
        from advisors.inbound.models import InboundSource

        from .services import inbound_source_health

        post_save.connect(follow_inbound_sources, sender=InboundSource, dispatch_uid="health.follow_inbound_sources")
        inbound_services.register_health_lookup(inbound_source_health)
