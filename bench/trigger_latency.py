"""Trigger latency: POST /api/v1/agents/<slug>/trigger until the run is running on a worker.

    .venv/bin/python bench/trigger_latency.py

Starts an embedded redis-server (unless REDIS_URL is set), a SQLite database in a temporary
directory (or DATABASE_URL; PostgreSQL gets its own `<name>_bench` database), migrates it
with the bench agent `bench-noop` (bench/bench_agents.py, which returns at once) loaded, then
runs daphne (opscenter.asgi:application) on a free loopback port and one Celery worker
(concurrency 1, no beat), as the Procfile does.

One client, signed in over a WebSocket on /ws/live/ (topic `agents`), triggers the agent
through the REST API with a write-scope API token over real HTTP, one run at a time: it
waits for the run's `running` event, then for its final event, so the worker is idle before
the next trigger. Per run it records:

  trigger -> running event   POST sent until the `running` run.changed event arrives (target)
  POST response              POST sent until the 202 answer
  queued_at -> started_at    the run row's own times: committed + queued until a worker claimed it

and, for reference, GET /api/v1/health (no auth, no database): the floor of any request
through daphne and Django's middleware.

Baseline in the same run: a raw Redis round trip through another process (LPUSH a ping,
that process BRPOPs it and LPUSHes a pong, we BRPOP the pong), the floor of any
"hand work to a worker and hear back" path. Prints p50 / p95 / p99 / max, the ratios to the
baseline, and the target: trigger -> running p50 <= 50 ms. Exit status 1 when it is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import (  # noqa: E402
    BUSY_WARNING,
    bench_environment,
    free_port,
    machine_busy,
    percentile,
    session_cookie,
    start_daphne,
    start_worker,
)

SLUG = "bench-noop"
TARGET_P50_MS = 50.0
PING, PONG = "bench:trigger:ping", "bench:trigger:pong"
FINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--triggers", type=int, default=200, help="timed triggers")
    parser.add_argument("--warmup", type=int, default=10, help="untimed triggers first")
    parser.add_argument("--gap", type=float, default=0.05, help="idle seconds between a run's end and the next trigger")
    parser.add_argument("--pings", type=int, default=1000, help="raw Redis round trips for the baseline")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    parser.add_argument("--role", choices=["main", "echo"], default="main", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- baseline: a raw Redis round trip through another process ---------------------------------


def run_echo(count: int) -> int:
    """Answer `count` pings (BRPOP ping -> LPUSH pong); stop after 5 s without one."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=10)
    print("ready", flush=True)
    for _ in range(count):
        item = client.brpop([PING], timeout=5)
        if item is None:
            return 1
        client.lpush(PONG, item[1])
    return 0


