"""Readiness against the real web, worker and beat processes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


def get_json(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_ready_reports_every_component_up_with_a_running_system(running_system):
    deadline = time.monotonic() + 30
    while True:
        status, body = get_json(f"{running_system.base_url}/api/v1/ready")
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200, body
    assert {c["name"]: c["ok"] for c in body["components"]} == {
        "database": True, "redis": True, "worker": True, "beat": True,
    }


def test_deep_ready_sends_the_ping_task_and_a_worker_runs_it(running_system):
    status, body = get_json(f"{running_system.base_url}/api/v1/ready?deep=1")
    roundtrip = next(c for c in body["components"] if c["name"] == "task_roundtrip")
    assert roundtrip["ok"], body
    assert status == 200
