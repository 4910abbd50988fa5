from __future__ import annotations

import contextlib

import pytest
from django.db import connection
from rest_framework.test import APIClient

import tests.agents.sample_agents  # noqa: F401  (test agents exist in every test database, e2e included)
from opscenter.redis import redis_client
from tests.factories import make_user


@pytest.fixture(autouse=True)
def _clean_redis_and_cache():
    """Each test starts with an empty Redis (throttle counters, lockouts, live sequences)."""
    # A test may have pointed REDIS_URL at a server it stopped.
    with contextlib.suppress(Exception):
        redis_client().flushdb()
    yield


@pytest.fixture(autouse=True)
def _fresh_channel_layers():
    """A channel layer holds connections bound to the event loop that made them; each test gets its own."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    # The real hasher is slow on purpose; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def api_client() -> APIClient:
    return APIClient(enforce_csrf_checks=True)


@pytest.fixture
def user_factory(db):
    return make_user


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://…"))
