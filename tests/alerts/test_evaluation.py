"""Alert evaluation over simulated time: lifecycle, for-durations, aggregations, groups, no data, flapping."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from alerts import evaluation
from alerts.evaluation import evaluate_rules, prune_resolved, run_cycle
from alerts.models import Alert, AlertEvent, EvaluatorState, Notification, Rule, Silence
from monitoring import store
from tests.alerts.factories import make_alert, make_rule, write_points

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_metrics")]

T0 = 1_800_000_000  # 2027-01-15 08:00:00 UTC, a Friday
GAUGE = "opscenter_test_gauge"
COUNTER = "opscenter_test_counter"
RUNS = "opscenter_test_runs_total"


def gauge(value: float, t: int, name: str = GAUGE, **labels) -> None:
    store.write_samples([(name, labels or {"host": "a"}, value)], at=t)


def dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


def open_alerts(rule=None) -> list[Alert]:
    qs = Alert.objects.filter(status__in=["pending", "firing"])
    return list(qs.filter(rule=rule) if rule else qs)


def kinds(alert: Alert) -> list[str]:
    return list(alert.events.order_by("at", "id").values_list("kind", flat=True))


# --- lifecycle ------------------------------------------------------------------------------------


def test_an_alert_is_pending_then_fires_after_its_for_duration_then_resolves_when_the_condition_clears():
    rule = make_rule(threshold=10, for_seconds=60, group_wait_seconds=30)
    gauge(12, T0)
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.status == "pending" and alert.pending_since == dt(T0) and alert.notify_seq == 0
    gauge(12, T0 + 30)
    run_cycle(now=T0 + 30)
    alert.refresh_from_db()
    assert alert.status == "pending" and alert.value == 12

    gauge(13, T0 + 60)
    run_cycle(now=T0 + 60)
    alert.refresh_from_db()
    assert alert.status == "firing" and alert.fired_at == dt(T0 + 60) and alert.value == 13
    assert (alert.notify_seq, alert.notify_kind) == (1, "firing")
    assert alert.notify_due_at == dt(T0 + 90)  # group wait

    gauge(5, T0 + 75)
    run_cycle(now=T0 + 75)
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_at == dt(T0 + 75) and alert.value == 5
    assert (alert.notify_seq, alert.notify_kind) == (2, "resolved")
    assert kinds(alert) == ["pending", "firing", "resolved"]
    assert open_alerts() == []


def test_a_rule_without_for_duration_fires_at_once_with_one_notification_request():
    rule = make_rule(threshold=10, for_seconds=0)
    gauge(12, T0)
    run_cycle(now=T0)
    run_cycle(now=T0 + 15)  # still true: nothing new
    (alert,) = open_alerts(rule)
    assert alert.status == "firing" and alert.fired_at == dt(T0)
    assert alert.notify_seq == 1
    assert kinds(alert) == ["firing"]
    assert alert.labels == {"alertname": rule.name, "severity": "high", "host": "a"}
    assert alert.fingerprint == evaluation.fingerprint(rule.pk, {"host": "a"})


def test_a_pending_alert_whose_condition_clears_resolves_without_a_notification_request():
    rule = make_rule(threshold=10, for_seconds=300)
    gauge(12, T0)
    run_cycle(now=T0)
    gauge(4, T0 + 10)
    run_cycle(now=T0 + 10)
    alert = Alert.objects.get(rule=rule)
    assert alert.status == "resolved" and alert.fired_at is None
    assert alert.notify_seq == 0
    assert "without a notification" in alert.events.get(kind="resolved").message


def test_keep_firing_for_holds_a_firing_alert_until_the_condition_has_been_clear_that_long():
    rule = make_rule(threshold=10, keep_firing_for_seconds=60)
    gauge(12, T0)
    run_cycle(now=T0)
    gauge(5, T0 + 10)
    run_cycle(now=T0 + 10)
    (alert,) = open_alerts(rule)
    assert alert.status == "firing" and alert.condition_false_since == dt(T0 + 10)

    gauge(12, T0 + 20)  # true again: the clock restarts
    run_cycle(now=T0 + 20)
    alert.refresh_from_db()
    assert alert.condition_false_since is None

    for t in (T0 + 30, T0 + 60, T0 + 80):
        gauge(5, t)
        run_cycle(now=t)
        alert.refresh_from_db()
        assert alert.status == "firing"
    assert alert.condition_false_since == dt(T0 + 30)
    gauge(5, T0 + 90)
    run_cycle(now=T0 + 90)
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_at == dt(T0 + 90)
    assert alert.notify_seq == 2


# --- no data ----------------------------------------------------------------------------------------


def test_no_data_policy_ok_resolves_an_alert_whose_series_stopped_reporting():
    rule = make_rule(threshold=10, window_seconds=60, no_data="ok")
    gauge(12, T0)
    run_cycle(now=T0)
    run_cycle(now=T0 + 120)  # no sample in the last 60 s
    alert = Alert.objects.get(rule=rule)
    assert alert.status == "resolved"
    assert "No data" in alert.events.get(kind="resolved").message


def test_no_data_policy_keep_leaves_open_alerts_as_they_are():
    rule = make_rule(threshold=10, window_seconds=60, no_data="keep")
    gauge(12, T0)
    run_cycle(now=T0)
    run_cycle(now=T0 + 600)
    (alert,) = open_alerts(rule)
    assert alert.status == "firing" and alert.notify_seq == 1


def test_no_data_policy_alert_fires_a_nodata_alert_that_resolves_when_data_returns():
    rule = make_rule(threshold=10, window_seconds=60, no_data="alert", summary_template="{{ value }}")
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.status == "firing" and alert.labels["nodata"] == "true" and alert.value is None
    assert "no data" in alert.summary
    assert kinds(alert) == ["no_data", "firing"]
    run_cycle(now=T0 + 15)
    assert open_alerts(rule) == [alert]

    gauge(3, T0 + 20)  # data again, below the threshold
    run_cycle(now=T0 + 20)
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.notify_seq == 2
    assert open_alerts(rule) == []


def test_no_data_policy_alert_keeps_real_alerts_open_while_the_rule_has_no_data():
    rule = make_rule(threshold=10, window_seconds=60, no_data="alert")
    gauge(12, T0)
    run_cycle(now=T0)
    run_cycle(now=T0 + 300)
    alerts = {a.labels.get("nodata", "host"): a for a in open_alerts(rule)}
    assert set(alerts) == {"host", "true"}
    assert alerts["host"].status == "firing"


# --- groups and ratios ----------------------------------------------------------------------------


def test_without_group_by_there_is_one_alert_per_series():
    rule = make_rule(threshold=10)
    for host, value in (("a", 12), ("b", 20), ("c", 3)):
        gauge(value, T0, host=host, disk="/")
    run_cycle(now=T0)
    got = {a.labels["host"]: a.value for a in open_alerts(rule)}
    assert got == {"a": 12, "b": 20}
    assert all(a.labels["disk"] == "/" for a in open_alerts(rule))


def test_group_by_opens_one_alert_per_group_with_the_groups_combined_value():
    rule = make_rule(threshold=10, aggregation="max", group_by=["host"], labels={"team": "ops"})
    for host, disk, value in (("a", "/", 12), ("a", "/var", 30), ("b", "/", 11), ("b", "/var", 2), ("c", "/", 1)):
        gauge(value, T0, host=host, disk=disk)
    run_cycle(now=T0)
    alerts = {a.labels["host"]: a for a in open_alerts(rule)}
    assert {h: a.value for h, a in alerts.items()} == {"a": 30, "b": 11}
    assert alerts["a"].labels == {"alertname": rule.name, "severity": "high", "team": "ops", "host": "a"}
    assert alerts["a"].fingerprint == evaluation.fingerprint(rule.pk, {"host": "a"})


def test_a_ratio_rule_divides_numerator_by_denominator_per_group_and_skips_a_zero_denominator():
    rule = make_rule(metric=RUNS, matchers='status="failed"', aggregation="increase", window_seconds=120,
                     denominator_metric=RUNS, group_by=["agent"], threshold=0.05)
    series = {
        ("a", "failed"): [0, 0, 1, 1], ("a", "ok"): [0, 4, 8, 10],  # 1 of 11 failed
        ("b", "failed"): [2, 2, 2, 2], ("b", "ok"): [0, 10, 15, 20],  # none failed in the window
        ("c", "ok"): [5, 5, 5, 5],  # nothing ran
        ("d", "ok"): [0, 50, 100, 100],  # no failed series at all: a rate of 0
    }
    for (agent, status), values in series.items():
        write_points(RUNS, {"agent": agent, "status": status}, values, start=T0 - 30)
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.labels["agent"] == "a"
    assert alert.value == pytest.approx(1 / 11)


def test_a_ratio_rule_without_group_by_is_one_alert_for_the_total():
    rule = make_rule(metric=RUNS, matchers='status="failed"', aggregation="increase", window_seconds=120,
                     denominator_metric=RUNS, threshold=0.05)
    write_points(RUNS, {"agent": "a", "status": "failed"}, [0, 3], start=T0 - 10)
    write_points(RUNS, {"agent": "a", "status": "ok"}, [0, 7], start=T0 - 10)
    write_points(RUNS, {"agent": "b", "status": "ok"}, [0, 10], start=T0 - 10)
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.value == pytest.approx(3 / 20)
    assert alert.labels == {"alertname": rule.name, "severity": "high"}


# --- aggregations -----------------------------------------------------------------------------------

VALUES = [1.0, 5.0, 3.0, 9.0, 2.0]  # at T0-40 … T0, all inside a 60 s window


@pytest.mark.parametrize(("aggregation", "percentile", "expected"), [
    ("last", None, 2.0), ("avg", None, 4.0), ("min", None, 1.0), ("max", None, 9.0), ("sum", None, 20.0),
    ("count", None, 5.0), ("percentile", 50, 3.0), ("percentile", 90, 7.4), ("percentile", 100, 9.0),
])
def test_each_gauge_aggregation_computes_its_value_over_the_window(aggregation, percentile, expected):
    rule = make_rule(aggregation=aggregation, percentile=percentile, threshold=0, comparator="gt")
    write_points(GAUGE, {"host": "a"}, VALUES, start=T0 - 40)
    write_points(GAUGE, {"host": "a"}, [100.0], start=T0 - 60)  # just outside the window
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.value == pytest.approx(expected)


@pytest.mark.parametrize(("aggregation", "expected"), [("increase", 25.0), ("rate", 25.0 / 40)])
def test_rate_and_increase_count_a_counter_reset_from_zero(aggregation, expected):
    rule = make_rule(metric=COUNTER, aggregation=aggregation, threshold=0)
    write_points(COUNTER, {"host": "a"}, [10, 15, 3, 8, 20], start=T0 - 40)  # reset after 15
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.value == pytest.approx(expected)


def test_rules_over_several_windows_of_one_metric_each_see_their_own_window():
    rules = {w: make_rule(aggregation="avg", window_seconds=w, threshold=0) for w in (60, 300, 600)}
    maxes = {w: make_rule(aggregation="max", window_seconds=w, threshold=0) for w in (60, 300)}
    counters = {w: make_rule(metric=COUNTER, aggregation="increase", window_seconds=w, threshold=0) for w in (60, 300)}
    rate = make_rule(metric=COUNTER, aggregation="rate", window_seconds=60, threshold=0)
    counter_avg = make_rule(metric=COUNTER, aggregation="avg", window_seconds=60, threshold=0)
    write_points(GAUGE, {"host": "a"}, [float(k) for k in range(60)], start=T0 - 590)  # 0 … 59, every 10 s
    write_points(COUNTER, {"host": "a"}, [float(k * 2) for k in range(60)], start=T0 - 590)
    run_cycle(now=T0)
    # A window of w seconds holds the last w / 10 samples.
    assert open_alerts(rules[60])[0].value == pytest.approx(sum(range(54, 60)) / 6)
    assert open_alerts(rules[300])[0].value == pytest.approx(sum(range(30, 60)) / 30)
    assert open_alerts(rules[600])[0].value == pytest.approx(sum(range(60)) / 60)
    assert open_alerts(maxes[60])[0].value == 59 and open_alerts(maxes[300])[0].value == 59
    assert open_alerts(counters[60])[0].value == pytest.approx(10.0)  # 6 samples: 5 steps of 2
    assert open_alerts(counters[300])[0].value == pytest.approx(58.0)
    assert open_alerts(rate)[0].value == pytest.approx(10.0 / 50)
    assert open_alerts(counter_avg)[0].value == pytest.approx(sum(range(108, 119, 2)) / 6)


def test_rate_needs_two_samples_in_the_window():
    rule = make_rule(metric=COUNTER, aggregation="rate", threshold=-1, no_data="alert")
    write_points(COUNTER, {"host": "a"}, [10], start=T0)
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.labels.get("nodata") == "true"


def test_groups_combine_avg_weighted_by_samples_percentiles_over_all_samples_and_increases_summed():
    avg = make_rule(aggregation="avg", group_by=["region"], threshold=0)
    p50 = make_rule(aggregation="percentile", percentile=50, group_by=["region"], threshold=0)
    inc = make_rule(metric=COUNTER, aggregation="increase", group_by=["region"], threshold=0)
    write_points(GAUGE, {"host": "a", "region": "x"}, [1, 1, 1, 1], start=T0 - 30)
    write_points(GAUGE, {"host": "b", "region": "x"}, [10], start=T0)
    write_points(COUNTER, {"host": "a", "region": "x"}, [0, 5], start=T0 - 10)
    write_points(COUNTER, {"host": "b", "region": "x"}, [100, 107], start=T0 - 10)
    run_cycle(now=T0)
    assert open_alerts(avg)[0].value == pytest.approx(14 / 5)
    assert open_alerts(p50)[0].value == pytest.approx(1.0)
    assert open_alerts(inc)[0].value == pytest.approx(12.0)
    assert open_alerts(avg)[0].labels["region"] == "x" and "host" not in open_alerts(avg)[0].labels


def test_matchers_pick_the_series_a_rule_reads():
    rule = make_rule(matchers='host=~"web-.*", disk!="/boot"', threshold=10)
    for host, disk in (("web-1", "/"), ("web-2", "/boot"), ("db-1", "/")):
        gauge(50, T0, host=host, disk=disk)
    run_cycle(now=T0)
    assert [(a.labels["host"], a.labels["disk"]) for a in open_alerts(rule)] == [("web-1", "/")]


@pytest.mark.parametrize(("comparator", "value", "fires"), [
    ("gt", 10, False), ("gte", 10, True), ("lt", 9.5, True), ("lte", 10.5, False), ("eq", 10, True),
    ("ne", 10, False),
])
def test_comparators(comparator, value, fires):
    rule = make_rule(comparator=comparator, threshold=10)
    gauge(value, T0)
    run_cycle(now=T0)
    assert bool(open_alerts(rule)) is fires


def test_a_window_beyond_the_raw_retention_reads_the_rollups(settings):
    settings.METRICS_RAW_RETENTION_HOURS = 1
    rule = make_rule(aggregation="avg", window_seconds=7200, threshold=0)
    values = [float(k % 7) for k in range(1, 121)]
    write_points(GAUGE, {"host": "a"}, [(T0 + k * 60, values[k - 1]) for k in range(1, 121)])
    store.rollup(now=T0 + 7200)
    store.prune(now=T0 + 7200)  # raw samples older than an hour are gone: only the rollups know them
    run_cycle(now=T0 + 7200)
    (alert,) = open_alerts(rule)
    assert alert.value == pytest.approx(sum(values) / len(values))


# --- active hours, flapping, templates ----------------------------------------------------------------


def test_outside_active_hours_a_rule_is_not_evaluated_and_its_open_alerts_resolve():
    rule = make_rule(threshold=10, active_from=time(9), active_until=time(17), timezone="UTC")
    gauge(12, T0)  # 08:00
    run_cycle(now=T0)
    assert open_alerts(rule) == []
    gauge(12, T0 + 3600)  # 09:00
    run_cycle(now=T0 + 3600)
    (alert,) = open_alerts(rule)
    gauge(12, T0 + 10 * 3600)  # 18:00, still breaching
    run_cycle(now=T0 + 10 * 3600)
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert "active hours" in alert.events.get(kind="resolved").message
    assert open_alerts(rule) == []


def test_active_days_limit_a_rule_to_those_weekdays():
    rule = make_rule(threshold=10, active_days=[5, 6])  # weekends; T0 is a Friday
    gauge(12, T0)
    run_cycle(now=T0)
    assert open_alerts(rule) == []
    gauge(12, T0 + 86400)
    run_cycle(now=T0 + 86400)
    assert len(open_alerts(rule)) == 1


def test_an_alert_that_keeps_flapping_is_marked_and_stays_firing_until_quiet_for_the_flap_window(settings):
    settings.ALERTS_FLAP_THRESHOLD = 2
    settings.ALERTS_FLAP_WINDOW_SECONDS = 600
    rule = make_rule(threshold=10)
    t = T0
    for value in (12, 5, 12, 5):
        gauge(value, t)
        run_cycle(now=t)
        t += 15
    assert Alert.objects.filter(rule=rule, status="resolved").count() == 2
    gauge(12, t)
    run_cycle(now=t)
    (alert,) = open_alerts(rule)
    assert alert.flapping and alert.flap_count == 2
    assert "flapping" in kinds(alert)
    cleared = t + 15
    for t in range(cleared, cleared + 600, 60):
        gauge(5, t)
        run_cycle(now=t)
        alert.refresh_from_db()
        assert alert.status == "firing", t - cleared
    assert alert.notify_seq == 1  # one message for the whole storm
    gauge(5, cleared + 600)
    run_cycle(now=cleared + 600)
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_flaps_older_than_the_window_do_not_count(settings):
    settings.ALERTS_FLAP_THRESHOLD = 2
    settings.ALERTS_FLAP_WINDOW_SECONDS = 600
    rule = make_rule(threshold=10)
    for t, value in ((T0, 12), (T0 + 15, 5), (T0 + 30, 12), (T0 + 45, 5), (T0 + 1000, 12)):
        gauge(value, t)
        run_cycle(now=t)
    (alert,) = open_alerts(rule)
    assert not alert.flapping


def test_the_summary_template_is_rendered_with_value_threshold_and_labels():
    rule = make_rule(threshold=10, summary_template="Disk on {{ labels.host }} at {{ value|round(1) }} % "
                                                    "(limit {{ threshold }}, {{ rule }})")
    gauge(12.345, T0)
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.summary == f"Disk on a at 12.3 % (limit 10.0, {rule.name})"


def test_without_a_template_the_summary_says_value_comparison_and_labels():
    rule = make_rule(name="Disk almost full", threshold=90, comparator="gte")
    gauge(91.25, T0, host="web-1")
    run_cycle(now=T0)
    assert open_alerts(rule)[0].summary == "Disk almost full: 91.25 ≥ 90 (host=web-1)"


def test_a_broken_template_falls_back_to_the_default_and_is_noted_on_the_rule():
    rule = make_rule(threshold=10, summary_template="{{ value / 0 }}")
    gauge(12, T0)
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.summary.startswith(f"{rule.name}: 12 > 10")
    rule.refresh_from_db()
    assert "summary template" in rule.last_error and "division by zero" in rule.last_error


def test_the_template_sandbox_refuses_to_reach_into_python():
    rule = make_rule(threshold=10, summary_template="{{ labels.__class__.__init__.__globals__ }}x")
    gauge(12, T0)
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.summary == f"{rule.name}: 12 > 10 (host=a)"
    rule.refresh_from_db()
    assert "unsafe" in rule.last_error


# --- errors, silences, writes -----------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["{{ 'x' * 100000000 }}", "{{ 2 ** 100000000 }}",
                                      "{% for i in range(100000) %}{{ i }}{% endfor %}"])
def test_a_template_cannot_stall_the_evaluator_or_eat_its_memory(template):
    rule = make_rule(threshold=10, summary_template=template)
    gauge(12, T0)
    run_cycle(now=T0)
    (alert,) = open_alerts(rule)
    assert alert.summary == f"{rule.name}: 12 > 10 (host=a)"
    rule.refresh_from_db()
    assert "too" in rule.last_error


def test_a_broken_rule_records_its_error_and_does_not_stop_the_others(monkeypatch):
    broken = make_rule(metric="opscenter_not_registered", threshold=10)
    bad_regex = make_rule(matchers='host=~"("', threshold=10)
    crashing = make_rule(metric="opscenter_test_other", threshold=10)
    good = make_rule(threshold=10)
    gauge(12, T0)
    gauge(12, T0, name="opscenter_test_other")
    real = evaluation._values_for

    def explode(data, series, metric, how, pct):
        if metric == "opscenter_test_other":
            raise RuntimeError("boom")
        return real(data, series, metric, how, pct)

    monkeypatch.setattr(evaluation, "_values_for", explode)
    report = run_cycle(now=T0)
    assert report["errors"] == 3
    assert len(open_alerts(good)) == 1
    for rule, text in ((broken, "unknown metric"), (bad_regex, "regular expression"), (crashing, "boom")):
        rule.refresh_from_db()
        assert text in rule.last_error
        assert rule.last_evaluated_at is None
    good.refresh_from_db()
    assert good.last_error == "" and good.last_evaluated_at == dt(T0)

    Rule.objects.filter(pk=broken.pk).update(metric=GAUGE)
    run_cycle(now=T0 + 5)
    broken.refresh_from_db()
    assert broken.last_error == "" and len(open_alerts(broken)) == 1


def test_an_alert_opening_under_a_silence_points_at_it():
    silence = Silence.objects.create(matchers='host="a"', starts_at=timezone.now() - timedelta(hours=1),
                                     ends_at=timezone.now() + timedelta(hours=1), comment="disk swap")
    rule = make_rule(threshold=10)
    gauge(12, T0, host="a")
    gauge(12, T0, host="b")
    evaluate_rules(now=T0)
    alerts = {a.labels["host"]: a for a in open_alerts(rule)}
    assert alerts["a"].silenced_by == silence and alerts["b"].silenced_by is None
    assert "silenced" in kinds(alerts["a"])


def test_every_change_is_announced_on_the_alerts_topic_with_the_counts(monkeypatch):
    sent = []
    from alerts import services

    monkeypatch.setattr(services, "publish", lambda topic, kind, payload: sent.append((topic, kind, payload)))
    rule = make_rule(threshold=10, for_seconds=30)
    gauge(12, T0, host="a")
    gauge(12, T0, host="b")
    run_cycle(now=T0)
    assert [(t, k, p["alert"]["status"]) for t, k, p in sent] == [("alerts", "alert.changed", "pending")] * 2
    assert sent[-1][2]["counts"] == {"firing": 0, "pending": 2, "unacknowledged": 0}
    sent.clear()
    gauge(12, T0 + 15, host="a")
    gauge(12, T0 + 15, host="b")
    run_cycle(now=T0 + 15)
    assert sent == []  # nothing changed: nothing announced
    gauge(12, T0 + 30, host="a")
    gauge(3, T0 + 30, host="b")
    run_cycle(now=T0 + 30)
    assert sorted((p["alert"]["labels"]["host"], p["alert"]["status"]) for _, _, p in sent) == [
        ("a", "firing"), ("b", "resolved")]
    assert sent[0][2]["counts"] == {"firing": 1, "pending": 0, "unacknowledged": 1}
    assert sent[0][2]["alert"]["rule_id"] == rule.pk


def test_unchanged_open_alerts_get_value_and_evaluation_time_in_one_update():
    rule = make_rule(threshold=10)
    for host in "abcd":
        gauge(12, T0, host=host)
    run_cycle(now=T0)
    for i, host in enumerate("abcd"):
        gauge(20 + i, T0 + 15, host=host)
    with CaptureQueriesContext(connection) as queries:
        evaluate_rules(now=T0 + 15)
    alert_writes = [q["sql"] for q in queries.captured_queries
                    if q["sql"].startswith("UPDATE") and "alerts_alert" in q["sql"].split("SET")[0]]
    assert len(alert_writes) == 1
    assert sorted(a.value for a in open_alerts(rule)) == [20, 21, 22, 23]
    assert {a.last_evaluated_at for a in open_alerts(rule)} == {dt(T0 + 15)}
    assert AlertEvent.objects.count() == 4  # no new timeline lines


@pytest.mark.parametrize("group_by", [[], ["host"]])
def test_an_alert_opened_by_another_process_is_found_and_resolved_by_this_one(group_by):
    rule = make_rule(threshold=10, group_by=group_by)
    gauge(12, T0, host="a", disk="/")
    gauge(3, T0, host="b", disk="/")
    run_cycle(now=T0)
    evaluation.forget_cached_series()  # as if another worker had opened it
    gauge(4, T0 + 15, host="a", disk="/")
    gauge(3, T0 + 15, host="b", disk="/")
    run_cycle(now=T0 + 15)
    assert open_alerts(rule) == []
    assert Alert.objects.get(rule=rule).value == 4


def test_an_alert_whose_series_the_edited_matchers_no_longer_select_resolves():
    rule = make_rule(threshold=10)
    gauge(12, T0, host="a")
    gauge(12, T0, host="b")
    run_cycle(now=T0)
    Rule.objects.filter(pk=rule.pk).update(matchers='host="b"')
    gauge(12, T0 + 15, host="a")
    gauge(12, T0 + 15, host="b")
    run_cycle(now=T0 + 15)
    assert [a.labels["host"] for a in open_alerts(rule)] == ["b"]
    assert Alert.objects.get(rule=rule, labels__host="a").status == "resolved"


def test_the_alerts_of_a_disabled_rule_resolve():
    rule = make_rule(threshold=10)
    gauge(12, T0)
    run_cycle(now=T0)
    Rule.objects.filter(pk=rule.pk).update(enabled=False)
    run_cycle(now=T0 + 15)
    alert = Alert.objects.get(rule=rule)
    assert alert.status == "resolved" and "disabled" in alert.events.get(kind="resolved").message


def test_an_alert_resolved_by_hand_is_opened_again_while_the_condition_holds():
    rule = make_rule(threshold=10)
    gauge(12, T0)
    run_cycle(now=T0)
    Alert.objects.filter(rule=rule).update(status="resolved", resolved_at=dt(T0 + 1))
    gauge(12, T0 + 15)
    run_cycle(now=T0 + 15)
    assert Alert.objects.filter(rule=rule).count() == 2 and len(open_alerts(rule)) == 1


# --- the cycle: lease, overruns, skipped ticks -------------------------------------------------------------


def test_a_cycle_records_its_timing_and_releases_the_lease():
    make_rule(threshold=10)
    make_rule(threshold=10, enabled=False)
    gauge(12, T0)
    report = run_cycle(now=T0)
    assert report["evaluated"] == 1 and not report["skipped"]
    state = EvaluatorState.objects.get(pk=1)
    assert state.cycles == 1 and state.rules_evaluated == 1 and state.lease_until is None
    assert state.last_started_at == dt(T0) and state.last_finished_at >= dt(T0)
    assert state.overruns == 0 and state.skipped == 0


def test_a_tick_that_finds_the_lease_held_is_counted_and_logged_as_skipped(caplog):
    EvaluatorState.objects.create(pk=1, lease_until=dt(T0 + 30))
    make_rule(threshold=10)
    gauge(12, T0)
    with caplog.at_level(logging.WARNING, logger="alerts.evaluation"):
        assert run_cycle(now=T0) == {"skipped": True}
    assert "previous evaluation is still running" in caplog.text
    state = EvaluatorState.objects.get(pk=1)
    assert state.skipped == 1 and state.cycles == 0
    assert open_alerts() == []
    run_cycle(now=T0 + 31)  # the lease expired: a crashed cycle does not block forever
    assert EvaluatorState.objects.get(pk=1).cycles == 1


def test_a_cycle_longer_than_the_interval_is_counted_and_logged_as_an_overrun(settings, caplog, monkeypatch):
    settings.ALERTS_EVALUATION_SECONDS = 15
    clock = iter([100.0, 116.5])  # the cycle's start and end
    monkeypatch.setattr(evaluation, "_clock", lambda: next(clock))
    with caplog.at_level(logging.WARNING, logger="alerts.evaluation"):
        report = run_cycle(now=T0)
    assert report["overran"] and report["duration_ms"] == 16500
    assert "overran its interval" in caplog.text
    state = EvaluatorState.objects.get(pk=1)
    assert state.overruns == 1 and state.last_overrun_at is not None and state.last_duration_ms == 16500


def test_a_failing_cycle_stores_its_error_and_releases_the_lease(monkeypatch):
    def fail(now):
        raise RuntimeError("database went away")

    monkeypatch.setattr(evaluation, "evaluate_rules", fail)
    with pytest.raises(RuntimeError):
        run_cycle(now=T0)
    state = EvaluatorState.objects.get(pk=1)
    assert "database went away" in state.last_error and state.lease_until is None and state.cycles == 1


# --- retention ----------------------------------------------------------------------------------------------


def test_prune_deletes_old_resolved_alerts_with_their_timeline_and_old_sent_notifications(settings):
    settings.ALERTS_RESOLVED_RETENTION_DAYS = 30
    now = timezone.now()
    old = make_alert(status="resolved", resolved_at=now - timedelta(days=31))
    AlertEvent.objects.create(alert=old, kind="resolved")
    recent = make_alert(status="resolved", resolved_at=now - timedelta(days=29))
    still_open = make_alert(status="firing", pending_since=now - timedelta(days=400))
    sent_old = Notification.objects.create(channel_name="c", dedupe_key="a", kind="firing", title="t", body="b",
                                           status="sent", created_at=now - timedelta(days=31))
    pending_old = Notification.objects.create(channel_name="c", dedupe_key="b", kind="firing", title="t", body="b",
                                              status="pending", created_at=now - timedelta(days=31))
    sent_old.alerts.add(old)
    assert prune_resolved() == {"alerts": 1, "notifications": 1}
    assert set(Alert.objects.values_list("pk", flat=True)) == {recent.pk, still_open.pk}
    assert not AlertEvent.objects.filter(alert_id=old.pk).exists()
    assert list(Notification.objects.values_list("pk", flat=True)) == [pending_old.pk]
