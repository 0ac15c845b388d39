"""Administrator changes to the directory and the user base, each one audited.

These functions add to the session and flush; the caller commits, so a batch (a CSV import,
the demo seed) lands whole or not at all.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import select

from domain.vocabulary import ConsoleType, Role
from service.audit import audit
from service.auth import SessionEnd, check_new_password, end_sessions, hash_password
from service.directory import is_valid_code, normalise_code
from service.errors import Conflict, Invalid, NotFound
from service.extensions import db
from service.models import Console, Instance, Relationship, User, normalise_email


def _code(value: str, field: str = "code") -> str:
    code = normalise_code(value)
    if not is_valid_code(code):
        raise Invalid(
            f"{value!r} is not a valid code.",
            fields={field: ["1-64 letters, digits, '.', '-' or '_', with at least one letter."]},
        )
    return code


def _name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > 200:
        raise Invalid("A name is required.", fields={"name": ["Between 1 and 200 characters."]})
    return name


def _named(values: dict[str, str]) -> dict[str, Any]:
    """The values as the events' detail has always named them (beside `before`/`after`)."""
    return dict(values)


def upsert_console(
    code: str, name: str, type_: str, actor: str, reason: str | None = None
) -> Console:
    """Create a console, or update the name and type of the one with this code."""
    code = _code(code)
    try:
        console_type = ConsoleType(type_.strip().lower())
    except ValueError:
        choices = ", ".join(t.value for t in ConsoleType)
        raise Invalid(
            f"Unknown console type {type_!r}.", fields={"type": [f"One of: {choices}."]}
        ) from None
    console = db.session.execute(select(Console).where(Console.code == code)).scalar_one_or_none()
    if console is None:
        console = Console(code=code, name=_name(name), type=console_type)
        db.session.add(console)
        after = {"name": console.name, "type": console_type.value}
        audit(
            actor,
            "console.created",
            console,
            code,
            reason,
            **_named(after),
            before=None,
            after=after,
        )
    elif (console.name, console.type) != (_name(name), console_type):
        before = {"name": console.name, "type": ConsoleType(console.type).value}
        console.name, console.type = _name(name), console_type
        after = {"name": console.name, "type": console_type.value}
        audit(
            actor,
            "console.updated",
            console,
            code,
            reason,
            **_named(after),
            before=before,
            after=after,
        )
    db.session.flush()
    return console


def upsert_instance(code: str, name: str, actor: str, reason: str | None = None) -> Instance:
    """Create an instance, or update the name of the one with this company code."""
    code = _code(code)
    instance = db.session.execute(
        select(Instance).where(Instance.code == code)
    ).scalar_one_or_none()
    if instance is None:
        instance = Instance(code=code, name=_name(name))
        db.session.add(instance)
        after = {"name": instance.name}
        audit(
            actor,
            "instance.created",
            instance,
            code,
            reason,
            **_named(after),
            before=None,
            after=after,
        )
    elif instance.name != _name(name):
        before = {"name": instance.name}
        instance.name = _name(name)
        after = {"name": instance.name}
        audit(
            actor,
            "instance.updated",
            instance,
            code,
            reason,
            **_named(after),
            before=before,
            after=after,
        )
    db.session.flush()
    return instance


def set_relationship(
    console: Console,
    instance: Instance,
    *,
    access_enabled: bool,
    linked: bool,
    actor: str,
    reason: str | None = None,
) -> Relationship:
    """Set both flags of a console-instance relationship, creating it if needed."""
    row = db.session.execute(
        select(Relationship).where(
            Relationship.console_id == console.id, Relationship.instance_id == instance.id
        )
    ).scalar_one_or_none()
    if row is None:
        row = Relationship(console=console, instance=instance)
        db.session.add(row)
    before = None if row.id is None else _flags(row)
    row.access_enabled, row.linked = access_enabled, linked
    if before != _flags(row):
        audit(
            actor,
            "relationship.set",
            row,
            f"{console.code}/{instance.code}",
            reason,
            access_enabled=access_enabled,
            linked=linked,
            before=before,
            after=_flags(row),
        )
    db.session.flush()
    return row


def _flags(row: Relationship) -> dict[str, bool]:
    return {"access_enabled": bool(row.access_enabled), "linked": bool(row.linked)}


def check_scope(role: Role, console: Console | None, instances: list[Instance]) -> None:
    """Refuse a scope that does not fit the role: partners need a console, instance admins
    instances, and no other role has either."""
    if role == Role.PARTNER and console is None:
        raise Invalid("A partner works from a console.", fields={"console": ["Required."]})
    if role == Role.INSTANCE_ADMIN and not instances:
        raise Invalid("An instance admin needs instances.", fields={"instances": ["Required."]})
    if role != Role.PARTNER and console is not None:
        raise Invalid("Only partners have a console.", fields={"console": ["Not for this role."]})
    if role != Role.INSTANCE_ADMIN and instances:
        raise Invalid(
            "Only instance admins have instances.", fields={"instances": ["Not for this role."]}
        )


