"""Request timers on Temporal's time-skipping test server: expiries, reminders and the SLA clock.

LinkDesk's real worker and the real database; the server's clock jumps only when a test sleeps
the environment, so days of waiting take milliseconds. The clock is one for the whole module
and only moves forward, so every test reads the current time and computes from there.
Human steps are the workflow's Updates, as the web app sends them; the test server handles
them (and the queries) without trouble, so every case runs here, none on the dev server.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.vocabulary import RequestKind, RequestStatus, TaskState, TaskType
from service import requests as service
from service.directory import relationship_between
from service.errors import Conflict
from service.extensions import db
from service.models import (
    Console,
    Instance,
    Notification,
    Request,
    StatusPeriod,
    Task,
    TimelineEvent,
    User,
    workflow_id_for,
)
from service.temporal import bridge
from tests.conftest import Factory, LoopThread, eventually
from worker.main import build_worker
from workflows.request import RequestWorkflow
from workflows.shared import Actor, Cancel, Projection, Respond, TaskAction

TEST_SERVER = Path(sys.executable).with_name("temporal-test-server")
ROUND_THE_CLOCK = {
    "timezone": "UTC",
    "workdays": [0, 1, 2, 3, 4, 5, 6],
    "start": "00:00",
    "end": "24:00",
    "holidays": [],
}
MONDAY, FRIDAY = 0, 4
RUNNING = WorkflowExecutionStatus.RUNNING


@pytest.fixture(scope="module")
def skipping_env(loop_thread: LoopThread) -> Iterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, from the pip-installed binary (no download)."""
    env = loop_thread.run(
        WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER))
    )
    yield env
    loop_thread.run(env.shutdown())


@dataclass(frozen=True)
class Event:
    """A timeline entry as the request page shows it."""

    at: datetime
    actor: str
    action: str
    comment: str | None


