"""The live tail: stored entries are announced on the `logs` topic, to Admins and Operators only."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from agents import services as agent_services
from opscenter.asgi import application
from tests.factories import make_user, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5


@pytest.fixture
async def live():
    opened: list[WebsocketCommunicator] = []

    async def open_(role: str) -> WebsocketCommunicator:
        cookie = await database_sync_to_async(lambda: session_cookie(make_user(role)))()
        communicator = WebsocketCommunicator(application, "/ws/live/",
                                             headers=[(b"origin", b"http://localhost"), (b"cookie", cookie)])
        opened.append(communicator)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
        await communicator.send_json_to({"action": "subscribe", "topics": ["logs"]})
        return communicator

    yield open_
    for communicator in opened:
        await communicator.disconnect(timeout=0.2)


async def next_entries(communicator: WebsocketCommunicator) -> list[dict]:
    frame = await communicator.receive_json_from(timeout=TIMEOUT)
    assert (frame["type"], frame["topic"], frame["event"]) == ("event", "logs", "entries"), frame
    return frame["payload"]["entries"]


async def test_entries_written_by_the_handler_arrive_on_the_logs_topic(live, store_logger):
    communicator = await live("Operator")
    snapshot = await communicator.receive_json_from(timeout=TIMEOUT)
    assert snapshot["type"] == "snapshot" and snapshot["data"] == {"latest_id": 0}

    logger, _ = await database_sync_to_async(store_logger)()
    try:
        raise ValueError("bad ARN")
    except ValueError:
        logger.exception("import of advisor 7 failed")

    entries = await next_entries(communicator)
    assert [(e["message"], e["level"], e["has_exception"]) for e in entries] == [
        ("import of advisor 7 failed", "error", True)]
    assert entries[0]["id"] > 0


async def test_run_log_lines_arrive_with_their_run(live, external_run):
    communicator = await live("Admin")
    await communicator.receive_json_from(timeout=TIMEOUT)  # the snapshot

    await database_sync_to_async(agent_services.append_run_logs)(
        external_run, [{"message": "half way", "level": "info"}])

    entries = await next_entries(communicator)
    assert [(e["message"], e["run_id"], e["agent"], e["source"]) for e in entries] == [
        ("half way", external_run.pk, "ext-importer", "agent")]


@pytest.mark.parametrize("role", ["Viewer", "Reviewer"])
async def test_viewers_and_reviewers_are_refused_the_topic(live, role):
    communicator = await live(role)

    reply = await communicator.receive_json_from(timeout=TIMEOUT)

    assert (reply["type"], reply["code"]) == ("error", "forbidden")
