"""Every page under the Content-Security-Policy in a real browser: each role's pages, an error
page and the API docs (Swagger UI) load with the policy in force and without a single
console error or policy violation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from playwright.sync_api import ConsoleMessage, Error, Page, expect

from service.headers import CONTENT_SECURITY_POLICY
from tests.conftest import Factory, waiting_request
from tests.web.conftest import Shoot, sign_in

# Chromium logs a violation as a console error too; the event also catches any it would not.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


def expected_404(message: ConsoleMessage) -> bool:
    """A 404 the test asked for, or the browser's own look for a favicon LinkDesk has not."""
    url = message.location.get("url", "")
    return "status of 404" in message.text and url.endswith(("/favicon.ico", "/no-such-page"))


def watch(page: Page) -> list[str]:
    """Collect the page's console errors, policy violations and uncaught exceptions."""
    problems: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not expected_404(message):
            problems.append(f"{message.location.get('url')}: {message.text}")

    def on_page_error(error: Error) -> None:
        problems.append(f"{page.url}: uncaught {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return problems


def visit(page: Page, path: str, status: int = 200) -> None:
    """Open `path`, check it came with the policy, and let its scripts run."""
    response = page.goto(path)
    assert response is not None
    assert response.status == status, path
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
    page.wait_for_load_state("load")


def main_pages(page: Page) -> list[str]:
    """The pages the signed-in person reaches from the header: navigation and account."""
    links = page.locator("header nav a, header .account a")
    hrefs = [link.get_attribute("href") for link in links.all()]
    return [href for href in hrefs if href]


@pytest.mark.browser
@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "boss", "root"])
def test_every_main_page_keeps_to_the_content_security_policy(
    open_page: Callable[..., Page],
    shoot: Shoot,
    app: Flask,
    demo_directory: Factory,
    username: str,
) -> None:
    request_id = waiting_request(app).public_id
    page = open_page()
    problems = watch(page)
    visit(page, "/sign-in")
    sign_in(page, shoot, username)

    pages = main_pages(page)
    assert "/api/v1/docs" in pages
    if username != "iadmin":  # not one of the instance admin's instances
        pages.append(f"/requests/{request_id}")
    for path in pages:
        visit(page, path)
        if path == "/api/v1/docs":
            # Swagger UI started by its static script and drew the document's operations.
            expect(page.get_by_role("heading", name="LinkDesk API")).to_be_visible()
            expect(page.get_by_text("/api/v1/me", exact=True).first).to_be_visible()
        shoot(page, path.strip("/").replace("/", "-") or "home")
    visit(page, "/no-such-page", status=404)
    assert problems == []


@pytest.mark.browser
def test_api_docs_keep_to_the_policy_without_signing_in(page: Page, shoot: Shoot) -> None:
    problems = watch(page)
    visit(page, "/api/v1/docs")
    expect(page.get_by_role("heading", name="LinkDesk API")).to_be_visible()
    page.get_by_text("/api/v1/me", exact=True).first.click()  # open an operation
    expect(page.get_by_role("button", name="Try it out")).to_be_visible()
    shoot(page, "api-docs")
    assert problems == []
