"""Import advisors from a CSV file: read and check every row, preview, then write in one go.

Decisions, as the preview shows them to the user:

* A row whose ARN already exists **updates** that advisor; any other row **creates** one. That
  is what a spreadsheet round trip needs (export, edit, import). A row that would change
  nothing is shown as "no change" and left alone.
* For an update, a column the file does not have leaves that field as it is. A present but
  empty cell clears the optional text fields (email, segment, topics) and leaves status and
  language as they are (they cannot be blank). For a new advisor an empty status or language
  takes the default (active, English).
* ARN and phone must be unique against the database *and* within the file. A value found on
  several rows marks every one of them: which row is meant is the user's call, not ours.
  A phone that belongs to another advisor is an error even if the same file gives that
  advisor a new phone; moving phones between advisors takes two imports.
* Nothing is written until `apply_import()`, which checks every row again inside its
  transaction and refuses if the outcome differs from the preview the user confirmed.
* The export escapes cells that start with = + - @ by a leading apostrophe (so spreadsheets
  do not run them as formulas); reading undoes that escape.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import secrets
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from opscenter.audit import record_audit
from opscenter.models import AuditSource
from opscenter.services import DomainError

from .models import Advisor, AdvisorStatus, Language

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
COLUMNS = ("name", "arn", "phone", "email", "status", "segment", "language", "topics")
REQUIRED_COLUMNS = ("name", "arn", "phone")
# Header spellings people use for our columns (after lower-casing and "_" for spaces).
COLUMN_ALIASES = {"mobile": "phone", "phone_number": "phone", "e_mail": "email", "topic": "topics", "arn_number": "arn"}
TEMPLATE_ROWS = (
    ("Asha Mehta", "ARN-123456", "+919812345678", "asha@example.com", "active", "retail", "en", "SIP;tax saving"),
)
PREVIEW_TTL_SECONDS = 3600
FORMULA_START = "=+-@"
MODES = ("all", "valid_only")

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"
ROW = ""  # the errors key for problems of the whole row
ALL_FIELDS = tuple(f.name for f in Advisor._meta.concrete_fields)
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc


def _lookup(choices: type) -> dict[str, str]:
    table = {}
    for choice_value, label in choices.choices:
        table[str(label).lower()] = choice_value
        table[choice_value.lower()] = choice_value
    return table


# status or language given by value or label, lower-cased -> its value
CHOICES = {"status": _lookup(AdvisorStatus), "language": _lookup(Language)}
CHOICE_VALUES = {"status": tuple(AdvisorStatus.values), "language": tuple(Language.values)}


class ImportFileError(DomainError):
    """The file cannot be read as an advisors CSV; nothing was checked or written."""

    code = "invalid_file"
    status = 400


class ImportRefused(DomainError):
    """The import cannot be written as asked (rows with errors, nothing to write, a collision)."""

    code = "invalid"
    status = 400


class ImportChanged(DomainError):
    """The rows no longer check out as they did in the preview; `preview` is the fresh one."""

    def __init__(self, message: str, preview: ImportPreview):
        super().__init__(message)
        self.preview = preview


@dataclass
class PreviewRow:
    """One data row of the file: its values (normalised) and what importing it would do."""

    line: int
    values: dict[str, Any]
    problems: list[str] = field(default_factory=list)  # found while reading, e.g. extra cells
    action: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)
    advisor_id: int | None = None
    changed: list[str] = field(default_factory=list)
    # The checked, unsaved advisor; not kept between requests.
    instance: Advisor | None = field(default=None, repr=False, compare=False)

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def row_errors(self) -> list[str]:
        return self.errors.get(ROW, [])

    def cells(self, columns: Iterable[str]) -> list[dict[str, Any]]:
        """Return the row's cells in column order, each with its value and errors (for templates)."""
        out = []
        for column in columns:
            value = self.values.get(column, "")
            if isinstance(value, list):
                value = "; ".join(value)
            out.append(
                {
                    "column": column,
                    "value": value,
                    "errors": self.errors.get(column, []),
                    "changed": self.action == UPDATE and column in self.changed,
                }
            )
        return out


