"""Each kind of check against real local servers: what counts as up, and what down says."""

from __future__ import annotations

import os
import time

import pytest

from monitoring.health.probes import JsonPathError, parse_json_path, run_checks_sync
from tests.processes import free_port

from .conftest import make_check

pytestmark = pytest.mark.django_db


def run(check):
    (outcome,) = run_checks_sync([check])
    return outcome


def test_an_http_check_is_up_when_the_expected_status_answers(http_server):
    outcome = run(make_check(url=f"{http_server.base}/ok"))

    assert outcome.ok
    assert outcome.status_code == 200
    assert outcome.detail == "HTTP 200"
    assert 0 < outcome.latency_ms < 2000


def test_an_http_check_is_down_on_another_status(http_server):
    outcome = run(make_check(url=f"{http_server.base}/status/503"))

    assert not outcome.ok
    assert outcome.status_code == 503
    assert outcome.detail == "HTTP 503, expected 200"


def test_an_expected_non_200_status_counts_as_up(http_server):
    assert run(make_check(url=f"{http_server.base}/status/204", expected_status=204)).ok


def test_an_http_check_is_down_when_the_keyword_is_missing(http_server):
    found = run(make_check(url=f"{http_server.base}/ok", keyword="service ok"))
    missing = run(make_check(url=f"{http_server.base}/ok", keyword="all systems go"))

    assert found.ok
    assert not missing.ok
    assert missing.detail == "HTTP 200, but “all systems go” is not in the body"


def test_a_json_path_must_exist_and_match_the_expected_value(http_server):
    url = f"{http_server.base}/json"

    assert run(make_check(url=url, json_path="$.status", json_expected="ok")).ok
    assert run(make_check(url=url, json_path="checks[0].ok", json_expected="true")).ok
    assert run(make_check(url=url, json_path="$.checks[0].n")).ok
    wrong = run(make_check(url=url, json_path="$.status", json_expected="degraded"))
    absent = run(make_check(url=url, json_path="$.checks[3].ok"))
    not_json = run(make_check(url=f"{http_server.base}/ok", json_path="$.status"))

    assert not wrong.ok and wrong.detail == "HTTP 200, but $.status is 'ok', expected 'degraded'"
    assert not absent.ok and "is not in the JSON" in absent.detail
    assert not not_json.ok and not_json.detail == "HTTP 200, but the body is not JSON"


def test_a_slow_answer_is_down_at_the_checks_timeout(http_server):
    started = time.monotonic()
    outcome = run(make_check(url=f"{http_server.base}/slow?3", timeout_seconds=0.5))
    elapsed = time.monotonic() - started

    assert not outcome.ok
    assert outcome.detail == "timed out after 0.5 s"
    assert elapsed < 2.0


def test_the_request_carries_the_checks_headers_and_method(http_server):
    outcome = run(make_check(url=f"{http_server.base}/ok", method="HEAD"))

    # The loopback server has no HEAD handler: http.server answers 501, which is not 200.
    assert not outcome.ok and outcome.status_code == 501


def test_an_http_check_of_a_closed_port_is_down_with_the_reason():
    outcome = run(make_check(url=f"http://127.0.0.1:{free_port()}/health"))

    assert not outcome.ok
    assert outcome.detail == "cannot connect: connection refused"


def test_a_tcp_check_is_up_on_a_listening_port_and_down_on_a_closed_one(http_server):
    port = int(http_server.base.rsplit(":", 1)[1])
    open_ = run(make_check(kind="tcp", url="", host="127.0.0.1", port=port))
    closed = run(make_check(kind="tcp", url="", host="127.0.0.1", port=free_port()))

    assert open_.ok and open_.detail == f"port {port} open"
    assert not closed.ok
    assert closed.detail == "cannot connect: connection refused"


def test_a_redis_check_follows_the_server_going_down_and_coming_back(throwaway_redis):
    check = make_check(kind="redis", url=throwaway_redis.url, timeout_seconds=1.0)

    assert run(check).ok
    throwaway_redis.stop()
    down = run(check)
    throwaway_redis.start()
    back = run(check)

    assert not down.ok
    assert "Error" in down.detail  # redis-py's ConnectionError, named
    assert back.ok and back.detail == "PONG"


def test_the_database_check_runs_select_1():
    outcome = run(make_check(kind="database", url=""))

    assert outcome.ok
    assert "SELECT 1 answered" in outcome.detail


def test_a_disk_check_is_down_at_its_threshold(tmp_path):
    import shutil

    usage = shutil.disk_usage(tmp_path)
    used = 100 * usage.used / usage.total
    below = run(make_check(kind="disk", url="", path=str(tmp_path), threshold_percent=100))
    above = run(make_check(kind="disk", url="", path=str(tmp_path), threshold_percent=max(1, int(used))))
    missing = run(make_check(kind="disk", url="", path="/no/such/dir", threshold_percent=90))

    assert below.ok and "% used" in below.detail
    assert not above.ok and f"(threshold {max(1, int(used))}%)" in above.detail
    assert not missing.ok and "FileNotFoundError" in missing.detail


def test_a_process_check_by_pid_file_and_by_name(tmp_path):
    alive = tmp_path / "alive.pid"
    alive.write_text(str(os.getpid()))
    dead = tmp_path / "dead.pid"
    dead.write_text("999999")

    assert run(make_check(kind="process", url="", pid_file=str(alive))).ok
    gone = run(make_check(kind="process", url="", pid_file=str(dead)))
    no_file = run(make_check(kind="process", url="", pid_file=str(tmp_path / "none.pid")))
    assert not gone.ok and "is not running" in gone.detail
    assert not no_file.ok and "no PID file" in no_file.detail
    assert not run(make_check(kind="process", url="", process_name="no-such-process-xyz")).ok


def test_many_checks_run_concurrently_not_one_after_another(http_server):
    checks = [make_check(url=f"{http_server.base}/slow?0.5", timeout_seconds=2) for _ in range(10)]

    started = time.monotonic()
    outcomes = run_checks_sync(checks)

    assert all(o.ok for o in outcomes)
    assert [o.check_id for o in outcomes] == [c.pk for c in checks]
    assert time.monotonic() - started < 2.5  # ten half-second answers, side by side


def test_the_overall_bound_ends_checks_that_would_outlast_it(http_server):
    checks = [make_check(url=f"{http_server.base}/slow?3", timeout_seconds=5)]

    (outcome,) = run_checks_sync(checks, overall_timeout=0.5)

    assert not outcome.ok
    assert outcome.detail == "did not finish within the cycle's bound of 0.5 s"


@pytest.mark.parametrize(("path", "steps"), [
    ("$.status", ["status"]), ("status", ["status"]), ("checks[0].ok", ["checks", 0, "ok"]),
    ('$["odd key"][2]', ["odd key", 2]),
])
def test_json_paths_are_read_as_keys_and_indexes(path, steps):
    assert parse_json_path(path) == steps


@pytest.mark.parametrize("path", ["$", "", "a..b", "a[x]", "$.a b"])
def test_bad_json_paths_are_refused(path):
    with pytest.raises(JsonPathError):
        parse_json_path(path)
