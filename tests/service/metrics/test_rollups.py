"""Figures of a range read its whole weeks from the weekly rollups and the days around them
from `request_figures`: however a range splits, every count and percentile equals a reference
computed apart in Python, for each grouping and filter, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Float, func, literal, select
from sqlalchemy.dialects import postgresql

from domain.vocabulary import ConsoleType, RequestKind
from service.extensions import db
from service.metrics import rollups
from service.metrics.figures import MEASURES as FIGURE_COLUMNS
from service.metrics.figures import (
    RESOLUTION_BUCKETS,
    GroupFigures,
    figure_table,
    resolution_histogram,
)
from service.metrics.report import tiles
from service.metrics.selection import Selection
from service.models import RequestFigures
from tests.conftest import Factory
from tests.history import HOUR, Past, percentile_cont, rollup_rows, store

START = datetime(2026, 2, 25, 0, 0, tzinfo=UTC)  # a Wednesday; six weeks of history follow
CONSOLES = {"ACCT-01": ConsoleType.ACCOUNTANT, "VAR-01": ConsoleType.PARTNER}
CONSOLES["MGMT-01"] = ConsoleType.MANAGEMENT
RANGES = {
    "part weeks at both ends": (date(2026, 3, 4), date(2026, 4, 2)),
    "whole weeks only": (date(2026, 3, 2), date(2026, 3, 29)),
    "shorter than a week": (date(2026, 3, 5), date(2026, 3, 9)),
    "more than the history": (date(2026, 2, 1), date(2026, 4, 30)),
}
GROUPINGS = (None, "kind", "console_type", "week", "agent")
# Each measure and how the reference finds it on a stored row (hours, or None).
MEASURES = {
    ("first_response", "calendar"): lambda r: r.first_response,
    ("resolution", "calendar"): lambda r: r.resolution,
    ("resolution", "business"): lambda r: r.business,
    ("customer_wait", "calendar"): lambda r: r.wait,
}


def history() -> list[Past]:
    draw = random.Random(11)
    rows = []
    for _ in range(320):
        resolution = draw.choice([None, 0.0, 0.25, 2.0, draw.uniform(0, 300)])
        rows.append(
            Past(
                created=START + timedelta(hours=draw.uniform(0, 6 * 7 * 24)),
                kind=draw.choice(list(RequestKind)),
                console=draw.choice(list(CONSOLES)),
                agent=draw.choice(["agent", "agent2", None]),
                first_response=draw.choice([0.0, 0.5, draw.uniform(0, 40)]),
                resolution=resolution,
                business=None if resolution is None else resolution * draw.uniform(0.2, 1),
                wait=draw.choice([None, 0.0, 0.0, draw.uniform(0, 90)]),
                sla_met=None if resolution is None else draw.random() < 0.7,
            )
        )
    return rows


def reference(
    rows: list[Past], selection: Selection, group_by: str | None, agents: dict[str, int]
) -> dict[str | None, dict[str, Any]]:
    """Every group's figures from the rows themselves: the expected answers."""
    groups: dict[str | None, list[Past]] = defaultdict(list)
    for row in rows:
        day = row.created.date()
        agent = agents[row.agent] if row.agent else None
        if not selection.start <= day <= selection.end:
            continue
        if selection.kind is not None and row.kind != selection.kind:
            continue
        if selection.console_type is not None and CONSOLES[row.console] != selection.console_type:
            continue
        if selection.agent_id is not None and agent != selection.agent_id:
            continue
        key = {
            None: None,
            "kind": row.kind.value,
            "console_type": CONSOLES[row.console].value,
            "week": rollups.week_start(day).isoformat(),
            "agent": None if agent is None else str(agent),
        }[group_by]
        groups[key].append(row)
        if group_by is not None:
            groups["(total)"].append(row)
    expected = {}
    for key, members in groups.items():
        figures: dict[str, Any] = {
            "count": len(members),
            "resolved": sum(r.resolution is not None for r in members),
            "sla": (
                sum(r.sla_met is not None for r in members),
                sum(r.sla_met is True for r in members),
            ),
        }
        for measure, of in MEASURES.items():
            values = [of(r) * HOUR for r in members if of(r) is not None]
            figures[measure] = tuple(
                percentile_cont(values, p) if values else None for p in (0.5, 0.9)
            )
        expected[key] = figures
    return expected


