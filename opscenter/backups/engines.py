"""Dump, restore and count the database: pg_dump/pg_restore for PostgreSQL, the online backup API for SQLite.

Everything here works on the database Django is connected to (`django.db.connection`), so
tests dump and restore their own test database, never the development one. Credentials go
to the PostgreSQL tools through the environment (PGPASSWORD…), never on the command line,
where any local user could read them in the process list.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

Beat = Callable[[], None]  # called every few seconds while a long step runs


class EngineError(Exception):
    """A dump, restore or count that did not complete; the message says why."""


def vendor() -> str:
    """Return the database vendor: "postgresql" or "sqlite"."""
    if connection.vendor not in {"postgresql", "sqlite"}:
        raise EngineError(f"Backups support PostgreSQL and SQLite, not {connection.vendor}.")
    return connection.vendor


def extension() -> str:
    return "dump" if vendor() == "postgresql" else "sqlite3"


# --- PostgreSQL ------------------------------------------------------------------------------

# libpq settings we pass on from the database OPTIONS (sslmode=require etc.).
_PG_OPTION_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
}


def pg_binary(name: str) -> str:
    """Find pg_dump / pg_restore: BACKUPS_PG_BIN_DIR, then PATH, then the newest /usr/lib/postgresql/<v>/bin."""
    if settings.BACKUPS_PG_BIN_DIR:
        candidate = Path(settings.BACKUPS_PG_BIN_DIR) / name
        if not candidate.exists():
            raise EngineError(f"{name} is not in BACKUPS_PG_BIN_DIR={settings.BACKUPS_PG_BIN_DIR}.")
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                      key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("/")[4])], reverse=True)
    if versions:
        return versions[0]
    raise EngineError(f"{name} was not found: install the PostgreSQL client tools or set BACKUPS_PG_BIN_DIR.")


def _pg_params(dbname: str | None = None) -> dict:
    db = connection.settings_dict
    params = {"dbname": dbname or db["NAME"], "user": db.get("USER") or None, "password": db.get("PASSWORD") or None,
              "host": db.get("HOST") or None, "port": str(db["PORT"]) if db.get("PORT") else None}
    for key in _PG_OPTION_ENV:
        if (db.get("OPTIONS") or {}).get(key) is not None:
            params[key] = db["OPTIONS"][key]
    return {k: v for k, v in params.items() if v is not None}


def _pg_env(dbname: str | None = None) -> dict[str, str]:
    params = _pg_params(dbname)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    names = {"dbname": "PGDATABASE", "user": "PGUSER", "password": "PGPASSWORD", "host": "PGHOST", "port": "PGPORT",
             **_PG_OPTION_ENV}
    env.update({names[k]: str(v) for k, v in params.items()})
    return env


def _pg_connect(dbname: str | None = None, *, autocommit: bool = False):
    import psycopg

    return psycopg.connect(**_pg_params(dbname), autocommit=autocommit)


def _pg_counts(cursor) -> dict[str, int]:
    from psycopg import sql

    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() ORDER BY c.relname"
    )
    tables = [row[0] for row in cursor.fetchall()]
    counts = {}
    for table in tables:
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        counts[table] = cursor.fetchone()[0]
    return counts


def _run(command: list[str], *, env: dict[str, str], beat: Beat | None, what: str) -> None:
    """Run a PostgreSQL tool, beating while it runs; raise EngineError with its stderr on failure."""
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        while True:
            try:
                _, stderr = process.communicate(timeout=settings.BACKUPS_HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if beat:
                    beat()
    except BaseException:
        process.kill()
        process.wait()
        raise
    if process.returncode != 0:
        message = stderr.decode(errors="replace").strip()[-2000:]
        raise EngineError(f"{what} failed (exit {process.returncode}): {message}")


def _pg_dump(path: Path, beat: Beat | None) -> dict[str, int]:
    # Count the rows in the very snapshot pg_dump dumps: a REPEATABLE READ transaction
    # exports its snapshot and stays open while pg_dump reads through it, so writes that
    # land during the dump change neither the file nor the counts.
    with _pg_connect() as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            counts = _pg_counts(cursor)
        _run([pg_binary("pg_dump"), "--format=custom", "--no-password", f"--snapshot={snapshot}",
              f"--file={path}"], env=_pg_env(), beat=beat, what="pg_dump")
        conn.rollback()
    return counts


def _pg_restore_into(path: Path, dbname: str | None, beat: Beat | None, *, clean: bool) -> None:
    command = [pg_binary("pg_restore"), "--no-password", "--single-transaction", "--exit-on-error", "--no-owner",
               f"--dbname={dbname or connection.settings_dict['NAME']}"]
    if clean:
        command += ["--clean", "--if-exists"]
    command.append(str(path))
    _run(command, env=_pg_env(dbname), beat=beat, what="pg_restore")


def _pg_scratch_counts(path: Path, beat: Beat | None) -> dict[str, int]:
    from psycopg import sql

    base = connection.settings_dict["NAME"]
    scratch = f"{base[:40]}_verify_{secrets.token_hex(4)}"
    with _pg_connect(autocommit=True) as admin:
        try:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(scratch)))
        except Exception as exc:
            raise EngineError(f"Could not create the scratch database (the role needs CREATEDB): {exc}") from exc
        try:
            _pg_restore_into(path, scratch, beat, clean=False)
            with _pg_connect(scratch) as conn, conn.cursor() as cursor:
                return _pg_counts(cursor)
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))


# --- SQLite ------------------------------------------------------------------------------------


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    # Table names come from sqlite_master, quoted as identifiers: not user input.
    return {table: conn.execute(f'SELECT count(*) FROM "{table.replace(chr(34), chr(34) * 2)}"').fetchone()[0]  # noqa: S608
            for table in tables}


def _sqlite_live_path() -> str:
    name = str(connection.settings_dict["NAME"])
    if connection.is_in_memory_db() or not name:
        raise EngineError("An in-memory SQLite database cannot be backed up.")
    return name


def _sqlite_dump(path: Path, beat: Beat | None) -> dict[str, int]:
    source = sqlite3.connect(f"file:{_sqlite_live_path()}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(path)
    try:
        # One step: the copy is one consistent read snapshot (in WAL mode writers go on
        # meanwhile); a stepped copy restarts whenever another connection writes.
        source.backup(target)
        # A self-contained file: rollback-journal mode needs no -wal/-shm beside it to be
        # read (verify opens it read-only). A restore keeps the live database's WAL mode.
        target.execute("PRAGMA journal_mode=DELETE")
        counts = _sqlite_counts(target)
    finally:
        target.close()
        source.close()
    return counts


def _sqlite_check(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise EngineError(f"The SQLite file is damaged: {result}")
        return _sqlite_counts(conn)
    except sqlite3.DatabaseError as exc:
        raise EngineError(f"Not a readable SQLite database: {exc}") from exc
    finally:
        conn.close()


def _sqlite_restore(path: Path) -> None:
    _sqlite_check(path)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(_sqlite_live_path(), timeout=60)
    try:
        # The backup API writes the live file page by page inside one write transaction
        # (pages=-1: a single step), so other connections see the old or the new database,
        # never a mix, and the web and worker processes keep their open connections.
        source.backup(target)
    finally:
        target.close()
        source.close()


# --- the interface the services use -------------------------------------------------------------


def dump(path: Path, *, beat: Beat | None = None) -> dict[str, int]:
    """Dump the database to `path`; return the row count of every table in the dumped snapshot."""
    started = time.monotonic()
    counts = _pg_dump(path, beat) if vendor() == "postgresql" else _sqlite_dump(path, beat)
    if not path.exists() or path.stat().st_size == 0:
        raise EngineError(f"The dump produced no data after {time.monotonic() - started:.1f} s.")
    return counts


def scratch_counts(path: Path, *, beat: Beat | None = None) -> dict[str, int]:
    """Restore `path` into a scratch database (dropped afterwards); return its row counts per table."""
    if vendor() == "postgresql":
        return _pg_scratch_counts(path, beat)
    return _sqlite_check(path)


def restore(path: Path, *, beat: Beat | None = None) -> None:
    """Replace the live database's contents with the dump at `path`, all or nothing."""
    if connection.in_atomic_block:
        # The restore needs every table's lock; our own open transaction would deadlock it.
        raise EngineError("A restore cannot run inside a database transaction.")
    if vendor() == "postgresql":
        _pg_restore_into(path, None, beat, clean=True)
    else:
        _sqlite_restore(path)


def live_counts() -> dict[str, int]:
    """Return the row count of every table in the live database now."""
    if vendor() == "postgresql":
        with _pg_connect() as conn, conn.cursor() as cursor:
            return _pg_counts(cursor)
    conn = sqlite3.connect(f"file:{_sqlite_live_path()}?mode=ro", uri=True, timeout=30)
    try:
        return _sqlite_counts(conn)
    finally:
        conn.close()
