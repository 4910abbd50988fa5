"""Fixtures of the health tests: a real HTTP server on loopback, throwaway Redis servers, checks."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.services import RedisServer

_names = itertools.count(1)


@dataclass
class LoopbackServer:
    """An HTTP server on 127.0.0.1 (its own threads) with a few fixed paths:

    /ok → 200 "service ok"; /status/<n> → that status; /json → {"status": "ok", "checks": [{"ok": true}]};
    /slow?<seconds> → 200 after sleeping; /flip → `flip_status` (tests change it).
    """

    base: str
    hits: list[str] = field(default_factory=list)
    flip_status: int = 200


@contextlib.contextmanager
def loopback_server() -> Iterator[LoopbackServer]:
    """Serve LoopbackServer's paths on a free 127.0.0.1 port until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            server.hits.append(self.path)
            path, _, query = self.path.partition("?")
            status, body, kind = 200, b"service ok", "text/plain"
            if path.startswith("/status/"):
                status, body = int(path.rsplit("/", 1)[1]), b"scripted"
            elif path == "/json":
                body, kind = json.dumps({"status": "ok", "checks": [{"ok": True, "n": 3}]}).encode(), "application/json"
            elif path == "/slow":
                time.sleep(float(query or 2))
            elif path == "/flip":
                status = server.flip_status
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the check gave up first (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server = LoopbackServer(base=f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http_server() -> Iterator[LoopbackServer]:
    with loopback_server() as server:
        yield server


@pytest.fixture
def throwaway_redis(tmp_path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may stop and start again."""
    directory = Path(tmp_path) / "redis"
    directory.mkdir()
    server = RedisServer(directory).start()
    try:
        yield server
    finally:
        server.stop()


def make_check(**fields):
    """Create an enabled health check (HTTP unless told otherwise), validated as the admin would."""
    from monitoring.health.models import HealthCheck

    defaults = {"name": f"check {next(_names)}", "kind": "http", "url": "http://127.0.0.1:9/",
                "interval_seconds": 60, "timeout_seconds": 2.0}
    check = HealthCheck(**{**defaults, **fields})
    check.full_clean()
    check.save()
    return check


@pytest.fixture
def only_our_checks(db):
    """Leave OpsCenter's own checks (bootstrap's) out: the test counts what the dispatcher takes."""
    from monitoring.health.models import HealthCheck

    HealthCheck.objects.filter(system_key__isnull=False).delete()
