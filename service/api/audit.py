"""The audit log for admins: JSON pages by cursor, or the whole filtered log as CSV."""

from __future__ import annotations

from typing import Any

from flask import request

from domain.vocabulary import Role
from service import audit, auth
from service.api import Blueprint
from service.api.schemas import AuditArgsSchema, AuditPageSchema, ErrorSchema
from service.exports import csv_download

blp = Blueprint("audit", __name__, url_prefix="/api/v1/audit", description="Audit log (admins)")


@blp.route("", methods=["GET"])
@auth.roles_required(Role.ADMIN)
@blp.arguments(AuditArgsSchema, location="query")
@blp.response(200, AuditPageSchema)
@blp.alt_response(404, schema=ErrorSchema, description="Not an admin")
@blp.alt_response(422, schema=ErrorSchema, description="Bad filter, date range or cursor")
@blp.alt_response(
    200,
    schema={"type": "string", "example": ",".join(audit.CSV_COLUMNS)},
    content_type="text/csv",
    description="With `Accept: text/csv`: every event the filters select, newest first, "
    "streamed (the cursor and `per_page` do not apply)",
)
def list_events(args: dict[str, Any]) -> Any:
    """The audit log: who did what to which object, newest first, a page at a time.

    Filter by actor, action, object type and reference, and a date range (UTC days, both
    included). Go on with the `next_cursor` of a page as `cursor`, keeping the filters. With
    `Accept: text/csv`, every selected event as CSV, streamed.
    """
    filters = audit.AuditFilters.from_args(args)
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        return csv_download(audit.export_rows(filters), audit.export_name(filters))
    cursor = audit.Cursor.parse(args["cursor"]) if "cursor" in args else None
    found = audit.page(filters, cursor, args["per_page"])
    return {
        "events": found.events,
        "per_page": args["per_page"],
        "next_cursor": str(found.next_cursor) if found.next_cursor else None,
    }
