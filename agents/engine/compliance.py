"""The compliance validator: checks a post against the rules edited in the admin.

Each finding is {"rule", "severity", "message", "start", "end"}, with start/end character
offsets into the post's body (as the review queue highlights them), or None when the
finding is about the whole post (a missing disclaimer, the length) or about the title.

Checking is hot (about a thousand posts a cycle), so regular expressions are built once per
phrase or pattern per process and cached by their text; a post is scanned once per rule.
A pattern an admin saved that is invalid, matches the empty string or could backtrack
exponentially is refused by rule_problems() (the admin form), and skipped with a logged
warning at check time in case it reached the table some other way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

# The parser behind re.compile (private, stable since 3.11): its tree shows a nested
# repetition and the shortest possible match, which no public API does.
from re import _parser as _sre_parse

from advisors.models import ComplianceVerdict

from .fatigue import WORD_CHARS, words
from .models import FAILING_SEVERITIES, ComplianceRule, RuleKind, Severity

logger = logging.getLogger(__name__)

# Enough to show a reviewer a rule is broken repeatedly; also bounds the work a pattern
# that matches everywhere can cause.
MAX_FINDINGS_PER_RULE = 20
_REGEX_FLAGS = re.IGNORECASE | re.UNICODE
_DASH_CHARS = "-\u2010\u2011\u2012\u2013\u2014"
_DASHES = "\\" + _DASH_CHARS  # for a character class: the ASCII hyphen escaped
# "ARN-123456", "ARN 123456", "arn: 123456", "ARN No. 123456", "ARN – 123456".
_ARN_TAIL = rf"\s*(?:no\.?|number)?\s*[{_DASHES}:#.]{{0,2}}\s*(\d{{1,9}})(?!\d)"
_ARN_IN_TEXT = re.compile(rf"(?<![{WORD_CHARS}])ARN{_ARN_TAIL}", _REGEX_FLAGS)
_ARN_IN_LOWERED = re.compile(rf"a(?<![{WORD_CHARS}].)rn{_ARN_TAIL}")  # see _phrase_regex
_ARN_DIGITS = re.compile(r"\s*ARN\s*[-:]?\s*(\d{1,9})\s*", re.IGNORECASE)


@dataclass
class ComplianceResult:
    """The verdict on one post (a ComplianceVerdict value) and the findings behind it."""

    verdict: str
    findings: list[dict]


# --- building the regular expressions ------------------------------------------------------------


def _is_word_char(char: str) -> bool:
    return re.fullmatch(f"[{WORD_CHARS}]", char) is not None


@dataclass(frozen=True)
class _PhraseRegex:
    fast: re.Pattern[str]  # for the lower-cased text: case-sensitive, so the engine can scan for a literal
    slow: re.Pattern[str]  # for text whose lower case changes its length (a rare "İ"): any case


@lru_cache(maxsize=1024)
def _phrase_regex(phrase: str) -> _PhraseRegex | None:
    """Compile a banned phrase: whole words, any case, any run of spaces or line breaks
    between words, and a hyphen inside a word matching a space or nothing ("risk-free",
    "risk free", "riskfree")."""
    parts = []
    for word in phrase.lower().split():
        pieces = [re.escape(piece) for piece in re.split(f"[{_DASHES}]+", word) if piece]
        if pieces:
            parts.append(f"[\\s{_DASHES}]*".join(pieces))
    if not parts:
        return None
    body = r"\s+".join(parts)
    stripped = phrase.strip(f" \t\r\n{_DASH_CHARS}")
    # Word boundaries only where the phrase itself starts or ends with a letter or digit:
    # "100% safe" must still match before a full stop.
    starts_word = bool(stripped) and _is_word_char(stripped[0])
    after = f"(?![{WORD_CHARS}])" if stripped and _is_word_char(stripped[-1]) else ""
    if starts_word:
        # The start boundary goes after the first letter (looking back two characters):
        # a pattern that starts with a literal lets the engine skip ahead to it, ~30x faster
        # than testing a lookbehind at every character. Word characters are never escaped.
        fast = f"{body[0]}(?<![{WORD_CHARS}].){body[1:]}{after}"
        slow = f"(?<![{WORD_CHARS}]){body}{after}"
    else:
        fast = slow = f"{body}{after}"
    return _PhraseRegex(fast=re.compile(fast), slow=re.compile(slow, _REGEX_FLAGS))


def _subtrees(arg: object) -> Iterator:
    if isinstance(arg, _sre_parse.SubPattern):
        yield arg
    elif isinstance(arg, list | tuple):
        for item in arg:
            yield from _subtrees(item)


def _has_nested_repeat(tree: Iterable, inside_unbounded: bool = False) -> bool:
    """Tell whether an unbounded repetition contains another: the shape, like (a+)+, that
    makes a backtracking engine take exponential time on a near-miss."""
    for op, arg in tree:
        if str(op) in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            _, high, sub = arg
            # A large bound backtracks like no bound at all.
            unbounded = high == _sre_parse.MAXREPEAT or high > 100
            if unbounded and inside_unbounded:
                return True
            if _has_nested_repeat(sub, inside_unbounded or unbounded):
                return True
        elif any(_has_nested_repeat(sub, inside_unbounded) for sub in _subtrees(arg)):
            return True
    return False


@lru_cache(maxsize=1024)
def _compile_pattern(pattern: str) -> tuple[re.Pattern[str] | None, str]:
    """Return the compiled pattern and "", or None and why it cannot be used."""
    if not pattern.strip():
        return None, "Enter a regular expression."
    try:
        compiled = re.compile(pattern, _REGEX_FLAGS)
    except (re.error, OverflowError, RecursionError) as exc:
        where = f" at position {exc.pos}" if getattr(exc, "pos", None) is not None else ""
        return None, f"This is not a valid regular expression: {getattr(exc, 'msg', exc)}{where}."
    try:
        parsed = _sre_parse.parse(pattern, _REGEX_FLAGS)
        nested, shortest = _has_nested_repeat(parsed), parsed.getwidth()[0]
    except Exception:  # the parser is private: a change in it must not block saving a rule
        nested, shortest = False, 1
    if nested:
        return None, (
            "This pattern repeats a group that itself repeats without limit, like (a+)+, which can make "
            "checking a post take minutes. Bound the inner repetition, e.g. \\w{1,30}, or the outer one, e.g. {0,5}."
        )
    if shortest == 0 or compiled.search("") is not None:
        return None, (
            "This pattern can match the empty string (zero characters), so it would match everywhere; "
            "make it need at least one character."
        )
    return compiled, ""


@lru_cache(maxsize=64)
def _disclaimer_key(text: str) -> str:
    return " ".join(words(text))


@lru_cache(maxsize=64)
def _arn_digits(arn: str) -> int | None:
    match = _ARN_DIGITS.fullmatch(arn or "")
    return int(match.group(1)) if match else None


# --- checking a post -----------------------------------------------------------------------------


def _quote(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return f"“{text[:limit]}…”" if len(text) > limit else f"“{text}”"


def _finding(rule: ComplianceRule, message: str, start: int | None = None, end: int | None = None) -> dict:
    return {"rule": rule.name, "severity": str(rule.severity), "message": message, "start": start, "end": end}


def _lowered(text: str) -> str | None:
    lowered = text.lower()
    # Offsets found in the lower-cased text hold for the text only if no character changed length.
    return lowered if len(lowered) == len(text) else None


class _Post:
    """The post being checked, with what several rules need computed once."""

    def __init__(self, body: str, title: str, arn: str) -> None:
        self.body, self.title, self.arn = body, title, arn
        self.body_lowered, self.title_lowered = _lowered(body), _lowered(title)
        self._key: str | None = None

    @property
    def key(self) -> str:
        """The body's words joined by single spaces, padded, for disclaimer look-ups."""
        if self._key is None:
            self._key = f" {' '.join(words(self.body))} "
        return self._key


