"""The pages in a real browser: headless Chromium driven by Playwright against a live server.

Each test signs in through the sign-in form as a person would, and saves a full-page
screenshot of every page it visits under `tests/artifacts/screenshots/`.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import Factory
from tests.web.conftest import PHONE, Shoot, sign_in, table_rows


def api_me(base_url: str, secret: str) -> tuple[int, Any]:
    """Call `GET /api/v1/me` with a bearer token, as a script would."""
    req = urllib.request.Request(
        f"{base_url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


@pytest.mark.browser
def test_partner_sees_own_relationships_and_slide_in_state(
    page: Page, shoot: Shoot, demo_directory: Factory
) -> None:
    sign_in(page, shoot, "pacct")
    expect(page.get_by_text("ACCT-01", exact=True)).to_be_visible()
    shoot(page, "home")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Relationships").click()
    expect(page).to_have_url(re.compile(r"/directory/relationships$"))
    expect(page.get_by_role("heading", level=1, name="Relationships")).to_be_visible()
    shoot(page, "relationships")

    rows = table_rows(page)
    consoles = {row[0].split()[0] for row in rows}
    slide_in = {row[1].split()[0]: row[4] for row in rows}
    assert consoles == {"ACCT-01"}
    assert slide_in == {
        "ACME-US": "✓ can slide in",
        "BETA": "✗ needs establish link",
        "GAMMA": "✗ needs enable access and establish link",
    }
    expect(page.get_by_role("cell", name=re.compile("DELTA"))).to_have_count(0)
    expect(page.get_by_text("VAR-01")).to_have_count(0)


@pytest.mark.browser
def test_wrong_password_shows_error_and_keeps_username(
    page: Page, shoot: Shoot, demo_directory: Factory
) -> None:
    page.goto("/sign-in")
    shoot(page, "sign-in")
    page.get_by_label("Username").fill("pacct")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    shoot(page, "wrong-password")
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.get_by_label("Username")).to_have_value("pacct")
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_label("Password")).to_be_focused()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)


@pytest.mark.browser
def test_api_token_is_shown_once_listed_and_revoked(
    page: Page, shoot: Shoot, live_server: str, demo_directory: Factory
) -> None:
    sign_in(page, shoot, "pvar")
    page.get_by_role("link", name="pvar").click()
    expect(page.get_by_role("heading", level=1, name="Settings")).to_be_visible()
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()
    shoot(page, "settings-empty")

    page.get_by_label("Token name").fill("reporting script")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("status")).to_contain_text("it will not be shown again")
    secret = page.locator("#new-token").inner_text().strip()
    assert secret.startswith("ldk_")
    tokens = page.get_by_role("table", name="Your API tokens")
    expect(tokens.get_by_role("cell", name="reporting script", exact=True)).to_be_visible()
    expect(tokens).not_to_contain_text(secret)
    shoot(page, "token-created")

    status, me = api_me(live_server, secret)
    assert (status, me["username"]) == (200, "pvar")

    page.goto("/settings")
    expect(page.locator("#new-token")).to_have_count(0)
    expect(page.get_by_text(secret)).to_have_count(0)
    shoot(page, "settings-revisited")

    page.get_by_role("button", name="Revoke token reporting script").click()
    expect(page.get_by_role("status")).to_have_text("The token was revoked; it no longer works.")
    expect(page.get_by_role("table", name="Your API tokens")).to_have_count(0)
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()
    shoot(page, "token-revoked")

    status, body = api_me(live_server, secret)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"


@pytest.mark.browser
def test_agent_sees_all_consoles_and_field_error_for_unknown_console(
    page: Page, shoot: Shoot, demo_directory: Factory
) -> None:
    sign_in(page, shoot, "agent")
    shoot(page, "home")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Consoles").click()
    expect(page.get_by_role("heading", level=1, name="Consoles")).to_be_visible()
    shoot(page, "consoles")
    assert [(row[0], row[2]) for row in table_rows(page)] == [
        ("ACCT-01", "accountant"),
        ("MGMT-01", "management"),
        ("VAR-01", "partner"),
    ]

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Relationships").click()
    console = page.get_by_label("Console")
    console.fill("NOPE-99")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"console=NOPE-99"))
    shoot(page, "unknown-console")

    message = "No console 'NOPE-99' that you can see."
    error = page.locator(".field-error", has_text=message)
    expect(error).to_be_visible()
    expect(console).to_have_value("NOPE-99")
    expect(console).to_have_attribute("aria-invalid", "true")
    expect(console).to_have_accessible_description(message)
    field, shown = console.bounding_box(), error.bounding_box()
    assert field and shown
    assert 0 <= shown["y"] - (field["y"] + field["height"]) < 24, "error not right under the field"
    assert abs(shown["x"] - field["x"]) < 4, "error not aligned with the field"
    expect(page.locator("table")).to_have_count(0)


@pytest.mark.browser
def test_sign_out_returns_to_sign_in_and_locks_pages(
    page: Page, shoot: Shoot, demo_directory: Factory
) -> None:
    sign_in(page, shoot, "boss")
    shoot(page, "home")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    shoot(page, "signed-out")

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=(/|%2F)$"))
    expect(page.get_by_role("heading", name="Sign in to LinkDesk")).to_be_visible()
    expect(page.get_by_role("link", name="Relationships")).to_have_count(0)
    shoot(page, "home-after-sign-out")


@pytest.mark.browser
def test_relationships_fit_a_phone_screen(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    page = open_page(viewport=PHONE)
    sign_in(page, shoot, "pacct")
    shoot(page, "home")
    page.get_by_role("link", name="Relationships").first.click()
    expect(page.get_by_role("heading", level=1, name="Relationships")).to_be_visible()
    expect(page.get_by_text("✗ needs enable access and establish link")).to_be_visible()
    shoot(page, "relationships")

    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"page is {scroll_width}px wide on a {inner_width}px screen"


@pytest.mark.browser
def test_api_tokens_fit_a_phone_screen(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    page = open_page(viewport=PHONE)
    sign_in(page, shoot, "iadmin")
    page.get_by_role("link", name="iadmin").click()
    page.get_by_label("Token name").fill("a rather long name for a nightly export script")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#new-token")).to_be_visible()
    expect(page.get_by_role("button", name="Revoke token a rather long name")).to_be_visible()
    shoot(page, "token-created")

    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"page is {scroll_width}px wide on a {inner_width}px screen"


@pytest.mark.browser
def test_keyboard_user_can_skip_to_the_content(
    page: Page, shoot: Shoot, demo_directory: Factory
) -> None:
    sign_in(page, shoot, "iadmin")
    page.goto("/directory/relationships")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    shoot(page, "skip-link")

    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_label("Console")).to_be_focused()
