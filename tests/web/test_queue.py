"""Customer Service pages in a real browser: the queue, the task page, notifications, outbox.

Requests are filed through the API (the partner pages have their own tests) and run in real
workflows on the test's worker; agents then work them through the pages in headless Chromium,
and every page visited is saved as a full-page screenshot under `tests/artifacts/screenshots/`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import Locator, Page, expect

from tests.conftest import PASSWORD, Factory, csrf_token, eventually, sign_in
from tests.lifecycle import file, wait_status
from tests.web.conftest import PHONE, Shoot

# The same live server, browser and screenshot fixtures as the other browser tests.

OpenPage = Callable[..., Page]
# The queue fetches itself every 10 s; give a refresh and a workflow step time to land.
REFRESH_WAIT_MS = 25_000


def sign_in_to(page: Page, username: str, path: str = "/queue") -> None:
    """Sign in through the form and land on `path`."""
    page.goto(f"/sign-in?next={quote(path, safe='/')}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def filed(api: Any, kind: str, console: str, instance: str) -> str:
    """File a request through the API and wait until it waits for an agent."""
    response = file(api, kind, console, instance)
    assert response.status_code == 201, response.json
    request_id = str(response.json["id"])
    assert wait_status(api, request_id, "awaiting_agent")["status"] == "awaiting_agent"
    return request_id


def queue_row(page: Page, request_id: str) -> Locator:
    return page.locator("#queue-results tbody tr", has_text=request_id)


def claim_from_queue(page: Page, request_id: str) -> None:
    queue_row(page, request_id).get_by_role("button", name=f"Claim {request_id}").click()
    expect(page).to_have_url(re.compile(r"/queue/tasks/\d+$"))


def request_card(page: Page) -> Locator:
    return page.get_by_role("region", name="Request")


def relationship_card(page: Page) -> Locator:
    return page.get_by_role("region", name="Current relationship")


@pytest.mark.browser
@pytest.mark.usefixtures("worker")
def test_agent_claims_and_approves_from_queue_and_task_page(
    open_page: OpenPage, shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    request_id = filed(api_as("pacct"), "establish_link", "ACCT-01", "BETA")
    page = open_page()
    sign_in_to(page, "agent")
    expect(page.get_by_role("heading", level=1, name="Queue")).to_be_visible()
    row = queue_row(page, request_id)
    for text in ("Establish link", "ACCT-01", "accountant", "BETA", "awaiting agent", "unassigned"):
        expect(row).to_contain_text(text)
    expect(row).to_contain_text(re.compile(r"SLA on track\s+due \d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    shoot(page, "queue")

    claim_from_queue(page, request_id)
    expect(page.get_by_role("status")).to_have_text(
        f"You claimed this task; {request_id} is now in review."
    )
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{request_id} · Establish link")
    expect(request_card(page)).to_contain_text("please")  # the requester's reason
    expect(relationship_card(page)).to_contain_text("✗ cannot slide in: needs establish link")
    workflow = page.get_by_role("link", name=re.compile("Open the workflow in the Temporal Web UI"))
    expect(workflow).to_have_attribute(
        "href", f"http://127.0.0.1:8233/namespaces/default/workflows/linkdesk-request-{request_id}"
    )
    shoot(page, "task-claimed")

    page.get_by_label("Comment (optional)").fill("Checked with the firm.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text(f"You approved {request_id}; it is now")
    # The change is applied in the background; the page follows it by itself.
    expect(request_card(page).locator(".status-completed")).to_have_text(
        "completed", timeout=REFRESH_WAIT_MS
    )
    expect(relationship_card(page)).to_contain_text("✓ can slide in")
    timeline = page.get_by_role("region", name="Timeline")
    expect(timeline).to_contain_text("agent approved")
    expect(timeline).to_contain_text("Checked with the firm.")
    expect(page.get_by_text("This task is finished; nothing more to do on it.")).to_be_visible()
    shoot(page, "task-completed")

    page.get_by_role("link", name="← Queue").click()
    expect(queue_row(page, request_id)).to_have_count(0)
    shoot(page, "queue-after")


@pytest.mark.browser
@pytest.mark.usefixtures("worker")
def test_reject_needs_a_reason_and_request_info_needs_a_question(
    open_page: OpenPage, shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    partner = api_as("pacct")
    to_reject = filed(partner, "establish_link", "ACCT-01", "BETA")
    to_ask = filed(partner, "establish_link", "ACCT-01", "GAMMA")
    page = open_page()
    sign_in_to(page, "agent")
    claim_from_queue(page, to_reject)

    page.get_by_role("button", name="Reject").click()
    reason = page.get_by_label("Reason for rejecting")
    message = "Give the reason for rejecting; the requester sees it."
    expect(page.locator(".field-error", has_text=message)).to_be_visible()
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_have_accessible_description(message)
    expect(request_card(page).locator(".status-in_review")).to_be_visible()
    shoot(page, "reject-without-reason")

    reason.fill("Not your client.")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_role("status")).to_have_text(
        f"You rejected {to_reject}; the requester sees your reason."
    )
    expect(request_card(page).locator(".status-rejected")).to_be_visible()
    expect(request_card(page)).to_contain_text("Rejected: Not your client.")
    expect(relationship_card(page)).to_contain_text("✗ cannot slide in: needs establish link")
    shoot(page, "rejected")

    page.get_by_role("link", name="← Queue").click()
    claim_from_queue(page, to_ask)
    page.get_by_role("button", name="Ask the requester").click()
    expect(page.get_by_label("Question for the requester")).to_have_accessible_description(
        "Write the question for the requester."
    )
    page.get_by_label("Question for the requester").fill("Which office needs the link?")
    page.get_by_role("button", name="Ask the requester").click()
    expect(page.get_by_role("status")).to_have_text(
        f"Your question went to the requester; {to_ask} is now awaiting requester."
    )
    expect(request_card(page).locator(".status-awaiting_requester")).to_be_visible()
    expect(request_card(page)).to_contain_text("SLA paused")
    expect(page.get_by_role("region", name="Timeline")).to_contain_text(
        "Which office needs the link?"
    )
    shoot(page, "info-requested")

    page.get_by_label("Note", exact=True).fill("Called the firm; they will answer today.")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_have_text("Your note is on the timeline.")
    note = page.get_by_role("region", name="Timeline").locator(".timeline-entry.internal")
    expect(note).to_contain_text("agent internal note Customer Service only")
    expect(note).to_contain_text("Called the firm; they will answer today.")
    shoot(page, "internal-note")


@pytest.mark.browser
@pytest.mark.usefixtures("worker")
def test_dissociate_needs_a_second_approver(
    open_page: OpenPage, shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    demo_directory.user("agent2", "agent")
    request_id = filed(api_as("pacct"), "dissociate_link", "ACCT-01", "ACME-US")
    first = open_page()
    sign_in_to(first, "agent")
    claim_from_queue(first, request_id)
    expect(relationship_card(first)).to_contain_text("✓ can slide in")
    first.get_by_role("button", name="Approve").click()
    expect(first.get_by_role("status")).to_have_text(
        f"You approved {request_id}; it is now awaiting second approval."
    )
    first.get_by_role("link", name="Second approval task").click()
    expect(first.get_by_text("You gave the first approval, so this step needs")).to_be_visible()
    expect(first.get_by_role("button", name="Claim this task")).to_have_count(0)
    shoot(first, "second-step-for-first-approver")

    # The first approver's queue does not offer the step they may not take.
    first.get_by_role("link", name="← Queue").click()
    expect(first.locator("#queue-results")).to_be_visible()
    expect(queue_row(first, request_id)).to_have_count(0)
    shoot(first, "first-approver-queue")

    second = open_page()
    sign_in_to(second, "agent2", "/queue?type=second_approval")
    expect(second.get_by_label("Task")).to_have_value("second_approval")
    shoot(second, "second-approval-queue")
    claim_from_queue(second, request_id)
    second.get_by_role("button", name="Give the second approval").click()
    expect(second.get_by_role("status")).to_contain_text(f"You approved {request_id}")
    expect(request_card(second).locator(".status-completed")).to_be_visible(timeout=REFRESH_WAIT_MS)
    expect(relationship_card(second)).to_contain_text(
        "✗ cannot slide in: needs enable access and establish link"
    )
    shoot(second, "second-approval-done")


@pytest.mark.browser
@pytest.mark.usefixtures("worker")
def test_two_agents_collide_on_one_task(
    open_page: OpenPage, shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    demo_directory.user("agent2", "agent")
    request_id = filed(api_as("pacct"), "establish_link", "ACCT-01", "BETA")
    one, two = open_page(), open_page()
    sign_in_to(one, "agent")
    sign_in_to(two, "agent2")
    expect(queue_row(one, request_id)).to_be_visible()
    expect(queue_row(two, request_id)).to_be_visible()

    claim_from_queue(two, request_id)
    expect(two.get_by_role("status")).to_contain_text("You claimed this task")
    shoot(two, "winner")

    queue_row(one, request_id).get_by_role("button", name=f"Claim {request_id}").click()
    alert = one.get_by_role("alert")
    expect(alert).to_contain_text("That did not go through: the task has moved on.")
    expect(alert).to_contain_text(
        re.compile(r"The task is claimed by agent2 since \d{4}-\d\d-\d\d \d\d:\d\d UTC\.")
    )
    task = one.get_by_role("region", name="Review task")
    expect(task).to_contain_text("agent2")
    expect(one.get_by_role("button", name="Approve")).to_have_count(0)
    expect(one.get_by_role("button", name="Claim this task")).to_have_count(0)
    shoot(one, "loser")


@pytest.mark.browser
@pytest.mark.usefixtures("worker")
def test_queue_refreshes_by_itself_keeping_filters_and_scroll(
    open_page: OpenPage, shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    partner = api_as("pacct")
    for number in range(1, 8):
        demo_directory.instance(f"FIRM-{number}")
        filed(partner, "establish_link", "ACCT-01", f"FIRM-{number}")
    demo_directory.instance("FIRM-8")
    page = open_page(viewport={"width": 1280, "height": 600})
    sign_in_to(page, "agent", "/queue?kind=establish_link&console_type=accountant")
    expect(page.locator("#queue-results tbody tr")).to_have_count(7)
    page.evaluate("window.notReloaded = true; window.scrollTo(0, document.body.scrollHeight)")
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 100, "the queue should be taller than the window"
    shoot(page, "before")

    new_id = filed(partner, "establish_link", "ACCT-01", "FIRM-8")
    filed(api_as("pvar"), "establish_link", "VAR-01", "OMEGA")  # filtered out: partner console
    expect(queue_row(page, new_id)).to_have_count(1, timeout=REFRESH_WAIT_MS)

    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"
    assert page.evaluate("window.scrollY") == scrolled
    expect(page).to_have_url(re.compile(r"/queue\?kind=establish_link&console_type=accountant$"))
    expect(page.get_by_label("Kind")).to_have_value("establish_link")
    expect(page.get_by_label("Console type")).to_have_value("accountant")
    expect(page.locator("#queue-results tbody tr")).to_have_count(8)
    expect(page.locator("#queue-results")).not_to_contain_text("VAR-01")
    expect(page.locator("#queue-results")).to_contain_text("8 tasks match these filters")
    shoot(page, "after")


@pytest.mark.browser
@pytest.mark.usefixtures("worker")
def test_queue_waits_while_the_filter_form_is_in_use(
    open_page: OpenPage, demo_directory: Factory, api_as: Any
) -> None:
    partner = api_as("pacct")
    filed(partner, "establish_link", "ACCT-01", "BETA")
    page = open_page()
    sign_in_to(page, "agent")
    expect(page.locator("#queue-results tbody tr")).to_have_count(1)
    page.get_by_label("Kind").focus()
    later = filed(partner, "establish_link", "ACCT-01", "GAMMA")
    page.wait_for_timeout(12_000)  # longer than a refresh period
    expect(queue_row(page, later)).to_have_count(0)
    page.get_by_role("heading", level=1).click()  # leave the form
    expect(queue_row(page, later)).to_have_count(1, timeout=REFRESH_WAIT_MS)


@pytest.mark.browser
@pytest.mark.usefixtures("worker")
def test_notifications_are_listed_and_marked_read_and_outbox_lists_emails(
    open_page: OpenPage, shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    first = filed(partner, "establish_link", "ACCT-01", "BETA")
    second = filed(partner, "establish_link", "ACCT-01", "GAMMA")
    eventually(
        lambda: agent.get("/api/v1/notifications").json["unread"],
        lambda unread: unread >= 2,
        what="the agent's two notifications",
    )

    page = open_page()
    sign_in_to(page, "agent", "/notifications")
    expect(page.get_by_role("heading", level=1, name="Notifications")).to_be_visible()
    expect(page.get_by_text("You have 2 unread notifications.")).to_be_visible()
    badge = page.get_by_role("banner").get_by_role("link", name=re.compile("Notifications"))
    expect(badge).to_contain_text("2 unread")
    items = page.get_by_role("list", name="Notifications").get_by_role("listitem")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text(f"New {second}: A new request is waiting for review.")
    expect(items.nth(1)).to_contain_text(f"New {first}: A new request is waiting for review.")
    shoot(page, "unread")

    items.nth(1).get_by_role("button", name="Mark as read").click()
    expect(page.get_by_text("You have 1 unread notification.")).to_be_visible()
    expect(page.locator(".notification.unread")).to_have_count(1)
    expect(items.nth(1)).not_to_contain_text("New")
    page.get_by_role("button", name="Mark all as read").click()
    expect(page.get_by_role("status")).to_have_text("Marked 1 notification as read.")
    expect(page.get_by_text("You have read everything.")).to_be_visible()
    expect(badge).not_to_contain_text("unread")
    expect(page.locator(".notification.unread")).to_have_count(0)
    shoot(page, "all-read")
    assert agent.get("/api/v1/notifications").json["unread"] == 0

    page.goto("/outbox")
    expect(page.get_by_role("heading", level=1, name="Not found")).to_be_visible()
    shoot(page, "outbox-not-for-agents")

    boss = open_page()
    sign_in_to(boss, "boss", "/outbox")
    expect(boss.get_by_role("heading", level=1, name="Email outbox")).to_be_visible()
    expect(boss.get_by_text("SMTP is not configured")).to_be_visible()
    row = boss.locator("tbody tr", has_text=f"[LinkDesk] {first}: Status is now awaiting agent.")
    expect(row).to_contain_text("pacct@example.test")
    expect(row).to_contain_text("Open LinkDesk to see the request.")
    expect(row).to_contain_text("not sent")
    shoot(boss, "outbox")


@pytest.mark.browser
@pytest.mark.usefixtures("worker")
def test_queue_and_task_page_fit_a_phone_screen(
    open_page: OpenPage, shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    request_id = filed(api_as("pacct"), "establish_link", "ACCT-01", "BETA")
    page = open_page(viewport=PHONE)
    sign_in_to(page, "agent")
    shoot(page, "queue")
    claim_from_queue(page, request_id)
    shoot(page, "task")
    for _ in range(2):
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner_width, f"{scroll_width}px wide on a {inner_width}px screen"
        page.goto("/queue")


@pytest.mark.browser
@pytest.mark.usefixtures("worker")
def test_manager_reassigns_a_task_to_an_agent(
    open_page: OpenPage, shoot: Shoot, demo_directory: Factory, api_as: Any
) -> None:
    request_id = filed(api_as("pacct"), "establish_link", "ACCT-01", "BETA")
    page = open_page()
    sign_in_to(page, "boss")
    queue_row(page, request_id).get_by_role("link", name=request_id).click()
    page.get_by_role("button", name="Reassign").click()
    expect(page.get_by_label("Give the task to")).to_have_accessible_description(
        "Pick the agent or manager to give the task to."
    )
    page.get_by_label("Give the task to").select_option("agent")
    page.get_by_role("button", name="Reassign").click()
    expect(page.get_by_role("status")).to_have_text(
        f"The task of {request_id} now belongs to agent."
    )
    expect(page.get_by_role("region", name="Review task")).to_contain_text("agent")
    expect(page.get_by_role("button", name="Release agent's claim")).to_be_visible()
    shoot(page, "reassigned")


@pytest.mark.browser
def test_an_expired_form_explains_and_leads_back(
    open_page: OpenPage, shoot: Shoot, demo_directory: Factory
) -> None:
    page = open_page()
    sign_in_to(page, "agent", "/notifications")
    page.locator("header form input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This form has expired")
    expect(page.get_by_text("Nothing was saved.")).to_be_visible()
    shoot(page, "csrf-failed")
    page.get_by_role("link", name="← Back to the form").click()
    expect(page).to_have_url(re.compile(r"/notifications$"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()  # still signed in

    page.goto("/queue/tasks/424242")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.get_by_text("No task 424242.")).to_be_visible()
    shoot(page, "task-not-found")


# Without a browser: who may open these pages, and the error pages.


@pytest.mark.parametrize("username", ["pacct", "iadmin", "root"])
def test_queue_pages_are_not_found_for_other_roles(
    client: FlaskClient, demo_directory: Factory, username: str
) -> None:
    sign_in(client, username)
    for url in ("/queue", "/queue/tasks/1"):
        response = client.get(url)
        assert response.status_code == 404
        assert "Not found" in response.get_data(as_text=True)


def test_outbox_is_for_managers_and_admins_only(
    client: FlaskClient, demo_directory: Factory
) -> None:
    sign_in(client, "agent")
    assert client.get("/outbox").status_code == 404
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/notifications")})
    sign_in(client, "root")
    page = client.get("/outbox")
    assert page.status_code == 200
    assert "No emails yet." in page.get_data(as_text=True)


def test_a_form_without_its_csrf_token_explains_and_offers_a_way_back(
    client: FlaskClient, demo_directory: Factory
) -> None:
    sign_in(client, "agent")
    response = client.post(
        "/notifications/read", headers={"Referer": "http://localhost/notifications"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This form has expired" in page
    assert "Nothing was saved." in page
    assert 'href="http://localhost/notifications"' in page


def test_unknown_page_and_unknown_task_are_plain_not_found_pages(
    client: FlaskClient, demo_directory: Factory
) -> None:
    sign_in(client, "agent")
    missing = client.get("/queue/tasks/999999")
    assert missing.status_code == 404
    assert "No task 999999." in missing.get_data(as_text=True)
    assert "Back to LinkDesk" in client.get("/no/such/page").get_data(as_text=True)


@pytest.mark.usefixtures("worker")
def test_console_type_filters_the_queue_in_the_api(demo_directory: Factory, api_as: Any) -> None:
    ours = filed(api_as("pacct"), "establish_link", "ACCT-01", "BETA")
    theirs = filed(api_as("pvar"), "establish_link", "VAR-01", "OMEGA")
    agent = api_as("agent")

    def ids(console_type: str) -> list[str]:
        query = {"console_type": console_type}
        return [
            t["request_id"] for t in agent.get("/api/v1/tasks", query_string=query).json["items"]
        ]

    assert ids("accountant") == [ours]
    assert ids("partner") == [theirs]
    assert ids("management") == []
    assert agent.get("/api/v1/tasks", query_string={"console_type": "x"}).status_code == 422


@pytest.mark.usefixtures("worker")
def test_refused_task_actions_are_said_on_the_task_page(
    client: FlaskClient, demo_directory: Factory, api_as: Any
) -> None:
    request_id = filed(api_as("pacct"), "establish_link", "ACCT-01", "BETA")
    boss = api_as("boss")
    (task,) = [t for t in boss.get("/api/v1/tasks").json["items"] if t["request_id"] == request_id]
    assert boss.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    sign_in(client, "agent")
    url = f"/queue/tasks/{task['id']}"
    token = csrf_token(client, url)

    def post(action: str, **form: str) -> tuple[int, str]:
        response = client.post(f"{url}/{action}", data={"csrf_token": token, **form})
        return response.status_code, response.get_data(as_text=True)

    for action in ("claim", "release"):
        status, page = post(action)
        assert status == 409, action
        assert "That did not go through: the task has moved on." in page
        assert "The task is claimed by boss" in page
        assert request_id in page
    status, page = post("reassign", assignee="agent")
    assert status == 403
    assert "You cannot do that on this task." in page
    assert "Only a manager can reassign tasks." in page
    status, page = post("reassign", assignee="nobody")
    assert status == 422
    assert "That did not go through." in page
    assert "No user &#39;nobody&#39;." in page
    assert boss.post(f"/api/v1/tasks/{task['id']}/release").status_code == 200
    assert post("claim")[0] == 302
    status, page = post("complete", decision="reject", reason="  ")
    assert status == 422
    assert "Give the reason for rejecting; the requester sees it." in page
    assert "That did not go through" not in page
    status, page = post("notes", body="  ", internal="true")
    assert status == 422
    assert "Write something, not only spaces." in page
    assert "That did not go through" not in page


@pytest.mark.usefixtures("worker")
def test_a_decision_submitted_twice_is_made_once_and_answered_alike(
    client: FlaskClient, demo_directory: Factory, api_as: Any
) -> None:
    """Each action form carries a fresh Idempotency-Key: a double click or a browser's retry
    sends it again and gets the first answer, not "the task is already done"."""
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = filed(partner, "establish_link", "ACCT-01", "BETA")
    (task,) = agent.get("/api/v1/tasks").json["items"]
    assert agent.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    sign_in(client, "agent")
    page = client.get(f"/queue/tasks/{task['id']}").get_data(as_text=True)
    approve = re.search(
        r'<form method="post" action="/queue/tasks/\d+/complete" class="decision '
        r'decision-approve".*?</form>',
        page,
        re.S,
    )
    assert approve, page
    fields = dict(re.findall(r'name="(csrf_token|idempotency_key)" value="([^"]+)"', approve[0]))
    form = {**fields, "decision": "approve"}
    first = client.post(f"/queue/tasks/{task['id']}/complete", data=form)
    second = client.post(f"/queue/tasks/{task['id']}/complete", data=form)
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    timeline = partner.get(f"/api/v1/requests/{request_id}").json["timeline"]
    assert [event["action"] for event in timeline].count("approve") == 1
