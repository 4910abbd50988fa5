"""CSV import of advisors: reading, checking every row, the preview, and writing all or nothing."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advisors import importing
from advisors.importing import ImportChanged, ImportFileError, ImportRefused, apply_import, read_advisor_csv
from advisors.models import Advisor
from opscenter.models import AuditEntry
from tests.factories import make_advisor, make_user

HEADER = "name,arn,phone,email,status,segment,language,topics\n"


def csv_bytes(*rows, header=HEADER) -> bytes:
    return (header + "".join(row + "\n" for row in rows)).encode()


def errors_of(preview, line):
    return next(r for r in preview.rows if r.line == line).errors


@pytest.mark.django_db
def test_good_file_previews_every_row_and_writes_nothing():
    preview = read_advisor_csv(
        csv_bytes(
            "Asha Mehta,ARN-1001,+919800000001,asha@example.com,active,retail,en,SIP;tax saving",
            "Ravi Rao,ARN-1002,+919800000002,,paused,HNI,hi,",
        ),
        filename="advisors.csv",
    )
    assert [r.line for r in preview.rows] == [2, 3]
    assert all(r.valid and r.action == "create" for r in preview.rows)
    assert preview.counts == {"rows": 2, "valid": 2, "invalid": 0, "create": 2, "update": 0, "unchanged": 0}
    assert Advisor.objects.count() == 0


@pytest.mark.django_db
def test_apply_all_creates_advisors_and_writes_one_audit_row_with_counts():
    admin = make_user("Admin")
    preview = read_advisor_csv(
        csv_bytes(
            "Asha Mehta,ARN-1001,+919800000001,asha@example.com,active,retail,en,SIP;tax saving",
            "Ravi Rao,ARN-1002,+919800000002,,paused,HNI,hi,",
        ),
        filename="advisors.csv",
    )
    result = apply_import(preview, mode="all", by=admin)
    assert (result.created, result.updated, result.unchanged, result.skipped) == (2, 0, 0, 0)
    asha = Advisor.objects.get(arn="ARN-1001")
    assert asha.topics == ["SIP", "tax saving"]
    assert Advisor.objects.get(arn="ARN-1002").status == "paused"
    audit = AuditEntry.objects.get(action="advisor.imported")
    assert audit.actor == admin
    assert audit.changes == {
        "file": "advisors.csv", "mode": "all", "rows": 2, "created": 2, "updated": 0, "unchanged": 0,
        "skipped_invalid": 0,
    }


@pytest.mark.django_db
def test_values_are_normalised_before_checking():
    preview = read_advisor_csv(
        csv_bytes("  Asha Mehta ,arn-1001, +91 98000-00001 ,asha@example.com,Paused,retail,Hindi, SIP | tax saving ;sip;")
    )
    row = preview.rows[0]
    assert row.valid, row.errors
    assert row.values["arn"] == "ARN-1001"
    assert row.values["phone"] == "+919800000001"
    assert row.values["name"] == "Asha Mehta"
    assert row.values["status"] == "paused"
    assert row.values["language"] == "hi"
    assert row.values["topics"] == ["SIP", "tax saving"]


@pytest.mark.django_db
def test_every_row_is_checked_with_the_models_validators():
    preview = read_advisor_csv(
        csv_bytes(
            ",ARN-1,+919800000001,,,,,",
            "Bad ARN,123456,+919800000002,,,,,",
            "Bad phone,ARN-3,9800000003,,,,,",
            "Bad email,ARN-4,+919800000004,not-an-email,,,,",
            "Bad status,ARN-5,+919800000005,,sleeping,,,",
            "Bad language,ARN-6,+919800000006,,,,klingon,",
            "Good,ARN-7,+919800000007,,,,,",
        )
    )
    assert set(errors_of(preview, 2)) == {"name"}
    assert set(errors_of(preview, 3)) == {"arn"}
    assert "E.164" in errors_of(preview, 4)["phone"][0]
    assert set(errors_of(preview, 5)) == {"email"}
    assert "use one of active, paused, disabled" in errors_of(preview, 6)["status"][0]
    assert set(errors_of(preview, 7)) == {"language"}
    assert errors_of(preview, 8) == {}
    assert preview.counts["invalid"] == 6


@pytest.mark.django_db
def test_duplicates_within_the_file_mark_every_row_involved():
    preview = read_advisor_csv(
        csv_bytes(
            "One,ARN-1,+919800000001,,,,,",
            "Two,ARN-1,+919800000002,,,,,",
            "Three,ARN-3,+919800000002,,,,,",
        )
    )
    assert "on rows 2, 3" in errors_of(preview, 2)["arn"][0]
    assert "on rows 2, 3" in errors_of(preview, 3)["arn"][0]
    assert "on rows 3, 4" in errors_of(preview, 3)["phone"][0]
    assert "on rows 3, 4" in errors_of(preview, 4)["phone"][0]


@pytest.mark.django_db
def test_a_phone_belonging_to_another_advisor_is_an_error():
    make_advisor(name="Owner", arn="ARN-9", phone="+919800000009")
    preview = read_advisor_csv(csv_bytes("New,ARN-1,+919800000009,,,,,"))
    assert "already belongs to Owner (ARN-9)" in errors_of(preview, 2)["phone"][0]


@pytest.mark.django_db
def test_an_existing_arn_updates_that_advisor_and_missing_columns_stay_as_they_are():
    existing = make_advisor(name="Old name", arn="ARN-5", phone="+919800000005", email="old@example.com", segment="HNI")
    preview = read_advisor_csv(b"arn,name,phone\nARN-5,New name,+919800000005\n")
    row = preview.rows[0]
    assert (row.action, row.advisor_id, row.changed) == ("update", existing.pk, ["name"])
    result = apply_import(preview, mode="all", by=make_user("Admin"))
    assert (result.created, result.updated) == (0, 1)
    existing.refresh_from_db()
    assert (existing.name, existing.email, existing.segment) == ("New name", "old@example.com", "HNI")


@pytest.mark.django_db
def test_an_update_may_keep_its_own_phone_and_empty_status_keeps_the_status():
    existing = make_advisor(arn="ARN-5", phone="+919800000005", status="paused")
    preview = read_advisor_csv(csv_bytes(f"{existing.name},ARN-5,+919800000005,,,,,"))
    row = preview.rows[0]
    assert row.valid, row.errors
    assert row.changed == ["email"]  # an empty cell of a present column clears optional text
    apply_import(preview, mode="all")
    existing.refresh_from_db()
    assert (existing.status, existing.email) == ("paused", "")


@pytest.mark.django_db
def test_rows_that_change_nothing_are_shown_and_left_alone():
    existing = make_advisor(arn="ARN-5", phone="+919800000005", email="", segment="", topics=[])
    before = existing.updated_at
    preview = read_advisor_csv(csv_bytes(f"{existing.name},ARN-5,+919800000005,,active,,en,"))
    assert preview.rows[0].action == "unchanged"
    result = apply_import(preview, mode="all")
    assert (result.updated, result.unchanged) == (0, 1)
    existing.refresh_from_db()
    assert existing.updated_at == before


@pytest.mark.django_db
def test_mode_all_refuses_when_any_row_is_invalid_and_writes_nothing():
    preview = read_advisor_csv(csv_bytes("Good,ARN-1,+919800000001,,,,,", "Bad,nope,+919800000002,,,,,"))
    with pytest.raises(ImportRefused, match="1 row has errors"):
        apply_import(preview, mode="all")
    assert Advisor.objects.count() == 0
    assert not AuditEntry.objects.filter(action="advisor.imported").exists()


@pytest.mark.django_db
def test_valid_only_writes_the_valid_rows_and_counts_the_skipped_ones():
    preview = read_advisor_csv(
        csv_bytes("Good,ARN-1,+919800000001,,,,,", "Bad,nope,+919800000002,,,,,", "Also good,ARN-3,+919800000003,,,,,")
    )
    result = apply_import(preview, mode="valid_only", by=make_user("Admin"))
    assert (result.created, result.skipped) == (2, 1)
    assert sorted(Advisor.objects.values_list("arn", flat=True)) == ["ARN-1", "ARN-3"]
    assert AuditEntry.objects.get(action="advisor.imported").changes["skipped_invalid"] == 1


@pytest.mark.django_db
def test_valid_only_with_no_valid_row_is_refused():
    preview = read_advisor_csv(csv_bytes("Bad,nope,+919800000002,,,,,"))
    with pytest.raises(ImportRefused, match="nothing to import"):
        apply_import(preview, mode="valid_only")


@pytest.mark.django_db
def test_an_unknown_mode_is_refused():
    preview = read_advisor_csv(csv_bytes("Good,ARN-1,+919800000001,,,,,"))
    with pytest.raises(ImportRefused):
        apply_import(preview, mode="some")
    assert Advisor.objects.count() == 0


@pytest.mark.django_db
def test_apply_checks_again_and_refuses_when_the_database_changed_since_the_preview():
    preview = read_advisor_csv(csv_bytes("Good,ARN-1,+919800000001,,,,,", "Other,ARN-2,+919800000002,,,,,"))
    make_advisor(arn="ARN-9", phone="+919800000002")  # someone took that phone meanwhile
    with pytest.raises(ImportChanged) as refused:
        apply_import(preview, mode="valid_only")
    assert Advisor.objects.count() == 1
    fresh = refused.value.preview
    assert fresh.plan() == [(2, "create", True), (3, "create", False)]
    apply_import(fresh, mode="valid_only")
    assert Advisor.objects.filter(arn="ARN-1").exists()


@pytest.mark.django_db
def test_a_collision_at_write_time_rolls_back_the_whole_import(monkeypatch):
    preview = read_advisor_csv(csv_bytes("One,ARN-1,+919800000001,,,,,", "Two,ARN-2,+919800000002,,,,,"))
    real_check = importing.check_rows

    def check_then_collide(p, lock=False):
        fresh = real_check(p, lock=lock)
        # Another session inserts the same ARN between the check and the write.
        Advisor.objects.create(name="Sneaky", arn="ARN-2", phone="+919800000099")
        return fresh

    monkeypatch.setattr(importing, "check_rows", check_then_collide)
    with pytest.raises(ImportRefused, match="collided"):
        apply_import(preview, mode="all")
    assert Advisor.objects.count() == 0


@pytest.mark.django_db
def test_extra_columns_are_ignored_and_reported_and_aliases_are_understood():
    preview = read_advisor_csv(b"Name,ARN,Mobile,Notes\nAsha,ARN-1,+919800000001,likes tea\n")
    assert preview.columns == ["name", "arn", "phone"]
    assert preview.ignored_columns == ["Notes"]
    assert preview.rows[0].valid


@pytest.mark.django_db
def test_semicolon_separated_files_and_a_byte_order_mark_are_read():
    data = "\ufeffname;arn;phone;topics\nAsha;ARN-1;+919800000001;\"SIP;tax\"\n".encode()
    preview = read_advisor_csv(data)
    assert preview.rows[0].values["topics"] == ["SIP", "tax"]
    assert preview.rows[0].valid


@pytest.mark.django_db
def test_a_row_with_more_cells_than_the_header_is_an_error_and_blank_lines_are_skipped():
    preview = read_advisor_csv(b"name,arn,phone\n\nAsha,ARN-1,+919800000001,surprise\n,,\n")
    assert len(preview.rows) == 1
    assert preview.rows[0].line == 3
    assert preview.rows[0].row_errors == ["This row has 4 cells but the header has 3."]


@pytest.mark.django_db
def test_control_characters_in_a_cell_are_an_error():
    preview = read_advisor_csv(b'name,arn,phone\n"Asha\nMehta",ARN-1,+919800000001\n')
    assert "control character" in preview.rows[0].errors["name"][0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"name,arn,phone\n", "no rows"),
        (b"Asha,ARN-1,+919800000001\n", "header"),
        (b"name,email\nAsha,a@example.com\n", "no arn, phone columns"),
        (b"name,arn,arn,phone\n", "appears twice"),
        ("name,arn,phone\nAsha,ARN-1,+91\u00e9".encode("latin-1"), "not UTF-8"),
        (b"PK\x03\x04\x14\x00\x06\x00", "workbook"),
        (b"\xff\xfen\x00a\x00", "UTF-16"),
        (b"name,arn,phone\nA\x00B,ARN-1,+919800000001\n", "binary"),
        (b'name,arn,phone\n"Asha"x,ARN-1,+919800000001\n', "Line 2"),
    ],
    ids=["empty", "blank", "header-only", "no-header", "missing-required", "duplicate-column", "latin-1",
         "xlsx", "utf-16", "nul-bytes", "bad-quotes"],
)
def test_malformed_files_give_a_clear_message(data, message):
    with pytest.raises(ImportFileError, match=message):
        read_advisor_csv(data)


@pytest.mark.django_db
def test_a_file_over_5_mb_is_refused():
    big = HEADER.encode() + b"x" * importing.MAX_BYTES
    with pytest.raises(ImportFileError, match="5.0 MB"):
        read_advisor_csv(big)


@pytest.mark.django_db
def test_a_file_over_20000_rows_is_refused(settings):
    rows = "".join(f"A,ARN-{i},+9198{i:08d}\n" for i in range(importing.MAX_ROWS + 1))
    with pytest.raises(ImportFileError, match="more than 20,000 rows"):
        read_advisor_csv(("name,arn,phone\n" + rows).encode())


@pytest.mark.django_db
def test_a_preview_is_stored_for_its_user_only_and_round_trips():
    owner, other = make_user("Admin"), make_user("Admin")
    preview = read_advisor_csv(csv_bytes("Good,ARN-1,+919800000001,,,,SIP", "Bad,nope,+919800000002,,,,,"))
    token = importing.store_preview(preview, owner)
    assert importing.load_preview(token, other) is None
    assert importing.load_preview("../../etc", owner) is None
    loaded = importing.load_preview(token, owner)
    assert loaded.plan() == preview.plan()
    assert loaded.rows[1].errors == preview.rows[1].errors
    importing.drop_preview(token, owner)
    assert importing.load_preview(token, owner) is None


def test_exported_cells_that_look_like_formulas_are_escaped_and_read_back():
    for text in ["=HYPERLINK(\"http://x\")", "@SUM(A1)", "-2+3", "+cmd"]:
        cell = importing.export_cell(text)
        assert cell.startswith("'")
        assert importing.normalise("name", cell) == text
    assert importing.export_cell("+919812345678") == "+919812345678"
    assert importing.export_cell(["SIP", "tax"]) == "SIP;tax"


@pytest.mark.django_db
def test_the_template_file_imports_cleanly():
    preview = read_advisor_csv(importing.template_csv().encode())
    assert preview.rows[0].valid, preview.rows[0].errors


# --- property-based: malformed input never raises unexpectedly, never half-imports -----------

RELAXED = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _attempt(data: bytes) -> None:
    """Read and apply `data` in a rolled-back transaction; only our refusals may be raised."""
    with transaction.atomic():
        before = Advisor.objects.count()
        try:
            preview = read_advisor_csv(data)
        except ImportFileError as exc:
            assert str(exc)
            assert Advisor.objects.count() == before
            transaction.set_rollback(True)
            return
        for mode in ("all", "valid_only"):
            with transaction.atomic():
                try:
                    result = apply_import(preview, mode=mode)
                except ImportRefused:
                    assert Advisor.objects.count() == before
                else:
                    assert preview.counts["valid"] > 0
                    if mode == "all":
                        assert preview.counts["invalid"] == 0
                    assert Advisor.objects.count() == before + result.created
                    assert result.created == preview.counts["create"]
                transaction.set_rollback(True)
        transaction.set_rollback(True)


@pytest.mark.django_db
@RELAXED
@given(st.binary(max_size=600))
def test_random_bytes_are_refused_cleanly_or_previewed(data):
    _attempt(data)


@pytest.mark.django_db
@RELAXED
@given(st.text(max_size=400))
def test_random_text_after_a_valid_header_is_refused_cleanly_or_previewed(text):
    _attempt((HEADER + text).encode("utf-8", "surrogatepass"))


cell = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["ARN-1", "ARN-2", "arn-3", "+919800000001", "+919800000002", "active", "hi", "", " ", '"', ",", ";"]),
)
row = st.lists(cell, min_size=0, max_size=10)


@pytest.mark.django_db
@RELAXED
@given(rows=st.lists(row, min_size=1, max_size=8), existing=st.booleans())
def test_random_rows_never_half_import(rows, existing):
    with transaction.atomic():
        if existing:
            make_advisor(arn="ARN-2", phone="+919800000002")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(importing.COLUMNS)
        writer.writerows(rows)
        _attempt(out.getvalue().encode())
        transaction.set_rollback(True)


@pytest.mark.django_db
@RELAXED
@given(
    st.lists(
        st.tuples(st.sampled_from(["Asha", "", "R"]), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=8
    )
)
def test_mode_all_writes_every_row_or_none(specs):
    """Rows built from a few ARNs and phones: duplicates and bad names come up often."""
    lines = [f"{name},ARN-{a},+91980000000{p}" for name, a, p in specs]
    data = ("name,arn,phone\n" + "\n".join(lines) + "\n").encode()
    with transaction.atomic():
        preview = read_advisor_csv(data)
        try:
            result = apply_import(preview, mode="all")
        except ImportRefused:
            assert preview.counts["invalid"] > 0
            assert Advisor.objects.count() == 0
        else:
            assert Advisor.objects.count() == len(specs) == result.created
        transaction.set_rollback(True)
