"""The live feed at /ws/live/, driven through the real ASGI application.

Every connection goes through opscenter.asgi.application, so the Origin check and the
session authentication run as in production, and events travel over the real Redis
channel layer. The tests are transactional: the consumer reads the database from
another thread, and publish() only sends once a transaction commits.
"""

from __future__ import annotations

import pytest
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import transaction

from opscenter.asgi import application
from opscenter.live import publish
from opscenter.routing import SameOriginOrAllowlistValidator, allowed_origins, websocket_urlpatterns
from tests.factories import make_user, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL_ORIGIN = b"http://localhost"
FOREIGN_ORIGIN = b"http://evil.example"
TIMEOUT = 2



@pytest.fixture
def viewer_cookie(transactional_db) -> bytes:
    return session_cookie(make_user("Viewer"))


@pytest.fixture
def roleless_cookie(transactional_db) -> bytes:
    return session_cookie(make_user())


@pytest.fixture
async def live():
    """Open /ws/live/ connections; every one is disconnected when the test ends."""
    opened: list[WebsocketCommunicator] = []

    async def open_(cookie: bytes | None = None, *, origin: bytes | None = LOCAL_ORIGIN, app=application):
        headers = []
        if origin is not None:
            headers.append((b"origin", origin))
        if cookie is not None:
            headers.append((b"cookie", cookie))
        communicator = WebsocketCommunicator(app, "/ws/live/", headers=headers)
        opened.append(communicator)
        return communicator

    yield open_
    for communicator in opened:
        # A refused consumer can outlive its disconnect by the channel layer's read
        # timeout (its Redis receive is still connecting when it is cancelled); the
        # communicator cancels it after `timeout` either way, so keep that short.
        await communicator.disconnect(timeout=0.2)


async def connect(communicator: WebsocketCommunicator) -> None:
    """Connect and consume the greeting."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    hello = await communicator.receive_json_from(timeout=TIMEOUT)
    assert hello["type"] == "hello"


async def subscribe(communicator: WebsocketCommunicator, topic: str = "system") -> dict:
    await communicator.send_json_to({"action": "subscribe", "topics": [topic]})
    return await communicator.receive_json_from(timeout=TIMEOUT)


@database_sync_to_async
def publish_committed(payload: dict) -> None:
    with transaction.atomic():
        publish("system", "heartbeat", payload)


@database_sync_to_async
def publish_rolled_back(payload: dict) -> None:
    try:
        with transaction.atomic():
            publish("system", "heartbeat", payload)
            raise RuntimeError("roll the change back")
    except RuntimeError:
        pass


async def test_anonymous_connection_is_rejected(live):
    communicator = await live(cookie=None)

    connected, code = await communicator.connect(timeout=TIMEOUT)

    assert not connected
    assert code == 4401


async def test_connection_without_an_origin_header_is_rejected(live, viewer_cookie):
    communicator = await live(viewer_cookie, origin=None)

    connected, _ = await communicator.connect(timeout=TIMEOUT)

    assert not connected


def application_built_now():
    """The websocket stack exactly as opscenter/asgi.py builds it, with today's settings."""
    return SameOriginOrAllowlistValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), allowed_origins())


@pytest.mark.parametrize("build", [lambda: application, application_built_now], ids=["imported", "rebuilt"])
async def test_foreign_origin_is_rejected_even_with_debug_on(live, viewer_cookie, settings, build):
    settings.DEBUG = True
    app = build()
    assert "evil.example" not in allowed_origins()

    # The same signed-in session gets in from our own origin...
    own = await live(viewer_cookie, app=app)
    await connect(own)
    # ...and is refused from a foreign page.
    foreign = await live(viewer_cookie, origin=FOREIGN_ORIGIN, app=app)
    connected, _ = await foreign.connect(timeout=TIMEOUT)

    assert not connected


