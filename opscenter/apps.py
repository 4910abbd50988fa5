from django.apps import AppConfig
from django.db.models.signals import post_migrate


class OpsCenterConfig(AppConfig):
    name = "opscenter"
    verbose_name = "System"

    def ready(self) -> None:
        from . import roles, signals  # noqa: F401  (signal receivers)
        from .api import schema  # noqa: F401  (OpenAPI extensions register on import)

        everyone = ["opscenter.view_overview"]
        for role in roles.ROLES:
            roles.grant(role, everyone)
        roles.grant(
            roles.ADMIN,
            [
                "opscenter.view_auditentry",
                "auth.view_user",
                "auth.add_user",
                "auth.change_user",
                "auth.view_group",
                "auth.change_group",
                "django_celery_beat.view_periodictask",
                "django_celery_beat.change_periodictask",
                "django_celery_beat.add_periodictask",
                "django_celery_beat.view_crontabschedule",
                "django_celery_beat.add_crontabschedule",
                "django_celery_beat.change_crontabschedule",
                "django_celery_beat.view_intervalschedule",
                "django_celery_beat.add_intervalschedule",
                "django_celery_beat.change_intervalschedule",
                "axes.view_accessattempt",
                "axes.delete_accessattempt",
                "axes.view_accessfailurelog",
            ],
        )
        post_migrate.connect(signals.sync_roles_after_migrate, sender=self)

        from .live import register_topic
        from .tasks import last_heartbeat

        register_topic(
            "system",
            permission="opscenter.view_overview",
            snapshot=lambda user: {"heartbeat": last_heartbeat()},
        )
