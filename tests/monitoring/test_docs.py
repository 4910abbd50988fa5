"""docs/grafana-dashboard.json and docs/prometheus-alerts.yml use series that /metrics really exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from monitoring.registry import Kind, all_metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"\bopscenter_[a-z0-9_]+")


def exposed_series() -> set[str]:
    """Every series name Prometheus sees from the registry (histograms as _bucket/_count/_sum)."""
    names = set()
    for metric in all_metrics():
        if metric.kind is Kind.HISTOGRAM:
            names |= {f"{metric.name}_bucket", f"{metric.name}_count", f"{metric.name}_sum"}
        elif metric.kind is Kind.COUNTER and not metric.name.endswith("_total"):
            names.add(f"{metric.name}_total")
        else:
            names.add(metric.name)
    return names


def balanced(expr: str) -> bool:
    stack, pairs = [], {")": "(", "]": "[", "}": "{"}
    for char in re.sub(r'"[^"]*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def test_every_alert_rule_parses_and_names_only_real_series():
    rules = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text())
    exposed = exposed_series()
    seen = 0
    for group in rules["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            seen += 1
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"])
            assert rule["labels"]["severity"] in {"critical", "high", "medium", "low"}
            assert balanced(rule["expr"]), rule["alert"]
            if "for" in rule:
                assert re.fullmatch(r"\d+[smhd]", rule["for"])
            unknown = set(NAME.findall(rule["expr"])) - exposed
            assert not unknown, f"{rule['alert']} names {unknown}"
            for text in rule.get("annotations", {}).values():
                assert text.count("{{") == text.count("}}")
                assert not set(NAME.findall(text)) - exposed
    assert seen >= 10


def test_the_grafana_dashboard_is_valid_json_whose_queries_name_only_real_series():
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    exposed = exposed_series()
    used = set()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert balanced(target["expr"]), target["expr"]
            used |= set(NAME.findall(target["expr"]))
    assert not used - exposed, used - exposed
    # The dashboard covers the core series.
    for name in ("opscenter_agent_runs_total", "opscenter_agent_run_duration_seconds_bucket",
                 "opscenter_pending_approvals", "opscenter_pending_approval_oldest_age_seconds",
                 "opscenter_deliveries", "opscenter_celery_queue_length", "opscenter_system_cpu_percent",
                 "opscenter_system_disk_used_percent", "opscenter_process_resident_memory_bytes"):
        assert name in used, name
