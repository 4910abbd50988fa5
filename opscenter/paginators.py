"""Pagination that does not count a million rows on every page view."""

from __future__ import annotations

import json

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this the exact count is cheap and people expect it.
EXACT_COUNT_LIMIT = 10_000


def estimated_count(queryset) -> int:
    """Return the planner's row estimate for `queryset` on PostgreSQL, else an exact count.

    The estimate is used only when it says the result is large; small results are
    counted exactly, so filters that match a few rows still show the true number.
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return queryset.count()
    sql, params = queryset.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    estimate = int(plan[0]["Plan"]["Plan Rows"])
    if estimate < EXACT_COUNT_LIMIT:
        return queryset.count()
    return estimate


class EstimatedCountPaginator(Paginator):
    """A Paginator whose total comes from estimated_count (for admin changelists)."""

    @cached_property
    def count(self) -> int:
        return estimated_count(self.object_list)
