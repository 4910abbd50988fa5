"""Repeated failed sign-ins lock the client out; a spoofed X-Forwarded-For does not help."""

from __future__ import annotations

import pytest

from opscenter.net import client_ip_from
from tests.factories import PASSWORD, make_user

LOGIN = "/admin/login/"


def attempt(client, username, password, **headers):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR="203.0.113.7", **headers)


@pytest.mark.django_db
def test_five_failures_lock_the_address_even_for_the_right_password(client, settings):
    settings.AXES_FAILURE_LIMIT = 5
    make_user("Viewer", username="rita")
    for _ in range(4):
        assert attempt(client, "rita", "wrong").status_code == 200  # the form with an error
    locked = attempt(client, "rita", "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert attempt(client, "rita", PASSWORD).status_code == 429


@pytest.mark.django_db
def test_spoofed_forwarded_for_from_an_untrusted_client_cannot_bypass_lockout(client, settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.TRUSTED_PROXIES = []
    make_user("Viewer", username="rita")
    for n in range(5):
        attempt(client, "rita", "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
    response = attempt(client, "rita", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert response.status_code == 429


@pytest.mark.django_db
def test_trusted_proxy_forwarded_address_is_the_one_locked(client, settings):
    import ipaddress

    settings.AXES_FAILURE_LIMIT = 3
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("203.0.113.0/24")]
    make_user("Viewer", username="rita")
    for _ in range(3):
        attempt(client, "rita", "wrong", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert attempt(client, "rita", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429
    # Another client behind the same proxy is not locked out.
    ok = attempt(client, "rita", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert ok.status_code == 302


def test_client_ip_ignores_forwarded_for_from_untrusted_peers(settings):
    settings.TRUSTED_PROXIES = []
    assert client_ip_from("203.0.113.7", "1.2.3.4") == "203.0.113.7"


def test_client_ip_takes_the_first_untrusted_hop_from_the_right(settings):
    import ipaddress

    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    # The client wrote "6.6.6.6" itself; the proxy appended the real peer 198.51.100.5.
    assert client_ip_from("10.0.0.2", "6.6.6.6, 198.51.100.5, 10.0.0.9") == "198.51.100.5"


@pytest.mark.django_db
def test_role_members_sign_in_without_being_django_staff(client):
    make_user("Reviewer", username="rita")
    response = attempt(client, "rita", PASSWORD)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_user_without_a_role_is_told_to_ask_for_one(client):
    make_user(None, username="nobody")
    response = attempt(client, "nobody", PASSWORD)
    assert response.status_code == 200
    assert "no role yet" in response.content.decode()
