"""The log viewer page and GET /api/v1/logs/: filters, full-text search, keyset pages, permissions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from monitoring.logs.models import Level, LogEntry, Source
from monitoring.registry import get_metric, read_metric
from tests.factories import make_user
from tests.logs.conftest import make_entry

API = "/api/v1/logs/"
TRACEBACK = 'Traceback (most recent call last):\n  File "deliver.py", line 3\nConnectionResetError: peer hung up'


@pytest.fixture
def entries(db, external_run):
    return {
        "old_info": make_entry("cycle planned for 40 advisors", level=Level.INFO, source=Source.AGENT,
                               ago=timedelta(hours=3), run=external_run, agent="ext-importer"),
        "warning": make_entry("disk /var is 91% full", level=Level.WARNING, source=Source.WORKER,
                              ago=timedelta(minutes=30), logger="monitoring.health"),
        "error": make_entry("delivery 17 failed", level=Level.ERROR, source=Source.WORKER, ago=timedelta(minutes=2),
                            logger="advisors.transports", context={"exception": TRACEBACK, "task": {"id": "t-1"}}),
        "critical": make_entry("web could not reach Redis", level=Level.CRITICAL, source=Source.WEB,
                               logger="django.request"),
    }


def client_for(role: str | None) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_login(make_user(role))
    return client


def messages(response) -> list[str]:
    return [row["message"] for row in response.json()["results"]]


# --- filters and search (API) ------------------------------------------------------------------


@pytest.mark.parametrize(("params", "expected"), [
    ({}, ["critical", "error", "warning", "old_info"]),
    ({"level": "warning"}, ["critical", "error", "warning"]),
    ({"level": "error"}, ["critical", "error"]),
    ({"source": "worker"}, ["error", "warning"]),
    ({"source": ["web", "agent"]}, ["critical", "old_info"]),
    ({"agent": "ext-importer"}, ["old_info"]),
    ({"logger": "advisors"}, ["error"]),
    ({"window": "1h"}, ["critical", "error", "warning"]),
    ({"window": "15m", "level": "error"}, ["critical", "error"]),
    ({"q": "disk"}, ["warning"]),
    ({"q": "DELIVERY failed"}, ["error"]),
    ({"q": "ConnectionResetError"}, ["error"]),  # found in the traceback, not the message
    ({"q": "advisors -cycle"}, []),
    ({"q": "nothing-like-this"}, []),
])
def test_filters_and_search_return_what_they_should(entries, params, expected):
    response = client_for("Operator").get(API, params)

    assert response.status_code == 200, response.content
    assert messages(response) == [entries[name].message for name in expected]


def test_run_and_time_range_filters(entries, external_run):
    client = client_for("Operator")
    now = entries["critical"].at

    assert messages(client.get(API, {"run": external_run.pk})) == [entries["old_info"].message]
    since = (now - timedelta(minutes=40)).isoformat()
    until = (now - timedelta(minutes=1)).isoformat()
    assert messages(client.get(API, {"since": since, "until": until})) == [entries["error"].message,
                                                                            entries["warning"].message]


@pytest.mark.postgres
def test_postgres_search_understands_phrases_and_uses_the_full_text_index(entries):
    client = client_for("Operator")

    assert messages(client.get(API, {"q": '"delivery 17"'})) == [entries["error"].message]
    assert messages(client.get(API, {"q": '"17 delivery"'})) == []
    assert messages(client.get(API, {"q": "disk or redis"})) == [entries["critical"].message, entries["warning"].message]

    from monitoring.logs.services import search

    sql, params = search(LogEntry.objects.all(), "hung up").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "logentry_search" in plan, plan


@pytest.mark.parametrize(("params", "field"), [
    ({"level": "loud"}, "level"),
    ({"source": "kitchen"}, "source"),
    ({"run": "seven"}, "run"),
    ({"since": "yesterday-ish"}, "since"),
    ({"window": "3w"}, "window"),
    ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ({"q": "x" * 201}, "q"),
])
def test_bad_filter_values_are_field_level_400s(entries, params, field):
    response = client_for("Operator").get(API, params)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]


def test_api_pages_with_cursors_newest_first(entries):
    client = client_for("Operator")

    first = client.get(API, {"page_size": 3}).json()
    second = client.get(first["next"]).json()

    assert [r["message"] for r in first["results"] + second["results"]] == [
        entries[name].message for name in ("critical", "error", "warning", "old_info")]
    assert second["next"] is None


def test_api_entry_has_its_context_level_name_and_run_link(entries, external_run):
    client = client_for("Operator")

    error = client.get(f"{API}{entries['error'].pk}/").json()
    info = client.get(f"{API}{entries['old_info'].pk}/").json()

    assert error["level"] == "error"
    assert error["context"]["exception"] == TRACEBACK
    assert info["run"] == external_run.pk
    assert info["run_url"] == reverse("admin:agents_run", args=[external_run.pk])


def test_the_api_is_read_only(entries):
    response = client_for("Admin").post(API, {"message": "forged"}, format="json")

    assert response.status_code in {403, 405}  # no role holds logs.add_logentry; nor is there a POST
    assert not LogEntry.objects.filter(message="forged").exists()


@pytest.mark.parametrize(("role", "status"), [
    ("anonymous", 401), (None, 403), ("Viewer", 403), ("Reviewer", 403), ("Operator", 200), ("Admin", 200),
])
def test_only_admins_and_operators_may_read_the_logs_through_the_api(entries, role, status):
    assert client_for(role).get(API).status_code == status


# --- the page ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("Viewer", 403), ("Reviewer", 403), ("Operator", 200), ("Admin", 200)])
def test_only_admins_and_operators_may_open_the_viewer(entries, client, role, status):
    client.force_login(make_user(role))

    assert client.get(reverse("admin:logs")).status_code == status


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("admin:logs"))

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_the_viewer_shows_entries_with_traceback_context_and_run_links(entries, client, external_run):
    client.force_login(make_user("Operator"))

    html = client.get(reverse("admin:logs")).content.decode()

    for entry in entries.values():
        assert entry.message in html
    assert "ConnectionResetError: peer hung up" in html  # inside the expandable row
    assert reverse("admin:agents_run", args=[external_run.pk]) in html
    assert 'data-live="true"' in html


def test_the_viewer_filters_like_the_api(entries, client):
    client.force_login(make_user("Operator"))

    html = client.get(reverse("admin:logs"), {"level": "error", "q": "delivery"}).content.decode()

    assert entries["error"].message in html
    assert entries["critical"].message not in html and entries["warning"].message not in html


def test_the_viewer_shows_field_errors_for_bad_filters(entries, client):
    client.force_login(make_user("Operator"))

    response = client.get(reverse("admin:logs"), {"level": "loud", "since": "soon"})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Select a valid choice" in html
    assert "Enter a valid date/time" in html
    assert entries["error"].message not in html


def test_the_viewer_pages_by_keyset(db, client):
    made = [make_entry(f"entry {i:03d}") for i in range(120)]
    client.force_login(make_user("Operator"))

    first = client.get(reverse("admin:logs"))
    older = first.context["older_query"]
    second = client.get(f"{reverse('admin:logs')}?{older}")

    assert [e.pk for e in first.context["entries"]] == [e.pk for e in made[::-1][:50]]
    assert [e.pk for e in second.context["entries"]] == [e.pk for e in made[::-1][50:100]]
    assert f"before={made[-50].pk}" in older
    assert second.context["live"] is False


def test_the_live_fetch_returns_only_newer_matching_rows(entries, client):
    client.force_login(make_user("Operator"))
    newer = make_entry("fresh failure", level=Level.ERROR)
    make_entry("fresh notice", level=Level.WARNING)

    response = client.get(reverse("admin:logs"), {"partial": "1", "after": entries["critical"].pk, "level": "error"})

    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-id="{newer.pk}"' in html
    assert "fresh notice" not in html and entries["critical"].message not in html
    assert response["X-Logs-More"] == "0"


def test_a_bad_cursor_is_a_400(db, client):
    client.force_login(make_user("Operator"))

    assert client.get(reverse("admin:logs"), {"before": "-3"}).status_code == 400


# --- the metric --------------------------------------------------------------------------------


def test_recent_entries_by_level_are_a_registered_metric(entries):
    metric = get_metric("opscenter_log_entries_recent")

    values = {sample.labels["level"]: sample.value for sample in read_metric(metric)}

    # The warning (30 min) and the info line (3 h) are outside the 5-minute window.
    assert values == {"debug": 0, "info": 0, "warning": 0, "error": 1, "critical": 1}
