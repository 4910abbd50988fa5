from importlib import import_module

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def sync_agents_after_migrate(sender, **kwargs) -> None:
    from opscenter.audit import record_audit

    from .registry import sync_agents

    changes = sync_agents()
    if any(changes.values()):
        record_audit("agents.synced", changes=changes)


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        from django.conf import settings

        from opscenter import roles
        from opscenter.admin_site import register_console_urls
        from opscenter.live import register_topic

        from .registry import autodiscover

        read = ["agents.view_agent", "agents.view_agentrun", "agents.view_runlog", "agents.view_webhookattempt"]
        for role in roles.ROLES:
            roles.grant(role, read)
        operate = ["agents.trigger_agent", "agents.report_agentrun"]
        roles.grant(roles.OPERATOR, operate)
        roles.grant(roles.ADMIN, [*operate, "agents.change_agent", "agents.add_agent"])

        def agents_snapshot(user) -> dict:
            from .services import hierarchy_snapshot

            return hierarchy_snapshot(user)

        register_topic("agents", permission="agents.view_agent", snapshot=agents_snapshot)
        register_console_urls(lambda site: import_module("agents.views.urls").console_urls(site))
        post_migrate.connect(sync_agents_after_migrate, sender=self)
        autodiscover(settings.AGENT_MODULES)
