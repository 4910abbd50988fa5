"""An inbound source's /health URL gets a health check, and the integration page reads it."""

from __future__ import annotations

import pytest
from django.utils import timezone

from advisors.inbound.models import InboundSource
from advisors.inbound.services import integration_overview
from monitoring.health.models import CheckState, HealthCheck

pytestmark = pytest.mark.django_db


def test_a_source_with_a_health_url_gets_a_check_that_follows_it(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        source = InboundSource.objects.create(slug="bot", name="Bot", health_url="https://bot.example.com/health")

    check = HealthCheck.objects.get(system_key="inbound:bot")
    assert (check.kind, check.url, check.is_webhook_service, check.enabled) == (
        "http", "https://bot.example.com/health", True, True)

    with django_capture_on_commit_callbacks(execute=True):
        source.health_url = "https://bot.example.com/healthz"
        source.save()
    check.refresh_from_db()
    assert check.url == "https://bot.example.com/healthz"

    with django_capture_on_commit_callbacks(execute=True):
        source.health_url = ""
        source.save()
    check.refresh_from_db()
    assert not check.enabled  # its history is kept


def test_the_integration_page_shows_the_source_down_when_its_check_is(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        source = InboundSource.objects.create(slug="bot", name="Bot", health_url="https://bot.example.com/health")
    source.last_event_at = timezone.now()
    source.save(update_fields=["last_event_at"])
    HealthCheck.objects.filter(system_key="inbound:bot").update(state=CheckState.DOWN, last_checked_at=timezone.now())

    [entry] = integration_overview()

    assert entry["status"] == "down"
    assert "health check" in entry["why"]
    assert entry["health"]["state"] == "down"
