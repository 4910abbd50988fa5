"""A logging handler that stores records in the log store without ever slowing the caller.

`emit()` only turns the record into a plain dict and appends it to a bounded in-memory
queue; a daemon thread per process writes the queue with one bulk INSERT per batch (every
`flush_interval` seconds, or sooner when a batch is full) and publishes each batch on the
`logs` live topic. So:

- the caller never waits for the database and never sees an exception from here;
- while the database is down the queue holds up to `capacity` entries (the oldest are
  kept: the first error of an incident is usually its cause); what does not fit is
  counted, and the count is stored as one WARNING entry once writes succeed again;
- what the writer thread itself logs (the database driver, Redis) is never stored, so a
  failing write cannot feed itself;
- each process has its own queue and thread: after a fork (Celery's prefork pool) the
  child starts empty with fresh locks and starts its own thread on first use.

Wired into LOGGING in opscenter/settings.py for web (daphne), worker and beat alike.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import sys
import threading
import time
import traceback
import weakref
from collections import deque
from typing import Any

_local = threading.local()  # .busy: this thread is inside emit() or a write, ignore its records
_handlers: weakref.WeakSet[DatabaseLogHandler] = weakref.WeakSet()

MAX_MESSAGE = 10_000
MAX_TRACEBACK = 50_000
MAX_EXTRA_VALUE = 1_000
MAX_BACKOFF_SECONDS = 30.0

# Attributes every LogRecord has; anything else on a record came from `extra=` and is kept.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request"}


def process_source(argv: list[str] | None = None) -> str:
    """Return which OpsCenter process this is (web, worker, beat, command or other), from its command line."""
    argv = list(sys.argv if argv is None else argv)
    program = os.path.basename(argv[0]) if argv else ""
    words = set(argv[1:])
    if program.startswith(("daphne", "uvicorn", "gunicorn")):
        return "web"
    if "celery" in program or "celery" in (argv[0] if argv else ""):
        if "beat" in words:
            return "beat"
        if "worker" in words:
            return "worker"
        return "other"
    if program == "manage.py" or program.endswith("django-admin"):
        command = argv[1] if len(argv) > 1 else ""
        return "web" if command == "runserver" else "command"
    return "other"


class DatabaseLogHandler(logging.Handler):
    """Queue records for the log store; a background thread writes them in batches."""

    def __init__(
        self,
        level: int | str = logging.WARNING,
        *,
        enabled: bool | None = None,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        source: str | None = None,
    ) -> None:
        super().__init__(level)
        self._enabled = enabled  # None: follow settings.LOG_STORE_ENABLED
        self.capacity = max(1, int(capacity))
        self.batch_size = max(1, int(batch_size))
        self.flush_interval = float(flush_interval)
        self.source = source
        self.host = socket.gethostname()[:200]
        self._reset()
        _handlers.add(self)

    # --- per-process state ----------------------------------------------------------------

    def _reset(self) -> None:
        """Start this process's queue and thread from nothing (at creation and after a fork)."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: deque[dict[str, Any]] = deque()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._backoff = 0.0
        self.dropped = 0  # not yet reported in the store
        self.dropped_total = 0
        self.written_total = 0
        self.failed_writes = 0
        if self.source is None or getattr(self, "_source_guessed", False):
            self.source = process_source()
            self._source_guessed = True

    @property
    def enabled(self) -> bool:
        if self._enabled is not None:
            return self._enabled
        try:
            from django.conf import settings

            return bool(getattr(settings, "LOG_STORE_ENABLED", True))
        except Exception:
            return False

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- the caller's side: never blocks, never raises ------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(_local, "busy", False):
            return
        _local.busy = True
        try:
            if not self.enabled or self._closed:
                return
            if os.getpid() != self._pid:
                self._reset()  # forked without the at-fork hook (e.g. a custom fork path)
            if threading.current_thread() is self._thread:
                return
            entry = self._entry(record)
            with self._lock:
                if len(self._pending) >= self.capacity:
                    self.dropped += 1
                    self.dropped_total += 1
                    return
                self._pending.append(entry)
                full = len(self._pending) >= self.batch_size
            self._ensure_thread()
            if full:
                self._wake.set()
        except Exception:
            self.dropped += 1
            self.dropped_total += 1
        finally:
            _local.busy = False

    def _entry(self, record: logging.LogRecord) -> dict[str, Any]:
        try:
            message = record.getMessage()
        except Exception:  # bad %-arguments: keep what we have rather than lose the line
            message = f"{record.msg!r} % {record.args!r}"
        context: dict[str, Any] = {
            "pathname": record.pathname,
            "lineno": record.lineno,
            "func": record.funcName,
            "thread": record.threadName,
        }
        if record.exc_info and record.exc_info[0] is not None:
            context["exception"] = "".join(traceback.format_exception(*record.exc_info))[-MAX_TRACEBACK:]
        elif record.exc_text:
            context["exception"] = str(record.exc_text)[-MAX_TRACEBACK:]
        if record.stack_info:
            context["stack"] = str(record.stack_info)[-MAX_TRACEBACK:]
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "path"):
            context["request"] = {"method": getattr(request, "method", ""), "path": str(request.path)[:500]}
        extra = {}
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key.startswith("_"):
                continue
            if isinstance(value, str):
                extra[key] = value[:MAX_EXTRA_VALUE]
            elif value is None or isinstance(value, bool | int | float):
                extra[key] = value
        if extra:
            context["extra"] = extra
        run_id = extra.get("run_id") if isinstance(extra.get("run_id"), int) else None
        task = _current_task()
        if task is not None:
            context["task"] = {"id": task[0], "name": task[1]}
            run_id = run_id or task[2]
        return {
            "at": dt.datetime.fromtimestamp(record.created, tz=dt.UTC),
            "level": int(record.levelno),
            "source": self.source or "other",
            "logger": record.name[:200],
            "message": message[:MAX_MESSAGE],
            "context": context,
            "host": self.host,
            "pid": record.process or os.getpid(),
            "run_id": run_id,
        }

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="opscenter-log-store", daemon=True)
            self._thread.start()

    # --- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._backoff or self.flush_interval)
            self._wake.clear()
            self.write_pending()

    def write_pending(self, deadline: float | None = None) -> bool:
        """Write everything queued, batch by batch; return False if a write failed (kept for later)."""
        # At exit (flush) the writer thread may hang on a dead database: wait for it only so long.
        timeout = -1 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._write_lock.acquire(timeout=timeout):
            return False
        _local.busy = True
        try:
            if not _django_ready():
                return False
            while deadline is None or time.monotonic() <= deadline:
                with self._lock:
                    batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
                    dropped, self.dropped = self.dropped, 0
                if dropped:
                    batch.append(_dropped_entry(dropped, self))
                if not batch:
                    self._backoff = 0.0
                    return True
                try:
                    self._write(batch)
                except Exception as exc:
                    self._keep(batch, dropped)
                    self.failed_writes += 1
                    self._backoff = min(MAX_BACKOFF_SECONDS, max(self.flush_interval, self._backoff * 2 or 1.0))
                    _discard_connection()
                    _stderr(f"log store: {len(batch)} entries not written yet ({type(exc).__name__}: {exc})")
                    return False
                self.written_total += len(batch)
                _release_connection()
            return False
        finally:
            _local.busy = False
            self._write_lock.release()

    def _write(self, batch: list[dict[str, Any]]) -> None:
        from .services import store_entries

        store_entries(batch)

    def _keep(self, batch: list[dict[str, Any]], dropped: int) -> None:
        """Put a failed batch back at the front; beyond capacity the newest entries are counted as dropped."""
        if dropped:
            batch = batch[:-1]  # the summary line: re-made from the count next time
        with self._lock:
            self.dropped += dropped
            self._pending.extendleft(reversed(batch))
            while len(self._pending) > self.capacity:
                self._pending.pop()
                self.dropped += 1
                self.dropped_total += 1

    def flush(self, timeout: float = 2.0) -> None:
        """Write what is queued now, from the calling thread, giving up after `timeout` seconds."""
        if os.getpid() != self._pid or not self._pending and not self.dropped:
            return
        with contextlib.suppress(Exception):
            self.write_pending(deadline=time.monotonic() + timeout)

    def close(self) -> None:
        # logging.shutdown() at exit calls flush() then close(): what is queued gets one last try.
        self._closed = True
        self._wake.set()
        super().close()


