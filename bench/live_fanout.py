"""Live fan-out: one publisher, N WebSocket clients, our stack against a bare websockets server.

    .venv/bin/python bench/live_fanout.py

Starts an embedded redis-server (unless REDIS_URL is set), a SQLite database in a temporary
directory (or DATABASE_URL; PostgreSQL gets its own `<name>_bench` database), migrates it,
and runs two servers in turn on free loopback ports:

  ours  daphne serving opscenter.asgi:application: Origin check, session auth, LiveConsumer
        on /ws/live/ subscribed to `agents`; events sent by opscenter.live.publish() from a
        separate publisher process (INCR of the topic's sequence + one Redis PUBLISH of the frame,
        fanned out by each web process's LiveHub)
  bare  a bare `websockets` server that forwards every message of a Redis PUBLISH channel
        (redis-py pubsub) to all its clients with websockets.broadcast(); the publisher does
        INCR + PUBLISH. No auth, no per-client encoding: the transport's floor.

For each size (100, 500, 1,000 clients, all in this process, asyncio + the `websockets`
client) the publisher sends `run.changed` events at 10 a second for 10 seconds, each
carrying its wall-clock send time; every client records receive time - send time and the
sequence numbers it saw. It prints p50 / p99 / max latency, events dropped (expected minus
received) and sequence gaps, CPU use of each process, and the ratios against the targets at
1,000 clients: p99 <= 250 ms, p99 <= 3 x the bare server's, 0 dropped. Exit status 1 when a
target is missed. Everything it starts it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

try:
    import websockets
    from websockets.client import ClientProtocol
    from websockets.frames import Opcode
    from websockets.http11 import Response
    from websockets.protocol import State
    from websockets.typing import Origin
    from websockets.uri import parse_uri
except ImportError:
    raise SystemExit("bench/live_fanout.py needs `websockets` (pinned in requirements-dev.txt).") from None

from bench.servers import (  # noqa: E402
    BUSY_WARNING,
    Process,
    bench_environment,
    free_port,
    machine_busy,
    percentile,
    raise_open_files,
    session_cookie,
    start_daphne,
    wait_for_port,
)

TOPIC = "agents"
BARE_CHANNEL = "bench:live:agents"
BARE_SEQ_KEY = "bench:live:seq"
TARGET_P99_MS = 250.0
TARGET_VS_BARE = 3.0
TARGET_DROPPED = 0
BARE_LIFETIME_SECONDS = 1800  # the bare server stops by itself should we die without stopping it


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,500,1000", help="client counts, comma-separated, ascending")
    parser.add_argument("--rate", type=float, default=10.0, help="events published per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time per size")
    parser.add_argument("--web-processes", type=int, default=1,
                        help="daphne processes (each on its own port; clients spread round-robin)")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="WebSocket handshakes in flight")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="at most this many seconds to wait for late events after the last send")
    parser.add_argument("--only", choices=["ours", "bare"], help="measure one server only (no ratios)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server logs, database)")
    # Internal roles: this file is also the publisher and the bare server, in child processes.
    parser.add_argument("--role", choices=["main", "publisher", "bare-server"], default="main", help=argparse.SUPPRESS)
    parser.add_argument("--target", choices=["ours", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    return args


# --- the publisher (a child process) --------------------------------------------------------------


def run_payload(n: int, total: int, round_no: int) -> dict:
    """A payload the size and shape of agents.services.run_event(), plus the bench's own fields."""
    now = datetime.now(UTC).isoformat()
    return {
        "id": 100_000 + n, "agent": "bench-noop", "parent_id": None, "root_id": 100_000 + n, "status": "running",
        "trigger": "api", "dry_run": False, "attempt": 1,
        "progress": {"done": n, "total": total, "note": f"step {n} of {total}"},
        "queued_at": now, "started_at": now, "finished_at": None, "cancel_requested": False,
        "awaiting_children": False, "error": "",
        "bench": {"round": round_no, "n": n, "sent_at": 0.0},
    }


