"""Builders for alerting test data (shared by the alerts tests; add, don't change signatures)."""

from __future__ import annotations

import itertools

from django.utils import timezone

_n = itertools.count(1)


def make_rule(**fields):
    """Create an enabled rule (a gauge above a threshold, firing at once unless told otherwise)."""
    from alerts.models import Rule

    defaults = {
        "name": f"Rule {next(_n)}",
        "metric": "opscenter_test_gauge",
        "aggregation": "last",
        "window_seconds": 60,
        "comparator": "gt",
        "threshold": 10.0,
        "for_seconds": 0,
        "severity": "high",
        "group_wait_seconds": 0,
    }
    channels = fields.pop("channels", None)
    rule = Rule.objects.create(**{**defaults, **fields})
    if channels:
        rule.channels.set(channels)
    return rule


def make_channel(url: str = "json://receiver.example.com/hook", **fields):
    """Create a channel (an Apprise URL)."""
    from alerts.models import Channel

    return Channel.objects.create(**{"name": f"Channel {next(_n)}", "url": url, **fields})


def make_alert(rule=None, *, status: str = "firing", labels: dict | None = None, **fields):
    """Create an alert row directly (for pages and actions; the evaluator makes real ones)."""
    from alerts.models import Alert

    rule = rule or make_rule()
    now = timezone.now()
    labels = {"alertname": rule.name, "severity": rule.severity, **(labels or {})}
    defaults = {
        "rule": rule,
        "rule_name": rule.name,
        "fingerprint": f"fp-{next(_n)}",
        "labels": labels,
        "severity": rule.severity,
        "status": status,
        "summary": f"{rule.name}: value 12 > 10",
        "value": 12.0,
        "pending_since": now,
        "fired_at": now if status in ("firing", "resolved") else None,
        "resolved_at": now if status == "resolved" else None,
    }
    return Alert.objects.create(**{**defaults, **fields})