def _spans(
    text: str, lowered: str | None, regex: re.Pattern[str], fast: re.Pattern[str] | None
) -> Iterator[tuple[int, int]]:
    matches = fast.finditer(lowered) if fast is not None and lowered is not None else regex.finditer(text)
    for match in matches:
        if match.end() > match.start():  # an empty match points at nothing
            yield match.start(), match.end()


def _check_matches(
    rule: ComplianceRule, post: _Post, what: str, regex: re.Pattern[str], fast: re.Pattern[str] | None = None
) -> list[dict]:
    findings = []
    for start, end in _spans(post.body, post.body_lowered, regex, fast):
        message = rule.message or f"{what}: {_quote(post.body[start:end])}."
        findings.append(_finding(rule, message, start, end))
        if len(findings) >= MAX_FINDINGS_PER_RULE:
            break
    if post.title:
        span = next(_spans(post.title, post.title_lowered, regex, fast), None)
        if span is not None:
            # One per rule for the title: without positions, repeats would only be noise.
            quoted = _quote(post.title[span[0] : span[1]])
            message = f"{rule.message} (in the title)" if rule.message else f"{what} in the title: {quoted}."
            findings.append(_finding(rule, message))
    return findings


def _check_phrase(rule: ComplianceRule, post: _Post) -> list[dict]:
    compiled = _phrase_regex(rule.value or "")
    if compiled is None:
        return []
    return _check_matches(rule, post, "Banned phrase", compiled.slow, compiled.fast)