@dataclass
class ImportPreview:
    """The checked contents of one uploaded file, before anything is written."""

    filename: str
    columns: list[str]
    ignored_columns: list[str]
    rows: list[PreviewRow]

    @property
    def counts(self) -> dict[str, int]:
        counts = {"rows": len(self.rows), "valid": 0, "invalid": 0, CREATE: 0, UPDATE: 0, UNCHANGED: 0}
        for row in self.rows:
            counts["valid" if row.valid else "invalid"] += 1
            if row.valid:
                counts[row.action] += 1
        return counts

    def plan(self) -> list[tuple[int, str, bool]]:
        """Return what importing would do, row by row: the thing the user confirms."""
        return [(row.line, row.action, row.valid) for row in self.rows]

    def to_bytes(self) -> bytes:
        data = {
            "filename": self.filename,
            "columns": self.columns,
            "ignored_columns": self.ignored_columns,
            "rows": [
                [r.line, r.values, r.problems, r.action, r.errors, r.advisor_id, r.changed] for r in self.rows
            ],
        }
        return zlib.compress(json.dumps(data, separators=(",", ":")).encode())

    @classmethod
    def from_bytes(cls, blob: bytes) -> ImportPreview:
        data = json.loads(zlib.decompress(blob))
        rows = [
            PreviewRow(line, values, problems, action, errors, advisor_id, changed)
            for line, values, problems, action, errors, advisor_id, changed in data["rows"]
        ]
        return cls(data["filename"], data["columns"], data["ignored_columns"], rows)


@dataclass
class ImportResult:
    created: int
    updated: int
    unchanged: int
    skipped: int
    created_ids: list[int]
    updated_ids: list[int]

    def summary(self) -> str:
        parts = [f"{self.created} created", f"{self.updated} updated", f"{self.unchanged} unchanged"]
        if self.skipped:
            parts.append(f"{self.skipped} rows with errors skipped")
        return ", ".join(parts)


# --- reading the file -----------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(n, 1) / 1024:.0f} KB"


