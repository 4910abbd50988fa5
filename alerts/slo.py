"""SLOs: indicators, error budgets, burn rates (placeholder until the SLO part lands)."""


def register_slo_metrics() -> None:
    """Register the SLO metrics in the registry."""


def record_slos() -> int:
    return 0
