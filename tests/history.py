"""Hand-made request histories for the figures' tests, written straight into the projection, and
the reference percentile they are checked against.

Rows are stored as the projection would have left them (`requests`, `request_figures` and its
rollups, and a claimed task when asked), which is fast and gives exact figures to check.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from domain.vocabulary import RequestKind, RequestStatus, TaskState, TaskType
from service.extensions import db
from service.metrics import rollups
from service.models import (
    Console,
    Instance,
    Request,
    RequestFigures,
    Task,
    User,
)

MARCH = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
HOUR = 3600.0


@dataclass
class Past:
    """One stored request: durations in hours from its filing; `ago` files it before now."""

    kind: RequestKind = RequestKind.ENABLE_ACCESS
    console: str = "ACCT-01"
    created: datetime = MARCH
    ago: timedelta | None = None
    agent: str | None = "agent"
    first_response: float | None = None
    resolution: float | None = None
    status: RequestStatus | None = None
    sla_state: str = "ok"
    sla_met: bool | None = None
    claimed_by: str | None = None
    business: float | None = None
    wait: float | None = None


def store(app: Flask, *rows: Past) -> list[str]:
    """Write requests and their figures as the projection would; returns their public IDs."""
    now = datetime.now(UTC)
    with app.app_context():

        def user(name: str) -> User:
            return db.session.execute(select(User).filter_by(username=name)).scalar_one()

        ids = []
        for row in rows:
            console = db.session.execute(select(Console).filter_by(code=row.console)).scalar_one()
            instance = db.session.execute(select(Instance).filter_by(code="GAMMA")).scalar_one()
            created = now - row.ago if row.ago is not None else row.created
            resolved = (
                created + timedelta(hours=row.resolution) if row.resolution is not None else None
            )
            status = row.status or (
                RequestStatus.COMPLETED if resolved else RequestStatus.IN_REVIEW
            )
            request = Request(
                kind=row.kind,
                console_id=console.id,
                instance_id=instance.id,
                requester_id=user("pacct").id,
                reason="history",
                status=status,
                open_key=None if status.is_terminal else f"history:{len(ids)}:{created}",
                steps=["review"],
                created_at=created,
                updated_at=resolved or created,
                resolved_at=resolved,
                sla_state=row.sla_state,
            )
            db.session.add(request)
            db.session.flush()
            figures = RequestFigures(
                request_id=request.id,
                created_at=created,
                resolved_at=resolved,
                kind=row.kind,
                console_type=console.type,
                outcome=status if status.is_terminal else None,
                agent_id=user(row.agent).id if row.agent else None,
                first_response_seconds=_seconds(row.first_response),
                first_response_business_seconds=_seconds(row.first_response),
                resolution_seconds=_seconds(row.resolution),
                resolution_business_seconds=_seconds(row.business),
                customer_wait_seconds=_seconds(row.wait),
                sla_met=row.sla_met,
            )
            db.session.add(figures)
            rollups.change(Counter(), rollups.tallies(figures))
            if row.claimed_by:
                db.session.add(
                    Task(
                        request_id=request.id,
                        key=1,
                        type=TaskType.REVIEW,
                        state=TaskState.CLAIMED,
                        assignee_id=user(row.claimed_by).id,
                        created_at=created,
                    )
                )
            ids.append(request.public_id)
        db.session.commit()
        return ids


def _seconds(hours: float | None) -> float | None:
    return None if hours is None else hours * HOUR


def rollup_rows(app: Flask) -> tuple[Counter[tuple[str, ...]], Counter[tuple[str, ...]]]:
    """The rollups of both tables as stored (rows of zero left out) and as a recount of
    `request_figures` gives them now, each row keyed by its table and columns as text."""
    stored: Counter[tuple[str, ...]] = Counter()
    recounted: Counter[tuple[str, ...]] = Counter()
    with app.app_context():
        # One snapshot for all reads, though a workflow of another test may still write
        # (SQLite's read transaction is one already).
        if db.engine.dialect.name == "postgresql":
            db.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        for table in rollups.TABLES:
            name = table.__tablename__
            for row in db.session.execute(select(table.__table__)):
                if row[-1]:
                    stored[(name, *_as_text(row[:-1]))] = row[-1]
            for row in db.session.execute(rollups.counted(table, db.engine.dialect.name)):
                recounted[(name, *_as_text(row[:-1]))] = row[-1]
    return stored, recounted


def _as_text(key: Any) -> tuple[str, ...]:
    return tuple(str(getattr(part, "value", part)) for part in key)


def percentile_cont(values: list[float], p: float) -> float:
    """The reference: PostgreSQL's definition, in plain Python."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * p
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (position - below) * (ordered[above] - ordered[below])
