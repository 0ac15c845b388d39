"""The projection keeps each request's turnaround figures as its workflow moves."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest
from flask import Flask

from domain.durations import MEASURE_COLUMNS, bucket_column, duration_bucket
from domain.vocabulary import RequestStatus
from service.extensions import db
from service.metrics import rollups
from service.models import Request, RequestFigures, User
from tests.conftest import Factory
from tests.history import rollup_rows
from tests.lifecycle import (
    claim_and_decide,
    decide,
    file,
    task_of,
    wait_status,
)

pytestmark = pytest.mark.usefixtures("worker")


def figures_of(app: Flask, public_id: str) -> tuple[Request, RequestFigures]:
    with app.app_context():
        number = int(public_id.split("-")[1])
        request = db.session.get(Request, number)
        figures = db.session.get(RequestFigures, number)
        assert request is not None and figures is not None
        db.session.expunge_all()
        return request, figures


def test_figures_follow_consent_review_and_completion(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    partner, admin, agent = api_as("pacct"), api_as("iadmin"), api_as("agent")
    demo_directory.relationship("ACCT-01", "ACME-US", access_enabled=False, linked=True)
    request_id = file(partner, "enable_access", "ACCT-01", "ACME-US").json["id"]
    wait_status(partner, request_id, "awaiting_consent")
    request, figures = figures_of(app, request_id)
    assert (figures.kind, figures.console_type.value) == (request.kind, "accountant")
    assert figures.created_at == request.created_at
    assert figures.first_response_seconds is None and figures.resolved_at is None
    assert figures.sla_met is None and figures.outcome is None
    stored, recounted = rollup_rows(app)  # the weekly rollups move with the figures
    assert stored == recounted and stored[_by_kind(figures, "filed")] == 1
    assert stored[_by_agent(figures, "filed")] == 1 and figures.agent_id is None

    decide(admin, task_of(admin, request_id, "consent"), "grant")
    assert claim_and_decide(agent, request_id, "review", "approve").status_code == 200
    wait_status(partner, request_id, "completed")
    request, figures = figures_of(app, request_id)
    agent_id = demo_directory.get_user("agent").id
    assert request.first_response_at is not None and request.resolved_at is not None
    assert figures.agent_id == agent_id
    assert figures.outcome == RequestStatus.COMPLETED
    assert figures.resolved_at == request.resolved_at
    assert figures.first_response_seconds == pytest.approx(
        (request.first_response_at - request.created_at).total_seconds()
    )
    assert figures.resolution_seconds == pytest.approx(
        (request.resolved_at - request.created_at).total_seconds()
    )
    # The consent wait is the customer's: measured, and never longer than the whole request.
    assert 0 < figures.customer_wait_seconds < figures.resolution_seconds
    assert figures.customer_wait_seconds == pytest.approx(request.customer_wait_seconds)
    for business, calendar in (
        (figures.first_response_business_seconds, figures.first_response_seconds),
        (figures.resolution_business_seconds, figures.resolution_seconds),
    ):
        assert business is not None and 0 <= business <= calendar
    assert figures.customer_wait_business_seconds is not None
    assert figures.sla_met is True  # resolved within minutes of a multi-hour target
    for column in MEASURE_COLUMNS:  # the projection stores each duration with its bucket
        seconds = getattr(figures, column)
        assert getattr(figures, bucket_column(column)) == duration_bucket(seconds), column
    stored, recounted = rollup_rows(app)
    assert stored == recounted and stored[_by_kind(figures, "resolved")] == 1
    assert stored[_by_kind(figures, "sla_met", 1)] == 1
    assert stored[_by_agent(figures, "resolved")] == 1  # moved from "no agent" to the agent
    assert [key for key in stored if key[:2] == ("agent_rollups", "filed")] == [
        _by_agent(figures, "filed")
    ]


def _by_kind(figures: RequestFigures, figure: str, bucket: int = 0) -> tuple[str, ...]:
    """The key of the `figure_rollups` row a request counts in for a figure."""
    kind, console_type = figures.kind.value, figures.console_type.value
    return ("figure_rollups", figure, _week(figures), kind, console_type, str(bucket))


def _by_agent(figures: RequestFigures, figure: str, bucket: int = 0) -> tuple[str, ...]:
    """The key of the `agent_rollups` row a request counts in for a figure."""
    agent = str(figures.agent_id or rollups.NO_AGENT)
    return ("agent_rollups", figure, _week(figures), agent, str(bucket))


def _week(figures: RequestFigures) -> str:
    return rollups.week_start(figures.created_at.astimezone(UTC).date()).isoformat()


def test_a_cancelled_request_is_resolved_but_not_counted_for_sla(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    partner = api_as("pacct")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    cancelled = partner.post(f"/api/v1/requests/{request_id}/cancel", json={"reason": "no"})
    assert cancelled.status_code == 200, cancelled.json
    wait_status(partner, request_id, "cancelled")
    _request, figures = figures_of(app, request_id)
    assert figures.outcome == RequestStatus.CANCELLED
    assert figures.resolution_seconds is not None and figures.agent_id is None
    assert figures.sla_met is None
    stored, recounted = rollup_rows(app)
    assert stored == recounted and stored[_by_kind(figures, "resolved")] == 1
    assert not [key for key in stored if key[1] == "sla_met"]  # not judged against the SLA


def test_agent_figures_name_who_took_the_request_up(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    demo_directory.user("agent2", "agent")
    partner, agent2 = api_as("pacct"), api_as("agent2")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    task = task_of(agent2, request_id, "review")
    assert agent2.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    _request, figures = figures_of(app, request_id)
    with app.app_context():
        assert db.session.get(User, figures.agent_id).username == "agent2"
    assert figures.first_response_seconds is not None and figures.resolved_at is None
