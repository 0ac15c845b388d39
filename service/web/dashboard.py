"""The managers' dashboard: turnaround figures, charts and CSV exports.

Every figure comes from `service.metrics`, computed in the database; this module only picks
the selection from the query string, shapes the figures into charts and links each one to the
request list filtered to the requests behind it. To anyone but a manager the pages do not
exist (404), exactly like the turnaround API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, render_template, request, url_for

from domain.vocabulary import ConsoleType, RequestKind, Role
from service import auth
from service import requests as service
from service.errors import Invalid
from service.exports import csv_download
from service.metrics import figures, report
from service.metrics.backlog import Backlog, backlog
from service.metrics.figures import AgentLoad, Bucket, DayCount, GroupFigures
from service.metrics.report import Tiles
from service.metrics.selection import Selection, selection_from
from service.models import utcnow
from service.web import charts
from service.web.forms import DashboardForm, load_form

bp = Blueprint("dashboard", __name__)

HtmlPage = str | tuple[str, int]
GROUP_LABELS = {
    "kind": "Kind",
    "console_type": "Console type",
    "agent": "Agent",
    "week": "Week",
}


# Formatting --------------------------------------------------------------------------------


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """A calendar duration for people: `45 min`, `3.2 h`, `1.5 d` (`—` when not measured)."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return "< 1 min"
    if round(seconds / 60) < 60:
        return f"{round(seconds / 60)} min"
    if seconds < charts.DAY:
        return f"{seconds / charts.HOUR:.1f} h"
    return f"{seconds / charts.DAY:.1f} d"


@bp.app_template_filter("business_duration")
def business_duration(seconds: float | None) -> str:
    """Business time stays in hours (a business day is not 24 h): `45 min`, `30.5 h`."""
    if seconds is None or round(seconds / 60) < 60:
        return duration(seconds)
    return f"{seconds / charts.HOUR:.1f} h"


@bp.app_template_filter("percent")
def percent(share: float | None) -> str:
    """A share of 0..1 as a whole percentage (`—` when nothing was counted)."""
    return "—" if share is None else f"{share * 100:.0f} %"


def _day_text(day: date) -> str:
    return f"{day.day} {day:%b}"


# Selection and drill-down ------------------------------------------------------------------


def _selection() -> tuple[Selection, str]:
    """The selection and grouping asked for in the query string; `Invalid` names the field."""
    form = load_form(DashboardForm(), request.args)
    selection = selection_from(
        form["from_"],
        form["to"],
        kind=form["kind"],
        console_type=form["console_type"],
        agent_id=form["agent"],
    )
    return selection, form["group_by"]


def _query(selection: Selection, group_by: str | None = None) -> dict[str, str]:
    """The dashboard's own query string for a selection (for its links and exports)."""
    args = {
        "from": selection.start.isoformat(),
        "to": selection.end.isoformat(),
        "kind": selection.kind.value if selection.kind else None,
        "console_type": selection.console_type.value if selection.console_type else None,
        "agent": str(selection.agent_id) if selection.agent_id else None,
        "group_by": group_by,
    }
    return {key: value for key, value in args.items() if value}


@dataclass(frozen=True)
class DrillDown:
    """Links from the figures to the request list, filtered to the requests behind each."""

    selection: Selection

    def url(self, **filters: Any) -> str:
        """The request list with the selection's kind, console type and agent, and `filters`."""
        s = self.selection
        base = {
            "kind": s.kind.value if s.kind else None,
            "console_type": s.console_type.value if s.console_type else None,
            "agent": s.agent_id,
        }
        args = {key: value for key, value in {**base, **filters}.items() if value is not None}
        return url_for("request_pages.index", **args)

    def filed(self, start: date | None = None, end: date | None = None, **filters: Any) -> str:
        """Requests filed in the range (or part of it)."""
        return self.url(
            created_from=(start or self.selection.start).isoformat(),
            created_to=(end or self.selection.end).isoformat(),
            **filters,
        )

    def open(self, **filters: Any) -> str:
        """Requests open now (the backlog ignores the dates)."""
        return self.url(status="open", **filters)

    def resolved_on(self, day: str) -> str:
        """Requests that ended on one day, whenever they were filed."""
        return self.url(resolved_from=day, resolved_to=day)

    def previous(self, **filters: Any) -> str:
        """The same filters over the period just before."""
        return DrillDown(self.selection.previous()).filed(**filters)

    def group(self, group_by: str | None, key: str | None, **filters: Any) -> str:
        """The requests of one row of the figures table."""
        if group_by == "kind":
            return self.filed(kind=key, **filters)
        if group_by == "console_type":
            return self.filed(console_type=key, **filters)
        if group_by == "agent":
            return self.filed(agent=key or service.NO_AGENT, **filters)
        if group_by == "week" and key:
            monday = date.fromisoformat(key)
            start = max(monday, self.selection.start)
            end = min(monday + timedelta(days=6), self.selection.end)
            return self.filed(start, end, **filters)
        return self.filed(**filters)


# The page ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Board:
    """Every figure the page shows, as `service.metrics` computed them."""

    selection: Selection
    group_by: str
    now: datetime
    tiles: Tiles
    total: GroupFigures
    groups: list[GroupFigures]
    by_kind: list[GroupFigures]
    daily: list[DayCount]
    histogram: list[Bucket]
    backlog: Backlog
    agents: list[AgentLoad]


