"""How the activities are defined for the worker."""

from __future__ import annotations

from flask import Flask
from temporalio.activity import _Definition

from workflows.worker import activities_of


def test_no_activity_is_cancelled_by_an_exception_raised_inside_its_thread(app: Flask) -> None:
    """A cancellation raised inside a worker thread can land between taking the SQLite writers'
    turn and the `try` that gives it back, and leave the worker unable to write (seen under
    load: every projection then waited out its timeout). Each activity runs to its end."""
    definitions = [_Definition.must_from_callable(fn) for fn in activities_of(app)]
    assert {d.name for d in definitions} == {
        "apply_relationship_change",
        "project_request",
        "check_effect_needed",
        "notify",
    }
    assert all(d.no_thread_cancel_exception for d in definitions)
