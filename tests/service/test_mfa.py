"""Two-factor sign-in: setting up an authenticator app, the code after the password, recovery
codes, throttling, API tokens, and roles that require it."""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service import create_app
from service.config import ConfigError
from service.extensions import db
from service.models import AuditEvent, LoginAttempt, RecoveryCode, SecondFactor, User
from service.web.mfa import PENDING
from tests.conftest import PASSWORD, Factory, api_token, csrf_token, sign_in


@pytest.fixture
def alice(make: Factory) -> str:
    make.user("alice", "agent")
    return "alice"


def code_of(secret: str, steps_from_now: int = 0) -> str:
    """The app's code `steps_from_now` time steps away, taken well inside its step."""
    if time.time() % 30 > 28.5:
        time.sleep(2)
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


def post(client: FlaskClient, url: str, **data: str) -> Any:
    return client.post(url, data={**data, "csrf_token": csrf_token(client, "/settings")})


def enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Set up two-factor sign-in from the settings page of the signed-in client; the secret
    (confirmed with the previous step's code) and the recovery codes."""
    started = post(client, "/settings/two-factor/start")
    assert started.status_code == 302
    page = client.get(started.headers["Location"]).get_data(as_text=True)
    match = re.search(r'id="mfa-secret"[^>]*>([A-Z2-7]+)<', page)
    assert match, page
    secret = match.group(1)
    confirmed = post(client, "/settings/two-factor/confirm", code=code_of(secret, -1))
    assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
    codes = re.findall(r"<li><code>([a-z2-7-]+)</code></li>", confirmed.get_data(as_text=True))
    return secret, codes


def sign_in_with_code(client: FlaskClient, username: str, code: str) -> Any:
    first = sign_in(client, username)
    assert first.status_code == 302
    assert first.headers["Location"] == "/sign-in/code"
    return client.post(
        "/sign-in/code", data={"code": code, "csrf_token": csrf_token(client, "/sign-in/code")}
    )


def sign_out(client: FlaskClient) -> None:
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/settings")})


def test_setting_up_shows_a_qr_code_and_the_secret_then_recovery_codes_once(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    sign_in(client, alice)
    settings = client.get("/settings").get_data(as_text=True)
    assert "Two-factor sign-in" in settings
    assert "Set up two-factor sign-in" in settings

    post(client, "/settings/two-factor/start")
    page = client.get("/settings").get_data(as_text=True)
    assert '<svg width="' in page and 'class="qr-code"' in page  # inline, no script
    secret = re.search(r'id="mfa-secret"[^>]*>([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    with app.app_context():
        stored = db.session.execute(select(SecondFactor)).scalar_one()
        assert stored.enabled_at is None
        assert secret not in stored.secret  # encrypted

    wrong = post(client, "/settings/two-factor/confirm", code="000000")
    assert wrong.status_code == 401
    assert "That code is not right" in wrong.get_data(as_text=True)
    missing = post(client, "/settings/two-factor/confirm", code="")
    assert missing.status_code == 422

    confirmed = post(client, "/settings/two-factor/confirm", code=code_of(secret))
    assert confirmed.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7-]+)</code></li>", confirmed.get_data(as_text=True))
    assert len(codes) == len(set(codes)) == 10
    with app.app_context():
        digests = set(db.session.execute(select(RecoveryCode.digest)).scalars())
        assert len(digests) == 10
        assert not digests & {c.replace("-", "") for c in codes}
        user = db.session.execute(select(User).filter_by(username=alice)).scalar_one()
        assert user.has_second_factor
    settings = client.get("/settings").get_data(as_text=True)
    assert "<strong>10</strong> unused recovery codes" in settings
    assert codes[0] not in settings  # shown once


def test_sign_in_asks_for_the_code_before_the_session_begins(
    client: FlaskClient, alice: str
) -> None:
    sign_in(client, alice)
    secret, _ = enrol(client)
    sign_out(client)

    first = client.post(
        "/sign-in?next=/settings",
        data={"username": alice, "password": PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert first.headers["Location"] == "/sign-in/code"
    assert client.get("/").status_code == 302  # not signed in yet
    assert client.get("/api/v1/me").status_code == 401
    token = csrf_token(client, "/sign-in/code")
    wrong = client.post("/sign-in/code", data={"code": "123456", "csrf_token": token})
    assert wrong.status_code == 401
    assert "That code is not right" in wrong.get_data(as_text=True)
    assert client.get("/").status_code == 302

    right = client.post("/sign-in/code", data={"code": code_of(secret), "csrf_token": token})
    assert right.status_code == 302
    assert right.headers["Location"] == "/settings"
    assert client.get("/").status_code == 200
    # The marker is gone: the code page now sends to the sign-in page.
    assert client.get("/sign-in/code").headers["Location"] == "/sign-in"


def test_a_code_from_the_app_is_accepted_once(client: FlaskClient, alice: str) -> None:
    sign_in(client, alice)
    secret, _ = enrol(client)
    sign_out(client)
    code = code_of(secret)
    assert sign_in_with_code(client, alice, code).status_code == 302
    sign_out(client)
    replayed = sign_in_with_code(client, alice, code)
    assert replayed.status_code == 401
    # The code of the step that confirmed the set-up, older still, is refused too.
    assert client.get("/").status_code == 302


def test_a_recovery_code_signs_in_once(app: Flask, client: FlaskClient, alice: str) -> None:
    sign_in(client, alice)
    _, codes = enrol(client)
    sign_out(client)
    assert sign_in_with_code(client, alice, codes[3].upper()).status_code == 302
    assert client.get("/").status_code == 200
    assert "<strong>9</strong> unused recovery codes" in client.get("/settings").get_data(
        as_text=True
    )
    sign_out(client)
    assert sign_in_with_code(client, alice, codes[3]).status_code == 401


def test_the_second_step_waits_five_minutes_at_most(client: FlaskClient, alice: str) -> None:
    sign_in(client, alice)
    secret, _ = enrol(client)
    sign_out(client)
    sign_in(client, alice)
    token = csrf_token(client, "/sign-in/code")
    with client.session_transaction() as session:
        session[PENDING] = {**session[PENDING], "until": time.time() - 1}
    late = client.post("/sign-in/code", data={"code": code_of(secret), "csrf_token": token})
    assert late.headers["Location"] == "/sign-in"
    assert "took too long" in client.get("/sign-in").get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_wrong_codes_are_throttled_like_passwords_and_the_password_resets_nothing(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    sign_in(client, alice)
    enrol(client)
    sign_out(client)
    for attempt in range(5):
        # The right password each time: it must not wipe out the wrong codes before it.
        assert sign_in_with_code(client, alice, f"00000{attempt}").status_code == 401
    with app.app_context():
        failures = db.session.execute(
            select(LoginAttempt).filter_by(username=alice, succeeded=False)
        ).all()
        assert len(failures) == 5
    throttled_password = sign_in(client, alice)
    assert throttled_password.status_code == 429
    assert "Too many failed sign-in attempts" in throttled_password.get_data(as_text=True)


def test_a_throttled_code_page_says_so(client: FlaskClient, alice: str) -> None:
    sign_in(client, alice)
    secret, _ = enrol(client)
    sign_out(client)
    sign_in(client, alice)
    token = csrf_token(client, "/sign-in/code")
    for attempt in range(5):
        client.post("/sign-in/code", data={"code": f"99999{attempt}", "csrf_token": token})
    refused = client.post("/sign-in/code", data={"code": code_of(secret), "csrf_token": token})
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_turning_off_and_new_recovery_codes_need_a_current_code(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    sign_in(client, alice)
    secret, old_codes = enrol(client)
    refused = post(client, "/settings/two-factor/recovery-codes", code="111111")
    assert refused.status_code == 401
    renewed = post(client, "/settings/two-factor/recovery-codes", code=code_of(secret))
    assert renewed.status_code == 200
    new_codes = re.findall(r"<li><code>([a-z2-7-]+)</code></li>", renewed.get_data(as_text=True))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)

    assert post(client, "/settings/two-factor/disable", code=old_codes[0]).status_code == 401
    assert post(client, "/settings/two-factor/disable", code="").status_code == 422
    off = post(client, "/settings/two-factor/disable", code=code_of(secret, 1))
    assert off.status_code == 302
    assert "Two-factor sign-in is off." in client.get("/settings").get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(SecondFactor)).first() is None
        assert db.session.execute(select(RecoveryCode)).first() is None
        actions = db.session.execute(select(AuditEvent.action, AuditEvent.actor)).all()
        assert ("user.second_factor_on", alice) in actions
        assert ("user.second_factor_off", alice) in actions
    sign_out(client)
    assert sign_in(client, alice).headers["Location"] == "/"


def test_a_lost_app_is_turned_off_with_a_recovery_code(client: FlaskClient, alice: str) -> None:
    sign_in(client, alice)
    _, codes = enrol(client)
    sign_out(client)
    assert sign_in_with_code(client, alice, codes[0]).status_code == 302
    assert post(client, "/settings/two-factor/disable", code=codes[1]).status_code == 302


def test_a_password_alone_creates_no_api_token_for_a_two_factor_account(
    client: FlaskClient, alice: str
) -> None:
    sign_in(client, alice)
    enrol(client)
    refused = client.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD})
    assert refused.status_code == 403
    assert "Create the token on the settings page" in refused.json["error"]["message"]
    wrong = client.post("/api/v1/tokens", json={"username": alice, "password": "guess"})
    assert wrong.status_code == 401  # the password is checked first: nothing is told
    # The settings page creates one, in this session that showed a current code.
    created = post(client, "/settings/tokens", name="script")
    assert created.status_code == 200
    assert "Copy it now" in created.get_data(as_text=True)


def test_a_session_begun_before_two_factor_sign_in_creates_no_token(app: Flask, alice: str) -> None:
    earlier, later = app.test_client(), app.test_client()
    sign_in(earlier, alice)
    sign_in(later, alice)
    enrol(later)
    refused = post(earlier, "/settings/tokens", name="script")
    assert refused.status_code == 403
    assert "Sign out and sign in again with your code" in html.unescape(
        refused.get_data(as_text=True)
    )


def test_a_role_that_requires_two_factor_sign_in_can_only_set_it_up(
    make_app: Any, app: Flask, alice: str
) -> None:
    token = api_token(app.test_client(), alice)  # made before the rule
    strict = make_app(MFA_REQUIRED_ROLES="agent,admin")
    client = strict.test_client()
    bearer = {"Authorization": f"Bearer {token}"}

    assert client.get("/api/v1/me", headers=bearer).status_code == 403
    refused = client.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD})
    assert refused.status_code == 403
    assert "Your role requires two-factor sign-in" in refused.json["error"]["message"]

    assert sign_in(client, alice).headers["Location"] == "/"
    home = client.get("/")
    assert home.headers["Location"] == "/settings/two-factor"
    page = client.get("/settings/two-factor").get_data(as_text=True)
    assert "Your role requires two-factor sign-in" in page
    assert client.get("/settings").headers["Location"] == "/settings/two-factor"
    assert client.get("/api/v1/me").status_code == 403
    made = client.post(
        "/settings/tokens",
        data={"name": "x", "csrf_token": csrf_token(client, "/settings/two-factor")},
    )
    assert made.headers["Location"] == "/settings/two-factor"

    started = client.post(
        "/settings/two-factor/start",
        data={"csrf_token": csrf_token(client, "/settings/two-factor")},
    )
    page = client.get(started.headers["Location"]).get_data(as_text=True)
    secret = re.search(r'id="mfa-secret"[^>]*>([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    confirmed = client.post(
        "/settings/two-factor/confirm",
        data={"code": code_of(secret), "csrf_token": csrf_token(client, "/settings/two-factor")},
    )
    assert confirmed.status_code == 200
    assert client.get("/").status_code == 200
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    # Other roles are not held.
    make_user = Factory(strict)
    make_user.user("maya", "manager")
    other = strict.test_client()
    sign_in(other, "maya")
    assert other.get("/").status_code == 200


def test_required_roles_are_checked_when_the_app_starts(base_config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="unknown role 'agnet'"):
        create_app({**base_config, "MFA_REQUIRED_ROLES": "agent,agnet"})
    app = create_app({**base_config, "MFA_REQUIRED_ROLES": ["manager", " admin "]})
    assert {r.value for r in app.config["MFA_REQUIRED_ROLES"]} == {"manager", "admin"}
    assert create_app(base_config).config["MFA_REQUIRED_ROLES"] == frozenset()
