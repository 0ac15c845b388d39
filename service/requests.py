"""Requests and tasks: filing, reading within scope, and human actions through the workflow.

The pages and the JSON API both call these functions. Reads come from the database
projection; actions go to the request's workflow as Updates, whose validators refuse what is
not allowed, and the answer is read back from the projection the update has just written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from domain.kinds import DEFAULT_POLICY, KINDS
from domain.sla import SlaState, SlaTarget
from domain.vocabulary import ConsoleType, RequestKind, RequestStatus, Role, TaskState, TaskType
from service import idempotency
from service.directory import Page, paginate, relationship_between, resolve_console
from service.directory import resolve_instance as resolve_instance_ref
from service.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    NotReady,
    OutcomeUnknown,
    ServiceError,
    Unavailable,
)
from service.extensions import db, done_writing
from service.metrics.backlog import AGE_BUCKETS as BACKLOG_AGE_BUCKETS
from service.metrics.figures import MEASURES
from service.metrics.figures import RESOLUTION_BUCKETS as HISTOGRAM_BUCKETS
from service.models import (
    ApprovalPolicy,
    Console,
    Instance,
    Request,
    RequestFigures,
    SlaTargetSetting,
    StatusPeriod,
    Task,
    TimelineEvent,
    User,
    format_request_id,
    parse_request_id,
    user_instances,
    utcnow,
    workflow_id_for,
)
from service.temporal import bridge
from workflows.request import RequestWorkflow
from workflows.shared import (
    CONFLICT,
    FORBIDDEN,
    INVALID,
    NOT_FOUND,
    Actor,
    Cancel,
    RequestInput,
    Respond,
    TaskAction,
)

NOT_READY_RETRY_AFTER = 2  # seconds: a workflow catching up after a restart is known by then
CUSTOMER_SERVICE = (Role.AGENT, Role.MANAGER, Role.ADMIN)


def actor_of(user: User) -> Actor:
    """The user as the workflow knows them."""
    return Actor(user.id, user.username, Role(user.role).value)


# Scope -------------------------------------------------------------------------------------


def _request_scope(user: User) -> ColumnElement[bool]:
    role = Role(user.role)
    if role.sees_everything:
        return true()
    if role == Role.PARTNER:
        return Request.console_id == user.console_id if user.console_id else false()
    own = select(user_instances.c.instance_id).where(user_instances.c.user_id == user.id)
    return Request.instance_id.in_(own)


def get_request(user: User, public_id: str) -> Request:
    """The request with this public ID, if the user may see it; otherwise `NotFound`."""
    number = parse_request_id(public_id)
    found = None
    if number is not None:
        found = db.session.execute(
            select(Request).where(Request.id == number, _request_scope(user))
        ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"No request {public_id}.")
    return found


# Lists -------------------------------------------------------------------------------------

# Groups of statuses a list can be filtered by, beside single statuses.
STATUS_GROUPS: dict[str, tuple[RequestStatus, ...]] = {
    "open": tuple(status for status in RequestStatus if not status.is_terminal),
    "closed": tuple(status for status in RequestStatus if status.is_terminal),
    # Resolved by Customer Service: the requests SLA attainment counts.
    "handled": tuple(status for status in RequestStatus if status.counts_for_sla),
}
SLA_STATES = tuple(state.value for state in SlaState)
NO_AGENT = "none"  # the `agent` filter for requests no agent has taken up yet


def bucket_key(label: str) -> str:
    """A figures bucket as a filter value: `<1 d` is `under-1d`, `1-3 d` is `1-3d`."""
    return label.replace("<", "under-").replace(">", "over-").replace(" ", "")


# Filter values for the dashboard's backlog ages and resolution histogram: lower and upper
# bound in seconds.
AGE_BUCKETS = {bucket_key(label): (low, high) for label, low, high in BACKLOG_AGE_BUCKETS}
RESOLUTION_BUCKETS = {bucket_key(label): (low, high) for label, low, high in HISTOGRAM_BUCKETS}


def statuses_of(choices: Iterable[str]) -> list[RequestStatus]:
    """The statuses named one by one or by group (`open`, `closed`, `handled`)."""
    found: list[RequestStatus] = []
    for choice in choices:
        for status in STATUS_GROUPS.get(choice) or (RequestStatus(choice),):
            if status not in found:
                found.append(status)
    return found


@dataclass(frozen=True)
class RequestFilters:
    """Filters of the request list. Days are UTC, both ends of a range included."""

    status: list[RequestStatus] | None = None
    kind: RequestKind | None = None
    console: int | str | None = None
    instance: int | str | None = None
    search: str | None = None
    console_type: ConsoleType | None = None
    created_from: date | None = None
    created_to: date | None = None
    resolved_from: date | None = None
    resolved_to: date | None = None
    agent: int | str | None = None  # user ID of the agent who first took it up, or NO_AGENT
    assignee: int | None = None  # user ID of whoever holds its claimed task now
    sla: str | None = None  # one of SLA_STATES
    age: str | None = None  # an AGE_BUCKETS key: how long ago it was filed
    resolution: str | None = None  # a RESOLUTION_BUCKETS key: how long it took to resolve


def _days(column: Any, start: date | None, end: date | None, field: str) -> list[Any]:
    if start is not None and end is not None and end < start:
        raise Invalid(
            "The range ends before it starts.",
            fields={field: [f"Must be on or after {start.isoformat()}."]},
        )
    conditions = []
    if start is not None:
        conditions.append(column >= datetime.combine(start, time(0), UTC))
    if end is not None:
        conditions.append(column < datetime.combine(end + timedelta(days=1), time(0), UTC))
    return conditions


def _within(value: Any, bounds: tuple[float, float | None]) -> list[Any]:
    low, high = bounds
    return [value >= low] if high is None else [value >= low, value < high]


def _check_agent(user_id: int, field: str) -> None:
    """Agent filters name a Customer Service user (agents and managers take requests up)."""
    found = db.session.get(User, user_id)
    if found is None or Role(found.role) not in (Role.AGENT, Role.MANAGER):
        raise Invalid(f"No agent with ID {user_id}.", fields={field: ["Give an agent's user ID."]})


def _list_conditions(user: User, filters: RequestFilters) -> list[Any]:
    """The conditions of a filtered request list, within the user's scope."""
    conditions: list[Any] = [_request_scope(user)]
    if filters.status:
        conditions.append(Request.status.in_(filters.status))
    if filters.kind:
        conditions.append(Request.kind == filters.kind)
    if filters.console is not None:
        conditions.append(Request.console_id == resolve_console(user, filters.console).id)
    if filters.instance is not None:
        conditions.append(Request.instance_id == resolve_instance_ref(user, filters.instance).id)
    if filters.search:
        number = parse_request_id(filters.search)
        code = filters.search.strip().upper()
        by_code = Request.instance_id.in_(select(Instance.id).where(Instance.code.contains(code)))
        conditions.append(or_(Request.id == number, by_code) if number else by_code)
    if filters.console_type:
        conditions.append(Request.console.has(Console.type == filters.console_type))
    conditions += _days(Request.created_at, filters.created_from, filters.created_to, "created_to")
    conditions += _days(
        Request.resolved_at, filters.resolved_from, filters.resolved_to, "resolved_to"
    )
    if filters.sla:
        conditions.append(Request.sla_state == filters.sla)
    if filters.age:
        # Aged like the dashboard's backlog: at least the lower bound, less than the upper.
        low, high = AGE_BUCKETS[filters.age]
        now = utcnow()
        conditions.append(Request.created_at <= now - timedelta(seconds=low))
        if high is not None:
            conditions.append(Request.created_at > now - timedelta(seconds=high))
    figures: list[Any] = []
    if filters.agent == NO_AGENT:
        figures.append(RequestFigures.agent_id.is_(None))
    elif filters.agent is not None:
        _check_agent(int(filters.agent), "agent")
        figures.append(RequestFigures.agent_id == int(filters.agent))
    if filters.resolution:
        bounds = RESOLUTION_BUCKETS[filters.resolution]
        figures += _within(RequestFigures.resolution_seconds, bounds)
    if figures:
        conditions.append(Request.id.in_(select(RequestFigures.request_id).where(*figures)))
    if filters.assignee is not None:
        _check_agent(filters.assignee, "assignee")
        held = select(Task.request_id).where(
            Task.assignee_id == filters.assignee, Task.state == TaskState.CLAIMED
        )
        conditions.append(Request.id.in_(held))
    return conditions


