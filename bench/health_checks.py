"""1,000 HTTP health checks against a loopback server: our dispatcher's cycle next to a bare loop.

    .venv/bin/python bench/health_checks.py [--checks 1000] [--cycles 5] [--flipping 100]

ours: the real code path on a real database — claim_due_checks (the conditional UPDATEs),
probes.run_checks (async httpx, one pool, HEALTH_CONCURRENCY in flight), record_outcomes
(bulk results, bulk state, flips, the live event) — exactly what dispatch_due_checks does,
timed per phase. bare: asyncio + one httpx.AsyncClient doing the same requests with the same
concurrency and connection limits, reading each body, nothing stored. Cycles alternate
between the two in one run. The loopback server runs in its own process (a minimal asyncio
HTTP/1.1 server), so it never shares an event loop or a CPU slice with the client side.

`--flipping N` checks hit /flip, whose status the bench toggles between cycles, so every
cycle of ours also records N flips. Targets (issue 6): ours ≥ 0.5 × bare throughput, and a
1,000-check cycle ≤ 10 s. Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import Process, free_port, machine_busy, wait_for_port  # noqa: E402

TARGET_RATIO = 0.5
TARGET_CYCLE_SECONDS = 10.0


# --- the loopback server (its own process) -------------------------------------------------------


def serve(port: int) -> None:
    """Answer GET /ok with 200 and GET /flip with the current flip status; GET /toggle flips it."""
    state = {"flip": 200}
    reasons = {200: b"OK", 503: b"Service Unavailable"}

    class Http(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:
                head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"
                status, body = 200, b"service ok"
                if path == b"/toggle":
                    state["flip"] = 503 if state["flip"] == 200 else 200
                    body = str(state["flip"]).encode()
                elif path == b"/flip":
                    status = state["flip"]
                self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                                     % (status, reasons[status], len(body), body))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", port, backlog=2048)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- the bare baseline -----------------------------------------------------------------------------


async def bare_cycle(urls: list[str], concurrency: int, timeout: float) -> tuple[float, int]:
    """Fetch every URL once with asyncio + httpx, `concurrency` at a time; return (seconds, answers)."""
    import httpx

    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(trust_env=False, limits=httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency)) as client:

        async def one(url: str) -> int:
            async with gate:
                response = await client.get(url, timeout=timeout)
                await response.aread()
                return response.status_code

        statuses = await asyncio.gather(*(one(url) for url in urls))
    return time.perf_counter() - started, sum(1 for s in statuses if s in (200, 503))


# --- ours --------------------------------------------------------------------------------------------


def our_cycle() -> dict[str, float]:
    """One dispatcher cycle, phase by phase, exactly as services.dispatch_due_checks runs it."""
    from monitoring.health import services
    from monitoring.health.probes import run_checks_sync

    started = time.perf_counter()
    checks = services.claim_due_checks()
    claimed = time.perf_counter()
    outcomes = run_checks_sync(checks)
    ran = time.perf_counter()
    results, flips = services.record_outcomes(outcomes)
    stored = time.perf_counter()
    return {"total": stored - started, "claim": claimed - started, "run": ran - claimed, "store": stored - ran,
            "checks": len(checks), "results": len(results), "flips": len(flips),
            "ok": sum(1 for o in outcomes if o.ok)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--flipping", type=int, default=100, help="checks whose target flips every cycle")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="requests in flight, ours and bare alike (default HEALTH_CONCURRENCY, 20)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    from bench.servers import bench_environment

    machine_busy()
    with bench_environment("health_checks", keep=args.keep) as world:
        import urllib.request

        from django.conf import settings
        from django.db import connection
        from django.utils import timezone

        from monitoring.health.models import HealthCheck, HealthResult

        port = free_port()
        server = Process("loopback", [sys.executable, __file__, "--serve", str(port)], world["log_dir"])
        try:
            wait_for_port(server, port)
            base = f"http://127.0.0.1:{port}"
            HealthCheck.objects.all().delete()  # bootstrap's own checks: only the 1,000 are measured
            now = timezone.now()
            HealthCheck.objects.bulk_create([
                HealthCheck(name=f"bench {n:05d}", kind="http", url=f"{base}/{'flip' if n < args.flipping else 'ok'}",
                            interval_seconds=60, timeout_seconds=5.0, next_due_at=now)
                for n in range(args.checks)
            ])
            urls = list(HealthCheck.objects.order_by("pk").values_list("url", flat=True))
            if args.concurrency:
                settings.HEALTH_CONCURRENCY = args.concurrency
            concurrency = settings.HEALTH_CONCURRENCY
            print(f"{args.checks} HTTP checks on {connection.vendor}, {args.flipping} flipping each cycle; "
                  f"concurrency {concurrency} for both; loopback server in pid {server.pid}")

            ours: list[dict] = []
            bare: list[float] = []
            # A warm-up of each (imports, first connections, the database's caches), not counted.
            our_cycle()
            asyncio.run(bare_cycle(urls, concurrency, 5.0))
            for cycle in range(args.cycles):
                urllib.request.urlopen(f"{base}/toggle", timeout=5).read()  # noqa: S310 (our loopback server)
                HealthCheck.objects.update(next_due_at=timezone.now())  # everything is due again
                figures = our_cycle()
                seconds, answered = asyncio.run(bare_cycle(urls, concurrency, 5.0))
                if figures["checks"] != args.checks or answered != args.checks:
                    print(f"cycle {cycle + 1}: ours claimed {figures['checks']}, bare answered {answered}")
                    return 1
                ours.append(figures)
                bare.append(seconds)
                print(f"cycle {cycle + 1}: ours {figures['total']:.3f}s (claim {figures['claim'] * 1000:.0f} ms, "
                      f"run {figures['run']:.3f}s, store {figures['store'] * 1000:.0f} ms, {figures['flips']} flips, "
                      f"{figures['ok']} up)  bare {seconds:.3f}s")
            results = HealthResult.objects.count()
        finally:
            server.stop()

    total = statistics.median(o["total"] for o in ours)
    bare_total = statistics.median(bare)
    ratio = bare_total / total
    print()
    print(f"{'':24}{'median':>10}{'checks/s':>12}")
    print(f"{'ours: whole cycle':24}{total:>9.3f}s{args.checks / total:>12.0f}")
    for phase in ("claim", "run", "store"):
        print(f"{'  ' + phase:24}{statistics.median(o[phase] for o in ours):>9.3f}s")
    print(f"{'bare asyncio + httpx':24}{bare_total:>9.3f}s{args.checks / bare_total:>12.0f}")
    print(f"results stored: {results} (warm-up included); flips per cycle: {ours[-1]['flips']}")
    print()
    ok_ratio = ratio >= TARGET_RATIO
    ok_cycle = total <= TARGET_CYCLE_SECONDS
    print(f"throughput ours / bare = {ratio:.2f}  (target ≥ {TARGET_RATIO})  {'OK' if ok_ratio else 'MISSED'}")
    print(f"{args.checks}-check cycle {total:.2f}s  (target ≤ {TARGET_CYCLE_SECONDS:.0f} s)  "
          f"{'OK' if ok_cycle else 'MISSED'}")
    return 0 if ok_ratio and ok_cycle else 1


if __name__ == "__main__":
    sys.exit(main())