@dataclass
class Desk:
    """Files requests and acts on them as LinkDesk's web process would, on the skipping server."""

    app: Flask
    env: WorkflowEnvironment
    loop: LoopThread
    task_queue: str
    started: list[tuple[str, Actor]] = field(default_factory=list)  # request ID, requester

    # Time.

    def now(self) -> datetime:
        """The server's clock (it runs at real speed between sleeps)."""
        now: datetime = self.loop.run(self.env.get_current_time())
        return now

    def sleep_until(self, instant: datetime) -> None:
        """Skip the server's clock forward to `instant`, firing every timer on the way."""
        now = self.now()
        assert instant > now, f"{instant} is already past ({now})"
        self.loop.run(self.env.sleep(instant - now))

    def next_weekday(self, weekday: int, hour: int) -> datetime:
        """The next `weekday` at `hour`:00 UTC, at least a day from now."""
        day = (self.now() + timedelta(days=1)).date()
        while day.weekday() != weekday:
            day += timedelta(days=1)
        return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)

    # Requests.

    def file(
        self,
        kind: str,
        console: str,
        instance: str,
        requester: str,
        *,
        at: datetime | None = None,
        calendar: dict[str, Any] | None = None,
    ) -> int:
        """Store a request as `service.requests.file_request` does, and start its workflow here.

        `at` (the filing instant, the SLA clock's start) is the server's current time unless
        given; `calendar` replaces the app's business calendar for this request.
        """
        with self.app.app_context():
            filed_at = at or self.now()
            assert filed_at <= self.now()
            kind_ = RequestKind(kind)
            requester_ = _user(requester)
            console_ = db.session.execute(select(Console).filter_by(code=console)).scalar_one()
            instance_ = db.session.execute(select(Instance).filter_by(code=instance)).scalar_one()
            request = Request(
                kind=kind_,
                console_id=console_.id,
                instance_id=instance_.id,
                requester_id=requester_.id,
                reason="please",
                status=RequestStatus.SUBMITTED,
                open_key=f"{kind_.value}:{console_.id}:{instance_.id}",
                steps=service._policy_steps(kind_, console_),
                created_at=filed_at,
                updated_at=filed_at,
            )
            db.session.add(request)
            db.session.flush()
            db.session.add(
                StatusPeriod(
                    request_id=request.id, status=RequestStatus.SUBMITTED, started_at=filed_at
                )
            )
            db.session.commit()
            data = service.workflow_input(request)
            number = request.id
        if calendar is not None:
            data = replace(data, calendar=calendar)
        self.started.append((data.request_id, data.requester))
        self.loop.run(service.start_request_workflow(self.env.client, self.task_queue, data))
        return number

    def actor(self, username: str) -> Actor:
        with self.app.app_context():
            return service.actor_of(_user(username))

    def request(self, number: int) -> Request:
        """The request as the database projection holds it."""
        with self.app.app_context():
            row = db.session.get(Request, number)
            assert row is not None
            db.session.expunge(row)
            return row

    def wait(self, number: int, check: Callable[[Request], bool], timeout: float = 15) -> Request:
        """The projected request, once `check` holds (the worker writes it asynchronously)."""
        return eventually(
            lambda: self.request(number),
            check,
            timeout=timeout,
            interval=0.02,
            what=f"request {number}",
            show=lambda row: (
                f"request is {row.status}, SLA {row.sla_state}, "
                f"timeline {[e.action for e in self.timeline(number)]}"
            ),
        )

    def wait_status(self, number: int, status: RequestStatus) -> Request:
        return self.wait(number, lambda r: r.status == status)

    def wait_sla(self, number: int, state: str) -> Request:
        return self.wait(number, lambda r: r.sla_state == state)

    def state(self, number: int) -> Projection:
        """The workflow's own view, through its query."""
        handle = self.env.client.get_workflow_handle(self.workflow_id(number))
        projection: Projection = self.loop.run(handle.query(RequestWorkflow.state))
        return projection

    def workflow_id(self, number: int) -> str:
        return workflow_id_for(self.request(number).public_id)

    def timeline(self, number: int) -> list[Event]:
        with self.app.app_context():
            rows = db.session.execute(
                select(TimelineEvent)
                .where(TimelineEvent.request_id == number)
                .order_by(TimelineEvent.seq)
            ).scalars()
            return [Event(e.at, e.actor, e.action, e.comment) for e in rows]

    def actions(self, number: int) -> list[str]:
        return [e.action for e in self.timeline(number)]

    def event(self, number: int, action: str, comment: str | None = None) -> Event:
        """The one timeline entry with this action (and comment, when given)."""
        (found,) = [
            e
            for e in self.timeline(number)
            if e.action == action and (comment is None or e.comment == comment)
        ]
        return found

    def tasks(self, number: int) -> list[Task]:
        with self.app.app_context():
            rows = list(
                db.session.execute(
                    select(Task).where(Task.request_id == number).order_by(Task.key)
                ).scalars()
            )
            for row in rows:
                db.session.expunge(row)
            return rows

    def open_task(self, number: int, type_: TaskType) -> Task:
        (task,) = [t for t in self.tasks(number) if t.type == type_ and t.state != TaskState.DONE]
        return task

    def notified(self, number: int, event: str, people: int = 1) -> list[tuple[str, str]]:
        """(username, message) of the in-app notifications of this event, oldest first.

        Notifications go out after the state change is projected, one person at a time, so
        this waits a little for `people` of them.
        """
        return eventually(
            lambda: self.sent_now(number, event),
            lambda sent: len(sent) >= people,
            timeout=5,
            interval=0.02,
            what=f"{people} {event!r} notification(s) of request {number}",
        )

    def sent_now(self, number: int, event: str) -> list[tuple[str, str]]:
        """The notifications of this event sent so far, without waiting."""
        with self.app.app_context():
            rows = db.session.execute(
                select(User.username, Notification.message)
                .join(User, User.id == Notification.user_id)
                .where(Notification.request_id == number, Notification.event == event)
                .order_by(Notification.id)
            ).all()
            return [(name, message) for name, message in rows]

    def wait_closed(self, number: int, timeout: float = 10) -> WorkflowExecutionStatus | None:
        """The workflow's final status, once it has closed."""
        return self.closed(self.env.client.get_workflow_handle(self.workflow_id(number)), timeout)

    def closed(self, handle: WorkflowHandle[Any, Any], timeout: float) -> WorkflowExecutionStatus:
        """The final status of the workflow behind `handle`, once it has closed."""
        status: WorkflowExecutionStatus = eventually(
            lambda: self.loop.run(handle.describe()).status,
            lambda status: status != RUNNING,
            timeout=timeout,
            interval=0.02,
            what=f"{handle.id} to close",
        )
        return status

    def wind_down(self) -> None:
        """End the test's workflows the way a user would (cancel) and let them finish.

        Not by terminating them: the test server keeps its clock locked for good when a
        workflow is terminated under a running activity, which would stall the next test's
        sleeps.
        """
        for request_id, requester in self.started:
            handle = self.env.client.get_workflow_handle(workflow_id_for(request_id))
            if self.loop.run(handle.describe()).status != RUNNING:
                continue
            state = self.loop.run(handle.query(RequestWorkflow.state))
            if RequestStatus(state.status).cancellable:
                with contextlib.suppress(WorkflowUpdateFailedError):  # it ended meanwhile
                    self.loop.run(
                        handle.execute_update(
                            RequestWorkflow.cancel, Cancel(requester, "test over")
                        )
                    )
            self.closed(handle, timeout=10)

    # Human steps, as the service layer sends them: Updates to the request's workflow.

    def update(self, number: int, update: Any, argument: Any) -> None:
        handle = self.env.client.get_workflow_handle(self.workflow_id(number))
        self.loop.run(handle.execute_update(update, argument))

    def claim(self, number: int, agent: str) -> Task:
        task = self.open_task(number, TaskType.REVIEW)
        self.update(number, RequestWorkflow.claim, TaskAction(task.id, self.actor(agent)))
        return task

    def decide(
        self, number: int, who: str, type_: TaskType, decision: str, comment: str | None = None
    ) -> None:
        task = self.open_task(number, type_)
        action = TaskAction(task.id, self.actor(who), decision=decision, comment=comment)
        self.update(number, RequestWorkflow.complete, action)

    def ask(self, number: int, agent: str, question: str) -> None:
        """The agent claims the review task and asks the requester a question."""
        self.claim(number, agent)
        self.decide(number, agent, TaskType.REVIEW, "request_info", question)

    def respond(self, number: int, requester: str, answer: str) -> None:
        self.update(number, RequestWorkflow.respond, Respond(self.actor(requester), answer))


