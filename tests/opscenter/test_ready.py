"""Liveness and readiness endpoints: /api/v1/health and /api/v1/ready."""

from __future__ import annotations

import functools

import pytest

from opscenter import readiness
from tests.factories import make_user
from tests.services import RedisServer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _short_worker_ping(monkeypatch):
    # No Celery worker runs in these tests, so the broker ping always waits its whole
    # timeout; keep the real round trip but shorten the wait.
    monkeypatch.setattr(readiness, "check_workers", functools.partial(readiness.check_workers, timeout=0.2))


@pytest.fixture
def throwaway_redis(tmp_path, settings):
    """A second Redis that the test may stop and start; REDIS_URL points at it."""
    server = RedisServer(tmp_path).start()
    settings.REDIS_URL = server.url  # redis_client() caches per URL: this gets a new client
    yield server
    server.stop()


def components(response) -> dict[str, dict]:
    return {component["name"]: component for component in response.json()["components"]}


def test_health_answers_without_authentication(api_client):
    response = api_client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_reports_redis_down_while_it_is_stopped_and_up_after_it_restarts(api_client, throwaway_redis):
    response = api_client.get("/api/v1/ready")
    assert components(response)["redis"]["ok"] is True

    throwaway_redis.stop()
    response = api_client.get("/api/v1/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    down = components(response)
    assert down["redis"]["ok"] is False
    assert down["database"]["ok"] is True
    # With the broker down the worker and beat cannot be asked: reported, not probed.
    assert down["worker"]["ok"] is False and down["worker"]["latency_ms"] is None
    assert down["beat"]["ok"] is False and down["beat"]["latency_ms"] is None

    throwaway_redis.start()
    response = api_client.get("/api/v1/ready")
    # No Celery worker runs here, so the overall status stays not_ready.
    assert response.status_code == 503
    assert components(response)["redis"]["ok"] is True


def test_ready_details_are_hidden_from_anonymous_callers(api_client):
    response = api_client.get("/api/v1/ready")

    assert response.json()["components"]
    assert all("detail" not in component for component in response.json()["components"])


def test_ready_details_are_shown_to_a_signed_in_viewer(api_client):
    api_client.force_login(make_user("Viewer"))

    response = api_client.get("/api/v1/ready")

    listed = components(response)
    assert set(listed) == set(readiness.COMPONENTS)
    assert all("detail" in component for component in listed.values())
    assert listed["redis"]["detail"] == "PONG"
    assert listed["worker"]["detail"] == "no worker answered"
