"""The request pages in a real browser, each test a whole story through the UI.

Partners file and follow requests, instance admins decide consent in their inbox, and the
real worker runs every workflow on the Temporal dev server. Customer Service's decisions go
through the API (their queue pages are tested with the queue). Every page visited is saved as
a full-page screenshot under `tests/artifacts/screenshots/`.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Browser, Page, expect
from werkzeug.serving import make_server

from tests.conftest import Factory, csrf_token, eventually, free_port
from tests.conftest import sign_in as sign_in_with_form
from tests.lifecycle import wait_status
from tests.web.conftest import DESKTOP, PHONE, Shoot, sign_in

# The same live server, browser, page and screenshot fixtures as the other browser tests.

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("worker")]

REQUEST_ID = re.compile(r"REQ-\d{6}")


def status_chip(page: Page) -> Any:
    """The request page's status chip."""
    return page.locator("#status")


def reload_until_status(page: Page, status: str, timeout: float = 15) -> None:
    """Reload the request page until the workflow has moved it to `status`."""
    looks = itertools.count()

    def chip() -> str:
        if next(looks):  # the page as it is first, then reloaded before each new look
            page.reload()
        return status_chip(page).inner_text().strip()

    eventually(
        chip,
        lambda text: text.endswith(status),
        timeout=timeout,
        interval=0.2,
        what=f"the status chip to say {status!r}",
    )
    expect(status_chip(page)).to_contain_text(status)


def request_id_of(page: Page) -> str:
    match = REQUEST_ID.search(page.get_by_role("heading", level=1).inner_text())
    assert match, page.url
    return match.group(0)


def claim_and_decide(api: Any, request_id: str, decision: str, comment: str | None = None) -> Any:
    """Customer Service works the review task of a request through the API."""
    tasks = api.get("/api/v1/tasks", query_string={"per_page": 200}).json["items"]
    (task,) = [t for t in tasks if t["request_id"] == request_id and t["type"] == "review"]
    assert api.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    body: dict[str, Any] = {"decision": decision}
    if comment:
        body["comment"] = comment
    answer = api.post(f"/api/v1/tasks/{task['id']}/complete", json=body)
    assert answer.status_code == 200, answer.json
    return answer.json


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


def fits_the_screen(page: Page) -> None:
    scroll_width, inner_width = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert scroll_width <= inner_width, f"page is {scroll_width}px wide on a {inner_width}px screen"