def create_user(
    username: str,
    *,
    role: str,
    password: str,
    actor: str,
    display_name: str | None = None,
    email: str | None = None,
    console: Console | None = None,
    instances: Iterable[Instance] = (),
    reason: str | None = None,
) -> User:
    """Create a user whose scope fits the role: partners need a console, admins instances."""
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise Invalid("Invalid username.", fields={"username": ["1-64 characters, no spaces."]})
    try:
        user_role = Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise Invalid(f"Unknown role {role!r}.", fields={"role": [f"One of: {choices}."]}) from None
    instances = list(instances)
    check_scope(user_role, console, instances)
    if len(password) < 4:
        raise Invalid("The password is too short.", fields={"password": ["At least 4 chars."]})
    if db.session.execute(select(User.id).where(User.username == username)).first():
        raise Conflict(f"There is already a user {username!r}.", fields={"username": ["Taken."]})
    email = normalise_email(email)
    if email and db.session.execute(select(User.id).where(User.email == email)).first():
        raise Conflict(
            f"Another user has the e-mail address {email}.", fields={"email": ["Taken."]}
        )
    user = User(
        username=username,
        display_name=(display_name or username).strip(),
        email=email,
        role=user_role,
        password_hash=hash_password(password),
        console=console,
        instances=instances,
    )
    db.session.add(user)
    db.session.flush()
    audit(
        actor,
        "user.created",
        user,
        username,
        reason,
        role=user_role.value,
        console=console.code if console else None,
        instances=[i.code for i in instances],
        before=None,
        after=user_values(user),
    )
    return user


def user_values(user: User) -> dict[str, Any]:
    """What an administrator may change of a user, as the audit trail records it."""
    return {
        "display_name": user.display_name,
        "email": user.email,
        "role": Role(user.role).value,
        "console": user.console.code if user.console else None,
        "instances": [instance.code for instance in user.instances],
        "active": bool(user.active),
    }


def find_user(username: str) -> User:
    """The user with this username, or `NotFound`."""
    user = db.session.execute(
        select(User).where(User.username == username.strip())
    ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"There is no user {username!r}.")
    return user


def reset_password(user: User, password: str, actor: str) -> int:
    """Give the user a new password and end all their sessions; how many were ended."""
    check_new_password(password, field="password")
    user.password_hash = hash_password(password)
    ended = end_sessions(user, SessionEnd.PASSWORD_RESET)
    audit(actor, "user.password_reset", user, user.username, sessions_ended=ended)
    db.session.flush()
    return ended


def set_active(user: User, active: bool, actor: str, reason: str | None = None) -> int:
    """Let the user sign in and use their API tokens again, or stop them at once: a
    deactivation ends all their sessions (how many is returned), and their tokens are
    refused while they stay inactive."""
    if bool(user.active) == active:
        return 0
    user.active = active
    user.version += 1
    ended = 0 if active else end_sessions(user, SessionEnd.DEACTIVATED)
    action = "user.activated" if active else "user.deactivated"
    audit(
        actor,
        action,
        user,
        user.username,
        reason,
        before={"active": not active},
        after={"active": active},
        sessions_ended=ended,
    )
    db.session.flush()
    return ended


_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n", ""}


def _flag(value: str | None, field: str) -> bool:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid(f"{field} must be true or false.", fields={field: ["true or false"]})


CSV_COLUMNS = {
    "consoles": ("code", "name", "type"),
    "instances": ("code", "name"),
    "relationships": ("console", "instance", "access_enabled", "linked"),
}


@dataclass
class ImportResult:
    """What a CSV import did, or the errors that stopped it (then it wrote nothing)."""

    rows: int
    errors: list[str]


def import_csv(kind: str, stream: IO[str], actor: str) -> ImportResult:
    """Create or update consoles, instances or relationships from CSV, all or nothing."""
    columns = CSV_COLUMNS[kind]
    reader = csv.DictReader(stream)
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        return ImportResult(0, [f"missing column(s): {', '.join(missing)}"])
    errors: list[str] = []
    rows = 0
    for line, row in enumerate(reader, start=2):
        rows += 1
        try:
            with db.session.begin_nested():
                import_row(kind, row, actor)
        except (Invalid, Conflict) as exc:
            details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
            errors.append(f"line {line}: {exc.message}" + (f" ({details})" if details else ""))
    if errors:
        db.session.rollback()
    else:
        db.session.commit()
    return ImportResult(rows, errors)


def import_row(kind: str, row: dict[str, str], actor: str) -> None:
    if kind == "consoles":
        upsert_console(row["code"] or "", row["name"] or "", row["type"] or "", actor)
    elif kind == "instances":
        upsert_instance(row["code"] or "", row["name"] or "", actor)
    else:
        console = _find(Console, row["console"], "console")
        instance = _find(Instance, row["instance"], "instance")
        set_relationship(
            console,
            instance,
            access_enabled=_flag(row["access_enabled"], "access_enabled"),
            linked=_flag(row["linked"], "linked"),
            actor=actor,
        )


def _find(model: type[Console] | type[Instance], code: str | None, field: str) -> Any:
    found = db.session.execute(
        select(model).where(model.code == normalise_code(code or ""))
    ).scalar_one_or_none()
    if found is None:
        raise Invalid(f"Unknown {field} {code!r}.", fields={field: ["Import it first."]})
    return found
