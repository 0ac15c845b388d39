"""Sessions recorded on the server: signing out, everywhere or one browser at a time, password
changes, the idle and absolute limits, and a fresh session (and CSRF secret) at every sign-in."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from service.auth import SESSION_KEY
from service.extensions import db
from service.models import AuditEvent, UserSession, utcnow
from tests.conftest import PASSWORD, Factory, api_token, csrf_token, sign_in

NEW_PASSWORD = "a brand new passphrase"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def alice(make: Factory) -> str:
    make.user("alice", "agent")
    return "alice"


def browser(app: Flask, address: str = "127.0.0.1", agent: str = FIREFOX) -> FlaskClient:
    """A test client that comes from its own address with its own user agent."""
    client = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": address, "HTTP_USER_AGENT": agent})
    return client


def signed_in(app: Flask, username: str, **kwargs: Any) -> FlaskClient:
    client = browser(app, **kwargs)
    response = sign_in(client, username)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def cookie_of(app: Flask, client: FlaskClient) -> str:
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    return cookie.value


def sessions_of(app: Flask, username: str) -> list[UserSession]:
    with app.app_context():
        rows = db.session.execute(
            select(UserSession)
            .join(UserSession.user)
            .where(UserSession.user.has(username=username))
        ).scalars()
        found = list(rows)
        db.session.expunge_all()
        return found


def post(client: FlaskClient, url: str, **data: str) -> Any:
    return client.post(url, data={"csrf_token": csrf_token(client, "/settings"), **data})


def sent_to_sign_in(client: FlaskClient, url: str = "/settings") -> str:
    """Open a page that needs a session, check it sends to the sign-in page, and return what
    that page then says."""
    response = client.get(url)
    assert response.status_code == 302, url
    assert response.headers["Location"].startswith("/sign-in")
    return client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_copied_cookie_is_refused_once_its_browser_signed_out(app: Flask, alice: str) -> None:
    first = signed_in(app, alice)
    copy = browser(app, address="198.51.100.20")
    copy.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie_of(app, first))
    assert copy.get("/").status_code == 200
    assert copy.get("/api/v1/tokens").status_code == 200

    assert post(first, "/sign-out").status_code == 302
    assert "This session was signed out." in sent_to_sign_in(copy, "/")
    # The copy is refused by the API too, however often it comes back.
    copy.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie_of(app, first))
    assert copy.get("/api/v1/tokens").status_code == 401
    [record] = sessions_of(app, alice)
    assert record.ended_at is not None
    assert record.end_reason == "signed_out"


def test_the_cookie_names_its_session_by_a_secret_stored_only_as_a_digest(
    app: Flask, alice: str
) -> None:
    client = signed_in(app, alice, address="203.0.113.5")
    with app.app_context():
        serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        secret = serializer.loads(cookie_of(app, client))[SESSION_KEY]
    [record] = sessions_of(app, alice)
    assert record.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (record.digest, record.user_agent, record.remote_addr)
    assert (record.remote_addr, record.user_agent) == ("203.0.113.5", FIREFOX)
    assert record.device == "Firefox 133 on Linux"
    with app.app_context():
        started = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "session.started")
        ).scalar_one()
    assert (started.actor, started.detail["address"]) == (alice, "203.0.113.5")


def test_sign_out_everywhere_ends_every_session_of_the_user(
    app: Flask, make: Factory, alice: str
) -> None:
    make.user("bob", "agent")
    laptop, phone = signed_in(app, alice), signed_in(app, alice, agent=IPHONE)
    bob = signed_in(app, "bob")
    response = post(laptop, "/settings/sessions/end-all")
    assert response.headers["Location"] == "/sign-in"
    assert "You are signed out everywhere." in laptop.get("/sign-in").get_data(as_text=True)
    assert laptop.get("/").status_code == 302
    assert "You signed out everywhere." in sent_to_sign_in(phone)
    assert bob.get("/").status_code == 200  # another user's sessions are not touched
    assert {r.end_reason for r in sessions_of(app, alice)} == {"signed_out_everywhere"}


def test_settings_list_the_sessions_and_end_one(app: Flask, make: Factory, alice: str) -> None:
    laptop = signed_in(app, alice, address="192.0.2.10")
    phone = signed_in(app, alice, address="198.51.100.7", agent=IPHONE)
    make.user("bob", "agent")
    bob = signed_in(app, "bob")

    page = laptop.get("/settings").get_data(as_text=True)
    assert page.count(">this browser</span>") == 1
    assert "Firefox 133 on Linux" in page and "192.0.2.10" in page
    assert "Safari 17 on iPhone" in page and "198.51.100.7" in page
    assert IPHONE not in page.replace(f'title="{IPHONE}"', "")  # shortened, the full one a tooltip
    phone_id = next(r.id for r in sessions_of(app, alice) if r.remote_addr == "198.51.100.7")

    # Bob cannot end Alice's session, and a session is ended by a form post with its CSRF token.
    assert post(bob, f"/settings/sessions/{phone_id}/end").status_code == 404
    no_token = laptop.post(f"/settings/sessions/{phone_id}/end")
    assert no_token.status_code == 400
    assert phone.get("/").status_code == 200

    ended = post(laptop, f"/settings/sessions/{phone_id}/end")
    assert ended.headers["Location"] == "/settings"
    page = laptop.get("/settings").get_data(as_text=True)
    assert "The session was ended: that browser is signed out." in page
    assert "198.51.100.7" not in page
    assert "This session was ended from the settings page." in sent_to_sign_in(phone)
    assert post(laptop, f"/settings/sessions/{phone_id}/end").status_code == 404

    [mine] = [r for r in sessions_of(app, alice) if r.ended_at is None]
    signed_out = post(laptop, f"/settings/sessions/{mine.id}/end")
    assert signed_out.headers["Location"] == "/sign-in"
    assert laptop.get("/").status_code == 302


def test_changing_the_password_ends_the_other_sessions(
    app: Flask, make: Factory, alice: str
) -> None:
    here, there = signed_in(app, alice), signed_in(app, alice, address="198.51.100.9")
    changed = post(
        here,
        "/settings/password",
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD,
    )
    assert changed.headers["Location"] == "/settings"
    page = here.get("/settings").get_data(as_text=True)
    assert "Your password was changed. Your 1 other session was signed out." in page
    assert "Your password was changed" in sent_to_sign_in(there)
    assert sign_in(browser(app), alice).status_code == 401
    assert sign_in(browser(app), alice, NEW_PASSWORD).status_code == 302
    with app.app_context():
        event = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "user.password_changed")
        ).scalar_one()
    assert (event.actor, event.detail["sessions_ended"]) == (alice, 1)


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (
            {"current_password": "not it", "new_password": NEW_PASSWORD},
            "current_password",
            "This is not your current password.",
        ),
        ({"new_password": "short"}, "new_password", "At least 12 characters."),
        (
            {"new_password_again": NEW_PASSWORD + "!"},
            "new_password_again",
            "The two new passwords differ.",
        ),
        ({"new_password": PASSWORD}, "new_password", "other than the current one"),
        ({"current_password": ""}, "current_password", "Type your current password."),
        ({"new_password_again": ""}, "new_password_again", "Type the new password a second"),
    ],
)
def test_a_password_change_that_cannot_be_made_says_why(
    app: Flask, alice: str, form: dict[str, str], field: str, message: str
) -> None:
    here, there = signed_in(app, alice), signed_in(app, alice)
    typed = {"current_password": PASSWORD, "new_password": NEW_PASSWORD} | form
    typed.setdefault("new_password_again", typed["new_password"])
    response = post(here, "/settings/password", **typed)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert f'<p class="field-error" id="{field}-error">' in page
    assert message in page
    assert 'aria-invalid="true" aria-describedby="' + field + '-error"' in page
    assert PASSWORD not in page and NEW_PASSWORD not in page  # nothing typed is sent back
    assert there.get("/").status_code == 200
    assert sign_in(browser(app), alice).status_code == 302


def test_guessing_the_current_password_is_throttled_as_signing_in_is(
    app: Flask, alice: str
) -> None:
    here = signed_in(app, alice)
    wrong = {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert (
            post(here, "/settings/password", current_password="guess", **wrong).status_code == 422
        )
    throttled = post(here, "/settings/password", current_password=PASSWORD, **wrong)
    assert throttled.status_code == 429
    assert int(throttled.headers["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in throttled.get_data(as_text=True)
    # The password is unchanged (tried from another address, which is not throttled).
    assert sign_in(browser(app, address="192.0.2.99"), alice, NEW_PASSWORD).status_code == 401


def age_session(app: Flask, username: str, **ago: timedelta) -> None:
    """Move a user's sessions' `created_at` and/or `last_seen_at` this far into the past."""
    with app.app_context():
        values = {column: utcnow() - span for column, span in ago.items()}
        db.session.execute(update(UserSession).values(**values))
        db.session.commit()


def test_an_idle_session_ends_and_says_why(app: Flask, alice: str) -> None:
    client = signed_in(app, alice)
    age_session(app, alice, last_seen_at=timedelta(minutes=58))
    assert client.get("/").status_code == 200
    [record] = sessions_of(app, alice)
    assert utcnow() - record.last_seen_at < timedelta(seconds=30)  # the use was recorded

    age_session(app, alice, last_seen_at=timedelta(minutes=61))
    page = sent_to_sign_in(client)
    assert "You were signed out after 60 minutes without activity." in page
    [record] = sessions_of(app, alice)
    assert record.end_reason == "idle"
    assert client.get("/").status_code == 302
    assert "without activity" not in client.get("/sign-in").get_data(as_text=True)  # said once


def test_the_idle_limit_is_a_setting(make_app: Any, alice: str) -> None:
    app = make_app(SESSION_IDLE_MINUTES=5)
    client = signed_in(app, alice)
    age_session(app, alice, last_seen_at=timedelta(minutes=6))
    assert "after 5 minutes without activity" in sent_to_sign_in(client)


def test_a_session_ends_at_the_absolute_lifetime_however_busy(app: Flask, alice: str) -> None:
    client = signed_in(app, alice)
    age_session(app, alice, created_at=timedelta(hours=12, seconds=1), last_seen_at=timedelta())
    assert "a session lasts at most 12 hours" in sent_to_sign_in(client)
    assert sessions_of(app, alice)[0].end_reason == "expired"


def test_signing_in_starts_a_fresh_session_and_csrf_secret(app: Flask, alice: str) -> None:
    client = browser(app)
    before = csrf_token(client)
    with client.session_transaction() as flask_session:
        flask_session["pending_second_factor"] = 42  # what a half-done sign-in may keep
    assert sign_in(client, alice).status_code == 302
    with client.session_transaction() as flask_session:
        assert "pending_second_factor" not in flask_session
    stale = client.post("/settings/tokens", data={"name": "x", "csrf_token": before})
    assert stale.status_code == 400
    assert "CSRF" in stale.get_data(as_text=True)
    fresh = client.post(
        "/settings/tokens", data={"name": "x", "csrf_token": csrf_token(client, "/")}
    )
    assert fresh.status_code == 200


def test_a_deactivated_users_sessions_and_tokens_stop_at_once(app: Flask, alice: str) -> None:
    client = signed_in(app, alice)
    token = api_token(browser(app), alice)
    with app.app_context():
        from service import admin

        user = admin.find_user(alice)
        assert admin.set_active(user, False, actor="tests") == 1
        db.session.commit()
    assert "Your account was deactivated" in sent_to_sign_in(client)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    with app.app_context():
        event = db.session.execute(
            select(AuditEvent).where(AuditEvent.action == "user.deactivated")
        ).scalar_one()
    assert json.loads(json.dumps(event.detail)) == {
        "before": {"active": True},
        "after": {"active": False},
        "sessions_ended": 1,
    }


def test_a_cookie_from_before_recorded_sessions_signs_nobody_in(
    app: Flask, make: Factory, alice: str
) -> None:
    client = browser(app)
    user_id = make.get_user(alice).id
    with client.session_transaction() as flask_session:  # what signing in used to write
        flask_session.update({"_user_id": str(user_id), "_fresh": True})
    assert client.get("/").status_code == 302
    with client.session_transaction() as flask_session:
        assert "_user_id" not in flask_session
