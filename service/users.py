"""The administrator's work on users, for the admin pages and the API alike: find, create,
edit, deactivate and reactivate users, send one-time password links and revoke tokens.

Every write lands in one transaction with its audit event, which says who did it, what the
user was before and after, and why when a reason is given. An edit names the version of the
user it was made from: an edit of an older version is refused (`StaleVersion`, 409 with the
current values) instead of overwriting what someone else changed in between.

Password links are also how a person who forgot their password gets a new one: the link is
sent by e-mail, is good once and for `PASSWORD_LINK_MINUTES`, and only the digest of its
secret is stored.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app, url_for
from sqlalchemy import func, or_, select, update

from domain.vocabulary import Role
from service import admin, auth, mail
from service.audit import audit
from service.directory import Page, Ref, normalise_code, paginate
from service.errors import Conflict, Invalid, NotFound, Throttled
from service.extensions import db
from service.models import (
    ApiToken,
    AuditEvent,
    Console,
    Instance,
    OutboxEmail,
    PasswordLink,
    User,
    is_numeral,
    normalise_email,
    parse_id,
    utcnow,
)

LINK_REQUESTED = "password_link.requested"
EDITABLE = ("display_name", "email", "role", "console", "instances")


class StaleVersion(Conflict):
    """The edit was made from an older version of the user: `current` is what it is now."""

    code = "stale_version"

    def __init__(self, user: User) -> None:
        super().__init__(
            f"{user.username} was changed by someone else since you loaded it (now version "
            f"{user.version}): nothing was saved. Review the current values and try again."
        )
        self.current = user


@dataclass(frozen=True)
class UserFilters:
    """The user list's search and filters."""

    q: str | None = None  # part of the username, the name or the e-mail address
    role: Role | None = None
    active: bool | None = None


def list_users(filters: UserFilters, page: int, per_page: int) -> Page:
    """Users matching the search and filters, by username."""
    query = select(User).order_by(User.username)
    if filters.q and filters.q.strip():
        pattern = "%" + _escape_like(filters.q.strip().lower()) + "%"
        query = query.where(
            or_(
                func.lower(User.username).like(pattern, escape="\\"),
                func.lower(User.display_name).like(pattern, escape="\\"),
                func.lower(func.coalesce(User.email, "")).like(pattern, escape="\\"),
            )
        )
    if filters.role is not None:
        query = query.where(User.role == filters.role)
    if filters.active is not None:
        query = query.where(User.active.is_(filters.active))
    return paginate(query, page, per_page)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_user(user_id: int) -> User:
    """The user with this ID, or `NotFound`."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"There is no user {user_id}.")
    return user


def _find(model: type[Console] | type[Instance], ref: Ref, field: str) -> Any:
    """A console or instance (not removed) by numeric ID or code; else `Invalid` on `field`."""
    if isinstance(ref, int) or is_numeral(str(ref).strip()):
        number = ref if isinstance(ref, int) else parse_id(str(ref).strip())
        condition = model.id == (number or 0)
    else:
        condition = model.code == normalise_code(str(ref))
    found = db.session.execute(
        select(model).where(condition, model.removed_at.is_(None))
    ).scalar_one_or_none()
    if found is None:
        noun = "console" if model is Console else "instance"
        raise Invalid(f"There is no {noun} {ref!r}.", fields={field: [f"No {noun} {ref!r}."]})
    return found


def _scope(
    role: Role, console_ref: Ref | None, instance_refs: Iterable[Ref]
) -> tuple[Console | None, list[Instance]]:
    """The console and instances named, each of which must exist; the role's rules are
    `admin.check_scope`'s."""
    console = _find(Console, console_ref, "console") if console_ref is not None else None
    instances: list[Instance] = []
    for ref in instance_refs:
        found = _find(Instance, ref, "instances")
        if found not in instances:
            instances.append(found)
    admin.check_scope(role, console, instances)
    return console, instances


def _role(value: str | Role) -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise Invalid(
            f"Unknown role {value!r}.", fields={"role": [f"One of: {choices}."]}
        ) from None


def create_user(
    actor: User,
    *,
    username: str,
    display_name: str | None,
    email: str | None,
    role: str | Role,
    console: Ref | None = None,
    instances: Iterable[Ref] = (),
    reason: str | None = None,
) -> User:
    """Create a user with the role's scope and no password anyone knows: the person chooses
    one through a password link (`send_password_link`)."""
    user_role = _role(role)
    console_obj, instance_objs = _scope(user_role, console, instances)
    _check_display_name(display_name)
    user = admin.create_user(
        username,
        role=user_role.value,
        password=secrets.token_urlsafe(32),  # unknown to all until a link sets one
        actor=actor.username,
        display_name=display_name,
        email=_check_email(email),
        console=console_obj,
        instances=instance_objs,
        reason=reason,
    )
    db.session.commit()
    return user