def redis_round_trips(count: int) -> list[float]:
    """Time `count` LPUSH -> (other process BRPOP, LPUSH) -> BRPOP round trips, in ms."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=10)
    client.delete(PING, PONG)
    echo = subprocess.Popen([sys.executable, __file__, "--role", "echo", "--count", str(count + 20)],
                            stdout=subprocess.PIPE)
    try:
        if echo.stdout.readline().strip() != b"ready":
            raise SystemExit("the Redis echo process did not start")
        samples = []
        for n in range(count + 20):  # the first 20 warm up
            began = time.perf_counter()
            client.lpush(PING, str(n))
            if client.brpop([PONG], timeout=5) is None:
                raise SystemExit("the Redis echo process stopped answering")
            if n >= 20:
                samples.append((time.perf_counter() - began) * 1000)
        return samples
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            echo.wait(timeout=10)
        if echo.poll() is None:
            echo.kill()
            echo.wait()


# --- our path --------------------------------------------------------------------------------


@dataclass
class Sample:
    run_id: int
    post_ms: float
    running_ms: float


@dataclass
class Feed:
    """The `agents` topic as a browser sees it: when each run reached each status."""

    seen: dict[tuple[int, str], float] = field(default_factory=dict)
    waiters: dict[tuple[int, str], asyncio.Future] = field(default_factory=dict)
    closed: str = ""

    def close(self, reason: str) -> None:
        self.closed = reason
        for waiter in self.waiters.values():
            if not waiter.done():
                waiter.set_exception(SystemExit(f"the live connection ended: {reason}"))

    def note(self, run_id: int, status: str, at: float) -> None:
        key = (run_id, status)
        self.seen.setdefault(key, at)
        waiter = self.waiters.pop(key, None)
        if waiter and not waiter.done():
            waiter.set_result(at)

    async def wait(self, run_id: int, statuses: set[str], timeout: float) -> tuple[str, float]:
        # Earliest first: "running" and "succeeded" may both be in before the POST's answer.
        for status in sorted(statuses, key=lambda s: s != "running"):
            if (run_id, status) in self.seen:
                return status, self.seen[(run_id, status)]
        if self.closed:
            raise SystemExit(f"the live connection ended: {self.closed}")
        loop = asyncio.get_running_loop()
        futures = {status: self.waiters.setdefault((run_id, status), loop.create_future()) for status in statuses}
        done, _ = await asyncio.wait(futures.values(), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for status, future in futures.items():
            if future in done:
                return status, future.result()
        raise SystemExit(f"run {run_id} did not reach {sorted(statuses)} within {timeout:.0f}s")


async def listen(ws, feed: Feed) -> None:
    from websockets.exceptions import ConnectionClosed

    try:
        async for raw in ws:
            at = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "event" and message.get("event") == "run.changed":
                payload = message["payload"]
                feed.note(payload["id"], payload["status"], at)
        feed.close(f"closed by the server, code {ws.close_code}")
    except ConnectionClosed as exc:
        feed.close(f"closed by the server: {exc}")


async def first_run(http, timeout: float = 90) -> None:
    """Trigger once and wait (polling the row) until the worker has run it: the worker is up."""
    from agents.models import AgentRun

    response = await http.post(f"/api/v1/agents/{SLUG}/trigger", json={})
    if response.status_code != 202:
        raise SystemExit(f"trigger answered {response.status_code}: {response.text[:500]}")
    run_id = response.json()["id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await asyncio.to_thread(lambda: AgentRun.objects.filter(pk=run_id).values_list("status", flat=True)[0])
        if status in FINAL:
            if status != "succeeded":
                raise SystemExit(f"the first run ended {status}")
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"the worker did not run the first run within {timeout:.0f}s")


async def measure(port: int, cookie: str, secret: str, args: argparse.Namespace) -> tuple[list[Sample], list[float]]:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False,
                                 headers={"Authorization": f"Bearer {secret}"}) as http:
        await first_run(http)
        samples = await measure_runs(http, port, cookie, args)
        return samples, await health_requests(http, args.triggers)


async def health_requests(http, count: int) -> list[float]:
    """Time GET /api/v1/health (no auth, no database): the floor of a request through daphne + Django."""
    samples = []
    for n in range(count + 10):
        began = time.perf_counter()
        response = await http.get("/api/v1/health")
        if response.status_code != 200:
            raise SystemExit(f"/api/v1/health answered {response.status_code}")
        if n >= 10:
            samples.append((time.perf_counter() - began) * 1000)
    return samples


async def measure_runs(http, port: int, cookie: str, args: argparse.Namespace) -> list[Sample]:
    from websockets.asyncio.client import connect

    feed = Feed()
    ws = await connect(f"ws://127.0.0.1:{port}/ws/live/", origin=f"http://127.0.0.1:{port}",
                       additional_headers=[("Cookie", cookie)], compression=None, proxy=None, open_timeout=30)
    listener = None
    try:
        assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "hello"
        await ws.send(json.dumps({"action": "subscribe", "topics": ["agents"]}))
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if snapshot.get("type") != "snapshot":
            raise SystemExit(f"expected a snapshot of `agents`, got {snapshot}")
        listener = asyncio.create_task(listen(ws, feed))
        samples = []
        for n in range(args.warmup + args.triggers):
            began = time.perf_counter()
            response = await http.post(f"/api/v1/agents/{SLUG}/trigger", json={})
            answered = time.perf_counter()
            if response.status_code != 202:
                raise SystemExit(f"trigger answered {response.status_code}: {response.text[:500]}")
            run_id = response.json()["id"]
            status, running_at = await feed.wait(run_id, {"running"} | FINAL, 15)
            if status != "running":
                raise SystemExit(f"run {run_id} went to {status} without a running event")
            final, _ = await feed.wait(run_id, FINAL, 15)
            if final != "succeeded":
                raise SystemExit(f"run {run_id} ended {final}")
            if n >= args.warmup:
                samples.append(Sample(run_id, (answered - began) * 1000, (running_at - began) * 1000))
            await asyncio.sleep(args.gap)
        return samples
    finally:
        if listener:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        await ws.close()


def row_delays(run_ids: list[int]) -> list[float]:
    """queued_at -> started_at of the runs, in ms, from their rows."""
    from agents.models import AgentRun

    rows = AgentRun.objects.filter(pk__in=run_ids).values_list("queued_at", "started_at")
    return [(started - queued).total_seconds() * 1000 for queued, started in rows if started]


# --- report ----------------------------------------------------------------------------------


def line(label: str, values: list[float]) -> str:
    return (f"  {label:<28} {percentile(values, .5):8.1f} {percentile(values, .95):8.1f} "
            f"{percentile(values, .99):8.1f} {max(values):8.1f} {len(values):6d}")


def report(samples: list[Sample], delays: list[float], health: list[float], pings: list[float], busy: float) -> bool:
    running = [s.running_ms for s in samples]
    posts = [s.post_ms for s in samples]
    print("\nTrigger -> running, one run at a time, worker idle (concurrency 1), ms")
    print(f"  {'':<28} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8} {'n':>6}")
    print(line("trigger -> running event", running))
    print(line("POST response (202)", posts))
    print(line("queued_at -> started_at", delays))
    print(line("GET /api/v1/health", health))
    print(line("raw Redis round trip", pings))
    raw = percentile(pings, .5)
    print("\nRatios of medians to the raw Redis round trip (reference)")
    print(f"  trigger -> running event   {percentile(running, .5) / raw:8.1f}x")
    print(f"  POST response              {percentile(posts, .5) / raw:8.1f}x")
    print(f"  queued_at -> started_at    {percentile(delays, .5) / raw:8.1f}x")
    print(f"  GET /api/v1/health         {percentile(health, .5) / raw:8.1f}x  (a request that does nothing)")
    p50 = percentile(running, .5)
    passed = p50 <= TARGET_P50_MS
    print(f"\nTarget: trigger -> running event p50 {p50:.1f} ms <= {TARGET_P50_MS:g} ms   {'PASS' if passed else 'FAIL'}")
    if busy > BUSY_WARNING:
        print(f"  note: other processes used {busy:.0f}% of the machine's CPU before the run: latencies are inflated")
    print(f"\nOverall: {'PASS' if passed else 'FAIL'}")
    return passed


# --- main ------------------------------------------------------------------------------------


def make_admin():
    from django.contrib.auth import get_user_model

    from opscenter.services import create_api_token

    user = get_user_model().objects.create_superuser("bench-admin", email="bench@example.com", password=None)
    _, secret = create_api_token(user, name="trigger latency bench", scope="write", days=1)
    return user, secret


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "echo":
        return run_echo(args.count)
    busy = machine_busy()
    print(f"trigger_latency: {args.triggers} triggers after {args.warmup} warm-up, {args.gap:g}s apart; "
          f"{args.pings} raw Redis round trips")
    with bench_environment("trigger_latency", extra_env={"OPSCENTER_AGENT_MODULES": "bench.bench_agents"},
                           keep=args.keep) as env:
        from agents.models import Agent

        if not Agent.objects.filter(slug=SLUG, enabled=True).exists():
            raise SystemExit(f"agent {SLUG!r} is missing after migrate: is bench.bench_agents importable?")
        user, secret = make_admin()
        cookie = session_cookie(user)
        worker = start_worker(env["log_dir"], concurrency=1)
        web = None
        try:
            port = free_port()
            web = start_daphne(port, env["log_dir"])
            print(f"daphne on 127.0.0.1:{port}, Celery worker pid {worker.pid} (concurrency 1)", flush=True)
            started = time.perf_counter()
            try:
                samples, health = asyncio.run(measure(port, cookie, secret, args))
            except SystemExit:
                print(f"--- worker log ---\n{worker.tail()}\n--- daphne log ---\n{web.tail()}")
                raise
            print(f"measured {len(samples)} triggers in {time.perf_counter() - started:.1f}s", flush=True)
        finally:
            if web:
                web.stop()
            worker.stop(timeout=30)
        delays = row_delays([s.run_id for s in samples])
        pings = redis_round_trips(args.pings)
        return 0 if report(samples, delays, health, pings, busy) else 1


if __name__ == "__main__":
    sys.exit(main())
