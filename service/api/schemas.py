"""Marshmallow schemas of the JSON API: one per request body, query and response contract."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate
from webargs.fields import DelimitedList

from domain.sla import SlaState
from domain.vocabulary import (
    ConsoleType,
    Decision,
    RequestKind,
    RequestStatus,
    Role,
    TaskState,
    TaskType,
)
from service import audit
from service.directory import is_valid_code
from service.errors import ErrorSchema, Invalid
from service.extensions import MAX_ID
from service.models import format_request_id, parse_id
from service.requests import (
    AGE_BUCKETS,
    NO_AGENT,
    RESOLUTION_BUCKETS,
    SLA_STATES,
    STATUS_GROUPS,
)

# Days a client may name: earlier ones predate LinkDesk, and the last day leaves room for the
# day after it, which date ranges end on (`date.max` plus a day overflows).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(9999, 12, 30)
NUL = "\x00"


def is_id_number(value: Any) -> bool:
    """Whether a JSON value is a number that can be a numeric ID (`True` is not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


# The check every input field of a type gets, whatever else it checks; as marshmallow
# validators, so the OpenAPI document states them too (minimum and maximum, pattern).
INPUT_BOUNDS: dict[type[fields.Field], Any] = {
    fields.Integer: validate.Range(
        min=-MAX_ID - 1, max=MAX_ID, error=f"Give a number between {-MAX_ID - 1} and {MAX_ID}."
    ),
    fields.Date: validate.Range(
        min=FIRST_DAY, max=LAST_DAY, error=f"Give a day from {FIRST_DAY} to {LAST_DAY}."
    ),
    # PostgreSQL cannot store NUL, and no one types it.
    fields.String: validate.Regexp(
        f"^[^{NUL}]*$", error="Remove the NUL character: text cannot hold it."
    ),
}


class InputSchema(ma.Schema):
    """Base of every schema that loads a client's input: integers fit the database's integer
    columns, days stay within FIRST_DAY..LAST_DAY and text holds no NUL character, whatever
    else each field checks."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        """Add the bounds every field of its type must keep."""
        for kind, check in INPUT_BOUNDS.items():
            if isinstance(field_obj, kind) and check not in field_obj.validators:
                field_obj.validators.append(check)


class Schema(InputSchema):
    """Base schema: unknown fields are refused, so typos surface as errors."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


# Numerals of IDs that can exist, as the OpenAPI document states them: `parse_id` reads more
# (up to ten digits, up to MAX_ID), the document promises what it always reads.
ID_NUMERAL = "0?[1-9][0-9]{0,8}"
# A code (`is_valid_code`): letters, digits, dots, dashes and underscores, starting with a
# letter or digit, with at least one letter.
CODE = "([A-Za-z]|[0-9][A-Za-z0-9._-]*[A-Za-z])[A-Za-z0-9._-]*"


class RefField(fields.Field):
    """A console or instance named by numeric ID or by code (`12` or `"ACME-US"`)."""

    default_error_messages = {"invalid": "Give a numeric ID or a code such as ACME-US."}

    def __init__(self, **kwargs: Any) -> None:
        documented = {
            "oneOf": [
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                {"type": "string", "pattern": f"^({ID_NUMERAL}|{CODE})$", "maxLength": 64},
            ],
            "description": "Numeric ID or code",
        }
        metadata = {**documented, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if is_id_number(value):
            return int(value)
        if isinstance(value, str):
            text = value.strip()
            number = parse_id(text)
            if number is not None:
                return number
            if is_valid_code(text):  # a code has a letter: a numeral that is no ID is refused
                return text
        raise self.make_error("invalid")

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class PageArgsSchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


# The 503 of every write: documented with `@blp.alt_response(503, **UNAVAILABLE)`.
UNAVAILABLE: dict[str, Any] = {
    "schema": ErrorSchema,
    "description": "`unavailable`: Temporal unreachable, or the SQLite database too busy; "
    "nothing was done. `outcome_unknown`: the action was sent to Temporal but its answer was "
    "lost; it may or may not have been applied, so retry with the same Idempotency-Key to "
    "learn which. Either way, retry after the seconds in Retry-After.",
}


def list_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The shape of every list the API answers (`items`, `page`, `per_page`, `total`) for an
    item schema, with `total_exact` telling whether `total` is the whole count or a lower
    bound."""
    return type(
        name,
        (Schema,),
        {
            "items": fields.List(fields.Nested(item), required=True),
            "page": fields.Integer(required=True),
            "per_page": fields.Integer(required=True),
            "total": fields.Integer(
                required=True,
                metadata={"description": "How many items the list holds (see total_exact)."},
            ),
            "total_exact": fields.Boolean(
                required=True,
                metadata={
                    "description": "False when the list was counted only up to `total` "
                    "(10,000 requests or more): there are at least that many."
                },
            ),
        },
    )


class RefSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class ConsoleSchema(RefSchema):
    type = fields.Enum(ConsoleType, by_value=True, required=True)


class InstanceSchema(RefSchema):
    pass


class RelationshipSchema(Schema):
    console = fields.Nested(RefSchema, required=True)
    instance = fields.Nested(RefSchema, required=True)
    access_enabled = fields.Boolean(required=True)
    linked = fields.Boolean(required=True)
    can_slide_in = fields.Boolean(required=True)
    missing = fields.List(
        fields.Enum(RequestKind, by_value=True),
        required=True,
        metadata={"description": "Request kinds that would let the console's users slide in"},
    )


class RelationshipArgsSchema(PageArgsSchema):
    console_id = RefField()
    instance_id = RefField(metadata={"description": "Numeric ID or company code"})


class MeSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    email = fields.String(allow_none=True)
    role = fields.Enum(Role, by_value=True, required=True)
    console = fields.Nested(ConsoleSchema, allow_none=True)
    instances = fields.List(fields.Nested(InstanceSchema))


class TokenCreateSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    name = fields.String(validate=validate.Length(max=100), metadata={"description": "A label"})


class TokenSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "First characters, to tell"})
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(allow_none=True)


class TokenCreatedSchema(TokenSchema):
    token = fields.String(required=True, metadata={"description": "Shown once, never again"})


ConsoleListSchema = list_schema(ConsoleSchema, "ConsoleListSchema")
InstanceListSchema = list_schema(InstanceSchema, "InstanceListSchema")
RelationshipListSchema = list_schema(RelationshipSchema, "RelationshipListSchema")
TokenListSchema = list_schema(TokenSchema, "TokenListSchema")


class SlaSchema(Schema):
    first_response_due = fields.DateTime(allow_none=True)
    resolution_due = fields.DateTime(allow_none=True)
    state = fields.Enum(SlaState, by_value=True, required=True)


class TimelineEntrySchema(Schema):
    at = fields.DateTime(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    comment = fields.String(allow_none=True)
    internal = fields.Boolean(required=True)


def _iso(when: Any) -> str | None:
    return when.isoformat() if when else None


class TaskSchema(Schema):
    id = fields.Integer(required=True)
    request_id = fields.Function(lambda task: task.request.public_id, required=True)
    type = fields.Enum(TaskType, by_value=True, required=True)
    state = fields.Enum(TaskState, by_value=True, required=True)
    assignee = fields.Function(
        lambda task: task.assignee.username if task.assignee else None, allow_none=True
    )
    claimed_at = fields.DateTime(allow_none=True)
    due_at = fields.Function(
        lambda task: _iso(task.due_at or task.request.resolution_due),
        allow_none=True,
        metadata={"description": "The task's own deadline, else the request's resolution due"},
    )
    created_at = fields.DateTime(required=True)
    kind = fields.Function(lambda task: task.request.kind.value)
    request_status = fields.Function(lambda task: task.request.status.value)
    sla = fields.Function(lambda task: task.request.sla_state.value)


class RequestSchema(Schema):
    id = fields.String(attribute="public_id", required=True, metadata={"example": "REQ-000123"})
    kind = fields.Enum(RequestKind, by_value=True, required=True)
    status = fields.Enum(RequestStatus, by_value=True, required=True)
    console = fields.Nested(RefSchema, required=True)
    instance = fields.Nested(RefSchema, required=True)
    requester = fields.Function(lambda request: request.requester.username, required=True)
    reason = fields.String(required=True)
    outcome = fields.String(allow_none=True, metadata={"description": "Why it ended so"})
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    resolved_at = fields.DateTime(allow_none=True)
    sla = fields.Function(
        lambda request: {
            "first_response_due": request.first_response_due,
            "resolution_due": request.resolution_due,
            "state": request.sla_state.value,
        },
        metadata={"description": "first_response_due, resolution_due, state"},
    )
    workflow_id = fields.String(required=True)


class RequestDetailSchema(RequestSchema):
    tasks = fields.List(fields.Nested(TaskSchema), required=True)
    timeline = fields.List(fields.Nested(TimelineEntrySchema), required=True)


class RequestCreateSchema(Schema):
    kind = fields.Enum(RequestKind, by_value=True, required=True)
    console_id = RefField(required=True)
    instance_id = RefField(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class AgentRefField(fields.Field):
    """A Customer Service user by numeric ID, or `none` for no agent yet."""

    default_error_messages = {"invalid": "Give an agent's user ID, or none."}

    def __init__(self, **kwargs: Any) -> None:
        documented = {"type": "string", "pattern": f"^([Nn][Oo][Nn][Ee]|{ID_NUMERAL})$"}
        metadata = {**documented, **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if is_id_number(value):
            return int(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text == NO_AGENT:
                return NO_AGENT
            number = parse_id(text)
            if number is not None:
                return number
        raise self.make_error("invalid")

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class RequestFilterArgs(InputSchema):
    """The request list's filters beyond status, kind, console, company and search; the
    turnaround figures drill down to the list through them. Days are UTC, ends included."""

    console_type = fields.Enum(ConsoleType, by_value=True)
    created_from = fields.Date(metadata={"description": "Filed on or after this day"})
    created_to = fields.Date(metadata={"description": "Filed on or before this day"})
    resolved_from = fields.Date(metadata={"description": "Ended on or after this day"})
    resolved_to = fields.Date(metadata={"description": "Ended on or before this day"})
    agent = AgentRefField(
        metadata={"description": "User ID of the agent who first took it up, or `none`"}
    )
    assignee = fields.Integer(
        validate=validate.Range(min=1),
        metadata={"description": "User ID of whoever holds its claimed task now"},
    )
    sla = fields.String(validate=validate.OneOf(SLA_STATES))
    age = fields.String(
        validate=validate.OneOf(list(AGE_BUCKETS)),
        metadata={"description": "Time since filing, as the dashboard's backlog buckets"},
    )
    resolution = fields.String(
        validate=validate.OneOf(list(RESOLUTION_BUCKETS)),
        metadata={"description": "Time to resolve, as the dashboard's histogram buckets"},
    )


class RequestArgsSchema(PageArgsSchema, RequestFilterArgs):
    status = DelimitedList(
        fields.String(
            validate=validate.OneOf([*STATUS_GROUPS, *(status.value for status in RequestStatus)])
        ),
        metadata={
            "description": "Statuses, or the groups open, closed and handled (completed, "
            "rejected or failed: what SLA attainment counts)"
        },
    )
    kind = fields.Enum(RequestKind, by_value=True)
    console_id = RefField()
    instance_id = RefField()
    q = fields.String(validate=validate.Length(max=64), metadata={"description": "ID or code"})


class CancelSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class CommentSchema(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    internal = fields.Boolean(load_default=False)


class ResponseSchema(Schema):
    answer = fields.String(required=True, validate=validate.Length(min=1, max=8000))


class TaskArgsSchema(PageArgsSchema):
    state = DelimitedList(fields.Enum(TaskState, by_value=True))
    type = fields.Enum(TaskType, by_value=True)
    assignee = fields.String(validate=validate.OneOf(["me", "unassigned"]))
    kind = fields.Enum(RequestKind, by_value=True)
    sla = fields.Enum(SlaState, by_value=True)
    console_type = fields.Enum(ConsoleType, by_value=True)


class TaskCompleteSchema(Schema):
    decision = fields.Enum(Decision, by_value=True, required=True)
    comment = fields.String(validate=validate.Length(max=8000), load_default=None)


class TaskReassignSchema(Schema):
    assignee = fields.String(required=True, validate=validate.Length(min=1, max=64))


RequestListSchema = list_schema(RequestSchema, "RequestListSchema")
TaskListSchema = list_schema(TaskSchema, "TaskListSchema")


class NotificationSchema(Schema):
    id = fields.Integer(required=True)
    request_id = fields.Function(
        lambda n: format_request_id(n.request_id) if n.request_id else None, allow_none=True
    )
    event = fields.String(required=True)
    message = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    read_at = fields.DateTime(allow_none=True)


class NotificationArgsSchema(PageArgsSchema):
    unread = fields.Boolean(load_default=False)


class NotificationListSchema(list_schema(NotificationSchema, "NotificationPageSchema")):  # type: ignore[misc]
    unread = fields.Integer(required=True, metadata={"description": "Unread notifications"})


class MarkedSchema(Schema):
    marked = fields.Integer(required=True)


# Turnaround figures (managers) ---------------------------------------------------------------


class TurnaroundArgsSchema(Schema):
    from_ = fields.Date(
        data_key="from",
        metadata={"description": "First filing day (UTC), default 29 days before `to`"},
    )
    to = fields.Date(metadata={"description": "Last filing day (UTC, included), default today"})
    group_by = fields.String(
        validate=validate.OneOf(["kind", "console_type", "agent", "week"]),
        metadata={"description": "kind, console_type, agent or week"},
    )
    kind = fields.Enum(RequestKind, by_value=True)
    console_type = fields.Enum(ConsoleType, by_value=True)
    agent = fields.Integer(
        validate=validate.Range(min=1), metadata={"description": "An agent's user ID"}
    )


class SpreadSchema(Schema):
    p50 = fields.Float(allow_none=True, metadata={"description": "Median, seconds"})
    p90 = fields.Float(allow_none=True, metadata={"description": "90th percentile, seconds"})


class MeasureSchema(Schema):
    calendar = fields.Nested(SpreadSchema, required=True)
    business = fields.Nested(
        SpreadSchema,
        required=True,
        metadata={"description": "Business hours of the SLA calendar, customer waits excluded"},
    )


class SlaFiguresSchema(Schema):
    counted = fields.Integer(
        attribute="sla_counted",
        required=True,
        metadata={"description": "Completed, rejected, failed"},
    )
    met = fields.Integer(attribute="sla_met", required=True)
    attainment_percent = fields.Float(attribute="sla_attainment_percent", allow_none=True)


class NestedSelf(fields.Nested):
    """A nested object whose fields are read from the dumped object itself: a group's
    `sla_met` is shown as `sla.met`."""

    def get_value(
        self, obj: Any, attr: str, accessor: Any = None, default: Any = ma.missing
    ) -> Any:
        return obj


class FiguresSchema(Schema):
    """One group's figures (`service.metrics.figures.GroupFigures`), in seconds."""

    group = fields.String(
        attribute="key", allow_none=True, metadata={"description": "The group's key"}
    )
    label = fields.String(required=True)
    count = fields.Integer(required=True, metadata={"description": "Requests filed"})
    resolved = fields.Integer(required=True, metadata={"description": "Of those, ended"})
    first_response = fields.Nested(MeasureSchema, required=True)
    resolution = fields.Nested(MeasureSchema, required=True)
    customer_wait = fields.Nested(MeasureSchema, required=True)
    sla = NestedSelf(SlaFiguresSchema, required=True)


class DayCountSchema(Schema):
    day = fields.String(required=True, metadata={"example": "2026-11-02"})
    created = fields.Integer(required=True)
    resolved = fields.Integer(required=True)


class BucketSchema(Schema):
    label = fields.String(required=True)
    count = fields.Integer(required=True)


class StatusCountSchema(Schema):
    status = fields.Enum(RequestStatus, by_value=True, required=True)
    count = fields.Integer(attribute="requests", required=True)


class BacklogSchema(Schema):
    total = fields.Integer(required=True)
    at_risk = fields.Integer(required=True)
    breached = fields.Integer(required=True)
    by_status = fields.List(fields.Nested(StatusCountSchema), required=True)
    by_age = fields.List(fields.Nested(BucketSchema), required=True)


class AgentLoadSchema(Schema):
    id = fields.Integer(attribute="user_id", required=True)
    username = fields.String(required=True)
    name = fields.String(required=True)
    open_tasks = fields.Integer(required=True, metadata={"description": "Claimed now"})
    resolved = fields.Integer(required=True)
    first_response_p50 = fields.Float(allow_none=True)
    first_response_business_p50 = fields.Float(allow_none=True)


class TurnaroundSchema(Schema):
    """Every figure of a selection (`service.metrics.report.Turnaround`)."""

    from_ = fields.Date(data_key="from", attribute="selection.start", required=True)
    to = fields.Date(attribute="selection.end", required=True)
    group_by = fields.String(allow_none=True)
    totals = fields.Nested(FiguresSchema, required=True)
    groups = fields.List(fields.Nested(FiguresSchema), required=True)
    daily = fields.List(fields.Nested(DayCountSchema), required=True)
    backlog = fields.Nested(
        BacklogSchema, required=True, metadata={"description": "Open now (filters, not dates)"}
    )
    agents = fields.List(fields.Nested(AgentLoadSchema), required=True)


# Users (administrators) ------------------------------------------------------------------------


class UserSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    email = fields.String(allow_none=True)
    role = fields.Enum(Role, by_value=True, required=True)
    console = fields.Nested(RefSchema, allow_none=True, metadata={"description": "Partners'"})
    instances = fields.List(
        fields.Nested(RefSchema), required=True, metadata={"description": "Instance admins'"}
    )
    active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    version = fields.Integer(
        required=True,
        metadata={"description": "Counts changes; the ETag. Send it back as If-Match to edit."},
    )


UserListSchema = list_schema(UserSchema, "UserListSchema")


class UserArgsSchema(PageArgsSchema):
    q = fields.String(
        validate=validate.Length(max=254),
        metadata={"description": "Part of the username, name or e-mail address"},
    )
    role = fields.Enum(Role, by_value=True)
    active = fields.Boolean()


_REASON = {"description": "Why: kept in the audit log with the change"}


def _reason() -> fields.String:
    return fields.String(load_default=None, validate=validate.Length(max=2000), metadata=_REASON)


class UserFieldsSchema(Schema):
    """A user's editable fields; which role has which scope is checked by the service."""

    display_name = fields.String(validate=validate.Length(min=1, max=200))
    email = fields.String(allow_none=True, validate=validate.Length(max=254))
    console_id = RefField(
        allow_none=True, metadata={"description": "A partner's console: numeric ID or code"}
    )
    instance_ids = fields.List(
        RefField(),
        validate=validate.Length(max=200),
        metadata={"description": "An instance admin's instances: numeric IDs or company codes"},
    )
    reason = _reason()


class UserCreateSchema(UserFieldsSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    role = fields.Enum(Role, by_value=True, required=True)


class UserUpdateSchema(UserFieldsSchema):
    role = fields.Enum(Role, by_value=True)


class ReasonSchema(Schema):
    reason = _reason()


class StaleErrorSchema(ErrorSchema):
    """A 409 for an edit made from an older version: the user as it is now."""

    current = fields.Nested(UserSchema)


class SessionsEndedSchema(UserSchema):
    sessions_ended = fields.Integer(
        required=True, metadata={"description": "Sessions that the deactivation ended"}
    )


# The audit log (admins) ----------------------------------------------------------------------


def _is_audit_cursor(value: str) -> None:
    try:
        audit.Cursor.parse(value)
    except Invalid as exc:
        raise ma.ValidationError(exc.fields["cursor"]) from None


class AuditFilterArgs(InputSchema):
    """The audit log's filters and cursor, for the API and the page alike."""

    actor = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "Who acted: a username, `anonymous` or a command's name"},
    )
    action = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "What was done, e.g. `token.created` or `user.deactivated`"},
    )
    object_type = fields.String(
        validate=validate.OneOf(audit.OBJECT_TYPES),
        metadata={"description": "The kind of object acted on"},
    )
    object_ref = fields.String(
        validate=validate.Length(min=1, max=128),
        metadata={
            "description": "The object's reference: a username, a code, `CONSOLE/INSTANCE`, "
            "a token's prefix or a request's ID; with its `object_type`"
        },
    )
    from_ = fields.Date(data_key="from", metadata={"description": "First day (UTC)"})
    to = fields.Date(metadata={"description": "Last day (UTC, included)"})
    cursor = fields.String(
        validate=_is_audit_cursor,
        metadata={
            "pattern": audit.CURSOR_PATTERN,
            "description": "Where to go on from: the `next_cursor` of the previous page (with "
            "the same filters). Without it, the newest events. The log is ordered newest "
            "first by (time, ID) and paged by that key, not by offset, so a page never "
            "repeats or skips an event when new ones arrive meanwhile.",
        },
    )
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class AuditArgsSchema(Schema, AuditFilterArgs):
    """The audit log's query arguments: an unknown one is refused."""


