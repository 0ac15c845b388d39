"""Who the caller is: passwords, sign-in throttling, personal API tokens, sessions and CSRF."""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar, cast

from flask import Flask, current_app, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response as WerkzeugResponse

from domain.vocabulary import Role
from service.errors import Invalid, NotFound, Throttled, Unauthorized
from service.extensions import SAFE_METHODS, csrf, db, login_manager, reading_only
from service.models import ApiToken, LoginAttempt, User, utcnow

TOKEN_PREFIX = "ldk_"
# Hash compared against when the username is unknown, so both failures cost the same time.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))
# Endpoints that take credentials in the body instead of riding on an ambient cookie.
CSRF_EXEMPT_ENDPOINTS = frozenset({"tokens.create_token"})
# Endpoints whose `Authorization` header is not a user's: they check it themselves (the
# Prometheus scrape token of /metrics), and it identifies nobody here.
OWN_AUTHORIZATION_ENDPOINTS = frozenset({"health.metrics"})
WRONG_CREDENTIALS = "Wrong username or password."
# What a page or resource that the caller's role may not see answers: there is nothing here.
NOT_HERE = "There is no page at this address."
INVALID_TOKEN = "The API token is not valid, has expired or was revoked."
P = ParamSpec("P")
R = TypeVar("R")


def hash_password(password: str) -> str:
    """A salted, slow hash of a password for storage (method from PASSWORD_HASH_METHOD)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def _client_address() -> str:
    return request.remote_addr or "unknown"


def authenticate(username: str, password: str) -> User:
    """The active user with these credentials, or `Unauthorized`; throttled per user and address.

    Every attempt is recorded so the limit holds across all web processes. Failures count
    from the last success within the window. The right password of a user with a second
    factor is not a success yet: the code that follows is the attempt recorded (see
    `service.mfa`), so typing the password again does not wipe out wrong codes.
    """
    username = username.strip()
    check_throttle(username)
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    ok = ok and user is not None and user.active
    if not ok or user is None:
        record_attempt(username, succeeded=False)
        raise Unauthorized(WRONG_CREDENTIALS)
    if not user.has_second_factor:
        record_attempt(username, succeeded=True)
    return user


def check_throttle(username: str) -> None:
    """Refuse a sign-in attempt (`Throttled`) while the username or the address has failed
    too often within the window."""
    config = current_app.config
    max_failures = int(config["LOGIN_MAX_FAILURES"])
    window = timedelta(seconds=int(config["LOGIN_WINDOW_SECONDS"]))
    now = utcnow()
    oldest = _throttle_oldest_failure(username, _client_address(), now - window, max_failures)
    if oldest is not None:
        retry_after = max(1, math.ceil((oldest + window - now).total_seconds()))
        raise Throttled(
            "Too many failed sign-in attempts. Wait a few minutes and try again.",
            retry_after=retry_after,
        )


def record_attempt(username: str, *, succeeded: bool) -> None:
    """Record one sign-in attempt (a password, or a second factor's code) of this address."""
    db.session.add(
        LoginAttempt(
            username=username, remote_addr=_client_address(), succeeded=succeeded, at=utcnow()
        )
    )
    db.session.commit()


def _throttle_oldest_failure(
    username: str, address: str, since: datetime, max_failures: int
) -> datetime | None:
    """When limiting applies, the oldest failure that still counts; otherwise None."""
    last_success = db.session.execute(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username, LoginAttempt.succeeded.is_(True)
        )
    ).scalar_one()
    user_since = max(since, last_success) if last_success else since
    checks = (
        (LoginAttempt.username == username, user_since, max_failures),
        # An address may try several accounts, but not spray passwords across all of them.
        (LoginAttempt.remote_addr == address, since, max_failures * 4),
    )
    for condition, start, limit in checks:
        count, oldest = db.session.execute(
            select(func.count(), func.min(LoginAttempt.at)).where(
                condition, LoginAttempt.succeeded.is_(False), LoginAttempt.at > start
            )
        ).one()
        if count >= limit:
            return oldest
    return None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user: User, name: str | None = None) -> tuple[ApiToken, str]:
    """A new personal API token for the user; the secret is returned once and never stored."""
    name = (name or "").strip() or f"token created {utcnow():%Y-%m-%d %H:%M} UTC"
    if len(name) > 100:
        raise Invalid("The token name is too long.", fields={"name": ["At most 100 characters."]})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(
        user_id=user.id,
        name=name,
        digest=_digest(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        created_at=now,
        expires_at=now + timedelta(days=int(current_app.config["TOKEN_TTL_DAYS"])),
    )
    db.session.add(token)
    db.session.commit()
    return token, secret


def list_tokens(user: User) -> list[ApiToken]:
    """The user's tokens that have not been revoked, newest first."""
    return list(
        db.session.execute(
            select(ApiToken)
            .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        ).scalars()
    )


def revoke_token(user: User, token_id: int) -> None:
    """Revoke one of the user's own tokens; another user's token is not found."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound(f"No API token {token_id}.")
    token.revoked_at = utcnow()
    db.session.commit()


def _has_authorization() -> bool:
    """Whether the request names its caller in an `Authorization` header, which then alone
    says who calls: a session cookie beside it is ignored."""
    return "Authorization" in request.headers


def _user_from_bearer() -> User | None:
    """The user of the request's bearer token; None for any other `Authorization` header."""
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    now = utcnow()
    with reading_only():
        token = db.session.execute(
            # The user in the same query: every API request needs both.
            select(ApiToken)
            .options(joinedload(ApiToken.user))
            .where(ApiToken.digest == _digest(secret.strip()))
        ).scalar_one_or_none()
        if token is None or not token.usable_at(now) or not token.user.active:
            db.session.rollback()
            return None
        user, token_id, last_used = token.user, token.id, token.last_used_at
        _end_read()
    # Record use at most once a minute, to keep reads from turning into writes.
    if last_used is None or now - last_used > timedelta(minutes=1):
        try:
            db.session.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            )
            db.session.commit()
        except OperationalError:  # the write lock stayed taken: record the use next time
            db.session.rollback()
    return user