async def test_user_without_the_permission_is_refused_the_topic(live, roleless_cookie):
    communicator = await live(roleless_cookie)
    await connect(communicator)

    reply = await subscribe(communicator, "system")

    assert reply["type"] == "error"
    assert reply["code"] == "forbidden"
    assert reply["topic"] == "system"


async def test_viewer_subscribing_to_system_gets_a_snapshot_with_a_sequence_number(live, viewer_cookie):
    communicator = await live(viewer_cookie)
    await connect(communicator)

    snapshot = await subscribe(communicator, "system")

    assert snapshot["type"] == "snapshot"
    assert snapshot["topic"] == "system"
    assert isinstance(snapshot["seq"], int)
    assert "heartbeat" in snapshot["data"]


async def test_event_published_in_a_committed_transaction_arrives_with_the_next_seq(live, viewer_cookie):
    communicator = await live(viewer_cookie)
    await connect(communicator)
    snapshot = await subscribe(communicator)

    await publish_committed({"workers_online": 2})

    event = await communicator.receive_json_from(timeout=TIMEOUT)
    assert event == {
        "type": "event",
        "topic": "system",
        "event": "heartbeat",
        "seq": snapshot["seq"] + 1,
        "payload": {"workers_online": 2},
    }


async def test_event_published_in_a_rolled_back_transaction_never_arrives(live, viewer_cookie):
    communicator = await live(viewer_cookie)
    await connect(communicator)
    snapshot = await subscribe(communicator)

    await publish_rolled_back({"workers_online": 1})

    assert await communicator.receive_nothing(timeout=0.5)
    # The rolled-back event did not even take a sequence number: the next one is +1.
    await publish_committed({"workers_online": 3})
    event = await communicator.receive_json_from(timeout=TIMEOUT)
    assert event["seq"] == snapshot["seq"] + 1
    assert event["payload"] == {"workers_online": 3}


async def test_reconnect_gets_a_snapshot_counting_events_published_while_away(live, viewer_cookie):
    first = await live(viewer_cookie)
    await connect(first)
    before = await subscribe(first)
    await first.disconnect()

    await publish_committed({"n": 1})
    await publish_committed({"n": 2})

    second = await live(viewer_cookie)
    await connect(second)
    after = await subscribe(second)
    assert after["type"] == "snapshot"
    assert after["seq"] == before["seq"] + 2
    assert await second.receive_nothing(timeout=0.2)  # the missed events are in the snapshot, not replayed


async def test_resync_returns_a_fresh_snapshot(live, viewer_cookie):
    communicator = await live(viewer_cookie)
    await connect(communicator)
    snapshot = await subscribe(communicator)
    await publish_committed({"n": 1})
    event = await communicator.receive_json_from(timeout=TIMEOUT)

    await communicator.send_json_to({"action": "resync", "topic": "system"})

    fresh = await communicator.receive_json_from(timeout=TIMEOUT)
    assert fresh["type"] == "snapshot"
    assert fresh["topic"] == "system"
    assert fresh["seq"] == event["seq"] == snapshot["seq"] + 1


async def test_unknown_topic_is_reported(live, viewer_cookie):
    communicator = await live(viewer_cookie)
    await connect(communicator)

    reply = await subscribe(communicator, "no-such-topic")

    assert reply["type"] == "error"
    assert reply["code"] == "unknown_topic"
    assert reply["topic"] == "no-such-topic"


async def _connects(application, origin: bytes, host: bytes, cookie: bytes) -> bool:
    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", origin), (b"host", host), (b"cookie", cookie)]
    )
    connected, _ = await communicator.connect(timeout=3)
    if connected:
        await communicator.disconnect(timeout=0.2)
    return connected


async def test_wildcard_allowed_hosts_lets_in_same_origin_pages_only(settings):
    settings.ALLOWED_HOSTS = ["*"]
    assert "*" not in allowed_origins()
    user = await database_sync_to_async(make_user)("Viewer")
    cookie = await database_sync_to_async(session_cookie)(user)
    application = SameOriginOrAllowlistValidator(
        AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), allowed_origins()
    )
    assert await _connects(application, b"http://ops.lan:8080", b"ops.lan:8080", cookie)
    assert not await _connects(application, b"http://evil.example", b"ops.lan:8080", cookie)


