"""The console shell: Overview, sections not built yet, sign-in requirements."""

from __future__ import annotations

import json

import pytest

from opscenter.redis import redis_client
from opscenter.sections import SECTIONS
from opscenter.tasks import HEARTBEAT_KEY
from tests.factories import make_user


@pytest.mark.django_db
def test_console_pages_need_sign_in(client):
    for path in ["/admin/", "/admin/account/tokens/", "/admin/section/agents/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_overview_shows_each_component_and_reports_no_worker_without_heartbeat(client):
    client.force_login(make_user("Viewer"))
    page = client.get("/admin/")
    assert page.status_code == 200
    components = {c["name"]: c for c in page.context["components"]}
    assert set(components) == {"database", "redis", "worker", "beat"}
    assert components["database"]["ok"] and components["redis"]["ok"]
    assert not components["worker"]["ok"]
    assert components["worker"]["detail"] == "no heartbeat from any worker yet"
    assert b"data-live-indicator" in page.content


@pytest.mark.django_db
def test_overview_marks_an_old_heartbeat_as_worker_down(client):
    redis_client().set(
        HEARTBEAT_KEY,
        json.dumps({"server_time": "2020-01-01T00:00:00+00:00", "components": {}, "workers": [], "workers_online": 1, "queue_length": 0}),
    )
    client.force_login(make_user("Viewer"))
    worker = {c["name"]: c for c in client.get("/admin/").context["components"]}["worker"]
    assert not worker["ok"]
    assert worker["detail"].startswith("last heartbeat")


@pytest.mark.django_db
def test_sections_not_built_yet_say_so_plainly(client, monkeypatch):
    # Every section is built now; a section added before its page must still say so plainly.
    import dataclasses

    from opscenter import sections

    pending = dataclasses.replace(sections.SECTIONS[0], slug="pending-demo", title="Pending demo", url_name=None,
                                  permission=None)
    if hasattr(pending, "badge"):
        pending = dataclasses.replace(pending, badge=None)
    monkeypatch.setattr(sections, "SECTIONS", (*sections.SECTIONS, pending))
    client.force_login(make_user("Viewer"))
    page = client.get(f"/admin/section/{pending.slug}/")
    assert page.status_code == 200
    assert "Pending demo is not built yet" in page.content.decode()


@pytest.mark.django_db
def test_sidebar_lists_the_sections_a_role_may_open_and_hides_admin_links_from_viewers(client):
    viewer = make_user("Viewer")
    client.force_login(viewer)
    html = client.get("/admin/").content.decode()
    for section in SECTIONS:
        may_open = section.permission is None or viewer.has_perm(section.permission)
        assert (section.title in html) == may_open, section
    # Logs may hold tracebacks and phone numbers: Operators and Admins only.
    assert not viewer.has_perm("logs.view_logentry")
    assert "/admin/logs/" not in html
    assert "/admin/opscenter/auditentry/" not in html
    client.force_login(make_user("Operator"))
    assert "/admin/logs/" in client.get("/admin/").content.decode()
    client.force_login(make_user("Admin"))
    assert "/admin/opscenter/auditentry/" in client.get("/admin/").content.decode()


@pytest.mark.django_db
def test_api_docs_are_served_offline(client):
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    assert {"/api/v1/me", "/api/v1/health", "/api/v1/ready", "/api/v1/tokens/"} <= set(paths)


@pytest.mark.django_db
def test_pages_send_a_content_security_policy(client):
    response = client.get("/admin/login/")
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
