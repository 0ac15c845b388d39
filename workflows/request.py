"""The request workflow: one durable process per request, from filing to its final status.

The workflow is the source of truth; after every change it writes its whole visible state to
the database (a local activity, retried until it lands), which serves every list and page.
Human actions are Updates whose validators refuse invalid actions before anything changes,
and whose handlers return only once the new state is in the database (read-your-writes).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.calendar import BusinessCalendar, Pause, due_at, sla_reading, sla_state
    from domain.kinds import KINDS
    from domain.lifecycle import (
        CUSTOMER_WAITS,
        STEPS,
        CustomerWait,
        cancelled_outcome,
        failed_outcome,
        rejected_outcome,
        task_name,
    )
    from domain.sla import (
        AT_RISK_RATIO,
        THRESHOLD_TIMER_DELAY,
        SlaState,
        SlaTarget,
        request_sla_state,
    )
    from domain.vocabulary import (
        DECISIONS_BY_TASK,
        Decision,
        RequestKind,
        RequestStatus,
        Role,
        Step,
        TaskState,
        TaskType,
    )
    from workflows.activity_interfaces import (
        DirectoryInterface,
        NotificationInterface,
        ProjectionInterface,
    )
    from workflows.shared import (
        CONFLICT,
        FORBIDDEN,
        INVALID,
        NOT_FOUND,
        Actor,
        ApplyChange,
        Cancel,
        EffectCheck,
        Notify,
        Projection,
        RequestInput,
        Respond,
        TaskAction,
        TaskSnapshot,
        TimelineEntry,
    )

SYSTEM = "LinkDesk"
# The projection must land, however long the database is away.
PROJECTION_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=0,
    non_retryable_error_types=["RequestDeleted"],
)
APPLY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=30,
    non_retryable_error_types=["DirectoryObjectRemoved"],
)
# Longer than SQLite's busy_timeout (10 s), the longest silent step of a healthy attempt.
APPLY_HEARTBEAT = timedelta(seconds=12)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=20,
)


def _refuse(kind: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn(name="LinkDeskRequest")
class RequestWorkflow:
    """One request: policy steps, human tasks, timers, SLA, and the change applied once."""

    @workflow.init
    def __init__(self, request: RequestInput) -> None:
        self.input = request
        self.status = RequestStatus.SUBMITTED
        self.tasks: list[TaskSnapshot] = []
        self.pending_events: list[TimelineEntry] = []
        self.outbox: list[Notify] = []
        self.seq = 0
        self.version = 0
        self.step_index = -1
        self.dirty = True
        self.first_approver_id: int | None = None
        self.reviewer: Actor | None = None  # the agent who asked for info gets the answer
        self.approver: Actor | None = None  # the last approval, named on the applied change
        self.first_response_at: datetime | None = None
        self.first_responder_id: int | None = None
        self.resolved_at: datetime | None = None
        self.outcome: str | None = None
        self.pauses: list[Pause] = []
        self.sla = SlaState.OK
        self.breaches_notified: set[str] = set()
        self.reminded: set[int] = set()
        self.calendar = BusinessCalendar.from_config(request.calendar)
        self.project_lock = asyncio.Lock()

    # The main loop: timers, notifications and applying; people act through the updates.

    @workflow.run
    async def run(self, request: RequestInput) -> str:
        """Drive the request to a final status and return it."""
        self._event(request.requester.username, "filed")
        if await self._effect_needed():
            self._enter_step(0)
        else:
            self._finish(RequestStatus.NO_ACTION_NEEDED, self._no_action_message())
        await self._project()
        while not self.status.is_terminal:
            if self.status == RequestStatus.APPLYING:
                await self._apply()
                continue
            # On a change, or when a deadline comes: the checks below act on whatever is due.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    self._changed(self.version), timeout=self._next_timer()
                )
            self._on_timers()
            await self._send_notifications()
            await self._project()
        await self._send_notifications()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status.value

    def _changed(self, seen: int) -> Callable[[], bool]:
        return lambda: self.version != seen or bool(self.outbox)

    @workflow.query
    def state(self) -> Projection:
        """The current state, as it is projected."""
        return self._snapshot()

    # Updates: validators refuse, handlers change state and return once it is projected.

    @workflow.update
    async def claim(self, action: TaskAction) -> None:
        """Take a review or second-approval task."""
        task = self._find_task(action.task_id)
        if task.assignee_id != action.actor.user_id:
            self._assign(task, action.actor)
            self._event(action.actor.username, "claimed", task_name(task.type))
        await self._project()

    @claim.validator
    def _validate_claim(self, action: TaskAction) -> None:
        task = self._workable_task(action)
        if task.type == TaskType.CONSENT:
            raise _refuse(INVALID, "Consent tasks are granted or declined, not claimed.")
        if task.state == TaskState.CLAIMED and task.assignee_id != action.actor.user_id:
            raise self._claimed_by_other(task)

    @workflow.update
    async def release(self, action: TaskAction) -> None:
        """Give a claimed task back to the queue."""
        task = self._find_task(action.task_id)
        task.state, task.assignee_id, task.assignee, task.claimed_at = (
            TaskState.OPEN,
            None,
            None,
            None,
        )
        if task.type == TaskType.REVIEW:
            self._set_status(RequestStatus.AWAITING_AGENT)
        self._event(action.actor.username, "released", task_name(task.type))
        await self._project()

    @release.validator
    def _validate_release(self, action: TaskAction) -> None:
        task = self._workable_task(action)
        if task.state != TaskState.CLAIMED:
            raise _refuse(CONFLICT, "The task is not claimed.")
        if task.assignee_id != action.actor.user_id and action.actor.role != Role.MANAGER:
            raise self._claimed_by_other(task)

    @workflow.update
    async def reassign(self, action: TaskAction) -> None:
        """A manager gives a task to a named agent or manager."""
        assert action.assignee is not None
        task = self._find_task(action.task_id)
        self._assign(task, action.assignee)
        self._event(action.actor.username, "reassigned", f"to {action.assignee.username}")
        await self._project()

    @reassign.validator
    def _validate_reassign(self, action: TaskAction) -> None:
        if action.actor.role != Role.MANAGER:
            raise _refuse(FORBIDDEN, "Only a manager can reassign tasks.")
        task = self._find_task(action.task_id)
        if task.type not in (TaskType.REVIEW, TaskType.SECOND_APPROVAL):
            raise _refuse(INVALID, "Only review and second-approval tasks are assigned.")
        if task.state == TaskState.DONE:
            raise _refuse(CONFLICT, "The task is already done.")
        assignee = action.assignee
        if assignee is None or assignee.role not in (Role.AGENT, Role.MANAGER):
            raise _refuse(INVALID, "Reassign to an agent or a manager.")
        self._check_four_eyes(task, assignee)

    @workflow.update
    async def complete(self, action: TaskAction) -> None:
        """Decide a task: approve, reject or request info (review), grant or decline (consent)."""
        task = self._find_task(action.task_id)
        decision = Decision(action.decision or "")
        comment = (action.comment or "").strip() or None
        self._close(task, action.actor, decision.value, comment)
        self._event(action.actor.username, decision.value, comment)
        if task.type in (TaskType.REVIEW, TaskType.SECOND_APPROVAL):
            self._note_first_response(action.actor)
        if decision in (Decision.REJECT, Decision.DECLINE):
            self._finish(RequestStatus.REJECTED, rejected_outcome(task.type, comment))
        elif decision == Decision.REQUEST_INFO:
            self.reviewer = action.actor
            self._open_task(
                TaskType.INFO,
                due=CUSTOMER_WAITS[TaskType.INFO].expiry,
                assignee=self.input.requester,
            )
            self._set_status(RequestStatus.AWAITING_REQUESTER)
            self._notify("requester", "info_requested", f"Customer Service asks: {comment}")
        else:
            if task.type == TaskType.REVIEW:
                self.first_approver_id = action.actor.user_id
            if decision == Decision.APPROVE:
                self.approver = action.actor
            self._enter_step(self.step_index + 1)
        await self._project()

    @complete.validator
    def _validate_complete(self, action: TaskAction) -> None:
        task = self._workable_task(action)
        allowed = DECISIONS_BY_TASK.get(TaskType(task.type), ())
        if action.decision not in allowed:
            choices = ", ".join(d.value for d in allowed)
            raise _refuse(INVALID, f"A {task_name(task.type)} takes: {choices}.")
        needs_text = {Decision.REJECT: "a reason", Decision.REQUEST_INFO: "a question"}
        required = needs_text.get(Decision(action.decision))
        if required and not (action.comment or "").strip():
            raise _refuse(INVALID, f"Give {required} in the comment.")
        if task.type == TaskType.CONSENT:
            return
        if task.state == TaskState.OPEN:
            raise _refuse(CONFLICT, "Claim the task before deciding it.")
        if task.assignee_id != action.actor.user_id:
            raise self._claimed_by_other(task)

    @workflow.update
    async def respond(self, answer: Respond) -> None:
        """The requester answers an info request; the request returns to the same agent."""
        info = next(t for t in self.tasks if t.type == TaskType.INFO and t.state != TaskState.DONE)
        text = answer.answer.strip()
        self._close(info, answer.actor, "answered", text)
        self._event(answer.actor.username, "answered", text)
        reviewer = self.reviewer
        task = self._open_task(TaskType.REVIEW)
        if reviewer is not None:
            self._assign(task, reviewer)
        self._set_status(RequestStatus.IN_REVIEW if reviewer else RequestStatus.AWAITING_AGENT)
        if reviewer is not None:
            self._notify("user", "info_answered", "The requester answered.", reviewer.user_id)
        await self._project()

    @respond.validator
    def _validate_respond(self, answer: Respond) -> None:
        if self.status != RequestStatus.AWAITING_REQUESTER:
            raise _refuse(CONFLICT, f"No question is waiting for an answer ({self.status}).")
        if answer.actor.role not in (Role.PARTNER, Role.INSTANCE_ADMIN):
            raise _refuse(FORBIDDEN, "Only the requesting side answers info requests.")
        if not answer.answer.strip():
            raise _refuse(INVALID, "The answer is empty.")

    @workflow.update
    async def cancel(self, cancel: Cancel) -> None:
        """Withdraw the request before it is applied."""
        reason = cancel.reason.strip()
        self._event(cancel.actor.username, "cancelled", reason)
        self._finish(RequestStatus.CANCELLED, cancelled_outcome(cancel.actor.username, reason))
        await self._project()

    @cancel.validator
    def _validate_cancel(self, cancel: Cancel) -> None:
        if not self.status.cancellable:
            raise _refuse(CONFLICT, f"The request can no longer be cancelled ({self.status}).")
        actor = cancel.actor
        if actor.user_id != self.input.requester.user_id and actor.role not in (
            Role.PARTNER,
            Role.MANAGER,
        ):
            raise _refuse(FORBIDDEN, "Only the requester's side or a manager can cancel.")
        if not cancel.reason.strip():
            raise _refuse(INVALID, "Give a reason for cancelling.")

    # Validation helpers.

    def _find_task(self, task_id: int) -> TaskSnapshot:
        task = next((t for t in self.tasks if t.id == task_id), None)
        if task is None:
            raise _refuse(NOT_FOUND, f"No task {task_id} on this request.")
        return task

    def _workable_task(self, action: TaskAction) -> TaskSnapshot:
        """The task, if the actor may work it now (role, state, four eyes, own request)."""
        task = self._find_task(action.task_id)
        actor = action.actor
        if self.status.is_terminal:
            raise _refuse(CONFLICT, f"The request is already {self.status.label}.")
        if task.state == TaskState.DONE:
            raise _refuse(CONFLICT, "The task is already done.")
        if task.type == TaskType.INFO:
            raise _refuse(INVALID, "Answer an info request with a response, not a task action.")
        if task.type == TaskType.CONSENT:
            if actor.role != Role.INSTANCE_ADMIN:
                raise _refuse(FORBIDDEN, "Consent is given by the instance's admins.")
            return task
        if actor.role not in (Role.AGENT, Role.MANAGER):
            raise _refuse(FORBIDDEN, "Only Customer Service works review tasks.")
        if actor.user_id == self.input.requester.user_id:
            raise _refuse(FORBIDDEN, "You cannot approve your own request.")
        self._check_four_eyes(task, actor)
        return task

    def _check_four_eyes(self, task: TaskSnapshot, actor: Actor) -> None:
        if task.type == TaskType.SECOND_APPROVAL and actor.user_id == task.excluded_user_id:
            raise _refuse(
                FORBIDDEN,
                "You gave the first approval; the second must come from another agent "
                "or a manager.",
            )

    def _claimed_by_other(self, task: TaskSnapshot) -> ApplicationError:
        since = f" since {task.claimed_at:%Y-%m-%d %H:%M} UTC" if task.claimed_at else ""
        return _refuse(CONFLICT, f"The task is claimed by {task.assignee}{since}.")

    # State changes.

    def _event(self, actor: str, action: str, comment: str | None = None) -> None:
        self.seq += 1
        self.pending_events.append(
            TimelineEntry(self.seq, workflow.now(), actor, action, self.status.value, comment)
        )
        self.version += 1
        self.dirty = True

    def _set_status(self, status: RequestStatus) -> None:
        if status == self.status:
            return
        now = workflow.now()
        if self.status.waits_on_customer and not status.waits_on_customer and self.pauses:
            self.pauses[-1] = replace(self.pauses[-1], end=now)
        if status.waits_on_customer and not self.status.waits_on_customer:
            self.pauses.append(Pause(start=now, end=None))
        self.status = status
        self._event(SYSTEM, "status", status.value)
        self._notify("requester", f"status:{status.value}", f"Status is now {status.label}.")
        self._update_sla()

    def _open_task(
        self,
        type_: TaskType,
        *,
        due: timedelta | None = None,
        assignee: Actor | None = None,
        excluded_user_id: int | None = None,
    ) -> TaskSnapshot:
        now = workflow.now()
        task = TaskSnapshot(
            key=len(self.tasks) + 1,
            type=type_,
            state=TaskState.OPEN,
            created_at=now,
            due_at=now + due if due else None,
            excluded_user_id=excluded_user_id,
        )
        if assignee is not None:
            task.assignee_id, task.assignee = assignee.user_id, assignee.username
        self.tasks.append(task)
        return task

    def _assign(self, task: TaskSnapshot, actor: Actor) -> None:
        task.state = TaskState.CLAIMED
        task.assignee_id, task.assignee = actor.user_id, actor.username
        task.claimed_at = workflow.now()
        if task.type == TaskType.REVIEW:
            self._set_status(RequestStatus.IN_REVIEW)
        self._note_first_response(actor)

    def _close(self, task: TaskSnapshot, actor: Actor, decision: str, comment: str | None) -> None:
        task.state = TaskState.DONE
        task.completed_at = workflow.now()
        task.completed_by_id = actor.user_id
        task.decision, task.comment = decision, comment

    def _note_first_response(self, actor: Actor) -> None:
        if self.first_response_at is None:
            self.first_response_at = workflow.now()
            self.first_responder_id = actor.user_id
            self._update_sla()

    def _enter_step(self, index: int) -> None:
        self.step_index = index
        if index >= len(self.input.steps):
            self._set_status(RequestStatus.APPLYING)
            return
        step = Step(self.input.steps[index])
        rule = STEPS[step]
        if step == Step.CONSENT:
            self._open_task(rule.task, due=CUSTOMER_WAITS[rule.task].expiry)
            self._set_status(rule.status)
            self._notify("instance_admins", "consent_requested", "Your consent is requested.")
        elif step == Step.REVIEW:
            self._open_task(rule.task)
            self._set_status(rule.status)
            self._notify("agents", "queued", "A new request is waiting for review.")
        else:
            self._open_task(rule.task, excluded_user_id=self.first_approver_id)
            self._set_status(rule.status)
            self._notify(
                "agents",
                "second_approval",
                "A request needs a second approval.",
                exclude=self.first_approver_id,
            )
            self._notify("managers", "second_approval", "A request needs a second approval.")

    def _finish(self, status: RequestStatus, outcome: str) -> None:
        now = workflow.now()
        for task in self.tasks:
            if task.state != TaskState.DONE:
                task.state, task.completed_at = TaskState.DONE, now
                task.decision = task.decision or status.value
        self.outcome = outcome
        self.resolved_at = now
        self._set_status(status)

    def _no_action_message(self) -> str:
        rule = KINDS[RequestKind(self.input.kind)]
        return rule.no_action_text(self.input.console_code, self.input.instance_code)

    def _notify(
        self,
        audience: str,
        event: str,
        message: str,
        user_id: int | None = None,
        exclude: int | None = None,
    ) -> None:
        self.outbox.append(
            Notify(
                number=self.input.number,
                event=event,
                message=f"{self.input.request_id}: {message}",
                audience=audience,
                dedupe_key=f"{self.input.request_id}:{self.seq}:{event}",
                user_id=user_id,
                exclude_user_id=exclude,
            )
        )

    # Timers: expiries, reminders and SLA thresholds, all durable workflow timers.

    def _waits(self) -> list[tuple[TaskSnapshot, CustomerWait]]:
        """Open customer-side tasks with the rule of their wait."""
        return [
            (t, CUSTOMER_WAITS[TaskType(t.type)])
            for t in self.tasks
            if t.state != TaskState.DONE and t.type in CUSTOMER_WAITS
        ]

    def _next_timer(self) -> timedelta | None:
        now = workflow.now()
        instants: list[datetime] = []
        for task, wait in self._waits():
            expiry = task.created_at + wait.expiry
            if task.key not in self.reminded:
                instants.append(task.created_at + wait.reminder)
            instants.append(expiry)
        instants.extend(self._sla_thresholds())
        upcoming = [i for i in instants if i > now]
        return min(upcoming) - now if upcoming else None

    def _on_timers(self) -> None:
        now = workflow.now()
        if self.status.is_terminal:
            return
        for task, wait in self._waits():
            expiry = task.created_at + wait.expiry
            if now >= expiry:
                self._event(SYSTEM, "expired", wait.expired_note)
                self._finish(RequestStatus.EXPIRED, wait.expired_outcome)
                return
            if task.key not in self.reminded and now >= task.created_at + wait.reminder:
                self.reminded.add(task.key)
                audience = "instance_admins" if task.type == TaskType.CONSENT else "requester"
                self._event(SYSTEM, "reminder", wait.reminder_note(expiry))
                self._notify(
                    audience, "reminder", f"Reminder: {wait.noun} needed by {expiry:%Y-%m-%d}."
                )
        self._update_sla()

    # SLA: business-hours clock, paused while waiting on the customer.

    def _targets(self) -> list[tuple[str, float]]:
        targets = [("resolution", self.input.resolution_hours)]
        if self.first_response_at is None:
            targets.append(("first response", self.input.first_response_hours))
        return targets

    def _due(self, hours: float) -> datetime | None:
        return due_at(self.calendar, self.input.created_at, hours, self.pauses, workflow.now())

    def _sla_thresholds(self) -> list[datetime]:
        if self.status.is_terminal:
            return []
        instants = []
        for _name, hours in self._targets():
            for fraction in (AT_RISK_RATIO, 1.0):
                instant = self._due(hours * fraction)
                if instant is not None:
                    instants.append(instant + THRESHOLD_TIMER_DELAY)
        return instants

    def _target_state(self, hours: float, met_at: datetime | None) -> SlaState:
        return sla_state(
            self.calendar,
            self.input.created_at,
            hours,
            self.pauses,
            workflow.now(),
            met_at=met_at,
            at_risk_ratio=AT_RISK_RATIO,
        )

    def _update_sla(self) -> None:
        resolution = self._target_state(self.input.resolution_hours, self.resolved_at)
        first = self._target_state(self.input.first_response_hours, self.first_response_at)
        state = request_sla_state(self.status, resolution, first)
        for name, target_state in (("resolution", resolution), ("first response", first)):
            if target_state == SlaState.BREACHED and name not in self.breaches_notified:
                self.breaches_notified.add(name)
                self._notify("managers", "sla_breached", f"The {name} target was missed.")
        if state != self.sla:
            self.sla = state
            if state in (SlaState.AT_RISK, SlaState.BREACHED):
                self._event(SYSTEM, f"sla_{state.value}")
            self.version += 1
            self.dirty = True

    # Activities.

    async def _effect_needed(self) -> bool:
        return await workflow.execute_local_activity_method(
            ProjectionInterface.check_effect_needed,
            EffectCheck(self.input.kind, self.input.console_id, self.input.instance_id),
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=PROJECTION_RETRY,
        )

    async def _apply(self) -> None:
        if not await self._effect_needed():
            self._finish(RequestStatus.NO_ACTION_NEEDED, self._no_action_message())
            await self._project()
            return
        change = ApplyChange(
            self.input.request_id,
            self.input.kind,
            self.input.console_id,
            self.input.instance_id,
            actor=self.approver.username if self.approver else SYSTEM,
        )
        try:
            await workflow.execute_activity_method(
                DirectoryInterface.apply_relationship_change,
                change,
                start_to_close_timeout=timedelta(seconds=30),
                # The activity heartbeats at each step, so an attempt whose worker died is
                # retried after this, not after the whole start-to-close timeout.
                heartbeat_timeout=APPLY_HEARTBEAT,
                retry_policy=APPLY_RETRY,
            )
        except ActivityError as failure:
            reason = getattr(failure.cause, "message", None) or str(failure.cause or failure)
            self._event(SYSTEM, "apply_failed", reason)
            self._finish(RequestStatus.FAILED, failed_outcome(reason))
        else:
            self._finish(RequestStatus.COMPLETED, KINDS[RequestKind(self.input.kind)].done_text)
        await self._project()

    async def _send_notifications(self) -> None:
        while self.outbox:
            batch, self.outbox = self.outbox, []
            await asyncio.gather(
                *(
                    workflow.execute_activity_method(
                        NotificationInterface.notify,
                        notice,
                        start_to_close_timeout=timedelta(seconds=30),
                        retry_policy=NOTIFY_RETRY,
                    )
                    for notice in batch
                ),
                return_exceptions=True,  # a lost email must not hold the request up
            )

    def _snapshot(self) -> Projection:
        sla = sla_reading(
            self.calendar,
            self.input.created_at,
            SlaTarget(self.input.first_response_hours, self.input.resolution_hours),
            self.first_response_at,
            self.resolved_at,
            self.pauses,
            workflow.now(),
        )
        return Projection(
            number=self.input.number,
            seq=self.seq,
            status=self.status.value,
            updated_at=workflow.now(),
            tasks=[replace(t) for t in self.tasks],
            events=list(self.pending_events),
            resolved_at=self.resolved_at,
            outcome=self.outcome,
            first_response_at=self.first_response_at,
            first_response_due=sla.first_response_due,
            resolution_due=sla.resolution_due,
            sla_state=self.sla,
            customer_wait_seconds=sla.customer_wait,
            first_responder_id=self.first_responder_id,
            first_response_business_seconds=sla.figures.first_response,
            resolution_business_seconds=sla.figures.resolution,
            customer_wait_business_seconds=sla.figures.customer_wait,
        )

    async def _project(self) -> None:
        """Write the current state to the database; serialised, so writes never reorder."""
        async with self.project_lock:
            if not self.dirty:
                return
            self.dirty = False
            snapshot = self._snapshot()
            self.pending_events = []
            result = await workflow.execute_local_activity_method(
                ProjectionInterface.project_request,
                snapshot,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=PROJECTION_RETRY,
            )
            for task in self.tasks:
                if task.id is None:
                    task.id = result.task_ids.get(task.key)
