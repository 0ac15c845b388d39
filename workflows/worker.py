"""The Temporal worker: `python -m workflows.worker`. Its own process, never inside the web app.

Connects with the same settings as the web app (service.config and workflows.client), waits
for Temporal if it is not up yet, and stops cleanly on SIGINT or SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

from flask import Flask
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.directory import DirectoryActivities
from workflows.client import TemporalSettings, connect

log = logging.getLogger("linkdesk.worker")
ACTIVITY_THREADS = 16


def build_worker(client: Client, app: Flask, task_queue: str) -> Worker:
    """A worker for LinkDesk's workflows and activities on the given task queue."""
    directory = DirectoryActivities(app)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[],
        activities=[directory.apply_relationship_change],
        activity_executor=ThreadPoolExecutor(ACTIVITY_THREADS),
    )


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
        await stop.wait()
        log.info("stopping: letting running activities finish")


def main() -> None:
    """Entry point of `python -m workflows.worker`."""
    from service import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run(create_app()))


if __name__ == "__main__":
    main()