def _decode(data: bytes) -> str:
    if not data.strip():
        raise ImportFileError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise ImportFileError(
            f"The file is larger than {_size(MAX_BYTES)} (the limit); split it into smaller files."
        )
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise ImportFileError(
            "This is a spreadsheet workbook, not a CSV file. In Excel choose File → Save As → "
            "“CSV UTF-8 (comma delimited)”, then upload that file."
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError("This file is UTF-16 text. Save it as “CSV UTF-8” and upload it again.")
    if b"\x00" in data:
        raise ImportFileError("This file contains binary data, so it is not a CSV text file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"The file is not UTF-8 text (the first unreadable byte is at position {exc.start}). "
            "Save it as “CSV UTF-8” and upload it again."
        ) from None


def _header_name(cell: str) -> str:
    name = re.sub(r"[\s\-]+", "_", cell.strip().lower())
    return COLUMN_ALIASES.get(name, name)


def _delimiter(text: str) -> str:
    """Pick the delimiter under which the first line names the most of our columns."""
    first = text.lstrip("\r\n").splitlines()[0] if text.strip() else ""
    best, best_hits = ",", -1
    for delimiter in (",", ";", "\t"):
        try:
            cells = next(csv.reader([first], delimiter=delimiter), [])
        except csv.Error:
            continue
        hits = sum(1 for cell in cells if _header_name(cell) in COLUMNS)
        if hits > best_hits:
            best, best_hits = delimiter, hits
    return best


def _topics(value: str | list) -> list[str]:
    parts = value if isinstance(value, list) else re.split(r"[;|]", value)
    seen: dict[str, str] = {}
    for part in parts:
        topic = part.strip()
        if topic and topic.lower() not in seen:
            seen[topic.lower()] = topic
    return list(seen.values())


def normalise(column: str, value: Any) -> Any:
    """Return the value as the import uses it: trimmed, ARN upper-cased, phone without spaces.

    Idempotent, so checking a stored preview again gives the same values.
    """
    if column == "topics":
        return _topics(value)
    value = str(value).strip()
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_START:
        value = value[1:]
    if column == "arn":
        return re.sub(r"\s+", "", value).upper()
    if column == "phone":
        return re.sub(r"[\s\-().]", "", value)
    if column in CHOICES:
        return CHOICES[column].get(value.lower(), value)
    return value


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(
                f"Line {reader.line_num} cannot be read as CSV ({exc}). Check the quotes on that line."
            ) from None
        yield reader.line_num, record


def read_rows(data: bytes) -> tuple[list[str], list[str], list[PreviewRow]]:
    """Read the file into recognised columns, ignored columns and rows; raises ImportFileError."""
    text = _decode(data)
    records = _records(text, _delimiter(text))
    header = None
    for _line, record in records:
        if any(cell.strip() for cell in record):
            header = record
            break
    if header is None:
        raise ImportFileError("The file has no header row.")
    names = [_header_name(cell) for cell in header]
    positions: dict[str, int] = {}
    ignored = []
    for index, name in enumerate(names):
        if name in COLUMNS:
            if name in positions:
                raise ImportFileError(f"The column “{name}” appears twice in the header.")
            positions[name] = index
        elif name:
            ignored.append(header[index].strip())
    if not positions:
        raise ImportFileError(
            "The first row must be the header naming the columns: "
            f"{', '.join(COLUMNS)}. Download the template to start from."
        )
    missing = [name for name in REQUIRED_COLUMNS if name not in positions]
    if missing:
        raise ImportFileError(
            f"The header has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}; "
            f"{', '.join(REQUIRED_COLUMNS)} are required."
        )
    columns = [name for name in COLUMNS if name in positions]
    rows = []
    for line, record in records:
        if not any(cell.strip() for cell in record):
            continue
        if len(rows) >= MAX_ROWS:
            raise ImportFileError(f"The file has more than {MAX_ROWS:,} rows; split it into smaller files.")
        values = {name: normalise(name, record[i] if i < len(record) else "") for name, i in positions.items()}
        problems = []
        extra = [cell for cell in record[len(header):] if cell.strip()]
        if extra:
            problems.append(f"This row has {len(record)} cells but the header has {len(header)}.")
        rows.append(PreviewRow(line=line, values=values, problems=problems))
    if not rows:
        raise ImportFileError("The file has a header but no rows.")
    return columns, ignored, rows


# --- checking the rows ----------------------------------------------------------------------


def _chunks(items: list, size: int = 500) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _has_control_character(value: str) -> bool:
    return CONTROL_CHARACTER.search(value) is not None


def _rows_list(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:5])
    return shown + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")


def check_rows(preview: ImportPreview, *, lock: bool = False) -> ImportPreview:
    """Check every row against the model's validators and the database; return a new preview.

    `lock` takes row locks on the advisors to update (used inside apply_import's transaction).
    """
    rows = preview.rows
    arns = sorted({r.values.get("arn") for r in rows if r.values.get("arn")})
    phones = sorted({r.values.get("phone") for r in rows if r.values.get("phone")})
    existing: dict[str, Advisor] = {}
    for chunk in _chunks(arns):
        query = Advisor.objects.filter(arn__in=chunk)
        if lock:
            query = query.select_for_update()
        existing.update((a.arn, a) for a in query)
    phone_owner: dict[str, tuple[int, str, str]] = {}
    for chunk in _chunks(phones):
        for phone, pk, arn, name in Advisor.objects.filter(phone__in=chunk).values_list("phone", "pk", "arn", "name"):
            phone_owner[phone] = (pk, arn, name)
    lines_of: dict[tuple[str, str], list[int]] = defaultdict(list)
    for row in rows:
        for column in ("arn", "phone"):
            if row.values.get(column):
                lines_of[(column, row.values[column])].append(row.line)
    checked = [_check_row(row, preview.columns, existing, phone_owner, lines_of) for row in rows]
    return ImportPreview(preview.filename, preview.columns, preview.ignored_columns, checked)


