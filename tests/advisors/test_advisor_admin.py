"""The advisors admin: list, search, filters, status actions, audit, import pages, export,
the advisor page, the read-mostly content/delivery admins, and who may do what."""

from __future__ import annotations

import csv
import io

import pytest
from asgiref.sync import async_to_sync
from django.contrib.admin import site
from django.contrib.admin.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncRequestFactory

from advisors.models import Advisor, Content, Delivery, OutboxMessage
from opscenter.models import AuditEntry
from opscenter.paginators import EstimatedCountPaginator
from tests.factories import make_advisor, make_content, make_user

LIST = "/admin/advisors/advisor/"
IMPORT = "/admin/advisors/advisor/import/"
EXPORT = "/admin/advisors/advisor/export.csv"


def form_data(advisor: Advisor, **changes) -> dict:
    data = {
        "name": advisor.name,
        "arn": advisor.arn,
        "phone": advisor.phone,
        "email": advisor.email,
        "status": advisor.status,
        "segment": advisor.segment,
        "language": advisor.language,
        "topics": "; ".join(advisor.topics),
    }
    return {**data, **changes}


def upload(client, text: str, name: str = "advisors.csv"):
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")})


def exported_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


# --- the list ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_searches_by_name_arn_and_phone(client):
    client.force_login(make_user("Viewer"))
    asha = make_advisor(name="Asha Mehta", arn="ARN-424242", phone="+919811111111")
    make_advisor(name="Ravi Rao")
    for term in ["Mehta", "424242", "9811111111"]:
        page = client.get(LIST, {"q": term})
        assert page.status_code == 200
        assert list(page.context["cl"].result_list) == [asha], term


@pytest.mark.django_db
def test_a_phone_typed_with_spaces_or_dashes_is_found(client):
    client.force_login(make_user("Viewer"))
    asha = make_advisor(phone="+919812345678")
    make_advisor()
    page = client.get(LIST, {"q": "+91 98123-45678"})
    assert list(page.context["cl"].result_list) == [asha]


@pytest.mark.django_db
def test_the_list_filters_by_status_language_and_segment(client):
    client.force_login(make_user("Viewer"))
    paused = make_advisor(status="paused", language="hi", segment="HNI")
    make_advisor(status="active", language="en", segment="retail")
    for params in [{"status__exact": "paused"}, {"language__exact": "hi"}, {"segment": "HNI"}]:
        page = client.get(LIST, params)
        assert list(page.context["cl"].result_list) == [paused], params


@pytest.mark.django_db
def test_the_list_does_not_count_every_row(client):
    client.force_login(make_user("Viewer"))
    make_advisor()
    cl = client.get(LIST).context["cl"]
    assert isinstance(cl.paginator, EstimatedCountPaginator)
    assert cl.model_admin.show_full_result_count is False


# --- permissions ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_viewer_can_view_but_not_change_import_or_set_status(client):
    advisor = make_advisor()
    client.force_login(make_user("Viewer"))
    page = client.get(LIST)
    assert page.status_code == 200
    assert "Import CSV" not in page.content.decode()
    assert "Export CSV" in page.content.decode()
    assert client.get(f"{LIST}{advisor.pk}/change/").status_code == 200
    assert client.post(f"{LIST}{advisor.pk}/change/", form_data(advisor, name="Hacked")).status_code == 403
    assert client.get(f"{LIST}add/").status_code == 403
    assert client.get(IMPORT).status_code == 403
    assert client.get(f"{IMPORT}template.csv").status_code == 403
    client.post(LIST, {"action": "disable", "_selected_action": [advisor.pk]})
    name = advisor.name
    advisor.refresh_from_db()
    assert (advisor.name, advisor.status) == (name, "active")
    assert not AuditEntry.objects.filter(action__startswith="advisor.").exists()