# A request list counts this many rows at most: beyond, its total reads "10,000+" (a manager
# may see a million requests, and counting them all cost more than the page).
LIST_COUNT_UP_TO = 10_000


def list_requests(user: User, filters: RequestFilters, page: int, per_page: int) -> Page:
    """The requests the user may see, newest first."""
    query: Select[Any] = (
        select(Request)
        .where(*_list_conditions(user, filters))
        .order_by(Request.created_at.desc(), Request.id.desc())
    )
    return paginate(query, page, per_page, count_up_to=LIST_COUNT_UP_TO)


REQUEST_CSV_COLUMNS = (
    "id",
    "kind",
    "status",
    "console",
    "console_type",
    "instance",
    "requester",
    "created_at",
    "resolved_at",
    "sla_state",
    "agent",
    *(f"{measure}_{clock}_seconds" for measure in MEASURES for clock in ("calendar", "business")),
    "sla_met",
)
EXPORT_BATCH = 1000


def export_requests(user: User, filters: RequestFilters) -> Iterator[list[Any]]:
    """The CSV header, then the filtered requests with their figures, oldest first.

    The filters are checked now; the rows are fetched in batches as they are written, so a
    long range never sits in memory.
    """
    return _export_rows(_list_conditions(user, filters))


def _export_rows(conditions: list[Any]) -> Iterator[list[Any]]:
    agent = aliased(User)
    requester = aliased(User)
    durations = [column for pair in MEASURES.values() for column in pair]
    statement = (
        select(
            Request.id,
            Request.kind,
            Request.status,
            Console.code,
            Console.type,
            Instance.code,
            requester.username,
            Request.created_at,
            Request.resolved_at,
            Request.sla_state,
            agent.username,
            *durations,
            RequestFigures.sla_met,
        )
        .select_from(Request)
        .join(Console, Console.id == Request.console_id)
        .join(Instance, Instance.id == Request.instance_id)
        .join(requester, requester.id == Request.requester_id)
        .outerjoin(RequestFigures, RequestFigures.request_id == Request.id)
        .outerjoin(agent, agent.id == RequestFigures.agent_id)
        .where(*conditions)
        .order_by(Request.created_at, Request.id)
        .execution_options(yield_per=EXPORT_BATCH)
    )
    yield list(REQUEST_CSV_COLUMNS)
    for row in db.session.execute(statement):
        (number, kind, status, console, console_type, instance, by, created, resolved) = row[:9]
        sla_state, agent_name, *seconds, sla_met = row[9:]
        yield [
            format_request_id(number),
            kind.value,
            status.value,
            console,
            console_type.value,
            instance,
            by,
            created.isoformat(),
            resolved.isoformat() if resolved else "",
            sla_state.value,
            agent_name or "",
            *("" if value is None else f"{value:.1f}" for value in seconds),
            "" if sla_met is None else str(sla_met).lower(),
        ]


