"""Bench-only wiring: the baseline (a stock Django admin changelist of Content) beside our pages.

`bench/review_queue.py` points ROOT_URLCONF here. The project's URLs stay as they are; the
baseline is a plain `ModelAdmin` on a plain `AdminSite` mounted at /stock-admin/.

The project puts Unfold's templates in front of Django's `admin/*` templates. So that the
baseline renders the real stock templates, `SiteTemplateLoader` hands template lookups to a
second cached loader (Django's admin templates first) while `stock_templates()` is active;
otherwise it behaves exactly like Django's default loaders with DEBUG off (cached
filesystem + app directories).
"""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

import django.contrib.admin
from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.template.loaders.base import Loader as BaseLoader
from django.template.loaders.cached import Loader as CachedLoader
from django.template.response import TemplateResponse
from django.urls import path

from advisors.models import Content
from opscenter.urls import urlpatterns as project_urlpatterns

_stock = contextvars.ContextVar("bench_stock_templates", default=False)
DJANGO_ADMIN_TEMPLATES = str(Path(django.contrib.admin.__file__).parent / "templates")
_DEFAULT_LOADERS = ["django.template.loaders.filesystem.Loader", "django.template.loaders.app_directories.Loader"]


@contextlib.contextmanager
def stock_templates():
    """Render Django's own admin templates (not Unfold's) inside this block."""
    token = _stock.set(True)
    try:
        yield
    finally:
        _stock.reset(token)


class SiteTemplateLoader(BaseLoader):
    """Two cached loader stacks: the project's, and one with Django's admin templates first."""

    def __init__(self, engine):
        super().__init__(engine)
        self.project = CachedLoader(engine, _DEFAULT_LOADERS)
        self.stock = CachedLoader(
            engine, [("django.template.loaders.filesystem.Loader", [DJANGO_ADMIN_TEMPLATES]), *_DEFAULT_LOADERS]
        )

    def _active(self) -> CachedLoader:
        return self.stock if _stock.get() else self.project

    def get_template(self, template_name, skip=None):
        return self._active().get_template(template_name, skip)

    def get_template_sources(self, template_name):
        return self._active().get_template_sources(template_name)

    def reset(self):
        self.project.reset()
        self.stock.reset()


def bench_templates(project_templates: list[dict]) -> list[dict]:
    """Return the project's TEMPLATES with SiteTemplateLoader as the Django engine's loader."""
    engines = []
    for engine in project_templates:
        engine = {**engine, "OPTIONS": dict(engine.get("OPTIONS", {}))}
        if engine["BACKEND"] == "django.template.backends.django.DjangoTemplates":
            engine["APP_DIRS"] = False
            engine["OPTIONS"]["loaders"] = ["bench.stock_admin.SiteTemplateLoader"]
        engines.append(engine)
    return engines


class StockContentAdmin(admin.ModelAdmin):
    """What a developer gets from the admin out of the box, filtering on the queue's fields."""

    list_display = ("title", "advisor", "cycle_date", "kind", "status", "compliance_verdict", "submitted_at")
    list_filter = ("status", "cycle_date", "advisor", "compliance_verdict", "kind")
    # The queue's order, so both pages show the same items.
    ordering = ("submitted_at", "id")
    list_per_page = 20  # set to our queue's page size by the bench


class LeanStockContentAdmin(StockContentAdmin):
    """The same without the advisor filter, whose sidebar lists every advisor (a reference point)."""

    list_filter = ("status", "cycle_date", "compliance_verdict", "kind")


site = admin.AdminSite(name="stock_admin")
site.register(Content, StockContentAdmin)
lean_site = admin.AdminSite(name="stock_admin_lean")
lean_site.register(Content, LeanStockContentAdmin)


QUEUE_TEMPLATE = """<!doctype html><title>Review queue</title><main>
<p>{{ counters.pending }} pending, oldest {{ counters.oldest_submitted_at }}</p>
{% for item in page.items %}<article data-id="{{ item.pk }}"><h2>{{ item.title }}</h2>
<p>{{ item.advisor.name }} · {{ item.cycle_date }} · {{ item.get_kind_display }} · {{ item.compliance_verdict }}
· fatigue {{ item.fatigue_score|floatformat:2 }}</p><div>{{ item.body|linebreaks }}</div>
{% for f in item.compliance_findings %}<p>{{ f.rule }}: {{ f.message }}</p>{% endfor %}</article>{% endfor %}
{% if page.next_cursor %}<a href="?{{ next_query }}">Next</a>{% endif %}</main>"""


@permission_required("advisors.view_content", raise_exception=True)
def provisional_queue(request):
    """Stand-in for the queue page while it is being built: the queue service plus a render."""
    from datetime import date

    from django.template import engines

    from advisors.services import QueueFilters, queue_counters, review_queue

    params = request.GET
    filters = QueueFilters(
        cycle_date=date.fromisoformat(params["cycle_date"]) if params.get("cycle_date") else None,
        advisor_id=int(params["advisor"]) if params.get("advisor") else None,
        verdict=params.get("verdict") or None,
        kind=params.get("kind") or None,
    )
    page = review_queue(filters, after=params.get("after") or None)
    next_query = params.copy()
    if page.next_cursor:
        next_query["after"] = page.next_cursor
    template = engines["django"].from_string(QUEUE_TEMPLATE)
    context = {"page": page, "counters": queue_counters(), "next_query": next_query.urlencode()}
    return TemplateResponse(request, template, context)


urlpatterns = [
    path("stock-admin/", site.urls),
    path("stock-admin-lean/", lean_site.urls),
    path("bench-queue/", provisional_queue, name="bench_provisional_queue"),
    *project_urlpatterns,
]
