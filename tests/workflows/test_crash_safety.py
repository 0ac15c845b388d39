"""Crash safety with real processes: the worker killed mid-apply, Temporal restarted or down,
and a filing whose web process died before starting its workflow.

The Temporal dev server and the worker run here as child processes of the test, on free
ports, with Temporal's state in a file under the test's tmp directory, so a process can be
killed and started again exactly as an operator's would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.directory import TEST_PAUSE_ENV
from domain.kinds import DEFAULT_POLICY
from domain.vocabulary import RequestKind, RequestStatus
from service import create_app
from service.extensions import db
from service.models import (
    AppliedChange,
    AuditEvent,
    Console,
    IdempotencyKey,
    Instance,
    Request,
    StatusPeriod,
    Task,
    TimelineEvent,
    User,
    utcnow,
    workflow_id_for,
)
from service.temporal import OUTCOME_UNKNOWN, UNREACHABLE, bridge
from tests.conftest import BIN_DIR, ApiClient, Factory, LoopThread, api_token, eventually, free_port
from tests.lifecycle import claim_and_decide, file, flags, task_of, wait_status
from worker.main import STALE_FILING, reconcile
from workflows.request import APPLY_HEARTBEAT

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[2]


class Child:
    """A child process of the test, its output in a log file, always reaped."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log_path = log
        self._log: IO[bytes] = log.open("ab")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM, as an operator or a supervisor stops it; SIGKILL if it hangs."""
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: the process dies on the spot, as in a crash or an OOM kill."""
        if self.running:
            self.process.kill()
        self._reap()

    def _reap(self) -> None:
        self.process.wait()
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30) -> None:
        def output_while_running() -> str:
            if not self.running:
                raise AssertionError(f"{self.name} exited early:\n{self.output()}")
            return self.output()

        eventually(
            output_while_running,
            lambda output: text in output,
            timeout=timeout,
            what=f"{text!r} in the {self.name} log ({self.log_path})",
            show=lambda output: output[-2000:],
        )


class DevServer:
    """The Temporal dev server as a child process, its state in a file that outlives it."""

    def __init__(self, directory: Path, loop: LoopThread) -> None:
        self.directory = directory
        self.loop = loop
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        self.process: Child | None = None
        self._client: Client | None = None

    def start(self) -> None:
        argv = [
            str(BIN_DIR / "temporal"), "server", "start-dev",
            "--ip", HOST,
            "--port", str(self.port),
            "--headless",
            "--db-filename", str(self.directory / "temporal.sqlite3"),
            "--log-level", "error",
        ]  # fmt: skip
        self.process = Child("temporal", argv, dict(os.environ), self.directory / "temporal.log")
        try:
            eventually(self._serving, timeout=30, what=f"the Temporal dev server on {self.address}")
        except BaseException:
            self.process.stop()
            raise

    def _serving(self) -> bool:
        assert self.process is not None
        if not self.process.running:
            raise AssertionError(f"the dev server exited:\n{self.process.output()}")
        try:
            return bool(self.loop.run(self.client().service_client.check_health(), timeout=5))
        except Exception:  # not listening yet, or still starting its services
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def client(self) -> Client:
        """A client of this server, kept across restarts (it reconnects by itself)."""
        if self._client is None:
            self._client = self.loop.run(Client.connect(self.address), timeout=5)
        return self._client

    def pollers(self, task_queue: str) -> int:
        """How many workers poll the task queue for workflow and for activity tasks (the min)."""

        async def count(kind: TaskQueueType.ValueType) -> int:
            answer = await self.client().workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace="default",
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=kind,
                )
            )
            return len(answer.pollers)

        kinds = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
        return min(self.loop.run(count(kind), timeout=10) for kind in kinds)


@pytest.fixture
def dev_server(tmp_path: Path, loop_thread: LoopThread) -> Iterator[DevServer]:
    """A Temporal dev server of this test's own, with its state in a file."""
    server = DevServer(tmp_path, loop_thread)
    server.start()
    yield server
    server.stop()


@contextmanager
def web_app(base_config: dict[str, Any], address: str, task_queue: str) -> Iterator[Flask]:
    """The web app on the test database, talking to the Temporal at `address`."""
    web = create_app(
        {**base_config, "TEMPORAL_ADDRESS": address, "TEMPORAL_TASK_QUEUE": task_queue}
    )
    try:
        yield web
    finally:
        with web.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def stack_app(app: Flask, dev_server: DevServer, base_config: dict[str, Any]) -> Iterator[Flask]:
    """The web app against this test's dev server; `app` empties the database afterwards."""
    with web_app(base_config, dev_server.address, app.config["TEMPORAL_TASK_QUEUE"]) as web:
        yield web


