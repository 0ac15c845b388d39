"""Synthetic request history for demos and benchmarks (`linkdesk demo-history`).

Writes historical requests straight into the projection (`requests`, `request_figures`,
`tasks`, `timeline_events`), as their workflows would have left them, so none of them ever
needs a workflow: every request is terminal, its `open_key` NULL, and it was resolved before
the history ends. It reuses the directory that is there (consoles, instances, partners,
instance admins, agents), the approval policy and SLA targets of the database and the app's
business calendar.

Each request lives through its policy's steps on the SLA calendar: filed mostly in business
hours on weekdays, with volume growing over the span; consent and the requester's answers
are customer waits (the SLA clock paused); queue waits and reviews take business time that
grows when the team is busy, so some requests miss their targets. Figures are computed as
the workflow computes them. The timeline keeps what people did plus the final status; the
intermediate status changes and the status periods are left out to keep the tables lean.

Speed comes from four things: the calendar's windows are cached as epoch seconds, so business
time is a subtraction and adding business time a bisection (`BusinessClock`, some 30 times
faster than asking the calendar); timestamps are formatted as the database stores them; rows
go in with one executemany per table and batch on SQLite and with COPY on PostgreSQL, one
transaction per batch; and a batch is written on a second thread while the next is made.
"""

from __future__ import annotations

import json
import math
import time as timer
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import Connection, select, text

from domain.calendar import BusinessCalendar
from domain.durations import MEASURE_COLUMNS, bucket_column, duration_bucket
from domain.kinds import DEFAULT_POLICY, KINDS
from domain.vocabulary import (
    CONSENT_EXPIRY_DAYS,
    INFO_EXPIRY_DAYS,
    ConsoleType,
    RequestKind,
    RequestStatus,
    Role,
    Step,
    TaskState,
    TaskType,
)
from service import config
from service.extensions import db
from service.metrics import rollups
from service.models import (
    ApprovalPolicy,
    Console,
    Instance,
    Relationship,
    SlaTargetSetting,
    User,
    format_request_id,
    user_instances,
)
from workflows.request import SYSTEM

DEFAULT_DAYS = 1095
DEFAULT_BATCH = 5000
DAY = 86_400
HOUR = 3600.0
MINUTE = 60.0

# Volume: how much busier the last day is than the first, and how filings spread.
GROWTH = 3.0
OFF_HOURS_SHARE = 0.08  # of a working day's filings, outside its business hours
DAY_OFF_WEIGHT = 0.05  # a weekend day or holiday, against a working day
WEEKDAY_WEIGHT = (1.15, 1.05, 1.0, 0.97, 0.83, 1.0, 1.0)  # Monday first
MONTH_WEIGHT = (1.15, 1.05, 1.05, 1.0, 1.0, 0.95, 0.85, 0.75, 1.15, 1.1, 1.05, 0.85)
# Queue pressure by month: January and September are busy, summer and December short-staffed.
MONTH_PRESSURE = (1.35, 1.1, 1.0, 1.0, 0.95, 1.0, 1.1, 1.2, 1.3, 1.05, 1.0, 1.25)
HIRING_DAYS = 240  # the team grows in steps; between hires the queue slowly gets longer

KIND_WEIGHT = {
    RequestKind.ENABLE_ACCESS: 0.42,
    RequestKind.ESTABLISH_LINK: 0.40,
    RequestKind.DISSOCIATE_LINK: 0.18,
}
P_NO_ACTION = 0.025  # the change already held when the workflow checked
P_CANCEL = 0.03  # withdrawn by the requester while the request first waits
P_RELATED = 0.75  # about an instance the console already relates to
P_ADMIN_FILES = 0.25  # a dissociation filed by the instance's admin instead of the console
P_DECLINE = 0.04
P_STUCK = 0.07  # a request that sits in the queue, overlooked
P_APPLY_FAILS = 0.006
REVIEW_DECISION = {"approve": 0.86, "reject": 0.07, "request_info": 0.07}
AFTER_INFO_APPROVE = 0.9
SECOND_APPROVE = 0.96
P_MANAGER_SECOND = 0.25

# Lognormal durations: (median, sigma). Business seconds unless said otherwise.
CONSENT_WAIT = (3 * HOUR, 1.4)
QUEUE_WAIT = (60 * MINUTE, 1.0)  # times the week's pressure
STUCK_WAIT = (16 * HOUR, 0.5)
REVIEW_WORK = (12 * MINUTE, 0.8)  # times the agent's pace
INFO_WAIT = (5 * HOUR, 1.3)
SECOND_QUEUE = (90 * MINUTE, 1.0)  # times the week's pressure
SECOND_WORK = (8 * MINUTE, 0.7)
APPLY_SECONDS = (2, 25)  # calendar seconds, uniform
COUNTED = frozenset(s.value for s in RequestStatus if s.counts_for_sla)
ATTEMPTS = 8  # redraws of a life that would end after the history; then it needs no action

REASONS = {
    RequestKind.ENABLE_ACCESS: (
        "Year-end closing: our team needs access to the books.",
        "New engagement letter signed; please enable access.",
        "Payroll support starting next month.",
        "The client asked us to review last quarter's VAT return.",
        "Audit fieldwork begins next week.",
    ),
    RequestKind.ESTABLISH_LINK: (
        "New client onboarded; please link the company to our console.",
        "The company moved to our firm from another accountant.",
        "Second entity of an existing group, same engagement.",
        "Link needed to consolidate the group's reporting.",
        "Client restructured; new company ID to link.",
    ),
    RequestKind.DISSOCIATE_LINK: (
        "Engagement ended at the end of the quarter.",
        "The company changed accounting firm.",
        "Entity closed down; no more work for it.",
        "Duplicate link created by mistake.",
        "The client asked us to stop all access.",
    ),
}
DECLINES = (
    "We are not working with this firm any more.",
    "Please contact our CFO first.",
    "Not authorised by the board.",
)
REJECTIONS = (
    "The engagement letter on file does not cover this company.",
    "Duplicate of an earlier request.",
    "The requester is not authorised for this company.",
    "The company ID does not match the engagement.",
)
QUESTIONS = (
    "Please attach the signed engagement letter.",
    "Which entity of the group is this for?",
    "Can you confirm the company ID with the client?",
    "Who at the company approved this change?",
)
ANSWERS = (
    "Attached; signed last week.",
    "The Canadian entity only.",
    "Confirmed with the client's controller.",
    "Approved by the company's CFO by email.",
)
APPLY_FAILURE = "The instance was removed from the directory meanwhile."
CANCELS = (
    "Filed by mistake.",
    "The client changed their mind.",
    "Handled another way.",
)

