"""The whole system as real processes, for browser tests.

`running_system` starts daphne, a Celery worker and Celery beat as subprocesses, on the
test database and on a Redis of their own (the session Redis is flushed before every
test, which would wipe the heartbeat and the live sequence numbers under the servers'
feet). They share OPSCENTER_VAR_DIR with this process, so the SECRET_KEY is the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.factories import PASSWORD, make_user
from tests.processes import ROOT, free_port, subprocess_database_url, tails
from tests.services import RedisServer

# The database name before any test database exists: if it is unchanged after
# django_db_setup, pytest-django created nothing (see e2e_test_database).
_NAME_BEFORE_SETUP = connection.settings_dict["NAME"]
STARTUP_TIMEOUT_SECONDS = 60
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass
class Credentials:
    username: str
    password: str
    role: str


@dataclass
class RunningSystem:
    base_url: str
    users: dict[str, Credentials]
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def logs(self, lines: int = 40) -> str:
        """Return the tail of every process's output, for failure messages."""
        return tails(self.log_dir, self.processes, lines)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE") or "/usr/bin/chromium"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(f"no Chromium at {path}: install it or set PLAYWRIGHT_CHROMIUM_EXECUTABLE")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path, running_system):
    """Chromium, started after the system and closed before it.

    Playwright's sync API runs an event loop in this thread while it is open, and Django
    then refuses ORM calls here; the ordering keeps running_system's database work
    (creating and deleting users) outside that window.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def e2e_test_database(django_db_setup, django_db_blocker, django_db_keepdb, django_db_createdb):
    """Make sure the test database exists, even when no selected test asked for it.

    pytest-django creates only the databases that some collected test declares with the
    django_db mark or the db fixtures. Browser tests must not take those: they would hold
    a transaction open (on SQLite, the write lock) while the servers need to write. So
    when only browser tests run, the test database is set up here, the same way.
    """
    if connection.settings_dict["NAME"] != _NAME_BEFORE_SETUP:
        yield
        return
    from django.test.utils import setup_databases, teardown_databases

    keepdb = django_db_keepdb and not django_db_createdb
    with django_db_blocker.unblock():
        config = setup_databases(verbosity=0, interactive=False, aliases={"default"}, keepdb=keepdb)
    yield
    if not keepdb:
        with django_db_blocker.unblock():
            teardown_databases(config, verbosity=0)


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    # Web first (no new work), then beat, then the worker so it can finish what it holds.
    for name in ("web", "beat", "worker"):
        process = processes.get(name)
        if process is None or process.poll() is not None:
            continue
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_for_health(base_url: str, processes: dict[str, subprocess.Popen]) -> str | None:
    """Return None once /api/v1/health answers 200, or the reason it never did."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last_error = "no answer"
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                return f"{name} exited with code {process.returncode} during start-up"
        try:
            with urllib.request.urlopen(f"{base_url}/api/v1/health", timeout=2) as response:
                if response.status == 200:
                    return None
                last_error = f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            last_error = str(exc)
        time.sleep(0.2)
    return f"/api/v1/health did not answer within {STARTUP_TIMEOUT_SECONDS}s ({last_error})"


@pytest.fixture(scope="module")
def running_system(e2e_test_database, django_db_blocker):
    """Start web, worker and beat on the test database; yield URLs and credentials."""
    database_url = subprocess_database_url()
    workdir = Path(tempfile.mkdtemp(prefix="opscenter-e2e-"))
    redis_dir = workdir / "redis"
    redis_dir.mkdir()
    redis_server = RedisServer(redis_dir).start()
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "opscenter.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_server.url,
        "OPSCENTER_VAR_DIR": str(settings.VAR_DIR),
        "OPSCENTER_HEARTBEAT_SECONDS": "2",
        "OPSCENTER_AGENT_MODULES": "tests.agents.sample_agents",
        "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "opscenter"]
    commands = {
        "web": [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "opscenter.asgi:application"],
        "worker": [*celery, "worker", "-l", "warning", "--concurrency", "1", "-n", "e2e@%h"],
        # --schedule: the database scheduler ignores it, but no stray file if that ever changes
        "beat": [
            *celery,
            "beat",
            "-l",
            "warning",
            "--pidfile",
            str(workdir / "beat.pid"),
            "--schedule",
            str(workdir / "beat-schedule"),
        ],
    }
    processes: dict[str, subprocess.Popen] = {}
    users: list = []
    try:
        for name, command in commands.items():
            with open(workdir / f"{name}.log", "wb") as log:
                processes[name] = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
        base_url = f"http://127.0.0.1:{port}"
        problem = _wait_for_health(base_url, processes)
        if problem:
            pytest.fail(f"OpsCenter did not start: {problem}\n{tails(workdir, processes, 60)}", pytrace=False)

        credentials = {}
        with django_db_blocker.unblock():
            for role in ("Viewer", "Admin"):
                user = make_user(role, username=f"e2e-{role.lower()}-{port}")
                users.append(user)
                credentials[role.lower()] = Credentials(user.username, PASSWORD, role)
        yield RunningSystem(base_url=base_url, users=credentials, log_dir=workdir, processes=processes)
    finally:
        _stop(processes)
        redis_server.stop()
        with django_db_blocker.unblock():
            for user in users:
                user.delete()
            from axes.utils import reset

            reset(ip="127.0.0.1")  # the wrong-password tests must not lock out a reused database
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class ReviewQueueData:
    reviewers: list[Credentials]
    advisor_id: int
    items: dict[str, int]  # role in the test -> content id, oldest first


@pytest.fixture(scope="module")
def review_queue_data(running_system, django_db_blocker):
    """Two reviewers and three pending items for an advisor of their own; all removed afterwards.

    Request it before `browser` (the ORM is refused here while Playwright runs).
    """
    from datetime import timedelta

    from django.utils import timezone

    from advisors.models import Advisor, Content, Delivery
    from tests.factories import make_content

    port = int(running_system.base_url.rsplit(":", 1)[1])
    body = "Our equity fund offers guaranteed returns of 15% a year. Start your SIP today."
    claim = body.index("guaranteed")
    with django_db_blocker.unblock():
        users = [make_user("Reviewer", username=f"e2e-reviewer{n}-{port}") for n in (1, 2)]
        advisor = Advisor.objects.create(name=f"E2E Advisor {port}", arn=f"ARN-{port}", phone=f"+9177{port:08d}")
        now = timezone.now()
        items = {
            role: make_content(
                advisor,
                title=f"{role.capitalize()} me {port}",
                body=body,
                compliance_verdict="fail" if role == "reject" else "pass",
                compliance_findings=[
                    {"rule": "banned-claim", "severity": "high", "message": "Promises guaranteed returns.",
                     "start": claim, "end": claim + 18}
                ] if role == "reject" else [],
                submitted_at=now - timedelta(minutes=10 - n),
            ).pk
            for n, role in enumerate(("approve", "reject", "keep"))
        }
    try:
        yield ReviewQueueData(
            reviewers=[Credentials(u.username, PASSWORD, "Reviewer") for u in users],
            advisor_id=advisor.pk,
            items=items,
        )
    finally:
        with django_db_blocker.unblock():
            ids = list(items.values())
            Delivery.objects.filter(content_id__in=ids).delete()  # outbox messages go with them
            Content.objects.filter(pk__in=ids).delete()
            advisor.delete()
            for user in users:
                user.delete()
