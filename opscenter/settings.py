"""Settings for OpsCenter, read from the environment in this one place.

Every variable is typed and validated here; a bad value stops start-up with a message
that names the variable. `OPSCENTER_ENV=production` switches on the secure defaults and
makes the variables that have no safe default (SECRET_KEY, ALLOWED_HOSTS) required.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import sys
import zoneinfo
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from csp.constants import NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()


def _read(name: str, parse: Callable[[], Any]) -> Any:
    """Read one variable, turning any parse failure into a message that names it."""
    try:
        return parse()
    except ImproperlyConfigured:
        raise
    except Exception as exc:  # environ raises ValueError, KeyError, AttributeError...
        raise ImproperlyConfigured(
            f"Environment variable {name}={os.environ.get(name)!r} is invalid: {exc}"
        ) from None


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(
            f"Environment variable {name}={value!r} is invalid: expected one of {', '.join(choices)}"
        )
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(
        f"Environment variable {name}={raw!r} is invalid: expected true/false (1/0, yes/no, on/off)"
    )


def _int(name: str, default: int, *, minimum: int, maximum: int) -> int:
    value = _read(name, lambda: env.int(name, default=default))
    if not minimum <= value <= maximum:
        raise ImproperlyConfigured(
            f"Environment variable {name}={value!r} is invalid: must be between {minimum} and {maximum}"
        )
    return value


def _list(name: str, default: list[str]) -> list[str]:
    return [item for item in _read(name, lambda: env.list(name, default=default)) if item]


OPSCENTER_ENV = _choice("OPSCENTER_ENV", "development", ("development", "production"))
PRODUCTION = OPSCENTER_ENV == "production"
DEBUG = _bool("DEBUG", False)

VAR_DIR = Path(os.environ.get("OPSCENTER_VAR_DIR") or BASE_DIR / "var").resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """Return SECRET_KEY; in development generate it once into var/ with mode 0600."""
    if key := os.environ.get("SECRET_KEY"):
        if PRODUCTION and len(key) < 50:
            raise ImproperlyConfigured(
                "Environment variable SECRET_KEY is invalid: use at least 50 random characters in production"
            )
        return key
    if PRODUCTION:
        raise ImproperlyConfigured("Environment variable SECRET_KEY is required when OPSCENTER_ENV=production")
    path = VAR_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
    return path.read_text().strip()


SECRET_KEY = _secret_key()

if PRODUCTION and "ALLOWED_HOSTS" not in os.environ:
    raise ImproperlyConfigured("Environment variable ALLOWED_HOSTS is required when OPSCENTER_ENV=production")
ALLOWED_HOSTS = _list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if "://" not in _origin:
        raise ImproperlyConfigured(
            f"Environment variable CSRF_TRUSTED_ORIGINS is invalid: {_origin!r} needs a scheme, e.g. https://{_origin}"
        )

PORT = _int("PORT", 8080, minimum=1, maximum=65535)
# HTTP requests one web process runs at once; more wait their turn. Django runs each request
# in a thread of its own with its own database connection, so without a bound a burst of
# clients (200 webhook senders) opens as many connections and PostgreSQL refuses the rest.
WEB_MAX_CONCURRENT_REQUESTS = _int("WEB_MAX_CONCURRENT_REQUESTS", 20, minimum=1, maximum=1000)

TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
try:
    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"Environment variable TIME_ZONE={TIME_ZONE!r} is invalid: not an IANA time zone such as Asia/Kolkata"
    ) from None
USE_TZ = True
LANGUAGE_CODE = "en-us"
# The console is in English. Listing only it also spares every admin page Unfold's language
# menu, which translates Django's hundred language names on each render even when hidden.
LANGUAGES = [("en-us", "English")]
USE_I18N = True


def _networks(name: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in _list(name, []):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"Environment variable {name} is invalid: {item!r} is not an IP address or CIDR network"
            ) from None
    return networks


# Reverse proxies whose X-Forwarded-For we believe. Anyone else's header is ignored, so a
# client cannot pick its own address to dodge the login lockout or the throttles.
TRUSTED_PROXIES = _networks("TRUSTED_PROXIES")

# --- Database -----------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'opscenter.sqlite3'}"
_db = _read("DATABASE_URL", lambda: environ.Env.db_url_config(DATABASE_URL))
if not _db.get("ENGINE") or _db["ENGINE"] not in {
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
}:
    raise ImproperlyConfigured(
        f"Environment variable DATABASE_URL is invalid: use postgres://… or sqlite:///…, got engine {_db.get('ENGINE')!r}"
    )
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, and
    # IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    _db.setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    _db["CONN_HEALTH_CHECKS"] = True
    _db["CONN_MAX_AGE"] = _int("DATABASE_CONN_MAX_AGE", 0, minimum=0, maximum=3600)
    # The web process runs every request in a thread of its own, so a kept connection
    # (CONN_MAX_AGE) is never reused and a new one per request costs ~15 ms of sign-in.
    # A pool per process fixes both. The Procfile and `serve` turn it on for web only:
    # Celery's prefork children must not inherit a parent's pool.
    if _bool("DATABASE_POOL", False):
        if _db["CONN_MAX_AGE"]:
            raise ImproperlyConfigured("DATABASE_POOL and DATABASE_CONN_MAX_AGE exclude each other: unset one")
        _db.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 2,
            # Requests (at most WEB_MAX_CONCURRENT_REQUESTS at once) plus WebSocket consumers' lookups.
            "max_size": WEB_MAX_CONCURRENT_REQUESTS + 10,
            "timeout": 10,
        }
_db.setdefault("TEST", {})
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so the servers a browser test starts can open the test database.
    _db["TEST"].setdefault("NAME", str(VAR_DIR / "test.sqlite3"))
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, channel layer, cache --------------------------------------------------
REDIS_EMBEDDED = not os.environ.get("REDIS_URL")
REDIS_SOCKET = VAR_DIR / "redis.sock"
REDIS_URL = os.environ.get("REDIS_URL") or f"unix://{REDIS_SOCKET}"
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"Environment variable REDIS_URL={REDIS_URL!r} is invalid: use redis://host:port/db, rediss://… or unix:///path"
    )
# Celery's redis transport spells unix sockets as redis+socket://.
CELERY_BROKER_URL = "redis+socket://" + REDIS_URL[len("unix://") :] if REDIS_URL.startswith("unix://") else REDIS_URL

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "prefix": "opscenter", "capacity": 500, "expiry": 30},
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "opscenter",
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# --- Celery: no lost and no doubled work ---------------------------------------------------
LONGEST_RUN_SECONDS = _int("OPSCENTER_LONGEST_RUN_SECONDS", 3 * 3600, minimum=60, maximum=7 * 24 * 3600)
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # outcomes are rows in the database, not results in Redis
CELERY_TASK_ACKS_LATE = True  # a task is acknowledged after it ran: a lost worker means a redelivery…
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # …and our tasks claim rows, so a redelivery is harmless
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long tasks must not sit reserved behind a busy one
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacknowledged task after the visibility timeout; it must outlast the
# longest run, or a slow run would be started a second time while it is still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": LONGEST_RUN_SECONDS + 3600}
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # our LOGGING below applies in worker and beat too
CELERY_BEAT_SCHEDULER = "opscenter.beat:Scheduler"
SYSTEM_HEARTBEAT_SECONDS = _int("OPSCENTER_HEARTBEAT_SECONDS", 5, minimum=1, maximum=300)
CELERY_BEAT_SCHEDULE = {
    "opscenter: system heartbeat": {
        "task": "opscenter.tasks.publish_system_heartbeat",
        "schedule": float(SYSTEM_HEARTBEAT_SECONDS),
        # A heartbeat nobody ran in time is worthless: drop it rather than pile them up.
        "options": {"expires": SYSTEM_HEARTBEAT_SECONDS * 2},
    },
}
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- Agent runtime --------------------------------------------------------------------------
# Modules whose @agent functions make up the hierarchy; OPSCENTER_AGENT_MODULES adds more.
AGENT_MODULES = ["agents.builtin", "agents.engine.agents", *_list("OPSCENTER_AGENT_MODULES", [])]
AGENT_HEARTBEAT_SECONDS = _int("AGENT_HEARTBEAT_SECONDS", 5, minimum=1, maximum=300)
# A running run whose heartbeat is older than this is failed as "worker lost" by the reaper.
AGENT_LOST_AFTER_SECONDS = _int("AGENT_LOST_AFTER_SECONDS", 60, minimum=3, maximum=3600)
AGENT_REAPER_SECONDS = _int("AGENT_REAPER_SECONDS", 15, minimum=1, maximum=3600)
AGENT_HARD_LIMIT_GRACE_SECONDS = _int("AGENT_HARD_LIMIT_GRACE_SECONDS", 30, minimum=1, maximum=3600)
AGENT_RETRY_DELAY_SECONDS = _int("AGENT_RETRY_DELAY_SECONDS", 10, minimum=0, maximum=3600)
AGENT_RETRY_MAX_DELAY_SECONDS = 600
AGENT_PROGRESS_INTERVAL_SECONDS = 0.25  # progress and log events: at most four a second per run
if AGENT_LOST_AFTER_SECONDS < 2 * AGENT_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "AGENT_LOST_AFTER_SECONDS must be at least twice AGENT_HEARTBEAT_SECONDS, "
        "or healthy runs would be reaped between two heartbeats"
    )
CELERY_BEAT_SCHEDULE["agents: reap lost runs"] = {
    "task": "agents.tasks.reap_runs",
    "schedule": float(AGENT_REAPER_SECONDS),
    "options": {"expires": AGENT_REAPER_SECONDS * 2},
}

# --- Outbound HTTP (webhook agents, later notification and delivery channels) ---------------
WEBHOOK_TIMEOUT_SECONDS = 10
WEBHOOK_MAX_ATTEMPTS = _int("WEBHOOK_MAX_ATTEMPTS", 5, minimum=1, maximum=20)
WEBHOOK_RETRY_DELAY_SECONDS = _int("WEBHOOK_RETRY_DELAY_SECONDS", 5, minimum=0, maximum=3600)
# Targets on private or local addresses are refused (SSRF) unless listed or allowed here.
OUTBOUND_ALLOW_PRIVATE = _bool("OUTBOUND_ALLOW_PRIVATE", False)
OUTBOUND_ALLOWED_HOSTS = _list("OUTBOUND_ALLOWED_HOSTS", [])

# --- Inbound webhook (advisors.inbound) -----------------------------------------------------
# A signed request older (or newer) than this is refused: it bounds how long a captured
# request could be replayed before the event-id dedupe has to catch it.
INBOUND_SIGNATURE_TOLERANCE_SECONDS = _int("INBOUND_SIGNATURE_TOLERANCE_SECONDS", 300, minimum=30, maximum=3600)
INBOUND_MAX_BODY_BYTES = _int("INBOUND_MAX_BODY_BYTES", 2 * 1024 * 1024, minimum=1024, maximum=50 * 1024 * 1024)
INBOUND_MAX_BATCH = _int("INBOUND_MAX_BATCH", 1000, minimum=1, maximum=10000)
INBOUND_PROCESS_BATCH = 200  # events a worker claims at a time
INBOUND_LEASE_SECONDS = _int("INBOUND_LEASE_SECONDS", 120, minimum=10, maximum=3600)
INBOUND_MAX_ATTEMPTS = _int("INBOUND_MAX_ATTEMPTS", 5, minimum=1, maximum=50)
INBOUND_SWEEP_SECONDS = _int("INBOUND_SWEEP_SECONDS", 30, minimum=1, maximum=3600)
# A source that sent nothing (no event, no heartbeat) for this long shows as down.
INBOUND_SILENT_AFTER_MINUTES = _int("INBOUND_SILENT_AFTER_MINUTES", 10, minimum=1, maximum=24 * 60)
CELERY_BEAT_SCHEDULE["inbound: process stragglers"] = {
    # Events whose kick was lost, whose worker died, or whose retry is due.
    "task": "inbound.tasks.process_inbound_events",
    "schedule": float(INBOUND_SWEEP_SECONDS),
    "options": {"expires": INBOUND_SWEEP_SECONDS * 2},
}

# --- Metric store, system sampler, Prometheus (monitoring) ---------------------------------
# How often beat stores the value of every registry metric (system figures included).
METRICS_SAMPLE_SECONDS = _int("METRICS_SAMPLE_SECONDS", 10, minimum=1, maximum=3600)
# How often web, worker and beat each write their own pid, RSS and CPU (and their host's
# figures) to Redis; a process silent for three periods counts as gone.
METRICS_PROCESS_REPORT_SECONDS = _int("METRICS_PROCESS_REPORT_SECONDS", 5, minimum=1, maximum=300)
# Retention of the metric store: raw samples, then 1-minute, 1-hour and 1-day rollups.
METRICS_RAW_RETENTION_HOURS = _int("METRICS_RAW_RETENTION_HOURS", 24, minimum=1, maximum=24 * 30)
METRICS_MINUTE_RETENTION_DAYS = _int("METRICS_MINUTE_RETENTION_DAYS", 7, minimum=1, maximum=365)
METRICS_HOUR_RETENTION_DAYS = _int("METRICS_HOUR_RETENTION_DAYS", 90, minimum=1, maximum=3650)
METRICS_DAY_RETENTION_DAYS = _int("METRICS_DAY_RETENTION_DAYS", 730, minimum=1, maximum=36500)
# /metrics (Prometheus): a scraper gets in with `Authorization: Bearer <METRICS_TOKEN>`, with
# an API token of a user who may view metrics, or from an address in METRICS_ALLOWED_IPS
# (addresses/CIDRs; behind a proxy, list it in TRUSTED_PROXIES). Nothing set: tokens only.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
if PRODUCTION and METRICS_TOKEN and len(METRICS_TOKEN) < 20:
    raise ImproperlyConfigured("Environment variable METRICS_TOKEN is invalid: use at least 20 random characters")
METRICS_ALLOWED_IPS = _networks("METRICS_ALLOWED_IPS")
CELERY_BEAT_SCHEDULE["monitoring: sample metrics"] = {
    "task": "monitoring.tasks.sample_metrics",
    "schedule": float(METRICS_SAMPLE_SECONDS),
    # A sample nobody took in time is worthless: drop it rather than pile them up.
    "options": {"expires": METRICS_SAMPLE_SECONDS * 2},
}
CELERY_BEAT_SCHEDULE["monitoring: roll up metrics"] = {
    "task": "monitoring.tasks.rollup_metrics",
    "schedule": 60.0,
    "options": {"expires": 120},
}
CELERY_BEAT_SCHEDULE["monitoring: prune metrics"] = {
    "task": "monitoring.tasks.prune_metrics",
    "schedule": 600.0,
    "options": {"expires": 1200},
}

# --- Health checks (monitoring.health) ------------------------------------------------------
# Beat starts the dispatcher this often; it runs every check that is due (each check has its
# own interval) concurrently, within HEALTH_CYCLE_TIMEOUT_SECONDS overall.
HEALTH_DISPATCH_SECONDS = _int("HEALTH_DISPATCH_SECONDS", 5, minimum=1, maximum=300)
# Checks in flight at once. httpx's connection pool slows down with many open connections:
# on the 2-core machine 1,000 loopback checks took 6.5 s at 20 and 11 s at 100, with
# false timeouts at 100 (bench/health_checks.py). Raise it for many slow or dead targets.
HEALTH_CONCURRENCY = _int("HEALTH_CONCURRENCY", 20, minimum=1, maximum=5000)
HEALTH_THREADS = _int("HEALTH_THREADS", 8, minimum=1, maximum=64)  # database, Redis, Celery, disk, process probes
HEALTH_CYCLE_TIMEOUT_SECONDS = _int("HEALTH_CYCLE_TIMEOUT_SECONDS", 90, minimum=5, maximum=3600)
HEALTH_MAX_CHECKS_PER_CYCLE = _int("HEALTH_MAX_CHECKS_PER_CYCLE", 5000, minimum=1, maximum=100_000)
HEALTH_RESULT_RETENTION_DAYS = _int("HEALTH_RESULT_RETENTION_DAYS", 14, minimum=1, maximum=3650)
# Uptime is computed from flips over 30 days, so they are kept longer than that.
HEALTH_FLIP_RETENTION_DAYS = _int("HEALTH_FLIP_RETENTION_DAYS", 400, minimum=31, maximum=3650)
HEALTH_RECENT_RESULTS = 30  # the strip of recent results kept on each check
HEALTH_BODY_LIMIT_BYTES = 1024 * 1024  # an HTTP check reads at most this much of a body
HEALTH_DISK_THRESHOLD_PERCENT = _int("HEALTH_DISK_THRESHOLD_PERCENT", 90, minimum=1, maximum=100)
# Where the health check of the web process finds it. Default: this machine on $PORT (and
# $HOST when the web binds one address), as `make run` serves it.
_web_host = os.environ.get("HOST", "").strip()
HEALTH_WEB_BASE_URL = (os.environ.get("OPSCENTER_WEB_URL") or "").strip().rstrip("/") or (
    f"http://{'127.0.0.1' if _web_host in {'', '0.0.0.0', '::', '[::]'} else _web_host}:{PORT}"
)
# The inbound webhook service's health URL; when set, bootstrap adds a check for it.
HEALTH_WEBHOOK_SERVICE_URL = (os.environ.get("OPSCENTER_WEBHOOK_SERVICE_HEALTH_URL") or "").strip()
for _name, _url in (("OPSCENTER_WEB_URL", HEALTH_WEB_BASE_URL),
                    ("OPSCENTER_WEBHOOK_SERVICE_HEALTH_URL", HEALTH_WEBHOOK_SERVICE_URL)):
    if _url and not _url.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"Environment variable {_name}={_url!r} is invalid: use an http:// or https:// URL")
CELERY_BEAT_SCHEDULE["health: run due checks"] = {
    "task": "monitoring.health.tasks.dispatch_checks",
    "schedule": float(HEALTH_DISPATCH_SECONDS),
    # A dispatch nobody picked up in time is replaced by the next one; checks stay due meanwhile.
    "options": {"expires": max(HEALTH_DISPATCH_SECONDS * 2, 10)},
}
CELERY_BEAT_SCHEDULE["health: prune results"] = {
    "task": "monitoring.health.tasks.prune_history",
    "schedule": 3600.0,
    "options": {"expires": 1800},
}

# --- Log store (monitoring.logs) ------------------------------------------------------------
# WARNING and above from every process, and every agent run log line, in one searchable table.
# Off in the pytest process by default: each test runs in a transaction the handler's writer
# thread cannot see and must not write around. The tests of the store switch it on.
LOG_STORE_ENABLED = _bool("LOG_STORE_ENABLED", "pytest" not in sys.modules)
LOG_STORE_LEVEL = _choice("LOG_STORE_LEVEL", "warning", ("debug", "info", "warning", "error", "critical")).upper()
# Entries a process holds while the database is unreachable; beyond it they are counted, and
# the count is stored as one entry once the database is back.
LOG_STORE_QUEUE_SIZE = _int("LOG_STORE_QUEUE_SIZE", 10_000, minimum=100, maximum=1_000_000)
LOG_STORE_BATCH_SIZE = 500
LOG_STORE_FLUSH_SECONDS = 1.0
LOG_RETENTION_DAYS = _int("LOG_RETENTION_DAYS", 14, minimum=1, maximum=3650)
CELERY_BEAT_SCHEDULE["logs: prune old entries"] = {
    "task": "monitoring.logs.tasks.prune_log_entries",
    "schedule": 3600.0,
    "options": {"expires": 1800},
}

# --- Backups (opscenter.backups) ------------------------------------------------------------
# Where backup files are kept: the local folder BACKUPS_DIR (default var/backups), or an
# S3-compatible bucket when BACKUPS_S3_BUCKET is set (needs django-storages[s3] and boto3).
BACKUPS_DIR = Path(os.environ.get("BACKUPS_DIR") or VAR_DIR / "backups").resolve()
BACKUPS_S3_BUCKET = os.environ.get("BACKUPS_S3_BUCKET", "").strip()
if BACKUPS_S3_BUCKET:
    import importlib.util

    if importlib.util.find_spec("storages") is None or importlib.util.find_spec("boto3") is None:
        raise ImproperlyConfigured(
            "Environment variable BACKUPS_S3_BUCKET is set, but S3 storage needs the packages "
            "django-storages[s3] and boto3, which are not installed; unset it to keep backups in BACKUPS_DIR"
        )
    BACKUPS_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BACKUPS_S3_BUCKET,
            "location": os.environ.get("BACKUPS_S3_PREFIX", "opscenter-backups").strip("/"),
            "endpoint_url": os.environ.get("BACKUPS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("BACKUPS_S3_REGION") or None,
            "access_key": os.environ.get("BACKUPS_S3_ACCESS_KEY_ID") or None,
            "secret_key": os.environ.get("BACKUPS_S3_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    BACKUPS_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # 0600: a backup holds every user's data, password hashes and tokens included.
        "OPTIONS": {"location": str(BACKUPS_DIR), "file_permissions_mode": 0o600, "directory_permissions_mode": 0o700},
    }
# Dumps are written here first and stored only when complete (a local disk, never the bucket).
BACKUPS_WORK_DIR = Path(os.environ.get("BACKUPS_WORK_DIR") or VAR_DIR / "backups-work").resolve()
# The daily backup's crontab in TIME_ZONE, used when its periodic task is first created;
# from then on the time is edited in the admin (Periodic tasks → "backups: daily backup").
BACKUPS_SCHEDULE = os.environ.get("BACKUPS_SCHEDULE", "30 2 * * *").strip()
if len(BACKUPS_SCHEDULE.split()) != 5:
    raise ImproperlyConfigured(
        f"Environment variable BACKUPS_SCHEDULE={BACKUPS_SCHEDULE!r} is invalid: use five crontab fields, e.g. 30 2 * * *"
    )
# Retention: the newest backup of each of the last N days and M weeks that have one.
BACKUPS_KEEP_DAILY = _int("BACKUPS_KEEP_DAILY", 7, minimum=1, maximum=3650)
BACKUPS_KEEP_WEEKLY = _int("BACKUPS_KEEP_WEEKLY", 4, minimum=0, maximum=520)
BACKUPS_HEARTBEAT_SECONDS = _int("BACKUPS_HEARTBEAT_SECONDS", 5, minimum=1, maximum=300)
# A running backup without a heartbeat this long was interrupted (its process died).
BACKUPS_LOST_AFTER_SECONDS = _int("BACKUPS_LOST_AFTER_SECONDS", 120, minimum=10, maximum=24 * 3600)
# Longest backup, verify or restore; after this the reaper fails it whatever its heartbeat says.
BACKUPS_TIMEOUT_SECONDS = _int("BACKUPS_TIMEOUT_SECONDS", 6 * 3600, minimum=60, maximum=7 * 24 * 3600)
if BACKUPS_LOST_AFTER_SECONDS < 2 * BACKUPS_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("BACKUPS_LOST_AFTER_SECONDS must be at least twice BACKUPS_HEARTBEAT_SECONDS")
# Folder holding pg_dump and pg_restore; empty: PATH, then the newest /usr/lib/postgresql/<v>/bin.
BACKUPS_PG_BIN_DIR = os.environ.get("BACKUPS_PG_BIN_DIR", "").strip()
CELERY_BEAT_SCHEDULE["backups: reap interrupted jobs"] = {
    "task": "opscenter.backups.tasks.reap_backups",
    "schedule": 60.0,
    "options": {"expires": 120},
}

# --- Alerting (alerts) ------------------------------------------------------------------------
# Beat starts an evaluation cycle this often; a cycle that takes longer is reported (a
# warning in the logs, a counter on the alerts page and in /metrics), never silently dropped.
ALERTS_EVALUATION_SECONDS = _int("ALERTS_EVALUATION_SECONDS", 15, minimum=1, maximum=3600)
# An alert that resolved and fired again this many times within the flap window is
# "flapping": it stays firing (one message) until it has been quiet for the whole window.
ALERTS_FLAP_WINDOW_SECONDS = _int("ALERTS_FLAP_WINDOW_SECONDS", 3600, minimum=60, maximum=7 * 86400)
ALERTS_FLAP_THRESHOLD = _int("ALERTS_FLAP_THRESHOLD", 3, minimum=2, maximum=100)
# Notifications: how often beat looks for due groups, retries and escalations; how a failed
# send backs off (doubling from the base up to the cap) and when it gives up.
ALERTS_DISPATCH_SECONDS = _int("ALERTS_DISPATCH_SECONDS", 10, minimum=1, maximum=3600)
ALERTS_NOTIFY_MAX_ATTEMPTS = _int("ALERTS_NOTIFY_MAX_ATTEMPTS", 12, minimum=1, maximum=100)
ALERTS_NOTIFY_BACKOFF_SECONDS = _int("ALERTS_NOTIFY_BACKOFF_SECONDS", 10, minimum=0, maximum=3600)
ALERTS_NOTIFY_BACKOFF_MAX_SECONDS = _int("ALERTS_NOTIFY_BACKOFF_MAX_SECONDS", 1800, minimum=1, maximum=86400)
ALERTS_NOTIFY_TIMEOUT_SECONDS = _int("ALERTS_NOTIFY_TIMEOUT_SECONDS", 15, minimum=1, maximum=300)
# Notifications link to each alert (…/admin/alerts/<id>/) from this base; default: the web
# address the health checks use (OPSCENTER_WEB_URL, or this machine on $PORT).
ALERTS_LINK_BASE_URL = (os.environ.get("ALERTS_LINK_BASE_URL") or "").strip().rstrip("/") or HEALTH_WEB_BASE_URL
if not ALERTS_LINK_BASE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"Environment variable ALERTS_LINK_BASE_URL={ALERTS_LINK_BASE_URL!r} is invalid: use an http:// or https:// URL"
    )
# Notification channels' targets follow OUTBOUND_ALLOW_PRIVATE / OUTBOUND_ALLOWED_HOSTS above.
ALERTS_RESOLVED_RETENTION_DAYS = _int("ALERTS_RESOLVED_RETENTION_DAYS", 180, minimum=1, maximum=3650)
# SLO figures (error budget, burn rates) are recomputed and stored this often.
ALERTS_SLO_SECONDS = _int("ALERTS_SLO_SECONDS", 60, minimum=10, maximum=3600)
CELERY_BEAT_SCHEDULE["alerts: evaluate rules"] = {
    "task": "alerts.tasks.evaluate_alerts",
    "schedule": float(ALERTS_EVALUATION_SECONDS),
}
CELERY_BEAT_SCHEDULE["alerts: dispatch notifications"] = {
    "task": "alerts.tasks.dispatch_notifications",
    "schedule": float(ALERTS_DISPATCH_SECONDS),
    "options": {"expires": ALERTS_DISPATCH_SECONDS * 3},
}
CELERY_BEAT_SCHEDULE["alerts: record SLOs"] = {
    "task": "alerts.tasks.record_slos",
    "schedule": float(ALERTS_SLO_SECONDS),
    "options": {"expires": ALERTS_SLO_SECONDS * 2},
}
CELERY_BEAT_SCHEDULE["alerts: prune resolved"] = {
    "task": "alerts.tasks.prune_alerts",
    "schedule": 3600.0,
    "options": {"expires": 1800},
}

# --- Applications ---------------------------------------------------------------------------
INSTALLED_APPS = [
    "daphne",
    "unfold.apps.BasicAppConfig",  # not the default config: it would replace our admin site
    "unfold.contrib.filters",
    "opscenter.admin_site.OpsAdminConfig",  # django.contrib.admin with our site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_htmx",
    "axes",
    "opscenter",
    "advisors",
    "advisors.inbound",
    "agents",
    "agents.engine",
    "opscenter.backups",
    "monitoring",
    "monitoring.health",
    "monitoring.logs",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "opscenter.urls"
ASGI_APPLICATION = "opscenter.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # {% cached_sidebar %}: the sidebar links, rendered once per distinct state.
            "libraries": {"opscenter_sidebar": "opscenter.navigation"},
        },
    },
    {
        # Only the review queue's cards, which are rendered by name through this engine
        # (advisors.review.views.render_cards): ten cards a page cost a third of the page
        # in Django templates. Second in the list, so every other lookup stays Django's.
        "NAME": "jinja2",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"autoescape": True},
    },
]

# --- Authentication and lockout -----------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "admin:index"
AXES_FAILURE_LIMIT = _int("LOGIN_FAILURE_LIMIT", 5, minimum=1, maximum=100)
AXES_COOLOFF_TIME = timedelta(minutes=_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1, maximum=24 * 60))
# Lock the address, not the username: locking by username would let anyone lock out the admin.
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "opscenter.net.client_ip"
AXES_LOCKOUT_TEMPLATE = "opscenter/locked_out.html"
AXES_VERBOSE = False

# --- Security headers ---------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = _bool("CSRF_COOKIE_SECURE", PRODUCTION)
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Probes and scrapers call these over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$", r"^api/v1/ready$", r"^metrics$"]
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 31536000 if PRODUCTION else 0, minimum=0, maximum=63072000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = _bool("SECURE_HSTS_PRELOAD", PRODUCTION)
# The header your TLS-terminating proxy sets, e.g. X-Forwarded-Proto; empty: no proxy.
_proxy_ssl_header = os.environ.get("PROXY_SSL_HEADER", "X-Forwarded-Proto" if PRODUCTION else "").strip()
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https") if _proxy_ssl_header else None
)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        # Alpine.js (shipped by Unfold) evaluates its x-* attributes, which needs eval.
        "script-src": [SELF, UNSAFE_EVAL],
        # Unfold writes its theme colours into an inline <style> and style attributes.
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns about a missing root even when using finders
MEDIA_URL = "/media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# In development WhiteNoise serves straight from the apps, so no collectstatic is needed.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = DEBUG

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "opscenter.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["opscenter.api.permissions.RoleModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "opscenter.api.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "opscenter.api.throttling.AnonRateThrottle",
        "opscenter.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "120/min"),
        "user": os.environ.get("API_THROTTLE_USER", "1200/min"),
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "opscenter.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OpsCenter API",
    "DESCRIPTION": (
        "Operate the advisor content pipeline from scripts and services. Authenticate with an "
        "API token (`Authorization: Bearer ops_…`, created on your Account → API tokens page) or "
        "with the browser session plus the CSRF header. Errors share one shape: "
        '`{"error": {"status", "code", "message", "fields"}}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Several models have a `status` field; name their enums after the model.
    "ENUM_NAME_OVERRIDES": {
        "AdvisorStatusEnum": "advisors.models.AdvisorStatus",
        "ContentStatusEnum": "advisors.models.ContentStatus",
        "DeliveryStatusEnum": "advisors.models.DeliveryStatus",
        "RunStatusEnum": "agents.models.RunStatus",
        "ReportedRunStatusEnum": ["running", "succeeded", "failed", "cancelled", "timed_out"],
        "InboundEventStatusEnum": "advisors.inbound.models.EventStatus",
        "BackupJobStatusEnum": "opscenter.backups.models.JobStatus",
        "HealthStateEnum": "monitoring.health.models.CheckState",
        "AlertStatusEnum": "alerts.models.AlertStatus",
        "AlertSeverityEnum": "alerts.models.Severity",
        "NotificationStatusEnum": "alerts.models.NotificationStatus",
    },
}
API_TOKEN_MAX_DAYS = _int("API_TOKEN_MAX_DAYS", 365, minimum=1, maximum=3650)

# --- Admin shell (Unfold) -------------------------------------------------------------------
UNFOLD = {
    "SITE_TITLE": "OpsCenter",
    "SITE_HEADER": "OpsCenter",
    "SITE_SUBHEADER": "Advisor content pipeline",
    "SITE_SYMBOL": "hub",
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/svg+xml", "href": "opscenter.navigation.favicon"}],
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "ENVIRONMENT": "opscenter.navigation.environment_badge",
    "STYLES": ["opscenter.navigation.stylesheet"],
    "SCRIPTS": ["opscenter.navigation.live_script"],
    "ACCOUNT": {"navigation": "opscenter.navigation.account_links"},
    "LOGIN": {"form": "opscenter.forms.LoginForm"},
    "SIDEBAR": {
        "show_search": False,
        "show_all_applications": False,
        "navigation": "opscenter.navigation.sidebar",
    },
}

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = _choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        # The log store (monitoring.logs): queued in memory, written by a background thread.
        "store": {
            "class": "monitoring.logs.handler.DatabaseLogHandler",
            "level": LOG_STORE_LEVEL,
            "capacity": LOG_STORE_QUEUE_SIZE,
            "batch_size": LOG_STORE_BATCH_SIZE,
            "flush_interval": LOG_STORE_FLUSH_SECONDS,
        },
    },
    "root": {"handlers": ["console", "store"], "level": LOG_LEVEL},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        # One line per task every few seconds (the heartbeat) drowns everything else.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
        "celery.beat": {"level": "WARNING"},
        # One line per request: health checks and outbound webhooks would drown the log.
        "httpx": {"level": "WARNING"},
    },
}

# How approved content is delivered: "outbox" (local, default), "webhook" (a signed POST to
# DELIVERY_WEBHOOK_URL) or "whatsapp" (the WhatsApp Cloud API; needs the token and number id).
DELIVERY_CHANNEL = _choice("DELIVERY_CHANNEL", "outbox", ("outbox", "webhook", "whatsapp"))
DELIVERY_MAX_ATTEMPTS = _int("DELIVERY_MAX_ATTEMPTS", 8, minimum=1, maximum=50)
DELIVERY_RETRY_DELAY_SECONDS = _int("DELIVERY_RETRY_DELAY_SECONDS", 30, minimum=0, maximum=3600)
DELIVERY_RETRY_MAX_DELAY_SECONDS = _int("DELIVERY_RETRY_MAX_DELAY_SECONDS", 1800, minimum=0, maximum=86400)
DELIVERY_TIMEOUT_SECONDS = _int("DELIVERY_TIMEOUT_SECONDS", 15, minimum=1, maximum=300)
DELIVERY_WEBHOOK_URL = os.environ.get("DELIVERY_WEBHOOK_URL", "")
DELIVERY_WEBHOOK_SECRET = os.environ.get("DELIVERY_WEBHOOK_SECRET", "")
WHATSAPP_ACCESS_TOKEN = os.environ.get("WHATSAPP_ACCESS_TOKEN", "")
WHATSAPP_PHONE_NUMBER_ID = os.environ.get("WHATSAPP_PHONE_NUMBER_ID", "")
WHATSAPP_API_BASE = os.environ.get("WHATSAPP_API_BASE", "https://graph.facebook.com").rstrip("/")
WHATSAPP_API_VERSION = os.environ.get("WHATSAPP_API_VERSION", "v21.0")
# An approved message template (outside the 24-hour window a business may only send
# templates); empty: the post is sent as an image with a caption, or as text.
WHATSAPP_TEMPLATE_NAME = os.environ.get("WHATSAPP_TEMPLATE_NAME", "")
WHATSAPP_TEMPLATE_LANGUAGE = os.environ.get("WHATSAPP_TEMPLATE_LANGUAGE", "en")
# Absolute base for media links sent to outside services (WhatsApp fetches images by URL).
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "").rstrip("/")

# Demo data (advisors, topics, rules and a first content cycle) on the first `make run`.
OPSCENTER_DEMO = _bool("OPSCENTER_DEMO", True)

# The content engine's writer: "local" (templates, offline, the default) or an
# OpenAI-compatible chat-completions API when its URL and key are set.
CONTENT_LLM_URL = os.environ.get("CONTENT_LLM_URL", "").rstrip("/")
CONTENT_LLM_API_KEY = os.environ.get("CONTENT_LLM_API_KEY", "")
CONTENT_LLM_MODEL = os.environ.get("CONTENT_LLM_MODEL", "gpt-4o-mini")
CONTENT_LLM_TIMEOUT_SECONDS = _int("CONTENT_LLM_TIMEOUT_SECONDS", 30, minimum=1, maximum=600)
# The time zone of the engine's default schedules (evening run, morning catch-up, guardian).
ENGINE_TIME_ZONE = os.environ.get("ENGINE_TIME_ZONE", "Asia/Kolkata")
try:
    zoneinfo.ZoneInfo(ENGINE_TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"Environment variable ENGINE_TIME_ZONE={ENGINE_TIME_ZONE!r} is invalid: not an IANA time zone such as Asia/Kolkata"
    ) from None
# Sends whose worker died mid-call: failed as "outcome unknown" (never re-sent by themselves).
CELERY_BEAT_SCHEDULE["advisors: reap deliveries"] = {
    "task": "advisors.tasks.reap_deliveries",
    "schedule": 60.0,
    "options": {"expires": 120},
}
# How long a reviewer's claim on a queue item lasts without a renewal.
REVIEW_CLAIM_SECONDS = _int("REVIEW_CLAIM_SECONDS", 120, minimum=10, maximum=3600)

# Admin user created by bootstrap (manage.py bootstrap / make run).
OPSCENTER_ADMIN_USER = os.environ.get("OPSCENTER_ADMIN_USER", "admin")
OPSCENTER_ADMIN_PASSWORD = os.environ.get("OPSCENTER_ADMIN_PASSWORD", "")
