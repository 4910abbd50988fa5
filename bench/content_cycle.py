"""A full content cycle for 1,000 advisors on two worker processes, images included.

    .venv/bin/python bench/content_cycle.py                       # embedded default (SQLite + redis)
    DATABASE_URL=postgres://bench:bench@localhost:5432/opscenter .venv/bin/python bench/content_cycle.py

Sets up its own world (bench/servers.py: a temporary var/, an embedded redis-server unless
REDIS_URL is set, a fresh SQLite database or a PostgreSQL database of its own), migrates,
loads N advisors (default 1,000; spread over segments and languages), the starter topic bank
and the default compliance rules, then starts one Celery worker with two processes as the
Procfile does and triggers the content orchestrator the way the schedule does.

Measured: wall time from the trigger to the orchestrator run's end (every post written,
fatigue-checked, illustrated, compliance-checked and submitted), time per advisor, and per
agent the summed run time and the span from its first start to its last end.

Baseline in the same run: the same work for the same advisors without the runtime, the
queue or the database — the writer, the fatigue comparison, the image card and the
compliance check called in a loop in this process — divided by two (two processes), i.e.
the floor for the work itself. The ratio says what the runtime, Celery and the database add.
Target: the cycle <= 60 s for 1,000 advisors. Exit status 1 when it is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import BUSY_WARNING, bench_environment, machine_busy, start_worker  # noqa: E402

TARGET_SECONDS = 60.0
SEGMENTS = ["retail", "retail", "HNI", "NRI", ""]
LANGUAGES = ["en", "en", "en", "hi", "mr", "gu", "ta", "te", "bn"]


def seed(count: int) -> list[int]:
    """Load the advisors, the topic bank and the rules; return the advisor ids."""
    from advisors.models import Advisor
    from agents.engine.compliance import ensure_default_rules
    from agents.engine.models import EngineSettings
    from agents.engine.topics import ensure_starter_topics

    ensure_starter_topics()
    ensure_default_rules()
    EngineSettings.load()
    Advisor.objects.bulk_create(
        Advisor(name=f"Bench Advisor {n:04d}", arn=f"ARN-{500000 + n}", phone=f"+9190000{n:05d}",
                segment=SEGMENTS[n % len(SEGMENTS)], language=LANGUAGES[n % len(LANGUAGES)])
        for n in range(count)
    )
    return list(Advisor.objects.order_by("id").values_list("pk", flat=True))


def baseline(advisor_ids: list[int]) -> float:
    """Seconds for the engine's work alone (no runtime, queue or database), on one process."""
    from datetime import date

    from advisors.models import Advisor
    from agents.engine import compliance, fatigue, images, writer
    from agents.engine.models import ComplianceRule, EngineSettings, Topic

    advisors = list(Advisor.objects.filter(pk__in=advisor_ids))
    topics = list(Topic.objects.filter(enabled=True))
    rules = list(ComplianceRule.objects.filter(enabled=True))
    brand = images.Brand.from_settings(EngineSettings.load())
    provider = writer.LocalTemplateProvider()
    disclaimer = next((r.value for r in rules if r.kind == "required_disclaimer"), "")
    history = [provider.write(writer.Brief(
        advisor_name="History", arn="ARN-1", language="en", segment="retail", topic_title=t.title,
        topic_category=t.category, summary=t.summary, key_points=tuple(t.key_points), cycle_date=date(2026, 1, 1),
        disclaimer=disclaimer)).body for t in topics[:10]]
    started = time.perf_counter()
    for n, advisor in enumerate(advisors):
        topic = topics[n % len(topics)]
        draft = provider.write(writer.Brief(
            advisor_name=advisor.name, arn=advisor.arn, language=advisor.language, segment=advisor.segment,
            topic_title=topic.title, topic_category=topic.category, summary=topic.summary,
            key_points=tuple(topic.key_points), cycle_date=date(2026, 11, 24), disclaimer=disclaimer))
        fatigue.most_similar(draft.body, history)
        images.render_card(headline=draft.title, fallback_headline=topic.title, advisor_name=advisor.name,
                           arn=advisor.arn, brand=brand, topic=topic.category)
        compliance.check_post(draft.body, title=draft.title, arn=advisor.arn, rules=rules)
    return time.perf_counter() - started


def run_cycle(advisor_ids: list[int], *, timeout: float) -> tuple[float, object]:
    from agents.models import Agent, AgentRun
    from agents.services import trigger_run

    root = trigger_run(Agent.objects.get(slug="content-orchestrator"), params={"advisors": advisor_ids})
    started = time.perf_counter()
    deadline = started + timeout
    while time.perf_counter() < deadline:
        root = AgentRun.objects.get(pk=root.pk)
        if root.is_final:
            return time.perf_counter() - started, root
        time.sleep(0.2)
    raise SystemExit(f"the cycle did not finish within {timeout:.0f}s (run #{root.pk} is {root.status})")


def report(wall: float, root, floor: float, advisors: int) -> bool:
    from advisors.models import Content
    from agents.models import AgentRun

    runs = list(AgentRun.objects.filter(root_id=root.pk).select_related("agent"))
    per_agent: dict[str, list] = defaultdict(list)
    for run in runs:
        per_agent[run.agent.slug].append(run)
    print(f"\nCycle run #{root.pk}: {root.status}; {len(runs)} runs; "
          f"{Content.objects.filter(status='pending_review').count()} posts in the queue, "
          f"{Content.objects.exclude(image='').count()} with an image")
    print(f"\n  {'agent':<22} {'runs':>5} {'run time s':>11} {'span s':>8}")
    for slug in ("content-orchestrator", "content-strategist", "content-generator", "fatigue-checker",
                 "image-creator", "compliance-validator"):
        rows = per_agent.get(slug, [])
        done = [r for r in rows if r.started_at and r.finished_at]
        busy = sum((r.finished_at - r.started_at).total_seconds() for r in done)
        span = (max(r.finished_at for r in done) - min(r.started_at for r in done)).total_seconds() if done else 0
        print(f"  {slug:<22} {len(rows):>5} {busy:>11.1f} {span:>8.1f}")
    per_advisor = wall / advisors * 1000
    print(f"\nWall time, trigger to the last stage's end: {wall:.1f} s ({per_advisor:.1f} ms per advisor)")
    print(f"Baseline, the work alone on two processes: {floor / 2:.1f} s (one process: {floor:.1f} s)")
    print(f"Ratio cycle / baseline: {wall / (floor / 2):.2f}")
    scaled = wall * 1000 / advisors
    ok = root.status == "succeeded" and scaled <= TARGET_SECONDS
    print(f"Target: <= {TARGET_SECONDS:.0f} s for 1,000 advisors -> {scaled:.1f} s scaled  {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--advisors", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, database)")
    args = parser.parse_args(argv)
    busy = machine_busy()
    with bench_environment("cycle", keep=args.keep) as world:
        ids = seed(args.advisors)
        floor = baseline(ids)
        worker = start_worker(world["log_dir"], concurrency=2)
        try:
            from opscenter.celery import app

            deadline = time.monotonic() + 60
            while not app.control.ping(timeout=0.5) and time.monotonic() < deadline:
                pass
            wall, root = run_cycle(ids, timeout=args.timeout)
        finally:
            worker.stop()
        ok = report(wall, root, floor, len(ids))
    if busy > BUSY_WARNING:
        print("The machine was busy before the run: the figures are inflated.")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
