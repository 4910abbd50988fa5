"""Compliance findings shown in the text they are about.

Findings come from the compliance validator (or an external agent) as
{"rule", "severity", "message", "start", "end"} with character offsets into the body. They
are data from elsewhere, so nothing about them is trusted: offsets may be missing, not
numbers, reversed, out of range or overlapping, and every piece of text is escaped. The
body is cut at every finding boundary; each piece covered by one or more findings becomes
one <mark>, so overlapping findings give adjacent marks, never nested or broken HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

from django.utils.safestring import SafeString, mark_safe

# Severity words in use, mapped to the three levels the page colours.
SEVERITY_LEVELS = {
    "critical": "high",
    "high": "high",
    "error": "high",
    "fail": "high",
    "medium": "medium",
    "warn": "medium",
    "warning": "medium",
    "low": "low",
    "info": "low",
}
_RANK = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class Finding:
    """One finding, cleaned: `start`/`end` are None when it points at no usable text."""

    index: int
    rule: str
    severity: str  # as written, for the label
    level: str  # high / medium / low, for the colour
    message: str
    start: int | None
    end: int | None

    @property
    def located(self) -> bool:
        return self.start is not None


def _offset(value: Any) -> int | None:
    if isinstance(value, bool):  # bool is an int subclass; True is no offset
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,9}", value.strip()):
        return int(value.strip())
    return None


def clean_findings(findings: Any, body_length: int) -> list[Finding]:
    """Return the findings as Finding rows; offsets clamped to the body, or None if unusable.

    Reversed and empty spans, and spans wholly outside the body, point at no text: the
    finding is still listed. Entries that are not objects, or say nothing, are dropped.
    """
    if not isinstance(findings, list | tuple):
        return []
    cleaned = []
    for raw in findings:
        if not isinstance(raw, dict):
            continue
        severity = str(raw.get("severity") or "").strip()
        start, end = _offset(raw.get("start")), _offset(raw.get("end"))
        rule, message = str(raw.get("rule") or "").strip(), str(raw.get("message") or "").strip()
        if not (rule or message):
            continue
        if start is not None and end is not None and start < end:
            # Clamped to the body; a span wholly outside it is listed but not marked.
            start, end = max(0, min(start, body_length)), max(0, min(end, body_length))
        if start is None or end is None or start >= end:
            start = end = None
        cleaned.append(
            Finding(
                index=len(cleaned),
                rule=rule or "finding",
                severity=severity or "unrated",
                level=SEVERITY_LEVELS.get(severity.lower(), "medium"),
                message=message,
                start=start,
                end=end,
            )
        )
    return cleaned


def highlight(body: str, findings: Any, *, id_prefix: str = "finding") -> SafeString:
    """Return `body` as escaped HTML with a <mark> over the text of each finding.

    An empty anchor id="<id_prefix>-<index>" precedes each finding's first piece, so a
    list of the findings can link to it; `data-findings` names the findings of a piece.
    """
    return mark_findings(body, clean_findings(findings, len(body or "")), id_prefix=id_prefix)


def mark_findings(body: str, findings: list[Finding], *, id_prefix: str = "finding") -> SafeString:
    """Return `body` highlighted like highlight() does, from findings already cleaned for it.

    Escaped with html.escape, which is what django.utils.html.escape and format_html do to
    plain text, without their lazy-text wrappers: this runs for every card of every page.
    """
    body = body or ""
    id_prefix = escape(str(id_prefix))
    located = [f for f in findings if f.located]
    if not located:
        return mark_safe(escape(body))  # noqa: S308 (escaped just here)
    cuts = sorted({0, len(body), *(f.start for f in located), *(f.end for f in located)})
    anchored: set[int] = set()
    parts: list[str] = []
    for left, right in zip(cuts, cuts[1:], strict=False):
        text = body[left:right]
        covering = [f for f in located if f.start <= left and right <= f.end]
        if not covering:
            parts.append(escape(text))
            continue
        level = max((f.level for f in covering), key=_RANK.__getitem__)
        for finding in covering:
            if finding.index not in anchored:
                anchored.add(finding.index)
                # An empty anchor per finding: several may start at the same character.
                parts.append(f'<span class="rq-anchor" id="{id_prefix}-{finding.index}"></span>')
        indexes = " ".join(str(f.index) for f in covering)
        title = escape(" · ".join(f.message or f.rule for f in covering))
        parts.append(
            f'<mark class="rq-mark rq-level-{escape(level)}" data-findings="{indexes}" title="{title}">{escape(text)}</mark>'
        )
    return mark_safe("".join(parts))  # noqa: S308 (every part is escaped above)
