"""A repeatable chaos campaign: LinkDesk's processes killed under load, then the damage counted.

    make chaos                                                  # 3 minutes on SQLite
    make chaos CHAOS_MINUTES=2 CHAOS_SEED=7 \\
        CHAOS_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/linkdesk_chaos

Starts the Temporal dev server, the worker and the web app (gunicorn) with the command lines of
`linkdesk up`, under a supervisor that starts each again a second after it dies
(`bench.stack.SupervisedStack`), on a fresh state directory, and on SQLite or on the database
given (whose `public` schema is dropped first). Then, for the set duration:

- clients work through the REST API with real tokens, each on its own thread: the three demo
  partners file requests of every kind, answer questions, cancel and comment; an instance
  admin of the campaign's companies consents and files dissociations; two agents claim and
  decide reviews and second approvals; the manager gives second approvals and cancels. Each
  retries a 503 or a lost connection as a careful client would (backing off, with the same
  `Idempotency-Key` on every attempt of one action), and every answer is recorded;
- a chaos thread kills, at seeded random intervals and in a seeded order, with SIGKILL: one
  gunicorn worker process, the whole web app, the worker, or the Temporal server; after each
  kill it waits until the killed part serves again before it draws the next.

Then it lets the system settle and checks the database and Temporal against what the clients
were told (see `assess`): lost, stuck and doubled work, inconsistencies, 5xx answers other than
503, and 503s by error code, with the recovery time after each kill. It prints a summary and
exits 1 when anything was lost, stuck, doubled or inconsistent, or a 5xx other than 503 was
answered. The seed fixes the kill schedule and every client's choices; a shared machine's
timing does the rest, so two runs with one seed are alike, not identical.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import signal
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.stack import HOST, SupervisedStack

# The demo sign-ins (service/demo/directory.py) and the campaign's own instance admin.
PARTNERS = {"partner-acct": "ACCT-01", "partner-var": "VAR-01", "partner-mgmt": "MGMT-01"}
AGENTS = ("agent1", "agent2")
MANAGER = "manager"
DEMO_PASSWORD = "demo"
CONSENTER = "chaos-admin"
CONSENTER_PASSWORD = "chaos-admin-password"
# The campaign's companies: related to no console (to enable access or link), and linked to
# every demo console with access (to dissociate).
FRESH = tuple(f"CHAOS-F{n:04d}" for n in range(150))
LINKED = tuple(f"CHAOS-L{n:04d}" for n in range(60))

THINK = (0.25, 0.7)  # seconds a client waits between two of its steps
# Seconds a client keeps retrying one action before it gives up: longer than the lease of an
# Idempotency-Key whose web process died (60 s), after which a retry takes the key over.
RETRY_FOR = 90.0
TIMEOUT = 30.0  # seconds a client waits for one answer
KILLS = ("web_worker", "web", "worker", "temporal")
# The actions whose success shows a killed part serves again: any answer for the web app
# (None), a workflow update for the worker, a filing or an update for Temporal.
UPDATES = frozenset({"claim", "complete", "respond", "cancel"})
RECOVERED_BY: dict[str, frozenset[str] | None] = {
    "web_worker": None,
    "web": None,
    "worker": UPDATES,
    "temporal": UPDATES | {"file"},
}
TERMINAL = frozenset(
    {"completed", "rejected", "cancelled", "expired", "no_action_needed", "failed"}
)
# A request that properly waits has an unfinished task of this type.
WAITS_ON = {
    "awaiting_consent": "consent",
    "awaiting_agent": "review",
    "in_review": "review",
    "awaiting_requester": "info",
    "awaiting_second_approval": "second_approval",
}
DECISIONS = frozenset({"approve", "reject", "request_info", "grant", "decline"})
SYSTEM = "LinkDesk"  # the workflow's own timeline entries


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# Records -----------------------------------------------------------------------------------


@dataclass
class Answer:
    """One HTTP attempt and what came of it (`status` None: no answer, `code` says why)."""

    actor: str
    action: str
    key: str
    attempt: int
    sent: float  # seconds since the campaign started
    answered: float
    status: int | None
    code: str | None  # the error body's code, or the exception of a lost connection


@dataclass
class Action:
    """One thing a client did, all its attempts together, and the answer it ended with."""

    actor: str
    action: str  # file, claim, complete, respond, cancel, comment
    key: str  # its Idempotency-Key
    request: str | None = None  # the request's public ID, once known
    task: int | None = None
    decision: str | None = None
    triple: tuple[str, str, str] | None = None  # (kind, console, instance) of a filing
    text: str | None = None  # the comment, answer or reason sent
    statuses: list[int | None] = field(default_factory=list)
    body: Any = None  # the last answer's JSON

    @property
    def final(self) -> int | None:
        """The status the client ended with (None: it never got an answer)."""
        return self.statuses[-1] if self.statuses else None

    @property
    def acknowledged(self) -> bool:
        """The server said it was done: 200 or 201, or for a filing retried after a lost
        answer, 409 naming the open request the first attempt made."""
        if self.final in (200, 201):
            return True
        retried = self.action == "file" and len(self.statuses) > 1 and self.final == 409
        return retried and self.request is not None


@dataclass
class Kill:
    """One kill of the chaos thread."""

    kind: str
    at: float
    pid: int
    recovered_after: float | None = None


class Run:
    """What the campaign's threads share: the clock, the records and the stop signal."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.answers: list[Answer] = []
        self.actions: list[Action] = []
        self.kills: list[Kill] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def now(self) -> float:
        return time.monotonic() - self.started

    def record(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def recovered(self, kill: Kill) -> float | None:
        """Seconds from the kill until the first success sent after it through the killed
        part (see RECOVERED_BY), or None while there is none."""
        return recovery_after(kill, self.answers)


def recovery_after(kill: Kill, answers: Iterable[Answer]) -> float | None:
    """Seconds from the kill until the first success sent after it through the killed part."""
    through = RECOVERED_BY[kill.kind]
    times = [
        answer.answered - kill.at
        for answer in answers
        if answer.sent >= kill.at
        and answer.status is not None
        and 200 <= answer.status < 300
        and (through is None or answer.action in through)
    ]
    return min(times, default=None)


# Clients -----------------------------------------------------------------------------------


class Client:
    """One user's API client on its own keep-alive connection, retrying as a careful client:
    503s and lost connections again and again for `RETRY_FOR` seconds, backing off, with the
    same Idempotency-Key."""

    def __init__(self, run: Run, port: int, username: str, token: str) -> None:
        self.run = run
        self.port = port
        self.username = username
        self.token = token
        self._connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _send(
        self, method: str, path: str, body: Any, key: str
    ) -> tuple[int | None, Any, str | None, float | None]:
        headers = {"Accept": "application/json", "Authorization": f"Bearer {self.token}"}
        data = None
        if method == "POST":
            headers["Idempotency-Key"] = key
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection(HOST, self.port, timeout=TIMEOUT)
            self._connection.request(method, path, body=data, headers=headers)
            response = self._connection.getresponse()
            text = response.read().decode()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return None, None, type(exc).__name__, None
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            payload = json.loads(text) if text else None
        except ValueError:
            payload = text
        code = None
        if response.status >= 400 and isinstance(payload, dict):
            code = (payload.get("error") or {}).get("code")
        elif response.status >= 400:
            code = "not_json"
        retry_after = response.getheader("Retry-After")
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        return response.status, payload, code, wait

    def call(self, action: str, method: str, path: str, body: Any = None) -> tuple[Any, Action]:
        """Send one action, retried while it answers 503, a 409 with `Retry-After` or nothing;
        its last JSON answer."""
        done = Action(self.username, action, uuid.uuid4().hex)
        deadline = time.monotonic() + RETRY_FOR
        delay = 0.25
        attempt = 0
        while True:
            attempt += 1
            sent = self.run.now()
            status, payload, code, retry_after = self._send(method, path, body, done.key)
            self.run.record(
                Answer(self.username, action, done.key, attempt, sent, self.run.now(), status, code)
            )
            done.statuses.append(status)
            done.body = payload
            # A 503, or a 409 that asks to retry (the key still in flight in a web process
            # that may have died, or a workflow catching up), is tried again.
            if status is not None and status != 503 and not (status == 409 and retry_after):
                return payload, done
            pause = min(retry_after or delay, 5.0)
            if time.monotonic() + pause > deadline:
                return payload, done
            time.sleep(pause * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 4.0)

    def read(self, path: str) -> Any:
        """GET a JSON answer; None unless it is a 200."""
        payload, done = self.call("read", "GET", path)
        return payload if done.final == 200 else None

    def act(self, action: str, path: str, body: Any, **facts: Any) -> Action:
        """POST an action and keep its record."""
        _payload, done = self.call(action, "POST", path, body)
        for name, value in facts.items():
            setattr(done, name, value)
        with self.run.lock:
            self.run.actions.append(done)
        return done


class Companies:
    """The (kind, console, instance) triples left to file, each filed once in a campaign."""

    def __init__(self, rng: random.Random) -> None:
        self._left: dict[tuple[str, str], list[str]] = {}
        for console in PARTNERS.values():
            for kind, codes in (
                ("enable_access", FRESH),
                ("establish_link", FRESH),
                ("dissociate_link", LINKED),
            ):
                self._left[(kind, console)] = rng.sample(codes, len(codes))
        self._lock = threading.Lock()

    def take(self, kind: str, console: str) -> tuple[str, str, str] | None:
        with self._lock:
            left = self._left[(kind, console)]
            return (kind, console, left.pop()) if left else None


class Actor:
    """A client's loop: a step, a pause, until the campaign stops."""

    def __init__(self, run: Run, client: Client, companies: Companies, seed: int) -> None:
        self.run = run
        self.client = client
        self.companies = companies
        self.rng = random.Random(seed)

    def loop(self) -> None:
        while not self.run.stopping.is_set():
            try:
                self.step()
            except Exception as exc:  # the campaign goes on; the report lists it
                with self.run.lock:
                    self.run.errors.append(f"{self.client.username}: {exc!r}")
            self.run.stopping.wait(self.rng.uniform(*THINK))
        self.client.close()

    def step(self) -> None:
        raise NotImplementedError

    def pick(self, path: str, keep: Callable[[dict[str, Any]], bool] = lambda _: True) -> Any:
        """A random item of a list answer that `keep` keeps, or None."""
        page = self.client.read(path)
        items = [item for item in (page or {}).get("items", []) if keep(item)]
        return self.rng.choice(items) if items else None

    def file(self, kind: str, console: str) -> None:
        triple = self.companies.take(kind, console)
        if triple is None:
            return
        body = {"kind": kind, "console_id": console, "instance_id": triple[2], "reason": "chaos"}
        done = self.client.act("file", "/api/v1/requests", body, triple=triple)
        if done.final == 201:
            done.request = done.body["id"]
        elif done.final == 409 and isinstance(done.body, dict):
            named = (done.body["error"].get("fields") or {}).get("open_request_id") or [None]
            done.request = named[0]

    def answer_question(self) -> None:
        mine = self.pick(
            "/api/v1/requests?status=awaiting_requester&per_page=50",
            lambda r: r["requester"] == self.client.username,
        )
        if mine is not None:
            text = f"answer {uuid.uuid4().hex}"
            path = f"/api/v1/requests/{mine['id']}/response"
            self.client.act("respond", path, {"answer": text}, request=mine["id"], text=text)

    def cancel_one(self) -> None:
        target = self.pick(
            "/api/v1/requests?status=open&per_page=50", lambda r: r["status"] != "applying"
        )
        if target is not None:
            text = f"cancel {uuid.uuid4().hex}"
            path = f"/api/v1/requests/{target['id']}/cancel"
            self.client.act("cancel", path, {"reason": text}, request=target["id"], text=text)

    def comment(self, internal: bool = False) -> None:
        target = self.pick("/api/v1/requests?per_page=30")
        if target is not None:
            text = f"{'note' if internal else 'comment'} {uuid.uuid4().hex}"
            path = f"/api/v1/requests/{target['id']}/comments"
            body = {"body": text, "internal": internal}
            self.client.act("comment", path, body, request=target["id"], text=text)

    def decide(self, task: dict[str, Any], choices: dict[str, float]) -> None:
        decision = self.rng.choices(list(choices), weights=list(choices.values()))[0]
        text = f"{decision} {uuid.uuid4().hex}"
        self.client.act(
            "complete",
            f"/api/v1/tasks/{task['id']}/complete",
            {"decision": decision, "comment": text},
            request=task["request_id"],
            task=task["id"],
            decision=decision,
            text=text,
        )


class Partner(Actor):
    """Files requests of every kind for its console, answers questions, cancels, comments."""

    KINDS = {"enable_access": 0.4, "establish_link": 0.35, "dissociate_link": 0.25}

    def step(self) -> None:
        draw = self.rng.random()
        if draw < 0.45:
            kind = self.rng.choices(list(self.KINDS), weights=list(self.KINDS.values()))[0]
            self.file(kind, PARTNERS[self.client.username])
        elif draw < 0.65:
            self.answer_question()
        elif draw < 0.73:
            self.cancel_one()
        elif draw < 0.88:
            self.comment()
        else:
            self.pick("/api/v1/requests?per_page=20")


class Consenter(Actor):
    """The campaign companies' instance admin: consents, and files dissociations."""

    def step(self) -> None:
        draw = self.rng.random()
        if draw < 0.6:
            task = self.pick("/api/v1/tasks?type=consent&per_page=50")
            if task is not None:
                self.decide(task, {"grant": 0.85, "decline": 0.15})
        elif draw < 0.8:
            self.file("dissociate_link", self.rng.choice(list(PARTNERS.values())))
        elif draw < 0.9:
            self.answer_question()
        else:
            self.comment()


class Agent(Actor):
    """Claims review and second-approval tasks and decides them; now and then a note."""

    REVIEW = {"approve": 0.75, "reject": 0.1, "request_info": 0.15}
    SECOND = {"approve": 0.9, "reject": 0.1}
    QUEUE = "/api/v1/tasks?assignee=unassigned&per_page=30"

    def step(self) -> None:
        if self.rng.random() < 0.05:
            self.comment(internal=True)
            return
        task = self.pick("/api/v1/tasks?assignee=me&per_page=30")
        if task is None:
            task = self.pick(self.QUEUE)
            if task is None:
                return
            claim = self.client.act(
                "claim",
                f"/api/v1/tasks/{task['id']}/claim",
                None,
                request=task["request_id"],
                task=task["id"],
            )
            if claim.final != 200:
                return
        self.decide(task, self.SECOND if task["type"] == "second_approval" else self.REVIEW)


class Manager(Agent):
    """Gives second approvals, and now and then cancels a request."""

    QUEUE = "/api/v1/tasks?assignee=unassigned&type=second_approval&per_page=30"

    def step(self) -> None:
        if self.rng.random() < 0.05:
            self.cancel_one()
        else:
            super().step()


# Chaos -------------------------------------------------------------------------------------


def chaos(
    run: Run, stack: SupervisedStack, rng: random.Random, gap: tuple[float, float], until: float
) -> None:
    """Kill a part at random intervals, each kind in turn in a shuffled order, until `until`;
    after each kill, wait until the killed part serves again before drawing the next."""
    order: list[str] = []
    while not run.stopping.wait(rng.uniform(*gap)):
        if run.now() > until:
            return
        if not order:
            order = list(KILLS)
            rng.shuffle(order)
        kind = order.pop()
        if kind == "web_worker":
            workers = sorted(stack.pids().get("web", [])[1:])
            if not workers:
                continue
            pid = rng.choice(workers)
            stack.kill_pid(pid)
        else:
            pid = stack.kill(kind)
        kill = Kill(kind, run.now(), pid)
        run.kills.append(kill)
        say(f"killed {kind} (PID {pid}) at {kill.at:.1f}s")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not run.stopping.is_set():
            kill.recovered_after = run.recovered(kill)
            if kill.recovered_after is not None:
                say(f"  {kind} serves again after {kill.recovered_after:.1f}s")
                break
            time.sleep(0.2)


# What the database and Temporal hold afterwards ---------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    id: str
    kind: str
    console: str
    instance: str
    status: str
    projected_seq: int


@dataclass(frozen=True)
class TaskRow:
    id: int
    request: str
    type: str
    state: str
    decision: str | None
    completed_by: str | None


@dataclass(frozen=True)
class Event:
    """A person's entry on a request's timeline: a decision, an answer, a comment."""

    request: str
    actor: str
    action: str
    comment: str | None


@dataclass(frozen=True)
class Workflow:
    """A request workflow as Temporal describes it; `seq` from its state query if running."""

    status: str  # RUNNING, COMPLETED, FAILED, ...
    seq: int | None = None


@dataclass
class Snapshot:
    """The state the checks read, taken after the campaign settled."""

    requests: dict[str, RequestRow]
    tasks: list[TaskRow]
    events: list[Event]
    applied: set[str]  # request IDs in applied_changes
    applied_audits: Counter[str]  # relationship changes audited per request ID
    workflows: dict[str, Workflow]  # by request public ID (workflow ID without its prefix)


def read_database(stack: SupervisedStack) -> Snapshot:
    """Requests, tasks, people's timeline entries and applied changes, from the database."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import aliased

    from service import create_app
    from service.extensions import db
    from service.models import (
        AppliedChange,
        AuditEvent,
        Console,
        Instance,
        Request,
        Task,
        TimelineEvent,
        User,
        format_request_id,
    )

    app = create_app(
        {"VAR_DIR": str(stack.var_dir), "DATABASE_URL": stack.database_url}, serving=False
    )
    with app.app_context():
        requests = {
            format_request_id(number): RequestRow(
                format_request_id(number), kind.value, console, instance, status.value, seq
            )
            for number, kind, console, instance, status, seq in db.session.execute(
                select(
                    Request.id,
                    Request.kind,
                    Console.code,
                    Instance.code,
                    Request.status,
                    Request.projected_seq,
                )
                .join(Console, Console.id == Request.console_id)
                .join(Instance, Instance.id == Request.instance_id)
            )
        }
        completer = aliased(User)
        tasks = [
            TaskRow(task_id, format_request_id(number), type_.value, state.value, decision, by)
            for task_id, number, type_, state, decision, by in db.session.execute(
                select(
                    Task.id,
                    Task.request_id,
                    Task.type,
                    Task.state,
                    Task.decision,
                    completer.username,
                ).outerjoin(completer, completer.id == Task.completed_by_id)
            )
        ]
        events = [
            Event(format_request_id(number), actor, action, comment)
            for number, actor, action, comment in db.session.execute(
                select(
                    TimelineEvent.request_id,
                    TimelineEvent.actor,
                    TimelineEvent.action,
                    TimelineEvent.comment,
                ).where(TimelineEvent.actor != SYSTEM)
            )
        ]
        applied = set(db.session.execute(select(AppliedChange.request_id)).scalars())
        audits: Counter[str] = Counter(
            {
                str(reason): count
                for reason, count in db.session.execute(
                    select(AuditEvent.comment, func.count())
                    .where(AuditEvent.action == "relationship.set", AuditEvent.comment.is_not(None))
                    .group_by(AuditEvent.comment)
                )
            }
        )
        db.engine.dispose()
    return Snapshot(requests, tasks, events, applied, audits, {})


def read_workflows(address: str, request_ids: Iterable[str]) -> dict[str, Workflow]:
    """Every request's workflow as Temporal has it, and workflows with no request (orphans)."""
    from temporalio.client import Client
    from temporalio.service import RPCError, RPCStatusCode

    from service.models import workflow_id_for
    from workflows.request import RequestWorkflow

    prefix = workflow_id_for("")

    async def one(client: Client, request_id: str) -> tuple[str, Workflow | None]:
        handle = client.get_workflow_handle(workflow_id_for(request_id))
        try:
            described = await handle.describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return request_id, None
            raise
        status = described.status.name if described.status else "UNKNOWN"
        seq = None
        if status == "RUNNING":
            try:
                seq = (await handle.query(RequestWorkflow.state)).seq
            except RPCError:
                seq = None
        return request_id, Workflow(status, seq)

    async def run() -> dict[str, Workflow]:
        client = await Client.connect(address)
        found: dict[str, Workflow] = {}
        async for execution in client.list_workflows():
            if execution.id.startswith(prefix):
                status = execution.status.name if execution.status else "UNKNOWN"
                found[execution.id.removeprefix(prefix)] = Workflow(status)
        limit = asyncio.Semaphore(16)

        async def bounded(request_id: str) -> tuple[str, Workflow | None]:
            async with limit:
                return await one(client, request_id)

        for request_id, workflow in await asyncio.gather(*map(bounded, request_ids)):
            if workflow is None:
                found.pop(request_id, None)
            else:
                found[request_id] = workflow
        return found

    return asyncio.run(run())


def wait_settled(stack: SupervisedStack, run: Run, timeout: float) -> float:
    """Wait until no request is `submitted` or `applying` and the projection stopped moving
    (two reads 3 s apart alike), or `timeout`; the seconds waited."""
    from sqlalchemy import func, select

    from service import create_app
    from service.extensions import db
    from service.models import Request

    app = create_app(
        {"VAR_DIR": str(stack.var_dir), "DATABASE_URL": stack.database_url}, serving=False
    )
    started = time.monotonic()
    before = None
    with app.app_context():
        while time.monotonic() - started < timeout:
            moving = db.session.execute(
                select(func.count()).where(Request.status.in_(("submitted", "applying")))
            ).scalar_one()
            seqs = db.session.execute(
                select(func.count(), func.coalesce(func.sum(Request.projected_seq), 0))
            ).one()
            db.session.rollback()
            if moving == 0 and tuple(seqs) == before:
                break
            before = tuple(seqs)
            time.sleep(3)
        db.engine.dispose()
    return time.monotonic() - started


# Checks ------------------------------------------------------------------------------------


@dataclass
class Findings:
    """What went wrong, by kind; each entry names the request, task or action."""

    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    server_errors: Counter[int] = field(default_factory=Counter)  # 5xx other than 503
    unavailable: Counter[str] = field(default_factory=Counter)  # 503s by error code
    # Actions answered 503 ("nothing was changed") that were done all the same.
    done_despite_503: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth knowing, not a defect

    @property
    def failed(self) -> bool:
        """Whether the campaign found a defect."""
        return bool(
            self.lost or self.stuck or self.doubled or self.inconsistent or self.server_errors
        )


def assess(actions: list[Action], answers: list[Answer], state: Snapshot) -> Findings:
    """Check what the clients were told against what the database and Temporal hold."""
    found = Findings()
    for answer in answers:
        if answer.status == 503:
            found.unavailable[answer.code or "none"] += 1
        elif answer.status is not None and answer.status >= 500:
            found.server_errors[answer.status] += 1

    requests = state.requests
    by_triple: defaultdict[tuple[str, str, str], list[str]] = defaultdict(list)
    for row in requests.values():
        by_triple[(row.kind, row.console, row.instance)].append(row.id)
    tasks_of: defaultdict[str, list[TaskRow]] = defaultdict(list)
    for task in state.tasks:
        tasks_of[task.request].append(task)
    tasks = {task.id: task for task in state.tasks}
    events = Counter((e.request, e.actor, e.action, e.comment) for e in state.events)

    # Filings: each acknowledged one has its request and workflow, and only one request.
    for act in (a for a in actions if a.action == "file"):
        assert act.triple is not None
        made = by_triple.get(act.triple, [])
        if len(made) > 1:
            found.doubled.append(f"one filing of {act.triple} made {', '.join(sorted(made))}")
        if act.acknowledged:
            if act.final == 409 and 503 not in act.statuses[:-1]:
                found.notes.append(f"{act.key}: filing retried after a lost answer got 409")
            if act.request not in requests:
                found.lost.append(f"{act.request}: acknowledged filing {act.triple} not stored")
            elif act.request not in state.workflows:
                found.lost.append(f"{act.request}: acknowledged filing never got a workflow")
        elif made:
            found.notes.append(
                f"{made[0]}: filed though the client was never told so ({act.statuses})"
            )

    # People's actions the server acknowledged are in the database, once.
    def took_effect(act: Action) -> bool:
        if act.action == "file":
            return act.request in requests
        if act.action == "complete":
            held = tasks.get(act.task or 0)
            return held is not None and (held.decision, held.completed_by) == (
                act.decision,
                act.actor,
            )
        action = {"cancel": "cancelled", "respond": "answered"}.get(act.action)
        return any(
            (request, actor, text) == (act.request, act.actor, act.text)
            and (action is None or kind == action)
            for request, actor, kind, text in events
        )

    decided: Counter[int] = Counter()
    for act in actions:
        if act.action == "complete" and act.acknowledged:
            decided[act.task or 0] += 1
        if act.action == "claim":
            continue
        done = took_effect(act)
        if act.acknowledged and not done and act.action != "file":  # filings: checked above
            found.lost.append(
                f"{act.request}: {act.actor}'s acknowledged {act.action} {act.decision or ''} "
                f"({act.key}) is not in the database"
            )
        if 503 in act.statuses and done and (act.final == 409 or not act.acknowledged):
            found.done_despite_503.append(
                f"{act.request}: {act.action} {act.key} answered {act.statuses}, yet it was done"
            )
    for task_id, n in decided.items():
        if n > 1:
            found.doubled.append(f"task {task_id}: {n} decisions acknowledged")
    for (request, actor, action, text), n in events.items():
        if n > 1 and (action in DECISIONS or action in ("answered", "comment", "note")):
            found.doubled.append(f"{request}: {actor}'s {action} {text!r} is on the timeline {n}x")
    recorded: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for event in state.events:
        recorded[event.request][event.action] += 1
    for request, tasks_here in tasks_of.items():
        closed = Counter(t.decision for t in tasks_here if t.completed_by is not None)
        for decision in DECISIONS:
            if recorded[request][decision] > closed[decision]:
                found.doubled.append(
                    f"{request}: {recorded[request][decision]} {decision} entries for "
                    f"{closed[decision]} task(s) so decided"
                )

    # Applied changes: one per completed request, none for any other.
    for request_id, n in state.applied_audits.items():
        if n > 1:
            found.doubled.append(f"{request_id}: its relationship change was applied {n}x")
    for row in requests.values():
        if row.status == "completed" and row.id not in state.applied:
            found.lost.append(f"{row.id}: completed without its applied change")
        if row.status != "completed" and row.id in state.applied:
            found.inconsistent.append(f"{row.id}: change applied, but the request is {row.status}")

    # Every request ended or properly waits, on a workflow that matches it.
    for row in requests.values():
        workflow = state.workflows.get(row.id)
        unfinished = [t for t in tasks_of[row.id] if t.state != "done"]
        if row.status in TERMINAL:
            if unfinished:
                found.stuck.append(f"{row.id}: {row.status} with task(s) left open")
            if workflow is not None and workflow.status == "RUNNING":
                found.stuck.append(f"{row.id}: {row.status}, but its workflow still runs")
            continue
        expected = WAITS_ON.get(row.status)
        if expected is None or expected not in {t.type for t in unfinished}:
            found.stuck.append(f"{row.id}: {row.status}, waiting on no {expected or 'one'}")
        if workflow is None or workflow.status != "RUNNING":
            status = workflow.status if workflow else "missing"
            found.stuck.append(f"{row.id}: {row.status}, but its workflow is {status}")
        elif workflow.seq != row.projected_seq:
            found.stuck.append(
                f"{row.id}: projection at {row.projected_seq}, workflow at {workflow.seq}"
            )
    for request_id, workflow in state.workflows.items():
        if request_id not in requests:
            found.inconsistent.append(
                f"{request_id}: a {workflow.status} workflow for a request that is not stored"
            )
    return found


# Report ------------------------------------------------------------------------------------


def seconds(values: list[float | None]) -> str:
    """Median and maximum of recovery times; a kill never recovered from counts as such."""
    done = [v for v in values if v is not None]
    text = f"{statistics.median(done):.1f} / {max(done):.1f}" if done else "-"
    missing = len(values) - len(done)
    return text + (f" ({missing} never)" if missing else "")


def summary(run: Run, findings: Findings, facts: dict[str, Any]) -> dict[str, Any]:
    """The figures of a campaign, as the report and RELIABILITY.md give them."""
    kills: defaultdict[str, list[Kill]] = defaultdict(list)
    for kill in run.kills:
        kill.recovered_after = recovery_after(kill, run.answers)
        kills[kill.kind].append(kill)
    acted = Counter(a.action for a in run.actions)
    finals: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for act in run.actions:
        finals[act.action][str(act.final or "no answer")] += 1
    return {
        **facts,
        "kills": {kind: len(kills[kind]) for kind in KILLS},
        "recovery_s": {
            kind: {
                "median": round(statistics.median(done), 2) if done else None,
                "max": round(max(done), 2) if done else None,
                "not_recovered": sum(k.recovered_after is None for k in kills[kind]),
            }
            for kind in KILLS
            for done in [[k.recovered_after for k in kills[kind] if k.recovered_after is not None]]
        },
        "actions": sum(acted.values()),
        "actions_by_kind": dict(acted),
        "final_answers": {kind: dict(counter) for kind, counter in finals.items()},
        "acknowledged": sum(a.acknowledged for a in run.actions),
        "gave_up": sum(a.final in (None, 503) for a in run.actions),
        "http_answers": sum(a.status is not None for a in run.answers),
        "no_answer": dict(Counter(a.code for a in run.answers if a.status is None)),
        "unavailable_503": dict(findings.unavailable),
        "done_despite_503": len(findings.done_despite_503),
        "server_errors_5xx": {str(k): v for k, v in findings.server_errors.items()},
        "lost": len(findings.lost),
        "stuck": len(findings.stuck),
        "doubled": len(findings.doubled),
        "inconsistent": len(findings.inconsistent),
        "client_errors": len(run.errors),
    }


def print_report(figures: dict[str, Any], findings: Findings, run: Run) -> None:
    recoveries = ", ".join(
        f"{kind} {seconds([k.recovered_after for k in run.kills if k.kind == kind])}"
        for kind in KILLS
    )
    rows = [
        ("database", figures["database"]),
        ("date", figures["date"]),
        ("load average (1/5/15 min) at start, end", figures["load"]),
        ("workload / settle", f"{figures['minutes']} min / {figures['settle_s']:.0f} s"),
        ("kills", ", ".join(f"{k} {n}" for k, n in figures["kills"].items())),
        ("restarts by the supervisor", figures["restarts"]),
        ("recovery s, median / max", recoveries),
        (
            "actions (acknowledged, gave up)",
            f"{figures['actions']} ({figures['acknowledged']}, {figures['gave_up']})",
        ),
        ("by kind", ", ".join(f"{k} {n}" for k, n in sorted(figures["actions_by_kind"].items()))),
        ("HTTP answers", figures["http_answers"]),
        ("no answer (connection)", figures["no_answer"] or 0),
        ("503 by code", figures["unavailable_503"] or 0),
        ("actions answered 503 but done", figures["done_despite_503"]),
        ("5xx other than 503", figures["server_errors_5xx"] or 0),
        ("lost", figures["lost"]),
        ("stuck", figures["stuck"]),
        ("doubled", figures["doubled"]),
        ("inconsistent", figures["inconsistent"]),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    for name in ("lost", "stuck", "doubled", "inconsistent", "done_despite_503", "notes"):
        entries = getattr(findings, name)
        if entries:
            print(f"\n{name}:")
            for entry in entries[:50]:
                print(f"  {entry}")
            if len(entries) > 50:
                print(f"  ... and {len(entries) - 50} more")
    if run.errors:
        print("\nclient errors:")
        for error in run.errors[:20]:
            print(f"  {error}")


# The campaign ------------------------------------------------------------------------------


def prepare(stack: SupervisedStack) -> None:
    """The campaign's companies, their relationships and their instance admin."""
    codes = [*FRESH, *LINKED]
    stack.import_instances(codes)
    stack.import_csv(
        "relationships",
        "console,instance,access_enabled,linked",
        [f"{console},{code},true,true" for console in PARTNERS.values() for code in LINKED],
    )
    instances = [arg for code in codes for arg in ("--instance", code)]
    stack.linkdesk(
        "create-user", CONSENTER, "--role", "instance_admin", "--password", CONSENTER_PASSWORD,
        *instances,
    )  # fmt: skip


def token(port: int, username: str, password: str) -> str:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    body = json.dumps({"username": username, "password": password})
    connection.request(
        "POST", "/api/v1/tokens", body=body, headers={"Content-Type": "application/json"}
    )
    answer = connection.getresponse()
    payload = json.loads(answer.read())
    connection.close()
    if answer.status != 201:
        raise RuntimeError(f"no token for {username}: {payload}")
    return str(payload["token"])


def campaign(args: argparse.Namespace) -> int:
    database = "PostgreSQL" if args.database_url else "SQLite"
    facts: dict[str, Any] = {
        "database": database,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": args.seed,
        "minutes": args.minutes,
        "cpus": os.cpu_count(),
    }
    load_start = [round(x, 2) for x in os.getloadavg()]
    say(f"{database}, seed {args.seed}, {args.minutes} min; load average {load_start}")
    rng = random.Random(args.seed)
    with SupervisedStack(args.database_url, args.restart_delay, keep_dir=args.keep) as stack:
        say(f"stack up in {stack.var_dir}; adding the campaign's companies")
        prepare(stack)
        run = Run()
        companies = Companies(random.Random(args.seed))
        port = stack.web_port
        roster: list[tuple[type[Actor], str, str]] = [
            *((Partner, name, DEMO_PASSWORD) for name in PARTNERS),
            (Consenter, CONSENTER, CONSENTER_PASSWORD),
            *((Agent, name, DEMO_PASSWORD) for name in AGENTS),
            (Manager, MANAGER, DEMO_PASSWORD),
        ]
        actors = [
            cls(run, Client(run, port, name, token(port, name, password)), companies, seed)
            for seed, (cls, name, password) in enumerate(roster, start=args.seed * 100)
        ]
        threads = [threading.Thread(target=a.loop, name=a.client.username) for a in actors]
        until = args.minutes * 60
        killer = threading.Thread(
            target=chaos, args=(run, stack, rng, (args.gap_min, args.gap_max), until - 20)
        )
        say(f"workload of {len(actors)} clients for {args.minutes} min, with kills")
        for thread in [*threads, killer]:
            thread.start()
        run.stopping.wait(until)
        run.stopping.set()
        say("workload over; letting the clients finish their retries")
        for thread in [killer, *threads]:
            thread.join()
        deadline = time.monotonic() + 120
        while not stack.ready() and time.monotonic() < deadline:
            time.sleep(0.5)
        settle = wait_settled(stack, run, args.settle)
        say(f"settled for {settle:.0f}s; checking the database and Temporal")
        state = read_database(stack)
        state.workflows = read_workflows(stack.temporal_address, state.requests)
        findings = assess(run.actions, run.answers, state)
        restarts = Counter(exit_.role for exit_ in stack.exits)
        facts.update(
            settle_s=settle,
            requests=len(state.requests),
            restarts=", ".join(f"{role} {restarts[role]}" for role in stack.ROLES),
        )
        load_end = [round(x, 2) for x in os.getloadavg()]
        facts["load"] = f"{load_start} -> {load_end}"
        figures = summary(run, findings, facts)
        print_report(figures, findings, run)
        if args.json:
            with open(args.json, "w") as out:
                json.dump(
                    {
                        "figures": figures,
                        "findings": {
                            name: dict(value) if isinstance(value, Counter) else value
                            for name, value in vars(findings).items()
                        },
                        "kills": [asdict(k) for k in run.kills],
                        "errors": run.errors,
                        "actions": [{**asdict(a), "body": None} for a in run.actions],
                        "answers": [asdict(a) for a in run.answers],
                    },
                    out,
                    indent=2,
                    default=str,
                )
        if args.keep:
            say(f"state and logs kept in {stack.var_dir}")
    return 1 if findings.failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=3.0, help="workload duration")
    parser.add_argument("--seed", type=int, default=1, help="seed of kills and clients")
    parser.add_argument(
        "--database-url",
        help="LinkDesk's database, e.g. PostgreSQL; its public schema is DROPPED first "
        "(default: SQLite in the state directory)",
    )
    parser.add_argument("--gap-min", type=float, default=8.0, help="least seconds between kills")
    parser.add_argument("--gap-max", type=float, default=20.0, help="most seconds between kills")
    parser.add_argument(
        "--restart-delay", type=float, default=1.0, help="seconds before a dead part restarts"
    )
    parser.add_argument("--settle", type=float, default=90.0, help="most seconds to settle")
    parser.add_argument("--json", help="also write the figures and findings to this file")
    parser.add_argument("--keep", action="store_true", help="keep the state directory and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Stopped by SIGTERM (a timeout, say), stop the stack too instead of orphaning it.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(128 + signal.SIGTERM))
    return campaign(args)


if __name__ == "__main__":
    sys.exit(main())
