"""Fixtures of the backup tests: a private backup storage and work folder, and inline Celery."""

from __future__ import annotations

import pytest
from django.db import connection

from opscenter.celery import app


@pytest.fixture(autouse=True)
def backup_dirs(settings, tmp_path):
    """Each test keeps its backups in its own folders, never in var/backups."""
    store = tmp_path / "store"
    work = tmp_path / "work"
    settings.BACKUPS_DIR = store
    settings.BACKUPS_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                "OPTIONS": {"location": str(store)}}
    settings.BACKUPS_WORK_DIR = work
    return store, work


@pytest.fixture
def inline_tasks():
    """Run the tasks queued after commit in this process (the real task code, without a worker)."""
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


@pytest.fixture
def test_database_only():
    """Guard: what a test dumps and restores is the test database, never the development one."""
    name = str(connection.settings_dict["NAME"])
    assert "test" in name.rsplit("/", 1)[-1], f"refusing to restore into {name}"
    return name
