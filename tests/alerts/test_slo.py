"""SLO arithmetic per indicator over data built in code, error budgets and burn rates over
simulated time, the day cache, recording to the metric store, burn-rate rules, the defaults,
and the monthly report's boundaries in the configured time zone."""

from __future__ import annotations

import csv
import io
import time as clock
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache

from agents.engine.services import default_cycle_date, guardian_user
from alerts import slo as slos
from alerts.evaluation import validate_rule
from alerts.models import SLO, Alert, BuiltinDefault, Rule
from monitoring import registry, store
from monitoring.health import services as health
from monitoring.health.models import HealthCheck
from monitoring.health.probes import Outcome
from opscenter.models import AuditEntry
from tests.factories import make_advisor, make_content, make_user

from .factories import make_alert, make_deliveries, make_slo

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
IST = ZoneInfo("Asia/Kolkata")


@pytest.fixture(autouse=True)
def _forget_cached_series():
    """The metric store caches series ids per process; each test's database starts without them."""
    store._series_ids.clear()
    yield
    store._series_ids.clear()


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def events(slo: SLO, start: datetime, end: datetime, now: datetime = NOW) -> slos.Events:
    return slos.count_events(slos.bind(slo), start, end, now=now, use_cache=False)


# --- delivery success ------------------------------------------------------------------------------


def test_delivery_success_counts_deliveries_that_finished_in_the_range():
    advisor = make_advisor()
    make_deliveries(2, status="sent", at=NOW - minutes(30), advisor=advisor)
    make_deliveries(1, status="delivered", at=NOW - minutes(20), advisor=advisor)
    make_deliveries(1, status="read", at=NOW - minutes(60), advisor=advisor)  # the start is inside
    make_deliveries(1, status="failed", at=NOW - minutes(10), advisor=advisor)
    make_deliveries(3, status="queued", at=NOW - minutes(10), advisor=advisor)  # not finished
    make_deliveries(1, status="sending", at=NOW - minutes(10), advisor=advisor)
    make_deliveries(1, status="sent", at=NOW - minutes(61), advisor=advisor)  # before the range
    make_deliveries(1, status="failed", at=NOW, advisor=advisor)  # the end is outside
    slo = make_slo()

    got = events(slo, NOW - minutes(60), NOW, now=NOW + minutes(5))

    assert (got.good, got.total) == (4, 5)
    assert got.ratio == pytest.approx(0.8)


def test_delivery_success_can_follow_one_channel():
    advisor = make_advisor()
    make_deliveries(3, status="sent", at=NOW - minutes(5), advisor=advisor, channel="outbox")
    make_deliveries(2, status="failed", at=NOW - minutes(5), advisor=advisor, channel="whatsapp")
    every = make_slo()
    whatsapp = make_slo(params={"channel": "whatsapp"})

    assert events(every, NOW - minutes(10), NOW) == slos.Events(3, 5)
    assert events(whatsapp, NOW - minutes(10), NOW) == slos.Events(0, 2)


def test_days_are_split_on_local_midnight_and_add_up_to_the_whole_range(settings):
    settings.TIME_ZONE = "Asia/Kolkata"
    advisor = make_advisor()
    for day in range(5):
        make_deliveries(day + 1, status="sent", at=NOW - timedelta(days=day, hours=3), advisor=advisor)
        make_deliveries(1, status="failed", at=NOW - timedelta(days=day, hours=7), advisor=advisor)
    slo = make_slo()
    start = NOW - timedelta(days=4, hours=10)

    split = slos.count_events(slos.bind(slo), start, NOW, now=NOW)  # closed days through the cache
    again = slos.count_events(slos.bind(slo), start, NOW, now=NOW)
    direct = slos.bind(slo).count(start, NOW)

    assert split == again == direct == slos.Events(15, 20)