@pytest.mark.django_db
def test_an_operator_cannot_change_advisors(client):
    advisor = make_advisor()
    client.force_login(make_user("Operator"))
    assert client.get(f"{LIST}{advisor.pk}/change/").status_code == 200
    assert client.post(f"{LIST}{advisor.pk}/change/", form_data(advisor, name="Nope")).status_code == 403
    assert client.get(IMPORT).status_code == 403
    client.post(LIST, {"action": "pause", "_selected_action": [advisor.pk]})
    advisor.refresh_from_db()
    assert advisor.status == "active"


@pytest.mark.django_db
def test_the_status_actions_are_offered_to_admins_only(client):
    make_advisor()
    client.force_login(make_user("Viewer"))
    assert client.get(LIST).context["action_form"] is None
    client.force_login(make_user("Admin"))
    choices = dict(client.get(LIST).context["action_form"].fields["action"].choices)
    assert {"enable", "pause", "disable"} <= set(choices)
    assert "delete_selected" not in choices


@pytest.mark.django_db
def test_advisors_are_never_deleted_even_by_an_admin(client):
    advisor = make_advisor()
    client.force_login(make_user("Admin"))
    assert client.get(f"{LIST}{advisor.pk}/delete/").status_code == 403
    assert client.post(f"{LIST}{advisor.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Advisor.objects.filter(pk=advisor.pk).exists()


# --- changes are audited; status goes through the service -------------------------------------


@pytest.mark.django_db
def test_adding_an_advisor_writes_an_audit_row_and_normalises_arn_and_phone(client):
    admin = make_user("Admin")
    client.force_login(admin)
    response = client.post(
        f"{LIST}add/",
        {"name": "Asha", "arn": "arn-777", "phone": "+91 98000 00777", "email": "", "status": "active",
         "segment": "", "language": "en", "topics": "SIP, tax saving"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    advisor = Advisor.objects.get()
    assert (advisor.arn, advisor.phone, advisor.topics) == ("ARN-777", "+919800000777", ["SIP", "tax saving"])
    audit = AuditEntry.objects.get(action="advisor.created")
    assert audit.actor == admin and audit.target_id == str(advisor.pk)
    assert audit.changes["arn"] == "ARN-777"


@pytest.mark.django_db
def test_a_duplicate_phone_is_refused_by_the_form(client):
    make_advisor(phone="+919800000001")
    client.force_login(make_user("Admin"))
    response = client.post(
        f"{LIST}add/",
        {"name": "B", "arn": "ARN-2", "phone": "+919800000001", "status": "active", "language": "en", "topics": ""},
    )
    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.errors


@pytest.mark.django_db
def test_changing_an_advisor_audits_the_changed_fields_and_status_goes_through_the_service(client):
    admin = make_user("Admin")
    advisor = make_advisor(name="Old", segment="retail")
    client.force_login(admin)
    response = client.post(
        f"{LIST}{advisor.pk}/change/", form_data(advisor, name="New", segment="HNI", status="disabled")
    )
    assert response.status_code == 302
    advisor.refresh_from_db()
    assert (advisor.name, advisor.segment, advisor.status) == ("New", "HNI", "disabled")
    changed = AuditEntry.objects.get(action="advisor.changed")
    assert changed.changes == {"name": ["Old", "New"], "segment": ["retail", "HNI"]}
    status = AuditEntry.objects.get(action="advisor.status_changed")
    assert status.changes == {"status": ["active", "disabled"]} and status.actor == admin
    assert LogEntry.objects.filter(object_id=str(advisor.pk)).exists()  # the change history


@pytest.mark.django_db
def test_saving_without_changes_writes_no_audit_row(client):
    advisor = make_advisor()
    client.force_login(make_user("Admin"))
    assert client.post(f"{LIST}{advisor.pk}/change/", form_data(advisor)).status_code == 302
    assert not AuditEntry.objects.filter(action__startswith="advisor.").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("action", "start", "end"), [("enable", "disabled", "active"), ("pause", "active", "paused"),
                                                       ("disable", "paused", "disabled")])
def test_status_actions_change_each_row_through_the_service_with_audit_and_history(client, action, start, end):
    admin = make_user("Admin")
    first, second = make_advisor(status=start), make_advisor(status=start)
    already = make_advisor(status=end)
    client.force_login(admin)
    response = client.post(
        LIST, {"action": action, "_selected_action": [first.pk, second.pk, already.pk]}, follow=True
    )
    assert response.status_code == 200
    assert set(Advisor.objects.values_list("status", flat=True)) == {end}
    audits = AuditEntry.objects.filter(action="advisor.status_changed")
    assert sorted(int(a.target_id) for a in audits) == [first.pk, second.pk]
    assert all(a.changes == {"status": [start, end]} and a.actor == admin for a in audits)
    assert LogEntry.objects.filter(object_id=str(first.pk), change_message__contains="Status set").exists()
    text = response.content.decode()
    assert "2 advisors set to" in text and "1 already was" in text


@pytest.mark.django_db
def test_the_change_page_has_a_history(client):
    advisor = make_advisor()
    client.force_login(make_user("Admin"))
    client.post(LIST, {"action": "pause", "_selected_action": [advisor.pk]})
    page = client.get(f"{LIST}{advisor.pk}/history/")
    assert page.status_code == 200
    assert "Status set to paused" in page.content.decode()


# --- the advisor page -------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_advisor_page_shows_profile_content_history_and_delivery_figures(client):
    advisor = make_advisor(name="Asha Mehta")
    items = [make_content(advisor, status="delivered", title=f"Post {i}") for i in range(3)]
    make_content(advisor, status="pending_review", title="Waiting")
    statuses = ["delivered", "read", "failed"]
    for item, status in zip(items, statuses, strict=True):
        Delivery.objects.create(content=item, channel="outbox", recipient=advisor.phone, status=status)
    queued = make_content(advisor, status="approved", title="Queued one")
    Delivery.objects.create(content=queued, channel="outbox", recipient=advisor.phone, status="queued")
    make_content(make_advisor(), title="Someone else's")
    client.force_login(make_user("Viewer"))
    page = client.get(f"{LIST}{advisor.pk}/change/")
    assert page.status_code == 200
    figures = page.context["advisor_page"]
    assert figures["content_total"] == 5
    assert figures["content_pending"] == 1
    assert figures["deliveries_total"] == 4
    assert figures["delivered"] == 2
    assert figures["delivered_rate"] == pytest.approx(66.7)  # 2 of the 3 that left the queue
    html = page.content.decode()
    assert "Asha Mehta" in html and "Waiting" in html and "Someone else" not in html
    assert f"/admin/advisors/content/{items[0].pk}/change/" in html
    assert 'data-testid="content-history"' in html and 'data-testid="delivery-figures"' in html


@pytest.mark.django_db
def test_a_viewer_sees_topics_as_a_list(client):
    advisor = make_advisor(topics=["SIP", "tax saving"])
    client.force_login(make_user("Viewer"))
    html = client.get(f"{LIST}{advisor.pk}/change/").content.decode()
    assert "SIP, tax saving" in html
    assert "&quot;tax saving&quot;" not in html


@pytest.mark.django_db
def test_an_advisor_without_content_says_so(client):
    advisor = make_advisor()
    client.force_login(make_user("Viewer"))
    page = client.get(f"{LIST}{advisor.pk}/change/")
    assert page.context["advisor_page"]["delivered_rate"] is None
    assert "No content has been written for this advisor yet." in page.content.decode()


# --- export -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_export_streams_exactly_the_rows_of_the_current_filter_and_search(client):
    client.force_login(make_user("Viewer"))
    make_advisor(name="Asha Paused", status="paused", topics=["SIP", "tax"])
    make_advisor(name="Bina Paused", status="paused")
    make_advisor(name="Asha Active", status="active")
    response = client.get(EXPORT, {"status__exact": "paused", "q": "Asha"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    rows = exported_rows(response)
    assert rows[0] == ["name", "arn", "phone", "email", "status", "segment", "language", "topics"]
    assert [r[0] for r in rows[1:]] == ["Asha Paused"]
    assert rows[1][7] == "SIP;tax"
    assert len(exported_rows(client.get(EXPORT))) == 4
    assert AuditEntry.objects.filter(action="advisor.exported").count() == 2


@pytest.mark.django_db
def test_under_asgi_the_export_streams_in_batches_instead_of_one_list():
    viewer = make_user("Viewer")
    for i in range(1200):
        make_advisor(name=f"Bulk {i:04d}")
    request = AsyncRequestFactory().get(EXPORT, {"q": "Bulk"})
    request.user = viewer
    response = site._registry[Advisor].export_view(request)
    assert response.is_async

    async def collect():
        return [part async for part in response]

    parts = async_to_sync(collect)()
    assert len(parts) == 3  # header + 1200 rows, 500 lines a batch
    rows = list(csv.reader(io.StringIO(b"".join(parts).decode("utf-8-sig"))))
    assert len(rows) == 1201 and rows[1][0] == "Bulk 0000"


@pytest.mark.django_db
def test_the_export_button_carries_the_current_filter(client):
    client.force_login(make_user("Viewer"))
    make_advisor()
    html = client.get(LIST, {"status__exact": "paused"}).content.decode()
    assert f'{EXPORT}?status__exact=paused' in html


@pytest.mark.django_db
def test_export_escapes_cells_that_spreadsheets_would_run_as_formulas(client):
    client.force_login(make_user("Viewer"))
    make_advisor(name="=HYPERLINK(\"http://evil\")", phone="+919800000123")
    rows = exported_rows(client.get(EXPORT))
    assert rows[1][0] == "'=HYPERLINK(\"http://evil\")"
    assert rows[1][2] == "+919800000123"


@pytest.mark.django_db
def test_an_export_can_be_imported_back_unchanged(client):
    client.force_login(make_user("Admin"))
    make_advisor(name="-dash name", topics=["SIP", "ELSS"], segment="NRI", language="ta")
    body = b"".join(client.get(EXPORT).streaming_content)
    response = client.post(IMPORT, {"file": SimpleUploadedFile("back.csv", body)}, follow=True)
    counts = response.context["counts"]
    assert (counts["unchanged"], counts["invalid"], counts["create"], counts["update"]) == (1, 0, 0, 0)


@pytest.mark.django_db
def test_export_needs_view_permission(client):
    client.force_login(make_user())  # no role
    assert client.get(EXPORT).status_code in (302, 403)


@pytest.mark.django_db
def test_export_with_a_bad_filter_says_so(client):
    client.force_login(make_user("Viewer"))
    response = client.get(EXPORT, {"nonsense__field": "1"})
    assert response.status_code == 302


# --- import pages -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_import_flow_previews_errors_then_imports_only_the_valid_rows(client):
    admin = make_user("Admin")
    existing = make_advisor(name="Old", arn="ARN-5", phone="+919800000005")
    client.force_login(admin)
    assert "Import CSV" in client.get(LIST).content.decode()
    assert client.get(IMPORT).status_code == 200
    response = upload(
        client,
        "name,arn,phone,email\n"
        "New person,ARN-1,+919800000001,new@example.com\n"
        "Renamed,ARN-5,+919800000005,\n"
        "Broken,not-an-arn,+919800000003,\n",
    )
    assert response.status_code == 302
    preview_url = response["Location"]
    page = client.get(preview_url)
    html = page.content.decode()
    assert page.context["counts"]["invalid"] == 1
    assert 'value="all" class="adv-button adv-button-primary" disabled' in html
    assert "Import only the 2 valid rows" in html
    assert "adv-cell-error" in html and "AMFI registration number" in html
    assert [r["row"].action for r in page.context["rows"]] == ["create", "update", "create"]
    assert Advisor.objects.count() == 1  # nothing written yet

    done = client.post(f"{preview_url}confirm/", {"mode": "valid_only"}, follow=True)
    assert done.status_code == 200
    assert "Import done: 1 created, 1 updated, 0 unchanged, 1 rows with errors skipped." in done.content.decode()
    existing.refresh_from_db()
    assert existing.name == "Renamed"
    assert Advisor.objects.filter(arn="ARN-1").exists()
    assert AuditEntry.objects.get(action="advisor.imported").actor == admin
    assert LogEntry.objects.filter(object_id=str(existing.pk), change_message__contains="Updated from CSV").exists()
    # The preview is gone once imported: a second click imports nothing twice.
    again = client.post(f"{preview_url}confirm/", {"mode": "valid_only"}, follow=True)
    assert "expired" in again.content.decode()
    assert Advisor.objects.count() == 2


@pytest.mark.django_db
def test_import_all_is_refused_when_a_row_is_invalid_and_nothing_is_written(client):
    client.force_login(make_user("Admin"))
    preview_url = upload(client, "name,arn,phone\nGood,ARN-1,+919800000001\nBad,x,+919800000002\n")["Location"]
    response = client.post(f"{preview_url}confirm/", {"mode": "all"}, follow=True)
    assert "1 row has errors" in response.content.decode()
    assert Advisor.objects.count() == 0


@pytest.mark.django_db
def test_a_clean_file_offers_one_button_and_imports_all(client):
    client.force_login(make_user("Admin"))
    preview_url = upload(client, "name,arn,phone\nGood,ARN-1,+919800000001\n")["Location"]
    html = client.get(preview_url).content.decode()
    assert "Import all 1 row" in html and "valid_only" not in html
    client.post(f"{preview_url}confirm/", {"mode": "all"})
    assert Advisor.objects.filter(arn="ARN-1").exists()


@pytest.mark.django_db
def test_the_preview_can_show_only_the_rows_with_errors_and_pages_long_files(client):
    client.force_login(make_user("Admin"))
    lines = "".join(f"A{i},ARN-{i},+9198{i:08d}\n" for i in range(1, 151)) + "Bad,x,+919899999999\n"
    preview_url = upload(client, "name,arn,phone\n" + lines)["Location"]
    first = client.get(preview_url)
    assert len(first.context["rows"]) == 100 and first.context["page"].has_next()
    errors_only = client.get(preview_url, {"show": "errors"})
    assert [r["row"].line for r in errors_only.context["rows"]] == [152]


@pytest.mark.django_db
def test_a_malformed_upload_shows_a_clear_message_and_writes_nothing(client):
    client.force_login(make_user("Admin"))
    response = client.post(IMPORT, {"file": SimpleUploadedFile("a.xlsx", b"PK\x03\x04garbage")})
    assert response.status_code == 200
    assert "not a CSV file" in response.context["file_error"]
    response = upload(client, "just,some,words\n1,2,3\n")
    assert "header" in response.context["file_error"]
    assert Advisor.objects.count() == 0


@pytest.mark.django_db
def test_someone_elses_preview_cannot_be_seen_or_confirmed(client):
    owner, other = make_user("Admin"), make_user("Admin")
    client.force_login(owner)
    preview_url = upload(client, "name,arn,phone\nGood,ARN-1,+919800000001\n")["Location"]
    client.force_login(other)
    assert client.get(preview_url)["Location"].endswith(IMPORT)
    client.post(f"{preview_url}confirm/", {"mode": "all"})
    assert Advisor.objects.count() == 0


@pytest.mark.django_db
def test_confirming_after_the_data_changed_shows_the_fresh_preview(client):
    client.force_login(make_user("Admin"))
    preview_url = upload(client, "name,arn,phone\nGood,ARN-1,+919800000001\n")["Location"]
    make_advisor(arn="ARN-9", phone="+919800000001")
    response = client.post(f"{preview_url}confirm/", {"mode": "all"}, follow=True)
    assert "changed since this preview" in response.content.decode()
    assert response.context["counts"]["invalid"] == 1
    assert not Advisor.objects.filter(arn="ARN-1").exists()


@pytest.mark.django_db
def test_the_template_downloads_for_importers(client):
    client.force_login(make_user("Admin"))
    response = client.get(f"{IMPORT}template.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="advisors-template.csv"'
    assert response.content.decode("utf-8-sig").startswith("name,arn,phone,email,status,segment,language,topics")


@pytest.mark.django_db
def test_confirm_needs_post(client):
    client.force_login(make_user("Admin"))
    preview_url = upload(client, "name,arn,phone\nGood,ARN-1,+919800000001\n")["Location"]
    assert client.get(f"{preview_url}confirm/").status_code == 405


# --- content, deliveries, outbox --------------------------------------------------------------


@pytest.mark.django_db
def test_content_list_filters_and_searches_for_viewers(client):
    client.force_login(make_user("Viewer"))
    advisor = make_advisor(name="Asha", arn="ARN-31337")
    wanted = make_content(advisor, status="pending_review", title="Wanted", compliance_verdict="warn")
    make_content(status="approved", title="Other")
    assert client.get("/admin/advisors/content/").status_code == 200
    for params in [{"status__exact": "pending_review"}, {"compliance_verdict__exact": "warn"}, {"q": "ARN-31337"},
                   {"q": "Wanted"}, {"advisor__id__exact": advisor.pk}]:
        page = client.get("/admin/advisors/content/", params)
        assert list(page.context["cl"].result_list) == [wanted], params


@pytest.mark.django_db
def test_content_status_cannot_be_edited_here(client):
    item = make_content()
    superuser = make_user(is_superuser=True, is_staff=True)
    client.force_login(superuser)
    page = client.get(f"/admin/advisors/content/{item.pk}/change/")
    form = page.context["adminform"].form
    assert "status" not in form.fields and "version" not in form.fields and "reviewer" not in form.fields
    assert client.get("/admin/advisors/content/add/").status_code == 403
    assert client.post(f"/admin/advisors/content/{item.pk}/delete/", {"post": "yes"}).status_code == 403


@pytest.mark.django_db
def test_editing_content_text_bumps_its_version_and_is_audited(client):
    item = make_content(title="Old title")
    client.force_login(make_user(is_superuser=True, is_staff=True))
    page = client.get(f"/admin/advisors/content/{item.pk}/change/")
    data = {k: v for k, v in page.context["adminform"].form.initial.items() if v is not None}
    data.update(title="New title", advisor=item.advisor_id, cycle_date="2026-11-22", image="")
    response = client.post(f"/admin/advisors/content/{item.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    item.refresh_from_db()
    assert (item.title, item.version, item.status) == ("New title", 2, "pending_review")
    assert AuditEntry.objects.get(action="content.edited").changes == {"fields": ["title"], "version": 2}


@pytest.mark.django_db
def test_admins_cannot_change_content_without_the_permission(client):
    item = make_content()
    client.force_login(make_user("Admin"))
    assert client.post(f"/admin/advisors/content/{item.pk}/change/", {"title": "x"}).status_code == 403


@pytest.mark.django_db
def test_deliveries_and_outbox_are_read_only(client):
    item = make_content(status="approved")
    delivery = Delivery.objects.create(content=item, channel="outbox", recipient="+919800000001", status="delivered")
    message = OutboxMessage.objects.create(delivery=delivery, recipient="+919800000001", payload={"text": "hi"})
    viewer, admin = make_user("Viewer"), make_user("Admin")
    client.force_login(viewer)
    assert client.get("/admin/advisors/delivery/").status_code == 200
    assert client.get(f"/admin/advisors/delivery/{delivery.pk}/change/").status_code == 200
    assert client.get("/admin/advisors/outboxmessage/").status_code == 403
    client.force_login(admin)
    assert client.get("/admin/advisors/outboxmessage/").status_code == 200
    assert client.get(f"/admin/advisors/outboxmessage/{message.pk}/change/").status_code == 200
    for url in [f"/admin/advisors/delivery/{delivery.pk}/change/", f"/admin/advisors/outboxmessage/{message.pk}/change/"]:
        assert client.post(url, {"recipient": "x"}).status_code == 403
    assert client.get("/admin/advisors/delivery/add/").status_code == 403
    assert Content.objects.get(pk=item.pk).status == "approved"
