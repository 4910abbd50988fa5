"""Fixtures of the monitoring tests."""

from __future__ import annotations

import pytest

from monitoring import registry, store


@pytest.fixture(autouse=True)
def _forget_cached_series():
    """The store caches series ids per process; each test's database starts without them."""
    store._series_ids.clear()
    yield
    store._series_ids.clear()


@pytest.fixture
def extra_metric():
    """Register metrics for one test and remove them afterwards (the registry is process-wide)."""
    added: list[str] = []

    def register(name: str, *args, **kwargs):
        added.append(name)
        return registry.register_metric(name, *args, **kwargs)

    yield register
    for name in added:
        registry._metrics.pop(name, None)
