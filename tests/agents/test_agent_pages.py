"""The agents console pages: who sees what, triggering through the form, cancel and retry."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import Agent, AgentRun, RunStatus
from agents.registry import sync_agents
from opscenter.models import AuditEntry
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def echo():
    sync_agents()
    return Agent.objects.get(slug="test-echo")


def _client(client, role):
    client.force_login(make_user(role))
    return client


@pytest.mark.parametrize("role", ["Viewer", "Reviewer", "Operator", "Admin"])
def test_every_role_sees_the_tree_agent_page_and_run_page(client, echo, role):
    run = AgentRun.objects.create(agent=echo, params={"message": "x"})
    c = _client(client, role)
    tree = c.get(reverse("admin:agents_hierarchy"))
    assert tree.status_code == 200
    assert b'data-agent="test-echo"' in tree.content
    assert c.get(reverse("admin:agents_agent", args=["test-echo"])).status_code == 200
    assert c.get(reverse("admin:agents_run", args=[run.pk])).status_code == 200
    assert c.get(reverse("admin:agents_run_state", args=[run.pk])).json()["run"]["id"] == run.pk
    can_trigger = role in {"Operator", "Admin"}
    assert (b"Review and start" in c.get(reverse("admin:agents_agent", args=["test-echo"])).content) == can_trigger


@pytest.mark.parametrize("role", ["Viewer", "Reviewer"])
def test_viewers_and_reviewers_cannot_trigger_cancel_or_retry(client, echo, role):
    run = AgentRun.objects.create(agent=echo, params={"message": "x"}, status=RunStatus.FAILED)
    c = _client(client, role)
    url = reverse("admin:agents_trigger", args=["test-echo"])
    assert c.post(url, {"message": "hi", "confirmed": "1"}).status_code == 403
    assert c.post(reverse("admin:agents_run_cancel", args=[run.pk])).status_code == 403
    assert c.post(reverse("admin:agents_run_retry", args=[run.pk])).status_code == 403
    assert AgentRun.objects.count() == 1


def test_trigger_form_shows_field_errors_then_asks_for_confirmation_then_queues(client, echo):
    c = _client(client, "Operator")
    url = reverse("admin:agents_trigger", args=["test-echo"])
    bad = c.post(url, {"message": "", "steps": "many"})
    assert bad.status_code == 400
    assert "This field is required." in bad.content.decode() and "Enter a whole number." in bad.content.decode()
    confirm = c.post(url, {"message": "hello", "steps": "2", "mode": "shout"})
    assert confirm.status_code == 200 and b"Start run" in confirm.content
    assert not AgentRun.objects.exists()
    done = c.post(url, {"message": "hello", "steps": "2", "mode": "shout", "confirmed": "1",
                        "next": reverse("admin:agents_hierarchy")})
    run = AgentRun.objects.get()
    assert done.status_code == 302 and done["Location"].endswith(f"?run={run.pk}")
    assert run.status == RunStatus.QUEUED and run.params == {"message": "hello", "steps": 2, "delay": 0,
                                                             "mode": "shout"}
    assert AuditEntry.objects.filter(action="agent.triggered", target_id=str(run.pk)).exists()


def test_cancel_a_queued_run_from_its_page(client, echo):
    run = AgentRun.objects.create(agent=echo, params={"message": "x"})
    c = _client(client, "Operator")
    c.post(reverse("admin:agents_run_cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_retry_with_edited_parameters_from_the_run_page(client, echo):
    run = AgentRun.objects.create(agent=echo, params={"message": "x", "steps": 3, "delay": 0, "mode": "plain"},
                                  status=RunStatus.FAILED)
    c = _client(client, "Admin")
    response = c.post(reverse("admin:agents_run_retry", args=[run.pk]),
                      {"edited": "1", "message": "again", "steps": "1", "mode": "plain"})
    retry = AgentRun.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302 and retry.retry_of_id == run.pk
    assert retry.params["message"] == "again" and retry.params["steps"] == 1


def test_admin_sets_a_schedule_and_sees_the_next_runs(client, echo):
    c = _client(client, "Admin")
    bad = c.post(reverse("admin:agents_schedule", args=["test-slow"]), {"cron": "61 * * *", "timezone": "Mars/Base"})
    assert bad.status_code == 400
    c.post(reverse("admin:agents_schedule", args=["test-slow"]),
           {"cron": "30 20 * * *", "timezone": "Asia/Kolkata", "enabled": "on"})
    slow = Agent.objects.get(slug="test-slow")
    assert slow.schedule is not None and slow.schedule.enabled
    page = c.get(reverse("admin:agents_agent", args=["test-slow"])).content.decode()
    assert "30 20 * * *" in page and "20:30" in page


def test_operator_cannot_change_schedules(client, echo):
    c = _client(client, "Operator")
    response = c.post(reverse("admin:agents_schedule", args=["test-echo"]),
                      {"cron": "30 20 * * *", "timezone": "UTC", "enabled": "on"})
    assert response.status_code == 403


def test_admin_model_pages_are_not_shadowed_by_agent_pages(client, echo):
    c = _client(client, "Admin")
    assert c.get(reverse("admin:agents_agent_changelist")).status_code == 200
    assert c.get(reverse("admin:agents_agentrun_changelist")).status_code == 200
    assert c.get(reverse("admin:agents_agent_change", args=[echo.pk])).status_code == 200


@pytest.mark.django_db
def test_run_page_shows_metrics_even_one_named_items(client, echo):
    # `items` is what most agents count; a template reading dict.items would take the number.
    run = AgentRun.objects.create(agent=echo, status=RunStatus.SUCCEEDED, metrics={"items": 20, "tokens": 3})
    response = _client(client, "Viewer").get(reverse("admin:agents_run", args=[run.pk]))
    assert response.status_code == 200
    text = response.content.decode()
    assert "<dt>items</dt><dd>20</dd>" in text and "<dt>tokens</dt><dd>3</dd>" in text


@pytest.mark.django_db
def test_next_runs_are_shown_in_the_schedules_own_time_zone(client, echo, settings):
    import re

    settings.TIME_ZONE = "UTC"  # the site's zone differs from the schedule's
    c = _client(client, "Admin")
    c.post(reverse("admin:agents_schedule", args=["test-slow"]),
           {"cron": "30 20 * * *; 0 5 * * *", "timezone": "Asia/Kolkata", "enabled": "on"})
    page = c.get(reverse("admin:agents_agent", args=["test-slow"])).content.decode()
    listed = re.search(r'<ol class="ag-next">(.*?)</ol>', page, re.S).group(1)
    times = re.findall(r">\w{3} \d{1,2} \w{3} \d{4}, (\d\d:\d\d)<", listed)
    assert times and set(times) == {"20:30", "05:00"}, times