REQUEST_COLUMNS = (
    "id", "kind", "console_id", "instance_id", "requester_id", "reason", "status", "open_key",
    "steps", "outcome", "created_at", "updated_at", "resolved_at", "first_response_at",
    "first_response_due", "resolution_due", "sla_state", "customer_wait_seconds",
    "projected_seq",
)  # fmt: skip
FIGURE_COLUMNS = (
    "request_id", "created_at", "resolved_at", "kind", "console_type", "outcome", "agent_id",
    *MEASURE_COLUMNS, "sla_met", *(bucket_column(c) for c in MEASURE_COLUMNS),
)  # fmt: skip
TASK_COLUMNS = (
    "request_id", "key", "type", "state", "assignee_id", "excluded_user_id", "claimed_at",
    "due_at", "created_at", "completed_at", "completed_by_id", "decision", "comment",
)  # fmt: skip
EVENT_COLUMNS = ("request_id", "seq", "at", "actor", "action", "comment", "internal", "status")
TABLES = (
    ("requests", REQUEST_COLUMNS),
    ("request_figures", FIGURE_COLUMNS),
    ("tasks", TASK_COLUMNS),
    ("timeline_events", EVENT_COLUMNS),
)
Batch = dict[str, list[tuple[Any, ...]]]  # rows by table, in TABLES order


class HistoryRefused(RuntimeError):
    """The history cannot be written here; the message says what to do."""


@dataclass(frozen=True)
class HistoryOptions:
    """What to generate: how many requests, over which days, from which seed."""

    requests: int
    days: int = DEFAULT_DAYS
    until: date | None = None  # the first day after the history (UTC); None: today
    seed: int = 0
    batch_size: int = DEFAULT_BATCH
    allow_non_sqlite: bool = False


@dataclass
class HistorySummary:
    """What was written, and how long it took."""

    requests: int = 0
    tasks: int = 0
    events: int = 0
    first_id: int = 0
    last_id: int = 0
    since: date = date.min
    until: date = date.min
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    sla_counted: int = 0
    sla_met: int = 0

    @property
    def first_public_id(self) -> str:
        return format_request_id(self.first_id)

    @property
    def last_public_id(self) -> str:
        return format_request_id(self.last_id)


# Business time, cached -------------------------------------------------------------------


class BusinessClock:
    """A calendar's business time as cached windows in epoch seconds, for bulk arithmetic.

    `position(t)` is the business time from the clock's first window to instant t, so
    business time between two instants is a subtraction, and `add(t, s)` is a bisection. The
    windows are read day by day through the calendar's public methods and answers match
    `add_business_seconds` and `business_seconds_between` to the second. Windows are added on
    demand past the span first asked for.
    """

    def __init__(self, calendar: BusinessCalendar, since: float, until: float) -> None:
        self.calendar = calendar
        self.zone = ZoneInfo(calendar.timezone)
        self.opens: list[float] = []
        self.closes: list[float] = []
        self.before: list[float] = []  # business seconds before each window
        self.through: list[float] = []  # business seconds to the end of each window
        self.days: list[tuple[date, float, float, float | None, float | None]] = []
        self._next = datetime.fromtimestamp(since, self.zone).date() - timedelta(days=2)
        self._extend(until)

    def _midnight(self, day: date) -> float:
        return datetime.combine(day, time(0), self.zone).timestamp()

    def _extend(self, until: float) -> None:
        """Read windows day by day until a window closes after `until`."""
        idle = 0
        while not self.closes or self.closes[-1] <= until or self._midnight(self._next) <= until:
            day = self._next
            self._next = day + timedelta(days=1)
            start, end = self._midnight(day), self._midnight(self._next)
            starts = datetime.fromtimestamp(start, UTC)
            opens = self.calendar.next_business_start(starts).timestamp()
            if opens >= end:
                self.days.append((day, start, end, None, None))
                idle += 1
                if idle > 400:
                    raise ValueError("the business calendar has no business hours")
                continue
            idle = 0
            ends = datetime.fromtimestamp(end, UTC)
            length = round(self.calendar.business_seconds_between(starts, ends))
            done = self.through[-1] if self.through else 0.0
            self.opens.append(opens)
            self.closes.append(opens + length)
            self.before.append(done)
            self.through.append(done + length)
            self.days.append((day, start, end, opens, opens + length))

    def position(self, at: float) -> float:
        """Business seconds from the first cached window to `at`."""
        i = bisect_right(self.closes, at)
        if i == len(self.closes):
            self._extend(at + 30 * DAY)
            i = bisect_right(self.closes, at)
        opens = self.opens[i]
        return self.before[i] + (at - opens if at > opens else 0.0)

    def between(self, start: float, end: float) -> float:
        """Business seconds in [start, end)."""
        return self.position(end) - self.position(start) if end > start else 0.0

    def add(self, start: float, seconds: float) -> float:
        """The earliest instant at which `seconds` of business time have passed since start."""
        if seconds <= 0:
            return start
        target = self.position(start) + seconds
        j = bisect_left(self.through, target)
        while j == len(self.through):
            self._extend(self.closes[-1] + seconds * 2 + 30 * DAY)
            j = bisect_left(self.through, target)
        return self.opens[j] + (target - self.before[j])


