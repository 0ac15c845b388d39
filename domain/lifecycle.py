"""How a request moves through its life: the task and status of each approval step, the
customer waits that expire, and what its timeline and outcome say.

The request workflow follows these rules, and the synthetic history of `linkdesk demo-history`
retells them without running a workflow, so both read them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.vocabulary import (
    CONSENT_EXPIRY_DAYS,
    INFO_EXPIRY_DAYS,
    RequestStatus,
    Step,
    TaskType,
)


@dataclass(frozen=True)
class StepRule:
    """The task an approval step opens, and the status the request waits in for it."""

    task: TaskType
    status: RequestStatus


STEPS: dict[Step, StepRule] = {
    Step.CONSENT: StepRule(TaskType.CONSENT, RequestStatus.AWAITING_CONSENT),
    Step.REVIEW: StepRule(TaskType.REVIEW, RequestStatus.AWAITING_AGENT),
    Step.SECOND_APPROVAL: StepRule(
        TaskType.SECOND_APPROVAL, RequestStatus.AWAITING_SECOND_APPROVAL
    ),
}


@dataclass(frozen=True)
class CustomerWait:
    """A task the request waits on the customer for: it expires unanswered after `days`,
    with a reminder halfway."""

    task: TaskType
    noun: str  # what is awaited, as the timeline says it
    days: int

    @property
    def expiry(self) -> timedelta:
        """How long after the task opens the request expires unanswered."""
        return timedelta(days=self.days)

    @property
    def reminder(self) -> timedelta:
        """How long after the task opens the reminder goes out, if still unanswered."""
        return timedelta(days=self.days) / 2

    def reminder_note(self, expires: datetime) -> str:
        """The timeline's reminder, naming the day the request expires."""
        return f"Reminder: {self.noun} expected by {expires:%Y-%m-%d}."

    @property
    def expired_note(self) -> str:
        """The timeline's note when the wait runs out."""
        return f"No {self.noun} within {self.days} days."

    @property
    def expired_outcome(self) -> str:
        """The outcome of a request that expired waiting."""
        return f"Expired: no {self.noun} within {self.days} days."


CUSTOMER_WAITS: dict[TaskType, CustomerWait] = {
    TaskType.CONSENT: CustomerWait(TaskType.CONSENT, "consent", CONSENT_EXPIRY_DAYS),
    TaskType.INFO: CustomerWait(TaskType.INFO, "answer", INFO_EXPIRY_DAYS),
}


def task_name(task: TaskType | str) -> str:
    """A task as the timeline and messages name it: "review task", "second approval task"."""
    return f"{TaskType(task).value.replace('_', ' ')} task"


def rejected_outcome(task: TaskType | str, comment: str | None) -> str:
    """The outcome of a request whose consent was declined or whose review was rejected."""
    who = "The instance admin declined" if task == TaskType.CONSENT else "Rejected"
    return f"{who}: {comment}" if comment else who + "."


def cancelled_outcome(username: str, reason: str) -> str:
    """The outcome of a request withdrawn by `username`."""
    return f"Cancelled by {username}: {reason}"


def failed_outcome(reason: str) -> str:
    """The outcome of a request whose change could not be applied."""
    return f"Failed: {reason}"