@pytest.fixture
def api_on(stack_app: Flask) -> Callable[[str], ApiClient]:
    """`api_on("username")`: an API client of `stack_app` signed in as that user."""

    def signed_in(username: str) -> ApiClient:
        client = stack_app.test_client()
        return ApiClient(client, api_token(client, username))

    return signed_in


@pytest.fixture
def start_worker(
    stack_app: Flask, dev_server: DevServer, base_config: dict[str, Any], tmp_path: Path
) -> Iterator[Callable[..., Child]]:
    """`start_worker(**env)`: `python -m worker` as a child process, as deployed."""
    started: list[Child] = []
    task_queue = stack_app.config["TEMPORAL_TASK_QUEUE"]

    def start(**extra_env: str) -> Child:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINKDESK_")}
        env.update(
            LINKDESK_DATABASE_URL=base_config["DATABASE_URL"],
            LINKDESK_SECRET_KEY=base_config["SECRET_KEY"],
            LINKDESK_VAR_DIR=str(tmp_path / "var"),
            LINKDESK_TEMPORAL_ADDRESS=dev_server.address,
            LINKDESK_TEMPORAL_TASK_QUEUE=task_queue,
            **extra_env,
        )
        log = tmp_path / f"worker-{len(started) + 1}.log"
        worker = Child("worker", [sys.executable, "-m", "worker"], env, log)
        started.append(worker)
        worker.wait_for_output("worker polling task queue")
        return worker

    yield start
    for worker in reversed(started):
        worker.stop()


def count(app: Flask, model: type[Any], *where: Any) -> int:
    """How many rows of `model` match."""
    with app.app_context():
        query = select(func.count()).select_from(model).where(*where)
        return int(db.session.execute(query).scalar_one())