class Stamps:
    """Epoch seconds as the timestamp text the database stores (UTC), hour prefixes cached."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.hours: dict[int, str] = {}
        self.whole = [f"{m:02d}:{s:02d}.000000{suffix}" for m in range(60) for s in range(60)]

    def __call__(self, at: float | None) -> str | None:
        if at is None:
            return None
        whole = int(at)
        hour, rest = divmod(whole, 3600)
        prefix = self.hours.get(hour)
        if prefix is None:
            prefix = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%d %H:")
            self.hours[hour] = prefix
        if whole == at:
            return prefix + self.whole[rest]
        micro = min(round((at - whole) * 1_000_000), 999_999)
        return f"{prefix}{rest // 60:02d}:{rest % 60:02d}.{micro:06d}{self.suffix}"


# The directory ---------------------------------------------------------------------------

Person = tuple[int, str]  # user ID and username


@dataclass
class Directory:
    """The existing directory, users and rules the history is made from."""

    consoles: list[tuple[int, str, ConsoleType]]
    instances: list[tuple[int, str]]
    related: dict[int, list[int]]  # console ID -> indexes into instances
    partners: dict[int, list[Person]]  # by console ID
    all_partners: list[Person]
    admins: dict[int, list[Person]]  # by instance ID
    all_admins: list[Person]
    agents: list[Person]
    managers: list[Person]
    steps: dict[tuple[RequestKind, ConsoleType], tuple[str, ...]]
    targets: dict[RequestKind, tuple[float, float]]


def load_directory(conn: Connection) -> Directory:
    """Read what the history needs; refuses when there is nothing to file requests with."""
    consoles = [
        (row.id, row.code, ConsoleType(row.type))
        for row in conn.execute(
            select(Console.id, Console.code, Console.type)
            .where(Console.removed_at.is_(None))
            .order_by(Console.id)
        )
    ]
    instances = [
        (row.id, row.code)
        for row in conn.execute(
            select(Instance.id, Instance.code)
            .where(Instance.removed_at.is_(None))
            .order_by(Instance.id)
        )
    ]
    if not consoles or not instances:
        raise HistoryRefused(
            "There are no consoles or instances to file requests for. "
            "Run `linkdesk seed-demo` first (or import a directory with `linkdesk import-csv`)."
        )
    users = list(
        conn.execute(
            select(User.id, User.username, User.role, User.console_id)
            .where(User.active.is_(True))
            .order_by(User.id)
        )
    )
    agents = [(u.id, u.username) for u in users if Role(u.role) == Role.AGENT]
    if not agents:
        raise HistoryRefused(
            "There are no agent users to work the requests. "
            "Run `linkdesk seed-demo` first (or add agents with `linkdesk create-user`)."
        )
    partners: dict[int, list[Person]] = {}
    for u in users:
        if Role(u.role) == Role.PARTNER and u.console_id is not None:
            partners.setdefault(u.console_id, []).append((u.id, u.username))
    names = {u.id: u.username for u in users if Role(u.role) == Role.INSTANCE_ADMIN}
    admins: dict[int, list[Person]] = {}
    for user_id, instance_id in conn.execute(
        select(user_instances.c.user_id, user_instances.c.instance_id).order_by(
            user_instances.c.instance_id, user_instances.c.user_id
        )
    ):
        if user_id in names:
            admins.setdefault(instance_id, []).append((user_id, names[user_id]))
    all_partners = [p for people in partners.values() for p in people]
    if not all_partners and not names:
        raise HistoryRefused(
            "There are no partner or instance admin users to file requests. "
            "Run `linkdesk seed-demo` first (or add them with `linkdesk create-user`)."
        )
    index = {instance_id: i for i, (instance_id, _code) in enumerate(instances)}
    related: dict[int, list[int]] = {}
    for console_id, instance_id in conn.execute(
        select(Relationship.console_id, Relationship.instance_id).order_by(Relationship.id)
    ):
        if instance_id in index:
            related.setdefault(console_id, []).append(index[instance_id])
    steps = {key: tuple(s.value for s in value) for key, value in DEFAULT_POLICY.items()}
    for kind, console_type, policy in conn.execute(
        select(ApprovalPolicy.kind, ApprovalPolicy.console_type, ApprovalPolicy.steps)
    ):
        steps[(RequestKind(kind), ConsoleType(console_type))] = tuple(policy)
    targets = {
        kind: (rule.default_sla.first_response_hours, rule.default_sla.resolution_hours)
        for kind, rule in KINDS.items()
    }
    for kind, first_hours, resolution_hours in conn.execute(
        select(
            SlaTargetSetting.kind,
            SlaTargetSetting.first_response_hours,
            SlaTargetSetting.resolution_hours,
        )
    ):
        targets[RequestKind(kind)] = (first_hours, resolution_hours)
    return Directory(
        consoles=consoles,
        instances=instances,
        related=related,
        partners=partners,
        all_partners=all_partners,
        admins=admins,
        all_admins=sorted(names.items()),
        agents=agents,
        managers=[(u.id, u.username) for u in users if Role(u.role) == Role.MANAGER],
        steps=steps,
        targets=targets,
    )


# One request's life ----------------------------------------------------------------------


class Picker:
    """A weighted choice by bisection over cumulative weights."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float]) -> None:
        self.items = list(items)
        self.cumulative: list[float] = []
        total = 0.0
        for weight in weights:
            total += weight
            self.cumulative.append(total)
        self.total = total

    def __call__(self, rng: Random) -> Any:
        return self.items[bisect_right(self.cumulative, rng.random() * self.total)]


