"""Demo data through the real code paths: advisors, the topic bank, compliance rules, and a
content cycle started on the workers like any other (its posts then wait in the queue)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from advisors.models import Advisor
from agents.models import Agent
from agents.services import trigger_run
from opscenter.audit import record_audit
from opscenter.models import AuditSource

from ...compliance import ensure_default_rules
from ...models import EngineSettings
from ...services import engine_zone
from ...topics import ensure_starter_topics

# (name, segment, language, topics they asked for)
DEMO_ADVISORS = [
    ("Aarav Sharma", "retail", "en", ["SIP"]), ("Priya Nair", "HNI", "en", ["Asset allocation"]),
    ("Rohan Mehta", "NRI", "en", ["NRI"]), ("Ananya Iyer", "retail", "ta", ["Tax saving"]),
    ("Vikram Singh", "retail", "hi", ["SIP"]), ("Kavya Reddy", "HNI", "te", []),
    ("Arjun Patel", "retail", "gu", ["Goals"]), ("Sneha Kulkarni", "retail", "mr", ["Retirement"]),
    ("Rahul Verma", "HNI", "hi", ["Tax saving"]), ("Meera Das", "retail", "bn", []),
    ("Karthik Rao", "NRI", "kn", ["NRI"]), ("Divya Menon", "retail", "ml", ["Insurance"]),
    ("Aditya Joshi", "HNI", "en", ["Debt funds"]), ("Pooja Gupta", "retail", "hi", ["SIP"]),
    ("Siddharth Bose", "retail", "en", ["Markets"]), ("Neha Agarwal", "HNI", "en", ["Retirement"]),
    ("Manish Tiwari", "retail", "hi", []), ("Lakshmi Subramanian", "retail", "ta", ["Goals"]),
    ("Farhan Qureshi", "NRI", "en", ["NRI"]), ("Ishita Banerjee", "retail", "bn", ["Tax saving"]),
]


class Command(BaseCommand):
    help = (
        "Create demo advisors, the starter topic bank and compliance rules, and start a content cycle for "
        "today on the workers. With --first-start it does nothing unless the database has no advisors "
        "and OPSCENTER_DEMO is on (make run uses this)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--first-start", action="store_true",
                            help="Only on a fresh database, and only when OPSCENTER_DEMO is on.")
        parser.add_argument("--advisors", type=int, default=len(DEMO_ADVISORS),
                            help=f"How many demo advisors (at most {len(DEMO_ADVISORS)}).")
        parser.add_argument("--no-cycle", action="store_true", help="Create the data but start no cycle.")

    def handle(self, *args, first_start: bool = False, advisors: int = 0, no_cycle: bool = False, **options):
        if first_start and (not settings.OPSCENTER_DEMO or Advisor.objects.exists()):
            return
        topics, rules = ensure_starter_topics(), ensure_default_rules()
        EngineSettings.load()
        created = self._advisors(max(0, min(advisors, len(DEMO_ADVISORS))))
        self.stdout.write(f"Demo data: {created} advisors, {topics} topics, {rules} compliance rules added.")
        if no_cycle:
            return
        from datetime import datetime

        today = datetime.now(engine_zone()).date()
        run = trigger_run(Agent.objects.get(slug="content-orchestrator"), params={"cycle_date": today.isoformat()},
                          source=AuditSource.SYSTEM)
        self.stdout.write(
            f"Started content cycle {today:%Y-%m-%d} as run #{run.pk}: its posts reach the review queue as "
            "soon as a worker has written them."
        )

    def _advisors(self, count: int) -> int:
        made = 0
        for index, (name, segment, language, topics) in enumerate(DEMO_ADVISORS[:count]):
            arn = f"ARN-{104200 + index}"
            if Advisor.objects.filter(arn=arn).exists():
                continue
            advisor = Advisor(name=name, arn=arn, phone=f"+9198765{43210 + index:05d}", segment=segment,
                              language=language, topics=topics,
                              email=f"{name.split()[0].lower()}@example.com")
            advisor.full_clean()
            advisor.save()
            record_audit("advisor.created", target=advisor, changes={"by": "seed_demo"})
            made += 1
        return made
