"""Writes a request workflow's state into the database projection that serves every read."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields
from datetime import datetime

from flask import Flask
from sqlalchemy import delete, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.kinds import KINDS
from domain.sla import SlaState
from domain.vocabulary import Decision, RequestKind, RequestStatus
from service.audit import audit
from service.directory import relationship_between
from service.extensions import db, reading_only
from service.metrics import rollups
from service.models import (
    AuditEvent,
    Console,
    Instance,
    Request,
    RequestFigures,
    StatusPeriod,
    Task,
    TimelineEvent,
)
from workflows.activity_interfaces import ProjectionInterface
from workflows.shared import EffectCheck, Projection, ProjectionResult, TaskSnapshot

# The request's columns that mirror the snapshot's fields of the same name, as they are.
REQUEST_MIRRORS = (
    "updated_at",
    "resolved_at",
    "outcome",
    "first_response_at",
    "first_response_due",
    "resolution_due",
    "sla_state",
    "customer_wait_seconds",
)
# The timeline's actions that decide a request, and the audit trail's name of each. The audit
# event is written with the timeline event, in the same transaction, so it is there exactly
# once: a retried projection skips timeline events already stored, and one that forgets what
# a lost workflow task projected forgets its audit events too.
DECISION_ACTIONS = {
    Decision.APPROVE.value: "request.approved",
    Decision.REJECT.value: "request.rejected",
    Decision.REQUEST_INFO.value: "request.info_requested",
    Decision.GRANT.value: "request.granted",
    Decision.DECLINE.value: "request.declined",
    "cancelled": "request.cancelled",
}
# A task's columns mirror every field of its snapshot but its key (set once, with the row), the
# assignee's name (the row joins the user) and the public ID (the row's own).
TASK_MIRRORS = tuple(
    field.name for field in fields(TaskSnapshot) if field.name not in {"key", "assignee", "id"}
)


class ProjectionActivities(ProjectionInterface):
    """Local activities of the request workflow; each runs in its own app context."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    @activity.defn(name="project_request", no_thread_cancel_exception=True)
    def project_request(self, state: Projection) -> ProjectionResult:
        """Mirror the workflow's state; idempotent, and never goes back to an older state
        (but over one that a workflow task Temporal never recorded wrote)."""
        with self.app.app_context():
            # Locked (PostgreSQL; SQLite's writer holds the whole database): an attempt that
            # timed out still runs to its end, and its retry must wait for it and then see its
            # `projected_seq`, not write the same change twice (the figures' rollups add).
            request = db.session.get(Request, state.number, with_for_update={"of": Request})
            if request is None:
                raise ApplicationError(
                    f"Request {state.number} is not in the database.",
                    type="RequestDeleted",
                    non_retryable=True,
                )
            tasks = {
                t.key: t
                for t in db.session.execute(
                    select(Task).where(Task.request_id == request.id)
                ).scalars()
            }
            if state.seq > request.projected_seq or self._forget_unrecorded(request, state, tasks):
                self._write(request, state, tasks)
            task_ids = {key: task.id for key, task in tasks.items()}  # read before the commit
            db.session.commit()
            return ProjectionResult(task_ids)

    def _forget_unrecorded(
        self, request: Request, state: Projection, tasks: dict[int, Task]
    ) -> bool:
        """Drop what a workflow task that Temporal never recorded projected, when the snapshot
        shows there was one; whether it did.

        An update's handler projects before its workflow task completes. When that completion
        is lost (the Temporal server killed meanwhile), the workflow goes on from before the
        update and numbers its next events as the lost ones were, so its next snapshot is not
        ahead of what the lost one wrote and would be skipped for good. A stored event that
        differs from the snapshot's of the same number gives it away: the stored events from
        there on, and the tasks the snapshot does not hold, were never the workflow's; nor
        were the decisions among those events, whose audit events go with them.
        """
        numbers = [event.seq for event in state.events]
        stored = {
            seq: (at, actor, action, status, comment)
            for seq, at, actor, action, status, comment in db.session.execute(
                select(
                    TimelineEvent.seq,
                    TimelineEvent.at,
                    TimelineEvent.actor,
                    TimelineEvent.action,
                    TimelineEvent.status,
                    TimelineEvent.comment,
                ).where(TimelineEvent.request_id == request.id, TimelineEvent.seq.in_(numbers))
            )
        }
        differs = [
            event.seq
            for event in state.events
            if event.seq in stored
            and stored[event.seq]
            != (event.at, event.actor, event.action, event.status, event.comment)
        ]
        if not differs:
            return False
        forgotten = db.session.execute(
            select(TimelineEvent.at, TimelineEvent.actor, TimelineEvent.action).where(
                TimelineEvent.request_id == request.id,
                TimelineEvent.seq >= min(differs),
                TimelineEvent.action.in_(DECISION_ACTIONS),
            )
        ).all()
        for at, actor, action in forgotten:
            db.session.execute(
                delete(AuditEvent).where(
                    AuditEvent.object_ref == request.public_id,
                    AuditEvent.object_type == "request",
                    AuditEvent.action == DECISION_ACTIONS[action],
                    AuditEvent.actor == actor,
                    AuditEvent.at == at,
                )
            )
        db.session.execute(
            delete(TimelineEvent).where(
                TimelineEvent.request_id == request.id, TimelineEvent.seq >= min(differs)
            )
        )
        held = {snapshot.key for snapshot in state.tasks}
        for key in [key for key in tasks if key not in held]:
            db.session.delete(tasks.pop(key))
        return True

    def _write(self, request: Request, state: Projection, tasks: dict[int, Task]) -> None:
        seen = set(
            db.session.execute(
                select(TimelineEvent.seq).where(
                    TimelineEvent.request_id == request.id,
                    TimelineEvent.seq.in_([e.seq for e in state.events]),
                )
            ).scalars()
        )
        for event in state.events:
            if event.seq in seen:
                continue
            db.session.add(
                TimelineEvent(
                    request_id=request.id,
                    seq=event.seq,
                    at=event.at,
                    actor=event.actor,
                    action=event.action,
                    comment=event.comment,
                    status=event.status,
                )
            )
            if event.action in DECISION_ACTIONS:
                audit(
                    event.actor,
                    DECISION_ACTIONS[event.action],
                    request,
                    request.public_id,
                    event.comment,
                    at=event.at,
                    seq=event.seq,
                )
            if event.status != request.status:
                self._change_period(request, RequestStatus(event.status), event.at)
                request.status = RequestStatus(event.status)
        status = RequestStatus(state.status)
        if status != request.status:
            self._change_period(request, status, state.updated_at)
        request.status = status
        request.open_key = None if status.is_terminal else request.open_key
        for name in REQUEST_MIRRORS:
            setattr(request, name, getattr(state, name))
        request.projected_seq = state.seq
        for snapshot in state.tasks:
            task = tasks.get(snapshot.key)
            if task is None:
                task = tasks[snapshot.key] = Task(request_id=request.id, key=snapshot.key)
                db.session.add(task)
            _copy_task(snapshot, task)
        self._write_figures(request, state)
        db.session.flush()  # assigns IDs to new tasks

    def _write_figures(self, request: Request, state: Projection) -> None:
        figures = db.session.get(RequestFigures, request.id)
        before = rollups.tallies(figures) if figures is not None else Counter()
        if figures is None:
            figures = RequestFigures(
                request_id=request.id,
                created_at=request.created_at,
                kind=request.kind,
                console_type=request.console.type,
            )
            db.session.add(figures)
        figures.agent_id = state.first_responder_id
        figures.first_response_seconds = _seconds_since(request.created_at, state.first_response_at)
        figures.first_response_business_seconds = state.first_response_business_seconds
        figures.resolved_at = state.resolved_at
        figures.resolution_seconds = _seconds_since(request.created_at, state.resolved_at)
        figures.resolution_business_seconds = state.resolution_business_seconds
        ended = request.status.is_terminal
        figures.outcome = request.status if ended else None
        figures.customer_wait_seconds = state.customer_wait_seconds if ended else None
        figures.customer_wait_business_seconds = state.customer_wait_business_seconds
        figures.sla_met = (
            state.sla_state == SlaState.MET if ended and request.status.counts_for_sla else None
        )
        rollups.change(before, rollups.tallies(figures))

    def _change_period(self, request: Request, status: RequestStatus, at: datetime) -> None:
        current = db.session.execute(
            select(StatusPeriod).where(
                StatusPeriod.request_id == request.id, StatusPeriod.ended_at.is_(None)
            )
        ).scalar_one_or_none()
        if current is not None:
            current.ended_at = at
            current.seconds = (current.ended_at - current.started_at).total_seconds()
        if not status.is_terminal:
            db.session.add(StatusPeriod(request_id=request.id, status=status, started_at=at))

    @activity.defn(name="check_effect_needed", no_thread_cancel_exception=True)
    def check_effect_needed(self, check: EffectCheck) -> bool:
        """Whether the request would still change the directory."""
        with self.app.app_context(), reading_only():
            console = db.session.get(Console, check.console_id)
            instance = db.session.get(Instance, check.instance_id)
            if not console or console.removed_at or not instance or instance.removed_at:
                return True  # applying will fail with the reason
            current = relationship_between(console, instance)
            return not KINDS[RequestKind(check.kind)].holds(current.access_enabled, current.linked)


def _seconds_since(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds()


def _copy_task(snapshot: TaskSnapshot, task: Task) -> None:
    for name in TASK_MIRRORS:
        setattr(task, name, getattr(snapshot, name))
