"""The review queue's URLs, mounted under /admin/ (names in the admin namespace)."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import views


def console_urls(site) -> list[URLPattern]:
    """Return the queue page and its endpoints, each behind the admin site's sign-in."""
    wrap = site.admin_view
    return [
        path("review/", wrap(views.queue), name="review_queue"),
        path("review/items/", wrap(views.items), name="review_items"),
        path("review/state/", wrap(views.state), name="review_state"),
        path("review/counters/", wrap(views.counters), name="review_counters"),
        path("review/bulk/", wrap(views.bulk), name="review_bulk"),
        path("review/<int:pk>/card/", wrap(views.card), name="review_card"),
        path("review/<int:pk>/image/", wrap(views.image), name="review_image"),
        path("review/<int:pk>/approve/", wrap(views.act), {"action": "approve"}, name="review_approve"),
        path("review/<int:pk>/reject/", wrap(views.act), {"action": "reject"}, name="review_reject"),
        path(
            "review/<int:pk>/request-revision/",
            wrap(views.act),
            {"action": "request_revision"},
            name="review_request_revision",
        ),
        path("review/<int:pk>/claim/", wrap(views.claim), name="review_claim"),
        path("review/<int:pk>/release/", wrap(views.release), name="review_release"),
    ]
