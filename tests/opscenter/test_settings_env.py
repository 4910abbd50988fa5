"""A bad environment value stops start-up with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(tmp_path, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL"}}
    env.update({"OPSCENTER_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "opscenter.settings"})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("DEBUG", "maybe"),
        ("TIME_ZONE", "Mars/Olympus_Mons"),
        ("DATABASE_URL", "mysql://u:p@db/opscenter"),
        ("REDIS_URL", "memcached://cache:11211"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("CSRF_TRUSTED_ORIGINS", "opscenter.example.com"),
        ("OPSCENTER_ENV", "staging"),
        ("LOGIN_FAILURE_LIMIT", "0"),
    ],
)
def test_bad_value_stops_startup_naming_the_variable(tmp_path, variable, value):
    result = run_check(tmp_path, **{variable: value})
    assert result.returncode == 2
    assert f"OpsCenter cannot start: Environment variable {variable}" in result.stderr
    assert "Traceback" not in result.stderr


def test_production_requires_a_secret_key(tmp_path):
    result = run_check(tmp_path, OPSCENTER_ENV="production", ALLOWED_HOSTS="ops.example.com", SECRET_KEY="")
    assert result.returncode == 2
    assert "SECRET_KEY is required" in result.stderr


def test_production_requires_allowed_hosts(tmp_path):
    env = {"OPSCENTER_ENV": "production", "SECRET_KEY": "x" * 60}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k != "ALLOWED_HOSTS"}, "OPSCENTER_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "ALLOWED_HOSTS is required" in result.stderr


def test_development_secret_key_is_generated_once_with_private_mode(tmp_path):
    env = {"SECRET_KEY": ""}
    assert run_check(tmp_path, **env).returncode == 0
    key_file = tmp_path / "secret_key"
    first = key_file.read_text()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert run_check(tmp_path, **env).returncode == 0
    assert key_file.read_text() == first


def test_production_settings_pass_the_deploy_check(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **os.environ,
            "OPSCENTER_VAR_DIR": str(tmp_path),
            "OPSCENTER_ENV": "production",
            "ALLOWED_HOSTS": "ops.example.com",
            "SECRET_KEY": "k3y-" + "a1b2c3d4e5" * 6,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