def test_a_closed_day_is_counted_once_then_read_from_the_cache():
    advisor = make_advisor()
    make_deliveries(4, status="sent", at=NOW - timedelta(days=3), advisor=advisor)
    slo = make_slo()
    bound = slos.bind(slo)
    first = slos.count_events(bound, NOW - timedelta(days=7), NOW, now=NOW)

    # A person retries an old delivery: the closed day's cached figure stands until it expires.
    make_deliveries(1, status="failed", at=NOW - timedelta(days=3), advisor=advisor)
    cached = slos.count_events(bound, NOW - timedelta(days=7), NOW, now=NOW)
    fresh = slos.count_events(bound, NOW - timedelta(days=7), NOW, now=NOW, use_cache=False)
    cache.clear()
    recounted = slos.count_events(bound, NOW - timedelta(days=7), NOW, now=NOW)

    assert first == cached == slos.Events(4, 4)
    assert fresh == recounted == slos.Events(4, 5)


def test_today_is_never_cached_so_new_events_count_at_once():
    slo = make_slo()
    bound = slos.bind(slo)
    assert slos.count_events(bound, NOW - timedelta(days=2), NOW, now=NOW) == slos.Events()

    make_deliveries(2, status="sent", at=NOW - minutes(1))

    assert slos.count_events(bound, NOW - timedelta(days=2), NOW, now=NOW) == slos.Events(2, 2)


# --- health uptime -------------------------------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def check_with_history() -> HealthCheck:
    """Created ten days before T0: up, down for a day three days before T0, then up again."""
    check = HealthCheck(name="Inbound webhook service", kind="http", url="http://127.0.0.1:9/", interval_seconds=60,
                        timeout_seconds=2.0, is_webhook_service=True)
    check.full_clean()
    check.save()
    HealthCheck.objects.filter(pk=check.pk).update(created_at=T0 - timedelta(days=10),
                                                   state_since=T0 - timedelta(days=10))
    for days, ok in ((-10, True), (-3, False), (-2, True)):
        health.record_outcomes([Outcome(check.pk, T0 + timedelta(days=days), ok, 5.0, "HTTP 200" if ok else "HTTP 500")])
    check.refresh_from_db()
    return check


def test_health_uptime_is_seconds_up_over_seconds_known_from_the_flips():
    check = check_with_history()
    slo = make_slo(indicator="health_uptime", params={"check": check.name}, objective=99.9)
    day = 86400

    week = events(slo, T0 - timedelta(days=7), T0, now=T0)
    around_outage = events(slo, T0 - timedelta(days=3, hours=12), T0 - timedelta(days=2), now=T0)
    before_creation = events(slo, T0 - timedelta(days=30), T0, now=T0)

    assert (week.good, week.total) == (6 * day, 7 * day)
    assert (around_outage.good, around_outage.total) == (12 * 3600, 36 * 3600)
    assert before_creation.total == 10 * day  # time before the check existed counts neither way


def test_health_uptime_agrees_with_the_health_pages_uptime():
    check = check_with_history()
    slo = make_slo(indicator="health_uptime", params={"check": check.name}, objective=99.9)
    pages = health.uptimes([check], now=T0)[check.pk]

    for name, span in (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30))):
        assert events(slo, T0 - span, T0, now=T0).ratio == pytest.approx(pages[name])


def test_an_slo_on_a_deleted_check_says_so_instead_of_failing():
    check = check_with_history()
    slo = make_slo(indicator="health_uptime", params={"check": check.name}, objective=99.9)
    check.delete()

    figures = slos.slo_status(slo, T0)

    assert figures["status"] == "no_data"
    assert "no health check named" in figures["error"]


# --- decided before 08:00 ------------------------------------------------------------------------------

CYCLE = date(2026, 11, 20)


def ist(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=IST)


def item(status: str, *, reviewed: datetime | None, submitted: datetime | None = None, cycle: date = CYCLE, **fields):
    submitted = submitted if submitted is not None else ist(cycle - timedelta(days=1), 21, 0)
    return make_content(status=status, cycle_date=cycle, submitted_at=submitted, reviewed_at=reviewed, **fields)


