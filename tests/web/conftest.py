"""Browser fixtures for the page tests: a live server, the session's Chromium, pages in fresh
contexts, screenshots kept as test artefacts, and signing in through the form."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect
from werkzeug.serving import make_server

from tests.conftest import PASSWORD, free_port

SCREENSHOTS = Path(__file__).parents[1] / "artifacts" / "screenshots"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}

Shoot = Callable[[Page, str], None]


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The test's app served over HTTP on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


@pytest.fixture(scope="session")
def browser(chromium: Browser) -> Browser:
    """The session's one Chromium."""
    return chromium


@pytest.fixture
def open_page(browser: Browser, live_server: str) -> Iterator[Callable[..., Page]]:
    """`open_page(viewport=...)`: a page in a fresh browser context (its own cookies)."""
    contexts: list[BrowserContext] = []

    def new_page(viewport: ViewportSize = DESKTOP) -> Page:
        context = browser.new_context(base_url=live_server, viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    """A desktop-sized page with nobody signed in."""
    return open_page()


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Shoot:
    """`shoot(page, "what")`: a full-page screenshot named after the test and the step."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    prefix = request.node.name.removeprefix("test_")

    def screenshot(page: Page, step: str) -> None:
        page.screenshot(path=SCREENSHOTS / f"{prefix}--{step}.png", full_page=True)

    return screenshot


def sign_in(page: Page, shoot: Shoot, username: str, password: str = PASSWORD) -> None:
    """Sign in through the form and wait for the home page."""
    page.goto("/sign-in")
    expect(page.get_by_role("heading", name="Sign in to LinkDesk")).to_be_visible()
    shoot(page, "sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def table_rows(page: Page) -> list[list[str]]:
    """The cell texts of every body row of the page's table."""
    rows = page.locator("table tbody tr")
    return [[cell.strip() for cell in row.locator("td").all_inner_texts()] for row in rows.all()]


def fits_width(page: Page) -> None:
    """The page is no wider than the screen (nothing to scroll sideways)."""
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"page is {scroll_width}px wide on a {inner_width}px screen"
