"""Live events: the one publisher, the topic registry and the base consumer.

Publishing: `publish(topic, type, payload)` sends after the surrounding transaction
commits (nothing on rollback) and stamps each event with a per-topic sequence number
kept in Redis, so every web process numbers one topic the same way.

Consuming: a client opens /ws/live/, sends {"action": "subscribe", "topics": [...]} and
gets, per topic it may see, a snapshot {"type": "snapshot", "topic", "seq", "data"} and
then deltas {"type": "event", "topic", "event", "seq", "payload"}. The channel layer is
at-most-once: a client that sees a gap in `seq` sends {"action": "resync", "topic"} and
gets a fresh snapshot; a reconnect always starts with snapshots.

Fan-out: an event is encoded once, as the exact frame clients receive, and PUBLISHed on
the topic's Redis channel. Each web process (each event loop) keeps one subscription, the
LiveHub, and writes every frame to the sockets of that process that follow the topic. The
channel layer's groups would instead queue, decode and re-encode the event once per client
(a thousand clients: a thousand Redis messages per event), which one process cannot keep up
with at ten events a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .redis import redis_client

logger = logging.getLogger(__name__)

SEQ_KEY = "opscenter:live:seq:{topic}"
CHANNEL_PREFIX = "opscenter:live:event:"  # + topic: the Redis pub/sub channel of its frames
RAW_SEND = "opscenter.raw_send"  # scope key: the server's send, put there by the routing's outer app
RAW_SOCKET = "opscenter.raw_socket"  # scope key: daphne's WebSocket protocol, when the server is daphne


def websocket_of(send) -> Any | None:
    """Return daphne's WebSocket protocol object behind an ASGI `send`, or None for other servers.

    Daphne hands each connection `partial(server.handle_reply, protocol)`. With the protocol,
    the hub writes a frame it built once straight to the socket: going through `send`,
    daphne and autobahn check the message, encode the text and build the same frame header
    again for every one of a thousand sockets, which was most of the fan-out's time.
    """
    protocol = send.args[0] if isinstance(send, partial) and send.args else None
    needed = ("transport", "state", "STATE_OPEN", "sendMessage")
    if protocol is None or not all(hasattr(protocol, name) for name in needed):
        return None
    from twisted.internet.tcp import Connection

    # Plain TCP only: a TLS transport must encrypt the frame (Twisted's TLS wrapper does).
    return protocol if isinstance(protocol.transport, Connection) else None


def write_frame(transport, frame: bytes) -> None:
    """Write a frame to a Twisted TCP transport: sent at once when nothing waits before it.

    Twisted's own write always queues and registers the socket with the event loop, then
    sends on the next turn and unregisters it — two epoll calls and a loop pass per frame,
    per socket. asyncio's transports try the socket first; so do we, and queue behind
    Twisted's buffer only what the kernel would not take (or everything, when something
    is already queued, so frames never overtake each other).
    """
    sock = getattr(transport, "socket", None)
    if (
        sock is not None
        and transport.connected
        and not transport.disconnecting
        and not transport._tempDataLen
        and len(transport.dataBuffer) == transport.offset
    ):
        try:
            sent = sock.send(frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # a dead peer: Twisted's write below meets the error and closes the connection
        if sent == len(frame):
            return
        frame = frame[sent:]
    transport.write(frame)


def text_frame(payload: bytes) -> bytes:
    """Return a complete, unfragmented, unmasked WebSocket text frame (RFC 6455 §5.2) carrying `payload`.

    A server's frames are never masked, so the frame is the same for every client. Valid with
    permessage-deflate too: a frame without RSV1 is an uncompressed message.
    """
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


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


# Numbering and publishing in one step: with an INCR and a PUBLISH sent separately, two
# processes publishing at once could deliver seq 11 before seq 10, and every client would
# take the gap for a lost event. A script runs atomically, so the order of the numbers is
# the order of delivery. The frame arrives without its closing brace; the script adds the seq.
_PUBLISH_NUMBERED = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ',"seq":' .. seq .. '}')
return seq
"""


@lru_cache(maxsize=4)
def _publish_script(client):
    return client.register_script(_PUBLISH_NUMBERED)


def _send(topic: str, type: str, payload: dict) -> None:
    try:
        client = redis_client()
        head = json.dumps({"type": "event", "topic": topic, "event": type, "payload": payload})[:-1]
        _publish_script(client)(keys=[SEQ_KEY.format(topic=topic)], args=[CHANNEL_PREFIX + topic, head])
    except Exception:
        logger.warning("live event %s/%s not published", topic, type, exc_info=True)