def _check_row(row, columns, existing, phone_owner, lines_of) -> PreviewRow:
    values = {column: normalise(column, row.values.get(column, "")) for column in columns}
    errors: dict[str, list[str]] = defaultdict(list)
    errors[ROW].extend(row.problems)
    current = existing.get(values.get("arn", ""))
    advisor = copy.copy(current) if current else Advisor()
    for column in columns:
        value = values[column]
        if column == "topics":
            if any(_has_control_character(topic) for topic in value):
                errors[column].append("A topic contains a control character (a tab or a line break); remove it.")
            advisor.topics = value
            continue
        if _has_control_character(value):
            errors[column].append("Contains a control character (a tab or a line break); remove it.")
            continue
        if column in CHOICES:
            if not value:
                if current is None:
                    setattr(advisor, column, Advisor._meta.get_field(column).get_default())
                continue
            if value not in CHOICE_VALUES[column]:
                allowed = ", ".join(CHOICE_VALUES[column])
                errors[column].append(f"“{value}” is not a {column}; use one of {allowed}.")
                continue
        setattr(advisor, column, value)
    try:
        # Only the file's columns: other fields keep values that were checked when saved.
        skip = [name for name in ALL_FIELDS if name not in columns or errors.get(name)]
        advisor.full_clean(exclude=skip, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            errors[name if name in COLUMNS else ROW].extend(messages)
    for column in ("arn", "phone"):
        value = values.get(column)
        lines = lines_of.get((column, value), []) if value else []
        if len(lines) > 1:
            errors[column].append(f"{value} is on rows {_rows_list(lines)}; keep only one of them.")
    owner = phone_owner.get(values.get("phone", ""))
    if owner and owner[0] != (current.pk if current else None):
        errors["phone"].append(f"{values['phone']} already belongs to {owner[2]} ({owner[1]}).")
    changed = []
    if current is not None:
        changed = [c for c in COLUMNS if getattr(advisor, c) != getattr(current, c)]
    return PreviewRow(
        line=row.line,
        values=values,
        problems=row.problems,
        action=(UPDATE if changed else UNCHANGED) if current else CREATE,
        errors={k: v for k, v in errors.items() if v},
        advisor_id=current.pk if current else None,
        changed=changed,
        instance=advisor,
    )


def read_advisor_csv(data: bytes, *, filename: str = "") -> ImportPreview:
    """Read and check an advisors CSV; raises ImportFileError for a file that cannot be read."""
    columns, ignored, rows = read_rows(data)
    return check_rows(ImportPreview(filename=filename[:200], columns=columns, ignored_columns=ignored, rows=rows))


def read_upload(upload) -> ImportPreview:
    """Read and check an uploaded file, refusing an oversized one before reading it."""
    if upload.size is not None and upload.size > MAX_BYTES:
        raise ImportFileError(
            f"The file is {_size(upload.size)}; the limit is {_size(MAX_BYTES)}. Split it into smaller files."
        )
    return read_advisor_csv(upload.read(MAX_BYTES + 1), filename=upload.name or "")


# --- writing --------------------------------------------------------------------------------


def apply_import(
    preview: ImportPreview,
    *,
    mode: str = "all",
    by=None,
    source: str = AuditSource.UI,
    request: HttpRequest | None = None,
) -> ImportResult:
    """Write the previewed rows in one transaction, after checking them again.

    mode "all" refuses if any row has errors; "valid_only" writes the valid rows and skips
    the rest. Raises ImportChanged (with the fresh preview) if the rows no longer check out
    as the preview said, and ImportRefused when there is nothing to write or a concurrent
    change collides; in every refusal nothing is written.
    """
    if mode not in MODES:
        raise ImportRefused(f"Mode must be one of {', '.join(MODES)}.")
    try:
        with transaction.atomic():
            fresh = check_rows(preview, lock=True)
            if fresh.plan() != preview.plan():
                raise ImportChanged(
                    "The advisors changed since this preview was made, so some rows now check out "
                    "differently. Here is the preview again; review it and confirm.",
                    fresh,
                )
            counts = fresh.counts
            if mode == "all" and counts["invalid"]:
                invalid = counts["invalid"]
                raise ImportRefused(
                    f"{invalid} {'row has' if invalid == 1 else 'rows have'} errors; fix them, "
                    "or import only the valid rows."
                )
            if not counts["valid"]:
                raise ImportRefused("No row is valid, so there is nothing to import.")
            result = _write(fresh)
            record_audit(
                "advisor.imported",
                actor=by,
                changes={
                    "file": fresh.filename,
                    "mode": mode,
                    "rows": counts["rows"],
                    "created": result.created,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                    "skipped_invalid": result.skipped,
                },
                source=source,
                request=request,
            )
    except IntegrityError:
        raise ImportRefused(
            "Another change to the advisors collided with this import; nothing was written. Try again."
        ) from None
    return result


def _write(preview: ImportPreview) -> ImportResult:
    now = timezone.now()
    creates, updated_ids = [], []
    unchanged = skipped = 0
    for row in preview.rows:
        if not row.valid:
            skipped += 1
        elif row.action == CREATE:
            row.instance.created_at = row.instance.updated_at = now
            creates.append(row.instance)
        elif row.action == UPDATE:
            # One UPDATE per row with just its changed fields: bulk_update's CASE per batch is
            # far slower for thousands of distinct rows, and this touches nothing else.
            changes = {name: getattr(row.instance, name) for name in row.changed}
            Advisor.objects.filter(pk=row.advisor_id).update(**changes, updated_at=now)
            updated_ids.append(row.advisor_id)
        else:
            unchanged += 1
    created = Advisor.objects.bulk_create(creates, batch_size=500)
    return ImportResult(
        created=len(created),
        updated=len(updated_ids),
        unchanged=unchanged,
        skipped=skipped,
        created_ids=[a.pk for a in created],
        updated_ids=updated_ids,
    )


# --- between the preview and the confirmation -----------------------------------------------


def _cache_key(user, token: str) -> str:
    return f"advisors:import:{user.pk}:{token}"


def store_preview(preview: ImportPreview, user, token: str | None = None) -> str:
    """Keep the preview on the server for its user; return the token that names it."""
    token = token or secrets.token_urlsafe(16)
    cache.set(_cache_key(user, token), preview.to_bytes(), PREVIEW_TTL_SECONDS)
    return token


def load_preview(token: str, user) -> ImportPreview | None:
    """Return the user's stored preview, or None if it expired or belongs to someone else."""
    if not re.fullmatch(r"[A-Za-z0-9_\-]{10,64}", token or ""):
        return None
    blob = cache.get(_cache_key(user, token))
    return ImportPreview.from_bytes(blob) if blob else None


def drop_preview(token: str, user) -> None:
    """Forget a stored preview (after it was imported or abandoned)."""
    cache.delete(_cache_key(user, token))


# --- the other direction --------------------------------------------------------------------


def export_cell(value: Any) -> str:
    """Return a value as a CSV cell that spreadsheets show as text, never run as a formula."""
    if isinstance(value, list):
        value = ";".join(value)
    text = "" if value is None else str(value)
    # Phones are validated E.164 ("+" then digits): numbers, not formulas; they stay as they are.
    if text and text[0] in FORMULA_START + "\t\r" and not re.fullmatch(r"\+\d+", text):
        return "'" + text
    return text


def template_csv() -> str:
    """Return the CSV template: the header and one example row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerows(TEMPLATE_ROWS)
    return out.getvalue()
