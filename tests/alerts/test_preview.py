"""The rule editor's helpers: validate_rule's field errors and preview_rule's "when would it have fired"."""

from __future__ import annotations

import json
from datetime import time

import pytest
from django.core.exceptions import ValidationError

from alerts.evaluation import preview_rule, validate_rule
from alerts.models import Rule
from monitoring import store

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_metrics")]

T0 = 1_800_000_000  # a minute boundary (2027-01-15 08:00 UTC)
GAUGE = "opscenter_test_gauge"


def rule(**fields) -> Rule:
    """An unsaved rule, as the admin form has it before saving."""
    defaults = {"name": "Disk", "metric": GAUGE, "aggregation": "avg", "window_seconds": 60, "comparator": "gt",
                "threshold": 10.0, "for_seconds": 0, "severity": "high"}
    return Rule(**{**defaults, **fields})


def write(host: str, value_at, start: int, end: int, every: int = 10) -> None:
    """Write a sample every `every` s in [start, end) for one host; `value_at(t)` gives the value."""
    for t in range(start, end, every):
        store.write_samples([(GAUGE, {"host": host}, value_at(t))], at=t)


def two_hours_of_data() -> None:
    # Host a: 5, but 20 from +30 min to +50 min. Host b: 5, but 15 for one minute at +10 min.
    write("a", lambda t: 20.0 if T0 + 1800 <= t < T0 + 3000 else 5.0, T0, T0 + 7200)
    write("b", lambda t: 15.0 if T0 + 600 <= t < T0 + 660 else 5.0, T0, T0 + 7200)


# --- preview ----------------------------------------------------------------------------------------


def test_the_preview_shows_each_groups_values_and_when_it_would_have_fired_honouring_the_for_duration():
    two_hours_of_data()
    result = preview_rule(rule(for_seconds=120), hours=2, now=T0 + 7200)
    assert result["step"] == 60 and result["threshold"] == 10.0
    groups = {g["labels"]["host"]: g for g in result["groups"]}
    assert set(groups) == {"a", "b"}
    # Pending from the first minute above 10 (ending at +31 min), firing 120 s later, until the
    # first minute back at 5 has ended (+51 min).
    assert groups["a"]["firing"] == [{"from": T0 + 1860 + 120, "until": T0 + 3060}]
    assert groups["b"]["firing"] == []  # one minute above: shorter than the for-duration
    assert result["fired_count"] == 1
    assert result["firing"] == [{"labels": {"host": "a"}, "from": T0 + 1980, "until": T0 + 3060}]
    points = dict((t, v) for t, v in groups["a"]["points"])
    assert points[T0 + 1860] == 20.0 and points[T0 + 1800] == 5.0
    assert result["groups"][0]["labels"] == {"host": "a"}  # the ones that would have fired come first
    assert Rule.objects.count() == 0
    json.dumps(result)


def test_without_a_for_duration_a_one_minute_spike_would_have_fired():
    two_hours_of_data()
    result = preview_rule(rule(), hours=2, now=T0 + 7200)
    firing = {f["labels"]["host"]: (f["from"], f["until"]) for f in result["firing"]}
    assert firing == {"a": (T0 + 1860, T0 + 3060), "b": (T0 + 660, T0 + 720)}
    assert result["fired_count"] == 2


def test_keep_firing_for_bridges_a_short_dip_in_the_preview():
    write("a", lambda t: 5.0 if T0 + 1200 <= t < T0 + 1260 else 20.0, T0, T0 + 3600)
    result = preview_rule(rule(keep_firing_for_seconds=300), hours=1, now=T0 + 3600)
    assert result["fired_count"] == 1
    assert result["firing"][0]["until"] is None  # still firing at the end


def test_an_alert_still_firing_at_the_end_has_no_until():
    write("a", lambda t: 20.0, T0, T0 + 3600)
    result = preview_rule(rule(), hours=1, now=T0 + 3600)
    assert [(f["from"], f["until"]) for f in result["firing"]] == [(T0 + 60, None)]


def test_the_preview_reads_the_same_figures_from_rollups_as_from_raw_samples():
    two_hours_of_data()
    before = preview_rule(rule(aggregation="max", group_by=["host"]), hours=2, now=T0 + 7200)
    store.rollup(now=T0 + 7200)
    assert store.watermarks()[60] is not None
    after = preview_rule(rule(aggregation="max", group_by=["host"]), hours=2, now=T0 + 7200)
    assert after == before


