from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "agents.engine"
    label = "engine"
    verbose_name = "Content engine"

    def ready(self) -> None:
        from importlib import import_module

        from agents.services import run_finished
        from opscenter import roles
        from opscenter.admin_site import register_console_urls

        from .signals import follow_orchestrator_runs

        run_finished.connect(follow_orchestrator_runs, dispatch_uid="engine.follow_orchestrator_runs")
        register_console_urls(lambda site: import_module("agents.engine.views").console_urls(site))
        tuned = ["topic", "topicfeed", "compliancerule", "enginesettings"]
        records = ["cycle", "cycleadvisor", "dailyrollup"]
        for role in roles.ROLES:
            roles.grant(role, [f"engine.view_{model}" for model in (*tuned, *records)])
        # Admins own the rules and the brand; people who run the pipeline keep the topic bank.
        roles.grant(roles.ADMIN, [f"engine.{verb}_{model}" for model in tuned for verb in ("add", "change", "delete")])
        roles.grant(roles.OPERATOR, [f"engine.{verb}_topic" for verb in ("add", "change")]
                    + [f"engine.{verb}_topicfeed" for verb in ("add", "change")])
