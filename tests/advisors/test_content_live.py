"""The `content` topic: what an open review queue hears when someone else acts.

Driven through the real ASGI application and Redis channel layer, like
tests/opscenter/test_live.py; transactional, because events are sent after commit.
"""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from advisors.services import approve_content, claim_content, reject_content, submit_for_review
from opscenter.asgi import application
from tests.factories import make_content, make_user, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

LOCAL_ORIGIN = b"http://localhost"
TIMEOUT = 2



@pytest.fixture
async def open_feed():
    """Open /ws/live/ as a user, subscribed to `content`; return the socket and its snapshot."""
    opened: list[WebsocketCommunicator] = []

    async def open_(user) -> tuple[WebsocketCommunicator, dict]:
        cookie = await database_sync_to_async(session_cookie)(user)
        communicator = WebsocketCommunicator(
            application, "/ws/live/", headers=[(b"origin", LOCAL_ORIGIN), (b"cookie", cookie)]
        )
        opened.append(communicator)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        assert (await communicator.receive_json_from(timeout=TIMEOUT))["type"] == "hello"
        await communicator.send_json_to({"action": "subscribe", "topics": ["content"]})
        return communicator, await communicator.receive_json_from(timeout=TIMEOUT)

    yield open_
    for communicator in opened:
        await communicator.disconnect(timeout=0.2)


async def test_snapshot_carries_the_queue_counters(open_feed):
    viewer = await database_sync_to_async(make_user)("Viewer")
    await database_sync_to_async(make_content)()

    _, snapshot = await open_feed(viewer)

    assert snapshot["type"] == "snapshot" and snapshot["topic"] == "content"
    assert snapshot["data"]["counters"]["pending"] == 1
    assert snapshot["data"]["counters"]["oldest_submitted_at"]


async def test_an_open_queue_sees_an_approval_made_by_someone_else(open_feed):
    watcher = await database_sync_to_async(make_user)("Reviewer", username="watcher")
    approver = await database_sync_to_async(make_user)("Reviewer", username="approver")
    content = await database_sync_to_async(make_content)()
    feed, snapshot = await open_feed(watcher)

    await database_sync_to_async(approve_content)(content, by=approver)

    event = await feed.receive_json_from(timeout=TIMEOUT)
    assert event["type"] == "event" and event["topic"] == "content"
    assert event["event"] == "content.changed"
    assert event["seq"] == snapshot["seq"] + 1
    assert event["payload"]["id"] == content.pk
    assert event["payload"]["status"] == "approved"
    assert event["payload"]["reviewer"] == "approver"


async def test_a_rejection_and_a_new_submission_arrive_with_what_filters_need(open_feed):
    viewer = await database_sync_to_async(make_user)("Viewer")
    reviewer = await database_sync_to_async(make_user)("Reviewer", username="rita")
    pending = await database_sync_to_async(make_content)(compliance_verdict="warn", kind="image")
    draft = await database_sync_to_async(make_content)(status="draft")
    feed, _ = await open_feed(viewer)

    await database_sync_to_async(reject_content)(pending, by=reviewer, note="Add the disclaimer.")
    await database_sync_to_async(submit_for_review)(draft)

    rejected = (await feed.receive_json_from(timeout=TIMEOUT))["payload"]
    submitted = (await feed.receive_json_from(timeout=TIMEOUT))["payload"]
    assert (rejected["id"], rejected["status"], rejected["reviewer"]) == (pending.pk, "rejected", "rita")
    assert (rejected["compliance_verdict"], rejected["kind"]) == ("warn", "image")
    assert (submitted["id"], submitted["status"]) == (draft.pk, "pending_review")
    assert submitted["advisor_id"] == draft.advisor_id
    assert submitted["cycle_date"] == draft.cycle_date.isoformat()


async def test_a_claim_is_announced_with_who_and_until_when(open_feed):
    watcher = await database_sync_to_async(make_user)("Reviewer")
    claimer = await database_sync_to_async(make_user)("Reviewer", username="claire")
    content = await database_sync_to_async(make_content)()
    feed, _ = await open_feed(watcher)

    await database_sync_to_async(claim_content)(content, by=claimer)

    event = await feed.receive_json_from(timeout=TIMEOUT)
    assert event["event"] == "content.claimed"
    assert event["payload"]["claimed_by"] == "claire"
    assert event["payload"]["claim_expires_at"]


async def test_a_user_without_a_role_is_refused_the_content_topic():
    user = await database_sync_to_async(make_user)()
    cookie = await database_sync_to_async(session_cookie)(user)
    communicator = WebsocketCommunicator(
        application, "/ws/live/", headers=[(b"origin", LOCAL_ORIGIN), (b"cookie", cookie)]
    )
    try:
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await communicator.receive_json_from(timeout=TIMEOUT)
        await communicator.send_json_to({"action": "subscribe", "topics": ["content"]})
        reply = await communicator.receive_json_from(timeout=TIMEOUT)
        assert (reply["type"], reply["code"], reply["topic"]) == ("error", "forbidden", "content")
    finally:
        await communicator.disconnect(timeout=0.2)
