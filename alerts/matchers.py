"""Label matchers in the Prometheus / Alertmanager syntax: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.

Rules filter series with them, silences and maintenance windows pick alerts with them,
channels route with them. A list is written comma separated; values are double-quoted
(quotes optional for simple values). Regular expressions match the whole value, as in
Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

OPS = ("=~", "!~", "!=", "=")
_MATCHER = re.compile(
    r'\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*'
    r'(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^,"\s]*))\s*(?:,|$)'
)


class MatcherError(ValueError):
    """A matcher list that cannot be parsed (the message says where)."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = str(labels.get(self.name, ""))
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = _compiled(self.value).fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


@lru_cache(maxsize=4096)
def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Parse a comma-separated matcher list; raise MatcherError saying what is wrong."""
    text = (text or "").strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    out: list[Matcher] = []
    pos = 0
    while pos < len(text):
        found = _MATCHER.match(text, pos)
        if not found or found.end() == pos:
            raise MatcherError(f'cannot read a matcher at “{text[pos:pos + 30]}”: write name="value", name!="value", '
                               'name=~"regex" or name!~"regex", separated by commas')
        raw = found.group("quoted")
        value = re.sub(r"\\(.)", r"\1", raw) if raw is not None else found.group("bare")
        op = found.group("op")
        if op in ("=~", "!~"):
            try:
                _compiled(value)
            except re.error as exc:
                raise MatcherError(f"{found.group('name')}: invalid regular expression “{value}”: {exc}") from None
        out.append(Matcher(found.group("name"), op, value))
        pos = found.end()
    return tuple(out)


def matches_all(matchers: tuple[Matcher, ...] | str, labels: Mapping[str, str]) -> bool:
    """Return whether every matcher holds for `labels` (an empty list matches everything)."""
    if isinstance(matchers, str):
        matchers = parse_matchers(matchers)
    return all(m.matches(labels) for m in matchers)


def equality_labels(matchers: tuple[Matcher, ...] | str) -> dict[str, str]:
    """Return the `name="value"` pairs: enough to narrow a series lookup before the full match."""
    if isinstance(matchers, str):
        matchers = parse_matchers(matchers)
    return {m.name: m.value for m in matchers if m.op == "="}


def format_matchers(labels: Mapping[str, str]) -> str:
    """Write equality matchers for a label set (a silence created from an alert)."""
    return ", ".join(str(Matcher(k, "=", str(v))) for k, v in sorted(labels.items()))