def run_publisher(args: argparse.Namespace) -> int:
    """Publish `rate` x `seconds` events at a steady pace; print a JSON summary line."""
    if args.target == "ours":
        import django

        django.setup()
        from opscenter.live import current_seq, publish

        def send(payload: dict) -> None:
            # Outside a transaction publish() sends at once: INCR the topic's seq, then PUBLISH the frame.
            publish(TOPIC, "run.changed", payload)

        def seq() -> int:
            return current_seq(TOPIC)
    else:
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5)

        def send(payload: dict) -> None:
            number = client.incr(BARE_SEQ_KEY)
            message = {"type": "event", "topic": TOPIC, "event": "run.changed", "seq": number, "payload": payload}
            client.publish(BARE_CHANNEL, json.dumps(message))

        def seq() -> int:
            return int(client.get(BARE_SEQ_KEY) or 0)

    total = int(args.rate * args.seconds)
    # Warm the connections up (not measured: the clients ignore round -1).
    for n in range(3):
        payload = run_payload(n, 3, -1)
        payload["bench"]["sent_at"] = time.time()
        send(payload)
        time.sleep(0.1)
    time.sleep(0.5)
    first = seq()
    durations = []
    start = time.monotonic()
    for n in range(total):
        delay = start + n / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        payload = run_payload(n, total, args.round)
        payload["bench"]["sent_at"] = time.time()
        began = time.perf_counter()
        send(payload)
        durations.append((time.perf_counter() - began) * 1000)
    elapsed = time.monotonic() - start
    last = seq()
    print(json.dumps({"sent": total, "numbered": last - first, "elapsed": elapsed,
                      "publish_p50": percentile(durations, 0.5), "publish_p99": percentile(durations, 0.99)}))
    return 0


# --- the bare server (a child process) ------------------------------------------------------------


async def serve_bare(port: int) -> None:
    """Forward each message on BARE_CHANNEL to every connected client; speak just enough protocol."""
    import redis.asyncio as aioredis
    from websockets.asyncio.server import broadcast, serve

    client = aioredis.from_url(os.environ["REDIS_URL"])
    subscribers: set = set()

    async def handler(ws) -> None:
        await ws.send(json.dumps({"type": "hello"}))
        await ws.recv()  # the subscribe request
        seq = int(await client.get(BARE_SEQ_KEY) or 0)
        await ws.send(json.dumps({"type": "snapshot", "topic": TOPIC, "seq": seq, "data": {}}))
        subscribers.add(ws)
        try:
            await ws.wait_closed()
        finally:
            subscribers.discard(ws)

    pubsub = client.pubsub()
    await pubsub.subscribe(BARE_CHANNEL)
    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, backlog=1024):
        async def forward() -> None:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    broadcast(subscribers, message["data"].decode())

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(forward(), BARE_LIFETIME_SECONDS)


# --- clients --------------------------------------------------------------------------------------


@dataclass
class Stats:
    """What the clients saw, per round: latencies in ms; plus sequence gaps and closed connections."""

    latencies: dict[int, list[float]] = field(default_factory=dict)
    gaps: int = 0
    closed: int = 0  # connections the server ended (we close ours only at the very end)
    close_codes: Counter = field(default_factory=Counter)