@dataclass(frozen=True)
class RequestDetail:
    """A request with its open tasks and the timeline the user may see.

    Shows the request's own attributes beside them, so one schema dumps both and one
    template shows both.
    """

    request: Request
    tasks: list[Task]
    timeline: list[TimelineEvent]

    @property
    def public_id(self) -> str:
        """The ID people and the API use, e.g. `REQ-000123`."""
        return self.request.public_id

    @property
    def kind(self) -> RequestKind:
        """What the request asks for."""
        return self.request.kind

    @property
    def status(self) -> RequestStatus:
        """Where the request stands now."""
        return self.request.status

    @property
    def console(self) -> Console:
        """The console the request is for."""
        return self.request.console

    @property
    def instance(self) -> Instance:
        """The instance (company) the request is for."""
        return self.request.instance

    @property
    def requester(self) -> User:
        """Who filed the request."""
        return self.request.requester

    @property
    def reason(self) -> str:
        """Why the requester asked."""
        return self.request.reason

    @property
    def outcome(self) -> str | None:
        """Why the request ended as it did, once it has."""
        return self.request.outcome

    @property
    def created_at(self) -> datetime:
        """When the request was filed."""
        return self.request.created_at

    @property
    def updated_at(self) -> datetime:
        """When the request last changed."""
        return self.request.updated_at

    @property
    def resolved_at(self) -> datetime | None:
        """When the request ended, if it has."""
        return self.request.resolved_at

    @property
    def first_response_due(self) -> datetime | None:
        """When Customer Service should first act on it."""
        return self.request.first_response_due

    @property
    def resolution_due(self) -> datetime | None:
        """When the request should be resolved."""
        return self.request.resolution_due

    @property
    def sla_state(self) -> SlaState:
        """Where the request stands against its SLA targets."""
        return self.request.sla_state

    @property
    def workflow_id(self) -> str:
        """The ID of the request's workflow in Temporal."""
        return self.request.workflow_id


