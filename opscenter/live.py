"""Live events: the one publisher, the topic registry and the base consumer.

Publishing: `publish(topic, type, payload)` sends after the surrounding transaction
commits (nothing on rollback) and stamps each event with a per-topic sequence number
kept in Redis, so every web process numbers one topic the same way.

Consuming: a client opens /ws/live/, sends {"action": "subscribe", "topics": [...]} and
gets, per topic it may see, a snapshot {"type": "snapshot", "topic", "seq", "data"} and
then deltas {"type": "event", "topic", "event", "seq", "payload"}. The channel layer is
at-most-once: a client that sees a gap in `seq` sends {"action": "resync", "topic"} and
gets a fresh snapshot; a reconnect always starts with snapshots.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from .redis import redis_client

logger = logging.getLogger(__name__)

SEQ_KEY = "opscenter:live:seq:{topic}"


@dataclass(frozen=True)
class Topic:
    """A live topic: who may see it and how to build its snapshot."""

    name: str
    permission: str
    snapshot: Callable[[Any], dict]  # called with the user, in a worker thread


_topics: dict[str, Topic] = {}


def register_topic(name: str, *, permission: str, snapshot: Callable[[Any], dict]) -> Topic:
    """Declare a topic; apps call this from AppConfig.ready()."""
    topic = Topic(name=name, permission=permission, snapshot=snapshot)
    _topics[name] = topic
    return topic


def get_topic(name: str) -> Topic | None:
    return _topics.get(name)


def group_name(topic: str) -> str:
    return f"live.{topic}"


def current_seq(topic: str) -> int:
    """Return the last sequence number handed out for `topic`."""
    value = redis_client().get(SEQ_KEY.format(topic=topic))
    return int(value or 0)


def publish(topic: str, type: str, payload: dict) -> None:
    """Publish an event on `topic` once the current transaction commits.

    Outside a transaction it is sent at once. A broken Redis is logged, never raised:
    the change that caused the event has already been committed.
    """
    if topic not in _topics:
        raise ValueError(f"unknown live topic {topic!r}")
    transaction.on_commit(lambda: _send(topic, type, payload))


def _send(topic: str, type: str, payload: dict) -> None:
    try:
        seq = redis_client().incr(SEQ_KEY.format(topic=topic))
        async_to_sync(get_channel_layer().group_send)(
            group_name(topic),
            {"type": "live.event", "topic": topic, "event": type, "seq": seq, "payload": payload},
        )
    except Exception:
        logger.warning("live event %s/%s not published", topic, type, exc_info=True)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Authenticates, checks each topic's permission, sends snapshots, forwards deltas.

    No business logic lives here: snapshots come from the topic registry.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=4401)
            return
        self.user = user
        # topic -> sequence number of the snapshot this client holds
        self.subscriptions: dict[str, int] = {}
        await self.accept()
        await self.send_json({"type": "hello", "user": user.get_username(), "server_time": timezone.now().isoformat()})

    async def disconnect(self, code: int) -> None:
        for topic in list(getattr(self, "subscriptions", {})):
            await self.channel_layer.group_discard(group_name(topic), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            await self._error(None, "bad_request", "Send a JSON object with an action.")
            return
        action = content.get("action")
        if action == "subscribe":
            topics = content.get("topics")
            if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
                await self._error(None, "bad_request", "subscribe needs topics: a list of names.")
                return
            for name in topics:
                await self._subscribe(name)
        elif action == "resync":
            await self._subscribe(str(content.get("topic", "")))
        elif action == "unsubscribe":
            for name in content.get("topics") or []:
                if self.subscriptions.pop(name, None) is not None:
                    await self.channel_layer.group_discard(group_name(name), self.channel_name)
        elif action == "ping":
            await self.send_json({"type": "pong", "server_time": timezone.now().isoformat()})
        else:
            await self._error(None, "bad_request", f"Unknown action {action!r}.")

    async def _subscribe(self, name: str) -> None:
        topic = get_topic(name)
        if topic is None:
            await self._error(name, "unknown_topic", f"There is no topic {name!r}.")
            return
        if not await database_sync_to_async(self.user.has_perm)(topic.permission):
            await self._error(name, "forbidden", f"You may not see {name!r}.")
            return
        # Join first, then read the sequence: an event racing the snapshot is then
        # either inside it or delivered after it, never lost in between.
        await self.channel_layer.group_add(group_name(name), self.channel_name)
        seq, data = await database_sync_to_async(self._snapshot)(topic)
        self.subscriptions[name] = seq
        await self.send_json({"type": "snapshot", "topic": name, "seq": seq, "data": data})

    def _snapshot(self, topic: Topic) -> tuple[int, dict]:
        seq = current_seq(topic.name)
        return seq, topic.snapshot(self.user)

    async def live_event(self, message: dict) -> None:
        topic = message["topic"]
        held = self.subscriptions.get(topic)
        if held is None or message["seq"] <= held:
            return  # not subscribed, or already part of the snapshot we sent
        await self.send_json(
            {
                "type": "event",
                "topic": topic,
                "event": message["event"],
                "seq": message["seq"],
                "payload": message["payload"],
            }
        )

    async def _error(self, topic: str | None, code: str, message: str) -> None:
        await self.send_json({"type": "error", "topic": topic, "code": code, "message": message})
