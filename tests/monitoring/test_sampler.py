"""The sampler stores every stored registry metric; processes report themselves through Redis."""

from __future__ import annotations

import json
import os
import time

import pytest

from monitoring import processes, services, store
from monitoring.registry import HistogramValue, Kind, Sample
from opscenter.redis import redis_client

pytestmark = pytest.mark.django_db
T = 1_800_000_000


def test_the_sampler_stores_every_stored_registry_metric(extra_metric):
    extra_metric("opscenter_test_widgets", "Widgets by colour.", labels=("colour",),
                 read=lambda: [Sample({"colour": "red"}, 3), Sample({"colour": "blue"}, 4.5)])
    extra_metric("opscenter_test_exposed_only", "Not stored.", read=lambda: [Sample({}, 1)], store=False)
    extra_metric("opscenter_test_latency", "A histogram.", kind=Kind.HISTOGRAM, store=False,
                 read=lambda: [HistogramValue({}, ((1.0, 1), (float("inf"), 2)), 3.0, 2)])

    services.sample_registry(at=T, publish_live=False)

    window = store.read_series("opscenter_test_widgets", None, T, T + 1, resolution=store.RAW)
    assert {s.labels["colour"]: s.points[0].last for s in window.series} == {"red": 3.0, "blue": 4.5}
    assert store.find_series("opscenter_test_exposed_only") == []
    assert store.find_series("opscenter_test_latency") == []


def test_the_sampler_stores_the_system_figures_for_alert_rules():
    services.sample_registry(at=T, publish_live=False)
    for name in ("opscenter_system_cpu_percent", "opscenter_system_memory_used_percent",
                 "opscenter_system_disk_used_percent", "opscenter_system_load1",
                 "opscenter_system_network_received_bytes_total", "opscenter_celery_queue_length",
                 "opscenter_pending_approvals", "opscenter_deliveries"):
        assert store.find_series(name), name
    ((labels, disk),) = store.aggregate("opscenter_system_disk_used_percent", None, T, T + 1, "last", now=T + 1)
    assert labels == {"host": processes.host_name()}
    assert 0 < disk <= 100


def test_a_broken_metric_does_not_stop_the_sampler(extra_metric):
    def broken():
        raise RuntimeError("reader down")

    extra_metric("opscenter_test_broken", "Always fails.", read=broken)
    extra_metric("opscenter_test_fine", "Works.", read=lambda: [Sample({}, 7)])
    services.sample_registry(at=T, publish_live=False)
    assert store.find_series("opscenter_test_fine")
    assert not store.find_series("opscenter_test_broken")


def test_a_reporting_process_appears_with_its_figures_and_goes_stale_when_silent(settings):
    info = processes.ProcessInfo(role="worker", name="celery@test", concurrency=3, extra=lambda: {"active_tasks": 2})
    processes.report(info, processes.ProcessMeter())
    (entry,) = processes.processes()
    assert entry["role"] == "worker" and entry["pid"] == os.getpid() and entry["online"]
    assert entry["concurrency"] == 3 and entry["active_tasks"] == 2
    assert entry["rss_bytes"] > 1_000_000
    # Silent for longer than three periods: gone (but still listed for a while).
    key = processes.process_key("worker", entry["host"], entry["pid"])
    stale = {**entry, "reported_at": time.time() - processes.stale_after_seconds() - 1}
    redis_client().hset(processes.PROCESSES_KEY, key, json.dumps(stale))
    (entry,) = processes.processes()
    assert not entry["online"]
    from monitoring.metrics import read_workers_online

    assert read_workers_online()[0].value == 0
    # Silent for an hour: forgotten.
    redis_client().hset(processes.PROCESSES_KEY, key, json.dumps({**entry, "reported_at": time.time() - 7200}))
    assert processes.processes() == []


def test_the_reporter_thread_reports_every_period_and_removes_itself_on_stop(settings):
    settings.METRICS_PROCESS_REPORT_SECONDS = 1
    processes.start_reporter(processes.ProcessInfo(role="beat"))
    try:
        deadline = time.monotonic() + 5
        while not processes.processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        (entry,) = processes.processes()
        assert entry["role"] == "beat"
        first = entry["reported_at"]
        time.sleep(1.3)
        assert processes.processes()[0]["reported_at"] > first
    finally:
        processes.stop_reporter()
    assert processes.processes() == []


def test_host_figures_from_several_machines_are_each_a_series():
    now = time.time()
    for host, cpu in (("alpha", 10.0), ("beta", 90.0)):
        figures = {**processes.host_figures(), "host": host, "cpu_percent": cpu, "reported_at": now}
        redis_client().hset(processes.HOSTS_KEY, host, json.dumps(figures))
    services.sample_registry(at=T, publish_live=False)
    got = dict((labels["host"], value) for labels, value in
               store.aggregate("opscenter_system_cpu_percent", None, T, T + 1, "last", now=T + 1))
    assert got == {"alpha": 10.0, "beta": 90.0}


def test_the_sample_task_publishes_the_figures_on_the_metrics_topic(django_capture_on_commit_callbacks):
    from opscenter.live import current_seq

    before = current_seq("metrics")
    with django_capture_on_commit_callbacks(execute=True):
        from monitoring.tasks import sample_metrics

        assert sample_metrics() > 10
    assert current_seq("metrics") == before + 1