def _dropped_entry(count: int, handler: DatabaseLogHandler) -> dict[str, Any]:
    return {
        "at": dt.datetime.now(dt.UTC),
        "level": logging.WARNING,
        "source": handler.source or "other",
        "logger": "monitoring.logs",
        "message": f"{count} log entries were dropped: the log store was unavailable and its queue was full.",
        "context": {"dropped": count, "capacity": handler.capacity},
        "host": handler.host,
        "pid": os.getpid(),
        "run_id": None,
    }


def _current_task() -> tuple[str, str, int | None] | None:
    """Return (task id, task name, agent run id) of the Celery task running in this thread, if any."""
    if "celery" not in sys.modules:
        return None
    try:
        from celery import current_task

        task = current_task._get_current_object()
        if task is None or task.request is None or not task.request.id:
            return None
        run_id = None
        if task.name == "agents.tasks.execute_run":
            args = task.request.args or []
            run_id = args[0] if args and isinstance(args[0], int) else (task.request.kwargs or {}).get("run_id")
        return str(task.request.id), str(task.name), run_id if isinstance(run_id, int) else None
    except Exception:
        return None


def _django_ready() -> bool:
    try:
        from django.apps import apps

        return apps.ready
    except Exception:
        return False


def _discard_connection() -> None:
    """Close this thread's database connection after a failure, so the next try reconnects."""
    from django.db import connection

    with contextlib.suppress(Exception):
        connection.close()


def _release_connection() -> None:
    """Close this thread's connection if it is past CONN_MAX_AGE (0: after every batch)."""
    from django.db import close_old_connections

    with contextlib.suppress(Exception):
        close_old_connections()


def _stderr(text: str) -> None:
    # Straight to stderr: going through logging from here would come back to this handler.
    with contextlib.suppress(Exception):
        sys.stderr.write(f"{text}\n")


def _after_fork_in_child() -> None:
    for handler in list(_handlers):
        with contextlib.suppress(Exception):
            handler._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
