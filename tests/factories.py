"""Small builders for test data."""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

PASSWORD = "correct-horse-battery-staple"
_counter = itertools.count(1)


def make_user(role: str | None = None, *, username: str | None = None, password: str = PASSWORD, **fields):
    """Create an active user, optionally in one of the role groups."""
    User = get_user_model()
    user = User.objects.create_user(username=username or f"user{next(_counter)}", password=password, **fields)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user
