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
from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from service.errors import OutcomeUnknown, Unavailable
from workflows.client import TemporalSettings, connect

T = TypeVar("T")
RETRY_AFTER = 2  # seconds a caller is asked to wait before trying again
UNREACHABLE = "Temporal is not reachable right now; nothing was changed. Try again shortly."
OUTCOME_UNKNOWN = (
    "Temporal did not answer in time: the action may or may not have been applied. "
    "Retry with the same Idempotency-Key to learn which."
)


def unreachable() -> Unavailable:
    """The answer when nothing was sent to Temporal, so nothing changed."""
    return Unavailable(UNREACHABLE, headers={"Retry-After": str(RETRY_AFTER)})


def outcome_unknown() -> OutcomeUnknown:
    """The answer when an action was sent to Temporal but its answer never came back."""
    return OutcomeUnknown(OUTCOME_UNKNOWN, headers={"Retry-After": str(RETRY_AFTER)})


# RPC failures that leave open whether the server acted on the call.
UNCERTAIN = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.UNKNOWN,
        RPCStatusCode.INTERNAL,
    }
)


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
                raise unreachable() from exc
        return self._client

    def call(self, action: Callable[[Client], Awaitable[T]], timeout: float | None = None) -> T:
        """Run `action(client)`, which only reads, on this process's Temporal loop and return
        its result.

        Raises `Unavailable` when Temporal cannot be reached in time.
        """

        async def run() -> T:
            return await action(await self._connected())

        future = asyncio.run_coroutine_threadsafe(run(), self._loop_for_this_process())
        try:
            return future.result(self._limit(timeout))
        except FutureTimeout as exc:
            future.cancel()
            raise unreachable() from exc
        except RPCError as exc:
            if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                raise unreachable() from exc
            raise

    def act(self, action: Callable[[Client], Awaitable[T]], timeout: float | None = None) -> T:
        """Run `action(client)`, which changes something (starts a workflow, sends an update),
        and return its result.

        Says "nothing was changed" (`Unavailable`) only when that is certain: Temporal was not
        reachable before the action was sent (a health check without retries goes first, and
        a refused connection fails it at once). Once the action is sent, a lost or late answer
        is `OutcomeUnknown`: the action may have been applied, or may be applied later (an
        Update waits in Temporal for the worker to come back).
        """
        sent = threading.Event()

        async def run() -> T:
            client = await self._connected()
            health = client.service_client.check_health  # never retried: fails at once
            if not await health(timeout=timedelta(seconds=self.settings.rpc_timeout)):
                raise unreachable()
            sent.set()
            return await action(client)

        future = asyncio.run_coroutine_threadsafe(run(), self._loop_for_this_process())
        try:
            return future.result(self._limit(timeout))
        except FutureTimeout as exc:
            future.cancel()
            raise (outcome_unknown() if sent.is_set() else unreachable()) from exc
        except RPCTimeoutOrCancelledError as exc:  # the SDK gave up waiting for the answer
            raise (outcome_unknown() if sent.is_set() else unreachable()) from exc
        except RPCError as exc:
            if exc.status not in UNCERTAIN:
                raise
            raise (outcome_unknown() if sent.is_set() else unreachable()) from exc

    def _limit(self, timeout: float | None) -> float:
        return timeout if timeout is not None else self.settings.rpc_timeout * 2

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
