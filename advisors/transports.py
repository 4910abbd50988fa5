"""Delivery transports: how approved content reaches an advisor.

A transport's `send()` returns the provider's message id or raises TransportError,
marked permanent (do not retry) or retryable. This issue ships the local outbox, which
records the message as a real channel would receive it; real channels come later.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass

from django.conf import settings

from .models import Delivery, OutboxMessage


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Sent:
    provider_message_id: str
    delivered: bool  # the channel confirmed delivery already (the outbox does)


class Transport(ABC):
    name = ""

    @abstractmethod
    def send(self, delivery: Delivery) -> Sent:
        """Send the delivery's content to its recipient."""


class OutboxTransport(Transport):
    """Keeps the message in the database (OutboxMessage) and counts it delivered."""

    name = "outbox"

    def send(self, delivery: Delivery) -> Sent:
        content = delivery.content
        message, _ = OutboxMessage.objects.get_or_create(
            delivery=delivery,
            defaults={
                "recipient": delivery.recipient,
                "payload": {
                    "title": content.title,
                    "body": content.body,
                    "image": content.image.url if content.image else None,
                    "advisor_arn": content.advisor.arn,
                },
            },
        )
        return Sent(provider_message_id=f"outbox-{message.pk}-{uuid.uuid4().hex[:8]}", delivered=True)


_TRANSPORTS: dict[str, type[Transport]] = {OutboxTransport.name: OutboxTransport}


def register_transport(transport: type[Transport]) -> None:
    """Make a transport available by its name (later apps add real channels)."""
    _TRANSPORTS[transport.name] = transport


def default_channel() -> str:
    return settings.DELIVERY_CHANNEL


def get_transport(name: str) -> Transport:
    try:
        return _TRANSPORTS[name]()
    except KeyError:
        raise TransportError(f"no transport named {name!r}", permanent=True) from None
