"""The administrator's user pages (service/web/admin_users.py) and password links: in a real
browser, an admin creates a partner and sends a link that the partner opens from the e-mail;
through the test client, who may see the pages, refused edits and the link's rules."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from service.extensions import db
from service.models import AuditEvent, OutboxEmail, PasswordLink, User, UserSession, utcnow
from tests.conftest import Factory, Inbox, api_token, csrf_token, sign_in
from tests.web.conftest import PHONE, Shoot, fits_width
from tests.web.conftest import sign_in as browser_sign_in

NEW_PASSWORD = "partner's own passphrase"
LINK = re.compile(r"http://[^\s]+/password/[A-Za-z0-9_-]+")


def outbox_link(app: Flask, recipient: str) -> str:
    """The password link of the newest e-mail to the recipient, as the person reads it."""
    with app.app_context():
        email = (
            db.session.execute(
                select(OutboxEmail)
                .where(OutboxEmail.recipient == recipient)
                .order_by(OutboxEmail.id.desc())
            )
            .scalars()
            .first()
        )
        assert email is not None, f"no e-mail to {recipient}"
        found = LINK.search(email.body)
        assert found, email.body
        return found.group(0)


@pytest.mark.browser
def test_admin_creates_a_partner_who_sets_a_password_from_the_email(
    app: Flask, open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    admin = open_page()
    browser_sign_in(admin, shoot, "root")
    admin.goto("/admin/users")
    expect(admin.get_by_role("heading", level=1, name="Users")).to_be_visible()
    shoot(admin, "list")
    admin.get_by_role("link", name="New user").click()
    admin.get_by_label("Username").fill("newpartner")
    admin.get_by_label("Name", exact=True).fill("Nora Partner")
    admin.get_by_label("E-mail address").fill("nora@example.test")
    admin.get_by_label("Role").select_option("partner")
    admin.get_by_label(re.compile("^Console")).fill("VAR-01")
    shoot(admin, "new-user")
    admin.get_by_role("button", name="Create user").click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text("newpartner")
    expect(admin.get_by_role("status")).to_contain_text("newpartner was created")
    admin.get_by_role("button", name="Send password link").click()
    expect(admin.get_by_role("status")).to_contain_text("nora@example.test")
    shoot(admin, "link-sent")

    admin.goto("/admin/users?q=nora")
    expect(admin.locator("table tbody tr")).to_have_count(1)
    expect(admin.locator("table tbody tr")).to_contain_text("VAR-01")

    partner = open_page(viewport=PHONE)
    partner.goto(outbox_link(app, "nora@example.test"))
    expect(partner.get_by_role("heading", name="Choose your password")).to_be_visible()
    partner.get_by_label("New password", exact=True).fill("short")
    partner.get_by_label("New password again").fill("short")
    partner.get_by_role("button", name="Set the password").click()
    expect(partner.locator("#password-error")).to_contain_text("At least 12 characters")
    shoot(partner, "phone-choose-refused")
    fits_width(partner)
    partner.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    partner.get_by_label("New password again").fill(NEW_PASSWORD)
    partner.get_by_role("button", name="Set the password").click()
    expect(partner.get_by_role("status")).to_have_text("Your password is set. Sign in with it.")
    partner.get_by_label("Username").fill("newpartner")
    partner.get_by_label("Password").fill(NEW_PASSWORD)
    partner.get_by_role("button", name="Sign in").click()
    expect(partner).to_have_url(re.compile(r"/$"))
    shoot(partner, "phone-partner-home")


@pytest.mark.browser
def test_user_pages_fit_a_phone_and_a_desktop(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    for name, page in (("desktop", open_page()), ("phone", open_page(viewport=PHONE))):
        browser_sign_in(page, shoot, "root")
        page.goto("/admin/users")
        fits_width(page)
        shoot(page, f"{name}-list")
        page.get_by_role("link", name="iadmin").click()
        expect(page.get_by_label("Instances")).to_have_value("ACME-US DELTA")
        fits_width(page)
        shoot(page, f"{name}-user")
        page.goto("/admin/users/new")
        fits_width(page)
        shoot(page, f"{name}-new")
        page.goto("/forgot-password")
        fits_width(page)
        shoot(page, f"{name}-forgot")


@pytest.mark.browser
def test_forgot_password_link_on_the_sign_in_page(
    app: Flask, open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    page = open_page()
    page.goto("/sign-in")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("E-mail address").fill("boss@example.test")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account has the address")
    shoot(page, "asked")
    page.goto(outbox_link(app, "boss@example.test"))
    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()


# Through the test client ---------------------------------------------------------------------


def _post(client: FlaskClient, url: str, data: dict[str, Any], page: str) -> Any:
    return client.post(url, data={**data, "csrf_token": csrf_token(client, page)})


@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "boss"])
def test_user_pages_do_not_exist_for_other_roles(
    client: FlaskClient, demo_directory: Factory, username: str
) -> None:
    sign_in(client, username)
    root_id = demo_directory.get_user("root").id
    for url in ("/admin/users", "/admin/users/new", f"/admin/users/{root_id}"):
        assert client.get(url).status_code == 404
    token = csrf_token(client, "/settings")
    response = client.post(f"/admin/users/{root_id}/deactivate", data={"csrf_token": token})
    assert response.status_code == 404
    assert demo_directory.get_user("root").active


def test_anonymous_is_sent_to_sign_in(client: FlaskClient) -> None:
    response = client.get("/admin/users")
    assert response.status_code == 302 and "/sign-in" in response.headers["Location"]


def test_an_edit_of_an_older_version_shows_the_current_values(
    app: Flask, client: FlaskClient, demo_directory: Factory
) -> None:
    sign_in(client, "root")
    user = demo_directory.get_user("agent")
    url = f"/admin/users/{user.id}"
    form = {"display_name": "First", "role": "agent", "version": user.version}
    assert _post(client, url, form, url).status_code == 302
    stale = _post(client, url, {**form, "display_name": "Second"}, url)
    assert stale.status_code == 409
    page = stale.get_data(as_text=True)
    assert "changed by someone else" in page and "now <strong>First</strong>" in page
    assert "you typed Second" in page
    assert demo_directory.get_user("agent").display_name == "First"


def test_a_refused_form_shows_its_messages(client: FlaskClient, demo_directory: Factory) -> None:
    sign_in(client, "root")
    response = _post(
        client,
        "/admin/users/new",
        {"username": "x y", "display_name": "X", "role": "partner"},
        "/admin/users/new",
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert 'id="console-error"' in page and "A partner works from a console." in page
    assert 'value="x y"' in page  # what was typed stays


def test_deactivating_ends_sessions_and_admin_may_not_deactivate_self(
    app: Flask, client: FlaskClient, demo_directory: Factory
) -> None:
    other = app.test_client()
    sign_in(other, "agent")
    assert other.get("/settings").status_code == 200
    sign_in(client, "root")
    agent = demo_directory.get_user("agent")
    url = f"/admin/users/{agent.id}"
    assert _post(client, f"{url}/deactivate", {"reason": "left"}, url).status_code == 302
    assert other.get("/settings").status_code == 302  # signed out
    root = demo_directory.get_user("root")
    own = f"/admin/users/{root.id}"
    refused = _post(client, f"{own}/deactivate", {}, own)
    assert refused.status_code == 409 and "yourself" in refused.get_data(as_text=True)


def _send_link(client: FlaskClient, user_id: int) -> Any:
    url = f"/admin/users/{user_id}"
    return _post(client, f"{url}/password-link", {}, url)


def test_a_link_works_once_ends_sessions_and_older_links_stop(
    app: Flask, client: FlaskClient, demo_directory: Factory
) -> None:
    partner = app.test_client()
    sign_in(partner, "pacct")
    sign_in(client, "root")
    pacct = demo_directory.get_user("pacct")
    assert _send_link(client, pacct.id).status_code == 302
    first = outbox_link(app, "pacct@example.test")
    assert _send_link(client, pacct.id).status_code == 302
    second = outbox_link(app, "pacct@example.test")
    assert client.get(first).status_code == 404  # replaced by the newer one
    path = second.split("127.0.0.1", 1)[-1].split("localhost", 1)[-1]
    data = {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    reader = app.test_client()
    assert _post(reader, path, data, path).status_code == 302
    assert reader.get(path).status_code == 404  # used
    assert partner.get("/settings").status_code == 302  # signed out
    assert sign_in(reader, "pacct", NEW_PASSWORD).status_code == 302
    with app.app_context():
        stored = db.session.execute(select(PasswordLink.digest)).scalars().all()
        secret = path.rsplit("/", 1)[-1]
        assert secret not in stored and len(stored) == 2  # digests only
        ended = (
            db.session.execute(
                select(UserSession.end_reason).where(UserSession.end_reason.is_not(None))
            )
            .scalars()
            .all()
        )
        assert "password_link" in ended


def test_an_expired_link_is_refused(
    app: Flask, client: FlaskClient, demo_directory: Factory
) -> None:
    sign_in(client, "root")
    _send_link(client, demo_directory.get_user("boss").id)
    link = outbox_link(app, "boss@example.test")
    with app.app_context():
        db.session.execute(update(PasswordLink).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    path = "/password/" + link.rsplit("/", 1)[-1]
    assert app.test_client().get(path).status_code == 404


def test_forgot_password_gives_no_hint_and_is_throttled(
    app: Flask, client: FlaskClient, demo_directory: Factory
) -> None:
    known = _post(client, "/forgot-password", {"email": "boss@example.test"}, "/forgot-password")
    unknown = _post(
        client, "/forgot-password", {"email": "nobody@example.test"}, "/forgot-password"
    )
    assert known.status_code == unknown.status_code == 200
    strip = lambda r: r.get_data(as_text=True).replace("boss@", "X@").replace("nobody@", "X@")  # noqa: E731
    assert re.sub(r'value="[^"]+"', "", strip(known)) == re.sub(
        r'value="[^"]+"', "", strip(unknown)
    )
    for _ in range(2):
        _post(client, "/forgot-password", {"email": "nobody@example.test"}, "/forgot-password")
    throttled = _post(
        client, "/forgot-password", {"email": "nobody@example.test"}, "/forgot-password"
    )
    assert throttled.status_code == 429
    assert 3000 < int(throttled.headers["Retry-After"]) <= 3600
    with app.app_context():
        sent = db.session.execute(select(OutboxEmail.recipient)).scalars().all()
        assert sent == ["boss@example.test"]
        asked = (
            db.session.execute(
                select(AuditEvent).where(AuditEvent.action == "password_link.requested")
            )
            .scalars()
            .all()
        )
        assert len(asked) == 4  # the throttled one is not counted


def test_the_link_goes_through_smtp_under_the_public_url(
    make_app: Any, demo_directory: Factory, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    mailer = make_app(
        SMTP_HOST="127.0.0.1", SMTP_PORT=port, PUBLIC_URL="https://desk.example.test/"
    )
    client = mailer.test_client()
    sign_in(client, "root")
    response = _send_link(client, demo_directory.get_user("boss").id)
    assert response.status_code == 302
    [message] = inbox.messages
    assert message["To"] == "boss@example.test"
    body = message.get_payload()
    assert re.search(r"https://desk\.example\.test/password/[A-Za-z0-9_-]{40,}", body), body
    with mailer.app_context():
        assert db.session.execute(select(OutboxEmail.sent_at)).scalar_one() is not None
        user = db.session.execute(select(User).filter_by(username="boss")).scalar_one()
        assert user.active


def test_admin_sees_and_revokes_a_users_token(
    app: Flask, client: FlaskClient, demo_directory: Factory
) -> None:
    token = api_token(app.test_client(), "agent")
    headers = {"Authorization": f"Bearer {token}"}
    sign_in(client, "root")
    agent = demo_directory.get_user("agent")
    url = f"/admin/users/{agent.id}"
    page = client.get(url).get_data(as_text=True)
    assert token[:10] in page and token not in page  # the prefix, never the secret
    token_id = re.search(r"/tokens/(\d+)/revoke", page)
    assert token_id
    response = _post(client, f"{url}/tokens/{token_id.group(1)}/revoke", {}, url)
    assert response.status_code == 302
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 401
    with app.app_context():
        event = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "token.revoked")
        ).scalar_one()
        assert (event.actor, event.object_ref) == ("root", "agent")
