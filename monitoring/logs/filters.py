"""The log filters, shared by the viewer page and GET /api/v1/logs/ (bad values: field errors)."""

from __future__ import annotations

from datetime import timedelta

import django_filters
from django import forms
from django.utils import timezone

from . import services
from .models import LEVEL_BY_NAME, LogEntry, Source

LEVEL_CHOICES = [(name, f"{name} and above") for name in LEVEL_BY_NAME]
WINDOWS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6),
           "24h": timedelta(hours=24), "7d": timedelta(days=7)}
WINDOW_CHOICES = [("15m", "last 15 minutes"), ("1h", "last hour"), ("6h", "last 6 hours"),
                  ("24h", "last 24 hours"), ("7d", "last 7 days")]


class LogFilterForm(forms.Form):
    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "Must be later than “since”.")
        return data


class LogFilter(django_filters.FilterSet):
    level = django_filters.ChoiceFilter(
        choices=LEVEL_CHOICES, method="filter_level", empty_label="all levels",
        help_text="minimum level: debug, info, warning, error or critical",
    )
    source = django_filters.MultipleChoiceFilter(
        choices=Source.choices, help_text="process the entry came from (repeat for several)"
    )
    logger = django_filters.CharFilter(
        lookup_expr="startswith", max_length=200, help_text="logger name prefix, e.g. django.request or celery"
    )
    agent = django_filters.CharFilter(max_length=64, help_text="agent slug")
    run = django_filters.NumberFilter(field_name="run_id", min_value=1, help_text="agent run id")
    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte", help_text="ISO 8601, inclusive")
    until = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="lt", help_text="ISO 8601, exclusive")
    window = django_filters.ChoiceFilter(
        choices=WINDOW_CHOICES, method="filter_window", empty_label="any time",
        help_text="recent window: 15m, 1h, 6h, 24h or 7d",
    )
    q = django_filters.CharFilter(
        method="filter_search", max_length=200,
        help_text='full-text search over message and exception ("phrase", or, -word on PostgreSQL)',
    )

    class Meta:
        model = LogEntry
        fields: list[str] = []
        form = LogFilterForm

    def filter_level(self, queryset, name, value):
        return queryset.filter(level__gte=LEVEL_BY_NAME[value]) if value else queryset

    def filter_window(self, queryset, name, value):
        return queryset.filter(at__gte=timezone.now() - WINDOWS[value]) if value else queryset

    def filter_search(self, queryset, name, value):
        return services.search(queryset, value)
