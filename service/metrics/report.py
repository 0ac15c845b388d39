"""The figures and the backlog together: the dashboard's headline tiles and the turnaround
answer of the API (which `service.api.schemas.TurnaroundSchema` dumps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.metrics.backlog import Backlog, backlog
from service.metrics.buckets import TOTAL, percentiles
from service.metrics.figures import AgentLoad, DayCount, GroupFigures, agents, daily, figure_table
from service.metrics.selection import Selection
from service.models import RequestFigures


@dataclass(frozen=True)
class Tiles:
    """The dashboard's headline: open now, and median resolution against the prior period."""

    open: int
    at_risk: int
    breached: int
    resolution_p50: float | None
    previous_resolution_p50: float | None


def tiles(selection: Selection, now: datetime) -> Tiles:
    """Open, at risk and breached now; median calendar resolution this period and the last."""
    open_now = backlog(selection, now)
    medians = []
    for period in (selection, selection.previous()):
        found = percentiles(RequestFigures.resolution_seconds, period, (0.5,))
        medians.append(found[TOTAL][0] if TOTAL in found else None)
    return Tiles(open_now.total, open_now.at_risk, open_now.breached, *medians)


@dataclass(frozen=True)
class Turnaround:
    """Every figure of a selection, as the turnaround API answers it."""

    selection: Selection
    group_by: str | None
    totals: GroupFigures
    groups: list[GroupFigures]
    daily: list[DayCount]
    backlog: Backlog
    agents: list[AgentLoad]


def turnaround(selection: Selection, group_by: str | None, now: datetime) -> Turnaround:
    """Every figure of the selection: the figures table, per day, open now, per agent."""
    totals, groups = figure_table(selection, group_by)
    open_now = backlog(selection, now)
    return Turnaround(
        selection=selection,
        group_by=group_by,
        totals=totals,
        groups=groups,
        daily=daily(selection),
        backlog=open_now,
        agents=agents(selection),
    )