def _check_pattern(rule: ComplianceRule, post: _Post) -> list[dict]:
    regex, problem = _compile_pattern(rule.value or "")
    if regex is None:
        _warn_unusable(rule.value or "", rule.name, problem)
        return []
    return _check_matches(rule, post, "Banned wording", regex)


@lru_cache(maxsize=256)
def _warn_unusable(pattern: str, name: str, problem: str) -> None:
    # Cached so a bad rule is reported once per process, not once per post of a cycle.
    logger.warning("compliance rule “%s” skipped: %s (pattern %r)", name, problem, pattern)


def _written_verbatim(text: str, lowered: str | None) -> bool:
    """Tell whether `text` (lower-cased) stands in `lowered` as whole words: the usual case,
    which spares normalising the post."""
    if not text or lowered is None:
        return False
    at = lowered.find(text)
    while at != -1:
        end = at + len(text)
        clear_before = at == 0 or not (_is_word_char(text[0]) and _is_word_char(lowered[at - 1]))
        clear_after = end == len(lowered) or not (_is_word_char(text[-1]) and _is_word_char(lowered[end]))
        if clear_before and clear_after:
            return True
        at = lowered.find(text, at + 1)
    return False


def _check_disclaimer(rule: ComplianceRule, post: _Post) -> list[dict]:
    wanted = _disclaimer_key(rule.value or "")
    if not wanted or _written_verbatim((rule.value or "").strip().lower(), post.body_lowered):
        return []
    if f" {wanted} " in post.key:
        return []
    return [_finding(rule, rule.message or f"The required disclaimer is missing: {_quote(rule.value, 300)}")]


def _check_arn(rule: ComplianceRule, post: _Post) -> list[dict]:
    expected = _arn_digits(post.arn)
    if post.body_lowered is not None:
        shown = [int(m.group(1)) for m in _ARN_IN_LOWERED.finditer(post.body_lowered)]
    else:
        shown = [int(m.group(1)) for m in _ARN_IN_TEXT.finditer(post.body)]
    if expected is not None and expected in shown:
        return []
    if rule.message:
        message = rule.message
    elif expected is None:
        message = "The advisor's ARN is not known, so the post cannot show it."
    elif shown:
        message = f"The post shows ARN-{shown[0]}, not the advisor's ARN ({post.arn.strip()})."
    else:
        message = f"The advisor's ARN ({post.arn.strip()}) does not appear in the post."
    return [_finding(rule, message)]


def _check_length(rule: ComplianceRule, post: _Post) -> list[dict]:
    if not rule.limit:
        return []
    length = len(post.body)
    if rule.kind == RuleKind.MAX_LENGTH:
        if length <= rule.limit:
            return []
        figures = f"{length:,} characters; the longest allowed is {rule.limit:,}"
        generated = f"The post is too long: {figures}."
    else:
        if length >= rule.limit:
            return []
        figures = f"{length:,} characters; the shortest allowed is {rule.limit:,}"
        generated = f"The post is too short: {figures}."
    return [_finding(rule, f"{rule.message} ({figures})" if rule.message else generated)]


_CHECKS: dict[str, Callable[[ComplianceRule, _Post], list[dict]]] = {
    RuleKind.BANNED_PHRASE: _check_phrase,
    RuleKind.BANNED_PATTERN: _check_pattern,
    RuleKind.REQUIRED_DISCLAIMER: _check_disclaimer,
    RuleKind.ARN_REQUIRED: _check_arn,
    RuleKind.MAX_LENGTH: _check_length,
    RuleKind.MIN_LENGTH: _check_length,
}


def load_rules() -> list[ComplianceRule]:
    """Return the enabled rules (one query); load them once for a batch of posts."""
    return list(ComplianceRule.objects.filter(enabled=True))