def _user(username: str) -> User:
    user: User = db.session.execute(select(User).filter_by(username=username)).scalar_one()
    return user


@pytest.fixture
def desk(app: Flask, skipping_env: WorkflowEnvironment, loop_thread: LoopThread) -> Iterator[Desk]:
    """LinkDesk's real worker on the test's own task queue, against the time-skipping server."""
    task_queue = app.config["TEMPORAL_TASK_QUEUE"]

    async def build() -> Worker:  # a worker is made inside the loop that runs it
        return build_worker(skipping_env.client, app, task_queue)

    worker: Worker = loop_thread.run(build())
    done = asyncio.run_coroutine_threadsafe(worker.run(), loop_thread.loop)
    desk = Desk(app, skipping_env, loop_thread, task_queue)
    yield desk

    desk.wind_down()
    loop_thread.run(worker.shutdown())
    done.result(30)


@pytest.fixture
def directory(demo_directory: Factory) -> Factory:
    """The demo directory, plus an admin of GAMMA (consent goes to the instance's admins)
    and a second manager (SLA breaches go to every manager)."""
    demo_directory.user("gadmin", "instance_admin", instances=("GAMMA",))
    demo_directory.user("boss2", "manager")
    return demo_directory


def file_through_service(app: Flask, kind: RequestKind, console: str, instance: str) -> str:
    """File as partner `pacct` through the real service function; its workflow starts on the
    web process's Temporal (the dev server), where it is terminated at once: only the filing
    itself is under test."""
    with app.app_context():
        filed = service.file_request(_user("pacct"), kind, console, instance, "again")
        workflow_id = filed.workflow_id
        bridge().call(lambda client: client.get_workflow_handle(workflow_id).terminate("test"))
        return filed.public_id


