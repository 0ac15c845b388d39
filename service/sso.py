"""Single sign-on with an OpenID Connect provider, configured by `OIDC_*` settings.

Authlib runs the authorization code flow with PKCE (S256), a state and a nonce, finds the
provider's endpoints by discovery (`<issuer>/.well-known/openid-configuration`), and checks
the ID token: its signature against the provider's JWKS, its issuer, audience, expiry and
nonce. The person is the LinkDesk user with the ID token's e-mail address (compared
lower-case); one the provider knows and LinkDesk does not is created only when
`OIDC_NEW_USER_ROLE` names a role for them (see `service.config.OIDC_NEW_USER_ROLES`).
"""

from __future__ import annotations

import secrets
from typing import Any

import requests
from authlib.integrations.flask_client import FlaskOAuth2App, OAuth, OAuthError
from flask import Flask, current_app
from joserfc.errors import JoseError
from sqlalchemy import select
from werkzeug.wrappers import Response

from service import admin
from service.errors import Conflict, Forbidden, Invalid, Unauthorized, Unavailable
from service.extensions import db
from service.models import User, normalise_email

_CLIENT = "linkdesk.sso"
_NAME = "provider"
SCOPES = "openid email profile"
# Seconds to wait for the provider's discovery, JWKS and token endpoints.
PROVIDER_TIMEOUT = 10
ACTOR = "single sign-on"


def init_app(app: Flask) -> None:
    """Register the provider's client when `OIDC_ISSUER` is set."""
    issuer = app.config["OIDC_ISSUER"]
    if not issuer:
        return
    oauth = OAuth(app)
    app.extensions[_CLIENT] = oauth.register(
        _NAME,
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config["OIDC_CLIENT_SECRET"],
        server_metadata_url=str(issuer).rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": SCOPES,
            "code_challenge_method": "S256",
            "default_timeout": PROVIDER_TIMEOUT,
        },
    )


def provider_name() -> str | None:
    """The name on the sign-in button, or None when single sign-on is off."""
    if _CLIENT not in current_app.extensions:
        return None
    return str(current_app.config["OIDC_DISPLAY_NAME"])


def _client() -> FlaskOAuth2App:
    client = current_app.extensions.get(_CLIENT)
    if client is None:
        raise Unavailable("Single sign-on is not configured.")
    return client


def _unreachable() -> Unavailable:
    return Unavailable(
        f"Sign-in with {provider_name()} cannot reach the provider right now. Try again "
        "later, or sign in with your LinkDesk password."
    )


def start(redirect_uri: str) -> Response:
    """Send the browser to the provider, the state, nonce and PKCE verifier kept in the
    session for the way back."""
    client = _client()
    try:
        _check_issuer(client)
        return client.authorize_redirect(redirect_uri)
    except (requests.RequestException, ValueError, KeyError) as exc:
        current_app.logger.warning("single sign-on: discovery failed: %s", exc)
        raise _unreachable() from exc


def finish() -> User:
    """The LinkDesk user the provider vouches for, back from it; `Unauthorized` (or
    `Forbidden`, `Unavailable`) with a message for the sign-in page otherwise."""
    client = _client()
    name = provider_name()
    try:
        token = client.authorize_access_token()
    except OAuthError as exc:
        if exc.error == "access_denied":
            raise Unauthorized(f"Sign-in with {name} was cancelled.") from exc
        if exc.error == "mismatching_state":
            raise Unauthorized(
                f"This sign-in with {name} could not be matched to one started here (it may "
                "have expired, or come from another browser). Sign in again."
            ) from exc
        current_app.logger.warning("single sign-on: %s %s", exc.error, exc.description)
        raise Unauthorized(f"Sign-in with {name} failed: the provider refused it.") from exc
    except JoseError as exc:
        current_app.logger.warning("single sign-on: ID token refused: %r", exc)
        raise Unauthorized(
            f"Sign-in with {name} failed: the provider's ID token could not be verified."
        ) from exc
    except (requests.RequestException, ValueError, RuntimeError) as exc:
        current_app.logger.warning("single sign-on: token exchange failed: %s", exc)
        raise _unreachable() from exc
    claims = token.get("userinfo")
    if not claims:  # Authlib verifies the ID token when there is one: there must be
        raise Unauthorized(f"Sign-in with {name} failed: the provider sent no ID token.")
    return _user_for(dict(claims))


def _check_issuer(client: FlaskOAuth2App) -> None:
    """The discovered issuer must be the one configured (OpenID Connect Discovery 4.3)."""
    metadata = client.load_server_metadata()
    configured = str(current_app.config["OIDC_ISSUER"]).rstrip("/")
    if str(metadata.get("issuer", "")).rstrip("/") != configured:
        raise ValueError(f"the provider names itself {metadata.get('issuer')!r}")


def _user_for(claims: dict[str, Any]) -> User:
    """The user with the claims' e-mail address, or a new one when that is allowed."""
    config = current_app.config
    name = provider_name()
    email = normalise_email(str(claims.get(config["OIDC_EMAIL_CLAIM"]) or ""))
    if email is None:
        raise Unauthorized(f"{name} did not tell LinkDesk your e-mail address.")
    if claims.get("email_verified") is False:
        raise Unauthorized(f"{name} has not verified your e-mail address {email}.")
    user = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    if user is not None:
        if not user.active:
            raise Forbidden("Your LinkDesk account is disabled.")
        return user
    role = config["OIDC_NEW_USER_ROLE"]
    if role is None:
        raise Unauthorized(
            f"No LinkDesk account has the e-mail address {email}. Ask an administrator to "
            "create one."
        )
    username = str(claims.get(config["OIDC_USERNAME_CLAIM"]) or "").strip()
    if not username:
        raise Unauthorized(f"{name} did not tell LinkDesk a username for your new account.")
    try:
        user = admin.create_user(
            username,
            role=role,
            password=secrets.token_urlsafe(32),  # never told: this account signs in by SSO
            actor=ACTOR,
            display_name=str(claims.get("name") or username),
            email=email,
        )
    except (Conflict, Invalid) as exc:
        db.session.rollback()
        raise Unauthorized(
            f"A LinkDesk account for {email} could not be created: {exc.message} "
            "Ask an administrator."
        ) from exc
    db.session.commit()
    return user