def verdict_for(findings: Iterable[dict]) -> str:
    """Return the ComplianceVerdict value the findings add up to."""
    severities = {f.get("severity") for f in findings}
    if not severities:
        return ComplianceVerdict.PASS.value
    if severities & {str(s) for s in FAILING_SEVERITIES}:
        return ComplianceVerdict.FAIL.value
    return ComplianceVerdict.WARN.value


def check_post(
    body: str, *, title: str = "", arn: str, rules: Iterable[ComplianceRule] | None = None
) -> ComplianceResult:
    """Check a post against the rules (the enabled ones in the database when None).

    Rules given are applied as given, enabled or not, so a caller can try out one rule.
    Located findings come first in the order of the text, then the whole-post ones in rule order.
    """
    post = _Post(body or "", title or "", arn or "")
    findings: list[dict] = []
    for rule in load_rules() if rules is None else rules:
        check = _CHECKS.get(rule.kind)
        if check is None:
            logger.warning("compliance rule “%s” has an unknown kind %r; skipped", rule.name, rule.kind)
            continue
        findings.extend(check(rule, post))
    located = sorted((f for f in findings if f["start"] is not None), key=lambda f: (f["start"], f["end"]))
    whole = [f for f in findings if f["start"] is None]
    ordered = located + whole
    return ComplianceResult(verdict=verdict_for(ordered), findings=ordered)


# --- validating rules ----------------------------------------------------------------------------


def rule_problems(rule: ComplianceRule) -> dict[str, str]:
    """Return what is wrong with a rule, field → message; empty when it can be used."""
    kind, value = rule.kind, (rule.value or "").strip()
    problems: dict[str, str] = {}
    if kind == RuleKind.BANNED_PHRASE:
        if not value:
            problems["value"] = "Enter the banned phrase."
        elif not words(value):
            problems["value"] = "A banned phrase needs at least one letter or digit."
    elif kind == RuleKind.BANNED_PATTERN:
        _, problem = _compile_pattern(rule.value or "")
        if problem:
            problems["value"] = problem
    elif kind == RuleKind.REQUIRED_DISCLAIMER:
        if not value:
            problems["value"] = "Enter the disclaimer's text."
        elif not words(value):
            problems["value"] = "A disclaimer needs at least one letter or digit."
    elif kind == RuleKind.ARN_REQUIRED:
        if value:
            problems["value"] = "This rule checks the advisor's own ARN; leave the value empty."
    elif kind in (RuleKind.MAX_LENGTH, RuleKind.MIN_LENGTH):
        if rule.limit is None or rule.limit < 1:
            problems["limit"] = "Enter the number of characters (1 or more)."
        if value:
            problems["value"] = "Length rules use the limit; leave the value empty."
    if kind not in (RuleKind.MAX_LENGTH, RuleKind.MIN_LENGTH) and kind in RuleKind.values and rule.limit is not None:
        problems["limit"] = "Only the length rules use a limit; leave it empty."
    return problems


# --- the starter set -----------------------------------------------------------------------------

STANDARD_DISCLAIMER = "Mutual fund investments are subject to market risks, read all scheme related documents carefully."

# A percentage or "x per cent": 12%, 12.5 %, 12 percent, 12 per cent.
_PERCENT = r"\d{1,3}(?:[.,]\d{1,2})?\s?(?:%|per\s?cent\b|pc\b)"

