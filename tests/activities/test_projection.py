"""How the projection mirrors a workflow's snapshot into the database's rows."""

from __future__ import annotations

from dataclasses import fields

from activities.projection import REQUEST_MIRRORS, TASK_MIRRORS
from service.models import Request, Task
from workflows.shared import Projection, TaskSnapshot


def test_every_snapshot_field_with_a_column_of_its_name_is_mirrored() -> None:
    """A field added to the snapshot with a column of the same name cannot be forgotten: the
    request's status (which also closes its status periods) is the one set apart."""
    request_columns = set(Request.__table__.columns.keys())
    shared = {field.name for field in fields(Projection)} & request_columns
    assert shared - {"status"} == set(REQUEST_MIRRORS)
    task_columns = set(Task.__table__.columns.keys())
    assert set(TASK_MIRRORS) <= task_columns
    assert {field.name for field in fields(TaskSnapshot)} & task_columns - {"key", "id"} == set(
        TASK_MIRRORS
    )
