"""Inputs and results shared by workflows, activities and their callers.

One dataclass per workflow, activity and update argument, so fields can be added compatibly
(with defaults). No Flask, database or I/O imports: the workflow sandbox loads this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.sla import SlaState
from domain.vocabulary import TaskState, TaskType

# Error types raised by update validators and handlers; the web maps them to HTTP statuses.
NOT_FOUND = "NotFound"
FORBIDDEN = "Forbidden"
CONFLICT = "Conflict"
INVALID = "Invalid"


@dataclass(frozen=True)
class Actor:
    """Who acts on a request, as the web app authenticated them."""

    user_id: int
    username: str
    role: str


@dataclass(frozen=True)
class RequestInput:
    """Everything a request workflow needs, snapshotted at filing time."""

    request_id: str
    number: int
    kind: str
    console_id: int
    console_code: str
    console_type: str
    instance_id: int
    instance_code: str
    requester: Actor
    steps: list[str]
    first_response_hours: float
    resolution_hours: float
    calendar: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class TaskAction:
    """Claim, release or complete a task; reassign names the new assignee."""

    task_id: int
    actor: Actor
    decision: str | None = None
    comment: str | None = None
    assignee: Actor | None = None


@dataclass(frozen=True)
class Respond:
    """The requester's answer to an info request."""

    actor: Actor
    answer: str


@dataclass(frozen=True)
class Cancel:
    """Cancel the request before it is applied."""

    actor: Actor
    reason: str


@dataclass
class TaskSnapshot:
    """A task as the workflow holds it; the projection mirrors it by (request, key)."""

    key: int
    type: TaskType
    state: TaskState
    created_at: datetime
    due_at: datetime | None = None
    assignee_id: int | None = None
    assignee: str | None = None
    claimed_at: datetime | None = None
    excluded_user_id: int | None = None
    completed_at: datetime | None = None
    completed_by_id: int | None = None
    decision: str | None = None
    comment: str | None = None
    id: int | None = None  # the public task ID, known once projected


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the request's timeline, numbered within the workflow."""

    seq: int
    at: datetime
    actor: str
    action: str
    status: str
    comment: str | None = None


@dataclass(frozen=True)
class Projection:
    """The whole visible state of a request, written to the database after each change."""

    number: int
    seq: int
    status: str
    updated_at: datetime
    tasks: list[TaskSnapshot]
    events: list[TimelineEntry]
    resolved_at: datetime | None = None
    outcome: str | None = None
    first_response_at: datetime | None = None
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None
    sla_state: SlaState = SlaState.OK
    customer_wait_seconds: float = 0.0
    # Turnaround figures on the SLA calendar, customer waits excluded (None until known).
    first_responder_id: int | None = None
    first_response_business_seconds: float | None = None
    resolution_business_seconds: float | None = None
    customer_wait_business_seconds: float | None = None


@dataclass(frozen=True)
class ProjectionResult:
    """Public IDs of the projected tasks, by their workflow key."""

    task_ids: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class EffectCheck:
    """Whether a request's change is still needed."""

    kind: str
    console_id: int
    instance_id: int


@dataclass(frozen=True)
class Notify:
    """Tell people about a request event, in-app and by email."""

    number: int
    event: str
    message: str
    audience: str  # requester | instance_admins | agents | managers | user
    dedupe_key: str
    user_id: int | None = None
    exclude_user_id: int | None = None


@dataclass(frozen=True)
class ApplyChange:
    """Apply the effect of a completed request to the directory."""

    request_id: str
    kind: str
    console_id: int
    instance_id: int
    actor: str


@dataclass(frozen=True)
class ApplyResult:
    """The relationship as it stands after the change, and whether this call made it."""

    access_enabled: bool
    linked: bool
    applied_now: bool