DEFAULT_RULES: list[dict] = [
    # Claims SEBI's advertisement code and the AMFI code of conduct forbid outright.
    {"name": "Guaranteed returns", "kind": RuleKind.BANNED_PHRASE, "value": "guaranteed returns",
     "severity": Severity.CRITICAL,
     "message": "Mutual fund returns cannot be guaranteed; remove “guaranteed returns”."},
    {"name": "Assured returns", "kind": RuleKind.BANNED_PHRASE, "value": "assured returns",
     "severity": Severity.CRITICAL,
     "message": "Mutual fund returns cannot be assured; remove “assured returns”."},
    {"name": "Fixed returns", "kind": RuleKind.BANNED_PHRASE, "value": "fixed returns", "severity": Severity.HIGH,
     "message": "Market-linked schemes do not give fixed returns."},
    {"name": "Risk-free", "kind": RuleKind.BANNED_PHRASE, "value": "risk-free", "severity": Severity.HIGH,
     "message": "No mutual fund is risk-free; describe the scheme's riskometer level instead."},
    {"name": "No risk", "kind": RuleKind.BANNED_PHRASE, "value": "no risk", "severity": Severity.HIGH,
     "message": "Every market-linked investment carries risk; do not say there is none."},
    {"name": "Double your money", "kind": RuleKind.BANNED_PHRASE, "value": "double your money",
     "severity": Severity.HIGH, "message": "Do not promise that money will double."},
    {"name": "100% safe", "kind": RuleKind.BANNED_PHRASE, "value": "100% safe", "severity": Severity.HIGH,
     "message": "No market-linked investment is 100% safe."},
    # A promise of a rate: "earn 12%", "get 15% returns", "will give 18% p.a.",
    # "12% guaranteed", "assured 10%". Past tense ("delivered 12%") is left to the next rule.
    {"name": "Promised percentage return", "kind": RuleKind.BANNED_PATTERN, "severity": Severity.HIGH,
     "value": (
         r"\b(?:(?:earn|get|gets|make|makes|give|gives|deliver|delivers|generate|generates|fetch|fetches|"
         r"will\s+(?:earn|get|make|give|deliver|generate|fetch|grow|return|yield))"
         r"(?:\s+(?:you|an?|up\s?to|at\s+least|minimum|over|more\s+than|around|about|nearly|almost|upwards\s+of)){0,3}"
         rf"\s+{_PERCENT}"
         rf"|(?:guaranteed|assured|fixed|promised|sure[-\s]?shot)\s+(?:returns?\s+of\s+)?{_PERCENT}"
         rf"|{_PERCENT}\s+(?:guaranteed|assured|fixed|sure[-\s]?shot|promised))"
     ),
     "message": "Do not promise a rate of return; past performance may be shown only with its period "
                "and the statement that it may not be sustained."},
    # Any rate of return stated: the reviewer checks it is past performance, properly disclosed.
    {"name": "Percentage return mentioned", "kind": RuleKind.BANNED_PATTERN, "severity": Severity.MEDIUM,
     "value": (
         r"\b(?:returns?|yields?|gains?|profits?|cagr|xirr)"
         r"(?:\s+(?:of|up\s?to|upto|at|around|about|over|above|nearly|almost|more\s+than|as\s+high\s+as)){0,2}"
         rf"\s+(?:~\s?)?{_PERCENT}"
         rf"|{_PERCENT}\s*(?:\+\s*)?(?:(?:p\.?\s?a\.?|per\s+annum|a\s+year|annual(?:ly|ised|ized)?|yearly)\s+)?"
         r"(?:returns?|yields?|gains?|profits?|cagr|xirr)\b"
     ),
     "message": "A rate of return is stated: make sure it is past performance, with its period, the benchmark "
                "and “past performance may or may not be sustained in future”."},
    {"name": "Superlative claim", "kind": RuleKind.BANNED_PATTERN, "severity": Severity.MEDIUM,
     "value": (
         r"(?<!\w)(?:the\s+)?(?:best|safest|top|no\.?\s?1|number\s+one|#\s?1|highest[-\s]returning|"
         r"top[-\s](?:performing|rated|ranked))"
         r"\s+(?:(?:performing|rated|ranked|equity|debt|hybrid|elss|tax[-\s]saving|mutual)\s+){0,2}"
         r"(?:funds?|schemes?|sips?|plans?|investments?|amcs?)\b"
     ),
     "message": "Superlatives (“best”, “top”, “No. 1”) need a named, dated, independent source, or should go."},
    {"name": "Standard disclaimer", "kind": RuleKind.REQUIRED_DISCLAIMER, "value": STANDARD_DISCLAIMER,
     "severity": Severity.HIGH, "message": f"Add the standard disclaimer: “{STANDARD_DISCLAIMER}”"},
    {"name": "ARN shown", "kind": RuleKind.ARN_REQUIRED, "value": "", "severity": Severity.HIGH,
     "message": "Show the advisor's ARN (e.g. “ARN-123456”) in the post."},
    {"name": "Longest post", "kind": RuleKind.MAX_LENGTH, "limit": 1200, "severity": Severity.MEDIUM,
     "message": "Keep the post short enough to read on a phone."},
    {"name": "Shortest post", "kind": RuleKind.MIN_LENGTH, "limit": 120, "severity": Severity.LOW,
     "message": "The post is very short; it may not say anything useful."},
]


def ensure_default_rules() -> int:
    """Create the starter rules when there are no rules at all; return how many were created."""
    if ComplianceRule.objects.exists():
        return 0
    created = ComplianceRule.objects.bulk_create(ComplianceRule(**spec) for spec in DEFAULT_RULES)
    return len(created)