# Consent: reminder halfway, expiry after 7 days.


@pytest.mark.usefixtures("temporal_env")  # a second filing goes through the web's Temporal
def test_unanswered_consent_reminds_the_instance_admins_then_expires(
    desk: Desk, directory: Factory
) -> None:
    number = desk.file("enable_access", "ACCT-01", "GAMMA", "pacct")
    waiting = desk.wait_status(number, RequestStatus.AWAITING_CONSENT)
    public_id = waiting.public_id
    consent = desk.open_task(number, TaskType.CONSENT)
    asked, expiry = consent.created_at, consent.created_at + timedelta(days=7)
    assert consent.due_at == expiry
    assert waiting.sla_state == "paused"
    assert [who for who, _ in desk.notified(number, "consent_requested")] == ["gadmin"]

    desk.sleep_until(asked + timedelta(days=3, hours=12) - timedelta(minutes=1))
    assert desk.state(number).status == "awaiting_consent"
    assert "reminder" not in desk.actions(number)
    assert desk.sent_now(number, "reminder") == []

    desk.sleep_until(asked + timedelta(days=3, hours=12, minutes=1))
    desk.wait(number, lambda r: "reminder" in desk.actions(number))
    reminder = desk.event(number, "reminder")
    assert reminder.actor == "LinkDesk"
    assert asked + timedelta(days=3, hours=12) <= reminder.at
    assert reminder.at < asked + timedelta(days=3, hours=12, minutes=1)
    assert desk.notified(number, "reminder") == [
        ("gadmin", f"{public_id}: Reminder: consent needed by {expiry:%Y-%m-%d}.")
    ]
    assert desk.request(number).status == RequestStatus.AWAITING_CONSENT

    # Still open a minute before expiry: a second request for the same triple is refused.
    desk.sleep_until(expiry - timedelta(minutes=1))
    assert desk.request(number).status == RequestStatus.AWAITING_CONSENT
    with pytest.raises(Conflict) as refused:
        file_through_service(desk.app, RequestKind.ENABLE_ACCESS, "ACCT-01", "GAMMA")
    assert refused.value.fields == {"open_request_id": [public_id]}

    desk.sleep_until(expiry + timedelta(minutes=1))
    expired = desk.wait_status(number, RequestStatus.EXPIRED)
    assert expired.outcome == "Expired: no consent within 7 days."
    assert expired.open_key is None
    assert expired.resolved_at is not None and expiry <= expired.resolved_at
    assert desk.event(number, "expired").comment == "No consent within 7 days."
    assert desk.actions(number)[-2:] == ["expired", "status"]
    (consent,) = desk.tasks(number)
    assert (consent.type, consent.state, consent.decision) == (TaskType.CONSENT, "done", "expired")
    assert desk.notified(number, "status:expired") == [
        ("pacct", f"{public_id}: Status is now expired.")
    ]
    # Only one reminder, however long it waited.
    assert len(desk.sent_now(number, "reminder")) == 1
    # The triple is free again.
    again = file_through_service(desk.app, RequestKind.ENABLE_ACCESS, "ACCT-01", "GAMMA")
    assert again != public_id


# Info requests: reminder halfway, expiry after 5 days; an answer returns to the same agent.


