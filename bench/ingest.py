"""Inbound webhook ingest: accepted events per second, next to a bare view and a raw COPY.

    .venv/bin/python bench/ingest.py                      # SQLite + embedded Redis (single events only)
    DATABASE_URL=postgres://bench:bench@localhost:5432/opscenter .venv/bin/python bench/ingest.py

Starts an embedded redis-server (unless REDIS_URL is set), a database of its own (SQLite in
a temporary directory, or `<name>_ingest` on PostgreSQL), migrates it, creates an inbound
source, and runs daphne as the Procfile does, with `bench.ingest_settings` (the project's
settings plus /bench/bare/, a view that reads the body and answers 204). No worker runs:
this measures accepting events (verify, store, ask for processing), not processing them.

1. Single events: `--clients` concurrent HTTP/1.1 keep-alive clients (httpx, in this
   process) POST signed single-event bodies, each with a new event id, for `--seconds`
   per phase; phases alternate bare / ours `--rounds` times. Reports requests per second
   per phase and the median of each; target: ours >= 0.6 x bare. Every accepted event is
   counted in the database afterwards (all stored, none doubled).
2. Batches of 500 (PostgreSQL): POST signed 500-event batches one after another, and, in
   the same run, COPY the same rows (same columns, JSON payloads) into the same table with
   raw psycopg; events per second of each, median of `--rounds`; target: ours >= 0.35 x COPY.

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import BUSY_WARNING, Process, bench_environment, free_port, machine_busy, wait_for_port  # noqa: E402

SINGLE_TARGET = 0.6
BATCH_TARGET = 0.35
BATCH = 500


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=40, help="batches per round in part 2")
    parser.add_argument("--keep", action="store_true")
    return parser.parse_args()


def event(event_id: str, n: int) -> dict:
    return {
        "id": event_id, "type": "button_click", "occurred_at": "2026-11-23T07:45:00+05:30",
        "data": {"action": "RETRIEVE_CONTENT", "advisor_phone": f"+9198{n % 100000000:08d}", "content_id": n % 5000 + 1,
                 "response_ms": 800 + n % 400, "succeeded": True},
    }


def signed(secret: str, body: bytes) -> dict[str, str]:
    from opscenter.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

    timestamp = str(int(time.time()))
    return {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body)}


async def hammer(url: str, path: str, secret: str, *, clients: int, seconds: float, prefix: str) -> tuple[int, int]:
    """POST single signed events from `clients` keep-alive connections for `seconds`; return (ok, errors)."""
    import httpx

    deadline = time.perf_counter() + seconds
    counts = {"ok": 0, "errors": 0}

    async def client_loop(number: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                body = json.dumps(event(f"{prefix}-{number}-{n}", n)).encode()
                response = await client.post(path, content=body, headers=signed(secret, body))
                if response.status_code in (200, 204):
                    counts["ok"] += 1
                else:
                    counts["errors"] += 1
                    if counts["errors"] <= 3:
                        print(f"  {path}: {response.status_code} {response.text[:200]}")

    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    return counts["ok"], counts["errors"]


def single_events(url: str, secret: str, args) -> tuple[float, float, int]:
    bare_rates, our_rates, accepted = [], [], 0
    # A short warm-up of each path (imports, connections, caches).
    asyncio.run(hammer(url, "/bench/bare/", secret, clients=args.clients, seconds=1.0, prefix="warm-bare"))
    ok, _ = asyncio.run(hammer(url, "/api/v1/webhooks/bench/", secret, clients=args.clients, seconds=1.0,
                               prefix="warm"))
    accepted += ok
    for round_number in range(1, args.rounds + 1):
        for name, path, rates in (("bare", "/bench/bare/", bare_rates), ("ours", "/api/v1/webhooks/bench/", our_rates)):
            started = time.perf_counter()
            ok, errors = asyncio.run(hammer(url, path, secret, clients=args.clients, seconds=args.seconds,
                                            prefix=f"r{round_number}"))
            rate = ok / (time.perf_counter() - started)
            rates.append(rate)
            if name == "ours":
                accepted += ok
            print(f"  round {round_number} {name:4}: {rate:8.0f} requests/s ({ok} ok, {errors} errors)")
    return statistics.median(bare_rates), statistics.median(our_rates), accepted


def batches(url: str, secret: str, source_id: int, args) -> tuple[float, float] | None:
    import httpx
    import psycopg
    from django.db import connection

    if connection.vendor != "postgresql":
        print("\nBatches of 500 against raw COPY: PostgreSQL only (set DATABASE_URL=postgres://…); skipped.")
        return None
    params = connection.get_connection_params()
    table = "inbound_inboundevent"
    ours, copies = [], []
    with httpx.Client(base_url=url, timeout=60) as client, psycopg.connect(**{
        k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port")
    }) as raw:
        for round_number in range(1, args.rounds + 1):
            documents = [[event(f"b{round_number}-{b}-{i}", i) for i in range(BATCH)] for b in range(args.batches)]
            started = time.perf_counter()
            for events in documents:
                body = json.dumps({"events": events}).encode()
                response = client.post("/api/v1/webhooks/bench/", content=body, headers=signed(secret, body))
                assert response.status_code == 200 and response.json()["accepted"] == BATCH, response.text[:300]
            ours.append(args.batches * BATCH / (time.perf_counter() - started))

            started = time.perf_counter()
            for events in documents:
                now = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime())
                with raw.cursor() as cursor, cursor.copy(
                    f"COPY {table} (source_id, event_id, type, occurred_at, payload, signature_ok, status, reason, "
                    "received_at, attempts, ingest_token, claim_token) FROM STDIN"
                ) as copy:
                    for e in events:
                        copy.write_row((source_id, "copy-" + e["id"], e["type"], e["occurred_at"], json.dumps(e), True,
                                        "received", "", now, 0, "", ""))
                raw.commit()
            copies.append(args.batches * BATCH / (time.perf_counter() - started))
            print(f"  round {round_number}: ours {ours[-1]:8.0f} events/s, raw COPY {copies[-1]:8.0f} events/s")
    return statistics.median(ours), statistics.median(copies)


def main() -> int:
    args = parse_args()
    machine_busy()
    with bench_environment("ingest", keep=args.keep) as world:
        from django.db import connection

        from advisors.inbound.models import InboundEvent, InboundSource

        source = InboundSource.objects.create(slug="bench", name="Bench")
        connection.close()
        port = free_port()
        # As the Procfile runs web: with its connection pool on PostgreSQL, no kept connections.
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.ingest_settings", "DATABASE_CONN_MAX_AGE": "0"}
        if connection.vendor == "postgresql":
            env["DATABASE_POOL"] = "1"
        daphne = Process("daphne", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                    "opscenter.asgi:application"], world["log_dir"], env=env)
        try:
            wait_for_port(daphne, port)
            url = f"http://127.0.0.1:{port}"
            print(f"\nSingle events: {args.clients} clients, {args.seconds:.0f} s per phase, {args.rounds} rounds")
            bare, ours, accepted = single_events(url, source.secret, args)
            stored = InboundEvent.objects.filter(source=source).count()
            single_ratio = ours / bare
            print(f"\n  median bare {bare:.0f} requests/s, ours {ours:.0f} accepted events/s -> ratio {single_ratio:.2f} "
                  f"(target >= {SINGLE_TARGET}): {'PASS' if single_ratio >= SINGLE_TARGET else 'FAIL'}")
            print(f"  events stored {stored}, accepted answers {accepted}: "
                  f"{'all stored, none doubled' if stored == accepted else 'MISMATCH'}")
            ok = single_ratio >= SINGLE_TARGET and stored == accepted
            print(f"\nBatches of {BATCH}: {args.batches} per round, {args.rounds} rounds")
            result = batches(url, source.secret, source.pk, args)
            if result:
                ours_batch, copy = result
                batch_ratio = ours_batch / copy
                print(f"\n  median ours {ours_batch:.0f} events/s, raw COPY {copy:.0f} events/s -> ratio "
                      f"{batch_ratio:.2f} (target >= {BATCH_TARGET}): {'PASS' if batch_ratio >= BATCH_TARGET else 'FAIL'}")
                ok = ok and batch_ratio >= BATCH_TARGET
        finally:
            daphne.stop()
    busy_note = f" (figures are suspect if the machine was over {BUSY_WARNING:.0f}% busy before the run)"
    print(f"\nOverall: {'PASS' if ok else 'FAIL'}{busy_note}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
