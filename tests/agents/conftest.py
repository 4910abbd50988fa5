"""Fixtures of the agent tests: the test agents, and a real Celery worker that can be killed.

`agent_worker` (one per module) runs `celery -A opscenter worker` with two prefork
processes on the test database and the session Redis, so runs, heartbeats, time limits
and live events go through the real broker and channel layer. Tests take the `worker`
fixture: it (re)starts the worker if an earlier test killed it, gives this process the
worker's agent timings, and when the test ends stops whatever runs it left behind, so the
database flush never races a run that is still writing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

import tests.agents.sample_agents  # noqa: F401  (registers the test agents before the database is set up)
from agents.models import ACTIVE_STATUSES, FINAL_STATUSES, AgentKind, AgentRun, RunStatus
from agents.services import reap_runs
from opscenter.celery import app
from tests.processes import ROOT, subprocess_database_url, tails

# The worker's agent timings; tests that reap or retry in this process use the same ones.
WORKER_SETTINGS = {
    "AGENT_HEARTBEAT_SECONDS": 1,
    "AGENT_LOST_AFTER_SECONDS": 4,
    "AGENT_HARD_LIMIT_GRACE_SECONDS": 2,
    "AGENT_RETRY_DELAY_SECONDS": 0,
    "INBOUND_LEASE_SECONDS": 10,  # inbound events a killed worker held are taken again soon
}
STARTUP_TIMEOUT_SECONDS = 60
RUN_TIMEOUT_SECONDS = 20
SETTLE_TIMEOUT_SECONDS = 10


class AgentWorker:
    """A `celery -A opscenter worker` subprocess (prefork, concurrency 2) in its own process group."""

    timings = WORKER_SETTINGS

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.workdir = workdir
        self.pid_dir = workdir / "pids"
        self.pid_dir.mkdir()
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "opscenter.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": settings.REDIS_URL,
            "OPSCENTER_VAR_DIR": str(settings.VAR_DIR),
            "OPSCENTER_AGENT_MODULES": "tests.agents.sample_agents",
            "TEST_AGENT_PID_DIR": str(self.pid_dir),
            "PYTHONUNBUFFERED": "1",
            # Webhook agents may call the test receiver on 127.0.0.1, and retry at once.
            "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
            "WEBHOOK_RETRY_DELAY_SECONDS": "0",
            **{name: str(value) for name, value in WORKER_SETTINGS.items()},
        }
        self.process: subprocess.Popen | None = None
        self.generation = 0
        self.nodename = ""

    # --- the process ----------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start a fresh worker and return once it answers a ping."""
        self.generation += 1
        self.nodename = f"agents{self.generation}@{socket.gethostname()}"
        command = [
            sys.executable, "-m", "celery", "-A", "opscenter", "worker", "--pool", "prefork", "--concurrency", "2",
            "--loglevel", "info", "--hostname", self.nodename, "--without-gossip", "--without-mingle",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes the pool processes too
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not self.alive:
                pytest.fail(f"the Celery worker exited during start-up\n{self.logs()}", pytrace=False)
            if app.control.ping(destination=[self.nodename], timeout=0.5):
                return
        self.kill()
        pytest.fail(f"the Celery worker did not answer within {STARTUP_TIMEOUT_SECONDS}s\n{self.logs()}", pytrace=False)

    def ensure_running(self) -> None:
        if not self.alive:
            self.start()

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a machine dying would."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the worker gently (warm shutdown), killing it if it does not go."""
        if not self.alive:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # pool processes left behind, if any

    @property
    def log_path(self) -> Path:
        return self.workdir / "worker.log"

    def logs(self, lines: int = 60) -> str:
        """Return the tail of the worker's output, for failure messages."""
        return tails(self.workdir, {"worker": self.process}, lines) if self.process else "(no worker started)"

    def pool_pid(self, run_id: int, timeout: float = RUN_TIMEOUT_SECONDS) -> int:
        """Return the pid of the pool process running `run_id` (written by the test-slow agent)."""
        path = self.pid_dir / f"run-{run_id}.pid"
        self.wait_until(lambda: path.exists() and path.read_text().strip(), timeout, f"run {run_id} wrote no pid")
        return int(path.read_text())

    # --- waiting for runs -----------------------------------------------------------------

    def wait_until(self, predicate: Callable[[], Any], timeout: float, message: str, *, every: float = 0.1) -> Any:
        """Poll `predicate` until it returns something truthy; fail with the worker's log after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"{message} within {timeout}s\n{self.logs()}", pytrace=False)
            time.sleep(every)

    def wait_for_run(
        self,
        run_id: int,
        statuses: Iterable[str] | None = None,
        *,
        timeout: float = RUN_TIMEOUT_SECONDS,
        reap: bool = False,
        where: Callable[[Any], bool] | None = None,
    ):
        """Return the run once it is in one of `statuses` (default: any final one) and `where` holds.

        With `reap`, the reaper runs in this process on every poll, as beat would run it.
        """
        wanted = set(statuses or FINAL_STATUSES)

        def reached():
            if reap:
                reap_runs()
            run = AgentRun.objects.select_related("agent").get(pk=run_id)
            return run if run.status in wanted and (where is None or where(run)) else None

        return self.wait_until(reached, timeout, f"run {run_id} did not reach {sorted(wanted)}", every=0.2)

    def settle_active_runs(self) -> None:
        """Cancel what a test left queued or running; kill the worker if a run will not stop."""
        now = timezone.now()
        active = AgentRun.objects.filter(status__in=ACTIVE_STATUSES)
        # Queued runs, runs waiting for children and remote runs hold no worker: nothing else would end them.
        active.filter(
            Q(status=RunStatus.QUEUED) | Q(awaiting_children=True) | ~Q(agent__kind=AgentKind.BUILTIN)
        ).update(status=RunStatus.CANCELLED, finished_at=now)
        active.filter(cancel_requested_at__isnull=True).update(cancel_requested_at=now)
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        while active.exists() and time.monotonic() < deadline and self.alive:
            time.sleep(0.2)
        if active.exists():
            # A run that ignores cancellation (or a dead worker's run): take its worker down,
            # the next test starts a fresh one.
            self.kill()
            active.update(status=RunStatus.CANCELLED, finished_at=timezone.now())


@pytest.fixture(scope="module")
def agent_worker(django_db_setup, django_db_blocker):
    """A real Celery worker on the test database for this module's tests."""
    workdir = Path(tempfile.mkdtemp(prefix="opscenter-agents-"))
    with django_db_blocker.unblock():
        worker = AgentWorker(subprocess_database_url(), workdir)
    try:
        yield worker
    finally:
        worker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def worker(agent_worker, transactional_db, settings) -> AgentWorker:
    """The module's worker, running; this process uses its timings; leftovers stopped afterwards."""
    for name, value in WORKER_SETTINGS.items():
        setattr(settings, name, value)
    agent_worker.ensure_running()
    yield agent_worker
    agent_worker.settle_active_runs()


# --- a webhook receiver ---------------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A tiny HTTP server on 127.0.0.1 that records each POST and answers with scripted statuses."""

    url: str
    requests: list[ReceivedRequest] = field(default_factory=list)
    # Status codes for the next POSTs, in order; 200 once they run out.
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for_requests(self, count: int, timeout: float = RUN_TIMEOUT_SECONDS) -> list[ReceivedRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                pytest.fail(f"the webhook receiver got {len(self.requests)} of {count} requests", pytrace=False)
            time.sleep(0.05)
        return list(self.requests)


@pytest.fixture
def webhook_receiver():
    """A running WebhookReceiver; its URL is http://127.0.0.1:<port>/hooks/run."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.requests.append(ReceivedRequest(self.path, dict(self.headers.items()), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            reply = b'{"accepted": true}' if status < 300 else b'{"error": "scripted failure"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks/run")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="webhook-receiver",
                              daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