class AuditEventSchema(Schema):
    id = fields.Integer(required=True)
    at = fields.DateTime(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    object_type = fields.String(required=True)
    object_ref = fields.String(required=True)
    comment = fields.String(required=True, allow_none=True)
    detail = fields.Dict(required=True, metadata={"description": "What else the event says"})


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEventSchema), required=True, attribute="events")
    per_page = fields.Integer(required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The `cursor` of the next page; null on the last page"},
    )


# The directory, for administrators -----------------------------------------------------------


def _required_reason() -> fields.String:
    return fields.String(required=True, validate=validate.Length(min=1, max=2000), metadata=_REASON)


_NAME = f"[^{NUL}]*[^{NUL}\\s][^{NUL}]*"  # not blank, and no NUL


def _matching(pattern: str, message: str) -> Any:
    def check(value: str) -> None:
        if not re.fullmatch(pattern, value):
            raise ma.ValidationError(message)

    return check


def _code() -> fields.String:
    return fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=64),
            _matching(CODE, "Letters, digits, '.', '-' or '_', with at least one letter."),
        ],
        metadata={
            "pattern": f"^({CODE})$",
            "description": "Letters, digits, '.', '-' or '_', with a letter; kept upper-case",
        },
    )


def _name(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=1, max=200), _matching(_NAME, "A name is required.")],
        metadata={"pattern": f"^{_NAME}$"},
        **kwargs,
    )