def test_unanswered_question_reminds_the_requester_then_expires(
    desk: Desk, directory: Factory
) -> None:
    number = desk.file("establish_link", "ACCT-01", "BETA", "pacct")
    desk.wait_status(number, RequestStatus.AWAITING_AGENT)
    desk.ask(number, "agent", "Which entity do you mean?")
    waiting = desk.wait_status(number, RequestStatus.AWAITING_REQUESTER)
    public_id = waiting.public_id
    info = desk.open_task(number, TaskType.INFO)
    assert info.assignee_id == directory.get_user("pacct").id
    asked, expiry = info.created_at, info.created_at + timedelta(days=5)
    assert info.due_at == expiry
    assert desk.notified(number, "info_requested") == [
        ("pacct", f"{public_id}: Customer Service asks: Which entity do you mean?")
    ]

    desk.sleep_until(asked + timedelta(days=2, hours=12) - timedelta(minutes=1))
    assert desk.state(number).status == "awaiting_requester"
    assert "reminder" not in desk.actions(number)
    assert desk.sent_now(number, "reminder") == []

    desk.sleep_until(asked + timedelta(days=2, hours=12, minutes=1))
    desk.wait(number, lambda r: "reminder" in desk.actions(number))
    assert desk.event(number, "reminder").at >= asked + timedelta(days=2, hours=12)
    assert desk.notified(number, "reminder") == [
        ("pacct", f"{public_id}: Reminder: answer needed by {expiry:%Y-%m-%d}.")
    ]

    desk.sleep_until(expiry - timedelta(minutes=1))
    assert desk.request(number).status == RequestStatus.AWAITING_REQUESTER

    desk.sleep_until(expiry + timedelta(minutes=1))
    expired = desk.wait_status(number, RequestStatus.EXPIRED)
    assert expired.outcome == "Expired: no answer within 5 days."
    assert expired.open_key is None
    assert desk.event(number, "expired").comment == "No answer within 5 days."
    info = desk.tasks(number)[-1]
    assert (info.type, info.state, info.decision) == (TaskType.INFO, "done", "expired")
    assert all(t.state == TaskState.DONE for t in desk.tasks(number))
    assert len(desk.sent_now(number, "reminder")) == 1


def test_answered_question_returns_to_the_same_agent_and_never_expires(
    desk: Desk, directory: Factory
) -> None:
    number = desk.file("establish_link", "ACCT-01", "BETA", "pacct")
    desk.wait_status(number, RequestStatus.AWAITING_AGENT)
    first_review = desk.claim(number, "agent")
    desk.decide(number, "agent", TaskType.REVIEW, "request_info", "Which entity do you mean?")
    desk.wait_status(number, RequestStatus.AWAITING_REQUESTER)
    asked = desk.open_task(number, TaskType.INFO).created_at

    desk.sleep_until(asked + timedelta(days=1))
    desk.respond(number, "pacct", "ACME US, the parent entity.")
    back = desk.request(number)  # the update returns once the projection is written
    assert back.status == RequestStatus.IN_REVIEW
    review = desk.open_task(number, TaskType.REVIEW)
    assert review.id != first_review.id
    assert review.state == TaskState.CLAIMED
    assert review.assignee_id == directory.get_user("agent").id
    info = next(t for t in desk.tasks(number) if t.type == TaskType.INFO)
    assert (info.state, info.decision, info.comment) == (
        "done",
        "answered",
        "ACME US, the parent entity.",
    )
    assert desk.event(number, "answered").actor == "pacct"
    assert desk.notified(number, "info_answered") == [
        ("agent", f"{back.public_id}: The requester answered.")
    ]

    # Well past both the reminder and the expiry of the answered question: nothing fires.
    desk.sleep_until(asked + timedelta(days=6))
    assert desk.state(number).status == "in_review"
    still = desk.request(number)
    assert still.status == RequestStatus.IN_REVIEW
    assert "expired" not in desk.actions(number)
    assert "reminder" not in desk.actions(number)
    assert desk.sent_now(number, "reminder") == []

    # And the agent finishes the review.
    desk.decide(number, "agent", TaskType.REVIEW, "approve", "ok")
    done = desk.wait_status(number, RequestStatus.COMPLETED)
    assert done.outcome == "Done: the link is established."