def _check_display_name(name: str | None) -> None:
    if name is not None and (not name.strip() or len(name.strip()) > 200):
        raise Invalid("A name is required.", fields={"display_name": ["1-200 characters."]})


def _check_email(email: str | None) -> str | None:
    address = normalise_email(email)
    if address is not None and (
        len(address) > 254 or "@" not in address.strip("@") or any(c.isspace() for c in address)
    ):
        raise Invalid("Not an e-mail address.", fields={"email": ["An address like a@b.example."]})
    return address


def update_user(
    actor: User, user: User, version: int, changes: dict[str, Any], reason: str | None = None
) -> User:
    """Change a user's name, e-mail, role and scope, from the version of the user the change
    was made on; an older version is refused (`StaleVersion`)."""
    if version != user.version:
        raise StaleVersion(user)
    before = admin.user_values(user)
    role = _role(changes.get("role", user.role))
    console_ref = changes.get("console", user.console_id)
    instance_refs = (
        changes["instances"] if "instances" in changes else [i.id for i in user.instances]
    )
    if role != user.role and "console" not in changes and role != Role.PARTNER:
        console_ref = None  # a role without a console drops the old one
    if role != user.role and "instances" not in changes and role != Role.INSTANCE_ADMIN:
        instance_refs = []
    console, instances = _scope(role, console_ref, instance_refs)
    if "display_name" in changes:
        _check_display_name(changes["display_name"])
    email = _check_email(changes["email"]) if "email" in changes else user.email
    if email and email != user.email:
        taken = db.session.execute(
            select(User.id).where(User.email == email, User.id != user.id)
        ).first()
        if taken:
            raise Conflict(
                f"Another user has the e-mail address {email}.", fields={"email": ["Taken."]}
            )
    if user.role == Role.ADMIN and role != Role.ADMIN:
        _keep_an_admin(user, "demote")
    if "display_name" in changes:
        user.display_name = changes["display_name"].strip()
    user.email = email
    user.role = role
    user.console = console
    user.instances = instances
    after = admin.user_values(user)
    if after != before:
        user.version += 1
        changed = [key for key in before if before[key] != after[key]]
        audit(
            actor.username,
            "user.updated",
            user,
            user.username,
            reason,
            before={key: before[key] for key in changed},
            after={key: after[key] for key in changed},
        )
    db.session.commit()
    return user


def _keep_an_admin(user: User, doing: str) -> None:
    """Refuse to leave LinkDesk without an active administrator. The active admins' rows are
    locked (PostgreSQL) so two admins cannot each remove the other at the same time."""
    admins = db.session.execute(
        select(User.id).where(User.role == Role.ADMIN, User.active.is_(True)).with_for_update()
    ).scalars()
    if set(admins) <= {user.id}:
        raise Conflict(
            f"{user.username} is the last active administrator: you cannot {doing} them. "
            "Make another user an administrator first."
        )


def set_active(
    actor: User, user: User, active: bool, reason: str | None = None, version: int | None = None
) -> int:
    """Deactivate a user (their sessions end, their tokens stop working) or reactivate them;
    how many sessions were ended. Nobody deactivates themselves, nor the last active admin."""
    if version is not None and version != user.version:
        raise StaleVersion(user)
    if not active and user.active:
        if user.id == actor.id:
            raise Conflict("You cannot deactivate yourself: ask another administrator.")
        if user.role == Role.ADMIN:
            _keep_an_admin(user, "deactivate")
    ended = admin.set_active(user, active, actor.username, reason)
    db.session.commit()
    return ended


