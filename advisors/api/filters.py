from __future__ import annotations

import django_filters

from ..models import Advisor, ComplianceVerdict, Content, Delivery


class AdvisorFilter(django_filters.FilterSet):
    class Meta:
        model = Advisor
        fields = ["status", "language", "segment"]


class ContentFilter(django_filters.FilterSet):
    cycle_date = django_filters.DateFilter(help_text="exact cycle date, YYYY-MM-DD")
    cycle_date_after = django_filters.DateFilter(
        field_name="cycle_date", lookup_expr="gte", help_text="cycle date on or after, YYYY-MM-DD"
    )
    cycle_date_before = django_filters.DateFilter(
        field_name="cycle_date", lookup_expr="lte", help_text="cycle date on or before, YYYY-MM-DD"
    )
    verdict = django_filters.ChoiceFilter(
        field_name="compliance_verdict", choices=ComplianceVerdict.choices, help_text="compliance verdict"
    )

    class Meta:
        model = Content
        fields = ["status", "advisor", "cycle_date", "cycle_date_after", "cycle_date_before", "verdict", "kind"]


class DeliveryFilter(django_filters.FilterSet):
    class Meta:
        model = Delivery
        fields = ["status", "channel", "content"]
