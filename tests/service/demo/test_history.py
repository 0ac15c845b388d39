"""`linkdesk demo-history`: synthetic historical requests written straight into the projection."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import func, select

from domain.calendar import BusinessCalendar, CalendarClock, Pause, sla_reading, sla_state
from domain.durations import MEASURE_COLUMNS, bucket_column, duration_bucket
from domain.kinds import KINDS
from domain.lifecycle import CUSTOMER_WAITS
from domain.sla import SlaTarget
from domain.vocabulary import RequestKind, RequestStatus, Role, TaskState, TaskType
from service.cli import main
from service.demo.clock import BusinessClock
from service.extensions import db
from service.metrics.figures import daily, figures
from service.metrics.selection import Selection
from service.models import (
    Request,
    RequestFigures,
    SlaTargetSetting,
    Task,
    TimelineEvent,
    User,
    utcnow,
)
from tests.conftest import Factory
from tests.history import rollup_rows

UNTIL = date(2026, 6, 1)


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(main, list(args))


def generate(app: Flask, requests: int, *, days: int = 60, seed: int = 7) -> Result:
    result = run(
        app, "demo-history", "--requests", str(requests), "--days", str(days),
        "--until", UNTIL.isoformat(), "--seed", str(seed), "--batch-size", "64",
        "--allow-non-sqlite",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def test_every_generated_request_is_terminal_and_consistent(
    app: Flask, demo_directory: Factory
) -> None:
    result = generate(app, 500)
    assert "Wrote 500 requests" in result.output
    assert "Outcomes: completed" in result.output
    since = datetime.combine(UNTIL - timedelta(days=60), datetime.min.time(), UTC)
    until = datetime.combine(UNTIL, datetime.min.time(), UTC)
    with app.app_context():
        calendar = BusinessCalendar.from_config(app.config["SLA_CALENDAR"])
        targets = {kind: rule.default_sla for kind, rule in KINDS.items()}
        for setting in db.session.execute(select(SlaTargetSetting)).scalars():
            targets[setting.kind] = setting.target
        users = {u.id: u for u in db.session.execute(select(User)).scalars()}
        requests = db.session.execute(select(Request).order_by(Request.id)).scalars().all()
        figures = {f.request_id: f for f in db.session.execute(select(RequestFigures)).scalars()}
        tasks: dict[int, list[Task]] = {}
        for task in db.session.execute(select(Task).order_by(Task.key)).scalars():
            tasks.setdefault(task.request_id, []).append(task)
        events: dict[int, list[TimelineEvent]] = {}
        for event in db.session.execute(
            select(TimelineEvent).order_by(TimelineEvent.seq)
        ).scalars():
            events.setdefault(event.request_id, []).append(event)

        assert len(requests) == len(figures) == 500
        assert [r.created_at for r in requests] == sorted(r.created_at for r in requests)
        statuses = {r.status for r in requests}
        assert RequestStatus.COMPLETED in statuses and RequestStatus.REJECTED in statuses
        completed = sum(r.status == RequestStatus.COMPLETED for r in requests)
        assert completed > 0.7 * len(requests)
        for request in requests:
            row = figures[request.id]
            assert request.status.is_terminal
            assert request.open_key is None
            assert request.resolved_at is not None
            assert since <= request.created_at < request.resolved_at < until
            assert request.updated_at == request.resolved_at
            assert request.outcome
            assert request.sla_state in ("met", "breached")
            assert row.created_at == request.created_at
            assert row.resolved_at == request.resolved_at
            assert row.kind == request.kind
            assert row.console_type == request.console.type
            assert row.outcome == request.status
            assert request.requester.role in (Role.PARTNER, Role.INSTANCE_ADMIN)
            for column in MEASURE_COLUMNS:  # each duration stored with its bucket
                seconds = getattr(row, column)
                assert getattr(row, bucket_column(column)) == duration_bucket(seconds), column

            # Calendar figures are the instants' differences; business ones follow the calendar.
            resolution = (request.resolved_at - request.created_at).total_seconds()
            assert row.resolution_seconds == resolution
            assert row.customer_wait_seconds == request.customer_wait_seconds
            assert row.resolution_business_seconds is not None
            assert row.customer_wait_business_seconds is not None
            assert row.customer_wait_seconds is not None
            assert 0 <= row.resolution_business_seconds <= resolution
            assert 0 <= row.customer_wait_business_seconds <= row.customer_wait_seconds
            business = calendar.business_seconds_between(request.created_at, request.resolved_at)
            assert row.resolution_business_seconds + row.customer_wait_business_seconds == (
                pytest.approx(business, abs=1e-6)
            )
            if request.first_response_at is None:
                assert row.first_response_seconds is None
                assert row.first_response_business_seconds is None
                assert row.agent_id is None
            else:
                assert row.first_response_seconds == (
                    (request.first_response_at - request.created_at).total_seconds()
                )
                assert row.first_response_business_seconds is not None
                assert 0 <= row.first_response_business_seconds <= row.first_response_seconds
                assert row.first_response_business_seconds <= row.resolution_business_seconds
                assert users[row.agent_id].role in (Role.AGENT, Role.MANAGER)

            # SLA: counted only for what Customer Service resolved, and met by the due time.
            assert request.resolution_due is not None
            assert request.sla_state == (
                "met" if request.resolved_at <= request.resolution_due else "breached"
            )
            if request.status.counts_for_sla:
                assert row.sla_met == (request.sla_state == "met")
            else:
                assert row.sla_met is None

            # What the workflow would have projected as the request ended, computed by the
            # workflow's own functions on the calendar: its customer waits are the consent and
            # info tasks, from opening to answer (or expiry, or cancellation).
            waits = [
                Pause(task.created_at, task.completed_at)
                for task in tasks.get(request.id, [])
                if task.type in CUSTOMER_WAITS
            ]
            target = targets[request.kind]
            sla = sla_reading(
                calendar,
                request.created_at,
                target,
                request.first_response_at,
                request.resolved_at,
                waits,
                request.resolved_at,
            )
            assert request.first_response_due == sla.first_response_due
            assert request.resolution_due == sla.resolution_due
            assert request.customer_wait_seconds == sla.customer_wait
            assert row.first_response_business_seconds == sla.figures.first_response
            assert row.resolution_business_seconds == sla.figures.resolution
            assert row.customer_wait_business_seconds == sla.figures.customer_wait
            ended = request.resolved_at
            assert request.sla_state == sla_state(
                calendar, request.created_at, target.resolution_hours, waits, ended, ended
            )

            # The timeline reads from filing to the final status; tasks are all done.
            timeline = events[request.id]
            assert [e.seq for e in timeline] == list(range(1, len(timeline) + 1))
            assert request.projected_seq == len(timeline)
            assert (timeline[0].action, timeline[0].actor) == ("filed", request.requester.username)
            assert [e.at for e in timeline] == sorted(e.at for e in timeline)
            final = [e for e in timeline if e.action == "status"]
            assert final[-1].comment == request.status.value
            assert final[-1].at == request.resolved_at
            for task in tasks.get(request.id, []):
                assert task.state == TaskState.DONE
                assert task.completed_at is not None
                assert request.created_at <= task.created_at <= task.completed_at
                assert task.completed_at <= request.resolved_at
            if request.status == RequestStatus.COMPLETED:
                _check_completed_steps(request, tasks[request.id], users)


def _check_completed_steps(request: Request, tasks: list[Task], users: dict[int, User]) -> None:
    """A completed request went through each step of its policy, decided by the right people."""
    by_type: dict[TaskType, list[Task]] = {}
    for task in tasks:
        by_type.setdefault(task.type, []).append(task)
    if "consent" in request.steps:
        [consent] = by_type[TaskType.CONSENT]
        assert consent.decision == "grant"
        assert users[consent.completed_by_id].role == Role.INSTANCE_ADMIN
    review = by_type[TaskType.REVIEW][-1]
    assert review.decision == "approve"
    assert users[review.completed_by_id].role == Role.AGENT
    assert review.claimed_at is not None
    if request.kind == RequestKind.DISSOCIATE_LINK:
        [second] = by_type[TaskType.SECOND_APPROVAL]
        assert second.decision == "approve"
        assert second.excluded_user_id == review.completed_by_id
        assert second.completed_by_id != review.completed_by_id
    else:
        assert TaskType.SECOND_APPROVAL not in by_type


def test_figures_over_the_range_count_what_was_generated(
    app: Flask, demo_directory: Factory
) -> None:
    generate(app, 400, days=30)
    stored, recounted = rollup_rows(app)  # the weekly rollups are rebuilt after the load
    for table in ("figure_rollups", "agent_rollups"):
        assert sum(n for key, n in stored.items() if key[:2] == (table, "filed")) == 400
    assert stored == recounted
    selection = Selection(UNTIL - timedelta(days=30), UNTIL - timedelta(days=1))
    with app.app_context():
        [whole] = figures(selection)
        assert whole.count == whole.resolved == 400
        counted = db.session.execute(
            select(func.count()).where(RequestFigures.sla_met.is_not(None))
        ).scalar_one()
        assert whole.sla_counted == counted > 300
        assert whole.sla_attainment is not None and 0.75 <= whole.sla_attainment < 1
        resolution = whole.resolution
        assert resolution.calendar.p50 is not None and resolution.business.p50 is not None
        assert 0 < resolution.business.p50 <= resolution.calendar.p50
        assert resolution.calendar.p90 is not None and resolution.calendar.p90 < 14 * 86400
        assert sum(group.count for group in figures(selection, "kind")) == 400
        assert {group.key for group in figures(selection, "kind")} == {
            kind.value for kind in RequestKind
        }
        by_day = daily(selection)
        assert sum(day.created for day in by_day) == 400
        # Filings come mostly on weekdays.
        weekday = sum(d.created for d in by_day if date.fromisoformat(d.day).weekday() < 5)
        assert weekday > 0.85 * 400
        earlier = Selection(UNTIL - timedelta(days=90), UNTIL - timedelta(days=31))
        assert figures(earlier)[0].count == 0


def _snapshot(app: Flask, first: int, last: int) -> list[Any]:
    """The rows of requests first..last, with IDs made relative so two runs compare."""
    with app.app_context():
        inside = Request.id.between(first, last)
        requests = db.session.execute(
            select(*Request.__table__.c).where(inside).order_by(Request.id)
        ).all()
        figures = db.session.execute(
            select(*RequestFigures.__table__.c)
            .where(RequestFigures.request_id.between(first, last))
            .order_by(RequestFigures.request_id)
        ).all()
        tasks = db.session.execute(
            select(*(c for c in Task.__table__.c if c.name != "id"))
            .where(Task.request_id.between(first, last))
            .order_by(Task.request_id, Task.key)
        ).all()
        events = db.session.execute(
            select(*(c for c in TimelineEvent.__table__.c if c.name != "id"))
            .where(TimelineEvent.request_id.between(first, last))
            .order_by(TimelineEvent.request_id, TimelineEvent.seq)
        ).all()
    return [
        [(row[0] - first, *row[1:]) for row in rows] for rows in (requests, figures, tasks, events)
    ]


def _ids(app: Flask) -> tuple[int, int]:
    with app.app_context():
        low, high = db.session.execute(select(func.min(Request.id), func.max(Request.id))).one()
        return int(low), int(high)


def test_the_same_seed_gives_the_same_history(app: Flask, demo_directory: Factory) -> None:
    generate(app, 150, seed=11)
    first, last = _ids(app)
    generate(app, 150, seed=11)
    _, again = _ids(app)
    assert again == last + 150
    assert _snapshot(app, first, last) == _snapshot(app, last + 1, again)
    generate(app, 150, seed=12)
    assert _snapshot(app, again + 1, again + 150) != _snapshot(app, first, last)


def test_a_request_filed_afterwards_gets_a_fresh_id(app: Flask, demo_directory: Factory) -> None:
    generate(app, 50)
    _, last = _ids(app)
    with app.app_context():
        pacct = db.session.execute(select(User).filter_by(username="pacct")).scalar_one()
        generated = db.session.get(Request, last)
        assert generated is not None
        # Filed the way `service.requests.file_request` stores a request: the ID is the database's.
        filed = Request(
            kind=RequestKind.ESTABLISH_LINK,
            console_id=generated.console_id,
            instance_id=generated.instance_id,
            requester_id=pacct.id,
            reason="After the history",
            status=RequestStatus.SUBMITTED,
            open_key="establish_link:after",
            steps=["review"],
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        db.session.add(filed)
        db.session.commit()
        assert filed.id == last + 1
    generate(app, 10)
    assert _ids(app)[1] == last + 11


def test_refuses_an_empty_directory_and_names_the_seed_command(app: Flask) -> None:
    result = run(app, "demo-history", "--requests", "10", "--allow-non-sqlite")
    assert result.exit_code != 0
    assert "There are no consoles or instances to file requests for" in result.output
    assert "linkdesk seed-demo" in result.output


def test_refuses_a_directory_without_agents(app: Flask, make: Factory) -> None:
    make.console("ACCT-01")
    make.instance("ACME-US")
    make.user("pacct", "partner", console="ACCT-01")
    result = run(app, "demo-history", "--requests", "10", "--allow-non-sqlite")
    assert result.exit_code != 0
    assert "There are no agent users to work the requests" in result.output
    assert "linkdesk seed-demo" in result.output
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Request)).scalar_one() == 0


def test_refuses_a_non_sqlite_database_unless_allowed(base_config: dict[str, Any]) -> None:
    from service import create_app

    other = create_app({**base_config, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    result = run(other, "demo-history", "--requests", "10")
    assert result.exit_code != 0
    assert "Refusing to write synthetic history into a non-SQLite database" in result.output
    assert "--allow-non-sqlite" in result.output


CALENDARS = [
    {},
    {"timezone": "Europe/Paris", "start": "08:30", "end": "18:00", "holidays": ["2025-12-25"]},
    {"timezone": "America/New_York", "workdays": [0, 1, 2, 3, 4, 5, 6], "end": "24:00",
     "start": "00:00"},
    {"timezone": "Australia/Lord_Howe", "workdays": [6, 0, 1, 2, 3], "start": "01:00",
     "end": "03:00"},
]  # fmt: skip


@pytest.mark.parametrize("settings", CALENDARS)
def test_the_cached_clock_agrees_with_the_calendar(settings: dict[str, Any]) -> None:
    calendar = BusinessCalendar.from_config(settings)
    since = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    clock = BusinessClock(calendar, since, since + 7 * 86400)  # grows as it is asked
    rng = Random(5)
    for _ in range(300):
        start = since + rng.randrange(2 * 365 * 86400)
        amount = rng.choice([0, 1, rng.randrange(1, 40_000), rng.randrange(1, 2_000_000)])
        end = start + rng.randrange(40 * 86400)
        at = datetime.fromtimestamp(start, UTC)
        expected = calendar.add_business_seconds(at, amount).timestamp()
        assert clock.add(start, amount) == expected
        between = calendar.business_seconds_between(at, datetime.fromtimestamp(end, UTC))
        assert clock.between(start, end) == between


def _instant(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _maybe(at: float | None) -> datetime | None:
    return None if at is None else _instant(at)


@pytest.mark.parametrize("settings", CALENDARS)
def test_the_cached_clock_runs_the_sla_rules_as_the_calendar_does(
    settings: dict[str, Any],
) -> None:
    calendar = BusinessCalendar.from_config(settings)
    since = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    cached, exact = BusinessClock(calendar, since, since + 7 * 86400), CalendarClock(calendar)
    target = SlaTarget(first_response_hours=4, resolution_hours=16)
    rng = Random(6)
    for _ in range(200):
        created = since + rng.randrange(2 * 365 * 86400)
        pauses: list[tuple[float, float | None]] = []
        start = created
        for _ in range(rng.randrange(3)):
            start += rng.randrange(1, 5 * 86400)
            end = start + rng.randrange(4 * 86400)
            pauses.append((start, end))
            start = end
        ended = start + rng.randrange(1, 10 * 86400)
        first = rng.choice([None, created + rng.randrange(1, int(ended - created) + 1)])
        if rng.random() < 0.3:  # still waiting on the customer, since before or after filing
            pauses.append((ended - rng.randrange(1, 2 * 86400), None))
        spans = [(_instant(a), _maybe(b)) for a, b in pauses]

        reading = cached.reading(created, target, first, ended, pauses, ended)
        expected = exact.reading(
            _instant(created), target, _maybe(first), _instant(ended), spans, _instant(ended)
        )
        assert _maybe(reading.first_response_due) == expected.first_response_due
        assert _maybe(reading.resolution_due) == expected.resolution_due
        assert reading.customer_wait == expected.customer_wait
        assert reading.figures == expected.figures
        for hours in (target.first_response_hours, target.resolution_hours):
            for met in (None, first, ended):
                ratio = rng.choice([0.75, 0.5])
                assert cached.state(created, hours, pauses, ended, met, ratio) == exact.state(
                    _instant(created), hours, spans, _instant(ended), _maybe(met), ratio
                )
