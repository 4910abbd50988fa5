"""The logging handler: batched writes, never in the caller's way, survives a database outage and forks."""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import connections

from monitoring.logs.handler import process_source
from monitoring.logs.models import Level, LogEntry, Source
from tests.logs.conftest import wait_until


@contextmanager
def database_unreachable():
    """Make every new database connection fail, as a stopped server would; open ones stay usable.

    The handler's writer thread opens its own connection, so it meets the outage; this test's
    thread keeps the connection it already has, to look at the table meanwhile.
    """
    wrapper = connections["default"]
    wrapper.ensure_connection()
    error = wrapper.Database.OperationalError("connection refused (database stopped by the test)")
    with mock.patch.object(type(wrapper), "get_new_connection", side_effect=error):
        yield


def stored(**filters) -> int:
    return LogEntry.objects.filter(**filters).count()


def test_warnings_are_stored_with_their_logger_level_and_source(store_logger):
    logger, handler = store_logger()

    logger.warning("disk %s is %d%% full", "/var", 91)
    logger.error("payment provider said no")

    wait_until(lambda: stored() == 2, message="two entries stored")
    warning, error = LogEntry.objects.order_by("id")
    assert (warning.message, warning.level, warning.source) == ("disk /var is 91% full", Level.WARNING, Source.WEB)
    assert warning.logger == logger.name
    assert warning.pid == os.getpid() and warning.host
    assert warning.context["lineno"] > 0 and warning.context["pathname"].endswith("test_handler.py")
    assert error.level == Level.ERROR


def test_records_below_warning_are_not_stored(store_logger):
    logger, handler = store_logger()

    logger.info("routine")
    logger.debug("chatter")
    logger.warning("this one")

    wait_until(lambda: stored() == 1)
    time.sleep(0.2)
    assert list(LogEntry.objects.values_list("message", flat=True)) == ["this one"]


def test_exception_traceback_and_extras_are_kept_in_the_context(store_logger):
    logger, handler = store_logger()

    try:
        {}["missing-key"]
    except KeyError:
        logger.exception("lookup failed", extra={"advisor_id": 17, "run_id": None})

    entry = wait_until(lambda: LogEntry.objects.first())
    assert entry.level == Level.ERROR
    assert "Traceback (most recent call last)" in entry.context["exception"]
    assert "KeyError: 'missing-key'" in entry.context["exception"]
    assert entry.context["extra"]["advisor_id"] == 17


def test_entries_are_written_in_batches_not_one_insert_each(store_logger):
    logger, handler = store_logger(batch_size=100, flush_interval=0.5)
    batches: list[int] = []
    real_write = handler._write
    handler._write = lambda batch: (batches.append(len(batch)), real_write(batch))

    for i in range(350):
        logger.warning("burst %d", i)

    wait_until(lambda: stored() == 350, message="350 entries stored")
    assert sum(batches) == 350
    assert max(batches) <= 100
    assert len(batches) <= 8  # a handful of bulk inserts, nowhere near one per record
    assert sorted(LogEntry.objects.values_list("message", flat=True)) == sorted(f"burst {i}" for i in range(350))


