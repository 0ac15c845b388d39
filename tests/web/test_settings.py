"""The settings page in a real browser: where you are signed in and ending a session elsewhere."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Factory
from tests.web.conftest import PHONE, Shoot, sign_in


def open_settings(page: Page) -> None:
    page.get_by_role("link", name=re.compile(r"\(settings\)")).click()
    expect(page.get_by_role("heading", level=1, name="Settings")).to_be_visible()


@pytest.mark.browser
def test_sessions_are_listed_and_ended_from_another_browser(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    laptop, phone = open_page(), open_page(viewport=PHONE)
    sign_in(laptop, shoot, "boss")
    sign_in(phone, shoot, "boss")

    open_settings(phone)
    sessions = phone.get_by_role("table", name="Your sessions")
    expect(sessions.locator("tbody tr")).to_have_count(2)
    shoot(phone, "phone-settings")
    scroll_width, inner_width = phone.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"page is {scroll_width}px wide on a {inner_width}px screen"

    open_settings(laptop)
    sessions = laptop.get_by_role("table", name="Your sessions")
    rows = sessions.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="this browser")).to_have_count(1)
    expect(rows.first).to_contain_text("this browser")
    expect(rows.first).to_contain_text(re.compile(r"Chrome \d+ on Linux"))
    expect(rows.first).to_contain_text("127.0.0.1")
    shoot(laptop, "two-sessions")

    laptop.get_by_role("button", name=re.compile("^End the session of")).click()
    expect(laptop.get_by_role("status")).to_have_text(
        "The session was ended: that browser is signed out."
    )
    expect(laptop.get_by_role("table", name="Your sessions").locator("tbody tr")).to_have_count(1)
    shoot(laptop, "session-ended")

    phone.reload()
    expect(phone).to_have_url(re.compile(r"/sign-in\?next="))
    expect(phone.get_by_role("status")).to_have_text(
        "This session was ended from the settings page. Sign in again to continue."
    )
    shoot(phone, "phone-signed-out")
