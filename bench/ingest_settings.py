"""Settings for bench/ingest.py's daphne: the project's, plus a bare view to compare against."""

from opscenter.settings import *  # noqa: F401, F403

ROOT_URLCONF = "bench.ingest_urls"
