"""Agents used by the tests; the worker subprocesses load them via OPSCENTER_AGENT_MODULES."""

from __future__ import annotations

import os
import time

from agents.registry import agent
from agents.runtime import RunContext


@agent(
    "test-echo",
    description="Logs a message, steps through some progress, returns the message.",
    params={
        "type": "object",
        "properties": {
            "message": {"type": "string", "title": "Message", "maxLength": 200},
            "steps": {"type": "integer", "default": 3, "minimum": 0, "maximum": 1000},
            "delay": {"type": "number", "default": 0, "minimum": 0, "maximum": 10},
            "mode": {"type": "string", "enum": ["plain", "shout"], "default": "plain"},
        },
        "required": ["message"],
    },
    timeout=60,
)
def echo(ctx: RunContext) -> dict:
    message = ctx.params["message"]
    if ctx.params.get("mode") == "shout":
        message = message.upper()
    ctx.log(f"echo: {message}", level="info", mode=ctx.params.get("mode"))
    steps = ctx.params.get("steps", 3)
    for step in range(steps):
        ctx.check_cancelled()
        time.sleep(ctx.params.get("delay", 0))
        ctx.progress(step + 1, steps, note=f"step {step + 1}")
    ctx.metric("items", steps)
    return {"echo": message, "dry_run": ctx.dry_run}


@agent("test-fail", description="Always fails.", timeout=30)
def fail(ctx: RunContext) -> None:
    ctx.log("about to fail", level="warning")
    raise ValueError("planted failure")


@agent(
    "test-slow",
    description="Sleeps in small steps, checking for cancellation; writes its pid for kill tests.",
    params={"type": "object", "properties": {"seconds": {"type": "number", "default": 30}}},
    timeout=120,
    retries=1,
)
def slow(ctx: RunContext) -> dict:
    pid_dir = os.environ.get("TEST_AGENT_PID_DIR")
    if pid_dir:
        with open(os.path.join(pid_dir, f"run-{ctx.run_id}.pid"), "w") as handle:
            handle.write(str(os.getpid()))
    deadline = time.monotonic() + ctx.params["seconds"]
    ticks = 0
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.1)
        ticks += 1
        ctx.progress(ticks)
    return {"ticks": ticks}


@agent("test-stubborn", description="Sleeps without checking anything (for time limits).", timeout=2)
def stubborn(ctx: RunContext) -> None:
    time.sleep(30)


@agent("test-flaky", description="Fails on its first attempt, succeeds on the next.", timeout=30, retries=2)
def flaky(ctx: RunContext) -> dict:
    if ctx.run.attempt == 1:
        raise RuntimeError("first attempt fails")
    return {"attempt": ctx.run.attempt}


@agent(
    "test-tree-root",
    description="Starts two mid-level children.",
    params={"type": "object", "properties": {"fail_leaf": {"type": "boolean", "default": False}}},
)
def tree_root(ctx: RunContext) -> dict:
    for n in range(2):
        ctx.child("test-tree-mid", {"n": n, "fail_leaf": ctx.params["fail_leaf"] and n == 1})
    return {"started": 2}


@agent(
    "test-tree-mid",
    parent="test-tree-root",
    params={"type": "object", "properties": {"n": {"type": "integer"}, "fail_leaf": {"type": "boolean",
                                                                                      "default": False}}},
)
def tree_mid(ctx: RunContext) -> dict:
    ctx.child("test-tree-leaf", {"fail": ctx.params["fail_leaf"]})
    return {"n": ctx.params.get("n")}


@agent(
    "test-tree-leaf",
    parent="test-tree-mid",
    params={"type": "object", "properties": {"fail": {"type": "boolean", "default": False}}},
)
def tree_leaf(ctx: RunContext) -> dict:
    if ctx.params["fail"]:
        raise RuntimeError("leaf failed on purpose")
    ctx.log("leaf done")
    return {"leaf": True}


@agent(
    "test-patient-parent",
    description="Starts a failing child, then waits for it to end before returning.",
    timeout=30,
)
def patient_parent(ctx: RunContext) -> dict:
    child = ctx.child("test-fail")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        child.refresh_from_db(fields=["status"])
        if child.is_final:
            break
        time.sleep(0.1)
    return {"child": child.pk, "child_status": child.status}


@agent(
    "test-pipeline",
    description="Starts three stages, each after the previous one: echo → middle → echo.",
    params={"type": "object", "properties": {
        "middle": {"type": "string", "enum": ["test-echo", "test-fail", "test-flaky"], "default": "test-echo"}}},
)
def pipeline(ctx: RunContext) -> dict:
    first = ctx.child("test-echo", {"message": "first", "steps": 2, "delay": 0.2})
    middle_slug = ctx.params["middle"]
    middle = ctx.child(middle_slug, {"message": "middle"} if middle_slug == "test-echo" else {}, after=first)
    last = ctx.child("test-echo", {"message": "last", "steps": 1}, after=middle)
    return {"stages": [first.pk, middle.pk, last.pk]}
