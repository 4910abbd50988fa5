"""The metric registry: every app names its metrics here and says how to read them.

An app registers its metrics from `AppConfig.ready()`:

    register_metric(
        "opscenter_pending_approvals", "Content waiting for a reviewer.",
        read=lambda: [Sample({}, Content.objects.filter(status="pending_review").count())],
    )

Three readers use the registry and nothing else: the sampler stores the current value of
every metric with `store=True` in the metric store (charts, alert rules); `/metrics`
exposes every metric to Prometheus; the alert rules (alerts app) pick a metric by name.
So a new metric needs no change in monitoring or alerts, and apps below monitoring in the
import order never import it — monitoring imports them when it reads.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)


class Kind(enum.StrEnum):
    GAUGE = "gauge"  # a value now: pending approvals, disk used
    COUNTER = "counter"  # only grows (resets on restart): events received
    HISTOGRAM = "histogram"  # a distribution: run durations


@dataclass(frozen=True)
class Sample:
    """One labelled value of a gauge or counter."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class HistogramValue:
    """One labelled histogram: cumulative bucket counts by upper bound (last is +Inf)."""

    labels: Mapping[str, str]
    buckets: tuple[tuple[float, int], ...]
    sum: float
    count: int


@dataclass(frozen=True)
class Metric:
    """A named metric and how to read its current values."""

    name: str  # the series name everywhere: Prometheus, the metric store, alert rules
    help: str
    read: Callable[[], Iterable[Sample | HistogramValue]]
    kind: Kind = Kind.GAUGE
    labels: tuple[str, ...] = ()
    unit: str = ""  # "seconds", "bytes", "percent", "ratio" or "" (a count)
    # Sampled into the metric store (charts, alert rules). Histograms and metrics that an
    # app writes to the store itself (it knows better when a value changes) say False.
    store: bool = True
    extra: dict = field(default_factory=dict, compare=False)  # room for readers' hints


_metrics: dict[str, Metric] = {}


def register_metric(
    name: str,
    help: str,
    *,
    read: Callable[[], Iterable[Sample | HistogramValue]],
    kind: Kind = Kind.GAUGE,
    labels: tuple[str, ...] = (),
    unit: str = "",
    store: bool = True,
) -> Metric:
    """Declare a metric; registering the same name again replaces it (module reloads, tests)."""
    if not name.startswith("opscenter_") or not name.replace("_", "").isalnum() or name.lower() != name:
        raise ValueError(f"metric names are lower-case, start with opscenter_ and use [a-z0-9_]: {name!r}")
    if kind is Kind.HISTOGRAM and store:
        raise ValueError("histograms are exposed, not stored: pass store=False")
    metric = Metric(name=name, help=help, read=read, kind=kind, labels=tuple(labels), unit=unit, store=store)
    _metrics[name] = metric
    return metric


def get_metric(name: str) -> Metric | None:
    return _metrics.get(name)


def all_metrics() -> list[Metric]:
    """Return the registered metrics, by name."""
    return [_metrics[name] for name in sorted(_metrics)]


def read_metric(metric: Metric) -> list[Sample | HistogramValue]:
    """Read a metric's current values; a failing reader yields nothing and is logged, never raised.

    One broken metric must not take /metrics or the sampler down with it.
    """
    try:
        values = list(metric.read())
    except Exception:
        logger.warning("metric %s could not be read", metric.name, exc_info=True)
        return []
    for value in values:
        missing = set(metric.labels) - set(value.labels)
        if missing:
            logger.warning("metric %s: a value lacks labels %s", metric.name, sorted(missing))
            return []
    return values
