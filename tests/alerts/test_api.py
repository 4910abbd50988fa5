"""The alerting API: alerts (list, acknowledge, resolve, comment, silence), silences, rules and channels."""

from __future__ import annotations

from unittest import mock

import pytest
from rest_framework.test import APIClient

from alerts.models import Alert, Channel, Rule, Silence
from opscenter.models import AuditEntry
from opscenter.services import create_api_token
from tests.factories import make_user

from .factories import make_alert, make_channel, make_rule

pytestmark = pytest.mark.django_db


def api_for(role: str | None) -> APIClient:
    client = APIClient()
    client.force_login(make_user(role))
    return client


def token_client(role: str, scope: str) -> APIClient:
    _, secret = create_api_token(make_user(role), name="script", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.mark.parametrize("role", ["Viewer", "Reviewer", "Operator", "Admin"])
def test_every_role_lists_alerts_and_filters_them(role):
    firing = make_alert(make_rule(severity="critical"))
    make_alert(status="resolved")

    response = api_for(role).get("/api/v1/alerts/?open=true&severity=critical")

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [firing.pk]


def test_an_alert_shows_its_timeline_and_notification_log():
    alert = make_alert()
    operator = make_user("Operator")
    from alerts import services

    services.acknowledge_alert(alert, by=operator, comment="on it")

    body = api_for("Viewer").get(f"/api/v1/alerts/{alert.pk}/").json()

    assert body["acknowledged_by"] == operator.username
    assert [e["kind"] for e in body["timeline"]] == ["acknowledged"]
    assert body["notifications"] == []


def test_an_operator_acknowledges_through_the_api_and_a_second_gets_409():
    alert = make_alert()

    first = api_for("Operator").post(f"/api/v1/alerts/{alert.pk}/acknowledge", {"comment": "mine"}, format="json")
    second = api_for("Admin").post(f"/api/v1/alerts/{alert.pk}/acknowledge/", {}, format="json")

    assert first.status_code == 200 and first.json()["ack_comment"] == "mine"
    assert second.status_code == 409 and "acknowledged this alert" in second.json()["error"]["message"]
    assert AuditEntry.objects.filter(action="alert.acknowledged", source="api").count() == 1


@pytest.mark.parametrize("action", ["acknowledge", "resolve", "silence", "comment"])
def test_viewers_and_reviewers_cannot_act_on_alerts(action):
    alert = make_alert()

    for role in ("Viewer", "Reviewer"):
        response = api_for(role).post(f"/api/v1/alerts/{alert.pk}/{action}", {"comment": "x", "duration_minutes": 5},
                                      format="json")
        assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None and alert.status == "firing" and not Silence.objects.exists()


def test_a_read_only_token_cannot_acknowledge_but_a_write_token_can():
    alert = make_alert()

    refused = token_client("Operator", "read").post(f"/api/v1/alerts/{alert.pk}/acknowledge", {}, format="json")
    allowed = token_client("Operator", "write").post(f"/api/v1/alerts/{alert.pk}/acknowledge", {}, format="json")

    assert refused.status_code == 403 and allowed.status_code == 200


def test_resolving_and_silencing_an_alert():
    alert = make_alert(labels={"host": "web-1"})
    client = api_for("Operator")

    silenced = client.post(f"/api/v1/alerts/{alert.pk}/silence", {"comment": "Fixing", "until_resolved": True},
                           format="json")
    resolved = client.post(f"/api/v1/alerts/{alert.pk}/resolve", {"note": "done"}, format="json")

    assert silenced.status_code == 201 and silenced.json()["expire_on_resolve"] is True
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert Silence.objects.get().ended_at is not None
    missing = client.post(f"/api/v1/alerts/{alert.pk}/silence", {"comment": "x"}, format="json")
    assert missing.status_code == 400 and "duration_minutes" in missing.json()["error"]["fields"]


def test_silences_are_created_changed_and_ended_with_field_errors_for_bad_input():
    client = api_for("Operator")

    bad = client.post("/api/v1/alerts/silences/", {"matchers": 'host=~"(x"', "comment": ""}, format="json")
    created = client.post("/api/v1/alerts/silences/", {"matchers": 'host="db"', "comment": "Patching",
                                                       "duration_minutes": 60}, format="json")

    assert bad.status_code == 400 and {"matchers", "comment"} <= set(bad.json()["error"]["fields"])
    assert created.status_code == 201 and created.json()["state"] == "active"
    silence_id = created.json()["id"]
    changed = client.patch(f"/api/v1/alerts/silences/{silence_id}/", {"comment": "Longer patching"}, format="json")
    assert changed.status_code == 200 and changed.json()["comment"] == "Longer patching"
    assert client.delete(f"/api/v1/alerts/silences/{silence_id}/").status_code == 204
    assert client.delete(f"/api/v1/alerts/silences/{silence_id}/").status_code == 409
    listed = client.get("/api/v1/alerts/silences/?state=ended").json()["results"]
    assert [row["id"] for row in listed] == [silence_id]
    assert api_for("Viewer").post("/api/v1/alerts/silences/", {"matchers": 'a="b"', "comment": "x",
                                                               "duration_minutes": 5}, format="json").status_code == 403


def test_only_admins_write_rules_and_bad_rules_get_field_errors():
    payload = {"name": "Queue backlog", "metric": "opscenter_celery_queue_length", "aggregation": "avg",
               "window_seconds": 300, "comparator": "gt", "threshold": 100, "severity": "high"}

    assert api_for("Operator").post("/api/v1/alerts/rules/", payload, format="json").status_code == 403
    bad = api_for("Admin").post("/api/v1/alerts/rules/", {**payload, "metric": "opscenter_no_such_metric",
                                                          "matchers": "status"}, format="json")
    created = api_for("Admin").post("/api/v1/alerts/rules/", payload, format="json")

    assert bad.status_code == 400 and {"metric", "matchers"} <= set(bad.json()["error"]["fields"])
    assert created.status_code == 201, created.json()
    rule = Rule.objects.get(name="Queue backlog")
    assert AuditEntry.objects.filter(action="alert_rule.created", target_id=str(rule.pk), source="api").exists()


def test_deleting_a_rule_resolves_its_open_alerts_and_keeps_their_history():
    rule = make_rule(metric="opscenter_celery_queue_length")
    alert = make_alert(rule)

    response = api_for("Admin").delete(f"/api/v1/alerts/rules/{rule.pk}/")

    assert response.status_code == 204
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.rule is None and alert.rule_name == rule.name
    assert Alert.objects.count() == 1


def test_a_channels_url_is_never_shown_back(settings):
    channel = make_channel(url="slack://T0001/B0002/secretsecretsecret1234")

    listed = api_for("Admin").get("/api/v1/alerts/channels/").json()["results"]
    one = api_for("Viewer").get(f"/api/v1/alerts/channels/{channel.pk}/")

    assert "secretsecret" not in str(listed) and "secretsecret" not in one.content.decode()
    assert listed[0]["masked_url"] == "slack://••••1234"


def test_a_channel_is_created_through_the_api_and_its_url_validated():
    client = api_for("Admin")

    refused = client.post("/api/v1/alerts/channels/", {"name": "Local hook", "url": "json://127.0.0.1:9/hook"},
                          format="json")
    created = client.post("/api/v1/alerts/channels/", {"name": "Ops Slack",
                                                       "url": "slack://T0001A/B0002B/abcdefghijklmnopqrstuvwx"},
                          format="json")

    assert refused.status_code == 400 and "url" in refused.json()["error"]["fields"]
    assert created.status_code == 201 and "url" not in created.json()
    audit = AuditEntry.objects.get(action="alert_channel.created")
    assert "abcdefghijklmnop" not in str(audit.changes)
    assert not Channel.objects.filter(name="Local hook").exists()


def test_sending_a_test_message_is_for_admins_and_reports_the_outcome():
    channel = make_channel()
    with mock.patch("alerts.notify.send_test", return_value=(False, "HTTP 500 from the receiver")) as send:
        refused = api_for("Operator").post(f"/api/v1/alerts/channels/{channel.pk}/test")
        answered = api_for("Admin").post(f"/api/v1/alerts/channels/{channel.pk}/test")

    assert refused.status_code == 403
    assert answered.status_code == 200 and answered.json() == {"ok": False, "detail": "HTTP 500 from the receiver"}
    assert send.call_count == 1


def test_the_evaluator_status_is_readable_by_every_role():
    response = api_for("Viewer").get("/api/v1/alerts/evaluator/")

    assert response.status_code == 200 and response.json()["cycles"] == 0
    assert response.json()["interval_seconds"] > 0


def test_the_api_docs_describe_the_alerting_endpoints():
    schema = api_for("Viewer").get("/api/schema/").content.decode()

    for path in ("/api/v1/alerts/{id}/acknowledge", "/api/v1/alerts/silences/", "/api/v1/alerts/rules/",
                 "/api/v1/alerts/channels/{id}/test"):
        assert path in schema
