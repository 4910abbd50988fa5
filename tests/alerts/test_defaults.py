"""The default rule pack bootstrap creates: complete, valid, created once, and left alone once edited or deleted."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from alerts.defaults import DEFAULT_RULES, ensure_default_rules
from alerts.evaluation import validate_rule
from alerts.models import Rule
from monitoring.registry import get_metric

pytestmark = pytest.mark.django_db


def test_bootstrap_creates_the_whole_pack_once():
    call_command("bootstrap", stdout=open("/dev/null", "w"))  # noqa: SIM115
    # (SLO burn-rate rules carry "slo:" keys; the pack's are "rule:")
    first = set(Rule.objects.filter(builtin_key__startswith="rule:").values_list("builtin_key", flat=True))

    assert len(first) == len(DEFAULT_RULES) == 10
    assert ensure_default_rules() == []
    assert Rule.objects.filter(builtin_key__startswith="rule:").count() == 10


def test_every_default_rule_is_valid_and_reads_a_registered_metric():
    for rule in ensure_default_rules():
        validate_rule(rule)
        assert get_metric(rule.metric) is not None
        if rule.denominator_metric:
            assert get_metric(rule.denominator_metric) is not None


def test_the_pack_covers_what_on_call_asked_for():
    rules = {rule.builtin_key: rule for rule in ensure_default_rules()}

    assert rules["rule:agent-failure-rate"].severity == "critical"
    assert rules["rule:agent-failure-rate"].threshold == 0.05 and rules["rule:agent-failure-rate"].window_seconds == 300
    assert rules["rule:delivery-failure-rate"].threshold == 0.02
    assert rules["rule:approvals-waiting"].threshold == 7200
    assert {rules["rule:disk-80"].severity, rules["rule:disk-90"].severity} == {"medium", "critical"}
    assert rules["rule:memory-90"].severity == "critical"
    assert rules["rule:inbound-silent"].threshold == 600 and rules["rule:inbound-silent"].active_from is not None
    assert str(rules["rule:evening-cycle-late"].active_from) == "23:00:00"


def test_an_edited_or_deleted_default_is_left_alone():
    rules = {rule.builtin_key: rule for rule in ensure_default_rules()}
    disk = rules["rule:disk-80"]
    disk.threshold = 85
    disk.save()
    rules["rule:memory-90"].delete()

    assert ensure_default_rules() == []
    assert Rule.objects.get(builtin_key="rule:disk-80").threshold == 85
    assert not Rule.objects.filter(name="Memory above 90 %").exists()