# SLA: at risk at 75% of a target, breached past it, managers told once per missed target.


def test_sla_at_risk_then_breached_tells_every_manager_once(desk: Desk, directory: Factory) -> None:
    filed = desk.now()
    number = desk.file(
        "establish_link", "ACCT-01", "BETA", "pacct", at=filed, calendar=ROUND_THE_CLOCK
    )
    queued = desk.wait_status(number, RequestStatus.AWAITING_AGENT)
    assert queued.sla_state == "ok"
    assert queued.first_response_due == filed + timedelta(hours=4)
    assert queued.resolution_due == filed + timedelta(hours=16)

    desk.sleep_until(filed + timedelta(hours=1))
    desk.claim(number, "agent")  # the first response, well in time
    assert desk.request(number).first_response_at is not None

    desk.sleep_until(filed + timedelta(hours=12) - timedelta(minutes=1))
    assert desk.request(number).sla_state == "ok"
    desk.sleep_until(filed + timedelta(hours=12, seconds=2))
    at_risk = desk.wait_sla(number, "at_risk")
    assert at_risk.status == RequestStatus.IN_REVIEW
    assert desk.event(number, "sla_at_risk").at >= filed + timedelta(hours=12)

    desk.sleep_until(filed + timedelta(hours=16) - timedelta(minutes=1))
    assert desk.request(number).sla_state == "at_risk"
    assert desk.sent_now(number, "sla_breached") == []
    desk.sleep_until(filed + timedelta(hours=16, seconds=2))
    breached = desk.wait_sla(number, "breached")
    assert desk.event(number, "sla_breached").at >= filed + timedelta(hours=16)
    missed = f"{breached.public_id}: The resolution target was missed."
    assert sorted(desk.notified(number, "sla_breached", people=2)) == [
        ("boss", missed),
        ("boss2", missed),
    ]

    # A day later nobody has been told again, and a late completion stays breached.
    desk.sleep_until(filed + timedelta(days=1, hours=16))
    assert len(desk.sent_now(number, "sla_breached")) == 2
    assert desk.actions(number).count("sla_breached") == 1
    desk.decide(number, "agent", TaskType.REVIEW, "approve", "late, sorry")
    done = desk.wait_status(number, RequestStatus.COMPLETED)
    assert done.sla_state == "breached"


def test_sla_runs_on_business_hours_from_monday_nine(desk: Desk, directory: Factory) -> None:
    monday = desk.next_weekday(MONDAY, 9)
    desk.sleep_until(monday)
    number = desk.file("establish_link", "ACCT-01", "BETA", "pacct", at=monday)
    queued = desk.wait_status(number, RequestStatus.AWAITING_AGENT)
    # Default calendar, Monday to Friday 09:00-17:00 UTC: 4 hours is Monday 13:00; 16 hours
    # is the whole of Monday and Tuesday, the night between not counted.
    assert queued.first_response_due == monday + timedelta(hours=4)
    assert queued.resolution_due == monday + timedelta(days=1, hours=8)

    desk.sleep_until(monday + timedelta(hours=3) - timedelta(minutes=1))
    assert desk.request(number).sla_state == "ok"
    desk.sleep_until(monday + timedelta(hours=3, seconds=2))
    desk.wait_sla(number, "at_risk")
    desk.sleep_until(monday + timedelta(hours=4, seconds=2))
    breached = desk.wait_sla(number, "breached")
    missed = f"{breached.public_id}: The first response target was missed."
    assert sorted(desk.notified(number, "sla_breached", people=2)) == [
        ("boss", missed),
        ("boss2", missed),
    ]

    desk.sleep_until(monday + timedelta(days=1, hours=1))  # Tuesday 10:00
    desk.claim(number, "agent")
    assert desk.request(number).sla_state == "breached"  # a late first response stays late
    # The resolution target falls due at Tuesday 17:00, not 16 hours after filing.
    desk.sleep_until(monday + timedelta(days=1, hours=8) - timedelta(minutes=1))
    assert len(desk.sent_now(number, "sla_breached")) == 2
    desk.sleep_until(monday + timedelta(days=1, hours=8, seconds=2))
    desk.wait(number, lambda r: len(desk.sent_now(number, "sla_breached")) == 4)
    resolution = f"{breached.public_id}: The resolution target was missed."
    assert sorted(desk.sent_now(number, "sla_breached")) == [
        ("boss", missed),
        ("boss", resolution),
        ("boss2", missed),
        ("boss2", resolution),
    ]


