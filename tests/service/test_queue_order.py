"""The task queue's order, pages and scope, on tasks stored as the projection leaves them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select

from domain.vocabulary import RequestKind, RequestStatus, TaskState, TaskType
from service.extensions import db
from service.models import Console, Instance, Request, Task, User
from tests.conftest import Factory

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def queued(
    app: Flask,
    *,
    instance: str = "GAMMA",
    kind: RequestKind = RequestKind.ESTABLISH_LINK,
    due: timedelta | None,
    filed: timedelta,
    type_: TaskType = TaskType.REVIEW,
    state: TaskState = TaskState.OPEN,
) -> int:
    """One open request with one task; the task's ID."""
    with app.app_context():
        console = db.session.execute(select(Console).filter_by(code="ACCT-01")).scalar_one()
        place = db.session.execute(select(Instance).filter_by(code=instance)).scalar_one()
        partner = db.session.execute(select(User).filter_by(username="pacct")).scalar_one()
        count = db.session.execute(select(db.func.count()).select_from(Request)).scalar_one()
        request = Request(
            kind=kind,
            console_id=console.id,
            instance_id=place.id,
            requester_id=partner.id,
            reason="queue order",
            status=RequestStatus.AWAITING_AGENT,
            open_key=f"queue:{count}",
            steps=["review"],
            created_at=BASE + filed,
            updated_at=BASE + filed,
            resolution_due=None if due is None else BASE + due,
        )
        db.session.add(request)
        db.session.flush()
        agent = db.session.execute(select(User).filter_by(username="agent")).scalar_one()
        task = Task(
            request_id=request.id,
            key=1,
            type=type_,
            state=state,
            assignee_id=agent.id if state == TaskState.CLAIMED else None,
            created_at=BASE + filed,
        )
        db.session.add(task)
        db.session.commit()
        return task.id


def pages(api: Any, url: str, per_page: int) -> tuple[list[int], list[int]]:
    """Every task ID of the queue read page by page, and the totals each page gave."""
    ids: list[int] = []
    totals: list[int] = []
    page = 1
    while True:
        answer = api.get(f"{url}{'&' if '?' in url else '?'}per_page={per_page}&page={page}")
        assert answer.status_code == 200, answer.json
        totals.append(answer.json["total"])
        if not answer.json["items"]:
            return ids, totals
        ids += [item["id"] for item in answer.json["items"]]
        page += 1


def test_the_queue_pages_through_the_most_urgent_first(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    hour = timedelta(hours=1)
    later_due = queued(app, due=30 * hour, filed=1 * hour)
    no_due_old = queued(app, due=None, filed=0 * hour)
    soonest = queued(app, due=5 * hour, filed=3 * hour)
    tie_filed_first = queued(app, due=20 * hour, filed=2 * hour)
    tie_filed_later = queued(app, due=20 * hour, filed=4 * hour)
    no_due_new = queued(app, due=None, filed=5 * hour, kind=RequestKind.ENABLE_ACCESS)
    claimed = queued(app, due=10 * hour, filed=6 * hour, state=TaskState.CLAIMED)
    queued(app, due=1 * hour, filed=7 * hour, state=TaskState.DONE)  # not in the queue
    consent = queued(app, due=2 * hour, filed=8 * hour, type_=TaskType.CONSENT, instance="DELTA")

    urgent_first = [
        soonest,
        claimed,
        tie_filed_first,
        tie_filed_later,
        later_due,
        no_due_old,
        no_due_new,
    ]
    agent = api_as("agent")
    for per_page in (1, 3, 50):
        ids, totals = pages(agent, "/api/v1/tasks", per_page)
        assert ids == urgent_first
        assert set(totals) == {7}
    ids, totals = pages(agent, "/api/v1/tasks?kind=enable_access", 2)
    assert (ids, set(totals)) == ([no_due_new], {1})
    ids, totals = pages(agent, "/api/v1/tasks?assignee=unassigned", 4)
    assert (ids, set(totals)) == ([i for i in urgent_first if i != claimed], {6})
    # An instance admin's queue: consent tasks of the instances they administer only.
    ids, totals = pages(api_as("iadmin"), "/api/v1/tasks", 2)
    assert (ids, set(totals)) == ([consent], {1})
