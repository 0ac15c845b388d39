"""Who the caller is: passwords, sign-in throttling, personal API tokens, sessions and CSRF."""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import ParamSpec, TypeVar, cast

from flask import (
    Flask,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy import Update, func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response as WerkzeugResponse

from domain.vocabulary import Role
from service.audit import audit
from service.errors import Invalid, NotFound, Throttled, Unauthorized
from service.extensions import SAFE_METHODS, csrf, db, login_manager, reading_only
from service.models import ApiToken, LoginAttempt, User, UserSession, utcnow

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
# Where the session cookie keeps the secret that names its session record (`UserSession`).
SESSION_KEY = "_session_secret"
MAX_PASSWORD_LENGTH = 1024
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

    The right password of a user with a second factor is not a success yet: the code that
    follows is the attempt recorded (see `service.mfa`), so typing the password again does
    not wipe out wrong codes.
    """
    username = username.strip()
    check_throttle(username)
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    matches = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if not matches or user is None or not user.active:
        why = "unknown_user" if user is None else "deactivated" if matches else "wrong_password"
        record_attempt(username, user, succeeded=False, reason=why)
        raise Unauthorized(WRONG_CREDENTIALS)
    if not user.has_second_factor:
        record_attempt(username, user, succeeded=True)
    return user


def check_throttle(username: str) -> None:
    """Refuse a sign-in attempt (`Throttled`, with how long to wait) while this username
    from this address, or this address, has failed too often. A refused attempt is not
    recorded: its wait was audited when it began."""
    wait = _wait_before_trying(username, _client_address(), utcnow())
    if wait is not None:
        raise Throttled(_throttled_message(wait.seconds), retry_after=wait.seconds)


def record_attempt(
    username: str, user: User | None, *, succeeded: bool, reason: str = "wrong_password"
) -> None:
    """Record one sign-in attempt (a password, or a second factor's code) of this address, so
    the limits hold across all web processes, and audit it with the username, the address
    and why it failed, never the secret; a failure that starts a wait audits the wait too."""
    now = utcnow()
    address = _client_address()
    via = request.endpoint
    db.session.add(
        LoginAttempt(username=username, remote_addr=address, succeeded=succeeded, at=now)
    )
    if succeeded:
        audit(username, "sign_in.succeeded", user, username, address=address, via=via)
    else:
        audit(
            ANONYMOUS,
            "sign_in.failed",
            user or User,
            username,
            address=address,
            reason=reason,
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


def check_new_password(password: str, field: str = "new_password") -> None:
    """Refuse a password a person may not choose (`Invalid`, the message under `field`)."""
    shortest = int(current_app.config["PASSWORD_MIN_LENGTH"])
    if len(password) < shortest:
        raise Invalid(
            "The password is too short.", fields={field: [f"At least {shortest} characters."]}
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(
            "The password is too long.",
            fields={field: [f"At most {MAX_PASSWORD_LENGTH} characters."]},
        )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user: User, name: str | None = None) -> tuple[ApiToken, str]:
    """A new personal API token for the user, audited; the secret is returned once and never
    stored."""
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
    db.session.flush()
    audit(
        user.username,
        "token.created",
        token,
        token.prefix,
        token=token.id,
        name=name,
        expires_at=token.expires_at.isoformat(timespec="seconds"),
        via=request.endpoint if has_request_context() else None,
    )
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
    """Revoke one of the user's own tokens, audited; another user's token is not found."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound(f"No API token {token_id}.")
    token.revoked_at = utcnow()
    audit(
        user.username,
        "token.revoked",
        token,
        token.prefix,
        token=token.id,
        name=token.name,
        via=request.endpoint if has_request_context() else None,
    )
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
        _note(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))
    return user


def _note(change: Update) -> None:
    """Write what identifying the caller noted on the way (a last use, a session found over);
    if the write lock stays taken, the note is made by a later request."""
    try:
        db.session.execute(change)
        db.session.commit()
    except OperationalError:
        db.session.rollback()


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
        return _user_from_session(user_id)

    @login_manager.request_loader
    def _load_from_request(_request: object) -> User | None:
        return _user_from_bearer() if _has_authorization() else None

    login_manager.unauthorized_handler(_unauthorized)


class SessionEnd(StrEnum):
    """Why a session ended, as `UserSession.end_reason` keeps it."""

    SIGNED_OUT = "signed_out"
    SIGNED_OUT_EVERYWHERE = "signed_out_everywhere"
    ENDED = "ended_from_settings"  # from the list of sessions on the settings page
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    PASSWORD_LINK = "password_link"  # a new password chosen through an e-mailed link
    DEACTIVATED = "deactivated"
    IDLE = "idle"
    EXPIRED = "expired"


def _ended_message(reason: str) -> str:
    """What the browser of an ended session is told on its way to the sign-in page."""
    again = "Sign in again to continue."
    config = current_app.config
    messages: dict[str, str] = {
        SessionEnd.SIGNED_OUT: f"This session was signed out. {again}",
        SessionEnd.SIGNED_OUT_EVERYWHERE: f"You signed out everywhere. {again}",
        SessionEnd.ENDED: f"This session was ended from the settings page. {again}",
        SessionEnd.PASSWORD_CHANGED: "Your password was changed, which signed out your other "
        "sessions. Sign in with the new password.",
        SessionEnd.PASSWORD_RESET: "An administrator reset your password, which signed you "
        "out. Sign in with the new password.",
        SessionEnd.PASSWORD_LINK: "Your password was changed through a link sent by e-mail, "
        "which signed you out. Sign in with the new password.",
        SessionEnd.DEACTIVATED: "Your account was deactivated, which signed you out.",
        SessionEnd.IDLE: f"You were signed out after {int(config['SESSION_IDLE_MINUTES'])} "
        f"minutes without activity. {again}",
        SessionEnd.EXPIRED: "You were signed out: a session lasts at most "
        f"{_hours(current_app.permanent_session_lifetime)}. {again}",
    }
    return messages.get(reason, f"This session has ended. {again}")


def session_rules() -> str:
    """When a session ends by itself, in a sentence for people."""
    idle = int(current_app.config["SESSION_IDLE_MINUTES"])
    return (
        f"A session ends when you sign out, after {idle} minutes without activity, and at the "
        f"latest {_hours(current_app.permanent_session_lifetime)} after signing in."
    )


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hours" if hours != 1 else "1 hour"


def _lapsed(record: UserSession, now: datetime) -> SessionEnd | None:
    """Why a session that nobody ended is over by now, if it is."""
    if not record.user.active:  # deactivated by other means than `service.admin.set_active`
        return SessionEnd.DEACTIVATED
    if now - record.created_at >= current_app.permanent_session_lifetime:
        return SessionEnd.EXPIRED
    if now - record.last_seen_at >= timedelta(
        minutes=int(current_app.config["SESSION_IDLE_MINUTES"])
    ):
        return SessionEnd.IDLE
    return None


def _user_from_session(user_id: str) -> User | None:
    """The user of the request's session cookie while its session record is current.

    One indexed read per request; the use is recorded at most once a minute (as for API
    tokens), which is as closely as the idle limit is kept. A session found over (ended
    anywhere, idle or past its lifetime) is forgotten by this browser, which is told why.
    """
    secret = session.get(SESSION_KEY)
    if not isinstance(secret, str):  # a cookie from before sessions were recorded
        _forget_browser()
        return None
    now = utcnow()
    with reading_only():
        record = db.session.execute(
            select(UserSession)
            .options(joinedload(UserSession.user))
            .where(UserSession.digest == _digest(secret))
        ).scalar_one_or_none()
        if record is None or str(record.user_id) != user_id:
            db.session.rollback()
            _forget_browser()
            return None
        user, record_id, last_seen = record.user, record.id, record.last_seen_at
        ended = record.end_reason if record.ended_at is not None else None
        lapsed = None if ended else _lapsed(record, now)
        _end_read()
    if ended or lapsed:
        if lapsed:
            _note(
                update(UserSession)
                .where(UserSession.id == record_id, UserSession.ended_at.is_(None))
                .values(ended_at=now, end_reason=lapsed)
            )
        _forget_browser()
        if not request.path.startswith("/api/"):
            flash(_ended_message(ended or lapsed or ""))
        return None
    g.linkdesk_session_id = record_id
    if now - last_seen > timedelta(minutes=1):
        _note(update(UserSession).where(UserSession.id == record_id).values(last_seen_at=now))
    return user


def _forget_browser() -> None:
    """Sign this browser out and drop all its session held, the CSRF secret included."""
    session.clear()
    g.pop("linkdesk_session_id", None)


def current_session_id() -> int | None:
    """The session record of this request's browser, once its user is loaded; else None."""
    return cast(int | None, g.get("linkdesk_session_id"))


def begin_session(user: User) -> None:
    """Sign the user in to this browser: every way of signing in ends here.

    The browser's Flask session starts afresh (whatever it held before, a half-done sign-in
    or the CSRF secret, is dropped: no session fixation, no CSRF token from before), and a
    new session record is written for the cookie to name.
    """
    if not user.active:
        raise Unauthorized(WRONG_CREDENTIALS)
    session.clear()
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    record = UserSession(
        user_id=user.id,
        digest=_digest(secret),
        created_at=now,
        last_seen_at=now,
        remote_addr=_client_address(),
        user_agent=(request.user_agent.string or "")[:256],
    )
    db.session.add(record)
    db.session.flush()
    audit(
        user.username,
        "session.started",
        user,
        user.username,
        address=record.remote_addr,
        session=record.id,
    )
    db.session.commit()
    login_user(user)
    session[SESSION_KEY] = secret
    g.linkdesk_session_id = record.id


def end_session() -> None:
    """Sign this browser out, ending its session record so a copy of its cookie is refused."""
    secret = session.get(SESSION_KEY)
    if isinstance(secret, str):
        record = db.session.execute(
            select(UserSession)
            .options(joinedload(UserSession.user))
            .where(UserSession.digest == _digest(secret), UserSession.ended_at.is_(None))
        ).scalar_one_or_none()
        if record is not None:
            _end(record, SessionEnd.SIGNED_OUT)
            db.session.commit()
    logout_user()
    _forget_browser()


def _end(record: UserSession, reason: SessionEnd) -> None:
    record.ended_at = utcnow()
    record.end_reason = reason
    username = record.user.username
    audit(
        username,
        "session.ended",
        record.user,
        username,
        reason=reason.value,
        session=record.id,
        address=_client_address(),
    )


def end_sessions(user: User, reason: SessionEnd, keep_current: bool = False) -> int:
    """End the user's sessions, all of them or all but this browser's (`keep_current`); how
    many were ended. The one way to sign a person out elsewhere.

    The caller audits what it did and commits, so the change that ends the sessions (a new
    password, a deactivation) lands with their end.
    """
    condition = [UserSession.user_id == user.id, UserSession.ended_at.is_(None)]
    if keep_current and has_request_context() and isinstance(session.get(SESSION_KEY), str):
        condition.append(UserSession.digest != _digest(session[SESSION_KEY]))
    ended = db.session.execute(
        update(UserSession).where(*condition).values(ended_at=utcnow(), end_reason=reason)
    )
    return int(ended.rowcount)  # type: ignore[attr-defined]


def list_sessions(user: User) -> list[UserSession]:
    """The user's sessions still current: this browser's, then the most recently used first."""
    now = utcnow()
    idle = timedelta(minutes=int(current_app.config["SESSION_IDLE_MINUTES"]))
    found = list(
        db.session.execute(
            select(UserSession)
            .where(
                UserSession.user_id == user.id,
                UserSession.ended_at.is_(None),
                UserSession.last_seen_at > now - idle,
                UserSession.created_at > now - current_app.permanent_session_lifetime,
            )
            .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
        ).scalars()
    )
    return sorted(found, key=lambda record: record.id != current_session_id())


def end_one_session(user: User, session_id: int) -> bool:
    """End one of the user's own sessions; whether it was this browser's (then signed out).
    Another user's session, or one already over, is not found."""
    record = db.session.get(UserSession, session_id)
    if record is None or record.user_id != user.id or record.ended_at is not None:
        raise NotFound(f"No current session {session_id}.")
    if record.id == current_session_id():
        end_session()
        return True
    _end(record, SessionEnd.ENDED)
    db.session.commit()
    return False


def sign_out_everywhere(user: User) -> int:
    """End every session of the user, this browser's too; how many were ended."""
    ended = end_sessions(user, SessionEnd.SIGNED_OUT_EVERYWHERE)
    audit(
        user.username,
        "session.ended",
        user,
        user.username,
        reason=SessionEnd.SIGNED_OUT_EVERYWHERE.value,
        sessions_ended=ended,
        address=_client_address(),
    )
    db.session.commit()
    logout_user()
    _forget_browser()
    return ended


def change_password(user: User, current: str, new: str, again: str) -> int:
    """Change the signed-in user's own password and end their other sessions; how many.

    The current password is checked as a sign-in is (throttled and audited), so a browser
    left signed in cannot be used to guess it.
    """
    problems: dict[str, list[str]] = {}
    try:
        check_new_password(new)
    except Invalid as exc:
        problems |= exc.fields
    if not problems and new != again:
        problems["new_password_again"] = ["The two new passwords differ."]
    if not problems and new == current:
        problems["new_password"] = ["Choose a password other than the current one."]
    try:
        authenticate(user.username, current)
    except Unauthorized:
        problems["current_password"] = ["This is not your current password."]
    if problems:
        raise Invalid("The password was not changed.", fields=problems)
    user.password_hash = hash_password(new)
    ended = end_sessions(user, SessionEnd.PASSWORD_CHANGED, keep_current=True)
    audit(
        user.username,
        "user.password_changed",
        user,
        user.username,
        sessions_ended=ended,
        address=_client_address(),
    )
    db.session.commit()
    return ended


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
