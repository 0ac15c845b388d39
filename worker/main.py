"""The Temporal worker: `python -m worker`. Its own process, never inside the web app.

Connects with the same settings as the web app (service.config and workflows.client), waits
for Temporal if it is not up yet, and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import py_compile
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.directory import DirectoryActivities
from activities.notifications import NotificationActivities
from activities.projection import ProjectionActivities
from domain.vocabulary import RequestStatus
from service import create_app
from service.extensions import db
from service.models import Request, utcnow
from service.requests import start_request_workflow, workflow_input
from workflows.client import TemporalSettings, connect
from workflows.request import RequestWorkflow
from workflows.shared import RequestInput

log = logging.getLogger("linkdesk.worker")
# Activities and local activities run at a time, of each kind. The executor has a thread for
# each, so an activity never waits for a thread with its start-to-close timeout running.
ACTIVITY_SLOTS = 8
# Requests kept in memory between their steps (~0.2 MB each, a sandboxed instance); one that
# was evicted is replayed from its history at its next step. Bounds the worker's memory however
# many requests wait on people.
MAX_CACHED_WORKFLOWS = 500
# A filing whose web process died before starting its workflow is started by the reconciler
# within STALE_FILING + RECONCILE_EVERY (8 s). Its filer gets STALE_FILING to start it first:
# it has learnt by then whether Temporal is reachable (a refused connection fails at once,
# a silent one after LINKDESK_TEMPORAL_RPC_TIMEOUT). A start made twice is a no-op, and the
# check reads the few `submitted` rows from the index on status and filing time.
RECONCILE_EVERY = 2.0  # seconds
STALE_FILING = timedelta(seconds=6)


def compile_sandboxed_modules(workflow_classes: Sequence[type]) -> None:
    """Write the bytecode (.pyc) of the modules Temporal's sandbox imports for every workflow.

    The sandbox imports the workflow classes' modules and their packages anew for each workflow
    it starts or replays (all else they import is passed through). Without a current .pyc each
    of those imports compiles the source again, about half of what loading a workflow costs;
    and Python writes none when PYTHONDONTWRITEBYTECODE is set, as in many container images.
    py_compile writes whatever that setting says. In a read-only tree the worker runs as
    before, only slower.
    """
    names = {
        ".".join(parts[:depth])
        for parts in (cls.__module__.split(".") for cls in workflow_classes)
        for depth in range(1, len(parts) + 1)
    }
    for name in sorted(names):
        source = getattr(sys.modules.get(name), "__file__", None)
        if not source or not source.endswith(".py"):
            continue
        try:
            py_compile.compile(source, cfile=importlib.util.cache_from_source(source), doraise=True)
        except (OSError, py_compile.PyCompileError) as exc:
            log.warning(
                "cannot write the bytecode of %s (%s): each workflow compiles it", name, exc
            )


def activities_of(app: Flask) -> list[Callable[..., Any]]:
    """Every activity LinkDesk's workflows call, bound to the app."""
    directory = DirectoryActivities(app)
    projection = ProjectionActivities(app)
    notifications = NotificationActivities(app)
    return [
        directory.apply_relationship_change,
        projection.project_request,
        projection.check_effect_needed,
        notifications.notify,
    ]


def build_worker(client: Client, app: Flask, task_queue: str) -> Worker:
    """A worker for LinkDesk's workflows and activities on the given task queue."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[RequestWorkflow],
        activities=activities_of(app),
        activity_executor=ThreadPoolExecutor(2 * ACTIVITY_SLOTS),
        max_concurrent_activities=ACTIVITY_SLOTS,
        max_concurrent_local_activities=ACTIVITY_SLOTS,
        max_cached_workflows=MAX_CACHED_WORKFLOWS,
        # On SIGTERM, running activities get this long to finish before they are cancelled.
        graceful_shutdown_timeout=timedelta(seconds=20),
    )


def stale_filings(app: Flask) -> list[RequestInput]:
    """Requests stored but never picked up by a workflow (the filer died before starting it)."""
    with app.app_context():
        cutoff = utcnow() - STALE_FILING
        rows = db.session.execute(
            select(Request).where(
                Request.status == RequestStatus.SUBMITTED,
                Request.projected_seq == 0,
                Request.created_at < cutoff,
            )
        ).scalars()
        return [workflow_input(row) for row in rows]


async def reconcile(client: Client, app: Flask, task_queue: str) -> int:
    """Start the workflows of half-done filings; starting one twice is a no-op."""
    pending = await asyncio.to_thread(stale_filings, app)
    for data in pending:
        log.info("starting the workflow of %s, filed without one", data.request_id)
        await start_request_workflow(client, task_queue, data)
    return len(pending)


async def _reconcile_forever(client: Client, app: Flask, task_queue: str) -> None:
    while True:
        try:
            await reconcile(client, app, task_queue)
        except (RPCError, SQLAlchemyError) as exc:
            log.warning("reconciling filings failed (%s); will retry", exc)
        await asyncio.sleep(RECONCILE_EVERY)


async def _connect_with_retry(settings: TemporalSettings, stop: asyncio.Event) -> Client | None:
    delay = 0.5
    while not stop.is_set():
        try:
            return await connect(settings)
        except (RPCError, RuntimeError) as exc:
            log.warning("Temporal at %s is not reachable (%s); retrying", settings.address, exc)
            try:
                await asyncio.wait_for(stop.wait(), timeout=delay)
            except TimeoutError:
                delay = min(delay * 2, 10.0)
    return None


async def run(app: Flask) -> None:
    """Run the worker until SIGINT or SIGTERM."""
    settings = TemporalSettings.from_config(app.config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    client = await _connect_with_retry(settings, stop)
    if client is None:
        return
    worker = build_worker(client, app, settings.task_queue)
    log.info("worker polling task queue %r on %s", settings.task_queue, settings.address)
    async with worker:
        reconciler = asyncio.create_task(_reconcile_forever(client, app, settings.task_queue))
        await stop.wait()
        reconciler.cancel()
        log.info("stopping: letting running activities finish")


def main() -> None:
    """Entry point of `python -m worker`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    compile_sandboxed_modules([RequestWorkflow])
    # Its SQLite writes give way to the web's, which a person waits on. It serves no requests
    # and signs no cookies: it needs no secret key.
    asyncio.run(run(create_app({"SQLITE_BACKGROUND_WRITER": True}, serving=False)))
