from importlib import import_module

from django.apps import AppConfig


class AdvisorsConfig(AppConfig):
    name = "advisors"
    verbose_name = "Advisors and content"

    def ready(self) -> None:
        from opscenter import roles
        from opscenter.live import register_topic

        read = ["advisors.view_advisor", "advisors.view_content", "advisors.view_delivery"]
        for role in roles.ROLES:
            roles.grant(role, read)
        roles.grant(roles.REVIEWER, ["advisors.review_content"])
        roles.grant(
            roles.ADMIN,
            [
                "advisors.review_content",
                "advisors.add_advisor",
                "advisors.change_advisor",
                "advisors.import_advisor",
                "advisors.view_outboxmessage",
                "advisors.retry_delivery",
            ],
        )
        # Operators run the pipeline: re-sending a delivery whose outcome is known to have
        # failed is theirs to do too.
        roles.grant(roles.OPERATOR, ["advisors.retry_delivery"])

        def content_snapshot(user) -> dict:
            from .services import queue_counters

            return {"counters": queue_counters()}

        register_topic("content", permission="advisors.view_content", snapshot=content_snapshot)

        from opscenter.admin_site import register_console_urls

        register_console_urls(lambda site: import_module("advisors.review.urls").console_urls(site))