def test_enable_access_from_filing_to_slide_in(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    demo_directory.relationship("ACCT-01", "ACME-US", access_enabled=False, linked=True)
    partner = open_page()
    sign_in(partner, shoot, "pacct")
    expect(partner.get_by_text("No requests yet.")).to_be_visible()
    shoot(partner, "partner-home-empty")

    nav(partner, "New request")
    expect(partner.get_by_role("heading", level=1, name="New request")).to_be_visible()
    partner.get_by_label("Enable access").check()
    partner.get_by_label("Company").fill("ACME-US")
    partner.get_by_label("Reason").fill("Our bookkeepers start on ACME's books next week.")
    shoot(partner, "new-request-filled")
    partner.get_by_role("button", name="File request").click()
    expect(partner).to_have_url(re.compile(r"/requests/REQ-\d{6}$"))
    request_id = request_id_of(partner)
    expect(partner.get_by_role("status").first).to_contain_text(f"{request_id} is filed")
    reload_until_status(partner, "awaiting consent")
    expect(partner.locator("#expected")).to_have_text(
        re.compile("^Paused while waiting on the company admin.s consent$")
    )
    expect(partner.locator("#sla")).to_contain_text("SLA paused")
    shoot(partner, "request-awaiting-consent")

    admin = open_page()
    sign_in(admin, shoot, "iadmin")
    nav(admin, "Consent inbox")
    card = admin.get_by_role("article", name="ACCT-01 asks for access to ACME-US")
    expect(card).to_contain_text("Our bookkeepers start on ACME's books next week.")
    expect(card).to_contain_text(request_id)
    card.get_by_label("Comment").fill("Fine by us.")
    shoot(admin, "consent-inbox")
    card.get_by_role("button", name="Grant access").click()
    expect(admin.get_by_role("status")).to_have_text(
        f"You granted consent to {request_id}; Customer Service reviews it next."
    )
    expect(admin.get_by_text("Nothing waits for your consent.")).to_be_visible()
    shoot(admin, "consent-inbox-granted")

    wait_status(api_as("agent"), request_id, "awaiting_agent", timeout=15)
    agent = open_page()
    sign_in(agent, shoot, "agent")
    nav(agent, "Queue")
    row = agent.locator("#queue-results tbody tr", has_text=request_id)
    row.get_by_role("button", name=f"Claim {request_id}").click()
    expect(agent).to_have_url(re.compile(r"/queue/tasks/\d+$"))
    agent.get_by_role("button", name="Approve").click()
    expect(agent.get_by_role("status")).to_contain_text(f"You approved {request_id}; it is now")
    shoot(agent, "agent-approved")

    partner.reload()
    reload_until_status(partner, "completed")
    expect(partner.locator(".outcome")).to_have_text("Outcome: Done: access is enabled.")
    timeline = partner.get_by_role("region", name="Timeline")
    expect(timeline).to_contain_text("iadmin granted consent")
    expect(timeline).to_contain_text("Fine by us.")
    expect(timeline).to_contain_text("agent approved")
    expect(partner.get_by_role("link", name="Cancel this request…")).to_have_count(0)
    expect(partner.get_by_role("link", name=re.compile("Temporal"))).to_have_count(0)
    shoot(partner, "request-completed")

    nav(partner, "My requests")
    row = partner.get_by_role("row", name=re.compile(request_id))
    expect(row).to_contain_text("completed")
    expect(row).to_contain_text("ACME-US")
    shoot(partner, "partner-home")

    nav(partner, "Slide-in check")
    expect(partner.get_by_label("Console")).to_have_value("ACCT-01")
    partner.get_by_label("Company").fill("ACME-US")
    partner.get_by_role("button", name="Check").click()
    expect(
        partner.get_by_role("heading", name="ACCT-01 users can slide in to ACME-US")
    ).to_be_visible()
    expect(partner.get_by_text("✓ Access enabled")).to_be_visible()
    expect(partner.get_by_text("✓ Linked")).to_be_visible()
    shoot(partner, "slide-in-ok")


def test_request_info_answered_on_the_request_page(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    partner = open_page()
    sign_in(partner, shoot, "pacct")
    nav(partner, "Relationships")  # the directory links each relationship to its check
    partner.get_by_role("link", name="✗ needs enable access and establish link").click()
    expect(partner).to_have_url(re.compile(r"/slide-in\?console=ACCT-01&instance=GAMMA$"))
    expect(
        partner.get_by_role("heading", name="ACCT-01 users cannot slide in to GAMMA yet")
    ).to_be_visible()
    expect(partner.get_by_label("Reason (you can edit it)")).to_have_count(2)
    shoot(partner, "slide-in-missing-both")
    reason = partner.locator("#reason-establish_link")
    expect(reason).to_have_value(re.compile("please establish link"))
    reason.fill("We keep GAMMA's books from May; please link our console.")
    partner.get_by_role("button", name="Request: establish link").click()
    expect(partner).to_have_url(re.compile(r"/requests/REQ-\d{6}$"))
    request_id = request_id_of(partner)
    expect(partner.get_by_role("region", name="Summary")).to_contain_text("from May")

    agent_api = api_as("agent")
    wait_status(agent_api, request_id, "awaiting_agent", timeout=15)
    asked = claim_and_decide(agent_api, request_id, "request_info", "Which office needs access?")
    assert asked["status"] == "awaiting_requester"

    reload_until_status(partner, "awaiting requester")
    asks = partner.get_by_role("region", name="Customer Service asks")
    expect(asks).to_contain_text("Which office needs access?")
    expect(partner.locator("#expected")).to_have_text(
        re.compile("^Paused while waiting on the requester.s answer$")
    )
    shoot(partner, "info-requested")
    asks.get_by_role("button", name="Send answer").click()
    expect(asks.locator(".field-error")).to_have_text("Write your answer.")
    expect(asks.get_by_label("Your answer")).to_have_attribute("aria-invalid", "true")
    shoot(partner, "answer-empty")
    asks.get_by_label("Your answer").fill("The Paris office.")
    asks.get_by_role("button", name="Send answer").click()
    expect(partner.get_by_role("status").first).to_have_text(
        "Your answer is sent; the request is back with Customer Service."
    )
    expect(status_chip(partner)).to_contain_text("in review")
    expect(partner.get_by_role("region", name="Customer Service asks")).to_have_count(0)
    expect(partner.get_by_role("region", name="Timeline")).to_contain_text("The Paris office.")
    expect(partner.get_by_label("Internal note")).to_have_count(0)
    shoot(partner, "answered")

    agent = open_page()
    sign_in(agent, shoot, "agent")
    agent.goto(f"/requests/{request_id}")
    temporal = agent.get_by_role("link", name=re.compile("Workflow in Temporal Web UI"))
    expect(temporal).to_have_attribute(
        "href",
        f"http://127.0.0.1:8233/namespaces/default/workflows/linkdesk-request-{request_id}",
    )
    agent.get_by_label("Add a comment").fill("Checked the engagement letter.")
    agent.get_by_label("Internal note").check()
    agent.get_by_role("button", name="Add comment").click()
    expect(agent.get_by_role("status").first).to_have_text("Your internal note is added.")
    note = agent.locator(".timeline-entry.internal")
    expect(note).to_contain_text("Checked the engagement letter.")
    expect(note).to_contain_text("Customer Service only")
    shoot(agent, "agent-request-page")

    partner.get_by_label("Add a comment").fill("Thanks, we are ready when you are.")
    partner.get_by_role("button", name="Add comment").click()
    timeline = partner.get_by_role("region", name="Timeline")
    expect(timeline).to_contain_text("pacct commented")
    expect(timeline).not_to_contain_text("engagement letter")
    shoot(partner, "partner-commented")

    partner.goto("/slide-in?console=ACCT-01&instance=GAMMA")
    establish = partner.locator(".fix", has_text="Establish link")
    expect(establish).to_contain_text(f"Already requested: {request_id}")
    expect(establish.get_by_role("button")).to_have_count(0)
    expect(partner.get_by_role("button", name="Request: enable access")).to_be_visible()
    shoot(partner, "slide-in-one-open")


def test_cancel_asks_for_confirmation_and_a_reason(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    page = open_page(viewport=PHONE)
    sign_in(page, shoot, "pacct")
    page.goto("/requests/new?kind=establish_link&instance=BETA")
    expect(page.get_by_label("Establish link")).to_be_checked()
    page.get_by_label("Reason").fill("Link us to BETA, please.")
    page.get_by_role("button", name="File request").click()
    request_id = request_id_of(page)
    reload_until_status(page, "awaiting agent")
    expect(page.locator("#expected")).to_have_text(
        re.compile(r"^By \d{4}-\d\d-\d\d \d\d:\d\d UTC$")
    )
    fits_the_screen(page)
    shoot(page, "request-open")

    page.get_by_role("link", name="Cancel this request…").click()
    expect(page.get_by_role("heading", level=1, name=f"Cancel {request_id}?")).to_be_visible()
    shoot(page, "confirm")
    page.get_by_role("button", name=f"Yes, cancel {request_id}").click()
    expect(page.locator(".field-error")).to_have_text(
        "Say why you cancel; Customer Service reads it."
    )
    expect(page.get_by_label("Why do you cancel?")).to_have_attribute("aria-invalid", "true")
    fits_the_screen(page)
    shoot(page, "confirm-without-reason")
    page.get_by_role("link", name="No, keep it").click()
    expect(status_chip(page)).to_contain_text("awaiting agent")

    page.get_by_role("link", name="Cancel this request…").click()
    page.get_by_label("Why do you cancel?").fill("Filed for the wrong company.")
    page.get_by_role("button", name=f"Yes, cancel {request_id}").click()
    expect(page).to_have_url(re.compile(rf"/requests/{request_id}$"))
    expect(page.get_by_role("status").first).to_have_text(f"{request_id} is cancelled.")
    expect(status_chip(page)).to_contain_text("cancelled")
    expect(page.locator(".outcome")).to_contain_text(
        "Cancelled by pacct: Filed for the wrong company."
    )
    expect(page.get_by_role("link", name="Cancel this request…")).to_have_count(0)
    shoot(page, "cancelled")

    page.goto(f"/requests/{request_id}/cancel")
    expect(page.get_by_text("It can no longer be cancelled.")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Yes, cancel"))).to_have_count(0)


def test_new_request_errors_duplicates_and_nothing_to_do(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    page = open_page(viewport=PHONE)
    sign_in(page, shoot, "pacct")
    nav(page, "New request")
    page.get_by_role("button", name="File request").click()
    shoot(page, "empty")
    expect(page.locator("#kind-error")).to_have_text("Choose one.")
    expect(page.locator("#instance-error")).to_have_text("Give the company ID, e.g. ACME-US.")
    expect(page.locator("#reason-error")).to_have_text(
        "Say why this is needed; Customer Service reads it."
    )

    page.get_by_label("Establish link").check()
    page.get_by_label("Company").fill("NOPE-42")
    page.get_by_label("Reason").fill("A reason worth keeping.")
    page.get_by_role("button", name="File request").click()
    company = page.get_by_label("Company")
    expect(page.locator("#instance-error")).to_have_text("No instance 'NOPE-42' that you can see.")
    expect(company).to_have_value("NOPE-42")
    expect(company).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Establish link")).to_be_checked()
    expect(page.get_by_label("Reason")).to_have_value("A reason worth keeping.")
    fits_the_screen(page)
    shoot(page, "unknown-company")

    company.fill("BETA")
    page.get_by_role("button", name="File request").click()
    first_id = request_id_of(page)

    nav(page, "New request")
    page.get_by_label("Establish link").check()
    page.get_by_label("Company").fill("beta")
    page.get_by_label("Reason").fill("Asking twice by mistake.")
    page.get_by_role("button", name="File request").click()
    expect(page.get_by_role("alert")).to_contain_text(f"Already requested. {first_id} already asks")
    expect(page.get_by_label("Reason")).to_have_value("Asking twice by mistake.")
    shoot(page, "duplicate")
    page.get_by_role("link", name=f"Open {first_id}").click()
    expect(page).to_have_url(re.compile(rf"/requests/{first_id}$"))

    nav(page, "New request")
    page.get_by_label("Enable access").check()
    page.get_by_label("Company").fill("BETA")
    page.get_by_label("Reason").fill("Let us in.")
    page.get_by_role("button", name="File request").click()
    explained = page.get_by_role("status").filter(has_text="Nothing to request.")
    expect(explained).to_contain_text(
        "No request needed: for ACCT-01 and BETA, access is already enabled."
    )
    fits_the_screen(page)
    shoot(page, "nothing-to-do")
    explained.get_by_role("link", name="See the slide-in check for ACCT-01 and BETA").click()
    expect(page.get_by_text("✓ Access enabled")).to_be_visible()

    nav(page, "My requests")
    expect(page.get_by_text("1 request", exact=True)).to_be_visible()
    page.get_by_label("Search").fill(first_id)
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("row", name=re.compile(first_id))).to_be_visible()
    fits_the_screen(page)
    shoot(page, "home-search")


def test_other_consoles_request_is_not_found(
    page: Page, shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    filed = api_as("pacct").post(
        "/api/v1/requests",
        json={
            "kind": "establish_link",
            "console_id": "ACCT-01",
            "instance_id": "BETA",
            "reason": "ours",
        },
    )
    request_id = filed.json["id"]
    sign_in(page, shoot, "pvar")
    expect(page.get_by_text("No requests yet.")).to_be_visible()
    response = page.goto(f"/requests/{request_id}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1, name="Not found")).to_be_visible()
    expect(page.get_by_text(f"No request {request_id}.")).to_be_visible()
    expect(page.get_by_text("BETA")).to_have_count(0)
    shoot(page, "not-found")
    response = page.goto(f"/requests/{request_id}/cancel")
    assert response is not None and response.status == 404


def test_instance_admin_asks_to_dissociate_a_firm(
    page: Page, shoot: Shoot, demo_directory: Factory
) -> None:
    sign_in(page, shoot, "iadmin")
    nav(page, "Requests")
    page.get_by_role("link", name="Ask to dissociate a firm").click()
    expect(page.get_by_role("heading", level=1, name="Ask to dissociate a firm")).to_be_visible()
    page.get_by_label("Console").fill("VAR-01")
    page.get_by_label("Company").fill("DELTA")
    page.get_by_label("Reason").fill("VAR-01 no longer implements DELTA.")
    shoot(page, "dissociate-form")
    page.get_by_role("button", name="File request").click()
    request_id = request_id_of(page)
    reload_until_status(page, "awaiting agent")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dissociate firm")
    shoot(page, "dissociate-filed")
    nav(page, "Requests")
    expect(page.get_by_role("row", name=re.compile(request_id))).to_contain_text("VAR-01")
    shoot(page, "requests")


def test_consent_decided_in_another_tab_is_explained(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    demo_directory.relationship("ACCT-01", "ACME-US", access_enabled=False, linked=True)
    filed = api_as("pacct").post(
        "/api/v1/requests",
        json={
            "kind": "enable_access",
            "console_id": "ACCT-01",
            "instance_id": "ACME-US",
            "reason": "Year-end close.",
        },
    )
    request_id = filed.json["id"]
    admin_api = api_as("iadmin")
    wait_status(admin_api, request_id, "awaiting_consent", timeout=15)
    page = open_page()
    sign_in(page, shoot, "iadmin")
    nav(page, "Consent inbox")
    card = page.get_by_role("article", name="ACCT-01 asks for access to ACME-US")
    card.get_by_label("Comment").fill("Granting late")

    (task,) = admin_api.get("/api/v1/tasks").json["items"]  # decided meanwhile, elsewhere
    declined = admin_api.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"decision": "decline", "comment": "No."}
    )
    assert declined.status_code == 200, declined.json

    card.get_by_role("button", name="Grant access").click()
    expect(page.get_by_role("alert")).to_have_text(f"{request_id} is rejected; nothing more to do.")
    expect(page.get_by_text("Nothing waits for your consent.")).to_be_visible()
    shoot(page, "already-decided")
    page.goto(f"/requests/{request_id}")
    expect(page.locator(".outcome")).to_have_text("Outcome: The instance admin declined: No.")


def test_a_refused_comment_is_said_beside_the_comment_form(
    client: FlaskClient, demo_directory: Factory, api_as: Any
) -> None:
    filed = api_as("pacct").post(
        "/api/v1/requests",
        json={"kind": "establish_link", "console_id": "ACCT-01", "instance_id": "BETA"}
        | {"reason": "ours"},
    )
    url = f"/requests/{filed.json['id']}"
    sign_in_with_form(client, "pacct")
    token = csrf_token(client, url)
    blank = client.post(f"{url}/comments", data={"csrf_token": token, "body": "  "})
    assert blank.status_code == 422
    assert "Write something, not only spaces." in blank.get_data(as_text=True)
    internal = client.post(
        f"{url}/comments", data={"csrf_token": token, "body": "psst", "internal": "true"}
    )
    page = internal.get_data(as_text=True)
    assert internal.status_code == 403
    assert "Internal notes are for Customer Service only." in page
    assert ">psst</textarea>" in page


@pytest.fixture
def server_without_temporal(app: Flask, make_app: Callable[..., Flask]) -> Iterator[str]:
    """The app on the test's database, configured with a Temporal address nothing answers."""
    down = make_app(
        TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        TEMPORAL_TASK_QUEUE=app.config["TEMPORAL_TASK_QUEUE"],
    )
    server = make_server("127.0.0.1", free_port(), down, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(10)
    server.server_close()


def test_filing_while_temporal_is_down_keeps_the_form(
    browser: Browser, server_without_temporal: str, shoot: Shoot, demo_directory: Factory
) -> None:
    context = browser.new_context(base_url=server_without_temporal, viewport=DESKTOP)
    context.set_default_timeout(15_000)
    try:
        page = context.new_page()
        sign_in(page, shoot, "pacct")
        nav(page, "New request")
        page.get_by_label("Establish link").check()
        page.get_by_label("Company").fill("BETA")
        page.get_by_label("Reason").fill("Please link us.")
        page.get_by_role("button", name="File request").click()
        expect(page.get_by_role("alert")).to_have_text(
            "Temporal is not reachable right now; nothing was changed. Try again shortly."
        )
        expect(page.get_by_label("Company")).to_have_value("BETA")
        expect(page.get_by_label("Reason")).to_have_value("Please link us.")
        expect(page.get_by_label("Establish link")).to_be_checked()
        shoot(page, "temporal-down")
        nav(page, "My requests")
        expect(page.get_by_text("No requests yet.")).to_be_visible()
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["laptop", "phone"])
def test_the_header_stays_tidy_for_every_role(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory, viewport: Any
) -> None:
    page = open_page(viewport=viewport)
    for username in ("pacct", "iadmin", "agent", "boss", "root"):
        sign_in(page, shoot, username)
        shoot(page, f"home-{username}")
        header = page.locator(".site-header").bounding_box()
        assert header is not None
        lines = 1 if viewport == DESKTOP else 3  # phones: brand and account, then the menu
        assert header["height"] < 30 + 32 * lines, f"{username}'s header is {header['height']}px"
        fits_the_screen(page)
        page.get_by_role("button", name="Sign out").click()