class LiveClient(asyncio.Protocol):
    """One WebSocket client: websockets' own protocol (handshake, framing, pongs) on a bare transport.

    The asyncio connection class of `websockets` costs a task switch, a queue and a future per
    message; at 1,000 clients x 10 events/s that saturated the client process and its stalls
    showed up as server latency. Driving websockets' sans-I/O ClientProtocol from
    data_received() keeps the client side at a fraction of a core, and stamps receive time when
    the bytes arrive.
    """

    def __init__(self, url: str, origin: str, cookie: str | None, stats: Stats) -> None:
        # No extensions: no permessage-deflate, as neither server compresses.
        self.ws = ClientProtocol(parse_uri(url), origin=Origin(origin), extensions=None, max_size=2**20)
        self.cookie = cookie
        self.stats = stats
        self.transport: asyncio.Transport | None = None
        loop = asyncio.get_running_loop()
        self.hello: asyncio.Future = loop.create_future()
        self.snapshot: asyncio.Future = loop.create_future()
        self.lost: asyncio.Future = loop.create_future()
        for future in (self.hello, self.snapshot):
            # A failure after the awaiting stopped (e.g. the connection closes later) is not news.
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.held = 0
        self.fragments: list[bytes] = []
        self.closing = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        request = self.ws.connect()
        if self.cookie:
            request.headers["Cookie"] = self.cookie
        self.ws.send_request(request)
        self.flush()

    def flush(self) -> None:
        for data in self.ws.data_to_send():
            if data and not self.transport.is_closing():
                self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if event.status_code != 101:
                    self._fail(f"handshake refused: HTTP {event.status_code}")
                continue
            if event.opcode is Opcode.TEXT or event.opcode is Opcode.CONT:
                self.fragments.append(event.data)
                if event.fin:
                    self.on_text(b"".join(self.fragments), now)
                    self.fragments.clear()
        self.flush()  # pongs and close replies
        if self.ws.state is State.CLOSED or self.ws.close_expected():
            self.transport.close()

    def on_text(self, raw: bytes, now: float) -> None:
        message = json.loads(raw)
        kind = message.get("type")
        if kind == "event":
            seq = message["seq"]
            if seq > self.held + 1:
                self.stats.gaps += seq - self.held - 1
            self.held = max(self.held, seq)
            bench = message["payload"].get("bench")
            bucket = self.stats.latencies.get(bench["round"]) if bench else None
            if bucket is not None:
                bucket.append((now - bench["sent_at"]) * 1000)
        elif kind == "hello" and not self.hello.done():
            self.hello.set_result(message)
        elif kind == "snapshot" and not self.snapshot.done():
            self.held = message["seq"]
            self.snapshot.set_result(message)
        elif kind == "error":
            self._fail(f"server error: {message}")

    def send_json(self, message: dict) -> None:
        self.ws.send_text(json.dumps(message).encode())
        self.flush()

    def _fail(self, reason: str) -> None:
        for future in (self.hello, self.snapshot):
            if not future.done():
                future.set_exception(RuntimeError(reason))

    def connection_lost(self, exc) -> None:
        if not self.closing:
            self.stats.closed += 1
            self.stats.close_codes[self.ws.close_rcvd.code if self.ws.close_rcvd else "no close frame"] += 1
        self._fail(f"connection lost: {exc}")
        if not self.lost.done():
            self.lost.set_result(None)

    async def close(self) -> None:
        self.closing = True
        if self.transport and not self.transport.is_closing():
            self.ws.send_close(1000)
            self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.lost), 2)
            self.transport.close()


@dataclass
class Clients:
    ports: list[int]
    path: str
    cookie: str | None
    stats: Stats = field(default_factory=Stats)
    open: list[LiveClient] = field(default_factory=list)

    async def open_one(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        port = self.ports[index % len(self.ports)]
        url, origin = f"ws://127.0.0.1:{port}{self.path}", f"http://127.0.0.1:{port}"
        _, client = await loop.create_connection(lambda: LiveClient(url, origin, self.cookie, self.stats),
                                                 "127.0.0.1", port)
        try:
            await asyncio.wait_for(client.hello, 60)
            client.send_json({"action": "subscribe", "topics": [TOPIC]})
            await asyncio.wait_for(client.snapshot, 60)
        except BaseException:
            client.transport.close()
            raise
        self.open.append(client)

    async def grow(self, size: int, concurrency: int) -> float:
        """Open clients until there are `size`; return the seconds it took."""
        started = time.monotonic()
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with gate:
                await self.open_one(index)

        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(len(self.open), size))), 600)
        return time.monotonic() - started

    async def close(self) -> None:
        await asyncio.gather(*(client.close() for client in self.open), return_exceptions=True)
        self.open.clear()


# --- rounds ---------------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    clients: int
    connect_s: float
    sent: int = 0
    numbered: int = 0
    received: int = 0
    gaps: int = 0
    closed: int = 0
    latencies: list[float] = field(default_factory=list)
    publish_p50: float = 0.0
    publish_p99: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def expected(self) -> int:
        return self.sent * self.clients

    @property
    def dropped(self) -> int:
        return self.expected - self.received

    def p(self, q: float) -> float:
        return percentile(self.latencies, q)


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, float]:
    import psutil

    seconds = {}
    for name, group in pids.items():
        total = 0.0
        for pid in group:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                total += times.user + times.system
        seconds[name] = total
    return seconds