def answers(total: GroupFigures, groups: list[GroupFigures], grouped: bool) -> Any:
    found = {}
    for key, row in [("(total)" if grouped else None, total), *((g.key, g) for g in groups)]:
        figures: dict[str, Any] = {
            "count": row.count,
            "resolved": row.resolved,
            "sla": (row.sla_counted, row.sla_met),
        }
        for measure, clock in MEASURES:
            spread = getattr(getattr(row, measure), clock)
            figures[(measure, clock)] = (spread.p50, spread.p90)
        found[key] = figures
    return found


@pytest.mark.parametrize("span", list(RANGES))
def test_every_split_of_a_range_gives_the_reference_figures(
    app: Flask, demo_directory: Factory, span: str
) -> None:
    demo_directory.user("agent2", "agent")
    rows = history()
    store(app, *rows)
    stored, recounted = rollup_rows(app)
    assert stored == recounted
    agents = {name: demo_directory.get_user(name).id for name in ("agent", "agent2")}
    start, end = RANGES[span]
    filters: list[dict[str, Any]] = [
        {},
        {"kind": RequestKind.ESTABLISH_LINK},
        {"console_type": ConsoleType.MANAGEMENT},
        {"agent_id": agents["agent2"]},
    ]
    checked = 0
    with app.app_context():
        for where in filters:
            selection = Selection(start, end, **where)
            for group_by in GROUPINGS:
                expected = reference(rows, selection, group_by, agents)
                total, groups = figure_table(selection, group_by)
                if not expected:  # nothing selected: a total of zero, no groups
                    assert (total.count, groups) == (0, [])
                    continue
                found = answers(total, groups, group_by is not None)
                assert set(found) == set(expected), (where, group_by)
                for key, figures in expected.items():
                    got = found[key]
                    for name, value in figures.items():
                        assert got[name] == pytest.approx(value, abs=1e-6), (
                            where,
                            group_by,
                            key,
                            name,
                        )
                        checked += 1
    assert checked > 200  # most filters and groupings select something in every range


def test_the_resolution_histogram_and_tiles_agree_with_the_rows(
    app: Flask, demo_directory: Factory
) -> None:
    """The histogram counts whole weeks from the rollups and the part weeks from the index."""
    demo_directory.user("agent2", "agent")
    rows = history()
    store(app, *rows)
    start, end = RANGES["part weeks at both ends"]
    inside = [
        r.resolution * HOUR
        for r in rows
        if r.resolution is not None and start <= r.created.date() <= end
    ]
    expected = [
        sum(low <= v and (high is None or v < high) for v in inside)
        for _label, low, high in RESOLUTION_BUCKETS
    ]
    with app.app_context():
        selection = Selection(start, end)
        histogram = [b.count for b in resolution_histogram(selection)]
        headline = tiles(selection, datetime(2026, 4, 10, tzinfo=UTC))
    assert histogram == expected
    assert headline.resolution_p50 == pytest.approx(percentile_cont(inside, 0.5), abs=1e-6)


def test_postgresql_percentile_cont_gives_the_same_figures(
    app: Flask, demo_directory: Factory
) -> None:
    """On PostgreSQL, its own `percentile_cont` over the same rows is a second reference."""
    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("percentile_cont is PostgreSQL's")
    demo_directory.user("agent2", "agent")
    store(app, *history())
    selection = Selection(*RANGES["part weeks at both ends"])
    columns = [column for pair in FIGURE_COLUMNS.values() for column in pair]
    wanted = postgresql.array([literal(0.5, Float), literal(0.9, Float)])
    with app.app_context():
        total, groups = figure_table(selection, "kind")
        for figures, where in [(total, [])] + [(g, [RequestFigures.kind == g.key]) for g in groups]:
            statement = select(
                *(func.percentile_cont(wanted).within_group(column) for column in columns)
            ).where(*selection.filed(), *where)
            spreads = db.session.execute(statement).one()
            for i, name in enumerate(FIGURE_COLUMNS):
                for j, clock in enumerate(("calendar", "business")):
                    spread = spreads[2 * i + j]
                    got = getattr(getattr(figures, name), clock)
                    expected = (None, None) if spread is None else tuple(spread)
                    assert (got.p50, got.p90) == pytest.approx(expected, abs=1e-6), (name, clock)
