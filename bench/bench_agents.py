"""Bench-only agent code, loaded with OPSCENTER_AGENT_MODULES=bench.bench_agents.

bench/trigger_latency.py sets that variable for migrate (which writes the Agent row), for
daphne (which checks the code is loaded before it queues a run) and for the worker.
"""

from __future__ import annotations

from agents.registry import agent
from agents.runtime import RunContext


@agent(
    "bench-noop",
    name="Bench no-op",
    description="Returns at once: measures the trigger-to-running path, not agent work.",
    timeout=60,
    position=10_000,
)
def bench_noop(ctx: RunContext) -> dict:
    """Return at once."""
    return {"ok": True}
