"""The activities the request workflow calls, declared as typed interfaces.

The workflow calls these methods by reference (`workflow.execute_activity_method`), so the
activity type name, the argument and the result are checked rather than spelled as strings.
The implementations in `activities/` subclass these interfaces and re-declare each method with
the same `@activity.defn`, as the worker registers the overriding method. This module imports
no Flask, database or I/O code: the workflow sandbox loads it.

The names are the activity types recorded in every workflow's history: renaming one breaks the
replay of running workflows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from temporalio import activity

from workflows.shared import (
    ApplyChange,
    ApplyResult,
    EffectCheck,
    Notify,
    Projection,
    ProjectionResult,
)


class DirectoryInterface(ABC):
    """Changes to the directory that a request makes."""

    @activity.defn(name="apply_relationship_change", no_thread_cancel_exception=True)
    @abstractmethod
    def apply_relationship_change(self, change: ApplyChange) -> ApplyResult:
        """Set the relationship flags a request asks for, once per request ID."""


class ProjectionInterface(ABC):
    """The database that serves every read: the request's state, and the directory as it is."""

    @activity.defn(name="project_request", no_thread_cancel_exception=True)
    @abstractmethod
    def project_request(self, state: Projection) -> ProjectionResult:
        """Mirror the workflow's state; idempotent, and never goes back to an older state."""

    @activity.defn(name="check_effect_needed", no_thread_cancel_exception=True)
    @abstractmethod
    def check_effect_needed(self, check: EffectCheck) -> bool:
        """Whether the request would still change the directory."""


class NotificationInterface(ABC):
    """Telling people about a request event."""

    @activity.defn(name="notify", no_thread_cancel_exception=True)
    @abstractmethod
    def notify(self, notice: Notify) -> int:
        """Notify the audience of a request event; returns how many people were told."""