def _lognormal(rng: Random, spec: tuple[float, float], scale: float = 1.0) -> int:
    """A lognormal duration of (median times scale, sigma), in whole seconds, at least one."""
    median, sigma = spec
    return max(1, round(rng.lognormvariate(math.log(median * scale), sigma)))


@dataclass
class Life:
    """What happened to one request, in epoch seconds, before it becomes rows."""

    created: float
    status: RequestStatus = RequestStatus.SUBMITTED
    events: list[tuple[float, str, str, str | None, str]] = field(default_factory=list)
    # key, type, assignee, excluded, claimed, due, created, completed, by, decision, comment
    tasks: list[list[Any]] = field(default_factory=list)
    pauses: list[tuple[float, float]] = field(default_factory=list)
    transitions: list[tuple[float, str]] = field(default_factory=list)
    now: str = RequestStatus.SUBMITTED.value  # the status's value, looked up once
    first_response: float | None = None
    responder: int | None = None
    end: float = 0.0
    outcome: str = ""

    def event(self, at: float, actor: str, action: str, comment: str | None = None) -> None:
        self.events.append((at, actor, action, comment, self.now))

    def move(self, at: float, status: RequestStatus) -> None:
        self.status, self.now = status, status.value
        self.transitions.append((at, self.now))

    def task(self, type_: TaskType, created: float, due: float | None = None) -> list[Any]:
        task = [len(self.tasks) + 1, type_.value, None, None, None, due, created]
        task += [None, None, None, None]
        self.tasks.append(task)
        return task

    def respond(self, at: float, agent: Person) -> None:
        if self.first_response is None:
            self.first_response, self.responder = at, agent[0]

    def finish(self, at: float, status: RequestStatus, outcome: str) -> None:
        self.end, self.outcome = at, outcome
        self.move(at, status)
        for task in self.tasks:
            if task[7] is None:  # still open: closed by the end, as the workflow does
                task[7], task[9] = at, task[9] or self.now
        self.event(at, SYSTEM, "status", self.now)


@dataclass
class Made:
    """One request's rows, ready to insert."""

    request: tuple[Any, ...]
    figures: tuple[Any, ...]
    tasks: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    status: str
    sla_met: bool | None


