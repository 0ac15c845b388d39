"""Applying a completed request's change to the directory: exactly once, or a clear failure."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.directory import DirectoryActivities
from service.directory import relationship_between
from service.extensions import db
from service.models import AppliedChange, AuditEvent, Console, Instance, utcnow
from tests.conftest import Factory
from workflows.shared import ApplyChange


def ids(app: Flask, console: str, instance: str) -> tuple[int, int]:
    with app.app_context():
        c = db.session.execute(select(Console).filter_by(code=console)).scalar_one()
        i = db.session.execute(select(Instance).filter_by(code=instance)).scalar_one()
        return c.id, i.id


def flags(app: Flask, console_id: int, instance_id: int) -> tuple[bool, bool]:
    with app.app_context():
        rel = relationship_between(
            db.session.get_one(Console, console_id), db.session.get_one(Instance, instance_id)
        )
        return rel.access_enabled, rel.linked


@pytest.mark.parametrize(
    ("kind", "before", "after"),
    [
        ("enable_access", (False, True), (True, True)),
        ("enable_access", (False, False), (True, False)),
        ("establish_link", (True, False), (True, True)),
        ("dissociate_link", (True, True), (False, False)),
    ],
)
def test_each_kind_sets_its_flags(
    app: Flask,
    demo_directory: Factory,
    kind: str,
    before: tuple[bool, bool],
    after: tuple[bool, bool],
) -> None:
    demo_directory.relationship("ACCT-01", "OMEGA", access_enabled=before[0], linked=before[1])
    console_id, instance_id = ids(app, "ACCT-01", "OMEGA")
    change = ApplyChange("REQ-000001", kind, console_id, instance_id, "agent1")
    result = ActivityEnvironment().run(DirectoryActivities(app).apply_relationship_change, change)
    assert (result.access_enabled, result.linked) == after
    assert result.applied_now is True
    assert flags(app, console_id, instance_id) == after


def test_a_retry_applies_nothing_twice(app: Flask, demo_directory: Factory) -> None:
    console_id, instance_id = ids(app, "ACCT-01", "GAMMA")
    activities = DirectoryActivities(app)
    change = ApplyChange("REQ-000002", "enable_access", console_id, instance_id, "agent1")
    first = ActivityEnvironment().run(activities.apply_relationship_change, change)
    # Someone disables access again through another request; the retry must not undo that.
    demo_directory.relationship("ACCT-01", "GAMMA", access_enabled=False, linked=False)
    retry = ActivityEnvironment().run(activities.apply_relationship_change, change)
    assert first.applied_now is True and retry.applied_now is False
    assert (retry.access_enabled, retry.linked) == (True, False)  # what the first call did
    assert flags(app, console_id, instance_id) == (False, False)
    with app.app_context():
        markers = db.session.execute(select(func.count()).select_from(AppliedChange)).scalar()
        audited = db.session.execute(
            select(func.count()).where(AuditEvent.comment == "REQ-000002")
        ).scalar()
    assert (markers, audited) == (1, 1)


def test_a_removed_instance_is_a_permanent_failure(app: Flask, demo_directory: Factory) -> None:
    console_id, instance_id = ids(app, "ACCT-01", "OMEGA")
    with app.app_context():
        db.session.get_one(Instance, instance_id).removed_at = utcnow()
        db.session.commit()
    change = ApplyChange("REQ-000003", "establish_link", console_id, instance_id, "agent1")
    with pytest.raises(ApplicationError) as failure:
        ActivityEnvironment().run(DirectoryActivities(app).apply_relationship_change, change)
    assert failure.value.non_retryable is True
    assert "instance was removed" in str(failure.value)
