"""What is open right now: the backlog by status, by SLA state and by age.

Read from `requests` (and, to filter by agent, `request_figures`) with the selection's kind,
console type and agent filters; the selection's dates do not apply, since what is open now
was filed whenever it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Select, and_, case, func, select

from domain.sla import SlaState
from domain.vocabulary import RequestStatus
from service.extensions import db
from service.metrics.figures import DAY, Bucket
from service.metrics.selection import Selection
from service.models import Console, Request, RequestFigures

OPEN_STATUSES = tuple(s for s in RequestStatus if not s.is_terminal)
AGE_BUCKETS = (  # label, lower bound, upper bound (seconds of age)
    ("<1 d", 0.0, DAY),
    ("1-3 d", DAY, 3 * DAY),
    ("3-7 d", 3 * DAY, 7 * DAY),
    (">7 d", 7 * DAY, None),
)


class StatusCount(NamedTuple):
    """How many open requests are in one status."""

    status: RequestStatus
    requests: int


@dataclass(frozen=True)
class Backlog:
    """Open requests right now, by status and by age."""

    total: int
    at_risk: int
    breached: int
    by_status: list[StatusCount]
    by_age: list[Bucket]


def _open_requests(selection: Selection) -> Select[()]:
    """Open requests matching the selection's filters (not its dates), for backlog figures."""
    statement = select().select_from(Request).where(Request.open_key.is_not(None))
    if selection.kind is not None:
        statement = statement.where(Request.kind == selection.kind)
    if selection.console_type is not None:
        statement = statement.join(Console, Console.id == Request.console_id).where(
            Console.type == selection.console_type
        )
    if selection.agent_id is not None:
        statement = statement.join(RequestFigures, RequestFigures.request_id == Request.id).where(
            RequestFigures.agent_id == selection.agent_id
        )
    return statement


def backlog(selection: Selection, now: datetime) -> Backlog:
    """What is open now, with the selection's kind, console type and agent filters."""
    base = _open_requests(selection)
    ages = [
        (label, low, high, now - timedelta(seconds=low), high and now - timedelta(seconds=high))
        for label, low, high in AGE_BUCKETS
    ]
    sums = []
    for _label, _low, _high, newest, oldest in ages:
        inside = (
            Request.created_at <= newest
            if oldest is None
            else and_(Request.created_at <= newest, Request.created_at > oldest)
        )
        sums.append(func.coalesce(func.sum(case((inside, 1), else_=0)), 0))
    sla = [
        func.coalesce(func.sum(case((Request.sla_state == state, 1), else_=0)), 0)
        for state in (SlaState.AT_RISK, SlaState.BREACHED)
    ]
    # Conditional sums, not GROUP BY: one pass over the open requests' own index.
    statuses = [
        func.coalesce(func.sum(case((Request.status == status, 1), else_=0)), 0)
        for status in OPEN_STATUSES
    ]
    row = db.session.execute(base.add_columns(func.count(), *sla, *statuses, *sums)).one()
    total, at_risk, breached, *counts = (int(n) for n in row)
    by_status, age_counts = counts[: len(OPEN_STATUSES)], counts[len(OPEN_STATUSES) :]
    return Backlog(
        total=total,
        at_risk=at_risk,
        breached=breached,
        by_status=[StatusCount(s, n) for s, n in zip(OPEN_STATUSES, by_status, strict=True) if n],
        by_age=[
            Bucket(label, low, high, n)
            for (label, low, high, _n, _o), n in zip(ages, age_counts, strict=True)
        ],
    )