class ConsoleCreateSchema(Schema):
    code = _code()
    name = _name(required=True)
    type = fields.Enum(ConsoleType, by_value=True, required=True)
    reason = _required_reason()


class ConsoleUpdateSchema(Schema):
    name = _name()
    type = fields.Enum(ConsoleType, by_value=True)
    reason = _required_reason()


class InstanceCreateSchema(Schema):
    code = _code()
    name = _name(required=True)
    reason = _required_reason()


class InstanceUpdateSchema(Schema):
    name = _name()
    reason = _required_reason()


class ConsoleStaleErrorSchema(ErrorSchema):
    """A 409 for an edit made from an older state: the console as it is now."""

    current = fields.Nested(ConsoleSchema)


class InstanceStaleErrorSchema(ErrorSchema):
    """A 409 for an edit made from an older state: the instance as it is now."""

    current = fields.Nested(InstanceSchema)


class RelationshipOverrideSchema(Schema):
    console = RefField(required=True)
    instance = RefField(required=True)
    access_enabled = fields.Boolean(required=True)
    linked = fields.Boolean(required=True)
    reason = _required_reason()
    confirm = fields.Boolean(
        load_default=False,
        metadata={"description": "Override even though open requests are about this pair"},
    )


class OpenRequestErrorSchema(ErrorSchema):
    """A 409 for an override of a relationship that open requests are about."""

    requests = fields.List(
        fields.Integer(), metadata={"description": "The IDs of the open requests"}
    )
