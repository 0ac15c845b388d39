"""The figures and the backlog together: the dashboard's headline tiles and the turnaround
answer of the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.metrics.backlog import backlog
from service.metrics.buckets import TOTAL, percentiles
from service.metrics.figures import agents, daily, figure_table, figures_json
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


def turnaround(selection: Selection, group_by: str | None, now: datetime) -> dict[str, Any]:
    """Every figure of the selection, as the API returns it."""
    totals, groups = figure_table(selection, group_by)
    open_now = backlog(selection, now)
    return {
        "from_": selection.start,
        "to": selection.end,
        "group_by": group_by,
        "totals": figures_json(totals),
        "groups": [figures_json(g) for g in groups],
        "daily": daily(selection),
        "backlog": {
            "total": open_now.total,
            "at_risk": open_now.at_risk,
            "breached": open_now.breached,
            "by_status": [{"status": s, "count": n} for s, n in open_now.by_status],
            "by_age": open_now.by_age,
        },
        "agents": agents(selection),
    }
