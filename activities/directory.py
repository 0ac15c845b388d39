"""Directory side effects: applying a completed request's change, exactly once."""

from __future__ import annotations

import logging
import os
import time

from flask import Flask
from sqlalchemy.exc import IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.kinds import KINDS
from domain.vocabulary import RequestKind
from service import admin
from service.directory import relationship_between
from service.extensions import db
from service.models import AppliedChange, Console, Instance
from workflows.activity_interfaces import DirectoryInterface
from workflows.shared import ApplyChange, ApplyResult

log = logging.getLogger(__name__)
# Test-only, off unless set: "before_commit:SECONDS" or "after_commit:SECONDS" holds the apply
# at that point, so tests/workflows/test_crash_safety.py can kill the worker exactly there.
TEST_PAUSE_ENV = "LINKDESK_TEST_APPLY_PAUSE"


class DirectoryActivities(DirectoryInterface):
    """Activities that change the directory; each runs in its own app context."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    @activity.defn(name="apply_relationship_change", no_thread_cancel_exception=True)
    def apply_relationship_change(self, change: ApplyChange) -> ApplyResult:
        """Set the relationship flags a request asks for, once per request ID.

        The `AppliedChange` marker (keyed by request ID), the flags and the audit event
        commit in one transaction, so a retry after a crash either finds the marker and
        changes nothing, or finds nothing done. A console or instance removed meanwhile is
        a permanent failure.
        """
        activity.heartbeat()
        with self.app.app_context():
            try:
                return self._apply(change)
            except IntegrityError:  # a concurrent attempt committed first
                db.session.rollback()
                return self._apply(change)

    def _apply(self, change: ApplyChange) -> ApplyResult:
        done = db.session.get(AppliedChange, change.request_id)
        activity.heartbeat()  # past the wait for the database's write lock
        if done is not None:
            return ApplyResult(bool(done.access_enabled), bool(done.linked), applied_now=False)
        console = db.session.get(Console, change.console_id)
        instance = db.session.get(Instance, change.instance_id)
        if console is None or console.removed_at or instance is None or instance.removed_at:
            missing = "console" if console is None or console.removed_at else "instance"
            raise ApplicationError(
                f"The {missing} was removed from the directory; nothing was changed.",
                type="DirectoryObjectRemoved",
                non_retryable=True,
            )
        kind = RequestKind(change.kind)
        current = relationship_between(console, instance)
        access, linked = KINDS[kind].target(current.access_enabled, current.linked)
        row = admin.set_relationship(
            console,
            instance,
            access_enabled=access,
            linked=linked,
            actor=change.actor,
            reason=change.request_id,
        )
        db.session.add(
            AppliedChange(
                request_id=change.request_id,
                kind=kind,
                relationship_id=row.id,
                access_enabled=row.access_enabled,
                linked=row.linked,
            )
        )
        _test_pause("before_commit")
        db.session.commit()
        _test_pause("after_commit")
        return ApplyResult(bool(row.access_enabled), bool(row.linked), applied_now=True)


def _test_pause(point: str) -> None:
    """Hold the apply at `point` when the test-only pause asks for it."""
    where, _, seconds = os.environ.get(TEST_PAUSE_ENV, "").partition(":")
    if where == point:
        log.warning("%s: holding the apply %s for %s s", TEST_PAUSE_ENV, point, seconds)
        time.sleep(float(seconds))