async def measure(server: str, clients: Clients, size: int, round_no: int, args: argparse.Namespace,
                  pids: dict[str, list[int]], log_dir: Path) -> Result:
    gaps_before, closed_before = clients.stats.gaps, clients.stats.closed
    connect_s = await clients.grow(size, args.connect_concurrency)
    await asyncio.sleep(1.0)  # let the handshakes' tail settle
    result = Result(server, size, connect_s)
    clients.stats.latencies[round_no] = result.latencies
    cpu_before, wall_before = cpu_seconds(pids), time.monotonic()
    with open(log_dir / f"publisher-{server}-{size}.log", "wb") as errors:
        publisher = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--role", "publisher", "--target", server, "--round", str(round_no),
            "--rate", str(args.rate), "--seconds", str(args.seconds),
            stdout=asyncio.subprocess.PIPE, stderr=errors,
        )
        try:
            out, _ = await asyncio.wait_for(publisher.communicate(), args.seconds + 120)
        except TimeoutError:
            publisher.kill()
            await publisher.wait()
            raise SystemExit(f"the {server} publisher did not finish in time") from None
    if publisher.returncode != 0:
        raise SystemExit(f"the {server} publisher failed: {(log_dir / f'publisher-{server}-{size}.log').read_text()}")
    summary = json.loads(out.decode().strip().splitlines()[-1])
    result.sent, result.numbered = summary["sent"], summary["numbered"]
    result.publish_p50, result.publish_p99 = summary["publish_p50"], summary["publish_p99"]
    # Wait for late events, as long as an open connection may still bring some (bounded by --drain).
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        alive = sum(1 for client in clients.open if not client.lost.done())
        if len(result.latencies) >= result.sent * alive:
            break
        await asyncio.sleep(0.05)
    cpu_after, wall = cpu_seconds(pids), time.monotonic() - wall_before
    # CPU share from the publisher's start (its start-up is in the wall time, not in these processes' CPU).
    result.cpu = {name: (cpu_after[name] - cpu_before[name]) / wall * 100 for name in pids}
    del clients.stats.latencies[round_no]
    result.received = len(result.latencies)
    result.gaps = clients.stats.gaps - gaps_before
    result.closed = clients.stats.closed - closed_before
    print(f"  {server:<4} {size:>5} clients: connected in {connect_s:5.1f}s, p50 {result.p(.5):7.1f} ms, "
          f"p99 {result.p(.99):7.1f} ms, dropped {result.dropped}, closed by the server so far "
          f"{clients.stats.closed} (close codes: {dict(clients.stats.close_codes) or '-'})", flush=True)
    return result


async def run_server(server: str, ports: list[int], cookie: str | None, args: argparse.Namespace,
                     pids: dict[str, list[int]], log_dir: Path, first_round: int) -> list[Result]:
    clients = Clients(ports, "/ws/live/" if server == "ours" else "/", cookie)
    results = []
    try:
        for offset, size in enumerate(args.sizes):
            results.append(await measure(server, clients, size, first_round + offset, args, pids, log_dir))
    finally:
        await clients.close()
    return results


# --- report ---------------------------------------------------------------------------------------


