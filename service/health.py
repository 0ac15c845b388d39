"""Liveness and readiness probes for operators and load balancers."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from domain.vocabulary import TaskState
from service.extensions import db
from service.models import Request, Task
from service.temporal import bridge

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up and serving requests."""
    return jsonify(status="ok")


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus metrics: request and task counts from the shared database.

    Computed at scrape time from the database every web process shares, so any process
    answers for the whole deployment.
    """
    by_status = db.session.execute(
        select(Request.kind, Request.status, func.count()).group_by(Request.kind, Request.status)
    ).all()
    by_sla = db.session.execute(
        select(Request.sla_state, func.count())
        .where(Request.open_key.is_not(None))
        .group_by(Request.sla_state)
    ).all()
    tasks = db.session.execute(
        select(Task.type, Task.state, func.count())
        .where(Task.state != TaskState.DONE)
        .group_by(Task.type, Task.state)
    ).all()
    lines = [
        "# HELP linkdesk_requests Requests by kind and status.",
        "# TYPE linkdesk_requests gauge",
        *(
            f'linkdesk_requests{{kind="{kind.value}",status="{status.value}"}} {count}'
            for kind, status, count in by_status
        ),
        "# HELP linkdesk_open_requests_sla Open requests by SLA state.",
        "# TYPE linkdesk_open_requests_sla gauge",
        *(
            f'linkdesk_open_requests_sla{{state="{state.value}"}} {count}'
            for state, count in by_sla
        ),
        "# HELP linkdesk_open_tasks Open and claimed human tasks by type and state.",
        "# TYPE linkdesk_open_tasks gauge",
        *(
            f'linkdesk_open_tasks{{type="{type_.value}",state="{state.value}"}} {count}'
            for type_, state, count in tasks
        ),
    ]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready to serve: the database answers and Temporal is reachable (503 otherwise)."""
    checks = {"database": "ok", "temporal": "ok"}
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        checks["database"] = "unreachable"
    if not bridge().is_healthy():
        checks["temporal"] = "unreachable"
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503
