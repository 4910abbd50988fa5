from django.apps import AppConfig


class LogsConfig(AppConfig):
    name = "monitoring.logs"
    label = "logs"
    verbose_name = "Logs"
