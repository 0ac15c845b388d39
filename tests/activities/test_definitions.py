"""How the activities are defined for the worker."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask
from sqlalchemy import event
from temporalio.testing import ActivityEnvironment

from service.extensions import db
from service.models import utcnow
from tests.conftest import Factory, waiting_request
from worker.main import activities_of
from workflows import activity_interfaces
from workflows.shared import ApplyChange, EffectCheck, Notify, Projection


def run_cancelled_at_its_first_statement(app: Flask, fn: Callable[..., Any], arg: Any) -> Any:
    """Run an activity in a thread of its own, as the worker does, and cancel it as it sends its
    first SQL statement; return what it returns."""
    env = ActivityEnvironment()
    cancelled: list[str] = []

    def cancel(*_: Any) -> None:
        if not cancelled:
            cancelled.append(fn.__name__)
            env.cancel()

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", cancel)
    try:
        with ThreadPoolExecutor(1) as thread:
            result = thread.submit(env.run, fn, arg).result(30)
    finally:
        event.remove(engine, "before_cursor_execute", cancel)
    assert cancelled == [fn.__name__], "the activity sent no SQL statement"
    return result


def test_no_activity_is_cancelled_by_an_exception_raised_inside_its_thread(
    app: Flask, demo_directory: Factory
) -> None:
    """A cancellation raised inside a worker thread can land between taking the SQLite writers'
    turn and the `try` that gives it back, and leave the worker unable to write (seen under
    load: every projection then waited out its timeout). Each activity runs to its end."""
    request = waiting_request(app)
    console_id, instance_id = request.console_id, request.instance_id
    arguments = {
        "apply_relationship_change": ApplyChange(
            request.public_id, "establish_link", console_id, instance_id, "agent"
        ),
        "project_request": Projection(request.id, 1, "awaiting_agent", utcnow(), [], []),
        "check_effect_needed": EffectCheck("establish_link", console_id, instance_id),
        "notify": Notify(request.id, "queued", "new item", "agents", f"{request.public_id}:q"),
    }
    activities = activities_of(app)
    assert {fn.__name__ for fn in activities} == set(arguments)
    results = {
        fn.__name__: run_cancelled_at_its_first_statement(app, fn, arguments[fn.__name__])
        for fn in activities
    }
    assert results["apply_relationship_change"].applied_now is True
    assert results["project_request"].task_ids == {}
    assert isinstance(results["check_effect_needed"], bool)
    assert results["notify"] == 1  # the one agent


def test_the_worker_runs_every_activity_the_workflow_declares(app: Flask) -> None:
    """The workflow calls the interfaces' methods by reference and the worker registers their
    overrides: each interface is implemented whole, and nothing else is registered. (The type
    names themselves are pinned by the stored histories that the replay tests run.)"""
    declared = {
        name
        for _, interface in inspect.getmembers(activity_interfaces, inspect.isclass)
        if interface.__module__ == activity_interfaces.__name__
        for name in interface.__abstractmethods__
    }
    registered = activities_of(app)
    assert {fn.__name__ for fn in registered} == declared
    for fn in registered:
        assert inspect.ismethod(fn)
        interface = next(
            base
            for base in type(fn.__self__).__mro__
            if base.__module__ == activity_interfaces.__name__
        )
        assert fn.__name__ in interface.__abstractmethods__
        assert fn.__func__ is not getattr(interface, fn.__name__), "not overridden"
