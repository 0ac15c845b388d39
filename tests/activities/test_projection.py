"""How the projection mirrors a workflow's snapshot into the database's rows."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from activities.projection import REQUEST_MIRRORS, TASK_MIRRORS, ProjectionActivities
from domain.vocabulary import RequestStatus, TaskState, TaskType
from service.extensions import db
from service.models import AuditEvent, Request, Task, TimelineEvent, User, utcnow
from tests.conftest import Factory, waiting_request
from workflows.shared import Projection, TaskSnapshot, TimelineEntry


def test_every_snapshot_field_with_a_column_of_its_name_is_mirrored() -> None:
    """A field added to the snapshot with a column of the same name cannot be forgotten: the
    request's status (which also closes its status periods) is the one set apart."""
    request_columns = set(Request.__table__.columns.keys())
    shared = {field.name for field in fields(Projection)} & request_columns
    assert shared - {"status"} == set(REQUEST_MIRRORS)
    task_columns = set(Task.__table__.columns.keys())
    assert set(TASK_MIRRORS) <= task_columns
    assert {field.name for field in fields(TaskSnapshot)} & task_columns - {"key", "id"} == set(
        TASK_MIRRORS
    )


def test_a_snapshot_replaces_what_a_workflow_task_temporal_never_recorded_projected(
    app: Flask, demo_directory: Factory
) -> None:
    """An update's handler projects before its workflow task completes. When Temporal loses that
    completion (its server killed meanwhile), the workflow goes on from before the update and
    numbers its next events as the lost ones were; its next snapshot replaces what the lost one
    wrote instead of being skipped as not newer. Found by the chaos campaign (bench/chaos.py):
    an acknowledged cancel never shown, the request stuck on a question the workflow never
    asked."""
    request = waiting_request(app)
    with app.app_context():
        users = {name: id_ for name, id_ in db.session.execute(select(User.username, User.id))}
    projection = ProjectionActivities(app)
    filed = utcnow()
    lost, cancelled = filed + timedelta(seconds=1), filed + timedelta(seconds=2)

    def snapshot(seq: int, status: str, tasks: list[TaskSnapshot], *events: Any) -> Projection:
        entries = [TimelineEntry(*event) for event in events]
        return Projection(request.id, seq, status, entries[-1].at, tasks, entries)

    review = TaskSnapshot(
        1, TaskType.REVIEW, TaskState.CLAIMED, filed, assignee_id=users["agent"], assignee="agent"
    )
    projection.project_request(
        snapshot(
            2,
            "in_review",
            [review],
            (1, filed, "pacct", "filed", "submitted"),
            (2, filed, "agent", "claimed", "in_review", "review task"),
        )
    )
    asked = replace(review, state=TaskState.DONE, completed_at=lost, decision="request_info")
    question = TaskSnapshot(2, TaskType.INFO, TaskState.OPEN, lost, assignee_id=users["pacct"])
    unrecorded = snapshot(
        4,
        "awaiting_requester",
        [asked, question],
        (3, lost, "agent", "request_info", "in_review", "Which one?"),
        (4, lost, "LinkDesk", "status", "awaiting_requester", "awaiting_requester"),
    )
    projection.project_request(unrecorded)
    closed = replace(review, state=TaskState.DONE, completed_at=cancelled, decision="cancelled")
    recorded = snapshot(
        4,
        "cancelled",
        [closed],
        (3, cancelled, "pacct", "cancelled", "in_review", "Not needed"),
        (4, cancelled, "LinkDesk", "status", "cancelled", "cancelled"),
    )
    for _ in range(2):  # a retried attempt of the same snapshot changes nothing more
        projection.project_request(recorded)

    with app.app_context():
        stored = db.session.get(Request, request.id)
        assert stored is not None and stored.status == RequestStatus.CANCELLED
        events = db.session.execute(
            select(TimelineEvent.seq, TimelineEvent.actor, TimelineEvent.action)
            .where(TimelineEvent.request_id == request.id)
            .order_by(TimelineEvent.seq)
        ).all()
        assert [tuple(e) for e in events] == [
            (1, "pacct", "filed"),
            (2, "agent", "claimed"),
            (3, "pacct", "cancelled"),
            (4, "LinkDesk", "status"),
        ]
        tasks = db.session.execute(
            select(Task.key, Task.state, Task.decision).where(Task.request_id == request.id)
        ).all()
        assert [tuple(t) for t in tasks] == [(1, TaskState.DONE, "cancelled")]
        # The request_info decision that was never the workflow's leaves the audit trail with
        # its timeline event; the cancellation is audited once, however often it is projected.
        audited = db.session.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.at, AuditEvent.comment).where(
                AuditEvent.object_type == "request", AuditEvent.object_ref == stored.public_id
            )
        ).all()
        assert [tuple(e) for e in audited] == [
            ("pacct", "request.cancelled", cancelled, "Not needed")
        ]
