"""The administrator's work on the directory, for the admin pages and the API alike: create
and edit consoles and instances, and override a relationship's flags.

Every write lands in one transaction with its audit event (who, before and after, and why).
An edit names the state of the console or instance it was made from (its ETag, a digest of
the editable values): an edit of anything else is refused (`StaleEntry`, 409 with the current
values) instead of overwriting what someone else changed in between. An override that
changes a relationship some open request is about is refused (`OpenRequests`, 409 naming the
requests) unless the administrator confirms it.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from domain.vocabulary import ConsoleType, RequestStatus
from service import admin
from service.directory import normalise_code
from service.errors import Conflict, Invalid, NotFound
from service.extensions import db
from service.models import (
    AuditEvent,
    Console,
    Instance,
    Relationship,
    Request,
    User,
    format_request_id,
)

OPEN_STATUSES = [status for status in RequestStatus if not status.is_terminal]


class StaleEntry(Conflict):
    """The edit was made from an older state of the console or instance: `current` is now."""

    code = "stale_version"

    def __init__(self, entry: Console | Instance) -> None:
        super().__init__(
            f"{entry.code} was changed by someone else since you loaded it: nothing was saved. "
            "Review the current values and try again."
        )
        self.current = entry


class OpenRequests(Conflict):
    """Open requests are about the relationship an override would change."""

    code = "open_request"

    def __init__(self, pair: str, requests: list[int]) -> None:
        names = ", ".join(format_request_id(number) for number in requests)
        super().__init__(
            f"Open request {names} is about {pair}: the override would change what it asks "
            "for. Nothing was saved; send it again with confirm to override anyway."
        )
        self.requests = requests


def values(entry: Console | Instance) -> dict[str, Any]:
    """What an administrator may change of a console or instance."""
    if isinstance(entry, Console):
        return {"name": entry.name, "type": ConsoleType(entry.type).value}
    return {"name": entry.name}


def etag(entry: Console | Instance) -> str:
    """The ETag of a console's or instance's editable state, quoted."""
    text = "\x1f".join(str(v) for v in values(entry).values())
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:16] + '"'


def get_console(console_id: int) -> Console:
    """The console (not removed) with this ID, or `NotFound`."""
    return _get(Console, console_id)


def get_instance(instance_id: int) -> Instance:
    """The instance (not removed) with this ID, or `NotFound`."""
    return _get(Instance, instance_id)


def _get(model: type[Console] | type[Instance], number: int) -> Any:
    found: Any = db.session.get(model, number)
    if found is None or found.removed_at is not None:
        noun = "console" if model is Console else "instance"
        raise NotFound(f"There is no {noun} {number}.")
    return found


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise Invalid("Say why: a reason is required.", fields={"reason": ["Required."]})
    return text


def _taken(model: type[Console] | type[Instance], code: str) -> None:
    taken = db.session.execute(select(model.id).where(model.code == normalise_code(code))).first()
    if taken:
        noun = "console" if model is Console else "instance"
        raise Conflict(f"There is already a {noun} {code!r}.", fields={"code": ["Taken."]})


def create_console(actor: User, code: str, name: str, type_: str, reason: str) -> Console:
    """Create a console; its code must be new."""
    why = _reason(reason)
    _taken(Console, code)
    console = admin.upsert_console(code, name, type_, actor.username, why)
    db.session.commit()
    return console


def update_console(
    actor: User, console: Console, sent_etag: str, changes: dict[str, Any], reason: str
) -> Console:
    """Change a console's name and type, from the state (ETag) the change was made on."""
    if sent_etag.strip() != etag(console):
        raise StaleEntry(console)
    why = _reason(reason)
    current = values(console)
    admin.upsert_console(
        console.code,
        changes.get("name", current["name"]),
        changes.get("type", current["type"]),
        actor.username,
        why,
    )
    db.session.commit()
    return console


def create_instance(actor: User, code: str, name: str, reason: str) -> Instance:
    """Create an instance; its company code must be new."""
    why = _reason(reason)
    _taken(Instance, code)
    instance = admin.upsert_instance(code, name, actor.username, why)
    db.session.commit()
    return instance


def update_instance(
    actor: User, instance: Instance, sent_etag: str, changes: dict[str, Any], reason: str
) -> Instance:
    """Change an instance's name, from the state (ETag) the change was made on."""
    if sent_etag.strip() != etag(instance):
        raise StaleEntry(instance)
    why = _reason(reason)
    admin.upsert_instance(instance.code, changes.get("name", instance.name), actor.username, why)
    db.session.commit()
    return instance