def _end_read() -> None:
    """End the transaction that identified the caller, so the request's own work begins its
    own: for an unsafe method, a write transaction, which on SQLite takes the write lock
    up front (see `service.sqlite_writers.SqliteWriters`) and is best held as briefly as its
    writes."""
    db.session.commit()


def _protect_from_csrf() -> None:
    """Check the CSRF token on every unsafe request that relies on the session cookie.

    A request with an `Authorization` header is authenticated here, by that header alone: a
    valid bearer token needs no CSRF token (a browser never adds the header by itself), and
    any other header is 401 whatever cookie comes with it. An API call with no credentials at
    all is told to sign in (401) rather than that its CSRF token failed: it has nothing a
    forged request could ride on. An address or method that routes nowhere answers its own
    404 or 405.
    """
    if request.routing_exception is not None or request.endpoint in OWN_AUTHORIZATION_ENDPOINTS:
        return
    if _has_authorization():
        if not current_user.is_authenticated:  # loaded from the header alone
            raise Unauthorized(INVALID_TOKEN)
        return
    if request.method in SAFE_METHODS or request.endpoint in CSRF_EXEMPT_ENDPOINTS:
        return
    if request.path.startswith("/api/") and "_user_id" not in session:
        raise Unauthorized("Sign in first: send 'Authorization: Bearer <token>'.")
    csrf.protect()


def _unauthorized() -> WerkzeugResponse:
    """API callers get the 401 error body; people are sent to the sign-in page."""
    if request.path.startswith("/api/"):
        raise Unauthorized("Sign in first: send 'Authorization: Bearer <token>'.")
    return redirect(url_for("web.sign_in", next=request.full_path.rstrip("?")))


def init_app(app: Flask) -> None:
    """Wire Flask-Login (sessions and bearer tokens) and the CSRF check into the app."""
    login_manager.init_app(app)
    csrf.init_app(app)
    app.before_request(_protect_from_csrf)

    @login_manager.user_loader
    def _load_user(user_id: str) -> User | None:
        if _has_authorization():
            return None  # the header alone says who calls: see _load_from_request
        with reading_only():
            user = db.session.get(User, int(user_id))
            active = user is not None and user.active
            _end_read()
        return user if active else None

    @login_manager.request_loader
    def _load_from_request(_request: object) -> User | None:
        return _user_from_bearer() if _has_authorization() else None

    login_manager.unauthorized_handler(_unauthorized)


def begin_session(user: User) -> None:
    """Sign the user in to this browser: every way of signing in ends here."""
    login_user(user)


def end_session() -> None:
    """Sign this browser out."""
    logout_user()


def signed_in_user() -> User:
    """The signed-in user of this request (views behind `login_required` only)."""
    return current_user._get_current_object()


def roles_required(
    *roles: Role, message: str = NOT_HERE
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Who may see a view, said once above it: anonymous callers are sent to sign in (401 in
    the API), and to a signed-in user of another role the view does not exist (404, saying
    `message`)."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            if not current_user.is_authenticated:
                return cast(R, current_app.login_manager.unauthorized())  # type: ignore[attr-defined]
            if Role(signed_in_user().role) not in roles:
                raise NotFound(message)
            return view(*args, **kwargs)

        return guarded

    return decorate
