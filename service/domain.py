"""The vocabulary of LinkDesk, defined once.

Pure Python with no Flask or database imports, so the web app, the API schemas, the
templates, the Temporal workflows (through the sandbox pass-through) and the tests can all
import the same names.
"""

from __future__ import annotations

from bisect import bisect_right
from enum import StrEnum


class ConsoleType(StrEnum):
    """The three kinds of console a firm can work from."""

    ACCOUNTANT = "accountant"
    PARTNER = "partner"
    MANAGEMENT = "management"


class Role(StrEnum):
    """What a LinkDesk user is allowed to do (PRODUCT §3)."""

    PARTNER = "partner"
    INSTANCE_ADMIN = "instance_admin"
    AGENT = "agent"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def sees_everything(self) -> bool:
        """Customer Service and administrators see every console and instance."""
        return self in (Role.AGENT, Role.MANAGER, Role.ADMIN)


class RequestKind(StrEnum):
    """The relationship changes a request can ask Customer Service for."""

    ENABLE_ACCESS = "enable_access"
    ESTABLISH_LINK = "establish_link"
    DISSOCIATE_LINK = "dissociate_link"

    @property
    def label(self) -> str:
        """A short human label for pages and notifications."""
        return _KIND_LABELS[self]


_KIND_LABELS = {
    RequestKind.ENABLE_ACCESS: "Enable access",
    RequestKind.ESTABLISH_LINK: "Establish link",
    RequestKind.DISSOCIATE_LINK: "Dissociate firm",
}


def missing_for_slide_in(access_enabled: bool, linked: bool) -> list[RequestKind]:
    """The request kinds that would let a console's users slide in, in the order to file them."""
    missing = []
    if not access_enabled:
        missing.append(RequestKind.ENABLE_ACCESS)
    if not linked:
        missing.append(RequestKind.ESTABLISH_LINK)
    return missing


class RequestStatus(StrEnum):
    """Where a request stands (PRODUCT §2)."""

    SUBMITTED = "submitted"
    AWAITING_CONSENT = "awaiting_consent"
    AWAITING_AGENT = "awaiting_agent"
    IN_REVIEW = "in_review"
    AWAITING_REQUESTER = "awaiting_requester"
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval"
    APPLYING = "applying"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    NO_ACTION_NEEDED = "no_action_needed"
    FAILED = "failed"

    @property
    def label(self) -> str:
        """The status as people read it."""
        return self.value.replace("_", " ")

    @property
    def is_terminal(self) -> bool:
        """No further transition can happen."""
        return self in TERMINAL_STATUSES

    @property
    def waits_on_customer(self) -> bool:
        """The SLA clock is paused: the request waits on the customer side."""
        return self in (RequestStatus.AWAITING_CONSENT, RequestStatus.AWAITING_REQUESTER)

    @property
    def counts_for_sla(self) -> bool:
        """Customer Service resolved it, so SLA attainment counts it (not withdrawn or lapsed)."""
        return self in (RequestStatus.COMPLETED, RequestStatus.REJECTED, RequestStatus.FAILED)

    @property
    def cancellable(self) -> bool:
        """The requester or a manager may still cancel (anything before applying)."""
        return not self.is_terminal and self != RequestStatus.APPLYING


TERMINAL_STATUSES = frozenset(
    {
        RequestStatus.COMPLETED,
        RequestStatus.REJECTED,
        RequestStatus.CANCELLED,
        RequestStatus.EXPIRED,
        RequestStatus.NO_ACTION_NEEDED,
        RequestStatus.FAILED,
    }
)


class Step(StrEnum):
    """A human step of an approval policy."""

    CONSENT = "consent"
    REVIEW = "review"
    SECOND_APPROVAL = "second_approval"


class TaskType(StrEnum):
    """A human task shown in a queue."""

    CONSENT = "consent"
    REVIEW = "review"
    INFO = "info"
    SECOND_APPROVAL = "second_approval"


class TaskState(StrEnum):
    """Whether a task waits for someone, is being worked, or is finished."""

    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"


