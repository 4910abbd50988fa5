from importlib import import_module

from django.apps import AppConfig


class InboundConfig(AppConfig):
    name = "advisors.inbound"
    label = "inbound"
    verbose_name = "Inbound webhook"

    def ready(self) -> None:
        from opscenter import roles

        read = ["inbound.view_inboundsource", "inbound.view_inboundevent"]
        for role in (roles.ADMIN, roles.OPERATOR, roles.VIEWER):
            roles.grant(role, read)
        # A failed event is retried by the people who run the pipeline.
        roles.grant(roles.OPERATOR, ["inbound.retry_inboundevent"])
        roles.grant(
            roles.ADMIN,
            ["inbound.retry_inboundevent", "inbound.add_inboundsource", "inbound.change_inboundsource"],
        )

        from django.db.models.signals import post_delete, post_save

        from .models import InboundSource

        def forget(sender, instance, **kwargs) -> None:
            from .services import forget_source

            forget_source(instance.slug, instance.pk)

        post_save.connect(forget, sender=InboundSource, weak=False, dispatch_uid="inbound.forget_source_on_save")
        post_delete.connect(forget, sender=InboundSource, weak=False, dispatch_uid="inbound.forget_source_on_delete")

        from opscenter.admin_site import register_console_urls
        from opscenter.live import register_topic

        def snapshot(user) -> dict:
            from .services import integration_snapshot

            return integration_snapshot(user)

        register_topic("inbound", permission="inbound.view_inboundevent", snapshot=snapshot)
        register_console_urls(lambda site: import_module("advisors.inbound.views").console_urls(site))
