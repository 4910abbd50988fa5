"""The Overview in a real browser against real web, worker and beat processes."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from django.conf import settings
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

WIDTHS = [375, 1280]
LIVE_TIMEOUT_MS = 30_000  # worker and beat may still be starting when the first test runs


@contextmanager
def open_page(browser, system, width: int):
    """Yield a page in a fresh context; on failure, add the servers' output to the error."""
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=system.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    try:
        yield page
    except (AssertionError, PlaywrightError) as exc:
        raise AssertionError(f"{exc}\n\nbrowser console:\n{chr(10).join(console)}\n\n{system.logs()}") from exc
    finally:
        context.close()


def log_in(page, username: str, password: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("#login-form [type=submit]")
    page.wait_for_load_state()


def session_cookie(page) -> dict | None:
    return next((c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME), None)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", ["viewer", "admin"])
def test_user_logs_in_and_sees_every_component_up_live(browser, running_system, role, width, tmp_path):
    credentials = running_system.users[role]
    with open_page(browser, running_system, width) as page:
        log_in(page, credentials.username, credentials.password)

        expect(page).to_have_url(re.compile(r"/admin/$"))
        indicator = page.locator("[data-live-indicator]")
        expect(indicator).to_have_attribute("data-state", "connected", timeout=LIVE_TIMEOUT_MS)
        expect(indicator.locator("[data-live-label]")).to_have_text("Live")
        for name in ("database", "redis", "worker", "beat"):
            card = page.locator(f'[data-component="{name}"]')
            expect(card).to_have_attribute("data-ok", "true", timeout=LIVE_TIMEOUT_MS)
            expect(card.locator('[data-field="state"]')).to_have_text("Up")

        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width + 1, f"the page is {scroll_width}px wide in a {width}px viewport"
        page.screenshot(path=tmp_path / f"overview-{role}-{width}.png", full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_workers_online_updates_live_from_heartbeats(browser, running_system, width):
    credentials = running_system.users["viewer"]
    with open_page(browser, running_system, width) as page:
        log_in(page, credentials.username, credentials.password)
        expect(page.locator("[data-live-indicator]")).to_have_attribute(
            "data-state", "connected", timeout=LIVE_TIMEOUT_MS
        )
        last_beat = page.locator('[data-heartbeat="server_time"]')
        first_paint = last_beat.inner_text()

        # A new heartbeat time proves an event arrived over the socket after the page loaded.
        expect(last_beat).not_to_have_text(first_paint, timeout=LIVE_TIMEOUT_MS)
        expect(page.locator('[data-heartbeat="workers_online"]')).to_have_text(
            re.compile(r"^\s*[1-9]\d*\s*$"), timeout=LIVE_TIMEOUT_MS
        )
        expect(page.locator('[data-heartbeat="workers"]')).to_contain_text("e2e@")


UNBUILT = "/admin/section/pending-demo/"


@pytest.fixture(scope="module")
def unbuilt_section_page(running_system, django_db_blocker) -> str:
    """The "not built yet" page of a section that exists only in this test, rendered by the real view.

    Every section of the product is built, so none is left to show it; the page is rendered
    here (with the test section added to opscenter.sections) for the Viewer the browser signs
    in as, and the browser is served it at its address while everything else (styles, scripts,
    the live socket) comes from the running system. Request it before `browser`.
    """
    from dataclasses import replace

    from django.contrib.auth import get_user_model
    from django.test import Client

    from opscenter import sections

    demo = replace(sections.get_section("logs"), slug="pending-demo", title="Pending demo", icon="construction",
                   summary="A section that exists only for this test.", url_name=None, permission=None, badge=None)
    with pytest.MonkeyPatch.context() as patch, django_db_blocker.unblock():
        patch.setattr(sections, "SECTIONS", (*sections.SECTIONS, demo))
        client = Client()
        client.force_login(get_user_model().objects.get(username=running_system.users["viewer"].username))
        response = client.get(UNBUILT)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture(scope="module")
def browser(unbuilt_section_page, browser):
    """The conftest browser, started after the page above was rendered (no ORM while Playwright runs)."""
    return browser


@pytest.mark.parametrize("width", WIDTHS)
def test_a_section_not_built_yet_says_so_plainly(browser, running_system, unbuilt_section_page, width):
    credentials = running_system.users["viewer"]
    with open_page(browser, running_system, width) as page:
        log_in(page, credentials.username, credentials.password)
        page.route(f"**{UNBUILT}", lambda route: route.fulfill(status=200, content_type="text/html; charset=utf-8",
                                                               body=unbuilt_section_page))
        response = page.goto(UNBUILT)

        assert response is not None and response.status == 200
        expect(page.get_by_role("heading", name="Pending demo is not built yet")).to_be_visible()
        expect(page.get_by_text("no sample figures")).to_be_visible()
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width + 1, f"the page is {scroll_width}px wide in a {width}px viewport"


@pytest.mark.parametrize("width", WIDTHS)
def test_a_built_sections_old_address_opens_its_page(browser, running_system, width):
    credentials = running_system.users["viewer"]
    with open_page(browser, running_system, width) as page:
        log_in(page, credentials.username, credentials.password)
        page.goto("/admin/section/alerts/")

        expect(page).to_have_url(re.compile(r"/admin/alerts/$"))
        expect(page.locator("[data-alerts-page]")).to_be_visible()


@pytest.mark.parametrize("width", WIDTHS)
def test_wrong_password_shows_an_error_and_opens_no_session(browser, running_system, width):
    credentials = running_system.users["viewer"]
    with open_page(browser, running_system, width) as page:
        log_in(page, credentials.username, "not-the-password")

        expect(page).to_have_url(re.compile(r"/admin/login/"))
        expect(page.get_by_text(re.compile("correct username and password"))).to_be_visible()
        assert session_cookie(page) is None

        page.goto("/admin/")
        expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/"))
