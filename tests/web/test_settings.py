"""The settings page in a real browser: where you are signed in, ending a session elsewhere,
changing your password and signing out everywhere."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD, Factory
from tests.web.conftest import PHONE, Shoot, sign_in

NEW_PASSWORD = "a brand new passphrase"


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


@pytest.mark.browser
def test_password_change_then_sign_out_everywhere(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    page, other = open_page(), open_page()
    sign_in(page, shoot, "agent")
    sign_in(other, shoot, "agent")
    open_settings(page)

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=False).first.fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD + "?")
    page.get_by_role("button", name="Change password").click()
    again = page.get_by_label("New password again")
    expect(again).to_have_attribute("aria-invalid", "true")
    expect(again).to_have_accessible_description("The two new passwords differ.")
    shoot(page, "passwords-differ")

    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=False).first.fill(NEW_PASSWORD)
    again.fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_have_text(
        "Your password was changed. Your 1 other session was signed out."
    )
    expect(page.get_by_role("table", name="Your sessions").locator("tbody tr")).to_have_count(1)
    shoot(page, "password-changed")

    other.reload()
    expect(other.get_by_role("status")).to_contain_text("Your password was changed")
    other.get_by_label("Username").fill("agent")
    other.get_by_label("Password").fill(NEW_PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_role("heading", level=1)).to_contain_text("Welcome")

    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out everywhere.")
    shoot(page, "signed-out-everywhere")
    other.reload()
    expect(other.get_by_role("status")).to_have_text(
        "You signed out everywhere. Sign in again to continue."
    )
