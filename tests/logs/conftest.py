"""Fixtures of the log store tests: a handler of their own, entries and runs to look at."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from agents.models import Agent, AgentKind, AgentRun, RunStatus
from monitoring.logs.handler import DatabaseLogHandler
from monitoring.logs.models import Level, LogEntry, Source


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, message: str = "condition") -> Any:
    """Poll `predicate` until it is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{message} not reached within {timeout}s", pytrace=False)
        time.sleep(0.02)


@pytest.fixture
def store_logger(transactional_db) -> Iterator[Callable[..., tuple[logging.Logger, DatabaseLogHandler]]]:
    """Build a logger wired to a fresh, enabled DatabaseLogHandler; both are taken down afterwards.

    Transactional: the handler writes from its own thread, which sees only committed rows.
    """
    made: list[tuple[logging.Logger, DatabaseLogHandler]] = []

    def make(name: str = "tests.logs.sample", **options: Any) -> tuple[logging.Logger, DatabaseLogHandler]:
        options.setdefault("flush_interval", 0.05)
        handler = DatabaseLogHandler(enabled=True, source="web", **options)
        # A name of its own: loggers live for the whole session, and pytest adds its capture
        # handlers to loggers it has seen before (they would choke on the deliberately bad records).
        logger = logging.getLogger(f"{name}.{uuid.uuid4().hex[:12]}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, handler

    yield make
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()
        if handler._thread is not None:
            handler._thread.join(timeout=5)


@pytest.fixture
def external_run(db) -> AgentRun:
    agent = Agent.objects.create(slug="ext-importer", name="External importer", kind=AgentKind.EXTERNAL)
    return AgentRun.objects.create(agent=agent, status=RunStatus.RUNNING, started_at=timezone.now())


def make_entry(message: str, *, level: int = Level.WARNING, source: str = Source.WEB, ago: timedelta | None = None,
               **fields: Any) -> LogEntry:
    """Create one stored entry directly (the viewer and API tests need no handler)."""
    return LogEntry.objects.create(
        message=message, level=level, source=source, at=timezone.now() - (ago or timedelta(0)),
        logger=fields.pop("logger", "tests.sample"), host="test-host", pid=4242, **fields,
    )
