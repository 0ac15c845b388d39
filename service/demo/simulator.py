"""Lives of synthetic requests on the SLA calendar, made into the rows their workflows leave.

Each request lives through its policy's steps on the SLA calendar: filed mostly in business
hours on weekdays, with volume growing over the span; consent and the requester's answers
are customer waits (the SLA clock paused); queue waits and reviews take business time that
grows when the team is busy, so some requests miss their targets. The timeline keeps what
people did plus the final status; the intermediate status changes and the status periods are
left out to keep the tables lean.

What the workflow decides is not decided again here: the statuses each step waits in, the
customer waits and their expiry, the outcome texts (`domain.lifecycle`), and the due times,
SLA states and business figures, computed by the very rules the workflow runs
(`domain.calendar.SlaClock`, here on the cached calendar of `BusinessClock`).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from random import Random
from typing import Any

from domain.durations import MEASURE_COLUMNS, bucket_column, duration_bucket
from domain.kinds import KINDS
from domain.lifecycle import (
    CUSTOMER_WAITS,
    STEPS,
    CustomerWait,
    StepRule,
    cancelled_outcome,
    failed_outcome,
    rejected_outcome,
    task_name,
)
from domain.sla import THRESHOLD_TIMER_DELAY, SlaState, SlaTarget, request_sla_state
from domain.vocabulary import ConsoleType, RequestKind, RequestStatus, Step, TaskState, TaskType
from service.demo.clock import DAY, HOUR, BusinessClock
from workflows.request import SYSTEM

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
CONSENT_RULE = CUSTOMER_WAITS[TaskType.CONSENT]
INFO_RULE = CUSTOMER_WAITS[TaskType.INFO]
REVIEW_TASK = task_name(TaskType.REVIEW)
SECOND_APPROVAL_TASK = task_name(TaskType.SECOND_APPROVAL)
# A missed target is noticed by the workflow's timer this long after its due time.
NOTICED_AFTER = THRESHOLD_TIMER_DELAY.total_seconds()
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
    targets: dict[RequestKind, SlaTarget]


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

    def decide(
        self, task: list[Any], at: float, person: Person, decision: str, comment: str | None = None
    ) -> None:
        """Close a task with a person's decision, and put it on the timeline."""
        task[7:11] = [at, person[0], decision, comment]
        self.event(at, person[1], decision, comment)

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
        self.policies = {
            key: tuple((Step(step), STEPS[Step(step)]) for step in value)
            for key, value in directory.steps.items()
        }
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
        steps = self.policies[(kind, console_type)]
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
        steps: tuple[tuple[Step, StepRule], ...],
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
        for step, rule in steps:
            if step == Step.CONSENT:
                life.move(at, rule.status)
                expiry = at + CONSENT_RULE.expiry.total_seconds()
                task = life.task(rule.task, at, expiry)
                answered = add(at, _lognormal(rng, CONSENT_WAIT))
                if cancel:
                    return self._cancel(life, at, min(answered, expiry), requester)
                if answered >= expiry:
                    return self._expire(life, at, CONSENT_RULE)
                self._remind(life, at, answered, CONSENT_RULE)
                life.pauses.append((at, answered))
                admin = self._admin(instance_id)
                if rng.random() < P_DECLINE:
                    reason = rng.choice(DECLINES)
                    life.decide(task, answered, admin, "decline", reason)
                    life.finish(
                        answered, RequestStatus.REJECTED, rejected_outcome(rule.task, reason)
                    )
                    return life
                life.decide(task, answered, admin, "grant")
                at = answered
                cancel = False
            elif step == Step.REVIEW:
                life.move(at, rule.status)
                task = life.task(rule.task, at)
                spec = STUCK_WAIT if rng.random() < P_STUCK else QUEUE_WAIT
                claimed = add(at, _lognormal(rng, spec, 1.0 if spec is STUCK_WAIT else pressure))
                if cancel:
                    return self._cancel(life, at, claimed, requester)
                agent: Person = self.agent(rng)
                task[2], task[4] = agent[0], claimed
                life.move(claimed, RequestStatus.IN_REVIEW)
                life.event(claimed, agent[1], "claimed", REVIEW_TASK)
                life.respond(claimed, agent)
                decided = add(claimed, _lognormal(rng, REVIEW_WORK, self.pace[agent[0]]))
                decision = self.review_decision(rng)
                if decision == "request_info":
                    question = rng.choice(QUESTIONS)
                    life.decide(task, decided, agent, "request_info", question)
                    life.move(decided, RequestStatus.AWAITING_REQUESTER)
                    expiry = decided + INFO_RULE.expiry.total_seconds()
                    info = life.task(INFO_RULE.task, decided, expiry)
                    info[2] = requester[0]
                    answered = add(decided, _lognormal(rng, INFO_WAIT))
                    if answered >= expiry:
                        return self._expire(life, decided, INFO_RULE)
                    self._remind(life, decided, answered, INFO_RULE)
                    life.pauses.append((decided, answered))
                    answer = rng.choice(ANSWERS)
                    life.decide(info, answered, requester, "answered", answer)
                    task = life.task(rule.task, answered)
                    task[2], task[4] = agent[0], answered
                    life.move(answered, RequestStatus.IN_REVIEW)
                    decided = add(answered, _lognormal(rng, REVIEW_WORK, self.pace[agent[0]]))
                    decision = "approve" if rng.random() < AFTER_INFO_APPROVE else "reject"
                if decision == "reject":
                    reason = rng.choice(REJECTIONS)
                    life.decide(task, decided, agent, "reject", reason)
                    life.finish(
                        decided, RequestStatus.REJECTED, rejected_outcome(rule.task, reason)
                    )
                    return life
                life.decide(task, decided, agent, "approve")
                first_approver = first_approver or agent
                at = decided
                cancel = False
            elif step == Step.SECOND_APPROVAL:
                life.move(at, rule.status)
                task = life.task(rule.task, at)
                task[3] = first_approver[0] if first_approver else None
                claimed = add(at, _lognormal(rng, SECOND_QUEUE, pressure))
                if cancel:
                    return self._cancel(life, at, claimed, requester)
                second = self._second(first_approver)
                task[2], task[4] = second[0], claimed
                life.event(claimed, second[1], "claimed", SECOND_APPROVAL_TASK)
                life.respond(claimed, second)
                decided = add(claimed, _lognormal(rng, SECOND_WORK))
                if rng.random() >= SECOND_APPROVE:
                    reason = rng.choice(REJECTIONS)
                    life.decide(task, decided, second, "reject", reason)
                    life.finish(
                        decided, RequestStatus.REJECTED, rejected_outcome(rule.task, reason)
                    )
                    return life
                life.decide(task, decided, second, "approve")
                at = decided
                cancel = False
        life.move(at, RequestStatus.APPLYING)
        done = at + rng.randint(*APPLY_SECONDS)
        if rng.random() < P_APPLY_FAILS:
            life.event(done, SYSTEM, "apply_failed", APPLY_FAILURE)
            life.finish(done, RequestStatus.FAILED, failed_outcome(APPLY_FAILURE))
        else:
            life.finish(done, RequestStatus.COMPLETED, KINDS[kind].done_text)
        return life

    def _admin(self, instance_id: int) -> Person:
        people = self.d.admins.get(instance_id) or self.d.all_admins
        return self.rng.choice(people) if people else (0, "instance admin")

    def _second(self, first: Person | None) -> Person:
        picker = self.second.get(first[0]) if first else None
        return picker(self.rng) if picker else self.agent(self.rng)

    def _cancel(self, life: Life, waiting: float, until: float, requester: Person) -> Life:
        """The requester withdraws while the request first waits."""
        at = waiting + int(self.rng.random() * max(until - waiting, 60))
        if life.status.waits_on_customer:  # the SLA clock stood still meanwhile
            life.pauses.append((waiting, at))
        reason = self.rng.choice(CANCELS)
        life.event(at, requester[1], "cancelled", reason)
        life.finish(at, RequestStatus.CANCELLED, cancelled_outcome(requester[1], reason))
        return life

    def _remind(self, life: Life, since: float, answered: float, wait: CustomerWait) -> None:
        """The reminder the workflow sends halfway through a wait still unanswered then."""
        halfway = since + wait.reminder.total_seconds()
        if answered > halfway:
            expiry = datetime.fromtimestamp(since + wait.expiry.total_seconds(), UTC)
            life.event(halfway, SYSTEM, "reminder", wait.reminder_note(expiry))

    def _expire(self, life: Life, since: float, wait: CustomerWait) -> Life:
        expiry = since + wait.expiry.total_seconds()
        self._remind(life, since, expiry, wait)
        life.pauses.append((since, expiry))
        life.event(expiry, SYSTEM, "expired", wait.expired_note)
        life.finish(expiry, RequestStatus.EXPIRED, wait.expired_outcome)
        return life

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
        stamp, clock, created, end = self.stamp, self.clock, life.created, life.end
        first_response, pauses, target = life.first_response, life.pauses, self.d.targets[kind]
        # The request's last projection, as the workflow writes it when the request ends.
        sla = clock.reading(created, target, first_response, end, pauses, end)
        first_due, resolution_due = sla.first_response_due, sla.resolution_due
        assert first_due is not None and resolution_due is not None  # no wait is still open
        resolution = clock.state(created, target.resolution_hours, pauses, end, met_at=end)
        first = clock.state(created, target.first_response_hours, pauses, end, first_response)
        state = request_sla_state(life.status, resolution, first)
        # The SLA state turns breached when the workflow's timer finds a target passed unmet,
        # or at the end when the resolution target was missed.
        breaches = [resolution_due + NOTICED_AFTER] if resolution == SlaState.BREACHED else []
        if first == SlaState.BREACHED:
            breaches.append(first_due + NOTICED_AFTER)
        if breaches and min(breaches) < end:
            at = min(breaches)
            status = life.transitions[bisect_right(life.transitions, (at, "~")) - 1][1]
            life.events.append((at, SYSTEM, "sla_breached", None, status))
            life.events.sort(key=lambda event: event[0])
        elif state == SlaState.BREACHED:  # noticed as the request ends, after its final status
            life.events.append((end, SYSTEM, "sla_breached", None, life.now))
        status, done_state = life.now, TaskState.DONE.value
        counted = (state == SlaState.MET) if status in COUNTED else None
        wait, business = float(sla.customer_wait), sla.figures
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
            state.value, wait, len(events),
        )  # fmt: skip
        durations = (
            None if first_response is None else first_response - created,
            business.first_response,
            end - created,
            business.resolution,
            wait,
            business.customer_wait,
        )  # in MEASURE_COLUMNS order
        figures = (
            number, created_text, end_text, kind.value, console_type.value, status,
            life.responder, *durations, counted, *map(duration_bucket, durations),
        )  # fmt: skip
        return Made(request, figures, tasks, events, status, counted)


def _no_action_text(kind: RequestKind, console_code: str, instance_code: str) -> str:
    return KINDS[kind].no_action_text(console_code, instance_code)