def _board(selection: Selection, group_by: str, now: datetime) -> Board:
    total, groups = figures.figure_table(selection, group_by)
    return Board(
        selection=selection,
        group_by=group_by,
        now=now,
        tiles=report.tiles(selection, now),
        total=total,
        groups=groups,
        by_kind=(
            groups
            if group_by == "kind"
            else figures.figure_table(selection, "kind", measures=["resolution"])[1]
        ),
        daily=figures.daily(selection),
        histogram=figures.resolution_histogram(selection),
        backlog=backlog(selection, now),
        agents=figures.agents(selection),
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _charts(board: Board, drill: DrillDown) -> dict[str, charts.Chart]:
    days = [date.fromisoformat(d.day) for d in board.daily]
    created = charts.Series(
        "Filed",
        [
            charts.Point(
                d.created,
                str(d.created),
                f"{_plural(d.created, 'request')} filed on {d.day}",
                drill.filed(day, day),
            )
            for d, day in zip(board.daily, days, strict=True)
        ],
    )
    resolved = charts.Series(
        "Ended",
        [
            charts.Point(
                d.resolved,
                str(d.resolved),
                f"{_plural(d.resolved, 'request')} ended on {d.day}",
                drill.resolved_on(d.day),
            )
            for d in board.daily
        ],
    )

    def resolution(row: GroupFigures, name: str, value: float | None) -> charts.Point:
        text = duration(value)
        label = f"{row.label}: {name.lower()} time to resolve {text}"
        return charts.Point(value, text, label, drill.group("kind", row.key, status="closed"))

    kinds = board.by_kind
    spread = [
        charts.Series(
            "Median", [resolution(r, "Median", r.resolution.calendar.p50) for r in kinds]
        ),
        charts.Series(
            "90th percentile",
            [resolution(r, "90th percentile", r.resolution.calendar.p90) for r in kinds],
        ),
    ]
    histogram = charts.Series(
        "Requests",
        [
            charts.Point(
                b.count,
                str(b.count),
                f"{_plural(b.count, 'request')} resolved in {b.label}",
                drill.filed(resolution=service.bucket_key(b.label)),
            )
            for b in board.histogram
        ],
    )
    ages = charts.Series(
        "Open requests",
        [
            charts.Point(
                b.count,
                str(b.count),
                f"{_plural(b.count, 'open request')} filed {b.label} ago",
                drill.open(age=service.bucket_key(b.label)),
            )
            for b in board.backlog.by_age
        ],
    )
    return {
        "daily": charts.line_chart(
            "chart-daily",
            "Filed and ended per day",
            "Requests filed each day of the period, and requests that ended each day.",
            [d.day for d in board.daily],
            [_day_text(day) for day in days],
            [created, resolved],
            "Day (UTC)",
            "Requests",
        ),
        "resolution": charts.bar_chart(
            "chart-resolution",
            "Time to resolve by kind",
            "Median and 90th percentile of the calendar time from filing to the end, "
            "for the requests of the period that ended.",
            [row.label for row in board.by_kind],
            spread,
            charts.duration_scale,
            "Kind",
            "Calendar time",
        ),
        "histogram": charts.bar_chart(
            "chart-histogram",
            "How long requests took",
            "Requests of the period that ended, by calendar time from filing to the end.",
            [b.label for b in board.histogram],
            [histogram],
            charts.count_scale,
            "Time to resolve",
            "Requests",
        ),
        "backlog": charts.bar_chart(
            "chart-backlog",
            "Open now, by age",
            "Requests open right now, by time since filing.",
            [b.label for b in board.backlog.by_age],
            [ages],
            charts.count_scale,
            "Age since filing",
            "Open requests",
        ),
    }


def _choices() -> dict[str, list[tuple[str, str]]]:
    return {
        "kind": [(kind.value, kind.label) for kind in RequestKind],
        "console_type": [(t.value, t.value.capitalize()) for t in ConsoleType],
        "agent": [(str(u.id), u.display_name or u.username) for u in service.assignees()],
    }


@bp.get("/dashboard")
@auth.roles_required(Role.MANAGER)
def dashboard() -> HtmlPage:
    """Turnaround figures and charts for managers, each figure linked to its requests."""
    typed = request.args.to_dict()
    try:
        selection, group_by = _selection()
    except Invalid as exc:
        page = render_template(
            "dashboard/dashboard.html",
            board=None,
            form=typed,
            errors=exc.fields,
            message=exc.message,
            choices=_choices(),
            group_labels=GROUP_LABELS,
        )
        return page, exc.status
    board = _board(selection, group_by, utcnow())
    drill = DrillDown(selection)
    query = _query(selection, group_by)
    return render_template(
        "dashboard/dashboard.html",
        board=board,
        charts=_charts(board, drill),
        drill=drill,
        form={**typed, **query},
        query=query,
        errors={},
        choices=_choices(),
        group_labels=GROUP_LABELS,
        no_agent=service.NO_AGENT,
    )


# CSV exports -------------------------------------------------------------------------------


def _name(what: str, selection: Selection) -> str:
    return f"linkdesk-{what}-{selection.start.isoformat()}-to-{selection.end.isoformat()}.csv"


@bp.get("/dashboard/figures.csv")
@auth.roles_required(Role.MANAGER)
def figures_csv() -> Response:
    """The figures table of the selection, one line per group, as CSV."""
    selection, group_by = _selection()
    rows = figures.figures(selection, group_by)
    return csv_download(figures.figures_csv_rows(rows), _name(f"figures-by-{group_by}", selection))


@bp.get("/dashboard/requests.csv")
@auth.roles_required(Role.MANAGER)
def requests_csv() -> Response:
    """The requests behind the figures, each with its own figures, as CSV."""
    user = auth.signed_in_user()
    selection, _group_by = _selection()
    filters = service.RequestFilters(
        created_from=selection.start,
        created_to=selection.end,
        kind=selection.kind,
        console_type=selection.console_type,
        agent=selection.agent_id,
    )
    return csv_download(service.export_requests(user, filters), _name("requests", selection))