class Decision(StrEnum):
    """What a person decides on a task."""

    APPROVE = "approve"
    REJECT = "reject"
    REQUEST_INFO = "request_info"
    GRANT = "grant"
    DECLINE = "decline"


DECISIONS_BY_TASK = {
    TaskType.CONSENT: (Decision.GRANT, Decision.DECLINE),
    TaskType.REVIEW: (Decision.APPROVE, Decision.REJECT, Decision.REQUEST_INFO),
    TaskType.SECOND_APPROVAL: (Decision.APPROVE, Decision.REJECT),
}

# The default approval policy (PRODUCT §2), keyed by kind and console type. The live policy
# is a database table seeded from this; running requests keep the steps they were filed with.
_DEFAULT_STEPS = {
    RequestKind.ENABLE_ACCESS: (Step.CONSENT, Step.REVIEW),
    RequestKind.ESTABLISH_LINK: (Step.REVIEW,),
    RequestKind.DISSOCIATE_LINK: (Step.REVIEW, Step.SECOND_APPROVAL),
}
DEFAULT_POLICY: dict[tuple[RequestKind, ConsoleType], tuple[Step, ...]] = {
    (kind, console_type): tuple(
        step
        for step in steps
        if not (console_type == ConsoleType.MANAGEMENT and step == Step.CONSENT)
    )
    for kind, steps in _DEFAULT_STEPS.items()
    for console_type in ConsoleType
}

# SLA targets in business hours: (first response, resolution).
DEFAULT_SLA_HOURS = {
    RequestKind.ENABLE_ACCESS: (4.0, 16.0),
    RequestKind.ESTABLISH_LINK: (4.0, 16.0),
    RequestKind.DISSOCIATE_LINK: (4.0, 24.0),
}

CONSENT_EXPIRY_DAYS = 7
INFO_EXPIRY_DAYS = 5


# Durations, each in its own table column of `request_figures`.
MEASURE_COLUMNS = (
    "first_response_seconds",
    "first_response_business_seconds",
    "resolution_seconds",
    "resolution_business_seconds",
    "customer_wait_seconds",
    "customer_wait_business_seconds",
)


def _bucket_bounds(ratio: float = 1.2, limit: float = 90 * 86400) -> tuple[int, ...]:
    bounds: list[int] = []
    edge = 1.0
    while edge < limit:
        if not bounds or round(edge) > bounds[-1]:
            bounds.append(round(edge))
        edge *= ratio
    return tuple(bounds)


# Upper bounds (seconds, exclusive) of the duration buckets: 1 s, 2 s, ... growing by a fifth
# each, to 90 days; the last bucket is open-ended. See `duration_bucket_sql`.
DURATION_BUCKETS = _bucket_bounds()


def duration_bucket(seconds: float | None) -> int | None:
    """The number of a duration's bucket (None for no duration).

    Bucket 0 holds exactly zero (no wait at all, the common case), bucket i the values below
    DURATION_BUCKETS[i - 1] not in an earlier one, and the last bucket the rest. Each duration
    of `request_figures` is stored with its bucket (`bucket_column`), indexed with the filing
    time, so on SQLite a percentile over a date range counts per bucket from the index and
    sorts one bucket's values only (service.metrics).
    """
    if seconds is None:
        return None
    if seconds <= 0:
        return 0
    return bisect_right(DURATION_BUCKETS, seconds) + 1


def bucket_column(measure_column: str) -> str:
    """The column holding the bucket of a duration column: `resolution_seconds` ->
    `resolution_bucket`."""
    return measure_column.removesuffix("_seconds") + "_bucket"


def duration_bucket_sql(column: str) -> str:
    """`duration_bucket` as an SQL expression over a column (migrations fill stored rows)."""
    cases = " ".join(
        f"WHEN {column} < {bound} THEN {i}" for i, bound in enumerate(DURATION_BUCKETS, start=1)
    )
    return f"CASE WHEN {column} <= 0 THEN 0 {cases} ELSE {len(DURATION_BUCKETS) + 1} END"
