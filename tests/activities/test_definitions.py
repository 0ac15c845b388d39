"""How the activities are defined for the worker."""

from __future__ import annotations

import inspect

from flask import Flask
from temporalio.activity import _Definition

from worker.main import activities_of
from workflows import activity_interfaces


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


def test_the_worker_runs_each_activity_the_workflow_calls_as_declared(app: Flask) -> None:
    """The workflow calls the interfaces' methods by reference and the worker registers their
    overrides: every declared activity is registered, under the same name, with the same
    options, argument and result types."""
    declared = {
        d.name: d
        for _, interface in inspect.getmembers(activity_interfaces, inspect.isclass)
        if interface.__module__ == activity_interfaces.__name__
        for _, method in inspect.getmembers(interface, inspect.isfunction)
        if (d := _Definition.from_callable(method)) is not None
    }
    registered = {}
    for fn in activities_of(app):
        assert inspect.ismethod(fn)
        definition = _Definition.must_from_callable(fn)
        interface = next(
            base
            for base in type(fn.__self__).__mro__
            if base.__module__ == activity_interfaces.__name__
        )
        assert getattr(interface, fn.__name__) is declared[definition.name].fn
        registered[definition.name] = definition

    assert registered.keys() == declared.keys()
    for name, definition in registered.items():
        expected = declared[name]
        assert (
            definition.no_thread_cancel_exception,
            definition.arg_types,
            definition.ret_type,
        ) == (expected.no_thread_cancel_exception, expected.arg_types, expected.ret_type)