def test_the_deadline_is_the_morning_of_the_cycle_date_the_evening_run_planned(settings):
    settings.ENGINE_TIME_ZONE = "Asia/Kolkata"
    evening_run = ist(date(2026, 11, 19), 20, 30)

    planned = default_cycle_date(evening_run)
    deadline = slos.DecidedBefore({"time": "08:00"}).deadline(planned)

    assert planned == date(2026, 11, 20)
    assert deadline == ist(date(2026, 11, 20), 8, 0)
    assert deadline - evening_run == timedelta(hours=11, minutes=30)


def test_decided_before_counts_items_decided_by_the_deadline_once_it_passed(settings):
    settings.ENGINE_TIME_ZONE = "Asia/Kolkata"
    guardian = guardian_user()
    eve = CYCLE - timedelta(days=1)
    item("approved", reviewed=ist(eve, 23, 0))  # good
    item("delivered", reviewed=ist(CYCLE, 7, 59))  # approved, since delivered: good
    item("rejected", reviewed=ist(CYCLE, 6, 0))  # a decision too: good
    item("approved", reviewed=ist(eve, 23, 0), reviewer=guardian)  # the approval guardian: good
    item("approved", reviewed=ist(CYCLE, 8, 1))  # late
    item("pending_review", reviewed=None)  # never decided: late
    make_content(status="draft", cycle_date=CYCLE, submitted_at=None)  # never submitted: not counted
    sent_back = item("needs_revision", reviewed=ist(eve, 22, 0))
    item("approved", reviewed=ist(CYCLE, 7, 0), revision_of=sent_back)  # the revision counts, not the original
    item("needs_revision", reviewed=ist(eve, 22, 0))  # sent back, no revision yet: not decided
    item("approved", reviewed=ist(CYCLE, 7, 0), cycle=CYCLE + timedelta(days=1))  # tomorrow's deadline
    slo = make_slo(indicator="decided_before", params={"time": "08:00"}, objective=95)

    got = events(slo, ist(CYCLE, 0, 0), ist(CYCLE, 12, 0), now=ist(CYCLE, 12, 0))
    before_deadline = events(slo, ist(CYCLE, 0, 0), ist(CYCLE, 7, 59), now=ist(CYCLE, 12, 0))

    assert (got.good, got.total) == (5, 8)
    assert before_deadline.total == 0  # outcomes are known only once the deadline passed