def apply_starts(server: DevServer, request_id: str) -> list[tuple[int, timedelta]]:
    """Each start of the apply activity in the history: its attempt, and how long after it
    was scheduled (the server records only the attempt that finished)."""
    handle = server.client().get_workflow_handle(workflow_id_for(request_id))
    history = server.loop.run(handle.fetch_history())
    scheduled = {
        e.event_id: e.event_time.ToDatetime()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name
        == "apply_relationship_change"
    }
    return [
        (started.attempt, e.event_time.ToDatetime() - scheduled[started.scheduled_event_id])
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and (started := e.activity_task_started_event_attributes).scheduled_event_id in scheduled
    ]


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
def test_worker_killed_during_apply_changes_the_directory_exactly_once(
    point: str,
    app: Flask,
    demo_directory: Factory,
    api_on: Callable[[str], ApiClient],
    start_worker: Callable[..., Child],
    dev_server: DevServer,
) -> None:
    doomed = start_worker(**{TEST_PAUSE_ENV: f"{point}:120"})
    partner, agent = api_on("pacct"), api_on("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    assert wait_status(partner, request_id, "awaiting_agent")["status"] == "awaiting_agent"
    approved = claim_and_decide(agent, request_id, "review", "approve")
    assert approved.json["status"] == "applying", approved.json

    doomed.wait_for_output(f"holding the apply {point}")
    doomed.kill()
    markers = count(app, AppliedChange, AppliedChange.request_id == request_id)
    # Killed after the commit, the change is in; before it, the transaction died with the process.
    assert markers == (1 if point == "after_commit" else 0)

    start_worker()
    done = wait_status(partner, request_id, "completed", timeout=45)
    assert done["status"] == "completed", done
    assert done["outcome"] == "Done: the link is established."
    assert flags(app, "ACCT-01", "BETA") == (True, True, True)
    assert count(app, AppliedChange, AppliedChange.request_id == request_id) == 1
    audited = count(
        app, AuditEvent, AuditEvent.action == "relationship.set", AuditEvent.comment == request_id
    )
    assert audited == 1
    ((attempt, after),) = apply_starts(dev_server, request_id)
    assert attempt == 2  # the retry after the kill is the attempt that finished
    # Retried once the heartbeat timeout noticed the dead worker, well before the 30 s
    # start-to-close timeout would have.
    assert APPLY_HEARTBEAT < after < timedelta(seconds=25)


def test_temporal_restarted_mid_request_carries_on(
    app: Flask,
    demo_directory: Factory,
    api_on: Callable[[str], ApiClient],
    start_worker: Callable[..., Child],
    dev_server: DevServer,
) -> None:
    worker = start_worker()
    partner, agent = api_on("pacct"), api_on("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    assert wait_status(partner, request_id, "awaiting_agent")["status"] == "awaiting_agent"
    task = task_of(agent, request_id, "review")

    dev_server.stop()
    # Reads come from the database and keep working; actions say Temporal is away.
    assert partner.get(f"/api/v1/requests/{request_id}").json["status"] == "awaiting_agent"
    refused = agent.post(f"/api/v1/tasks/{task['id']}/claim")
    assert refused.status_code == 503
    assert refused.json["error"]["code"] == "unavailable"
    assert refused.json["error"]["message"] == UNREACHABLE
    assert refused.headers["Retry-After"] == "2"

    dev_server.start()
    queue = app.config["TEMPORAL_TASK_QUEUE"]
    eventually(
        lambda: dev_server.pollers(queue),
        lambda pollers: pollers > 0,
        timeout=30,
        what="the worker to poll the restarted server",
    )
    assert worker.running
    # "Nothing was changed": the refused claim did not land later either.
    assert task_of(agent, request_id, "review")["state"] == "open"
    approved = claim_and_decide(agent, request_id, "review", "approve")
    assert approved.status_code == 200, approved.json
    done = wait_status(partner, request_id, "completed", timeout=20)
    assert done["status"] == "completed", done
    assert flags(app, "ACCT-01", "BETA") == (True, True, True)


@pytest.mark.parametrize("temporal", ["never_up", "stopped"])
def test_filing_while_temporal_is_down_files_nothing(
    temporal: str,
    request: pytest.FixtureRequest,
    app: Flask,
    demo_directory: Factory,
    base_config: dict[str, Any],
) -> None:
    queue = app.config["TEMPORAL_TASK_QUEUE"]
    if temporal == "stopped":  # the web process had a working connection, then lost it
        server: DevServer = request.getfixturevalue("dev_server")
        address = server.address
    else:
        address = f"{HOST}:{free_port()}"
    with web_app(base_config, address, queue) as web:
        if temporal == "stopped":
            with web.app_context():
                assert bridge().is_healthy()
            server.stop()
        client = web.test_client()
        partner = ApiClient(client, api_token(client, "pacct"))
        response = file(partner, "establish_link", "ACCT-01", "BETA")
    assert response.status_code == 503, response.json
    assert response.json["error"]["code"] == "unavailable"
    assert response.json["error"]["message"] == UNREACHABLE
    assert response.headers["Retry-After"] == "2"
    for model in (Request, StatusPeriod, Task, TimelineEvent):
        assert count(app, model) == 0, model.__tablename__


def _store_filing_without_workflow(app: Flask) -> str:
    """Store a request as `file_request` does, as if the web process died before starting it."""
    with app.app_context():
        console = db.session.execute(select(Console).filter_by(code="ACCT-01")).scalar_one()
        instance = db.session.execute(select(Instance).filter_by(code="BETA")).scalar_one()
        requester = db.session.execute(select(User).filter_by(username="pacct")).scalar_one()
        kind = RequestKind.ESTABLISH_LINK
        now = utcnow()
        row = Request(
            kind=kind,
            console_id=console.id,
            instance_id=instance.id,
            requester_id=requester.id,
            reason="filed just before the web process died",
            status=RequestStatus.SUBMITTED,
            open_key=f"{kind.value}:{console.id}:{instance.id}",
            steps=[step.value for step in DEFAULT_POLICY[(kind, console.type)]],
            created_at=now,
            updated_at=now,
        )
        db.session.add(row)
        db.session.flush()
        db.session.add(
            StatusPeriod(request_id=row.id, status=RequestStatus.SUBMITTED, started_at=now)
        )
        db.session.commit()
        return row.public_id


def _age(app: Flask, request_id: str, by: timedelta) -> None:
    with app.app_context():
        row = db.session.execute(select(Request)).scalar_one()
        assert row.public_id == request_id
        row.created_at -= by
        row.updated_at -= by
        db.session.commit()


async def _runs(client: Client, workflow_id: str) -> list[WorkflowExecutionStatus | None]:
    """The status of every run of the workflow ID, as Temporal's visibility lists them."""
    return [
        execution.status
        async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'")
    ]


def test_reconciler_starts_a_filing_left_without_workflow_once(
    request: pytest.FixtureRequest,
    app: Flask,
    demo_directory: Factory,
    api_as: Any,
    temporal_env: WorkflowEnvironment,
    loop_thread: LoopThread,
) -> None:
    client, queue = temporal_env.client, app.config["TEMPORAL_TASK_QUEUE"]
    request_id = _store_filing_without_workflow(app)
    assert loop_thread.run(reconcile(client, app, queue)) == 0  # its filer may still start it
    _age(app, request_id, STALE_FILING + timedelta(seconds=5))

    # Two reconcilers (say two workers) both find it before any workflow has run.
    assert loop_thread.run(reconcile(client, app, queue)) == 1
    assert loop_thread.run(reconcile(client, app, queue)) == 1
    workflow_id = workflow_id_for(request_id)
    eventually(
        lambda: loop_thread.run(_runs(client, workflow_id)), timeout=30, what="the run to be listed"
    )
    assert loop_thread.run(_runs(client, workflow_id)) == [WorkflowExecutionStatus.RUNNING]

    request.getfixturevalue("worker")  # only now does a worker pick the workflow up
    partner = api_as("pacct")
    queued = wait_status(partner, request_id, "awaiting_agent")
    assert queued["status"] == "awaiting_agent"
    assert [e["action"] for e in queued["timeline"]].count("filed") == 1
    assert loop_thread.run(reconcile(client, app, queue)) == 0
    assert loop_thread.run(_runs(client, workflow_id)) == [WorkflowExecutionStatus.RUNNING]


def test_a_filing_cut_in_half_is_started_within_ten_seconds(
    app: Flask,
    demo_directory: Factory,
    api_on: Callable[[str], ApiClient],
    start_worker: Callable[..., Child],
) -> None:
    start_worker()
    request_id = _store_filing_without_workflow(app)
    stored = time.monotonic()
    queued = wait_status(api_on("pacct"), request_id, "awaiting_agent", timeout=10)
    assert queued["status"] == "awaiting_agent"
    assert time.monotonic() - stored < 10


def test_an_action_whose_answer_is_lost_says_so_and_its_retry_attaches_to_it(
    app: Flask,
    demo_directory: Factory,
    api_on: Callable[[str], ApiClient],
    start_worker: Callable[..., Child],
) -> None:
    """The worker dies: a claim reaches Temporal, which holds it until a worker comes back.
    The answer says the outcome is unknown (not "nothing was changed"); the retry with the
    same key, once the worker is back, answers with that very claim, made once."""
    worker = start_worker()
    partner, agent, again = api_on("pacct"), api_on("agent"), api_on("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    task = task_of(agent, request_id, "review")
    worker.kill()

    url, key = f"/api/v1/tasks/{task['id']}/claim", str(uuid.uuid4())
    headers = {**agent.headers, "Idempotency-Key": key}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(agent.client.post, url, headers=headers)
        eventually(lambda: count(app, IdempotencyKey), what="the first call to hold its key")
        in_flight = again.client.post(url, headers={**again.headers, "Idempotency-Key": key})
        assert not first.done()
        unknown = first.result(60)
    assert unknown.status_code == 503, unknown.json
    assert unknown.json["error"]["code"] == "outcome_unknown"
    assert unknown.json["error"]["message"] == OUTCOME_UNKNOWN
    assert unknown.headers["Retry-After"] == "2"
    assert in_flight.status_code == 409, in_flight.json
    assert in_flight.json["error"]["code"] == "in_progress"
    assert in_flight.headers["Retry-After"] == "1"

    start_worker()
    claimed = eventually(
        lambda: agent.client.post(url, headers=headers),
        lambda answer: answer.status_code != 503,
        timeout=30,
        what="the retried claim to be answered",
    )
    assert claimed.status_code == 200, claimed.json
    assert claimed.json["status"] == "in_review"
    assert [t["assignee"] for t in claimed.json["tasks"]] == ["agent"]
    timeline = partner.get(f"/api/v1/requests/{request_id}").json["timeline"]
    assert [e["action"] for e in timeline].count("claimed") == 1
    replayed = agent.client.post(url, headers=headers)
    assert (replayed.status_code, replayed.json) == (200, claimed.json)
    assert replayed.headers["Idempotent-Replayed"] == "true"
