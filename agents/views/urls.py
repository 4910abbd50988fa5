"""The agents console pages, mounted under /admin/ (names in the admin namespace)."""

from __future__ import annotations

from django.urls import URLPattern, path, register_converter

from . import pages


class AgentSlugConverter:
    """An agent slug that is not one of the app's model names.

    The pages live under /admin/agents/ beside the admin's own model pages
    (/admin/agents/agent/, /admin/agents/agentrun/, …) and come first in the URL list.
    """

    regex = r"(?!(?:agent|agentrun|runlog|webhookattempt|runs)/)[-a-zA-Z0-9_]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(AgentSlugConverter, "agentslug")


def console_urls(site) -> list[URLPattern]:
    """Return the agents pages, each behind the admin site's sign-in."""
    wrap = site.admin_view
    return [
        path("agents/", wrap(pages.hierarchy), name="agents_hierarchy"),
        path("agents/runs/<int:pk>/", wrap(pages.run_detail), name="agents_run"),
        path("agents/runs/<int:pk>/state/", wrap(pages.run_state_view), name="agents_run_state"),
        path("agents/runs/<int:pk>/cancel/", wrap(pages.cancel), name="agents_run_cancel"),
        path("agents/runs/<int:pk>/retry/", wrap(pages.retry), name="agents_run_retry"),
        path("agents/<agentslug:slug>/", wrap(pages.agent_detail), name="agents_agent"),
        path("agents/<agentslug:slug>/runs/", wrap(pages.agent_runs), name="agents_agent_runs"),
        path("agents/<agentslug:slug>/trigger/", wrap(pages.trigger), name="agents_trigger"),
        path("agents/<agentslug:slug>/schedule/", wrap(pages.schedule), name="agents_schedule"),
    ]
