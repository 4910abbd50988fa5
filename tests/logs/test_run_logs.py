"""Agent run log lines land in the one log store, linked to their run."""

from __future__ import annotations

from unittest import mock

from django.db import DatabaseError

from agents import services as agent_services
from agents.models import RunLog, RunStatus
from monitoring.logs.models import Level, LogEntry, Source


def test_run_log_lines_are_copied_into_the_store_with_their_run_and_agent(external_run):
    agent_services.append_run_logs(external_run, [
        {"message": "fetched 20 rows", "level": "info", "context": {"rows": 20}},
        {"message": "row 7 had no ARN", "level": "warning"},
    ])

    entries = list(LogEntry.objects.order_by("id"))
    assert [(e.message, e.level) for e in entries] == [("fetched 20 rows", Level.INFO), ("row 7 had no ARN", Level.WARNING)]
    assert all(e.source == Source.AGENT and e.run_id == external_run.pk and e.agent == "ext-importer" for e in entries)
    assert entries[0].context["fields"] == {"rows": 20}
    assert entries[0].context["run_log_id"] == RunLog.objects.get(message="fetched 20 rows").pk


def test_the_line_that_closes_a_run_is_copied_too(external_run):
    agent_services.finish_run(external_run.pk, RunStatus.FAILED, error="provider timed out", allow_retry=False)

    entry = LogEntry.objects.get(run=external_run)
    assert entry.level == Level.ERROR
    assert "provider timed out" in entry.message


def test_a_failed_copy_never_undoes_the_run_log(external_run):
    with mock.patch.object(LogEntry.objects, "bulk_create", side_effect=DatabaseError("store is broken")):
        created = agent_services.append_run_logs(external_run, [{"message": "still recorded"}])

    assert [line.message for line in created] == ["still recorded"]
    assert RunLog.objects.filter(run=external_run, message="still recorded").exists()
    assert not LogEntry.objects.exists()


def test_entries_outlive_their_run_without_the_link(external_run):
    agent_services.append_run_logs(external_run, [{"message": "kept after the run is gone"}])

    external_run.delete()

    entry = LogEntry.objects.get(message="kept after the run is gone")
    assert entry.run_id is None
    assert entry.agent == "ext-importer"
