"""Two-factor sign-in and single sign-on in a real browser, under the Content-Security-Policy:
setting up an authenticator app from the settings page (the QR code is inline SVG), signing
in with its code, and signing in through a real OpenID Connect provider."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyotp
import pytest
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from werkzeug.serving import make_server

from tests.conftest import PASSWORD, Factory, free_port, person
from tests.web.conftest import Shoot, sign_in

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


def watch(page: Page) -> list[str]:
    """The page's console errors (policy violations included) and uncaught exceptions."""
    problems: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)

    def on_console(message: ConsoleMessage) -> None:
        url = message.location.get("url", "")
        # The browser logs the pages answered with an error status; those are the test's.
        answered = "the server responded with a status of" in message.text
        if message.type == "error" and not answered and "favicon.ico" not in url:
            problems.append(f"{url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: uncaught {error}"))
    return problems


def steady_code(secret: str, steps_from_now: int = 0) -> str:
    if time.time() % 30 > 28:
        time.sleep(2.5)
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


@pytest.mark.browser
def test_setting_up_and_signing_in_with_an_authenticator_app(
    open_page: Callable[..., Page], shoot: Shoot, make: Factory
) -> None:
    make.user("alice", "agent")
    page = open_page()
    problems = watch(page)
    sign_in(page, shoot, "alice")
    page.goto("/settings")
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    qr = page.locator("figure.qr svg")
    expect(qr).to_be_visible()
    box = qr.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    shoot(page, "qr-code")
    secret = page.locator("#mfa-secret").inner_text().strip()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    page.get_by_label("Code from your app").fill(steady_code(secret, -1))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    expect(page.get_by_role("list", name="Recovery codes").locator("li")).to_have_count(10)
    shoot(page, "recovery-codes")
    page.get_by_role("link", name="I have kept them").click()
    expect(page.get_by_text("10 unused recovery codes")).to_be_visible()

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    shoot(page, "code")
    page.get_by_label("Code from your authenticator app, or a recovery code").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("That code is not right")
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(
        steady_code(secret)
    )
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
    assert problems == []


@pytest.fixture
def sso_server(app: Flask, make_app: Any, oidc_provider: str) -> Iterator[tuple[Flask, str]]:
    """An app signing in through the provider, served on a free loopback port."""
    sso_app: Flask = make_app(
        OIDC_ISSUER=oidc_provider,
        OIDC_CLIENT_ID="linkdesk-browser",
        OIDC_CLIENT_SECRET="browser-test-secret",
        OIDC_DISPLAY_NAME="Example SSO",
    )
    server = make_server("127.0.0.1", free_port(), sso_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield sso_app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


@pytest.mark.browser
def test_signing_in_through_the_provider(
    browser: Browser, shoot: Shoot, sso_server: tuple[Flask, str], oidc_provider: str
) -> None:
    sso_app, base_url = sso_server
    Factory(sso_app).user("maya", "manager")  # maya@example.test
    person(oidc_provider, "maya-browser", email="maya@example.test", name="Maya")
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        problems = watch(page)
        page.goto("/sign-in")
        page.get_by_role("link", name="Sign in with Example SSO").click()
        expect(page).to_have_url(re.compile(re.escape(oidc_provider) + "/oauth2/authorize"))
        shoot(page, "provider")
        page.get_by_placeholder("sub").fill("maya-browser")
        page.get_by_role("button", name="Authorize").click()
        expect(page).to_have_url(f"{base_url}/")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")
        shoot(page, "signed-in")
        # The provider's own pages are not LinkDesk's: only LinkDesk's must keep its policy.
        assert [p for p in problems if p.startswith(base_url)] == []

        page.get_by_role("button", name="Sign out", exact=True).click()
        page.get_by_role("link", name="Sign in with Example SSO").click()
        page.get_by_role("button", name="Deny").click()
        expect(page.get_by_role("alert")).to_have_text("Sign-in with Example SSO was cancelled.")
        expect(page.get_by_role("heading", name="Sign in to LinkDesk")).to_be_visible()
    finally:
        context.close()