def test_caller_keeps_working_while_the_database_is_down_and_entries_are_stored_after_recovery(store_logger):
    logger, handler = store_logger(flush_interval=0.05)

    with database_unreachable():
        started = time.perf_counter()
        slowest = 0.0
        for i in range(200):
            t0 = time.perf_counter()
            logger.error("while down %d", i)
            slowest = max(slowest, time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        wait_until(lambda: handler.failed_writes >= 1, message="a failed write")
        assert stored() == 0

    assert slowest < 0.05, f"one logging call took {slowest:.3f}s"
    assert elapsed < 1.0, f"200 logging calls took {elapsed:.3f}s"
    # The backlog was held, in order, and is written once the database answers again.
    wait_until(lambda: stored() == 200, timeout=15, message="the backlog written after recovery")
    logger.warning("after recovery")
    wait_until(lambda: stored(message="after recovery") == 1)
    ids = list(LogEntry.objects.filter(message__startswith="while down").order_by("id").values_list("message", flat=True))
    assert ids == [f"while down {i}" for i in range(200)]


def test_what_does_not_fit_during_an_outage_is_counted_and_reported_after_recovery(store_logger):
    logger, handler = store_logger(capacity=20, flush_interval=0.05)

    with database_unreachable():
        for i in range(30):
            logger.warning("queued %d", i)
        wait_until(lambda: handler.failed_writes >= 1)

    wait_until(lambda: stored(logger="monitoring.logs") == 1, timeout=15, message="the dropped-entries summary")
    # The first entries of the incident are kept (the cause is usually among them).
    kept = sorted(LogEntry.objects.filter(message__startswith="queued").values_list("message", flat=True))
    assert kept == sorted(f"queued {i}" for i in range(20))
    summary = LogEntry.objects.get(logger="monitoring.logs")
    assert summary.message.startswith("10 log entries were dropped")
    assert summary.context["dropped"] == 10


def test_logging_from_inside_the_writer_never_comes_back_to_the_store(store_logger):
    logger, handler = store_logger()
    real_write = handler._write
    calls = []

    def noisy_write(batch):
        calls.append(len(batch))
        # What a database driver might do while we write: log through the same handler.
        logger.warning("driver chatter during a write")
        real_write(batch)

    handler._write = noisy_write
    logger.warning("real problem")

    wait_until(lambda: stored(message="real problem") == 1)
    time.sleep(0.3)
    assert stored(message="driver chatter during a write") == 0
    assert calls == [1]


def test_a_failing_handler_never_raises_into_the_caller(store_logger):
    logger, handler = store_logger()

    class Unprintable:
        def __str__(self):
            raise RuntimeError("cannot render")

    logger.warning("value: %s", Unprintable())  # formatting fails inside emit
    logger.warning("%d items", "not-a-number")

    wait_until(lambda: stored() == 2)
    assert "not-a-number" in LogEntry.objects.order_by("id").last().message


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_writer_and_its_entries_are_stored(store_logger):
    logger, handler = store_logger()
    logger.warning("parent before fork")
    wait_until(lambda: stored(message="parent before fork") == 1)

    pid = os.fork()
    if pid == 0:  # the child, as a prefork pool process: fresh queue, its own writer thread
        code = 1
        try:
            logger.warning("from the child")
            deadline = time.monotonic() + 10
            while handler.written_total < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            code = 0 if handler.written_total >= 1 and handler._thread is not None else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    child_entry = LogEntry.objects.get(message="from the child")
    assert child_entry.pid == pid
    logger.warning("parent after fork")
    wait_until(lambda: stored(message="parent after fork") == 1)
    assert stored(message="parent before fork") == 1  # the child did not write the parent's queue again


@pytest.mark.parametrize(("argv", "source"), [
    (["/venv/bin/daphne", "-b", "0.0.0.0", "opscenter.asgi:application"], "web"),
    (["/venv/lib/python3.11/site-packages/celery/__main__.py", "-A", "opscenter", "worker", "-l", "info"], "worker"),
    (["/venv/bin/celery", "-A", "opscenter", "beat"], "beat"),
    (["manage.py", "runserver"], "web"),
    (["manage.py", "migrate"], "command"),
    (["/usr/bin/something"], "other"),
])
def test_the_process_is_told_apart_by_its_command_line(argv, source):
    assert process_source(argv) == source


def test_the_configured_handler_is_off_under_pytest_and_on_by_default_elsewhere(settings):
    root_handlers = [h for h in logging.getLogger().handlers if type(h).__name__ == "DatabaseLogHandler"]
    assert len(root_handlers) == 1
    assert root_handlers[0].enabled is False
    settings.LOG_STORE_ENABLED = True
    assert root_handlers[0].enabled is True