class LiveHub:
    """This event loop's one Redis subscription, and the sockets following each topic.

    Started by the first subscription on the loop; reconnects with back-off when Redis goes
    away (events published meanwhile are lost, as with any at-most-once layer: the clients
    see the gap in `seq` and ask for a snapshot).
    """

    READY_TIMEOUT = 5.0

    def __init__(self) -> None:
        self.followers: dict[str, set[LiveConsumer]] = {}
        self.ready = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def follow(self, topic: str, consumer: LiveConsumer) -> None:
        """Send `topic`'s frames to `consumer` from now on; returns once the hub listens."""
        self.followers.setdefault(topic, set()).add(consumer)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._listen(), name="opscenter-live-hub")
        try:
            await asyncio.wait_for(self.ready.wait(), self.READY_TIMEOUT)
        except TimeoutError:
            logger.warning("live hub not subscribed within %ss; events may be missed until it is", self.READY_TIMEOUT)

    def unfollow(self, consumer: LiveConsumer, topics=None) -> None:
        for topic in list(self.followers if topics is None else topics):
            self.followers.get(topic, set()).discard(consumer)

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=30)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                    # psubscribe returns before Redis confirms: wait for the confirmation,
                    # so nothing published after a snapshot's `seq` was read can slip by.
                    while (await pubsub.get_message(timeout=self.READY_TIMEOUT)) is None:
                        pass
                    self.ready.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message["type"] == "pmessage":
                            await self._fan_out(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ready.clear()
                logger.warning("live hub lost Redis; reconnecting in %.1fs", delay, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            finally:
                await client.aclose()

    async def _fan_out(self, channel: bytes, data: bytes) -> None:
        topic = channel.decode()[len(CHANNEL_PREFIX):]
        followers = self.followers.get(topic)
        if not followers:
            return
        text = data.decode()
        seq = json.loads(text)["seq"]
        frame = None
        for consumer in list(followers):
            try:
                # deliver()'s checks, inline: this loop runs once per socket per event.
                waiting = consumer.pending.get(topic)
                if waiting is not None:
                    waiting.append((seq, text))
                    continue
                held = consumer.subscriptions.get(topic)
                if held is None or seq <= held:
                    continue
                socket = consumer.scope.get(RAW_SOCKET)
                if socket is not None:
                    # Only an open socket takes frames: one closing (or closed) gets nothing,
                    # as daphne's own send would do.
                    if socket.state == socket.STATE_OPEN:
                        if frame is None:
                            frame = text_frame(data)
                        write_frame(socket.transport, frame)
                    continue
                raw_send = consumer.scope.get(RAW_SEND)
                if raw_send is None:
                    await consumer.send(text_data=text)
                else:
                    await raw_send({"type": "websocket.send", "text": text})
            except Exception:  # one broken socket must not starve the others
                logger.debug("live frame not delivered to %s", consumer, exc_info=True)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LiveHub] = weakref.WeakKeyDictionary()


def live_hub() -> LiveHub:
    """Return the running event loop's hub (one per web process in production)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = LiveHub()
    return hub


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Authenticates, checks each topic's permission, sends snapshots, forwards deltas.

    No business logic lives here: snapshots come from the topic registry.
    """

    # Frames come from the LiveHub, not the channel layer: no channel per connection, so no
    # Redis read loop per open socket (a thousand sockets were a thousand BRPOP loops).
    channel_layer_alias = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=4401)
            return
        self.user = user
        # topic -> sequence number of the snapshot this client holds
        self.subscriptions: dict[str, int] = {}
        # topic -> frames that arrived while its snapshot was being read and sent
        self.pending: dict[str, list[tuple[int, str]]] = {}
        await self.accept()
        await self.send_json({"type": "hello", "user": user.get_username(), "server_time": timezone.now().isoformat()})

    async def disconnect(self, code: int) -> None:
        live_hub().unfollow(self)

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
                    live_hub().unfollow(self, [name])
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
        # Frames arriving meanwhile wait in `pending`, then go out after the snapshot, in order,
        # unless the snapshot already counts them.
        self.pending[name] = []
        try:
            await live_hub().follow(name, self)
            seq, data = await database_sync_to_async(self._snapshot)(topic)
            self.subscriptions[name] = seq
            await self.send_json({"type": "snapshot", "topic": name, "seq": seq, "data": data})
            while self.pending[name]:
                waiting, self.pending[name] = self.pending[name], []
                for frame_seq, frame in waiting:
                    if frame_seq > seq:
                        await self._send_frame(frame)
        finally:
            del self.pending[name]

    def _snapshot(self, topic: Topic) -> tuple[int, dict]:
        seq = current_seq(topic.name)
        return seq, topic.snapshot(self.user)

    async def _send_frame(self, frame: str) -> None:
        raw_send = self.scope.get(RAW_SEND)
        if raw_send is None:
            await self.send(text_data=frame)
        else:
            await raw_send({"type": "websocket.send", "text": frame})

    async def _error(self, topic: str | None, code: str, message: str) -> None:
        await self.send_json({"type": "error", "topic": topic, "code": code, "message": message})
