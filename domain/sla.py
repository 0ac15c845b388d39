"""SLA targets and the states a request can be in against them.

The clock that measures a request against its targets runs on the business calendar
(`domain.calendar`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class SlaState(StrEnum):
    """Where a request stands against its SLA targets."""

    OK = "ok"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    PAUSED = "paused"
    MET = "met"

    @property
    def label(self) -> str:
        """The state as people read it."""
        return _SLA_LABELS[self]


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