def test_sla_clock_stops_over_the_weekend(desk: Desk, directory: Factory) -> None:
    friday = desk.next_weekday(FRIDAY, 14)
    monday = friday.replace(hour=0) + timedelta(days=3)  # midnight
    desk.sleep_until(friday)
    number = desk.file("establish_link", "ACCT-01", "BETA", "pacct", at=friday)
    queued = desk.wait_status(number, RequestStatus.AWAITING_AGENT)
    # Friday 14:00-17:00 is 3 hours; the 4th is Monday 09:00-10:00. Resolution: Friday 3,
    # Monday 8, Tuesday 5: Tuesday 14:00.
    assert queued.first_response_due == monday + timedelta(hours=10)
    assert queued.resolution_due == monday + timedelta(days=1, hours=14)

    # 75% of 4 hours is reached at Friday's close, and nothing moves over the weekend.
    desk.sleep_until(friday + timedelta(hours=3, seconds=2))
    desk.wait_sla(number, "at_risk")
    desk.sleep_until(monday + timedelta(hours=9) - timedelta(minutes=1))
    assert desk.request(number).sla_state == "at_risk"
    assert desk.sent_now(number, "sla_breached") == []
    assert "sla_breached" not in desk.actions(number)

    desk.sleep_until(monday + timedelta(hours=10, seconds=2))
    breached = desk.wait_sla(number, "breached")
    assert monday + timedelta(hours=10) <= desk.event(number, "sla_breached").at
    missed = f"{breached.public_id}: The first response target was missed."
    assert sorted(desk.notified(number, "sla_breached", people=2)) == [
        ("boss", missed),
        ("boss2", missed),
    ]


# SLA: the clock stands still while the request waits on the customer.


def test_sla_paused_while_awaiting_consent(desk: Desk, directory: Factory) -> None:
    filed = desk.now()
    number = desk.file(
        "enable_access", "ACCT-01", "GAMMA", "pacct", at=filed, calendar=ROUND_THE_CLOCK
    )
    waiting = desk.wait_status(number, RequestStatus.AWAITING_CONSENT)
    assert waiting.sla_state == "paused"
    assert waiting.resolution_due is None  # unknown until the customer answers

    # Six days of waiting: far past both targets, yet neither at risk nor breached.
    desk.sleep_until(filed + timedelta(days=6))
    assert desk.request(number).sla_state == "paused"
    assert not {"sla_at_risk", "sla_breached"} & set(desk.actions(number))
    assert desk.sent_now(number, "sla_breached") == []

    desk.decide(number, "gadmin", TaskType.CONSENT, "grant", "fine by us")
    granted = desk.request(number)
    assert granted.status == RequestStatus.AWAITING_AGENT
    assert granted.sla_state == "ok"
    paused = desk.event(number, "status", "awaiting_consent").at
    resumed = desk.event(number, "grant").at
    assert resumed - paused > timedelta(days=6) - timedelta(minutes=1)
    assert granted.first_response_due == filed + timedelta(hours=4) + (resumed - paused)
    assert granted.resolution_due == filed + timedelta(hours=16) + (resumed - paused)
    assert granted.customer_wait_seconds == (resumed - paused).total_seconds()

    # The SLA timers count from the new dues: at risk 3 of the 4 hours after filing, pause
    # excluded.
    at_risk = granted.first_response_due - timedelta(hours=1)
    desk.sleep_until(at_risk - timedelta(minutes=1))
    assert desk.request(number).sla_state == "ok"
    desk.sleep_until(at_risk + timedelta(seconds=2))
    desk.wait_sla(number, "at_risk")