def revoke_token(actor: User, user: User, token_id: int, reason: str | None = None) -> None:
    """Revoke one of a user's API tokens; it stops working at once."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound(f"No API token {token_id} of {user.username}.")
    token.revoked_at = utcnow()
    audit(
        actor.username,
        "token.revoked",
        user,
        user.username,
        reason,
        token=token.id,
        name=token.name,
        prefix=token.prefix,
    )
    db.session.commit()


# Password links ------------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _link_url(secret: str) -> str:
    """The link's address: under PUBLIC_URL when set, else this request's own host."""
    path = url_for("web.choose_password", secret=secret)
    base = current_app.config["PUBLIC_URL"]
    if base:
        return str(base).rstrip("/") + path
    return url_for("web.choose_password", secret=secret, _external=True)


@dataclass(frozen=True)
class SentLink:
    """A password link sent, or waiting in the outbox when SMTP is not set or failed."""

    email: OutboxEmail
    sent: bool


def send_password_link(user: User, requested_by: str, reason: str | None = None) -> SentLink:
    """E-mail the user a one-time link to choose a new password; earlier unused links stop
    working. The user needs an e-mail address and must be active."""
    if not user.email:
        raise Invalid(
            f"{user.username} has no e-mail address to send the link to.",
            fields={"email": ["Add an e-mail address first."]},
        )
    if not user.active:
        raise Conflict(f"{user.username} is deactivated: reactivate them first.")
    now = utcnow()
    minutes = int(current_app.config["PASSWORD_LINK_MINUTES"])
    db.session.execute(
        update(PasswordLink)
        .where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
        .values(expires_at=now)
    )
    secret = secrets.token_urlsafe(32)
    link = PasswordLink(
        user_id=user.id,
        digest=_digest(secret),
        email=user.email,
        requested_by=requested_by,
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    db.session.add(link)
    db.session.flush()
    email = OutboxEmail(
        dedupe_key=f"password-link:{link.id}",
        recipient=user.email,
        subject="[LinkDesk] Choose your password",
        body=(
            f"Hello {user.display_name},\n\n"
            f"Choose a password for your LinkDesk account {user.username} at this address:\n\n"
            f"{_link_url(secret)}\n\n"
            f"The link works once, for {minutes} minutes. If you did not expect it, ignore "
            "this e-mail: your password stays as it is.\n"
        ),
    )
    db.session.add(email)
    audit(
        requested_by,
        "password_link.sent",
        user,
        user.username,
        reason,
        email=user.email,
        expires_at=link.expires_at.isoformat(),
    )
    try:
        sent = mail.deliver(current_app.config, email)
    except (OSError, smtplib.SMTPException) as exc:
        current_app.logger.warning("password link for %s not sent: %s", user.username, exc)
        sent = False  # it waits in the outbox
    db.session.commit()
    return SentLink(email, sent)


def forgot_password(address: str) -> None:
    """Send a password link to the active user with this e-mail address, if there is one.

    Whether there is one is never told: the answer and the throttling are the same either
    way. An address gets at most `PASSWORD_LINK_LIMIT` links per
    `PASSWORD_LINK_WINDOW_SECONDS` (then `Throttled`, with how long to wait).
    """
    email = _check_email(address)
    if email is None:
        raise Invalid("Give your e-mail address.", fields={"email": ["Required."]})
    config = current_app.config
    window = timedelta(seconds=int(config["PASSWORD_LINK_WINDOW_SECONDS"]))
    now = utcnow()
    count, oldest = db.session.execute(
        select(func.count(), func.min(AuditEvent.at)).where(
            AuditEvent.action == LINK_REQUESTED,
            AuditEvent.object_ref == email,
            AuditEvent.at > now - window,
        )
    ).one()
    if count >= int(config["PASSWORD_LINK_LIMIT"]):
        seconds = max(1, math.ceil((oldest + window - now).total_seconds()))
        wait = f"{seconds} seconds" if seconds < 90 else f"{math.ceil(seconds / 60)} minutes"
        raise Throttled(
            f"Too many password links were asked for this address. Try again in {wait}.",
            retry_after=seconds,
        )
    user = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    audit(auth.ANONYMOUS, LINK_REQUESTED, PasswordLink, email, known=user is not None)
    if user is None or not user.active:
        db.session.commit()
        return
    send_password_link(user, auth.ANONYMOUS)


def find_link(secret: str) -> PasswordLink:
    """The password link with this secret while it is good, else `NotFound` (a link used,
    expired, replaced by a newer one or never made all read the same)."""
    link = db.session.execute(
        select(PasswordLink).where(PasswordLink.digest == _digest(secret))
    ).scalar_one_or_none()
    if link is None or not link.usable_at(utcnow()) or not link.user.active:
        raise NotFound(
            "This password link does not work: it was used already, has expired or was "
            "replaced by a newer one. Ask for a new link."
        )
    return link


def choose_password(secret: str, password: str, again: str) -> User:
    """Set the password of the link's user, use the link up and end all their sessions."""
    link = find_link(secret)
    auth.check_new_password(password, field="password")
    if password != again:
        raise Invalid(
            "The password was not changed.",
            fields={"password_again": ["The two passwords differ."]},
        )
    user = link.user
    link.used_at = utcnow()
    user.password_hash = auth.hash_password(password)
    ended = auth.end_sessions(user, auth.SessionEnd.PASSWORD_LINK)
    audit(
        user.username,
        "user.password_set_by_link",
        user,
        user.username,
        link=link.id,
        requested_by=link.requested_by,
        sessions_ended=ended,
    )
    db.session.commit()
    return user
