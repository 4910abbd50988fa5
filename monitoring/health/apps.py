from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "monitoring.health"
    label = "health"
    verbose_name = "Health"