def test_sla_paused_while_awaiting_the_requester(desk: Desk, directory: Factory) -> None:
    monday = desk.next_weekday(MONDAY, 10)
    desk.sleep_until(monday)
    number = desk.file("establish_link", "ACCT-01", "BETA", "pacct", at=monday)
    queued = desk.wait_status(number, RequestStatus.AWAITING_AGENT)
    # Monday 10-17 is 7 hours, Tuesday 8, so 16 business hours end Wednesday 10:00.
    wednesday = monday + timedelta(days=2)
    assert queued.resolution_due == wednesday

    desk.sleep_until(monday + timedelta(hours=1))
    desk.ask(number, "agent", "Which entity do you mean?")
    waiting = desk.request(number)
    assert waiting.status == RequestStatus.AWAITING_REQUESTER
    assert waiting.sla_state == "paused"
    assert waiting.resolution_due is None

    # Wednesday 11:00: unpaused, the request would have been breached since 10:00.
    desk.sleep_until(wednesday + timedelta(hours=1))
    assert desk.request(number).sla_state == "paused"
    assert not {"sla_at_risk", "sla_breached"} & set(desk.actions(number))
    desk.respond(number, "pacct", "ACME US, the parent entity.")
    back = desk.request(number)
    assert back.status == RequestStatus.IN_REVIEW
    assert back.sla_state == "ok"
    info = next(t for t in desk.tasks(number) if t.type == TaskType.INFO)
    assert info.completed_at is not None
    waited = info.completed_at - info.created_at  # two days, give or take the test's own pace
    assert abs(waited - timedelta(days=2)) < timedelta(seconds=5)
    # The pause (Monday 11:00 to Wednesday 11:00) holds 16 business hours, so the due moves
    # 16 business hours later: from Wednesday 10:00 to Friday 10:00.
    friday = monday + timedelta(days=4)
    assert back.resolution_due == friday + (waited - timedelta(days=2))

    # 12 of the 16 hours: 1 before the pause, then Wednesday 11-17 and Thursday 9-14.
    thursday_two = monday + timedelta(days=3, hours=4)
    desk.sleep_until(thursday_two - timedelta(minutes=1))
    assert desk.request(number).sla_state == "ok"
    desk.sleep_until(thursday_two + timedelta(seconds=5))
    desk.wait_sla(number, "at_risk")


def test_request_completed_within_target_has_met_its_sla(desk: Desk, directory: Factory) -> None:
    filed = desk.now()
    number = desk.file(
        "establish_link", "ACCT-01", "BETA", "pacct", at=filed, calendar=ROUND_THE_CLOCK
    )
    desk.wait_status(number, RequestStatus.AWAITING_AGENT)
    desk.sleep_until(filed + timedelta(hours=1))
    desk.claim(number, "agent")
    assert desk.request(number).sla_state == "ok"
    desk.sleep_until(filed + timedelta(hours=2))
    desk.decide(number, "agent", TaskType.REVIEW, "approve", "ok")
    done = desk.wait_status(number, RequestStatus.COMPLETED)
    assert done.sla_state == "met"
    assert done.outcome == "Done: the link is established."
    assert done.first_response_at is not None and done.resolved_at is not None
    assert done.resolved_at < filed + timedelta(hours=16)
    with desk.app.app_context():
        console = db.session.execute(select(Console).filter_by(code="ACCT-01")).scalar_one()
        instance = db.session.execute(select(Instance).filter_by(code="BETA")).scalar_one()
        assert relationship_between(console, instance).can_slide_in
    # The workflow has ended: no SLA timer is left to change its mind later.
    assert desk.wait_closed(number) == WorkflowExecutionStatus.COMPLETED
    assert desk.sent_now(number, "sla_breached") == []
    assert not {"sla_at_risk", "sla_breached"} & set(desk.actions(number))
