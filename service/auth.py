"""Who the caller is: passwords, sign-in throttling, personal API tokens, sessions and CSRF."""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
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
from service.audit import audit
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
# Who the audit trail names for a sign-in that failed: nobody is known to have tried.
ANONYMOUS = "anonymous"
P = ParamSpec("P")
R = TypeVar("R")


def hash_password(password: str) -> str:
    """A salted, slow hash of a password for storage (method from PASSWORD_HASH_METHOD)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def _client_address() -> str:
    return request.remote_addr or "unknown"


def authenticate(username: str, password: str) -> User:
    """The active user with these credentials, or `Unauthorized`; throttled per username and
    client address (see `_wait_before_trying`), so a stranger's failures never lock the
    owner of the account out.

    Every attempt is recorded so the limit holds across all web processes, and audited with
    the username, the address and why it failed, never the password. An attempt refused
    while it must wait is not recorded: its wait was audited when it began.
    """
    now = utcnow()
    address = _client_address()
    username = username.strip()
    wait = _wait_before_trying(username, address, now)
    if wait is not None:
        raise Throttled(_throttled_message(wait.seconds), retry_after=wait.seconds)

    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    matches = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    ok = matches and user is not None and user.active
    db.session.add(LoginAttempt(username=username, remote_addr=address, succeeded=ok, at=now))
    via = request.endpoint
    if ok:
        audit(username, "sign_in.succeeded", user, username, address=address, via=via)
    else:
        why = "unknown_user" if user is None else "deactivated" if matches else "wrong_password"
        audit(
            ANONYMOUS,
            "sign_in.failed",
            user or User,
            username,
            address=address,
            reason=why,
            via=via,
        )
        db.session.flush()
        wait = _wait_before_trying(username, address, now)
        if wait is not None:
            audit(
                ANONYMOUS,
                "sign_in.throttled",
                user or User,
                username,
                address=address,
                reason=wait.reason,
                failures=wait.failures,
                retry_after=wait.seconds,
                via=via,
            )
    db.session.commit()
    if not ok or user is None:
        raise Unauthorized(WRONG_CREDENTIALS)
    return user


@dataclass(frozen=True)
class Wait:
    """How long the next sign-in attempt must wait, after how many failures, and why."""

    seconds: int
    failures: int
    reason: str  # "repeated_failures" (this username from this address) or "address_limit"


def _wait_before_trying(username: str, address: str, now: datetime) -> Wait | None:
    """The wait before the next attempt at this username from this address; None if none.

    After `LOGIN_MAX_FAILURES` failures of the username from the address since its last
    success there, each attempt waits `LOGIN_DELAY_SECONDS` after the last failure, doubled
    with every further failure up to `LOGIN_MAX_DELAY_SECONDS`. An address failing four
    times that often with any usernames (spraying passwords across accounts) waits until
    its oldest failure stops counting. Failures count for `LOGIN_WINDOW_SECONDS`.
    """
    config = current_app.config
    max_failures = int(config["LOGIN_MAX_FAILURES"])
    window = timedelta(seconds=int(config["LOGIN_WINDOW_SECONDS"]))
    since = now - window
    last_success = db.session.execute(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username,
            LoginAttempt.remote_addr == address,
            LoginAttempt.succeeded.is_(True),
        )
    ).scalar_one()
    failures, last_failure = db.session.execute(
        select(func.count(), func.max(LoginAttempt.at)).where(
            LoginAttempt.username == username,
            LoginAttempt.remote_addr == address,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at > (max(since, last_success) if last_success else since),
        )
    ).one()
    if failures >= max_failures:
        doublings = min(failures - max_failures, 32)
        delay = min(
            int(config["LOGIN_DELAY_SECONDS"]) * 2**doublings,
            int(config["LOGIN_MAX_DELAY_SECONDS"]),
        )
        until = last_failure + timedelta(seconds=delay)
        if until > now:
            return Wait(_seconds_until(until, now), failures, "repeated_failures")
    failures, oldest = db.session.execute(
        select(func.count(), func.min(LoginAttempt.at)).where(
            LoginAttempt.remote_addr == address,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.at > since,
        )
    ).one()
    if failures >= max_failures * 4:
        return Wait(_seconds_until(oldest + window, now), failures, "address_limit")
    return None


def _seconds_until(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def _throttled_message(seconds: int) -> str:
    wait = f"{seconds} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"
    return f"Too many failed sign-in attempts. Try again in {wait}."


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