def detail(user: User, request: Request) -> RequestDetail:
    """Open tasks and timeline of a request; internal notes only for Customer Service."""
    tasks = list(
        db.session.execute(
            select(Task)
            .where(Task.request_id == request.id, Task.state != TaskState.DONE)
            .order_by(Task.key)
        ).scalars()
    )
    events = select(TimelineEvent).where(TimelineEvent.request_id == request.id)
    if Role(user.role) not in CUSTOMER_SERVICE:
        events = events.where(TimelineEvent.internal.is_(False))
    timeline = list(
        db.session.execute(events.order_by(TimelineEvent.at, TimelineEvent.id)).scalars()
    )
    return RequestDetail(request, tasks, timeline)


# Filing ------------------------------------------------------------------------------------


def _policy_steps(kind: RequestKind, console: Console) -> list[str]:
    row = db.session.get(ApprovalPolicy, (kind, console.type))
    if row is not None:
        return list(row.steps)
    return [step.value for step in DEFAULT_POLICY[(kind, console.type)]]


def _sla_target(kind: RequestKind) -> SlaTarget:
    row = db.session.get(SlaTargetSetting, kind)
    return row.target if row is not None else KINDS[kind].default_sla


# Who files requests, and of which kinds: partners any kind for their console, instance admins
# the dissociation of a firm from their company. Nobody else files.
FILEABLE_KINDS: dict[Role, tuple[RequestKind, ...]] = {
    Role.PARTNER: tuple(RequestKind),
    Role.INSTANCE_ADMIN: (RequestKind.DISSOCIATE_LINK,),
}
FILED_BY = "Requests are filed by partners and instance admins."


def fileable_kinds(user: User) -> tuple[RequestKind, ...]:
    """The request kinds the user may file: all for partners, dissociation for instance admins."""
    return FILEABLE_KINDS.get(Role(user.role), ())


class NothingToDo(Invalid):
    """A request whose effect already holds is refused (and explained) instead of filed."""


def _resolve_for_filing(user: User, kind: RequestKind, console_ref: Any, instance_ref: Any) -> Any:
    kinds = fileable_kinds(user)
    if kinds and kind not in kinds:
        raise Invalid(
            "Instance admins can only ask to dissociate a firm from their company.",
            fields={"kind": ["Only dissociate_link for instance admins."]},
        )
    if not kinds:
        raise Forbidden(FILED_BY)
    errors: dict[str, list[str]] = {}
    console = instance = None
    try:
        console = resolve_console(user, console_ref)
    except NotFound as exc:
        errors.update(exc.fields)
    try:
        instance = resolve_instance_ref(user, instance_ref)
    except NotFound as exc:
        errors.update(exc.fields)
    if errors or console is None or instance is None:
        raise Invalid("Unknown console or instance.", fields=errors)
    return console, instance


