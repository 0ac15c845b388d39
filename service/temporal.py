"""The web process's bridge to the async Temporal client.

Flask views are synchronous and gunicorn forks its workers, while the Temporal client is
async, bound to one event loop, and does not survive a fork. So each process owns one event
loop running in a daemon thread and one client on that loop, both created on first use after
the fork (never at import time); views hand coroutines to that loop and wait for the answer.
No request creates a loop or a connection of its own.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from typing import TypeVar

from flask import current_app
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from service.errors import Unavailable
from workflows.client import TemporalSettings, connect

T = TypeVar("T")
UNREACHABLE = "Temporal is not reachable right now; nothing was changed. Try again shortly."


class TemporalBridge:
    """One event-loop thread and one lazily connected Temporal client per process."""

    def __init__(self, settings: TemporalSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Client | None = None

    def _loop_for_this_process(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._pid != os.getpid() or self._loop is None:
                # First use in this process (or first use after a fork): anything inherited
                # from the parent belongs to a thread that does not exist here.
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="temporal", daemon=True)
                thread.start()
                self._loop, self._client, self._pid = loop, None, os.getpid()
            return self._loop

    async def _connected(self) -> Client:
        # Runs on the loop thread only, so no lock is needed around the check.
        if self._client is None:
            try:  # dial now: a lazy client raises a bare RuntimeError at its first call
                self._client = await connect(self.settings)
            except RuntimeError as exc:  # the SDK's "Failed client connect"; retried next call
                raise Unavailable(UNREACHABLE) from exc
        return self._client

    def call(self, action: Callable[[Client], Awaitable[T]], timeout: float | None = None) -> T:
        """Run `action(client)` on this process's Temporal loop and return its result.

        Raises `Unavailable` when Temporal cannot be reached in time.
        """

        async def run() -> T:
            return await action(await self._connected())

        limit = timeout if timeout is not None else self.settings.rpc_timeout * 2
        future = asyncio.run_coroutine_threadsafe(run(), self._loop_for_this_process())
        try:
            return future.result(limit)
        except FutureTimeout as exc:
            future.cancel()
            raise Unavailable(UNREACHABLE) from exc
        except RPCError as exc:
            if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise Unavailable(UNREACHABLE) from exc
            raise

    def is_healthy(self, timeout: float = 3.0) -> bool:
        """Whether the Temporal frontend answers a health check within the timeout."""

        async def check(client: Client) -> bool:
            return await client.service_client.check_health(timeout=timedelta(seconds=timeout))

        try:
            return self.call(check, timeout=timeout + 1)
        except (Unavailable, RPCError, RuntimeError):
            return False


def bridge() -> TemporalBridge:
    """The Temporal bridge of the current app."""
    return current_app.extensions["linkdesk.temporal"]
