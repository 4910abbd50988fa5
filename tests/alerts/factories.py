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


# --- notifications (h2) ----------------------------------------------------------------------


def make_policy(steps: list[tuple[int, list]], **fields):
    """Create an escalation policy; `steps` are (after_minutes, [channels]) for levels 1, 2, …"""
    from alerts.models import EscalationPolicy, EscalationStep

    policy = EscalationPolicy.objects.create(**{"name": f"Policy {next(_n)}", **fields})
    for level, (after_minutes, channels) in enumerate(steps, start=1):
        step = EscalationStep.objects.create(policy=policy, level=level, after_minutes=after_minutes)
        step.channels.set(channels)
    return policy


def fire(rule=None, *, at=None, labels: dict | None = None, due_at=None, **fields):
    """Create a firing alert at `at` (now) and request its firing notification, as the evaluator does."""
    from alerts.models import NotifyKind
    from alerts.services import request_notification

    at = at or timezone.now()
    alert = make_alert(rule, labels=labels, pending_since=at, fired_at=at, **fields)
    request_notification(alert, NotifyKind.FIRING, due_at=due_at or at)
    return alert


class Receiver:
    """A real HTTP server on 127.0.0.1 that takes Apprise's json:// POSTs.

    It answers `statuses` in turn (then 200 for good) and keeps every request it got:
    (status it answered, headers, decoded JSON body).
    """

    def __init__(self, statuses: list[int] | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses = list(statuses or [])
        self.requests: list[tuple[int, dict, dict]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                import json

                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    try:
                        payload = json.loads(raw or b"{}")
                    except ValueError:
                        payload = {"raw": raw.decode(errors="replace")}
                    receiver.requests.append((status, dict(self.headers), payload))
                body = b"ok" if status < 300 else b"receiver says no"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook", scheme: str = "json", host: str = "127.0.0.1") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- evaluation (h1): test metrics in the registry, samples in the store --------------------------

TEST_METRICS = {
    "opscenter_test_gauge": "gauge",
    "opscenter_test_other": "gauge",
    "opscenter_test_counter": "counter",
    "opscenter_test_runs_total": "counter",
    "opscenter_test_histogram": "histogram",
}


def register_test_metrics() -> list[str]:
    """Register the metrics the alerts tests read (nothing samples them); return their names to unregister."""
    from monitoring.registry import Kind, register_metric

    for name, kind in TEST_METRICS.items():
        register_metric(name, f"A {kind} for tests.", read=list, kind=Kind(kind), store=kind != "histogram")
    return list(TEST_METRICS)


def unregister_test_metrics() -> None:
    from monitoring import registry

    for name in TEST_METRICS:
        registry._metrics.pop(name, None)


def write_points(name: str, labels: dict, points, *, every: int = 10, start: int | None = None) -> None:
    """Write samples of one series: `points` is [(t, value), …], or values spaced `every` s from `start`."""
    from monitoring import store

    pairs = list(points) if start is None else [(start + i * every, v) for i, v in enumerate(points)]
    for t, value in pairs:
        store.write_samples([(name, labels, value)], at=t)


def make_slo(**fields):
    """Create an SLO (delivery success, 99 % over 30 days unless told otherwise); its burn-rate rules follow."""
    from alerts.models import SLO

    defaults = {"name": f"SLO {next(_n)}", "indicator": "delivery_success", "params": {}, "objective": 99.0,
                "window_days": 30, "severity": "critical"}
    return SLO.objects.create(**{**defaults, **fields})


def make_deliveries(count: int, *, status: str, at, channel: str = "outbox", advisor=None) -> list:
    """Create `count` finished (or queued) deliveries at `at`: sent_at for sent ones, updated_at for all."""
    from advisors.models import Content, Delivery
    from tests.factories import make_advisor

    advisor = advisor or make_advisor()
    contents = Content.objects.bulk_create([
        Content(advisor=advisor, cycle_date=at.date(), status="approved", title=f"Post {next(_n)}", body="…")
        for _ in range(count)
    ])
    sent = status in ("sent", "delivered", "read")
    rows = Delivery.objects.bulk_create([
        Delivery(content=c, channel=channel, recipient=advisor.phone, status=status, sent_at=at if sent else None)
        for c in contents
    ])
    # updated_at is auto_now: bulk_create stamps it with the clock, so set the simulated time afterwards.
    Delivery.objects.filter(pk__in=[d.pk for d in rows]).update(updated_at=at)
    return rows
