"""200 senders at once, 10 % of them repeating another's event id: exactly the distinct events are stored.

Two real web processes (Daphne) share the test database, so the duplicates race each
other in separate transactions and processes, as they would behind a load balancer.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from advisors.inbound.models import InboundEvent, InboundSource
from opscenter.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.processes import ROOT, free_port, subprocess_database_url, tails

pytestmark = pytest.mark.django_db(transaction=True)

SENDERS = 200
EVENTS_PER_SENDER = 5


@pytest.fixture
def two_web_processes(transactional_db):
    workdir = Path(tempfile.mkdtemp(prefix="opscenter-inbound-"))
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "opscenter.settings", "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": settings.REDIS_URL, "OPSCENTER_VAR_DIR": str(settings.VAR_DIR), "PYTHONUNBUFFERED": "1",
    }
    processes, urls = {}, []
    try:
        for n in range(2):
            port = free_port()
            with open(workdir / f"web{n}.log", "wb") as log:
                processes[f"web{n}"] = subprocess.Popen(
                    [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "opscenter.asgi:application"],
                    cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the web processes did not start\n{tails(workdir, processes, 40)}", pytrace=False)
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


def test_concurrent_senders_with_repeated_ids_store_exactly_the_distinct_events(two_web_processes):
    source = InboundSource.objects.create(slug="bot", name="Bot")
    rng = random.Random(7)
    sends = [[f"evt-{s}-{n}" for n in range(EVENTS_PER_SENDER)] for s in range(SENDERS)]
    flat = [(s, n) for s in range(SENDERS) for n in range(EVENTS_PER_SENDER)]
    # 10 % of all sends repeat an id another sender also sends (at about the same moment).
    for s, n in rng.sample(flat, len(flat) // 10):
        other = rng.choice([o for o in range(SENDERS) if o != s])
        sends[s][n] = sends[other][n]
    distinct = {event_id for ids in sends for event_id in ids}

    async def sender(client: httpx.AsyncClient, url: str, ids: list[str]) -> list[dict]:
        answers = []
        for event_id in ids:
            body = json.dumps({"id": event_id, "type": "heartbeat"}).encode()
            timestamp = str(int(time.time()))
            response = await client.post(
                f"{url}/api/v1/webhooks/bot/", content=body,
                headers={"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
                         SIGNATURE_HEADER: sign(source.secret, timestamp, body)},
            )
            assert response.status_code == 200, response.text
            answers.append(response.json())
        return answers

    async def everyone() -> list[list[dict]]:
        limits = httpx.Limits(max_connections=SENDERS)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            return await asyncio.gather(*(
                sender(client, two_web_processes[s % 2], ids) for s, ids in enumerate(sends)
            ))

    answers = [a for per_sender in asyncio.run(everyone()) for a in per_sender]

    assert sum(a["accepted"] for a in answers) == len(distinct)
    assert sum(a["duplicates"] for a in answers) == len(flat) - len(distinct)
    stored = list(InboundEvent.objects.values_list("event_id", flat=True))
    assert len(stored) == len(set(stored)) == len(distinct)
    assert set(stored) == distinct
