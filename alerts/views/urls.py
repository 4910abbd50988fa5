"""The alerting console pages, mounted under /admin/ (names in the admin namespace).

They sit under /admin/alerts/ beside the admin's own model pages (/admin/alerts/rule/ …),
come first in the URL list, and use paths no model page uses (numbers, "silences").
"""

from __future__ import annotations

from django.urls import URLPattern, path

from . import pages, silences


def console_urls(site) -> list[URLPattern]:
    """Return the alerting pages, each behind the admin site's sign-in."""
    wrap = site.admin_view
    return [
        path("alerts/", wrap(pages.alerts_page), name="alerts"),
        path("alerts/<int:pk>/", wrap(pages.alert_detail), name="alerts_alert"),
        path("alerts/<int:pk>/acknowledge/", wrap(pages.acknowledge), name="alerts_alert_acknowledge"),
        path("alerts/<int:pk>/unacknowledge/", wrap(pages.unacknowledge), name="alerts_alert_unacknowledge"),
        path("alerts/<int:pk>/comment/", wrap(pages.comment), name="alerts_alert_comment"),
        path("alerts/<int:pk>/resolve/", wrap(pages.resolve), name="alerts_alert_resolve"),
        path("alerts/<int:pk>/silence/", wrap(pages.silence), name="alerts_alert_silence"),
        path("alerts/silences/", wrap(silences.silences_page), name="alerts_silences"),
        path("alerts/silences/new/", wrap(silences.silence_create), name="alerts_silence_create"),
        path("alerts/silences/matches/", wrap(silences.silence_matches), name="alerts_silence_matches"),
        path("alerts/silences/<int:pk>/expire/", wrap(silences.silence_expire), name="alerts_silence_expire"),
    ]