def test_a_day_long_preview_steps_by_five_minutes():
    write("a", lambda t: 20.0 if T0 + 3600 <= t < T0 + 7200 else 5.0, T0, T0 + 86400, every=60)
    result = preview_rule(rule(window_seconds=300), hours=24, now=T0 + 86400)
    assert result["step"] == 300
    assert len(result["groups"][0]["points"]) == 288
    assert [(f["from"], f["until"]) for f in result["firing"]] == [(T0 + 3900, T0 + 7500)]


def test_the_preview_of_a_group_by_rule_combines_series_per_group():
    for host, zone, value in (("a", "x", 12.0), ("b", "x", 30.0), ("c", "y", 1.0)):
        store.write_samples([(GAUGE, {"host": host, "zone": zone}, value)], at=T0 + 3500)
    result = preview_rule(rule(aggregation="max", group_by=["zone"]), hours=1, now=T0 + 3600)
    values = {g["labels"]["zone"]: [v for _, v in g["points"] if v is not None] for g in result["groups"]}
    assert values == {"x": [30.0], "y": [1.0]}


def test_the_preview_shows_when_a_no_data_rule_would_have_fired():
    write("a", lambda t: 5.0, T0, T0 + 1800)  # then silence
    result = preview_rule(rule(no_data="alert"), hours=1, now=T0 + 3600)
    assert [(f["labels"], f["from"]) for f in result["firing"]] == [({"nodata": "true"}, T0 + 1860)]


def test_the_preview_of_an_invalid_rule_raises_the_field_errors():
    with pytest.raises(ValidationError) as raised:
        preview_rule(rule(metric="opscenter_nope"), hours=1, now=T0)
    assert "metric" in raised.value.message_dict


# --- validation --------------------------------------------------------------------------------------


def test_a_sound_rule_validates():
    validate_rule(rule(matchers='host=~"web-.*"', group_by=["host"], labels={"team": "ops"},
                       active_from=time(9), active_until=time(17), timezone="Asia/Kolkata",
                       summary_template="{{ labels.host }} at {{ value }}"))
    validate_rule(rule(metric="opscenter_test_runs_total", matchers='status="failed"', aggregation="rate",
                       window_seconds=300, denominator_metric="opscenter_test_runs_total"))


@pytest.mark.parametrize(("fields", "field", "says"), [
    ({"metric": "opscenter_not_registered"}, "metric", "Unknown metric"),
    ({"metric": ""}, "metric", "Choose a metric"),
    ({"metric": "opscenter_test_histogram"}, "metric", "histogram"),
    ({"matchers": 'host="a'}, "matchers", "Cannot read a matcher"),
    ({"matchers": 'host=~"("'}, "matchers", "regular expression"),
    ({"aggregation": "percentile"}, "percentile", "Give the percentile"),
    ({"aggregation": "percentile", "percentile": 150}, "percentile", "0 to 100"),
    ({"aggregation": "median"}, "aggregation", "Choose"),
    ({"window_seconds": 5}, "window_seconds", "At least 10 s"),
    ({"aggregation": "rate", "window_seconds": 10}, "window_seconds", "two samples"),
    ({"denominator_matchers": 'status="ok"'}, "denominator_matchers", "denominator metric"),
    ({"denominator_metric": "opscenter_nope"}, "denominator_metric", "Unknown metric"),
    ({"group_by": "host"}, "group_by", "list of label names"),
    ({"group_by": ["host-name"]}, "group_by", "list of label names"),
    ({"group_by": ["host", "host"]}, "group_by", "once"),
    ({"labels": {"alertname": "x"}}, "labels", "alertname"),
    ({"labels": ["team"]}, "labels", "object"),
    ({"active_days": [7]}, "active_days", "0 (Monday)"),
    ({"active_from": time(9)}, "active_until", "both"),
    ({"active_until": time(9)}, "active_from", "both"),
    ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone"),
    ({"summary_template": "{{ value "}, "summary_template", "does not compile"),
    ({"comparator": "~"}, "comparator", "Choose"),
    ({"threshold": float("nan")}, "threshold", "number"),
])
def test_validation_names_the_field_that_is_wrong(fields, field, says):
    with pytest.raises(ValidationError) as raised:
        validate_rule(rule(**fields))
    errors = raised.value.message_dict
    assert set(errors) == {field}, errors
    assert says in errors[field][0]


def test_validation_reports_every_wrong_field_at_once():
    with pytest.raises(ValidationError) as raised:
        validate_rule(rule(metric="opscenter_nope", matchers="bad", window_seconds=1))
    assert set(raised.value.message_dict) == {"metric", "matchers", "window_seconds"}