class Simulator:
    """Lives of requests on the SLA calendar, drawn from one seeded random stream."""

    def __init__(
        self,
        directory: Directory,
        clock: BusinessClock,
        stamps: Stamps,
        rng: Random,
        since: float,
        until: float,
    ) -> None:
        self.d = directory
        self.clock = clock
        self.stamp = stamps
        self.rng = rng
        self.since, self.until = since, until
        self.steps_json = {key: json.dumps(list(value)) for key, value in directory.steps.items()}
        # Some consoles and agents are much busier than others.
        self.console = Picker(
            directory.consoles, [rng.lognormvariate(0, 0.8) for _ in directory.consoles]
        )
        self.review_decision = Picker(list(REVIEW_DECISION), list(REVIEW_DECISION.values()))
        ranks = list(range(len(directory.agents)))
        rng.shuffle(ranks)
        self.agent = Picker(directory.agents, [1 / (rank + 1) ** 0.8 for rank in ranks])
        self.pace = {a[0]: rng.lognormvariate(0, 0.3) for a in directory.agents}
        self.kinds: dict[ConsoleType, Picker] = {}
        for console_type in ConsoleType:
            kinds = [k for k in RequestKind if self._feasible(k, console_type)]
            self.kinds[console_type] = Picker(kinds, [KIND_WEIGHT[k] for k in kinds])
        self.second: dict[int, Picker] = {}
        for agent_id, _name in directory.agents:
            others = [a for a in directory.agents if a[0] != agent_id]
            weights = [
                (1 - P_MANAGER_SECOND) / len(others) if directory.managers else 1.0 for _ in others
            ]
            weights += [P_MANAGER_SECOND / len(directory.managers)] * len(directory.managers)
            if others or directory.managers:
                self.second[agent_id] = Picker(others + directory.managers, weights)
        weeks = int((until - since) // (7 * DAY)) + 2
        self.queue_scale = [self._pressure(since + (w + 0.5) * 7 * DAY) for w in range(weeks)]

    def _feasible(self, kind: RequestKind, console_type: ConsoleType) -> bool:
        """A second approval needs a second person: without one, the kind is left out."""
        needs_second = Step.SECOND_APPROVAL.value in self.d.steps[(kind, console_type)]
        return not needs_second or len(self.d.agents) > 1 or bool(self.d.managers)

    def _pressure(self, at: float) -> float:
        """How much longer than usual queues were in the week around `at`."""
        span = max(self.until - self.since, DAY)
        elapsed = (at - self.since) / span
        since_hire = ((at - self.since) % (HIRING_DAYS * DAY)) / span
        growth = GROWTH ** (2 * since_hire)  # volume outgrows the team until the next hire
        month = datetime.fromtimestamp(at, UTC).month
        noise = self.rng.lognormvariate(0, 0.35)
        return growth * MONTH_PRESSURE[month - 1] * noise * (1.1 - 0.2 * elapsed)

    # Filing times.

    def filing_days(self, count: int) -> list[tuple[int, tuple[Any, ...]]]:
        """How many requests each local day of the span gets, summing to `count` exactly."""
        rng, span = self.rng, self.until - self.since
        weighted = []
        for day in self.clock.days:
            local, start, end, opens, closes = day
            lo, hi = max(start, self.since), min(end, self.until)
            if lo >= hi:
                continue
            share = (hi - lo) / (end - start)
            if opens is not None and closes is not None and max(opens, lo) < min(closes, hi):
                weight = WEEKDAY_WEIGHT[local.weekday()]
            else:
                weight = DAY_OFF_WEIGHT
            weight *= MONTH_WEIGHT[local.month - 1] * GROWTH ** (
                ((lo + hi) / 2 - self.since) / span
            )
            weighted.append((day, weight * share * rng.lognormvariate(0, 0.15)))
        total = sum(w for _day, w in weighted)
        offset, cumulative, taken, out = rng.random(), 0.0, 0, []
        for i, (day, weight) in enumerate(weighted):
            cumulative += weight
            upto = count if i == len(weighted) - 1 else int(cumulative / total * count + offset)
            upto = min(upto, count)
            if upto > taken:
                out.append((upto - taken, day))
                taken = upto
        return out

    def filing_times(self, count: int, day: tuple[Any, ...]) -> list[float]:
        """`count` filing instants on one local day, in order."""
        rng = self.rng
        _local, start, end, opens, closes = day
        lo, hi = max(start, self.since), min(end, self.until - 1)
        window = None
        if opens is not None and closes is not None and max(opens, lo) < min(closes, hi):
            window = (max(opens, lo), min(closes, hi))
        times = []
        for _ in range(count):
            if window is not None and rng.random() >= OFF_HOURS_SHARE:
                if rng.random() < 0.55:  # a mid-morning peak, then a mid-afternoon one
                    share = rng.triangular(0.0, 0.55, 0.22)
                else:
                    share = rng.triangular(0.45, 1.0, 0.68)
                at = window[0] + share * (window[1] - window[0])
            elif window is not None:
                outside = (hi - lo) - (window[1] - window[0])
                at = lo + rng.random() * outside
                if at >= window[0]:
                    at += window[1] - window[0]
            else:  # a day off: the odd filing, in the daytime
                a, b = max(lo, start + 7 * HOUR), min(hi, start + 22 * HOUR)
                at = a + rng.random() * (b - a) if a < b else lo + rng.random() * (hi - lo)
            times.append(float(int(at)))
        times.sort()
        return times

    # Lives.

    def make(self, number: int, created: float) -> Made:
        """One request filed at `created`, as rows."""
        rng, d = self.rng, self.d
        console_id, console_code, console_type = self.console(rng)
        kind: RequestKind = self.kinds[console_type](rng)
        related = d.related.get(console_id)
        if related and rng.random() < P_RELATED:
            instance_id, instance_code = d.instances[rng.choice(related)]
        else:
            instance_id, instance_code = rng.choice(d.instances)
        requester = self._requester(kind, console_id, instance_id)
        steps = d.steps[(kind, console_type)]
        life = None
        for _ in range(ATTEMPTS):
            life = self._live(created, kind, steps, requester, instance_id)
            if life.end < self.until:
                break
        else:
            life = self._no_action(created, requester)
        if life.status == RequestStatus.NO_ACTION_NEEDED and not life.outcome:
            life.outcome = _no_action_text(kind, console_code, instance_code)
        return self._rows(number, kind, console_id, console_type, instance_id, requester, life)

    def _requester(self, kind: RequestKind, console_id: int, instance_id: int) -> Person:
        rng, d = self.rng, self.d
        admins = d.admins.get(instance_id)
        if kind == RequestKind.DISSOCIATE_LINK and admins and rng.random() < P_ADMIN_FILES:
            return rng.choice(admins)
        return rng.choice(d.partners.get(console_id) or d.all_partners or d.all_admins)

    def _no_action(self, created: float, requester: Person) -> Life:
        """The change already held when the workflow checked: done at once."""
        life = Life(created)
        life.move(created, RequestStatus.SUBMITTED)
        life.event(created, requester[1], "filed")
        done = min(created + 1 + self.rng.randint(0, 3), self.until - 1)
        life.finish(done, RequestStatus.NO_ACTION_NEEDED, "")
        return life

    def _live(
        self,
        created: float,
        kind: RequestKind,
        steps: tuple[str, ...],
        requester: Person,
        instance_id: int,
    ) -> Life:
        rng, add = self.rng, self.clock.add
        if rng.random() < P_NO_ACTION:
            return self._no_action(created, requester)
        life = Life(created)
        life.move(created, RequestStatus.SUBMITTED)
        life.event(created, requester[1], "filed")
        week = int((created - self.since) // (7 * DAY))
        pressure = self.queue_scale[min(max(week, 0), len(self.queue_scale) - 1)]
        cancel = rng.random() < P_CANCEL
        at = created + 1  # the workflow starts a moment after filing
        first_approver: Person | None = None
        for step in steps:
            if step == Step.CONSENT:
                life.move(at, RequestStatus.AWAITING_CONSENT)
                expiry = at + CONSENT_EXPIRY_DAYS * DAY
                task = life.task(TaskType.CONSENT, at, expiry)
                answered = add(at, _lognormal(rng, CONSENT_WAIT))
                if cancel:
                    return self._cancel(life, task, at, min(answered, expiry), requester)
                if answered >= expiry:
                    return self._expire(life, at, expiry, "consent", CONSENT_EXPIRY_DAYS)
                self._remind(life, at, answered, "consent", CONSENT_EXPIRY_DAYS)
                life.pauses.append((at, answered))
                admin = self._admin(instance_id)
                if rng.random() < P_DECLINE:
                    reason = rng.choice(DECLINES)
                    task[7:11] = [answered, admin[0], "decline", reason]
                    life.event(answered, admin[1], "decline", reason)
                    life.finish(
                        answered,
                        RequestStatus.REJECTED,
                        f"The instance admin declined: {reason}",
                    )
                    return life
                task[7:11] = [answered, admin[0], "grant", None]
                life.event(answered, admin[1], "grant")
                at = answered
                cancel = False
            elif step == Step.REVIEW:
                life.move(at, RequestStatus.AWAITING_AGENT)
                task = life.task(TaskType.REVIEW, at)
                spec = STUCK_WAIT if rng.random() < P_STUCK else QUEUE_WAIT
                claimed = add(at, _lognormal(rng, spec, 1.0 if spec is STUCK_WAIT else pressure))
                if cancel:
                    return self._cancel(life, task, at, claimed, requester)
                agent: Person = self.agent(rng)
                task[2], task[4] = agent[0], claimed
                life.move(claimed, RequestStatus.IN_REVIEW)
                life.event(claimed, agent[1], "claimed", "review task")
                life.respond(claimed, agent)
                decided = add(claimed, _lognormal(rng, REVIEW_WORK, self.pace[agent[0]]))
                decision = self.review_decision(rng)
                if decision == "request_info":
                    question = rng.choice(QUESTIONS)
                    task[7:11] = [decided, agent[0], "request_info", question]
                    life.event(decided, agent[1], "request_info", question)
                    life.move(decided, RequestStatus.AWAITING_REQUESTER)
                    expiry = decided + INFO_EXPIRY_DAYS * DAY
                    info = life.task(TaskType.INFO, decided, expiry)
                    info[2] = requester[0]
                    answered = add(decided, _lognormal(rng, INFO_WAIT))
                    if answered >= expiry:
                        return self._expire(life, decided, expiry, "answer", INFO_EXPIRY_DAYS)
                    self._remind(life, decided, answered, "answer", INFO_EXPIRY_DAYS)
                    life.pauses.append((decided, answered))
                    answer = rng.choice(ANSWERS)
                    info[7:11] = [answered, requester[0], "answered", answer]
                    life.event(answered, requester[1], "answered", answer)
                    task = life.task(TaskType.REVIEW, answered)
                    task[2], task[4] = agent[0], answered
                    life.move(answered, RequestStatus.IN_REVIEW)
                    decided = add(answered, _lognormal(rng, REVIEW_WORK, self.pace[agent[0]]))
                    decision = "approve" if rng.random() < AFTER_INFO_APPROVE else "reject"
                if decision == "reject":
                    reason = rng.choice(REJECTIONS)
                    task[7:11] = [decided, agent[0], "reject", reason]
                    life.event(decided, agent[1], "reject", reason)
                    life.finish(decided, RequestStatus.REJECTED, f"Rejected: {reason}")
                    return life
                task[7:11] = [decided, agent[0], "approve", None]
                life.event(decided, agent[1], "approve")
                first_approver = first_approver or agent
                at = decided
                cancel = False
            elif step == Step.SECOND_APPROVAL:
                life.move(at, RequestStatus.AWAITING_SECOND_APPROVAL)
                task = life.task(TaskType.SECOND_APPROVAL, at)
                task[3] = first_approver[0] if first_approver else None
                claimed = add(at, _lognormal(rng, SECOND_QUEUE, pressure))
                if cancel:
                    return self._cancel(life, task, at, claimed, requester)
                second = self._second(first_approver)
                task[2], task[4] = second[0], claimed
                life.event(claimed, second[1], "claimed", "second approval task")
                life.respond(claimed, second)
                decided = add(claimed, _lognormal(rng, SECOND_WORK))
                if rng.random() >= SECOND_APPROVE:
                    reason = rng.choice(REJECTIONS)
                    task[7:11] = [decided, second[0], "reject", reason]
                    life.event(decided, second[1], "reject", reason)
                    life.finish(decided, RequestStatus.REJECTED, f"Rejected: {reason}")
                    return life
                task[7:11] = [decided, second[0], "approve", None]
                life.event(decided, second[1], "approve")
                at = decided
                cancel = False
        life.move(at, RequestStatus.APPLYING)
        done = at + rng.randint(*APPLY_SECONDS)
        if rng.random() < P_APPLY_FAILS:
            life.event(done, SYSTEM, "apply_failed", APPLY_FAILURE)
            life.finish(done, RequestStatus.FAILED, f"Failed: {APPLY_FAILURE}")
        else:
            life.finish(done, RequestStatus.COMPLETED, KINDS[kind].done_text)
        return life

    def _admin(self, instance_id: int) -> Person:
        people = self.d.admins.get(instance_id) or self.d.all_admins
        return self.rng.choice(people) if people else (0, "instance admin")

    def _second(self, first: Person | None) -> Person:
        picker = self.second.get(first[0]) if first else None
        return picker(self.rng) if picker else self.agent(self.rng)

    def _cancel(
        self, life: Life, task: list[Any], waiting: float, until: float, requester: Person
    ) -> Life:
        """The requester withdraws while the request first waits."""
        at = waiting + int(self.rng.random() * max(until - waiting, 60))
        if task[1] == TaskType.CONSENT.value:
            life.pauses.append((waiting, at))
        reason = self.rng.choice(CANCELS)
        life.event(at, requester[1], "cancelled", reason)
        life.finish(at, RequestStatus.CANCELLED, f"Cancelled by {requester[1]}: {reason}")
        return life

    def _remind(self, life: Life, since: float, answered: float, noun: str, days: int) -> None:
        halfway = since + days * DAY / 2
        if answered > halfway:
            expiry = datetime.fromtimestamp(since + days * DAY, UTC)
            life.event(
                halfway, SYSTEM, "reminder", f"Reminder: {noun} expected by {expiry:%Y-%m-%d}."
            )

    def _expire(self, life: Life, since: float, expiry: float, noun: str, days: int) -> Life:
        self._remind(life, since, expiry, noun, days)
        life.pauses.append((since, expiry))
        life.event(expiry, SYSTEM, "expired", f"No {noun} within {days} days.")
        life.finish(expiry, RequestStatus.EXPIRED, f"Expired: no {noun} within {days} days.")
        return life

    # Figures, exactly as the workflow computes them.

    def _clock_at(self, life: Life, at: float) -> float:
        """Business seconds the SLA clock had run at `at`: customer waits taken out."""
        position = self.clock.position
        elapsed = position(at) - position(life.created)
        for start, end in life.pauses:
            if start < at:
                elapsed -= position(min(end, at)) - position(start)
        return elapsed

    def _due(self, life: Life, hours: float) -> float:
        """When the SLA clock reaches a target, given the waits."""
        remaining, running = hours * HOUR, life.created
        for start, end in life.pauses:
            run = self.clock.between(running, start)
            if run >= remaining:
                return self.clock.add(running, remaining)
            remaining -= run
            running = end
        return self.clock.add(running, remaining)

    def _rows(
        self,
        number: int,
        kind: RequestKind,
        console_id: int,
        console_type: ConsoleType,
        instance_id: int,
        requester: Person,
        life: Life,
    ) -> Made:
        stamp, created, end = self.stamp, life.created, life.end
        first_hours, resolution_hours = self.d.targets[kind]
        first_due = self._due(life, first_hours)
        resolution_due = self._due(life, resolution_hours)
        met = end <= resolution_due
        first_business = (
            None if life.first_response is None else self._clock_at(life, life.first_response)
        )
        resolution_business = self._clock_at(life, end)
        wait_business = self.clock.between(created, end) - resolution_business
        wait = float(sum(b - a for a, b in life.pauses))
        # The SLA state turns breached when a target passes unmet (the timer fires a second
        # after), or at the end when the resolution target was missed.
        breaches = [resolution_due + 1] if not met else []
        if life.first_response is None or life.first_response > first_due:
            breaches.append(first_due + 1)
        if breaches and min(breaches) < end:
            at = min(breaches)
            status = life.transitions[bisect_right(life.transitions, (at, "~")) - 1][1]
            life.events.append((at, SYSTEM, "sla_breached", None, status))
            life.events.sort(key=lambda event: event[0])
        elif not met:  # noticed as the request ends, after its final status
            life.events.append((end, SYSTEM, "sla_breached", None, life.now))
        status, done_state = life.now, TaskState.DONE.value
        counted = met if status in COUNTED else None
        events = [
            (number, seq, stamp(at), actor, action, comment, False, after)
            for seq, (at, actor, action, comment, after) in enumerate(life.events, start=1)
        ]
        tasks = [
            (number, key, type_, done_state, assignee, excluded, stamp(claimed), stamp(due),
             stamp(made), stamp(done), by or None, decision, comment)
            for key, type_, assignee, excluded, claimed, due, made, done, by, decision, comment
            in life.tasks
        ]  # fmt: skip
        created_text, end_text = stamp(created), stamp(end)
        first_text = stamp(life.first_response)
        request = (
            number, kind.value, console_id, instance_id, requester[0],
            self.rng.choice(REASONS[kind]), status, None,
            self.steps_json[(kind, console_type)], life.outcome, created_text, end_text,
            end_text, first_text, stamp(first_due), stamp(resolution_due),
            "met" if met else "breached", wait, len(events),
        )  # fmt: skip
        durations = (
            None if life.first_response is None else life.first_response - created,
            first_business,
            end - created,
            resolution_business,
            wait,
            wait_business,
        )  # in MEASURE_COLUMNS order
        figures = (
            number, created_text, end_text, kind.value, console_type.value, status,
            life.responder, *durations, counted, *map(duration_bucket, durations),
        )  # fmt: skip
        return Made(request, figures, tasks, events, status, counted)


def _no_action_text(kind: RequestKind, console_code: str, instance_code: str) -> str:
    return KINDS[kind].no_action_text(console_code, instance_code)


# Writing ---------------------------------------------------------------------------------


class Writer:
    """Reserves request IDs and inserts batches, one transaction each."""

    stamp_suffix = ""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def reserve(self, count: int) -> int:
        """The first of `count` request IDs no filing will take; the sequence moves past them."""
        raise NotImplementedError

    def write(self, batch: Batch) -> None:
        """Insert one batch of rows, table by table, parents first, and commit."""
        raise NotImplementedError

    def analyze(self) -> None:
        """Refresh the planner's statistics after a bulk load."""
        raise NotImplementedError

    def close(self) -> None:
        """Leave the connection as it was found, for the pool."""


class SqliteWriter(Writer):
    """Plain executemany; the requests table's AUTOINCREMENT counter guards the IDs."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.statements = {
            table: f"INSERT INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' for _ in columns)})"
            for table, columns in TABLES
        }
        # Every value of an enum column comes from its enum, and SQLite evaluates a CHECK
        # constraint's IN list row by row at a cost larger than the rest of the insert, so
        # this connection skips them while it loads (`close` turns them back on).
        self.cache_size = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
        conn.exec_driver_sql("PRAGMA ignore_check_constraints=ON")
        conn.exec_driver_sql("PRAGMA cache_size=-65536")  # 64 MB: index pages stay in memory
        conn.commit()

    def reserve(self, count: int) -> int:
        with self.conn.begin():
            top = self.conn.exec_driver_sql(
                "SELECT max(coalesce((SELECT max(id) FROM requests), 0), "
                "coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'requests'), 0))"
            ).scalar_one()
            last = int(top) + count
            moved = self.conn.exec_driver_sql(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = 'requests'", (last,)
            )
            if not moved.rowcount:
                self.conn.exec_driver_sql(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('requests', ?)", (last,)
                )
        return int(top) + 1

    def write(self, batch: Batch) -> None:
        with self.conn.begin():
            for table, _columns in TABLES:
                if batch[table]:
                    self.conn.exec_driver_sql(self.statements[table], batch[table])

    def analyze(self) -> None:
        with self.conn.begin():
            self.conn.exec_driver_sql("PRAGMA analysis_limit=1000")
            self.conn.exec_driver_sql("ANALYZE")

    def close(self) -> None:
        self.conn.rollback()
        self.conn.exec_driver_sql("PRAGMA ignore_check_constraints=OFF")
        self.conn.exec_driver_sql(f"PRAGMA cache_size={int(self.cache_size)}")
        self.conn.commit()


class PostgresWriter(Writer):
    """COPY through psycopg; the requests sequence is set past the IDs before writing."""

    stamp_suffix = "+00"

    def reserve(self, count: int) -> int:
        with self.conn.begin():
            sequence = self.conn.execute(
                text("SELECT pg_get_serial_sequence('requests', 'id')")
            ).scalar_one()
            # Filings wait while the block is taken, so none can slip into it.
            self.conn.execute(text("LOCK TABLE requests IN SHARE ROW EXCLUSIVE MODE"))
            top = self.conn.execute(
                text(
                    "SELECT greatest((SELECT coalesce(max(id), 0) FROM requests), "
                    "coalesce(pg_sequence_last_value(CAST(:seq AS regclass)), 0))"
                ),
                {"seq": sequence},
            ).scalar_one()
            self.conn.execute(
                text("SELECT setval(CAST(:seq AS regclass), :last)"),
                {"seq": sequence, "last": int(top) + count},
            )
        return int(top) + 1

    def write(self, batch: Batch) -> None:
        with self.conn.begin():
            raw = self.conn.connection.driver_connection
            assert raw is not None
            with raw.cursor() as cursor:
                for table, columns in TABLES:
                    if not batch[table]:
                        continue
                    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                    with cursor.copy(statement) as copy:
                        for row in batch[table]:
                            copy.write_row(row)

    def analyze(self) -> None:
        # VACUUM as well: it marks the new pages all-visible, so counts and index-only scans
        # need not visit the table (autovacuum would, some time later). Not in a transaction.
        self.conn.commit()
        tables = ", ".join([*(table for table, _ in TABLES), "figure_rollups", "agent_rollups"])
        self.conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            f"VACUUM (ANALYZE) {tables}"
        )


# The whole run ---------------------------------------------------------------------------


@dataclass
class Plan:
    """A checked run: the options, the span, and the directory it draws from."""

    options: HistoryOptions
    since: date
    until: date
    directory: Directory
    calendar: BusinessCalendar


def prepare(options: HistoryOptions, today: date | None = None) -> Plan:
    """Check that the history can be written here, and read the directory it draws from."""
    if not config.is_sqlite(current_app.config["DATABASE_URL"]) and not options.allow_non_sqlite:
        raise HistoryRefused(
            "Refusing to write synthetic history into a non-SQLite database: it would mix "
            "made-up requests with real ones. Pass --allow-non-sqlite if you mean it."
        )
    until = options.until or today or datetime.now(UTC).date()
    since = until - timedelta(days=options.days)
    with db.engine.connect() as conn:
        directory = load_directory(conn)
        conn.rollback()
    calendar = BusinessCalendar.from_config(current_app.config["SLA_CALENDAR"])
    return Plan(options, since, until, directory, calendar)


def write(plan: Plan, progress: Callable[[int], None] | None = None) -> HistorySummary:
    """Generate the planned requests and write them batch by batch; returns what was written."""
    started = timer.perf_counter()
    options = plan.options
    since = datetime.combine(plan.since, time(0), UTC).timestamp()
    until = datetime.combine(plan.until, time(0), UTC).timestamp()
    summary = HistorySummary(since=plan.since, until=plan.until)
    db.session.remove()  # no session transaction may hold SQLite's write lock meanwhile
    with db.engine.connect() as conn:
        writer: Writer = (
            PostgresWriter(conn) if conn.dialect.name == "postgresql" else SqliteWriter(conn)
        )
        try:
            first = writer.reserve(options.requests)
            batches = _batches(plan, writer.stamp_suffix, since, until, first, summary)
            _write_all(writer, batches, summary, progress)
            with conn.begin():
                rollups.rebuild(conn)
            writer.analyze()
        finally:
            writer.close()
    summary.first_id, summary.last_id = first, first + summary.requests - 1
    summary.seconds = timer.perf_counter() - started
    return summary


def _batches(
    plan: Plan, suffix: str, since: float, until: float, first: int, summary: HistorySummary
) -> Iterator[Batch]:
    """The requests in filing order, numbered from `first`, as batches of rows by table."""
    options = plan.options
    clock = BusinessClock(plan.calendar, since, until + 60 * DAY)
    simulator = Simulator(plan.directory, clock, Stamps(suffix), Random(options.seed), since, until)
    number = first
    batch: Batch = {table: [] for table, _ in TABLES}
    for count, day in simulator.filing_days(options.requests):
        for created in simulator.filing_times(count, day):
            made = simulator.make(number, created)
            number += 1
            batch["requests"].append(made.request)
            batch["request_figures"].append(made.figures)
            batch["tasks"].extend(made.tasks)
            batch["timeline_events"].extend(made.events)
            summary.outcomes[made.status] += 1
            if made.sla_met is not None:
                summary.sla_counted += 1
                summary.sla_met += made.sla_met
            if len(batch["requests"]) == options.batch_size:
                yield batch
                batch = {table: [] for table, _ in TABLES}
    if batch["requests"]:
        yield batch


def _write_all(
    writer: Writer,
    batches: Iterator[Batch],
    summary: HistorySummary,
    progress: Callable[[int], None] | None,
) -> None:
    """Write each batch on a thread of its own while the next one is made.

    The database does its share of an insert without holding the GIL, so on two cores
    making and writing overlap; one batch at most is in flight, so memory stays flat.
    """

    def landed(future: Future[None], batch: Batch) -> None:
        future.result()
        summary.requests += len(batch["requests"])
        summary.tasks += len(batch["tasks"])
        summary.events += len(batch["timeline_events"])
        if progress is not None:
            progress(len(batch["requests"]))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="demo-history") as pool:
        in_flight: tuple[Future[None], Batch] | None = None
        for batch in batches:
            if in_flight is not None:
                landed(*in_flight)
            in_flight = (pool.submit(writer.write, batch), batch)
        if in_flight is not None:
            landed(*in_flight)


def generate(
    options: HistoryOptions, progress: Callable[[int], None] | None = None
) -> HistorySummary:
    """Check, then write the history in one go."""
    return write(prepare(options), progress)
