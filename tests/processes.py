"""Helpers for tests that run parts of the system as real subprocesses on the test database.

Used by the browser tests (tests/e2e: web, worker and beat) and the agent runtime tests
(tests/agents: a Celery worker they can kill).
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]


def subprocess_database_url() -> str:
    """Return a DATABASE_URL for the test database django_db_setup has just created."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(db["NAME"])
        if connection.is_in_memory_db() or not name:
            pytest.skip("tests that start servers need a file-based SQLite test database (settings TEST NAME)")
        return f"sqlite:///{name}"
    if connection.vendor == "postgresql":
        user = quote(db.get("USER") or "", safe="")
        password = quote(db.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or ""
        if host.startswith("/"):  # a unix socket directory, as django-environ reads it back
            host = quote(host, safe="")
        port = f":{db['PORT']}" if db.get("PORT") else ""
        options = {k: v for k, v in (db.get("OPTIONS") or {}).items() if isinstance(v, (str, int))}
        query = f"?{urlencode(options)}" if options else ""
        return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}{query}"
    pytest.skip(f"tests that start servers do not know how to share a {connection.vendor} test database")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tails(log_dir: Path, processes: dict[str, subprocess.Popen], lines: int) -> str:
    """Return the tail of each process's log file (`<log_dir>/<name>.log`), for failure messages."""
    parts = []
    for name, process in processes.items():
        path = log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        tail = "\n".join(text.splitlines()[-lines:]) or "(no output)"
        parts.append(f"----- {name} (exit code {process.poll()}) {path}\n{tail}")
    return "\n".join(parts)
