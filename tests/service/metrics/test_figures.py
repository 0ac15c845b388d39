"""Turnaround figures on small hand-made histories: exact values, on SQLite and PostgreSQL.

The suite runs on both databases (LINKDESK_TEST_DATABASE_URL), so every exact figure here is
checked on each: the same answers from the one bucketed method on both databases, equal to
`percentile_cont` (tests/service/metrics/test_rollups.py compares with PostgreSQL's own).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from domain.calendar import BusinessCalendar, Pause, business_figures
from domain.vocabulary import ConsoleType, RequestKind, RequestStatus, TaskState, TaskType
from service.errors import Invalid
from service.extensions import db
from service.metrics.backlog import backlog
from service.metrics.figures import (
    RESOLUTION_BUCKETS,
    agents,
    daily,
    figure_table,
    figures,
    resolution_histogram,
)
from service.metrics.report import tiles
from service.metrics.selection import Selection
from service.models import Request, Task, User
from tests.conftest import Factory
from tests.history import HOUR, MARCH, Past, percentile_cont, store


def march(**filters: Any) -> Selection:
    return Selection(date(2026, 3, 1), date(2026, 3, 31), **filters)


def hours(value: float | None) -> float | None:
    return None if value is None else round(value / HOUR, 6)


def test_medians_and_p90_interpolate_like_percentile_cont(
    app: Flask, demo_directory: Factory
) -> None:
    # Odd count: 1, 2, 3, 4, 10 h -> median 3; p90 at rank 3.6 -> 4 + 0.6 * 6 = 7.6
    store(app, *(Past(resolution=h) for h in (4, 1, 10, 3, 2)))
    with app.app_context():
        [total] = figures(march())
        assert (total.count, total.resolved) == (5, 5)
        assert hours(total.resolution.calendar.p50) == 3
        assert hours(total.resolution.calendar.p90) == 7.6
    # Even count: add 5 h -> 1, 2, 3, 4, 5, 10: median 3.5; p90 at rank 4.5 -> 7.5
    store(app, Past(resolution=5))
    with app.app_context():
        [total] = figures(march())
        assert hours(total.resolution.calendar.p50) == 3.5
        assert hours(total.resolution.calendar.p90) == 7.5


def test_one_value_and_open_requests(app: Flask, demo_directory: Factory) -> None:
    store(app, Past(resolution=2, first_response=0.5), Past(first_response=1.5), Past())
    with app.app_context():
        [total] = figures(march())
        assert (total.count, total.resolved) == (3, 1)
        assert hours(total.resolution.calendar.p50) == 2
        assert hours(total.resolution.calendar.p90) == 2
        assert hours(total.first_response.calendar.p50) == 1  # open requests count here
        assert total.customer_wait.calendar.p50 is None


def test_groups_by_kind_console_type_agent_and_week(app: Flask, demo_directory: Factory) -> None:
    demo_directory.user("agent2", "agent")
    store(
        app,
        Past(kind=RequestKind.ENABLE_ACCESS, resolution=1, agent="agent"),
        Past(kind=RequestKind.ENABLE_ACCESS, resolution=3, agent="agent"),
        Past(kind=RequestKind.DISSOCIATE_LINK, resolution=8, console="MGMT-01", agent="agent2"),
        Past(created=MARCH + timedelta(days=7), resolution=6, agent=None),
    )
    with app.app_context():
        by_kind = {g.key: g for g in figures(march(), "kind")}
        assert set(by_kind) == {"enable_access", "dissociate_link"}
        assert by_kind["enable_access"].count == 3
        assert hours(by_kind["enable_access"].resolution.calendar.p50) == 3
        assert hours(by_kind["dissociate_link"].resolution.calendar.p50) == 8
        assert by_kind["dissociate_link"].label == RequestKind.DISSOCIATE_LINK.label

        by_type = {g.key: g.count for g in figures(march(), "console_type")}
        assert by_type == {"accountant": 3, "management": 1}

        by_agent = {g.label: g for g in figures(march(), "agent")}
        assert {k: v.count for k, v in by_agent.items()} == {
            "agent": 2,
            "agent2": 1,
            "No agent yet": 1,
        }
        assert hours(by_agent["agent"].resolution.calendar.p50) == 2

        by_week = {g.key: g.count for g in figures(march(), "week")}
        assert by_week == {"2026-03-02": 3, "2026-03-09": 1}  # weeks start on Monday


def test_filters_narrow_every_figure(app: Flask, demo_directory: Factory) -> None:
    store(
        app,
        Past(kind=RequestKind.ENABLE_ACCESS, resolution=1),
        Past(kind=RequestKind.ESTABLISH_LINK, resolution=5, console="MGMT-01"),
    )
    with app.app_context():
        agent = db.session.execute(select(User).filter_by(username="agent")).scalar_one()
        [only] = figures(march(kind=RequestKind.ESTABLISH_LINK))
        assert (only.count, hours(only.resolution.calendar.p50)) == (1, 5)
        [only] = figures(march(console_type=ConsoleType.ACCOUNTANT))
        assert (only.count, hours(only.resolution.calendar.p50)) == (1, 1)
        [both] = figures(march(agent_id=agent.id))
        assert both.count == 2


def test_sla_attainment_counts_what_customer_service_resolved(
    app: Flask, demo_directory: Factory
) -> None:
    store(
        app,
        Past(resolution=1, sla_met=True),
        Past(resolution=2, sla_met=True),
        Past(resolution=90, sla_met=False, status=RequestStatus.REJECTED),
        Past(resolution=200, status=RequestStatus.EXPIRED),  # the customer let it lapse
        Past(resolution=0.1, status=RequestStatus.CANCELLED),
        Past(),  # open
    )
    with app.app_context():
        [total] = figures(march())
        assert (total.count, total.resolved, total.sla_counted, total.sla_met) == (6, 5, 3, 2)
        assert total.sla_attainment == pytest.approx(2 / 3)


def test_customer_waits_stay_out_of_the_sla_clock_and_weekends_do_not_count() -> None:
    calendar = BusinessCalendar()  # Monday to Friday, 09:00-17:00 UTC
    friday = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
    monday_noon = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    # Filed Friday 15:00, answered Monday 12:00: two hours on Friday, three on Monday.
    plain = business_figures(calendar, friday, monday_noon, monday_noon, [])
    assert (plain.first_response, plain.resolution, plain.customer_wait) == (
        5 * HOUR,
        5 * HOUR,
        0.0,
    )
    # Waiting on the customer from Friday 16:00 to Monday 10:00 takes two business hours
    # (Friday 16-17, Monday 9-10) off the SLA clock and puts them in the wait.
    waited = [Pause(datetime(2026, 3, 6, 16, tzinfo=UTC), datetime(2026, 3, 9, 10, tzinfo=UTC))]
    figures = business_figures(calendar, friday, None, monday_noon, waited)
    assert figures.first_response is None
    assert figures.resolution == 3 * HOUR
    assert figures.customer_wait == 2 * HOUR


def test_business_figures_are_aggregated_apart_from_calendar_ones(
    app: Flask, demo_directory: Factory
) -> None:
    store(app, Past(resolution=72, business=5, wait=60), Past(resolution=4, business=3, wait=0))
    with app.app_context():
        [total] = figures(march())
        assert hours(total.resolution.calendar.p50) == 38
        assert hours(total.resolution.business.p50) == 4
        assert hours(total.customer_wait.calendar.p90) == 54


def test_an_empty_range_has_counts_of_zero_and_no_percentiles(
    app: Flask, demo_directory: Factory
) -> None:
    store(app, Past(resolution=1))
    with app.app_context():
        selection = Selection(date(2025, 1, 1), date(2025, 1, 7))
        [total] = figures(selection)
        assert (total.count, total.resolved, total.sla_attainment) == (0, 0, None)
        assert total.resolution.calendar.p50 is None
        assert figures(selection, "kind") == []
        assert [d.created for d in daily(selection)] == [0] * 7
        assert sum(b.count for b in resolution_histogram(selection)) == 0


def test_created_and_resolved_per_day(app: Flask, demo_directory: Factory) -> None:
    store(
        app,
        Past(created=MARCH, resolution=30),  # resolved on the 3rd
        Past(created=MARCH, resolution=1),
        Past(created=MARCH + timedelta(days=1)),
        Past(created=datetime(2026, 2, 28, 23, 0, tzinfo=UTC), resolution=2),  # filed before
    )
    with app.app_context():
        days = {d.day: (d.created, d.resolved) for d in daily(march())}
        assert len(days) == 31
        assert days["2026-03-01"] == (0, 1)  # resolved in range though filed before it
        assert days["2026-03-02"] == (2, 1)
        assert days["2026-03-03"] == (1, 1)


def test_histogram_backlog_and_agents(app: Flask, demo_directory: Factory) -> None:
    now = datetime.now(UTC)
    store(
        app,
        Past(resolution=0.5),
        Past(resolution=30),
        Past(resolution=200),
        Past(created=now - timedelta(hours=2), sla_state="at_risk"),
        Past(created=now - timedelta(days=2), sla_state="breached"),
        Past(created=now - timedelta(days=10), sla_state="breached", agent=None),
    )
    with app.app_context():
        histogram = {b.label: b.count for b in resolution_histogram(march())}
        assert histogram == {
            "<1 h": 1,
            "1-4 h": 0,
            "4-8 h": 0,
            "8-24 h": 0,
            "1-2 d": 1,
            "2-3 d": 0,
            "3-7 d": 0,
            ">7 d": 1,
        }
        open_now = backlog(march(), now)
        assert (open_now.total, open_now.at_risk, open_now.breached) == (3, 1, 2)
        assert {b.label: b.count for b in open_now.by_age} == {
            "<1 d": 1,
            "1-3 d": 1,
            "3-7 d": 0,
            ">7 d": 1,
        }
        assert open_now.by_status == [(RequestStatus.IN_REVIEW, 3)]
        agent = db.session.execute(select(User).filter_by(username="agent")).scalar_one()
        assert backlog(march(agent_id=agent.id), now).total == 2

        request_id = db.session.execute(select(Request.id).limit(1)).scalar_one()
        db.session.add(
            Task(
                request_id=request_id,
                key=1,
                type=TaskType.REVIEW,
                state=TaskState.CLAIMED,
                assignee_id=agent.id,
                created_at=now,
            )
        )
        db.session.commit()
        [row] = agents(march())
        assert (row.username, row.open_tasks, row.resolved) == ("agent", 1, 3)


def test_tiles_compare_with_the_previous_period(app: Flask, demo_directory: Factory) -> None:
    store(
        app,
        Past(resolution=2),
        Past(resolution=4),
        Past(created=MARCH - timedelta(days=31), resolution=10),
    )
    with app.app_context():
        headline = tiles(march(), datetime.now(UTC))
        assert hours(headline.resolution_p50) == 3
        assert hours(headline.previous_resolution_p50) == 10


def test_a_range_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(Invalid) as refused:
        Selection(date(2026, 3, 2), date(2026, 3, 1))
    assert "to" in refused.value.fields


@pytest.mark.parametrize("days", [3, 28])  # inside a week; whole weeks from the rollups
def test_an_unknown_grouping_is_refused_whatever_the_range(app: Flask, days: int) -> None:
    selection = Selection(date(2026, 3, 2), date(2026, 3, 2) + timedelta(days=days - 1))
    with app.app_context(), pytest.raises(Invalid) as refused:
        figure_table(selection, "colour")
    assert "group_by" in refused.value.fields


# The API ----------------------------------------------------------------------------------

URL = "/api/v1/metrics/turnaround"


def test_api_answers_managers_with_every_figure(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    store(app, Past(resolution=1, sla_met=True), Past(resolution=3, sla_met=False))
    body = api_as("boss").get(f"{URL}?from=2026-03-01&to=2026-03-31&group_by=kind").json
    assert (body["from"], body["to"], body["group_by"]) == ("2026-03-01", "2026-03-31", "kind")
    assert body["totals"]["count"] == 2
    assert body["totals"]["resolution"]["calendar"] == {"p50": 2 * HOUR, "p90": 2.8 * HOUR}
    assert body["totals"]["sla"] == {"counted": 2, "met": 1, "attainment_percent": 50.0}
    assert [g["group"] for g in body["groups"]] == ["enable_access"]
    assert len(body["daily"]) == 31
    assert body["backlog"]["total"] == 0
    assert [a["username"] for a in body["agents"]] == ["agent"]


def test_api_gives_csv_when_asked(app: Flask, demo_directory: Factory, api_as: Any) -> None:
    store(app, Past(resolution=1), Past(kind=RequestKind.ESTABLISH_LINK, resolution=3))
    api = api_as("boss")
    response = api.client.get(
        f"{URL}?from=2026-03-01&to=2026-03-31&group_by=kind",
        headers={**api.headers, "Accept": "text/csv"},
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["group"], r["count"]) for r in rows] == [
        ("enable_access", "1"),
        ("establish_link", "1"),
    ]
    assert rows[1]["resolution_calendar_p50_seconds"] == "10800.0"


@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "root"])
def test_api_is_not_there_for_anyone_but_managers(
    demo_directory: Factory, api_as: Any, username: str
) -> None:
    response = api_as(username).get(URL)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-03-10&to=2026-03-01", "to"),
        ("from=yesterday", "from"),
        ("group_by=month", "group_by"),
        ("kind=teleport", "kind"),
        ("agent=0", "agent"),
        ("agent=99999", "agent"),
        ("color=red", "color"),
    ],
)
def test_api_refuses_bad_input_by_field(
    demo_directory: Factory, api_as: Any, query: str, field: str
) -> None:
    response = api_as("boss").get(f"{URL}?{query}")
    assert response.status_code == 422
    assert field in response.json["error"]["fields"]


def test_api_is_documented_with_both_content_types(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"][URL]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {p["name"] for p in operation["parameters"]} >= {"from", "to", "group_by"}


def test_resolution_histogram_counts_values_at_and_beside_every_edge(
    app: Flask, demo_directory: Factory
) -> None:
    """Each span holds its lower edge and not its upper one, for values on an edge, a hair
    either side of it, and inside a duration bucket that an edge cuts in two (SQLite counts
    spans from the duration buckets and reads the cut ones up to the edge)."""
    edges = [high for _label, _low, high in RESOLUTION_BUCKETS if high is not None]
    hours = [0.0, 0.2, *(e / HOUR + d for e in edges for d in (-0.001, 0.0, 0.001)), 500.0]
    store(
        app,
        *(Past(created=MARCH + timedelta(minutes=i), resolution=h) for i, h in enumerate(hours)),
    )
    expected = [
        sum(low <= h * HOUR and (high is None or h * HOUR < high) for h in hours)
        for _label, low, high in RESOLUTION_BUCKETS
    ]
    with app.app_context():
        found = [b.count for b in resolution_histogram(march())]
        by_kind = resolution_histogram(march(kind=RequestKind.ESTABLISH_LINK))
    assert found == expected
    assert sum(found) == len(hours)
    assert [b.count for b in by_kind] == [0] * len(expected)


def test_percentiles_match_the_reference_across_buckets_ties_and_groups(
    app: Flask, demo_directory: Factory
) -> None:
    """Random durations from zero to weeks, with many ties and zeros, in three groups: every
    median and p90 equals percentile_cont computed apart (the ranks are read per bucket)."""
    import random

    draw = random.Random(7)
    kinds = list(RequestKind)
    rows = []
    for i in range(240):
        spread = draw.choice([0.0, 0.0, 1 / 3600, 0.5, 3, 30, 400])  # hours; zeros and ties
        resolution = round(draw.uniform(0, spread) * 4) / 4 if spread else 0.0
        rows.append(
            Past(
                created=MARCH + timedelta(hours=i),
                kind=kinds[i % 3],
                resolution=resolution,
                wait=draw.choice([0.0, 0.0, 0.0, 2.5, draw.uniform(0, 100)]),
            )
        )
    store(app, *rows)
    with app.app_context():
        total, groups = figure_table(march(), "kind")
    for row, members in [(total, rows)] + [
        (g, [r for r in rows if r.kind.value == g.key]) for g in groups
    ]:
        resolution = [r.resolution * HOUR for r in members if r.resolution is not None]
        wait = [r.wait * HOUR for r in members if r.wait is not None]
        for p, got in (
            (0.5, row.resolution.calendar.p50),
            (0.9, row.resolution.calendar.p90),
        ):
            assert got == pytest.approx(percentile_cont(resolution, p), abs=1e-6)
        for p, got in (
            (0.5, row.customer_wait.calendar.p50),
            (0.9, row.customer_wait.calendar.p90),
        ):
            assert got == pytest.approx(percentile_cont(wait, p), abs=1e-6)
