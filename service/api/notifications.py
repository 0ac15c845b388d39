"""The caller's in-app notifications."""

from __future__ import annotations

from typing import Any

from flask_login import login_required

from service import auth
from service import notifications as service
from service.api import Blueprint
from service.api.schemas import (
    UNAVAILABLE,
    ErrorSchema,
    MarkedSchema,
    NotificationArgsSchema,
    NotificationListSchema,
)

blp = Blueprint(
    "notifications", __name__, url_prefix="/api/v1/notifications", description="Notifications"
)


@blp.route("", methods=["GET"])
@login_required
@blp.arguments(NotificationArgsSchema, location="query")
@blp.response(200, NotificationListSchema)
def list_notifications(args: dict[str, Any]) -> dict[str, Any]:
    """List your notifications, newest first, with the unread count."""
    user = auth.signed_in_user()
    page = service.list_notifications(user, args["unread"], args["page"], args["per_page"])
    return {
        "items": page.items,
        "page": page.page,
        "per_page": page.per_page,
        "total": page.total,
        "total_exact": page.total_exact,
        "unread": service.unread_count(user),
    }


@blp.route("/<int:notification_id>/read", methods=["POST"])
@login_required
@blp.response(200, MarkedSchema)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(503, **UNAVAILABLE)
def mark_read(notification_id: int) -> dict[str, int]:
    """Mark one notification as read."""
    return {"marked": service.mark_read(auth.signed_in_user(), notification_id)}


@blp.route("/read", methods=["POST"])
@login_required
@blp.response(200, MarkedSchema)
@blp.alt_response(503, **UNAVAILABLE)
def mark_all_read() -> dict[str, int]:
    """Mark all your notifications as read."""
    return {"marked": service.mark_read(auth.signed_in_user())}
