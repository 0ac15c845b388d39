"""Turnaround figures for managers: JSON, or CSV with `Accept: text/csv`."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Response, request

from domain.vocabulary import Role
from service import auth
from service.api import Blueprint
from service.api.schemas import ErrorSchema, TurnaroundArgsSchema, TurnaroundSchema
from service.metrics import figures, report
from service.metrics.selection import selection_from
from service.models import utcnow

blp = Blueprint(
    "metrics", __name__, url_prefix="/api/v1/metrics", description="Turnaround figures (managers)"
)


@blp.route("/turnaround", methods=["GET"])
@auth.roles_required(Role.MANAGER)
@blp.arguments(TurnaroundArgsSchema, location="query")
@blp.response(200, TurnaroundSchema)
@blp.alt_response(404, schema=ErrorSchema, description="Not a manager")
@blp.alt_response(422, schema=ErrorSchema, description="Bad range or filter")
@blp.alt_response(
    200,
    schema={"type": "string", "example": ",".join(figures.CSV_COLUMNS)},
    content_type="text/csv",
    description="With `Accept: text/csv`: one line per group",
)
def turnaround(args: dict[str, Any]) -> Any:
    """Turnaround figures of the requests filed in a date range (UTC days, both included).

    Medians and 90th percentiles are in seconds, in calendar time and in business hours of the
    SLA calendar with customer waits excluded. SLA attainment counts the requests Customer
    Service resolved (completed, rejected, failed). The backlog is what is open now, with the
    kind, console type and agent filters applied. With `Accept: text/csv`, the figures table
    (one line per group, or one for all) as CSV.
    """
    selection = selection_from(
        args.get("from_"),
        args.get("to"),
        kind=args.get("kind"),
        console_type=args.get("console_type"),
        agent_id=args.get("agent"),
    )
    group_by = args.get("group_by")
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        rows = figures.figures(selection, group_by)
        buffer = io.StringIO()
        csv.writer(buffer).writerows(figures.figures_csv_rows(rows))
        name = f"turnaround-{selection.start}-{selection.end}.csv"
        return Response(
            buffer.getvalue(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return report.turnaround(selection, group_by, utcnow())