def open_requests(console: Console, instance: Instance) -> list[int]:
    """The IDs of the open requests about this console and instance, oldest first."""
    return list(
        db.session.execute(
            select(Request.id)
            .where(
                Request.console_id == console.id,
                Request.instance_id == instance.id,
                Request.status.in_(OPEN_STATUSES),
            )
            .order_by(Request.id)
        ).scalars()
    )


def override_relationship(
    actor: User,
    console: Console,
    instance: Instance,
    *,
    access_enabled: bool,
    linked: bool,
    reason: str,
    confirm: bool = False,
) -> Relationship:
    """Set a relationship's flags as an administrator's override, with the reason; a change
    some open request is about needs `confirm`."""
    why = _reason(reason)
    row = db.session.execute(
        select(Relationship).where(
            Relationship.console_id == console.id, Relationship.instance_id == instance.id
        )
    ).scalar_one_or_none()
    now = (bool(row.access_enabled), bool(row.linked)) if row else (False, False)
    if now != (access_enabled, linked) and not confirm:
        pending = open_requests(console, instance)
        if pending:
            raise OpenRequests(f"{console.code}/{instance.code}", pending)
    row = admin.set_relationship(
        console,
        instance,
        access_enabled=access_enabled,
        linked=linked,
        actor=actor.username,
        reason=f"Override: {why}",
    )
    db.session.commit()
    return row


# CSV import from the browser: a preview of every row, then all or nothing ---------------------

MAX_CSV_BYTES = 1_000_000


@dataclass(frozen=True)
class PreviewRow:
    """What importing one line of a CSV file would do: create, update, unchanged or error."""

    line: int
    action: str
    ref: str
    message: str = ""


def preview_csv(actor: User, kind: str, text: str) -> list[PreviewRow]:
    """What `admin.import_csv` would do with each line, found by doing it and rolling back:
    the same rules, nothing written."""
    if kind not in admin.CSV_COLUMNS:
        raise Invalid(
            f"Unknown kind {kind!r}.", fields={"kind": ["consoles, instances or relationships"]}
        )
    if len(text.encode()) > MAX_CSV_BYTES:
        raise Invalid(
            "The file is too large.", fields={"file": [f"At most {MAX_CSV_BYTES} bytes."]}
        )
    reader = csv.DictReader(io.StringIO(text))
    columns = admin.CSV_COLUMNS[kind]
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise Invalid(
            f"Missing column(s): {', '.join(missing)}.",
            fields={"file": [f"The first line names the columns: {', '.join(columns)}."]},
        )
    last = db.session.execute(select(func.max(AuditEvent.id))).scalar_one() or 0
    rows: list[PreviewRow] = []
    try:
        for line, row in enumerate(reader, start=2):
            ref = "/".join(str(row.get(c) or "") for c in columns[:2] if kind == "relationships")
            ref = ref or str(row.get("code") or "")
            try:
                with db.session.begin_nested():
                    admin.import_row(kind, row, actor.username)
            except (Invalid, Conflict) as exc:
                details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
                rows.append(
                    PreviewRow(
                        line, "error", ref, exc.message + (f" ({details})" if details else "")
                    )
                )
                continue
            events = list(
                db.session.execute(
                    select(AuditEvent).where(AuditEvent.id > last).order_by(AuditEvent.id)
                ).scalars()
            )
            if events:
                last = events[-1].id
                created = events[-1].detail.get("before") is None
                rows.append(
                    PreviewRow(line, "create" if created else "update", events[-1].object_ref)
                )
            else:
                rows.append(PreviewRow(line, "unchanged", ref))
    finally:
        db.session.rollback()
    return rows


def import_csv(actor: User, kind: str, text: str) -> int:
    """Import the CSV text all or nothing (`admin.import_csv`): how many rows; `Invalid` with
    every line's error when any line is refused (then nothing was written)."""
    preview_csv(actor, kind, text)  # the file's own checks (kind, size, columns)
    result = admin.import_csv(kind, io.StringIO(text), actor.username)
    if result.errors:
        raise Invalid(
            "Nothing was imported: " + " ".join(result.errors), fields={"file": result.errors}
        )
    return result.rows
