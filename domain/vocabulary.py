"""The vocabulary of LinkDesk: roles, console types, request kinds and statuses, steps, tasks
and decisions, each defined once for the web app, the API, the workflows and the tests."""

from __future__ import annotations

from enum import StrEnum


class ConsoleType(StrEnum):
    """The three kinds of console a firm can work from."""

    ACCOUNTANT = "accountant"
    PARTNER = "partner"
    MANAGEMENT = "management"


class Role(StrEnum):
    """What a LinkDesk user is allowed to do ."""

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


class RequestStatus(StrEnum):
    """Where a request stands."""

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

    @property
    def label(self) -> str:
        """The task's name on pages."""
        return _TASK_LABELS[self]


_TASK_LABELS = {
    TaskType.CONSENT: "Consent",
    TaskType.REVIEW: "Review",
    TaskType.INFO: "Information",
    TaskType.SECOND_APPROVAL: "Second approval",
}


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

CONSENT_EXPIRY_DAYS = 7
INFO_EXPIRY_DAYS = 5
