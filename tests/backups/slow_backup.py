"""A backup that stops midway, for the test that kills it: `python -m tests.backups.slow_backup dump|store`.

Prints DUMPING (the dump is half written) or STORING (the stored file is half written), then
sleeps until it is killed.
"""

from __future__ import annotations

import os
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opscenter.settings")
django.setup()

from django.core.files import File  # noqa: E402

from opscenter.backups import engines, services  # noqa: E402
from opscenter.backups.models import BackupKind  # noqa: E402


def _hang(word: str) -> None:
    print(word, flush=True)
    time.sleep(300)


if sys.argv[1] == "dump":
    def slow_dump(path, *, beat=None):
        path.write_bytes(b"half a dump " * 1000)
        _hang("DUMPING")

    engines.dump = slow_dump
else:
    real_chunks = File.chunks

    def slow_chunks(self, chunk_size=None):
        first = next(iter(real_chunks(self, 4096)))
        yield first
        _hang("STORING")

    File.chunks = slow_chunks

services.take_backup(kind=BackupKind.MANUAL)
