"""A real outage: a process logs through a PostgreSQL that stops answering, then comes back.

The process reaches the test database through a TCP relay on loopback that the test closes
(connections refused, open ones cut) and reopens, as a restarted or unreachable server would.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from monitoring.logs.models import LogEntry
from tests.logs.conftest import wait_until
from tests.processes import ROOT, subprocess_database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PROBE = """
import json, logging, os, sys, time
import django
django.setup()
log = logging.getLogger("outage.probe")
print("ready", flush=True)
for line in sys.stdin:
    command, *args = line.split()
    if command == "log":
        count, tag = int(args[0]), args[1]
        started, slowest = time.perf_counter(), 0.0
        for i in range(count):
            t0 = time.perf_counter()
            log.error("%s %d", tag, i)
            slowest = max(slowest, time.perf_counter() - t0)
        print(json.dumps({"slowest": slowest, "total": time.perf_counter() - started}), flush=True)
    elif command == "quit":
        break
"""


class Relay:
    """A TCP relay 127.0.0.1:<port> → the database server, that can be stopped and started again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def test_a_process_keeps_logging_through_a_database_outage_and_stores_the_backlog_after(tmp_path: Path, settings):
    db = connection.settings_dict
    relay = Relay((db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)))
    url = subprocess_database_url().replace(f":{db.get('PORT') or 5432}/", f":{relay.port}/", 1)
    assert f":{relay.port}/" in url
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "opscenter.settings", "DATABASE_URL": url,
           "REDIS_URL": settings.REDIS_URL, "OPSCENTER_VAR_DIR": str(settings.VAR_DIR), "LOG_STORE_ENABLED": "true",
           "PYTHONUNBUFFERED": "1"}
    stderr = (tmp_path / "probe.log").open("w")
    probe = subprocess.Popen([sys.executable, "-c", PROBE], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=stderr, text=True)

    def ask(command: str) -> dict:
        probe.stdin.write(command + "\n")
        probe.stdin.flush()
        return json.loads(probe.stdout.readline())

    try:
        assert probe.stdout.readline().strip() == "ready"
        # The database is unreachable from the start: nothing listens on the relay's port.
        down = ask("log 300 while-down")
        assert down["slowest"] < 0.05, down
        assert down["total"] < 1.5, down
        time.sleep(1.5)  # the writer has tried and failed meanwhile
        assert "not written yet" in (tmp_path / "probe.log").read_text()
        assert not LogEntry.objects.filter(logger="outage.probe").exists()

        relay.start()
        wait_until(lambda: LogEntry.objects.filter(message__startswith="while-down").count() == 300, timeout=40,
                   message="the 300 entries held during the outage")
        assert ask("log 5 after-recovery")["slowest"] < 0.05
        wait_until(lambda: LogEntry.objects.filter(message__startswith="after-recovery").count() == 5, timeout=10)

        # A second outage, this time cutting the open connection under the writer.
        relay.stop()
        again = ask("log 50 cut-off")
        assert again["slowest"] < 0.05, again
        time.sleep(1.5)
        relay.start()
        wait_until(lambda: LogEntry.objects.filter(message__startswith="cut-off").count() == 50, timeout=40,
                   message="the entries logged while the connection was cut")
        assert probe.poll() is None  # the process never noticed
    finally:
        if probe.poll() is None:
            probe.stdin.write("quit\n")
            probe.stdin.flush()
            try:
                probe.wait(timeout=10)
            except subprocess.TimeoutExpired:
                probe.kill()
        relay.stop()
        stderr.close()
