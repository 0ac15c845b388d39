"""The audit trail: who did what to which object, and when, written beside the change itself;
and the audit log that reads it, newest first, paged by key so that a page costs the same at
the millionth row as at the first."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select, tuple_

from service.errors import Invalid
from service.extensions import db
from service.models import AuditEvent

# The object types the trail names (`audit`'s `obj`, its class name in lower case).
OBJECT_TYPES = ("user", "console", "instance", "relationship", "apitoken", "request")
CSV_COLUMNS = ("at", "actor", "action", "object_type", "object_ref", "comment", "detail")
# How many events the CSV export reads at a time: its memory, whatever the log's size.
EXPORT_BATCH = 1000
# A cursor: the (at, id) of the last event of a page, as microseconds since the Unix epoch
# (UTC) and the event's ID.
CURSOR = re.compile(r"^([0-9]{1,17})-([0-9]{1,10})$")  # fullmatch: no newline after it
CURSOR_PATTERN = CURSOR.pattern
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A cell that a spreadsheet would read as a formula starts with one of these: the export
# quotes it (a typed username lands in the log as it was typed).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def audit(
    actor: str,
    action: str,
    obj: Any,
    ref: str,
    comment: str | None = None,
    *,
    at: datetime | None = None,
    **detail: Any,
) -> None:
    """Record who changed what, and why when there is a reason; `obj` is the object or, when
    there is none (a sign-in under an unknown username), its class; `at` when it happened,
    if not now. The caller commits."""
    kind = obj if isinstance(obj, type) else type(obj)
    event = AuditEvent(
        actor=actor,
        action=action,
        object_type=kind.__name__.lower(),
        object_ref=ref,
        detail=detail,
        comment=comment,
    )
    if at is not None:
        event.at = at
    db.session.add(event)


@dataclass(frozen=True)
class Cursor:
    """Where a page of the audit log ends: the (at, id) of its last event."""

    at: datetime
    id: int

    def __str__(self) -> str:
        micros = (self.at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}-{self.id}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """The cursor a page handed out, or `Invalid`."""
        match = CURSOR.fullmatch(text)
        try:
            if match is None:
                raise ValueError(text)
            at = _EPOCH + timedelta(microseconds=int(match.group(1)))
        except (ValueError, OverflowError):
            raise Invalid(
                "The cursor is not one the audit log handed out.",
                fields={"cursor": ["Use the `next_cursor` of the previous page."]},
            ) from None
        return cls(at, int(match.group(2)))


@dataclass(frozen=True)
class AuditFilters:
    """Which events the audit log shows: each given filter must hold (days are UTC, both
    included)."""

    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_ref: str | None = None
    start: date | None = None
    end: date | None = None

    def __post_init__(self) -> None:
        if self.object_ref is not None and self.object_type is None:
            # A reference names an object of a type ("root" may be a user or a console code),
            # and the index that finds it leads with the type.
            raise Invalid(
                "Choose the object's type to find it by its reference.",
                fields={"object_type": ["Choose the type of the object named."]},
            )
        if self.start and self.end and self.start > self.end:
            raise Invalid(
                "The date range ends before it starts.",
                fields={"to": ["Choose a day on or after the first day."]},
            )

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> AuditFilters:
        """The filters of loaded query arguments (the API's, or the page's form)."""
        return cls(
            actor=args.get("actor"),
            action=args.get("action"),
            object_type=args.get("object_type"),
            object_ref=args.get("object_ref"),
            start=args.get("from_"),
            end=args.get("to"),
        )


@dataclass(frozen=True)
class AuditPage:
    """One page of the audit log, and the cursor of the next one (None on the last page)."""

    events: list[AuditEvent]
    next_cursor: Cursor | None


def events_query(filters: AuditFilters, after: Cursor | None, *columns: Any) -> Select[Any]:
    """The filtered events after the cursor (or `columns` of them), newest first by (at, id):
    each filter an equality on the leading column of its index, the order that index's next
    columns."""
    query = select(*columns) if columns else select(AuditEvent)
    for column, value in (
        (AuditEvent.actor, filters.actor),
        (AuditEvent.action, filters.action),
        (AuditEvent.object_type, filters.object_type),
        (AuditEvent.object_ref, filters.object_ref),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.start is not None:
        query = query.where(AuditEvent.at >= datetime.combine(filters.start, time(), UTC))
    if filters.end is not None:
        next_day = datetime.combine(filters.end + timedelta(days=1), time(), UTC)
        query = query.where(AuditEvent.at < next_day)
    if after is not None:
        # A row-value comparison: both databases read it as one range of the (at, id) part
        # of the index (the same condition spelt with OR is only filtered on PostgreSQL).
        query = query.where(tuple_(AuditEvent.at, AuditEvent.id) < tuple_(after.at, after.id))
    return query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())


def page(filters: AuditFilters, after: Cursor | None = None, per_page: int = 50) -> AuditPage:
    """One page of the audit log: the newest `per_page` events after the cursor (from the
    newest without one)."""
    rows = list(db.session.execute(events_query(filters, after).limit(per_page + 1)).scalars())
    events = rows[:per_page]
    more = len(rows) > per_page
    return AuditPage(events, Cursor(events[-1].at, events[-1].id) if more else None)


def export_rows(filters: AuditFilters) -> Iterator[list[str]]:
    """The filtered events as CSV rows, header first, newest first: read a batch at a time by
    the same key as the pages, so an export of millions holds one batch in memory."""
    yield list(CSV_COLUMNS)
    # Columns, not model objects: the session's identity map would keep every event read.
    columns = [getattr(AuditEvent, name) for name in CSV_COLUMNS]
    after: Cursor | None = None
    while True:
        batch = db.session.execute(
            events_query(filters, after, AuditEvent.id, *columns).limit(EXPORT_BATCH)
        ).all()
        for event_id, at, *rest in batch:
            *text, detail = rest
            yield [_cell(value or "") for value in (at.isoformat(), *text)] + [
                _cell(json.dumps(detail or {}, sort_keys=True))
            ]
            after = Cursor(at, event_id)
        if len(batch) < EXPORT_BATCH:
            return


def export_name(filters: AuditFilters) -> str:
    """The file name of an export: the audit log, and its date range when it has one."""
    days = "" if filters.start is None else f"-from-{filters.start.isoformat()}"
    days += "" if filters.end is None else f"-to-{filters.end.isoformat()}"
    return f"linkdesk-audit{days}.csv"


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value