def test_decided_before_follows_its_own_time_and_time_zone():
    item("approved", reviewed=datetime(2026, 11, 20, 8, 30, tzinfo=UTC))
    nine_utc = make_slo(indicator="decided_before", params={"time": "09:00", "timezone": "UTC"}, objective=95)
    eight_ist = make_slo(indicator="decided_before", params={"time": "08:00", "timezone": "Asia/Kolkata"},
                         objective=95)
    day = (datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    now = datetime(2026, 11, 22, tzinfo=UTC)

    assert events(nine_utc, *day, now=now) == slos.Events(1, 1)
    assert events(eight_ist, *day, now=now) == slos.Events(0, 1)  # 08:30 UTC is 14:00 in Kolkata


# --- metric ratio --------------------------------------------------------------------------------------


@pytest.fixture
def counters():
    registry.register_metric("opscenter_test_slo_good_total", "Good requests.", read=lambda: [],
                             kind=registry.Kind.COUNTER, labels=("route",))
    registry.register_metric("opscenter_test_slo_requests_total", "Requests.", read=lambda: [],
                             kind=registry.Kind.COUNTER, labels=("route",))
    yield
    for name in ("opscenter_test_slo_good_total", "opscenter_test_slo_requests_total"):
        registry._metrics.pop(name, None)


def test_metric_ratio_is_the_increase_of_two_counters_over_the_range(counters):
    now = int(clock.time()) // 60 * 60
    for offset, good, total in ((-600, 100, 100), (-300, 190, 200), (0, 280, 300)):
        store.write_samples([("opscenter_test_slo_good_total", {"route": "a"}, good),
                             ("opscenter_test_slo_requests_total", {"route": "a"}, total),
                             ("opscenter_test_slo_requests_total", {"route": "b"}, total * 10)], at=now + offset)
    slo = make_slo(indicator="metric_ratio", objective=95, params={
        "good_metric": "opscenter_test_slo_good_total", "total_metric": "opscenter_test_slo_requests_total",
        "total_matchers": 'route="a"'})
    at = datetime.fromtimestamp(now + 1, tz=UTC)

    got = slos.bind(slo).count(at - timedelta(seconds=601), at)

    assert (got.good, got.total) == (180, 200)


def test_metric_ratio_accepts_only_registered_counters_and_valid_matchers(counters):
    with pytest.raises(Exception) as caught:
        slos.MetricRatio.clean({"good_metric": "opscenter_alerts", "total_metric": "opscenter_nope",
                                "good_matchers": 'route=~"("'})

    messages = caught.value.message_dict["params"]
    assert any(m.startswith("good_metric:") and "counter" in m for m in messages)
    assert any(m.startswith("total_metric:") and "not a registered metric" in m for m in messages)
    assert any(m.startswith("good_matchers:") for m in messages)


# --- figures: budget, burn rates, status over simulated time ----------------------------------------------


def test_budget_and_burn_rates_follow_the_events_over_simulated_time():
    advisor = make_advisor()
    make_deliveries(1980, status="sent", at=NOW - timedelta(days=10), advisor=advisor)
    make_deliveries(10, status="failed", at=NOW - timedelta(days=10), advisor=advisor)
    make_deliveries(9, status="sent", at=NOW - minutes(3), advisor=advisor)
    make_deliveries(1, status="failed", at=NOW - minutes(3), advisor=advisor)
    slo = make_slo(objective=99.0)  # 1 % of deliveries may fail

    now = slos.slo_status(slo, NOW)
    later = slos.slo_status(slo, NOW + minutes(40))
    next_month = slos.slo_status(slo, NOW + timedelta(days=31))

    assert (now["good"], now["total"]) == (1989, 2000)
    assert now["sli"] == pytest.approx(0.9945)
    assert now["error_budget"] == pytest.approx(0.01)
    assert now["budget_remaining"] == pytest.approx(1 - 0.0055 / 0.01)
    assert now["burn_rates"] == pytest.approx({"5m": 10.0, "30m": 10.0, "1h": 10.0, "6h": 10.0})
    assert (now["fast_burn"], now["slow_burn"]) == (pytest.approx(10.0), pytest.approx(10.0))
    assert now["met"] is True and now["status"] == "at_risk"  # slow pair over 6
    # 40 minutes on: the short windows are quiet, so both pairs read 0 and the alerts clear.
    assert later["burn_rates"]["5m"] is None and later["burn_rates"]["30m"] is None
    assert later["burn_rates"]["1h"] == pytest.approx(10.0)
    assert (later["fast_burn"], later["slow_burn"]) == (0, 0)
    assert later["status"] == "met"
    assert next_month["status"] == "no_data" and next_month["sli"] is None and next_month["budget_remaining"] is None


def test_an_slo_below_its_objective_is_breached_with_a_negative_budget():
    make_deliveries(99, status="sent", at=NOW - timedelta(days=2))
    make_deliveries(1, status="failed", at=NOW - timedelta(days=2))
    slo = make_slo(objective=99.9)

    figures = slos.slo_status(slo, NOW)

    assert figures["status"] == "breached" and figures["met"] is False
    assert figures["budget_remaining"] == pytest.approx(1 - 0.01 / 0.001)


def test_no_events_is_no_data_not_a_perfect_score():
    slo = make_slo()

    figures = slos.slo_status(slo, NOW, daily_days=3)

    assert figures["status"] == "no_data"
    assert (figures["sli"], figures["met"], figures["budget_remaining"]) == (None, None, None)
    assert figures["burn_rates"] == dict.fromkeys(slos.BURN_WINDOWS)
    assert [d["sli"] for d in figures["daily"]] == [None, None, None]


def test_the_daily_sli_covers_the_last_days_with_today_so_far():
    make_deliveries(3, status="sent", at=NOW - timedelta(days=1))
    make_deliveries(1, status="failed", at=NOW - timedelta(days=1))
    make_deliveries(2, status="sent", at=NOW - minutes(5))
    slo = make_slo()

    daily = slos.daily_sli(slo, days=3, now=NOW)

    assert [d["day"] for d in daily] == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert [d["sli"] for d in daily] == [None, 0.75, 1.0]


# --- recording ---------------------------------------------------------------------------------------------


def test_record_slos_writes_the_figures_and_the_registry_exposes_them():
    now = timezone_now()
    make_deliveries(95, status="sent", at=now - timedelta(hours=2))
    make_deliveries(5, status="failed", at=now - timedelta(hours=2))
    slo = make_slo(name="Delivery", objective=99.0)
    make_slo(name="Switched off", enabled=False)

    assert slos.record_slos(now) == 1

    def stored(name, **labels):
        return {tuple(sorted(s.labels.items())): s.value for s in registry.get_metric(name).read()
                if all(s.labels.get(k) == v for k, v in labels.items())}

    assert stored(slos.SLI_METRIC) == {(("slo", "Delivery"),): pytest.approx(0.95)}
    assert stored(slos.BUDGET_METRIC) == {(("slo", "Delivery"),): pytest.approx(1 - 0.05 / 0.01)}
    assert stored(slos.BURN_METRIC) == {
        (("slo", "Delivery"), ("window", "5m")): 0, (("slo", "Delivery"), ("window", "30m")): 0,
        (("slo", "Delivery"), ("window", "1h")): 0, (("slo", "Delivery"), ("window", "6h")): pytest.approx(5.0)}
    assert stored(slos.FAST_METRIC) == {(("slo", "Delivery"),): 0}
    assert stored(slos.SLOW_METRIC) == {(("slo", "Delivery"),): 0}  # min(6h = 5, 30m = 0)
    window = store.read_series(slos.SLOW_METRIC, {"slo": slo.name}, now - timedelta(minutes=1), now + timedelta(seconds=1),
                               resolution=store.RAW)
    assert [p.last for s in window.series for p in s.points] == [0]


def test_the_slo_metrics_are_registered_as_written_by_the_task_not_sampled():
    for name in (slos.SLI_METRIC, slos.BUDGET_METRIC, slos.BURN_METRIC, slos.FAST_METRIC, slos.SLOW_METRIC):
        metric = registry.get_metric(name)
        assert metric is not None and metric.store is False and "slo" in metric.labels


def test_an_slo_without_events_writes_burn_rates_of_zero_but_no_sli():
    now = timezone_now()
    make_slo(name="Quiet")

    slos.record_slos(now)

    assert registry.get_metric(slos.SLI_METRIC).read() == []
    assert [s.value for s in registry.get_metric(slos.FAST_METRIC).read()] == [0]


def timezone_now() -> datetime:
    return datetime.fromtimestamp(int(clock.time()), tz=UTC)


# --- burn-rate rules ------------------------------------------------------------------------------------


def rules_of(slo: SLO) -> dict[str, Rule]:
    return {r.builtin_key.rsplit(":", 1)[1]: r for r in Rule.objects.filter(builtin_key__startswith=f"slo:{slo.pk}:")}


def test_an_slo_gets_a_fast_and_a_slow_burn_rule_that_the_evaluator_accepts():
    slo = make_slo(name="Delivery success", severity="critical", window_days=30)

    rules = rules_of(slo)

    fast, slow = rules["fast"], rules["slow"]
    assert (fast.metric, fast.matchers, fast.comparator, fast.threshold) == (
        "opscenter_slo_fast_burn", 'slo="Delivery success"', "gt", 14.4)
    assert (slow.metric, slow.threshold) == ("opscenter_slo_slow_burn", 6.0)
    assert (fast.for_seconds, slow.for_seconds) == (120, 900)
    assert (fast.severity, slow.severity) == ("critical", "high")
    assert fast.aggregation == slow.aggregation == "last"
    assert all(60 <= r.window_seconds <= 300 for r in rules.values())
    assert "multiwindow" in fast.description and "2 % of the whole budget goes in 1 hour" in fast.description
    assert "5 % of the whole budget goes in 6 hours" in slow.description
    for rule in rules.values():
        validate_rule(rule)
    assert AuditEntry.objects.filter(action="alert_rule.created", target_id=str(fast.pk)).exists()


def test_the_rules_follow_the_slo_but_keep_what_people_tuned():
    slo = make_slo(name="Before", severity="critical")
    fast = rules_of(slo)["fast"]
    Rule.objects.filter(pk=fast.pk).update(threshold=20.0, for_seconds=300)

    slo.name, slo.severity = "After", "medium"
    slo.save()
    rules = rules_of(slo)

    assert rules["fast"].matchers == 'slo="After"' and "After" in rules["fast"].name
    assert (rules["fast"].severity, rules["slow"].severity) == ("medium", "low")
    assert (rules["fast"].threshold, rules["fast"].for_seconds) == (20.0, 300)


def test_the_rules_are_disabled_with_the_slo_or_its_burn_rate_alerts_and_their_alerts_resolve():
    slo = make_slo()
    alert = make_alert(rules_of(slo)["fast"], status="firing")

    slo.burn_rate_alerts = False
    slo.save()
    off = rules_of(slo)
    slo.burn_rate_alerts = True
    slo.save()
    on = rules_of(slo)
    slo.enabled = False
    slo.save()

    assert not off["fast"].enabled and not off["slow"].enabled
    assert on["fast"].enabled and on["slow"].enabled
    assert not any(r.enabled for r in rules_of(slo).values())
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_deleting_an_slo_deletes_its_rules_and_keeps_their_alerts_history():
    slo = make_slo()
    alert = make_alert(rules_of(slo)["slow"], status="firing")

    slos.delete_slo(slo, by=make_user("Admin"))

    assert not Rule.objects.filter(builtin_key__startswith="slo:").exists()
    alert = Alert.objects.get(pk=alert.pk)
    assert alert.status == "resolved" and alert.rule_id is None


def test_record_slos_puts_back_a_burn_rule_someone_deleted_and_drops_orphans():
    slo = make_slo()
    rules_of(slo)["fast"].delete()
    orphan = Rule.objects.create(name="Old SLO: fast burn", builtin_key="slo:999999:fast", metric=slos.FAST_METRIC,
                                 threshold=14.4)

    slos.record_slos(NOW)

    assert set(rules_of(slo)) == {"fast", "slow"}
    assert not Rule.objects.filter(pk=orphan.pk).exists()


def test_a_disabled_slo_gets_no_rules_until_it_is_enabled():
    slo = make_slo(enabled=False)
    assert rules_of(slo) == {}

    slo.enabled = True
    slo.save()

    assert set(rules_of(slo)) == {"fast", "slow"}


# --- defaults --------------------------------------------------------------------------------------------


def test_the_defaults_are_created_once_and_an_edited_or_deleted_one_stays_so():
    created = slos.ensure_default_slos()
    by_key = {s.builtin_key: s for s in created}

    assert {s.name for s in created} == {"Delivery success", "Webhook service uptime", "Decided before 08:00"}
    assert (by_key["slo:delivery-success"].objective, by_key["slo:delivery-success"].window_days) == (99.5, 30)
    assert by_key["slo:decided-before-0800"].objective == 95 and by_key["slo:decided-before-0800"].params == {
        "time": "08:00"}
    assert slos.ensure_default_slos() == []

    edited = by_key["slo:delivery-success"]
    edited.objective = 99.0
    edited.save()
    by_key["slo:decided-before-0800"].delete()

    assert slos.ensure_default_slos() == []
    assert SLO.objects.get(pk=edited.pk).objective == 99.0
    assert not SLO.objects.filter(name="Decided before 08:00").exists()
    assert BuiltinDefault.objects.filter(key__startswith="slo:").count() == 3


def test_the_webhook_slo_waits_disabled_for_its_check_then_adopts_it():
    created = {s.builtin_key: s for s in slos.ensure_default_slos()}
    waiting = created[slos.WEBHOOK_KEY]

    assert waiting.enabled is False and "OPSCENTER_WEBHOOK_SERVICE_HEALTH_URL" in waiting.description
    assert rules_of(waiting) == {}
    assert slos.slo_status(waiting, NOW)["status"] == "disabled"

    check = HealthCheck(name="Inbound webhook service", kind="http", url="http://127.0.0.1:9/health",
                        is_webhook_service=True, system_key="webhook-service")
    check.full_clean()
    check.save()
    slos.record_slos(NOW)
    waiting.refresh_from_db()

    assert waiting.enabled is True and waiting.params == {"check": "Inbound webhook service"}
    assert set(rules_of(waiting)) == {"fast", "slow"}
    assert AuditEntry.objects.filter(action="slo.changed", target_id=str(waiting.pk)).exists()


def test_a_waiting_webhook_slo_a_person_edited_is_left_alone():
    waiting = {s.builtin_key: s for s in slos.ensure_default_slos()}[slos.WEBHOOK_KEY]
    waiting.description = "We will set this up later."
    waiting.save()
    HealthCheck.objects.create(name="Webhook", kind="http", url="http://127.0.0.1:9/", is_webhook_service=True)

    slos.record_slos(NOW)

    waiting.refresh_from_db()
    assert waiting.enabled is False and waiting.params == {}


def test_the_webhook_slo_follows_an_existing_check_from_the_start():
    HealthCheck.objects.create(name="Messaging /health", kind="http", url="http://127.0.0.1:9/",
                               is_webhook_service=True, system_key="inbound:messaging")

    webhook = {s.builtin_key: s for s in slos.ensure_default_slos()}[slos.WEBHOOK_KEY]

    assert webhook.enabled and webhook.params == {"check": "Messaging /health"}


# --- validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"objective": 100}, "objective"),
    ({"objective": 0}, "objective"),
    ({"window_days": 0}, "window_days"),
    ({"window_days": 366}, "window_days"),
    ({"indicator": "nope"}, "indicator"),
    ({"indicator": "health_uptime", "params": {"check": "no such check"}}, "params"),
    ({"indicator": "health_uptime", "params": {}}, "params"),
    ({"indicator": "decided_before", "params": {"time": "25:00"}}, "params"),
    ({"indicator": "decided_before", "params": {"time": "08:00", "timezone": "Mars/Base"}}, "params"),
    ({"params": {"chanel": "outbox"}}, "params"),
    ({"params": "outbox"}, "params"),
])
def test_validation_names_the_field_at_fault(fields, field):
    slo = SLO(**{"name": "x", "indicator": "delivery_success", "objective": 99.0, "window_days": 30,
                 "params": {}, **fields})

    with pytest.raises(Exception) as caught:
        slos.validate_slo(slo)

    assert field in caught.value.message_dict