@pytest.fixture
def admin_cookie(transactional_db) -> bytes:
    return session_cookie(make_user("Admin"))


async def test_event_published_while_the_snapshot_is_read_follows_the_snapshot(live, admin_cookie):
    # Another process publishes between the snapshot's sequence number and its data: the
    # event is held back until the snapshot has gone out, then delivered, in order.
    from opscenter import live as live_module

    def racing_snapshot(user) -> dict:
        live_module._send("race-test", "changed", {"during": "snapshot"})
        return {"ok": True}

    live_module.register_topic("race-test", permission="auth.view_user", snapshot=racing_snapshot)
    try:
        communicator = await live(admin_cookie)
        await connect(communicator)
        snapshot = await subscribe(communicator, "race-test")
        event = await communicator.receive_json_from(timeout=TIMEOUT)
    finally:
        live_module._topics.pop("race-test", None)
    assert snapshot["type"] == "snapshot" and snapshot["data"] == {"ok": True}
    assert event == {"type": "event", "topic": "race-test", "event": "changed", "seq": snapshot["seq"] + 1,
                     "payload": {"during": "snapshot"}}


async def test_one_published_frame_reaches_every_follower_in_the_process(live, viewer_cookie):
    communicators = [await live(viewer_cookie) for _ in range(3)]
    snapshots = []
    for communicator in communicators:
        await connect(communicator)
        snapshots.append(await subscribe(communicator))

    await publish_committed({"workers_online": 5})

    for communicator, snapshot in zip(communicators, snapshots, strict=True):
        event = await communicator.receive_json_from(timeout=TIMEOUT)
        assert event["payload"] == {"workers_online": 5} and event["seq"] > snapshot["seq"]


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_a_prebuilt_frame_is_what_a_websocket_client_reads(size):
    from websockets.frames import Frame, Opcode
    from websockets.streams import StreamReader

    from opscenter.live import text_frame

    payload = ("é" * size).encode()[:size] if size % 2 == 0 else b"x" * size
    reader = StreamReader()
    reader.feed_data(text_frame(payload))
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        while True:
            next(parser)
    except StopIteration as done:
        frame = done.value

    assert frame.opcode is Opcode.TEXT and frame.fin and not frame.rsv1
    assert frame.data == payload


def test_only_daphnes_protocol_is_written_to_directly():
    from functools import partial

    from twisted.internet.tcp import Connection

    from opscenter.live import websocket_of

    class Protocol:  # the attributes of daphne's WebSocketProtocol the hub relies on
        transport, state, STATE_OPEN = Connection.__new__(Connection), 1, 1

        def sendMessage(self, payload, binary=False):
            raise AssertionError("not used")

    async def handle_reply(protocol, message):
        raise AssertionError("not used")

    protocol = Protocol()
    assert websocket_of(partial(handle_reply, protocol)) is protocol
    assert websocket_of(handle_reply) is None
    assert websocket_of(partial(handle_reply, object())) is None
    protocol.transport = object()  # TLS or another server's transport: frames go through daphne
    assert websocket_of(partial(handle_reply, protocol)) is None


def test_a_frame_goes_straight_to_an_idle_socket_and_queues_behind_waiting_data():
    import socket

    from twisted.internet.tcp import Connection

    from opscenter.live import write_frame

    ours, peer = socket.socketpair()
    queued = []

    class Transport(Connection):
        def write(self, data):  # Twisted's queue: only reached when the socket is busy
            queued.append(data)

    transport = Transport(ours, None)
    transport.connected = True
    try:
        write_frame(transport, b"first")
        assert peer.recv(100) == b"first" and queued == []

        transport._tempDataLen = 3  # something already waits in Twisted's buffer
        write_frame(transport, b"second")
        assert queued == [b"second"]
    finally:
        ours.close()
        peer.close()