def report(results: list[Result], args: argparse.Namespace, busy: float) -> bool:
    print(f"\nPublish -> receive latency over loopback, {args.rate:g} events/s for {args.seconds:g}s per size, "
          f"{args.web_processes} daphne process(es)")
    print("ours = daphne + LiveConsumer (session auth, Origin check) fed by opscenter.live.publish (Redis PUBLISH + per-process hub);")
    print("bare = a bare `websockets` server broadcasting a Redis PUBLISH channel (no auth, one encoding)")
    print(f"dropped = events sent x clients - events received within {args.drain:g}s of the last send;")
    print("closed = connections the server closed during that size (connecting, idle and publishing);")
    print("gaps = sequence gaps the clients saw; pub p50 = the publish call itself, ms;")
    print(f"CPU % = share of one core from the publisher's start to the last event received "
          f"(the machine has {os.cpu_count()} cores)\n")
    header = (f"{'server':<6} {'clients':>7} {'sent':>5} {'dropped':>8} {'closed':>6} {'gaps':>5} {'p50 ms':>8} "
              f"{'p99 ms':>8} {'max ms':>8} {'pub p50':>8} {'server%':>8} {'redis%':>7} {'clients%':>9} "
              f"{'connect s':>10}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.server:<6} {r.clients:>7} {r.sent:>5} {r.dropped:>8} {r.closed:>6} {r.gaps:>5} {r.p(.5):8.1f} "
              f"{r.p(.99):8.1f} {r.p(1.0):8.1f} {r.publish_p50:8.2f} {r.cpu.get('server', 0):8.0f} "
              f"{r.cpu.get('redis', 0):7.0f} {r.cpu.get('clients', 0):9.0f} {r.connect_s:10.1f}")
    ours = {r.clients: r for r in results if r.server == "ours"}
    bare = {r.clients: r for r in results if r.server == "bare"}
    ok = True
    if ours and bare:
        print("\nRatios ours / bare")
        for size in args.sizes:
            print(f"  {size:>5} clients: p50 {ours[size].p(.5) / bare[size].p(.5):6.2f}x, "
                  f"p99 {ours[size].p(.99) / bare[size].p(.99):6.2f}x")
    big = max(args.sizes)
    print(f"\nTargets at {big} clients")
    checks = []
    if big in ours:
        r = ours[big]
        checks.append((f"ours p99 {r.p(.99):.1f} ms <= {TARGET_P99_MS:g} ms", r.p(.99) <= TARGET_P99_MS))
        checks.append((f"ours dropped {r.dropped} <= {TARGET_DROPPED} (closed {r.closed}, gaps {r.gaps}, "
                       f"numbered {r.numbered}/{r.sent})", r.dropped <= TARGET_DROPPED and r.numbered == r.sent))
        if big in bare:
            ratio = r.p(.99) / bare[big].p(.99)
            checks.append((f"ours p99 / bare p99 = {ratio:.2f} <= {TARGET_VS_BARE:g}", ratio <= TARGET_VS_BARE))
    for text, passed in checks:
        ok &= passed
        print(f"  {text:<72} {'PASS' if passed else 'FAIL'}")
    if big in bare and bare[big].dropped:
        print(f"  note: the bare server dropped {bare[big].dropped} events too: the figures are suspect")
    if busy > BUSY_WARNING:
        print(f"  note: other processes used {busy:.0f}% of the machine's CPU before the run: latencies are inflated")
    print(f"\nOverall: {'PASS' if ok else 'FAIL'}")
    return ok


# --- main -----------------------------------------------------------------------------------------


def make_viewer():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username="bench-viewer", password=None)
    user.groups.add(Group.objects.get(name="Viewer"))
    return user


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "publisher":
        return run_publisher(args)
    if args.role == "bare-server":
        asyncio.run(serve_bare(args.port))
        return 0
    limit = raise_open_files(4 * max(args.sizes) + 1024)
    print(f"live_fanout: sizes {args.sizes}, {args.rate:g}/s for {args.seconds:g}s each; websockets "
          f"{websockets.__version__}; open-file limit {limit}")
    if limit < 2 * max(args.sizes) + 256:
        raise SystemExit(f"open-file limit {limit} is too low for {max(args.sizes)} clients; raise `ulimit -n`.")
    busy = machine_busy()
    with bench_environment("live_fanout", keep=args.keep) as env:
        from django.conf import settings

        cookie = session_cookie(make_viewer())
        print(f"channel layer: {settings.CHANNEL_LAYERS['default']['BACKEND']}, "
              f"capacity {settings.CHANNEL_LAYERS['default']['CONFIG'].get('capacity')}")
        redis_pids = [env["redis_pid"]] if env["redis_pid"] else []
        results: list[Result] = []
        if args.only != "bare":
            ports = [free_port() for _ in range(args.web_processes)]
            web = []
            try:
                for i, port in enumerate(ports):
                    web.append(start_daphne(port, env["log_dir"], name=f"daphne-{i}"))
                print(f"\n== ours: daphne on 127.0.0.1:{','.join(map(str, ports))}", flush=True)
                pids = {"server": [p.pid for p in web], "redis": redis_pids, "clients": [os.getpid()]}
                results += asyncio.run(run_server("ours", ports, cookie, args, pids, env["log_dir"], 0))
            finally:
                for process in web:
                    process.stop()
        if args.only != "ours":
            port = free_port()
            bare = Process("bare-server", [sys.executable, __file__, "--role", "bare-server", "--port", str(port)],
                           env["log_dir"])
            try:
                wait_for_port(bare, port)
                print(f"\n== bare: websockets server on 127.0.0.1:{port}", flush=True)
                pids = {"server": [bare.pid], "redis": redis_pids, "clients": [os.getpid()]}
                results += asyncio.run(run_server("bare", [port], None, args, pids, env["log_dir"], 100))
            finally:
                bare.stop()
        return 0 if report(results, args, busy) else 1


if __name__ == "__main__":
    sys.exit(main())
