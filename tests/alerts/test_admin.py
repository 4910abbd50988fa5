"""The admin editors of alerting: rules (validation, preview), channels (secret URLs, send test), the rest."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import evaluation, services
from alerts.models import Channel, EscalationPolicy, MaintenanceWindow, Notification, Rule, Silence
from opscenter.models import AuditEntry
from tests.factories import make_user

from .factories import (
    Receiver,
    make_alert,
    make_channel,
    make_rule,
    write_points,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_metrics")]

SECRET = "s3cr3t-t0ken-9f8e7d"
PREVIEW = "/admin/alerts/rule/preview/"


def signed_in(client, role: str, **fields):
    user = make_user(role, **fields)
    client.force_login(user)
    return user


def rule_data(**overrides) -> dict:
    """The rule form as a browser posts it."""
    data = {
        "name": "Gauge too high", "description": "", "enabled": "on", "metric": "opscenter_test_gauge",
        "matchers": "", "aggregation": "avg", "percentile": "", "window_seconds": "60", "denominator_metric": "",
        "denominator_matchers": "", "comparator": "gt", "threshold": "10", "for_seconds": "0",
        "keep_firing_for_seconds": "0", "no_data": "ok", "severity": "high", "labels": "{}", "group_by": "",
        "summary_template": "", "runbook_url": "", "escalation_policy": "", "group_wait_seconds": "30",
        "repeat_interval_seconds": "14400", "active_from": "", "active_until": "", "timezone": "UTC",
        "_save": "Save",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def field_errors(response) -> dict[str, list[str]]:
    form = response.context["adminform"].form
    return {name: [str(e) for e in errors] for name, errors in form.errors.items()}


# --- rules ------------------------------------------------------------------------------------------


def test_an_admin_creates_a_rule_with_channels_and_it_is_audited(client):
    channel = make_channel(name="Ops")
    admin = signed_in(client, "Admin")

    response = client.post("/admin/alerts/rule/add/", rule_data(channels=[channel.pk], group_by="host, path",
                                                                labels='{"team": "ops"}', active_days=["0", "4"]))

    assert response.status_code == 302, field_errors(response)
    rule = Rule.objects.get(name="Gauge too high")
    assert list(rule.channels.all()) == [channel]
    assert rule.group_by == ["host", "path"] and rule.labels == {"team": "ops"} and rule.active_days == [0, 4]
    entry = AuditEntry.objects.get(action="alert_rule.created")
    assert entry.actor == admin and entry.changes["channels"] == ["Ops"]


@pytest.mark.parametrize("overrides,field,message", [
    ({"metric": "opscenter_no_such_metric"}, "metric", "Unknown metric"),
    ({"metric": "opscenter_test_histogram"}, "metric", "is a histogram"),
    ({"matchers": 'status="failed'}, "matchers", "cannot read a matcher"),
    ({"aggregation": "percentile"}, "percentile", "Give the percentile"),
    ({"window_seconds": "1"}, "window_seconds", "At least"),
    ({"group_by": "host, 1bad"}, "group_by", "Not a label name: 1bad"),
    ({"labels": '["not", "an", "object"]'}, "labels", "Write an object"),
    ({"labels": '{"severity": "low"}'}, "labels", "alertname and severity are set from the rule"),
    ({"timezone": "Mars/Olympus"}, "timezone", "IANA time zone"),
    ({"active_from": "09:00"}, "active_until", "Give both the start and the end"),
    ({"summary_template": "{{ value "}, "summary_template", "does not compile"),
    ({"denominator_matchers": 'a="b"'}, "denominator_matchers", "need a denominator metric"),
])
def test_a_bad_rule_gets_errors_on_its_fields_and_is_not_saved(client, overrides, field, message):
    signed_in(client, "Admin")

    response = client.post("/admin/alerts/rule/add/", rule_data(**overrides))

    assert response.status_code == 200
    errors = field_errors(response)
    assert message in " ".join(errors.get(field, [])), errors
    assert not Rule.objects.exists()


def test_operators_and_viewers_cannot_change_rules(client):
    rule = make_rule()
    signed_in(client, "Operator")

    assert client.post(f"/admin/alerts/rule/{rule.pk}/change/", rule_data(name="Renamed")).status_code == 403
    assert client.post("/admin/alerts/rule/add/", rule_data()).status_code == 403
    page = client.get(f"/admin/alerts/rule/{rule.pk}/change/")
    assert page.status_code == 200 and 'data-editable="false"' in page.content.decode()
    rule.refresh_from_db()
    assert rule.name != "Renamed"


def test_deleting_a_rule_in_the_admin_resolves_its_open_alerts(client):
    rule = make_rule()
    alert = make_alert(rule)
    signed_in(client, "Admin")

    client.post(f"/admin/alerts/rule/{rule.pk}/delete/", {"post": "yes"})

    alert.refresh_from_db()
    assert not Rule.objects.filter(pk=rule.pk).exists() and alert.status == "resolved"
    assert AuditEntry.objects.filter(action="alert_rule.deleted").exists()


def gauge_history(values_by_minute: list[float], *, labels: dict | None = None) -> None:
    """Write one sample a minute of opscenter_test_gauge, ending now."""
    now = int(time.time()) // 60 * 60
    start = now - (len(values_by_minute) - 1) * 60
    write_points("opscenter_test_gauge", labels or {"host": "web-1"}, values_by_minute, every=60, start=start)


def test_the_preview_of_unsaved_form_values_shows_values_threshold_and_when_it_would_have_fired(client):
    gauge_history([5] * 60 + [20] * 20 + [5] * 40)  # above 10 for 20 minutes, an hour ago
    signed_in(client, "Admin")

    response = client.post(PREVIEW, rule_data(threshold="10", aggregation="last"))

    assert response.status_code == 200
    data = response.json()
    assert data["ok"] and data["threshold"] == 10 and data["fired_count"] == 1
    assert data["groups"][0]["labels"]["host"] == "web-1"
    firing = data["firing"][0]
    assert firing["until"] is not None and 15 * 60 <= firing["until"] - firing["from"] <= 25 * 60
    values = [v for _, v in data["groups"][0]["points"] if v is not None]
    assert max(values) == 20 and min(values) == 5

    higher = client.post(PREVIEW, rule_data(threshold="30", aggregation="last")).json()
    assert higher["fired_count"] == 0  # the unsaved threshold, not a saved rule's


def test_the_preview_of_a_saved_rule_uses_what_is_saved_and_any_role_may_see_it(client):
    gauge_history([20] * 30)
    rule = make_rule(threshold=10.0, aggregation="last")
    signed_in(client, "Viewer")

    saved = client.post(PREVIEW, {"rule_id": str(rule.pk), "saved": "1"})
    assert saved.status_code == 200 and saved.json()["fired_count"] == 1
    assert client.post(PREVIEW, {**rule_data(), "rule_id": str(rule.pk)}).status_code == 403  # not the form


def test_the_preview_names_the_fields_that_keep_it_from_running(client):
    signed_in(client, "Admin")
    make_rule(name="Taken")

    response = client.post(PREVIEW, rule_data(metric="opscenter_unknown", name="Taken"))

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "Unknown metric" in " ".join(errors["metric"]) and "name" not in errors  # a duplicate name does not matter
    assert client.get(PREVIEW).status_code == 405


def test_the_rule_page_carries_the_preview_and_the_metric_names(client):
    rule = make_rule()
    signed_in(client, "Admin")

    page = client.get(f"/admin/alerts/rule/{rule.pk}/change/").content.decode()

    assert f'data-rule-id="{rule.pk}"' in page and f'data-url="{PREVIEW}"' in page
    assert 'data-editable="true"' in page and "alerts/rule_preview" in page
    assert '<datalist id="alert-metric-names">' in page and '<option value="opscenter_test_gauge">' in page
    assert 'list="alert-metric-names"' in page


# --- channels ---------------------------------------------------------------------------------------


def channel_data(**overrides) -> dict:
    data = {"name": "Ops hook", "url": "", "enabled": "on", "min_severity": "low", "matchers": "",
            "send_resolved": "on", "_save": "Save"}
    data.update(overrides)
    return data


def test_a_channels_url_is_never_in_the_admin_html(client):
    channel = make_channel(f"json://hooks.acme.test/alerts/{SECRET}", name="Ops hook")
    for role in ("Admin", "Viewer"):
        signed_in(client, role)
        for url in ("/admin/alerts/channel/", f"/admin/alerts/channel/{channel.pk}/change/",
                    f"/admin/alerts/channel/{channel.pk}/history/"):
            page = client.get(url)
            assert page.status_code == 200, url
            assert SECRET not in page.content.decode() and "hooks.acme.test" not in page.content.decode()
    assert "json://••••" in client.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()


def test_a_url_typed_with_an_error_elsewhere_is_not_shown_back_either(client):
    signed_in(client, "Admin")

    response = client.post("/admin/alerts/channel/add/",
                           channel_data(name="", url=f"json://hooks.example.com/{SECRET}"))

    assert response.status_code == 200 and "name" in field_errors(response)
    assert SECRET not in response.content.decode()


def test_leaving_the_url_empty_keeps_the_saved_one(client):
    channel = make_channel(f"json://hooks.example.com/{SECRET}", name="Ops hook")
    signed_in(client, "Admin")

    response = client.post(f"/admin/alerts/channel/{channel.pk}/change/", channel_data(name="Ops hook 2", url=""))

    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Ops hook 2" and channel.url == f"json://hooks.example.com/{SECRET}"
    audit = AuditEntry.objects.get(action="alert_channel.changed")
    assert "url" not in audit.changes and SECRET not in str(audit.changes)


def test_a_new_url_replaces_the_old_one_and_is_validated(client, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_HOSTS = []
    channel = make_channel("json://hooks.example.com/old", name="Ops hook")
    signed_in(client, "Admin")

    refused = client.post(f"/admin/alerts/channel/{channel.pk}/change/",
                          channel_data(url="json://127.0.0.1:9/hook"))
    assert refused.status_code == 200 and "Refused" in " ".join(field_errors(refused)["url"])
    nonsense = client.post(f"/admin/alerts/channel/{channel.pk}/change/", channel_data(url="not a url"))
    assert "url" in field_errors(nonsense)
    channel.refresh_from_db()
    assert channel.url == "json://hooks.example.com/old"

    slack = "slack://T0001A/B0002B/abcdefghijklmnopqrstuvwx"  # no host to resolve: valid offline
    response = client.post(f"/admin/alerts/channel/{channel.pk}/change/", channel_data(url=slack))
    assert response.status_code == 302, field_errors(response)
    channel.refresh_from_db()
    assert channel.url == slack
    assert AuditEntry.objects.get(action="alert_channel.changed").changes["url"] == channel.masked_url


def test_a_new_channel_needs_a_url(client):
    signed_in(client, "Admin")

    response = client.post("/admin/alerts/channel/add/", channel_data(url=""))

    assert "url" in field_errors(response) and not Channel.objects.exists()


def test_send_test_reaches_the_receiver_and_shows_the_result(client, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    admin = signed_in(client, "Admin", username="asha")
    with Receiver() as receiver:
        channel = make_channel(receiver.url(), name="Loopback hook")
        confirm = client.get(f"/admin/alerts/channel/{channel.pk}/send-test/")
        assert confirm.status_code == 200 and not receiver.requests  # a GET only asks

        done = client.post(f"/admin/alerts/channel/{channel.pk}/send-test/", follow=True)

    assert len(receiver.requests) == 1
    status, headers, payload = receiver.requests[0]
    assert "OpsCenter test notification: Loopback hook" in payload["title"]
    assert "sent by asha" in payload["message"]
    assert "Sent a test message to Loopback hook." in done.content.decode()
    channel.refresh_from_db()
    assert channel.last_test_ok is True
    assert Notification.objects.get(kind="test").status == "sent"
    assert AuditEntry.objects.filter(action="channel.tested", actor=admin).exists()
    assert "ok at" in client.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()


def test_a_failed_test_says_why_and_is_remembered(client, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    signed_in(client, "Admin")
    with Receiver(statuses=[500]) as receiver:
        channel = make_channel(receiver.url(), name="Broken hook")
        done = client.post(f"/admin/alerts/channel/{channel.pk}/send-test/", follow=True)

    text = done.content.decode()
    assert "The test message to Broken hook failed" in text and "500" in text
    channel.refresh_from_db()
    assert channel.last_test_ok is False and "500" in channel.last_test_error


def test_only_admins_send_tests_and_viewers_see_no_url_field(client):
    channel = make_channel(f"json://hooks.example.com/{SECRET}")
    signed_in(client, "Operator")

    assert client.post(f"/admin/alerts/channel/{channel.pk}/send-test/").status_code == 403
    page = client.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()
    assert 'name="url"' not in page and "send-test" not in page
    assert not Notification.objects.exists()


# --- escalation, silences, windows, the ledger, SLOs --------------------------------------------


def test_an_escalation_policy_with_its_steps_is_saved_and_audited(client):
    pager = make_channel(name="Pager")
    signed_in(client, "Admin")
    data = {"name": "Night ladder", "description": "", "steps-TOTAL_FORMS": "2", "steps-INITIAL_FORMS": "0",
            "steps-MIN_NUM_FORMS": "1", "steps-MAX_NUM_FORMS": "1000",
            "steps-0-level": "1", "steps-0-after_minutes": "15", "steps-0-channels": [str(pager.pk)],
            "steps-1-level": "2", "steps-1-after_minutes": "45", "steps-1-channels": [str(pager.pk)], "_save": "Save"}

    response = client.post("/admin/alerts/escalationpolicy/add/", data)

    assert response.status_code == 302
    policy = EscalationPolicy.objects.get()
    assert [(s.level, s.after_minutes) for s in policy.steps.all()] == [(1, 15), (2, 45)]
    steps = AuditEntry.objects.get(action="escalationpolicy.steps_changed").changes["steps"]
    assert steps[1] == {"level": 2, "after_minutes": 45, "channels": ["Pager"]}


def test_silences_are_read_in_the_admin_and_ended_through_the_service(client):
    operator = signed_in(client, "Operator")
    silence = services.create_silence(matchers='host="a"', comment="x", by=operator, duration=timedelta(hours=1))

    assert client.get(f"/admin/alerts/silence/{silence.pk}/change/").status_code == 200
    assert client.get("/admin/alerts/silence/add/").status_code == 403
    client.post("/admin/alerts/silence/", {"action": "expire_selected", "_selected_action": [silence.pk]})

    silence.refresh_from_db()
    assert silence.ended_by == operator
    assert AuditEntry.objects.filter(action="silence.expired", actor=operator).exists()
    assert Silence.objects.count() == 1  # nothing deleted


def test_an_operator_adds_a_maintenance_window_with_checked_matchers(client):
    operator = signed_in(client, "Operator")
    data = {"name": "Sunday patching", "matchers": 'team="content"', "days": ["6"], "start_time": "02:00",
            "end_time": "04:00", "timezone": "Asia/Kolkata", "enabled": "on", "comment": "", "_save": "Save"}

    bad = client.post("/admin/alerts/maintenancewindow/add/", {**data, "matchers": 'team="content'})
    assert "matchers" in field_errors(bad)
    assert client.post("/admin/alerts/maintenancewindow/add/", data).status_code == 302

    window = MaintenanceWindow.objects.get()
    assert window.days == [6] and window.created_by == operator
    assert AuditEntry.objects.filter(action="maintenancewindow.created", actor=operator).exists()
    assert "Sunday patching" in client.get("/admin/alerts/silences/").content.decode()


def test_the_notification_ledger_is_read_only(client):
    notification = Notification.objects.create(channel_name="Ops", dedupe_key="k", kind="firing", title="T", body="B")
    signed_in(client, "Admin")

    assert client.get(f"/admin/alerts/notification/{notification.pk}/change/").status_code == 200
    assert client.post(f"/admin/alerts/notification/{notification.pk}/change/", {"title": "X"}).status_code == 403
    assert client.get(f"/admin/alerts/notification/{notification.pk}/delete/").status_code == 403


def test_an_admin_edits_an_slo_and_bad_objectives_are_field_errors(client):
    signed_in(client, "Admin")
    data = {"name": "Delivery success", "description": "", "indicator": "delivery_success", "params": "{}",
            "objective": "99.5", "window_days": "30", "enabled": "on", "burn_rate_alerts": "on",
            "severity": "high", "_save": "Save"}

    bad = client.post("/admin/alerts/slo/add/", {**data, "objective": "120"})
    assert "objective" in field_errors(bad)
    assert client.post("/admin/alerts/slo/add/", data).status_code == 302
    assert AuditEntry.objects.filter(action="slo.created").exists()


def test_the_rule_list_shows_the_condition_and_open_alerts(client):
    rule = make_rule(name="Gauge high", threshold=10.0, window_seconds=300, aggregation="avg")
    make_alert(rule)
    make_alert(rule, status="resolved")
    signed_in(client, "Viewer")

    page = client.get("/admin/alerts/rule/").content.decode()

    assert "avg(opscenter_test_gauge[5m]) &gt; 10" in page
    assert re.search(r'<a href="/admin/alerts/">1</a>', page)


def test_a_rule_saved_in_the_admin_is_evaluated_with_its_new_threshold(client):
    rule = make_rule(threshold=100.0, aggregation="last")
    gauge_history([20] * 5)
    signed_in(client, "Admin")

    client.post(f"/admin/alerts/rule/{rule.pk}/change/", rule_data(name=rule.name, aggregation="last",
                                                                   threshold="10"))
    evaluation.run_cycle()

    rule.refresh_from_db()
    assert rule.threshold == 10 and rule.alerts.filter(status="firing").exists()
    assert timezone.now() - rule.updated_at < timedelta(minutes=1)


def slo_data(**overrides) -> dict:
    data = {"name": "Site uptime", "description": "", "indicator": "health_uptime", "params": '{"check": "Nowhere"}',
            "objective": "99.9", "window_days": "30", "enabled": "on", "burn_rate_alerts": "on", "severity": "high",
            "_save": "Save"}
    return {**data, **overrides}


def test_the_slo_editor_checks_the_indicator_settings_and_saves_through_the_service(client):
    from alerts.models import SLO
    from monitoring.health.models import HealthCheck

    signed_in(client, "Admin")
    refused = client.post("/admin/alerts/slo/add/", slo_data())
    HealthCheck.objects.create(name="Public site", kind="http", url="https://example.com/")
    saved = client.post("/admin/alerts/slo/add/", slo_data(params='{"check": "Public site"}'))

    assert refused.status_code == 200
    assert "there is no health check named “Nowhere”" in refused.content.decode()
    assert not SLO.objects.filter(name="Site uptime", params__check="Nowhere").exists()
    assert saved.status_code == 302, saved.content.decode()[:2000]
    slo = SLO.objects.get(name="Site uptime")
    assert AuditEntry.objects.filter(action="slo.created", target_id=str(slo.pk)).exists()
    assert Rule.objects.filter(builtin_key=f"slo:{slo.pk}:fast").exists()
