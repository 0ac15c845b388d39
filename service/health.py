"""Liveness and readiness probes for operators and load balancers."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request
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
    answers for the whole deployment. With `METRICS_TOKEN` set, only a scraper sending it as
    its bearer token is answered.
    """
    if not _scraper_allowed():
        return Response(
            "Send the metrics scrape token: 'Authorization: Bearer <token>'.\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
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


def _scraper_allowed() -> bool:
    """Whether the request may read /metrics: no scrape token is configured, or it sent it.

    The scrape token is not a user's API token and is checked here alone: it opens nothing
    else, and no user's token opens /metrics.
    """
    expected = current_app.config["METRICS_TOKEN"]
    if not expected:
        return True
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    # Compared in constant time, so the answer's timing does not tell how much of it matched.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        sent.strip().encode(), str(expected).encode()
    )


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
