from django.apps import AppConfig


class EngineConfig(AppConfig):
    name = "agents.engine"
    label = "engine"
    verbose_name = "Content engine"