def file_request(
    user: User, kind: RequestKind, console_ref: Any, instance_ref: Any, reason: str
) -> Request:
    """File a request and start its workflow; nothing is left behind when that fails.

    A filing retried with its `Idempotency-Key` after its web process died between storing
    the request and storing the answer gets the request it made (`idempotency.made_earlier`).
    """
    earlier = idempotency.made_earlier()
    made = db.session.get(Request, earlier) if earlier is not None else None
    if made is not None:
        return made
    console, instance = _resolve_for_filing(user, kind, console_ref, instance_ref)
    current = relationship_between(console, instance)
    rule = KINDS[kind]
    if rule.holds(current.access_enabled, current.linked):
        raise NothingToDo(
            f"No request needed: for {console.code} and {instance.code}, {rule.already}.",
            fields={"kind": [f"Nothing to do: {rule.already}."]},
        )
    now = utcnow()
    request = Request(
        kind=kind,
        console_id=console.id,
        instance_id=instance.id,
        requester_id=user.id,
        reason=reason.strip(),
        status=RequestStatus.SUBMITTED,
        open_key=f"{kind.value}:{console.id}:{instance.id}",
        steps=_policy_steps(kind, console),
        created_at=now,
        updated_at=now,
    )
    db.session.add(request)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise _duplicate(kind, console, instance) from None
    db.session.add(
        StatusPeriod(request_id=request.id, status=RequestStatus.SUBMITTED, started_at=now)
    )
    idempotency.record_made(request.id)
    data = workflow_input(request)  # read before the commit: no transaction while Temporal works
    db.session.commit()
    try:
        _start(data)
    except OutcomeUnknown:
        # The start may have landed. The filing is stored either way, and the worker's
        # reconciler starts its workflow if it did not (the ID makes a second start a no-op).
        current_app.logger.warning("%s: the start of its workflow went unanswered", data.request_id)
    except Unavailable:
        db.session.delete(request)  # the filing did not happen; leave nothing half-made
        db.session.commit()
        raise
    done_writing()  # the answer is read without queueing for SQLite's write lock
    return request


def _duplicate(kind: RequestKind, console: Console, instance: Instance) -> Conflict:
    open_one = db.session.execute(
        select(Request).where(Request.open_key == f"{kind.value}:{console.id}:{instance.id}")
    ).scalar_one_or_none()
    ref = open_one.public_id if open_one else "another request"
    return Conflict(
        f"{ref} already asks to {kind.label.lower()} for {console.code} and {instance.code}; "
        "follow that one instead.",
        fields={"open_request_id": [ref]},
    )


def workflow_input(request: Request) -> RequestInput:
    """The workflow's input for a stored request."""
    sla = _sla_target(request.kind)
    requester = request.requester
    return RequestInput(
        request_id=request.public_id,
        number=request.id,
        kind=request.kind.value,
        console_id=request.console_id,
        console_code=request.console.code,
        console_type=request.console.type.value,
        instance_id=request.instance_id,
        instance_code=request.instance.code,
        requester=actor_of(requester),
        steps=list(request.steps),
        first_response_hours=sla.first_response_hours,
        resolution_hours=sla.resolution_hours,
        calendar=dict(current_app.config["SLA_CALENDAR"]),
        created_at=request.created_at,
    )


