"""Single sign-on against a real OpenID Connect provider on loopback (oidc-provider-mock, an
Authlib provider: discovery, authorization code, PKCE, RS256-signed ID tokens, JWKS),
driven through its authorization form as a person would."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import RSAKey
from sqlalchemy import select

from service import admin, create_app
from service.config import ConfigError
from service.errors import Conflict
from service.extensions import db
from service.models import User
from tests.conftest import Factory, csrf_token, free_port, person, sign_in

CLIENT_ID = "linkdesk-tests"
CLIENT_SECRET = "client-secret-for-tests"
SSO_NAME = "Example SSO"


@pytest.fixture
def sso_app(app: Flask, make_app: Any, oidc_provider: str) -> Flask:
    """An app signing in through the provider (beside `app`, which empties the tables after)."""
    app: Flask = make_app(
        OIDC_ISSUER=oidc_provider,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_DISPLAY_NAME=SSO_NAME,
    )
    return app


def to_provider(client: FlaskClient, next_url: str | None = None) -> str:
    """Follow the sign-in page's button; the provider's authorization URL."""
    page = client.get("/sign-in").get_data(as_text=True)
    link = re.search(r'<a class="button" href="([^"]+)">Sign in with ([^<]+)</a>', page)
    assert link, page
    assert link.group(2) == SSO_NAME
    start = client.get(html.unescape(link.group(1)) if next_url is None else next_url)
    assert start.status_code == 302, start.get_data(as_text=True)
    return str(start.headers["Location"])


def authorise(authorize_url: str, **form: str) -> str:
    """Submit the provider's authorization form; the path and query it sends the browser
    back to."""
    answer = requests.post(authorize_url, data=form, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert back.path == "/sign-in/sso/callback"
    return f"{back.path}?{back.query}"


def sign_in_as(client: FlaskClient, sub: str, next_url: str | None = None) -> Any:
    return client.get(authorise(to_provider(client, next_url), sub=sub))


def test_the_provider_signs_in_the_user_with_its_email_address(
    sso_app: Flask, oidc_provider: str
) -> None:
    Factory(sso_app).user("alice", "agent")  # alice@example.test
    person(oidc_provider, "alice-sub", email="Alice@Example.TEST", email_verified=True)
    client = sso_app.test_client()
    authorize_url = to_provider(client, "/sign-in/sso?next=/settings")
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    assert authorize_url.startswith(f"{oidc_provider}/oauth2/authorize?")
    assert query["client_id"] == CLIENT_ID
    assert query["response_type"] == "code"
    assert set(query["scope"].split()) == {"openid", "email", "profile"}
    assert query["state"] and query["nonce"]
    # PKCE: the challenge is the S256 digest of the verifier kept in the session.
    assert query["code_challenge_method"] == "S256"
    with client.session_transaction() as session:
        verifier = session[f"_state_provider_{query['state']}"]["data"]["code_verifier"]
    digest = hashlib.sha256(verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    back = client.get(authorise(authorize_url, sub="alice-sub"))
    assert back.status_code == 302
    assert back.headers["Location"] == "/settings"
    me = client.get("/settings").get_data(as_text=True)
    assert "alice@example.test" in me
    # The state is used up: coming back with it again is refused, on the sign-in page.
    replay = client.get(authorise(authorize_url, sub="alice-sub"))
    assert replay.status_code == 401
    assert "could not be matched" in replay.get_data(as_text=True)


def test_a_user_with_two_factor_sign_in_enters_the_code_after_the_provider(
    sso_app: Flask, oidc_provider: str
) -> None:
    Factory(sso_app).user("alice", "agent")
    person(oidc_provider, "alice-2fa", email="alice@example.test")
    client = sso_app.test_client()
    sign_in(client, "alice")
    settings_token = csrf_token(client, "/settings")
    client.post("/settings/two-factor/start", data={"csrf_token": settings_token})
    page = client.get("/settings/two-factor").get_data(as_text=True)
    secret = re.search(r'id="mfa-secret"[^>]*>([A-Z2-7]+)<', page).group(1)  # type: ignore[union-attr]
    if time.time() % 30 > 28.5:
        time.sleep(2)
    totp = pyotp.TOTP(secret)
    client.post(
        "/settings/two-factor/confirm",
        data={"code": totp.at(time.time() - 30), "csrf_token": settings_token},
    )
    client.post("/sign-out", data={"csrf_token": settings_token})

    back = sign_in_as(client, "alice-2fa")
    assert back.headers["Location"] == "/sign-in/code"
    assert client.get("/").status_code == 302  # not signed in before the code
    done = client.post(
        "/sign-in/code",
        data={"code": totp.now(), "csrf_token": csrf_token(client, "/sign-in/code")},
    )
    assert done.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_an_unknown_person_is_told_so_and_nobody_is_created(
    sso_app: Flask, oidc_provider: str
) -> None:
    person(oidc_provider, "stranger", email="stranger@example.test", preferred_username="stranger")
    client = sso_app.test_client()
    back = sign_in_as(client, "stranger")
    assert back.status_code == 401
    page = html.unescape(back.get_data(as_text=True))
    assert "Sign in to LinkDesk" in page
    assert "No LinkDesk account has the e-mail address stranger@example.test" in page
    assert client.get("/").status_code == 302
    with sso_app.app_context():
        assert db.session.execute(select(User)).first() is None


def test_a_first_sign_in_creates_the_user_when_an_admin_allowed_it(
    app: Flask, make_app: Any, oidc_provider: str
) -> None:
    app = make_app(
        OIDC_ISSUER=oidc_provider,
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_DISPLAY_NAME=SSO_NAME,
        OIDC_NEW_USER_ROLE="agent",
    )
    person(
        oidc_provider,
        "newcomer",
        email="New@Example.test",
        preferred_username="newbie",
        name="N. Ew",
    )
    client = app.test_client()
    assert sign_in_as(client, "newcomer").headers["Location"] == "/"
    assert client.get("/").status_code == 200
    with app.app_context():
        user = db.session.execute(select(User)).scalar_one()
        assert (user.username, user.email, user.display_name, user.role.value) == (
            "newbie",
            "new@example.test",
            "N. Ew",
            "agent",
        )
    # Another address under a username already taken: refused, with the reason.
    person(oidc_provider, "clash", email="other@example.test", preferred_username="newbie")
    other = app.test_client()
    refused = sign_in_as(other, "clash")
    assert refused.status_code == 401
    assert "There is already a user 'newbie'" in html.unescape(refused.get_data(as_text=True))


@pytest.mark.parametrize("role", ["partner", "instance_admin", "admin", "nobody"])
def test_only_roles_without_a_scope_may_be_created(
    base_config: dict[str, Any], oidc_provider: str, role: str
) -> None:
    with pytest.raises(ConfigError, match="LINKDESK_OIDC_NEW_USER_ROLE"):
        create_app(
            {
                **base_config,
                "OIDC_ISSUER": oidc_provider,
                "OIDC_CLIENT_ID": CLIENT_ID,
                "OIDC_CLIENT_SECRET": CLIENT_SECRET,
                "OIDC_NEW_USER_ROLE": role,
            }
        )
    with pytest.raises(ConfigError, match="LINKDESK_OIDC_CLIENT_ID"):
        create_app({**base_config, "OIDC_ISSUER": oidc_provider})
    with pytest.raises(ConfigError, match="LINKDESK_OIDC_CLIENT_SECRET"):
        create_app({**base_config, "OIDC_ISSUER": oidc_provider, "OIDC_CLIENT_ID": CLIENT_ID})


def test_the_issuer_is_https_or_on_loopback(base_config: dict[str, Any]) -> None:
    for issuer in ("http://login.example.com", "login.example.com", "ftp://127.0.0.1"):
        with pytest.raises(ConfigError, match="must be the provider's https:// URL"):
            create_app(
                {
                    **base_config,
                    "OIDC_ISSUER": issuer,
                    "OIDC_CLIENT_ID": CLIENT_ID,
                    "OIDC_CLIENT_SECRET": CLIENT_SECRET,
                }
            )


def test_denied_consent_ends_on_the_sign_in_page(sso_app: Flask) -> None:
    client = sso_app.test_client()
    back = client.get(authorise(to_provider(client), action="deny"))
    assert back.status_code == 401
    assert f"Sign-in with {SSO_NAME} was cancelled." in back.get_data(as_text=True)


def test_an_answer_with_a_state_not_started_here_is_refused(
    sso_app: Flask, oidc_provider: str
) -> None:
    Factory(sso_app).user("alice", "agent")
    person(oidc_provider, "alice-state", email="alice@example.test")
    victim, attacker = sso_app.test_client(), sso_app.test_client()
    # An answer meant for the attacker's browser, delivered to another one.
    callback = authorise(to_provider(attacker), sub="alice-state")
    refused = victim.get(callback)
    assert refused.status_code == 401
    assert "could not be matched to one started here" in html.unescape(
        refused.get_data(as_text=True)
    )
    assert victim.get("/").status_code == 302
    forged = victim.get("/sign-in/sso/callback?code=x&state=forged")
    assert forged.status_code == 401
    assert victim.get("/sign-in/sso/callback").status_code == 401


def test_an_unverified_email_address_signs_nobody_in(sso_app: Flask, oidc_provider: str) -> None:
    Factory(sso_app).user("alice", "agent")
    person(oidc_provider, "alice-unverified", email="alice@example.test", email_verified=False)
    client = sso_app.test_client()
    refused = sign_in_as(client, "alice-unverified")
    assert refused.status_code == 401
    assert "has not verified your e-mail address" in refused.get_data(as_text=True)


def test_an_id_token_not_signed_by_the_providers_key_is_refused(
    sso_app: Flask, oidc_provider: str
) -> None:
    """The ID token's signature is checked against the provider's JWKS: with another key
    under the same key ID in its place, the genuine token no longer verifies."""
    Factory(sso_app).user("alice", "agent")
    person(oidc_provider, "alice-jwks", email="alice@example.test")
    client = sso_app.test_client()
    authorize_url = to_provider(client)  # discovery has run
    real = requests.get(f"{oidc_provider}/jwks", timeout=10).json()
    impostor = RSAKey.generate_key(2048, {"kid": real["keys"][0].get("kid"), "use": "sig"})
    sso_client = sso_app.extensions["linkdesk.sso"]
    sso_client.server_metadata["jwks"] = {"keys": [impostor.as_dict(private=False)]}
    refused = client.get(authorise(authorize_url, sub="alice-jwks"))
    assert refused.status_code == 401
    assert "ID token could not be verified" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_an_unreachable_provider_is_a_clear_503(app: Flask, make_app: Any) -> None:
    app = make_app(
        OIDC_ISSUER=f"http://127.0.0.1:{free_port()}",
        OIDC_CLIENT_ID=CLIENT_ID,
        OIDC_CLIENT_SECRET=CLIENT_SECRET,
        OIDC_DISPLAY_NAME=SSO_NAME,
    )
    answer = app.test_client().get("/sign-in/sso")
    assert answer.status_code == 503
    assert "cannot reach the provider right now" in answer.get_data(as_text=True)


def test_without_a_provider_the_sign_in_page_has_no_button(client: FlaskClient) -> None:
    assert "Sign in with" not in client.get("/sign-in").get_data(as_text=True)
    assert client.get("/sign-in/sso").status_code == 503


def test_an_email_address_belongs_to_one_user_and_is_stored_lower_case(
    app: Flask, make: Factory
) -> None:
    make.user("alice", "agent")
    with app.app_context():
        with pytest.raises(Conflict, match="Another user has the e-mail address"):
            admin.create_user(
                "alias",
                role="agent",
                password="pw-long",
                actor="tests",
                email="ALICE@example.test ",
            )
        db.session.rollback()
        user = admin.create_user(
            "bob", role="agent", password="pw-long", actor="tests", email=" Bob@Example.TEST"
        )
        assert user.email == "bob@example.test"
