"""Which requests the figures cover: a range of filing days, filters, and how to group them.

A selection holds the requests *filed* on its days (UTC, both ends included) with the kind,
console type and agent asked for; it is checked when made (the range, the agent), and gives
its rows of `request_figures` as SQL conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement

from domain.vocabulary import ConsoleType, RequestKind, Role
from service.errors import Invalid
from service.extensions import db
from service.models import RequestFigures, User, utcnow

GROUPINGS = ("kind", "console_type", "agent", "week")
MAX_RANGE_DAYS = 3660
DEFAULT_DAYS = 30  # the range shown when none is asked for, today included


@dataclass(frozen=True)
class Selection:
    """Which requests the figures cover: filed from `start` to `end` (days, both included)."""

    start: date
    end: date
    kind: RequestKind | None = None
    console_type: ConsoleType | None = None
    agent_id: int | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise Invalid(
                "The range ends before it starts.",
                fields={"to": [f"Must be on or after {self.start.isoformat()}."]},
            )
        if (self.end - self.start).days >= MAX_RANGE_DAYS:
            raise Invalid(
                f"The range is longer than {MAX_RANGE_DAYS} days.",
                fields={"from": [f"At most {MAX_RANGE_DAYS} days before 'to'."]},
            )

    @property
    def days(self) -> int:
        """How many days the range spans."""
        return (self.end - self.start).days + 1

    @property
    def since(self) -> datetime:
        """The first instant of the range."""
        return datetime.combine(self.start, time(0), UTC)

    @property
    def until(self) -> datetime:
        """The first instant after the range."""
        return datetime.combine(self.end + timedelta(days=1), time(0), UTC)

    def previous(self) -> Selection:
        """The range of the same length just before this one, with the same filters."""
        span = timedelta(days=self.days)
        return Selection(
            self.start - span, self.end - span, self.kind, self.console_type, self.agent_id
        )

    def filed(self) -> list[ColumnElement[bool]]:
        """Conditions on `request_figures` for the requests this selection covers."""
        return [
            RequestFigures.created_at >= self.since,
            RequestFigures.created_at < self.until,
            *self.filters(),
        ]

    def filters(self) -> list[ColumnElement[bool]]:
        """The kind, console type and agent conditions alone (no dates)."""
        conditions = []
        if self.kind is not None:
            conditions.append(RequestFigures.kind == self.kind)
        if self.console_type is not None:
            conditions.append(RequestFigures.console_type == self.console_type)
        if self.agent_id is not None:
            conditions.append(RequestFigures.agent_id == self.agent_id)
        return conditions


def selection_from(
    start: date | None,
    end: date | None,
    *,
    kind: RequestKind | None = None,
    console_type: ConsoleType | None = None,
    agent_id: int | None = None,
) -> Selection:
    """A selection from optional bounds (30 days ending `end` or today), agent checked."""
    end = end or utcnow().date()
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if agent_id is not None:
        agent = db.session.get(User, agent_id)
        if agent is None or Role(agent.role) not in (Role.AGENT, Role.MANAGER):
            raise Invalid(
                f"No agent with ID {agent_id}.", fields={"agent": ["Give an agent's user ID."]}
            )
    return Selection(start, end, kind, console_type, agent_id)
