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


_advisors = itertools.count(1)


def make_advisor(**fields):
    """Create an advisor with a valid, unique ARN and phone."""
    from advisors.models import Advisor

    n = next(_advisors)
    defaults = {"name": f"Advisor {n}", "arn": f"ARN-{100000 + n}", "phone": f"+9198{n:08d}", "email": f"a{n}@example.com"}
    return Advisor.objects.create(**{**defaults, **fields})


def make_content(advisor=None, *, status="pending_review", **fields):
    """Create a content item (pending review unless told otherwise)."""
    import datetime

    from django.utils import timezone

    from advisors.models import Content

    advisor = advisor or make_advisor()
    defaults = {
        "cycle_date": datetime.date(2026, 11, 22),
        "title": "Why SIPs beat timing the market",
        "body": "Systematic investing smooths out volatility. Mutual fund investments are subject to market risks.",
        "topic": "SIP",
        "submitted_at": timezone.now() if status == "pending_review" else None,
    }
    return Content.objects.create(advisor=advisor, status=status, **{**defaults, **fields})


def session_cookie(user) -> bytes:
    """Sign `user` in as a browser would and return the Cookie header value."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


def make_delivery(content=None, *, channel: str = "outbox", **fields):
    """Create a delivery (queued unless told otherwise) for an approved item."""
    from advisors.models import Delivery

    content = content or make_content(status="approved")
    return Delivery.objects.create(
        content=content, channel=channel, recipient=fields.pop("recipient", content.advisor.phone), **fields
    )
