from django.apps import AppConfig


class BackupsConfig(AppConfig):
    name = "opscenter.backups"
    label = "backups"
    verbose_name = "Backups"
