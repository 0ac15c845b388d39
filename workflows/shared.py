"""Inputs and results shared by workflows, activities and their callers.

One dataclass per workflow, activity, signal and update argument, so fields can be added
compatibly. No Flask, database or I/O imports: the workflow sandbox loads this module.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApplyChange:
    """Apply the effect of a completed request to the directory."""

    request_id: str
    kind: str
    console_id: int
    instance_id: int
    actor: str


@dataclass(frozen=True)
class ApplyResult:
    """The relationship as it stands after the change, and whether this call made it."""

    access_enabled: bool
    linked: bool
    applied_now: bool
