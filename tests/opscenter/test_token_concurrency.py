"""Concurrent revokes of one token on PostgreSQL: exactly one wins, the other is told."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from opscenter.models import AuditEntry
from opscenter.services import DomainError, create_api_token, revoke_api_token
from tests.factories import make_user


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_revokes_one_wins_one_gets_conflict():
    user = make_user("Viewer")
    token, _ = create_api_token(user, name="shared", days=7)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def revoke():
        try:
            barrier.wait(timeout=5)
            revoke_api_token(token, by=user)
            outcomes.append("revoked")
        except DomainError:
            outcomes.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=revoke) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(outcomes) == ["conflict", "revoked"]
    assert AuditEntry.objects.filter(action="api_token.revoked", target_id=str(token.pk)).count() == 1