async def start_request_workflow(client: Client, task_queue: str, data: RequestInput) -> None:
    """Start a request's workflow; starting one that already runs is a no-op."""
    with contextlib.suppress(WorkflowAlreadyStartedError):  # it ran already and has ended
        await client.start_workflow(
            RequestWorkflow.run,
            data,
            id=workflow_id_for(data.request_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )


def start_workflow(request: Request) -> None:
    """Start the workflow of a stored request from the web process."""
    _start(workflow_input(request))


def _start(data: RequestInput) -> None:
    task_queue = bridge().settings.task_queue
    bridge().act(lambda client: start_request_workflow(client, task_queue, data))


# Actions -----------------------------------------------------------------------------------

_ERRORS: dict[str, type[ServiceError]] = {
    NOT_FOUND: NotFound,
    FORBIDDEN: Forbidden,
    CONFLICT: Conflict,
    INVALID: Invalid,
}


def _update(
    request: Request,
    update: UpdateMethodMultiParam[[Any, Any], None],
    arg: Any,
    task: Task | None = None,
) -> None:
    """Send an update to the request's workflow, turning refusals into service errors.

    The update's ID comes from the call's Idempotency-Key (`service.idempotency`), so a retry
    after an unknown outcome attaches to the same update, which Temporal runs once. Such a
    retry goes to Temporal even when the request has ended since (the update may be what
    ended it): Temporal answers with that update's outcome, or says the workflow has ended.
    """
    update_id = idempotency.action_id()
    if request.status.is_terminal and update_id is None:
        raise Conflict(f"{request.public_id} is {request.status.label}; nothing more to do.")

    async def run(client: Client) -> None:
        handle = client.get_workflow_handle(workflow_id)
        await handle.execute_update(update, arg, id=update_id)

    workflow_id = request.workflow_id
    db.session.commit()  # hold no transaction (no SQLite lock) while the workflow works
    done_writing()  # the workflow writes; this request only reads its answer back
    try:
        bridge().act(run)
    except WorkflowUpdateFailedError as failure:
        cause = failure.cause
        if isinstance(cause, ApplicationError) and cause.type == NOT_FOUND and task is not None:
            # The database shows the task but the workflow does not know it yet: it is
            # replaying the step that made it (a worker restarted). Known in a moment.
            raise _not_ready(request) from None
        if isinstance(cause, ApplicationError) and cause.type in _ERRORS:
            raise _ERRORS[cause.type](cause.message) from None
        raise Conflict(f"The action could not be done: {cause}") from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            db.session.refresh(request)
            if not request.status.is_terminal:  # filed, its workflow not started yet
                raise _not_ready(request) from None
            raise Conflict(
                f"{request.public_id} is {request.status.label}; nothing more to do."
            ) from None
        raise
    finally:
        db.session.expire_all()  # read what the workflow has just written


def _not_ready(request: Request) -> NotReady:
    return NotReady(
        f"{request.public_id} is not ready for this yet: its workflow is starting or catching "
        f"up after a restart. Nothing was changed; try again in {NOT_READY_RETRY_AFTER} seconds.",
        headers={"Retry-After": str(NOT_READY_RETRY_AFTER)},
    )


def _task_of(user: User, task_id: int) -> Task:
    task = db.session.get(Task, task_id)
    if task is None:
        raise NotFound(f"No task {task_id}.")
    get_request(user, task.request.public_id)  # 404 outside the user's scope
    if Role(user.role) == Role.PARTNER and task.type != TaskType.INFO:
        raise NotFound(f"No task {task_id}.")
    if Role(user.role) == Role.INSTANCE_ADMIN and task.type not in (
        TaskType.CONSENT,
        TaskType.INFO,
    ):
        raise NotFound(f"No task {task_id}.")
    return task


def get_task(user: User, task_id: int) -> Task:
    """The task with this ID, if the user may see it; otherwise `NotFound`."""
    return _task_of(user, task_id)


def assignees() -> list[User]:
    """The people a task can be given to: active agents and managers, by username."""
    return list(
        db.session.execute(
            select(User)
            .where(User.role.in_((Role.AGENT, Role.MANAGER)), User.active.is_(True))
            .order_by(User.username)
        ).scalars()
    )


def claim_task(user: User, task_id: int) -> Request:
    """Claim a task for yourself."""
    task = _task_of(user, task_id)
    action = TaskAction(task.id, actor_of(user))
    _update(task.request, RequestWorkflow.claim, action, task)
    return task.request


def release_task(user: User, task_id: int) -> Request:
    """Put a claimed task back in the queue."""
    task = _task_of(user, task_id)
    action = TaskAction(task.id, actor_of(user))
    _update(task.request, RequestWorkflow.release, action, task)
    return task.request


def reassign_task(user: User, task_id: int, assignee_username: str) -> Request:
    """Give a task to another agent or manager (managers only)."""
    task = _task_of(user, task_id)
    assignee = db.session.execute(
        select(User).where(User.username == assignee_username, User.active.is_(True))
    ).scalar_one_or_none()
    if assignee is None:
        raise Invalid(f"No user {assignee_username!r}.", fields={"assignee": ["Unknown user."]})
    action = TaskAction(task.id, actor_of(user), assignee=actor_of(assignee))
    _update(task.request, RequestWorkflow.reassign, action, task)
    return task.request


def complete_task(user: User, task_id: int, decision: str, comment: str | None) -> Request:
    """Decide a task; the answer is the request as it now stands."""
    task = _task_of(user, task_id)
    action = TaskAction(task.id, actor_of(user), decision=decision, comment=comment)
    _update(task.request, RequestWorkflow.complete, action, task)
    return task.request


def respond(user: User, request: Request, answer: str) -> Request:
    """Answer Customer Service's question on a request."""
    if Role(user.role) not in (Role.PARTNER, Role.INSTANCE_ADMIN):
        raise Forbidden("Only the requesting side answers info requests.")
    data = Respond(actor_of(user), answer)
    _update(request, RequestWorkflow.respond, data)
    return request


def cancel(user: User, request: Request, reason: str) -> Request:
    """Cancel a request before it is applied."""
    data = Cancel(actor_of(user), reason)
    _update(request, RequestWorkflow.cancel, data)
    return request


def add_comment(user: User, request: Request, body: str, internal: bool) -> TimelineEvent:
    """Comment on a request; internal notes are for Customer Service only."""
    if internal and Role(user.role) not in CUSTOMER_SERVICE:
        raise Forbidden("Internal notes are for Customer Service only.")
    text = body.strip()
    if not text:
        raise Invalid("The comment is empty.", fields={"body": ["Write something."]})
    event = TimelineEvent(
        request_id=request.id,
        at=utcnow(),
        actor=user.username,
        action="note" if internal else "comment",
        comment=text,
        internal=internal,
        status=request.status.value,
    )
    db.session.add(event)
    db.session.commit()
    return event


# Queue -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskFilters:
    """Filters of the task queue."""

    state: list[TaskState] | None = None
    type: TaskType | None = None
    assignee: str | None = None  # "me" or "unassigned"
    kind: RequestKind | None = None
    sla: str | None = None
    console_type: ConsoleType | None = None


def _task_scope(user: User) -> tuple[ColumnElement[bool], list[ColumnElement[bool]]]:
    """The tasks a user's queue holds: a condition on tasks, and any on their requests."""
    role = Role(user.role)
    reviews = Task.type.in_((TaskType.REVIEW, TaskType.SECOND_APPROVAL))
    if role == Role.AGENT:  # not the second approval of a request the agent approved first
        mine = or_(Task.excluded_user_id.is_(None), Task.excluded_user_id != user.id)
        return and_(reviews, mine), []
    if role == Role.MANAGER:  # every review, to oversee and reassign
        return reviews, []
    if role == Role.ADMIN:
        return true(), []
    if role == Role.INSTANCE_ADMIN:
        return Task.type == TaskType.CONSENT, [_request_scope(user)]
    return Task.type == TaskType.INFO, [_request_scope(user)]


def list_tasks(user: User, filters: TaskFilters, page: int, per_page: int) -> Page:
    """The user's queue, most urgent SLA first.

    The page is chosen from the tasks and their requests' due times alone, then only its rows
    are loaded with everything shown (request, console, instance, people): joining all that
    for every open task before sorting cost more than the rest of the call with 10,000 open.
    """
    states = filters.state or [TaskState.OPEN, TaskState.CLAIMED]
    scope, of_request = _task_scope(user)
    conditions: list[Any] = [scope, Task.state.in_(states)]
    if filters.type:
        conditions.append(Task.type == filters.type)
    if filters.assignee == "me":
        conditions.append(Task.assignee_id == user.id)
    elif filters.assignee == "unassigned":
        conditions.append(Task.assignee_id.is_(None))
    if filters.kind:
        of_request.append(Request.kind == filters.kind)
    if filters.sla:
        of_request.append(Request.sla_state == filters.sla)
    if filters.console_type:
        of_request.append(Request.console.has(Console.type == filters.console_type))
    counted = select(func.count()).select_from(Task).where(*conditions)
    if of_request:  # the tasks' own index answers the count when nothing filters requests
        counted = counted.join(Request, Request.id == Task.request_id).where(*of_request)
    total = db.session.execute(counted).scalar_one()
    chosen = (
        select(Task.id).join(Request, Request.id == Task.request_id).where(*conditions, *of_request)
    )
    ids = list(
        db.session.execute(
            chosen.order_by(
                Request.resolution_due.is_(None),
                Request.resolution_due,
                Task.created_at,
                Task.id,
            )
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).scalars()
    )
    loaded = {
        task.id: task
        for task in db.session.execute(select(Task).where(Task.id.in_(ids))).unique().scalars()
    }
    return Page([loaded[i] for i in ids], page, per_page, int(total))
