"""SLA targets and the states a request can be in against them.

The clock that measures a request against its targets runs on the business calendar
(`domain.calendar`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from domain.vocabulary import RequestStatus

# A target is at risk once this share of it has run.
AT_RISK_RATIO = 0.75
# The workflow's SLA timers fire this long after a threshold is reached, so the state read
# then is already past it; a missed target is noticed then.
THRESHOLD_TIMER_DELAY = timedelta(seconds=1)


class SlaState(StrEnum):
    """Where a request stands against its SLA targets."""

    OK = "ok"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"
    MET = "met"

    @property
    def label(self) -> str:
        """The state as people read it in a filter."""
        return _SLA_LABELS[self]

    @property
    def chip(self) -> str:
        """The state in a chip beside a request: short, lower case."""
        return "on track" if self == SlaState.OK else self.value.replace("_", " ")

    @property
    def counting(self) -> bool:
        """The clock runs towards a due time (not paused on the customer, not met for good)."""
        return self not in (SlaState.PAUSED, SlaState.MET)


_SLA_LABELS = {
    SlaState.OK: "On track",
    SlaState.AT_RISK: "At risk",
    SlaState.BREACHED: "Breached",
    SlaState.PAUSED: "Paused (waiting on the customer)",
    SlaState.MET: "Met",
}


@dataclass(frozen=True)
class SlaTarget:
    """How many business hours a request may take to its first response and to resolution."""

    first_response_hours: float
    resolution_hours: float

    def __post_init__(self) -> None:
        for name in ("first_response_hours", "resolution_hours"):
            target_duration(getattr(self, name), name)


def target_duration(hours: float, name: str) -> timedelta:
    """A target in hours as a duration, refusing what is not a finite number of hours >= 0."""
    if isinstance(hours, bool) or not math.isfinite(hours) or hours < 0:
        raise ValueError(f"{name} must be a finite number of hours >= 0, not {hours!r}")
    return timedelta(hours=hours)


def request_sla_state(
    status: RequestStatus, resolution: SlaState, first_response: SlaState
) -> SlaState:
    """Where a request stands as a whole, from its status and the states of its two targets.

    An ended request is judged on resolution alone; until then a missed target shows first,
    then a wait on the customer, then a target at risk.
    """
    if status.is_terminal:
        return resolution
    if SlaState.BREACHED in (resolution, first_response):
        return SlaState.BREACHED
    if status.waits_on_customer:
        return SlaState.PAUSED
    if SlaState.AT_RISK in (resolution, first_response):
        return SlaState.AT_RISK
    return SlaState.OK
