"""Fixtures shared by the alerts tests."""

from __future__ import annotations

import pytest

from alerts import evaluation
from monitoring import store

from .factories import register_test_metrics, unregister_test_metrics


@pytest.fixture
def test_metrics():
    """Register the test gauge/counter metrics and start with empty series caches; undo both after."""
    register_test_metrics()
    store._series_ids.clear()
    evaluation.forget_cached_series()
    yield
    unregister_test_metrics()
    store._series_ids.clear()
    evaluation.forget_cached_series()
