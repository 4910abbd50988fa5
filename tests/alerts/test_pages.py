"""The alerts pages: the list, an alert's page, silences, the actions on them, and the sidebar badge."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alerts import services
from alerts.models import Alert, AlertEvent, EvaluatorState, Notification, NotificationAttempt, Silence
from opscenter import live as live_events
from opscenter import navigation
from opscenter.models import AuditEntry
from tests.factories import make_user

from .factories import make_alert, make_channel, make_rule

pytestmark = pytest.mark.django_db

ALERTS = "/admin/alerts/"
SILENCES = "/admin/alerts/silences/"
JSON = {"HTTP_ACCEPT": "application/json"}
ROLES = ["Viewer", "Reviewer", "Operator", "Admin"]


@pytest.fixture(autouse=True)
def _fresh_sidebar():
    navigation.clear_sidebar_cache()
    yield
    navigation.clear_sidebar_cache()


class CaptureLive:
    """Record what opscenter.live sends (after commit) instead of sending it."""

    def __enter__(self):
        self.events, self.payloads = [], []
        self._send = live_events._send

        def record(topic, type, payload):
            self.events.append((topic, type))
            self.payloads.append(payload)

        live_events._send = record
        return self

    def __exit__(self, *exc):
        live_events._send = self._send


def signed_in(client, role: str, **fields):
    user = make_user(role, **fields)
    client.force_login(user)
    return user


def action(alert: Alert, verb: str) -> str:
    return reverse(f"admin:alerts_alert_{verb}", args=[alert.pk])


def cards(page: str) -> dict[str, str]:
    """The cards of the alerts page by alert id (without the template for live ones)."""
    page = page.split("<template data-card-template>")[0]
    found = re.findall(r'<article class="al-card" data-alert="(\d+)"(.*?)</article>', page, re.S)
    return {pk: body for pk, body in found}


def section(page: str, name: str) -> str:
    match = re.search(rf'<section class="al-group" data-group="{name}".*?</section>', page, re.S)
    return match.group(0) if match else ""


# --- the alerts page ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_alerts_page_but_only_operators_and_admins_get_the_buttons(client, role):
    alert = make_alert(make_rule(name="Disk almost full", severity="critical"), labels={"host": "web-1"})
    signed_in(client, role)

    page = client.get(ALERTS).content.decode()

    card = cards(page)[str(alert.pk)]
    assert "Disk almost full" in card and "host" in card and "web-1" in card
    acts = role in ("Operator", "Admin")
    assert (f'action="{action(alert, "acknowledge")}"' in card) is acts
    assert (f'action="{action(alert, "silence")}"' in card) is acts
    assert ("acknowledging and silencing need the Operator role" in page) is not acts


def test_firing_pending_and_resolved_alerts_show_in_their_sections_worst_first(client):
    low = make_alert(make_rule(name="Low one", severity="low"))
    critical = make_alert(make_rule(name="Critical one", severity="critical"), value=97.12345)
    pending = make_alert(make_rule(name="Pending one", severity="medium"), status="pending")
    resolved = make_alert(make_rule(name="Resolved one", severity="high"), status="resolved")
    signed_in(client, "Viewer")

    page = client.get(ALERTS).content.decode()

    firing = section(page, "firing")
    assert firing.index(f'data-alert="{critical.pk}"') < firing.index(f'data-alert="{low.pk}"')
    assert f'data-alert="{pending.pk}"' in section(page, "pending")
    assert f'data-alert="{resolved.pk}"' in section(page, "resolved")
    assert 'data-severity="critical"' in cards(page)[str(critical.pk)]
    assert "97.123" in cards(page)[str(critical.pk)]  # three decimals, as the page script prints it
    assert re.search(r'data-count="firing">2<', page) and re.search(r'data-count="pending">1<', page)


def test_markers_show_acknowledged_silenced_flapping_and_failed_notifications(client):
    operator = make_user("Operator", username="asha")
    alert = make_alert(flapping=True, notification_failed=True, escalation_level=2)
    services.acknowledge_alert(alert, by=operator, comment="On it")
    services.silence_alert(alert, by=operator, comment="Deploying", duration=timedelta(hours=1))
    quiet = make_alert()
    signed_in(client, "Viewer")

    page = client.get(ALERTS).content.decode()

    card = cards(page)[str(alert.pk)]
    for marker in ("ack", "silenced", "flapping", "notification-failed", "escalated"):
        assert re.search(rf'data-marker="{marker}">', card), marker  # shown: no hidden attribute
        assert re.search(rf'data-marker="{marker}" hidden', cards(page)[str(quiet.pk)]), marker
    assert "asha" in card and "On it" in card


def test_filters_by_severity_and_status(client):
    critical = make_alert(make_rule(severity="critical"))
    high = make_alert(make_rule(severity="high"))
    resolved = make_alert(make_rule(severity="critical"), status="resolved")
    signed_in(client, "Viewer")

    only_critical = cards(client.get(ALERTS, {"severity": "critical"}).content.decode())
    assert set(only_critical) == {str(critical.pk), str(resolved.pk)}
    firing_critical = client.get(ALERTS, {"severity": "critical", "status": "firing"}).content.decode()
    assert set(cards(firing_critical)) == {str(critical.pk)}
    assert 'data-group="resolved"' not in firing_critical
    assert 'data-filter-severity="critical"' in firing_critical and 'data-filter-status="firing"' in firing_critical
    unknown = client.get(ALERTS, {"severity": "catastrophic", "status": "exploded"}).content.decode()
    assert set(cards(unknown)) == {str(critical.pk), str(high.pk), str(resolved.pk)}


def test_the_evaluator_line_says_when_it_last_ran_and_counts_overruns(client):
    signed_in(client, "Viewer")
    assert "The evaluator has not run yet" in client.get(ALERTS).content.decode()

    now = timezone.now()
    EvaluatorState.objects.create(pk=1, cycles=10, last_started_at=now, last_finished_at=now, last_duration_ms=42,
                                  rules_evaluated=7, overruns=3, skipped=1)
    page = client.get(ALERTS).content.decode()
    assert "took 42 ms for 7 rules" in page and "3 overruns, 1 skipped" in page
    assert "It has stopped running" not in page

    EvaluatorState.objects.filter(pk=1).update(last_finished_at=now - timedelta(minutes=10))
    assert "It has stopped running" in client.get(ALERTS).content.decode()


def test_the_page_links_to_silences_rules_and_channels_and_slos_only_once_built(client):
    signed_in(client, "Admin")
    page = client.get(ALERTS).content.decode()
    assert f'href="{SILENCES}"' in page
    assert f'href="{reverse("admin:alerts_rule_changelist")}"' in page
    assert f'href="{reverse("admin:alerts_channel_changelist")}"' in page
    try:
        slos = reverse("admin:alerts_slos")
    except Exception:
        slos = None
    assert (slos is not None and f'href="{slos}"' in page) or (slos is None and ">SLOs<" not in page)


def test_users_without_the_alerts_permission_are_refused(client):
    alert = make_alert()
    user = make_user(is_staff=True)  # may enter the console, holds no permission
    client.force_login(user)

    for url in (ALERTS, reverse("admin:alerts_alert", args=[alert.pk]), SILENCES,
                reverse("admin:alerts_silence_matches") + "?matchers=a%3D%22b%22"):
        assert client.get(url).status_code == 403, url
    assert client.post(action(alert, "acknowledge"), {"comment": "x"}).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(ALERTS)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- acknowledging and the other actions --------------------------------------------------------


def test_an_operator_acknowledges_with_a_comment_from_the_list_and_returns_to_it(client):
    alert = make_alert()
    operator = signed_in(client, "Operator")

    response = client.post(action(alert, "acknowledge"), {"comment": "Restarting the worker", "next": ALERTS})

    assert response.status_code == 302 and response["Location"] == ALERTS
    alert.refresh_from_db()
    assert alert.acknowledged_by == operator and alert.ack_comment == "Restarting the worker"
    entry = AuditEntry.objects.get(action="alert.acknowledged", target_id=str(alert.pk))
    assert entry.actor == operator and entry.source == "ui"
    page = client.get(ALERTS).content.decode()
    assert "You acknowledged" in page  # the message after the redirect
    assert 'data-act="ack" hidden' in cards(page)[str(alert.pk)]  # no second Acknowledge button


def test_acknowledging_from_the_page_script_answers_json_and_a_second_gets_a_409_naming_the_first(client):
    alert = make_alert()
    signed_in(client, "Operator", username="asha")

    first = client.post(action(alert, "acknowledge"), {"comment": "mine"}, **JSON)
    assert first.status_code == 200
    body = first.json()
    assert body["ok"] and body["alert"]["acknowledged_by"] == "asha" and body["counts"]["unacknowledged"] == 0

    other = Client()
    other.force_login(make_user("Operator", username="ben"))
    second = other.post(action(alert, "acknowledge"), {"comment": "me too"}, **JSON)
    assert second.status_code == 409
    assert "asha acknowledged this alert" in second.json()["error"]
    assert second.json()["alert"]["acknowledged_by"] == "asha"
    alert.refresh_from_db()
    assert alert.ack_comment == "mine"


def test_a_conflict_without_the_script_is_a_readable_message(client):
    alert = make_alert(status="resolved")
    signed_in(client, "Operator")

    response = client.post(action(alert, "acknowledge"), {"comment": ""}, follow=True)

    assert "This alert is already resolved." in response.content.decode()


@pytest.mark.parametrize("role", ["Viewer", "Reviewer"])
@pytest.mark.parametrize("verb,data", [
    ("acknowledge", {"comment": "x"}), ("unacknowledge", {}), ("comment", {"comment": "x"}),
    ("resolve", {"note": "x"}), ("silence", {"duration": "1h", "comment": "x"}),
])
def test_read_only_roles_cannot_act_on_an_alert(client, role, verb, data):
    alert = make_alert()
    signed_in(client, role)

    assert client.post(action(alert, verb), data).status_code == 403
    alert.refresh_from_db()
    assert alert.status == "firing" and alert.acknowledged_at is None and alert.silenced_by_id is None
    assert not AlertEvent.objects.filter(alert=alert).exists()


def test_actions_need_the_csrf_token_and_a_post(client):
    alert = make_alert()
    operator = make_user("Operator")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(operator)

    assert strict.post(action(alert, "acknowledge"), {"comment": "x"}).status_code == 403
    client.force_login(operator)
    assert client.get(action(alert, "acknowledge")).status_code == 405
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


def test_withdrawing_commenting_and_resolving_by_hand_from_the_alert_page(client):
    alert = make_alert()
    operator = signed_in(client, "Operator")
    page = reverse("admin:alerts_alert", args=[alert.pk])
    client.post(action(alert, "acknowledge"), {"comment": "first look"})

    assert client.post(action(alert, "unacknowledge")).status_code == 302
    assert client.post(action(alert, "comment"), {"comment": "Disk cleaned"})["Location"] == page
    assert client.post(action(alert, "resolve"), {"note": "Fixed by hand"}).status_code == 302

    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_by == operator and alert.resolve_note == "Fixed by hand"
    kinds = list(alert.events.values_list("kind", "message"))
    assert kinds == [("acknowledged", "first look"), ("unacknowledged", ""), ("comment", "Disk cleaned"),
                     ("resolved", "Fixed by hand")]
    text = client.get(page).content.decode()
    for shown in ("first look", "Acknowledgement withdrawn", "Disk cleaned", "Fixed by hand"):
        assert shown in text


def test_an_empty_comment_is_a_field_error(client):
    alert = make_alert()
    signed_in(client, "Operator")

    page = client.post(action(alert, "comment"), {"comment": "  "})
    assert page.status_code == 400 and "Write a comment." in page.content.decode()
    scripted = client.post(action(alert, "comment"), {"comment": ""}, **JSON)
    assert scripted.status_code == 400 and scripted.json()["errors"]["comment"] == ["Write a comment."]


def test_silencing_an_alert_for_four_hours_also_ends_when_it_resolves(client):
    alert = make_alert(labels={"host": "web-1"})
    signed_in(client, "Operator")

    response = client.post(action(alert, "silence"), {"duration": "4h", "end_on_resolve": "on",
                                                     "comment": "Planned restart"}, **JSON)

    assert response.status_code == 200 and response.json()["alert"]["silenced"] is True
    silence = Silence.objects.get()
    assert silence.comment == "Planned restart" and silence.expire_on_resolve and silence.alert == alert
    assert timedelta(hours=3, minutes=59) < silence.ends_at - silence.starts_at <= timedelta(hours=4)
    assert 'host="web-1"' in silence.matchers
    assert "whichever comes first" in response.json()["message"]


def test_silencing_until_it_resolves_and_until_a_custom_time(client):
    first, second = make_alert(), make_alert()
    signed_in(client, "Operator")

    until_resolved = client.post(action(first, "silence"), {"duration": "resolved", "comment": "Known"}, **JSON)
    assert until_resolved.json()["message"].endswith("is silenced until it resolves.")
    later = timezone.localtime() + timedelta(hours=2)
    custom = client.post(action(second, "silence"), {"duration": "custom", "until": later.strftime("%Y-%m-%dT%H:%M"),
                                                    "comment": "Until the vendor calls back"}, **JSON)
    assert custom.status_code == 200
    silence = Silence.objects.get(alert=second)
    assert abs((silence.ends_at - later).total_seconds()) < 120 and not silence.expire_on_resolve


def test_silence_form_errors_come_back_on_their_fields(client):
    alert = make_alert()
    signed_in(client, "Operator")

    no_reason = client.post(action(alert, "silence"), {"duration": "1h", "comment": ""}, **JSON)
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"]["comment"] == ["Say why: the next person on call will read it."]
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    in_the_past = client.post(action(alert, "silence"), {"duration": "custom", "until": past, "comment": "x"})
    assert in_the_past.status_code == 400 and "The end must be in the future." in in_the_past.content.decode()
    assert not Silence.objects.exists()


def test_silencing_a_resolved_alert_is_refused_readably(client):
    alert = make_alert(status="resolved")
    signed_in(client, "Operator")

    response = client.post(action(alert, "silence"), {"duration": "1h", "comment": "late"}, **JSON)
    assert response.status_code == 409 and "nothing to silence" in response.json()["error"]


# --- an alert's page ---------------------------------------------------------------------------


def test_an_alerts_page_shows_everything_about_it(client, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = True
    channel = make_channel("json://hooks.example.com/hook", name="Ops webhook")
    rule = make_rule(name="Disk almost full", severity="critical", channels=[channel],
                     runbook_url="https://runbooks.example.com/disk", description="Disk of the web hosts.")
    alert = make_alert(rule, labels={"host": "web-1"}, summary="Disk at 91 %", value=91.25)
    services.record_event(alert, "firing", "Held for 5 min")
    notification = Notification.objects.create(channel=channel, channel_name=channel.name, dedupe_key="k1",
                                               kind="firing", title="[CRITICAL] Disk", body="…", status="failed",
                                               attempts=2, last_error="HTTP 500 from the receiver")
    notification.alerts.add(alert)
    NotificationAttempt.objects.create(notification=notification, ok=False, error="HTTP 500 from the receiver")
    signed_in(client, "Viewer")

    page = client.get(reverse("admin:alerts_alert", args=[alert.pk])).content.decode()

    for shown in ("Disk almost full", "Disk at 91 %", "91.25", "web-1", "Held for 5 min", "Ops webhook",
                  "HTTP 500 from the receiver", "https://runbooks.example.com/disk", "Disk of the web hosts.",
                  "last(opscenter_test_gauge[1m]) &gt; 10"):
        assert shown in page, shown
    assert re.search(r"Would notify</h3>\s*<ul class=\"al-labels\"><li>Ops webhook</li>", page)
    assert "You can read this alert" in page and 'data-action="acknowledge"' not in page
    assert reverse("admin:alerts_rule_change", args=[rule.pk]) in page  # Viewers may open the rule


def test_an_unknown_alert_is_a_404(client):
    signed_in(client, "Viewer")
    assert client.get(reverse("admin:alerts_alert", args=[999999])).status_code == 404


def test_an_operator_gets_the_acknowledge_form_first_on_the_alert_page(client):
    alert = make_alert()
    signed_in(client, "Operator")

    page = client.get(reverse("admin:alerts_alert", args=[alert.pk])).content.decode()
    actions = re.search(r'data-live-part="actions".*?</section>', page, re.S).group(0)
    assert actions.index('data-action="acknowledge"') < actions.index('data-action="silence"')
    assert 'data-action="resolve"' in actions and 'data-action="comment"' in actions


# --- silences --------------------------------------------------------------------------------------


def test_the_silences_page_lists_active_upcoming_and_ended_silences(client):
    operator = make_user("Operator")
    now = timezone.now()
    alert = make_alert(labels={"host": "web-1"})
    active = services.create_silence(matchers='host="web-1"', comment="Active one", by=operator,
                                     duration=timedelta(hours=1))
    upcoming = services.create_silence(matchers='host="web-2"', comment="Upcoming one", by=operator,
                                       starts_at=now + timedelta(hours=2), duration=timedelta(hours=1))
    ended = services.create_silence(matchers='host="web-3"', comment="Ended one", by=operator,
                                    duration=timedelta(hours=1))
    services.expire_silence(ended, by=operator)
    signed_in(client, "Viewer")

    page = client.get(SILENCES).content.decode()

    def part(name):
        return re.search(rf'data-live-part="{name}".*?</section>', page, re.S).group(0)

    assert f'id="silence-{active.pk}"' in part("active") and "Covers 1 open alert" in part("active")
    assert alert.rule_name in part("active")
    assert f'id="silence-{upcoming.pk}"' in part("upcoming")
    assert f'id="silence-{ended.pk}"' in part("ended") and "ended early" in part("ended")
    assert "New silence" not in page and "Expire now" not in page  # a Viewer reads only


def test_an_operator_creates_a_silence_by_matchers(client):
    make_alert(labels={"host": "web-1"})
    operator = signed_in(client, "Operator")

    response = client.post(reverse("admin:alerts_silence_create"),
                           {"matchers": 'host="web-1"', "duration": "2h", "comment": "Patching web-1"})

    silence = Silence.objects.get()
    assert response.status_code == 302 and response["Location"].endswith(f"#silence-{silence.pk}")
    assert silence.created_by == operator and silence.matchers == 'host="web-1"'
    assert abs((silence.ends_at - silence.starts_at) - timedelta(hours=2)) < timedelta(seconds=5)
    assert Alert.objects.get().silenced_by == silence
    assert AuditEntry.objects.filter(action="silence.created", actor=operator).exists()
    assert "covers 1 open alert" in client.get(SILENCES).content.decode()


def test_a_silence_can_end_at_a_given_time_instead_of_a_duration(client):
    signed_in(client, "Operator")
    end = timezone.localtime() + timedelta(days=2)

    client.post(reverse("admin:alerts_silence_create"), {"matchers": 'team="content"', "duration": "1h",
                                                         "ends_at": end.strftime("%Y-%m-%dT%H:%M"),
                                                         "comment": "Long migration"})

    assert abs((Silence.objects.get().ends_at - end).total_seconds()) < 60


@pytest.mark.parametrize("data,field,message", [
    ({"matchers": 'host="web-1', "duration": "1h", "comment": "x"}, "matchers", "cannot read a matcher"),
    ({"matchers": "", "duration": "1h", "comment": "x"}, "matchers", "Give at least one matcher"),
    ({"matchers": 'host="a"', "duration": "1h", "comment": " "}, "comment", "Say why"),
    ({"matchers": 'host="a"', "duration": "1h", "comment": "x", "ends_at": "2001-01-01T00:00"}, "ends_at",
     "The end must be after the start"),
    ({"matchers": 'host="a"', "duration": "1h", "comment": "x", "ends_at": "2999-01-01T00:00"}, "ends_at",
     "at most 90 days"),
])
def test_a_bad_silence_gets_field_errors_and_keeps_what_was_typed(client, data, field, message):
    signed_in(client, "Operator")

    response = client.post(reverse("admin:alerts_silence_create"), data)

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors.get(field, []))
    assert response.context["form"]["comment"].value() == data["comment"]
    assert not Silence.objects.exists()


def test_expiring_a_silence_unmutes_its_alerts_and_twice_is_a_message(client):
    alert = make_alert(labels={"host": "web-1"})
    operator = signed_in(client, "Operator")
    silence = services.create_silence(matchers='host="web-1"', comment="x", by=operator, duration=timedelta(hours=1))
    expire = reverse("admin:alerts_silence_expire", args=[silence.pk])

    assert client.post(expire).status_code == 302
    alert.refresh_from_db()
    silence.refresh_from_db()
    assert silence.ended_at is not None and silence.ended_by == operator and alert.silenced_by is None
    again = client.post(expire, follow=True)
    assert "This silence has already ended." in again.content.decode()


def test_viewers_cannot_create_or_expire_silences(client):
    operator = make_user("Operator")
    silence = services.create_silence(matchers='host="a"', comment="x", by=operator, duration=timedelta(hours=1))
    signed_in(client, "Viewer")

    assert client.post(reverse("admin:alerts_silence_create"),
                       {"matchers": 'host="b"', "duration": "1h", "comment": "x"}).status_code == 403
    assert client.post(reverse("admin:alerts_silence_expire", args=[silence.pk])).status_code == 403
    silence.refresh_from_db()
    assert silence.ended_at is None and Silence.objects.count() == 1


def test_the_matchers_hint_counts_the_open_alerts_a_silence_would_cover(client):
    make_alert(make_rule(name="Disk"), labels={"host": "web-1"})
    make_alert(make_rule(name="Memory"), labels={"host": "web-1"})
    make_alert(labels={"host": "web-2"})
    make_alert(labels={"host": "web-1"}, status="resolved")
    signed_in(client, "Viewer")
    url = reverse("admin:alerts_silence_matches")

    found = client.get(url, {"matchers": 'host="web-1"'}).json()
    assert found["count"] == 2 and {a["rule"] for a in found["alerts"]} == {"Disk", "Memory"}
    assert client.get(url, {"matchers": 'host=~"web-.*"'}).json()["count"] == 3
    bad = client.get(url, {"matchers": 'host=~"("'})
    assert bad.status_code == 400 and "invalid regular expression" in bad.json()["error"]
    assert client.get(url, {"matchers": ""}).json() == {"ok": True, "count": 0, "empty": True, "alerts": []}


def test_the_silence_link_from_an_alert_fills_in_its_labels(client):
    alert = make_alert(labels={"host": "web-1"})
    signed_in(client, "Operator")

    page = client.get(reverse("admin:alerts_alert", args=[alert.pk])).content.decode()
    link = re.search(r'href="(/admin/alerts/silences/\?matchers=[^"]+)"', page).group(1)
    form = client.get(link.replace("&amp;", "&")).context["form"]
    assert 'host="web-1"' in form["matchers"].value()


# --- the sidebar badge ------------------------------------------------------------------------------


def test_every_page_has_the_alerts_badge_slot_and_its_live_script_but_runs_no_count_query(client):
    make_alert()
    signed_in(client, "Reviewer")

    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/review/").content.decode()

    slot = re.search(r'<span class="[^"]*" data-nav-badge data-topic="alerts" data-key="unacknowledged" '
                     r'data-label="firing alerts nobody has acknowledged" hidden></span>', page)
    assert slot, "no alerts badge slot in the sidebar"
    assert "opscenter/nav_badges" in page
    # The count comes with the topic's snapshot: rendering a page never counts alerts.
    assert not [q for q in queries.captured_queries if "alerts_alert" in q["sql"]]


def test_the_badge_counts_come_with_the_alerts_snapshot_and_every_change(django_capture_on_commit_callbacks):
    first = make_alert()
    make_alert()
    make_alert(status="pending")
    make_alert(status="resolved")

    assert services.alerts_snapshot()["counts"]["unacknowledged"] == 2
    operator = make_user("Operator")
    with CaptureLive() as live, django_capture_on_commit_callbacks(execute=True):
        services.acknowledge_alert(first, by=operator)
    assert live.events == [("alerts", "alert.changed")]
    assert live.payloads[0]["counts"]["unacknowledged"] == 1


def test_users_who_may_not_see_alerts_get_no_alerts_link(client):
    client.force_login(make_user(is_staff=True))
    page = client.get("/admin/account/tokens/").content.decode()
    assert 'href="/admin/alerts/"' not in page


def test_the_alerts_link_in_the_sidebar_opens_the_alerts_page_and_is_marked_active_there(client):
    signed_in(client, "Viewer")
    page = client.get(ALERTS).content.decode()

    assert re.findall(r'<a href="([^"]+)" class="[^"]*\bactive"', page) == [ALERTS]
    assert client.get("/admin/section/alerts/")["Location"] == ALERTS