def test_validation_fills_the_indicators_defaults():
    slo = SLO(name="Decided", indicator="decided_before", objective=95.0, window_days=30, params={"time": " 7:30 "})

    slos.validate_slo(slo)

    assert slo.params == {"time": "07:30"}


# --- the monthly report ----------------------------------------------------------------------------------------


def test_the_report_counts_calendar_months_in_the_configured_time_zone(settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # UTC+05:30: local midnight is 18:30 UTC the day before
    advisor = make_advisor()
    make_deliveries(1, status="failed", at=datetime(2026, 10, 31, 18, 29, tzinfo=UTC), advisor=advisor)  # 31 Oct 23:59
    make_deliveries(3, status="sent", at=datetime(2026, 10, 31, 18, 31, tzinfo=UTC), advisor=advisor)  # 1 Nov 00:01
    make_deliveries(1, status="failed", at=datetime(2026, 11, 30, 18, 29, tzinfo=UTC), advisor=advisor)  # 30 Nov 23:59
    make_deliveries(2, status="failed", at=datetime(2026, 11, 30, 18, 31, tzinfo=UTC), advisor=advisor)  # 1 Dec 00:01
    make_slo(name="Delivery success", objective=99.5)
    now = datetime(2026, 12, 5, tzinfo=UTC)

    november = slos.monthly_report(date(2026, 11, 1), now=now)
    october = slos.monthly_report(date(2026, 10, 1), now=now)

    row = november["slos"][0]
    assert (row["good"], row["total"]) == (3, 4)
    assert row["achieved"] == pytest.approx(0.75) and row["met"] is False
    assert row["budget_used"] == pytest.approx(0.25 / 0.005)
    assert (row["worst_day"], row["worst_day_sli"]) == ("2026-11-30", 0.0)
    assert (november["start"], november["end"]) == ("2026-10-31T18:30:00+00:00", "2026-11-30T18:30:00+00:00")
    assert (november["previous"], november["next"], november["partial"]) == ("2026-10", "2026-12", False)
    assert (october["slos"][0]["good"], october["slos"][0]["total"]) == (0, 1)


def test_the_report_of_the_current_month_counts_up_to_now_and_says_so():
    make_deliveries(2, status="sent", at=NOW - timedelta(days=1))
    make_slo()

    report = slos.monthly_report(date(2026, 11, 1), now=NOW)
    future = slos.monthly_report(date(2027, 1, 1), now=NOW)

    assert report["partial"] is True and report["slos"][0]["total"] == 2
    assert future["future"] is True and future["slos"][0]["total"] is None


def test_the_report_csv_has_one_row_per_slo_with_the_figures():
    make_deliveries(199, status="sent", at=NOW - timedelta(days=3))
    make_deliveries(1, status="failed", at=NOW - timedelta(days=2))
    make_slo(name="Delivery success", objective=99.0)
    make_slo(name="Nothing yet", indicator="decided_before", params={"time": "08:00"}, objective=95)

    text = io.StringIO()
    csv.writer(text).writerows(slos.report_csv_rows(slos.monthly_report(date(2026, 11, 1), now=NOW)))
    rows = list(csv.DictReader(io.StringIO(text.getvalue())))

    assert [r["slo"] for r in rows] == ["Delivery success", "Nothing yet"]
    first = rows[0]
    assert (first["good"], first["total"], first["achieved_percent"], first["met"]) == ("199", "200", "99.5", "yes")
    assert (first["objective_percent"], first["budget_used_percent"]) == ("99", "50")
    assert (first["worst_day"], first["worst_day_percent"]) == ("2026-11-18", "0")
    assert (first["month"], first["unit"], first["note"]) == ("2026-11", "deliveries", "month in progress")
    assert rows[1]["total"] == "" and rows[1]["note"] == "no data"


@pytest.mark.parametrize("text", ["2026-13", "26-11", "november", "2026-1"])
def test_a_malformed_month_is_refused(text):
    with pytest.raises(ValueError):
        slos.parse_month(text)

