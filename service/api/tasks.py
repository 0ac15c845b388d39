"""The task queue: list, claim, release, reassign and complete human tasks."""

from __future__ import annotations

from typing import Any

from flask_login import login_required

from service import auth
from service import requests as service
from service.api import Blueprint
from service.api.schemas import (
    UNAVAILABLE,
    ErrorSchema,
    RequestDetailSchema,
    TaskArgsSchema,
    TaskCompleteSchema,
    TaskListSchema,
    TaskReassignSchema,
)
from service.directory import Page
from service.models import Request

blp = Blueprint("tasks", __name__, url_prefix="/api/v1/tasks", description="Task queue")


def _answer(request: Request) -> service.RequestDetail:
    return service.detail(auth.signed_in_user(), request)


@blp.route("", methods=["GET"])
@login_required
@blp.arguments(TaskArgsSchema, location="query")
@blp.response(200, TaskListSchema)
def list_tasks(args: dict[str, Any]) -> Page:
    """Your queue: open and claimed tasks, most urgent SLA first."""
    filters = service.TaskFilters(
        state=args.get("state"),
        type=args.get("type"),
        assignee=args.get("assignee"),
        kind=args.get("kind"),
        sla=args.get("sla"),
        console_type=args.get("console_type"),
    )
    return service.list_tasks(auth.signed_in_user(), filters, args["page"], args["per_page"])


@blp.route("/<int:task_id>/claim", methods=["POST"])
@login_required
@blp.response(200, RequestDetailSchema)
@blp.alt_response(403, schema=ErrorSchema, description="Not a task of the caller's role")
@blp.alt_response(409, schema=ErrorSchema, description="Claimed by someone else (named)")
@blp.alt_response(503, **UNAVAILABLE)
def claim_task(task_id: int) -> service.RequestDetail:
    """Claim a task; a task claimed by someone else answers 409 naming them."""
    return _answer(service.claim_task(auth.signed_in_user(), task_id))


@blp.route("/<int:task_id>/release", methods=["POST"])
@login_required
@blp.response(200, RequestDetailSchema)
@blp.alt_response(403, schema=ErrorSchema, description="Not a task of the caller's role")
@blp.alt_response(409, schema=ErrorSchema)
@blp.alt_response(503, **UNAVAILABLE)
def release_task(task_id: int) -> service.RequestDetail:
    """Put a task you claimed back in the queue."""
    return _answer(service.release_task(auth.signed_in_user(), task_id))


@blp.route("/<int:task_id>/reassign", methods=["POST"])
@login_required
@blp.arguments(TaskReassignSchema)
@blp.response(200, RequestDetailSchema)
@blp.alt_response(403, schema=ErrorSchema, description="Managers only")
@blp.alt_response(503, **UNAVAILABLE)
def reassign_task(body: dict[str, Any], task_id: int) -> service.RequestDetail:
    """Give a task to an agent or manager (managers only)."""
    return _answer(service.reassign_task(auth.signed_in_user(), task_id, body["assignee"]))


@blp.route("/<int:task_id>/complete", methods=["POST"])
@login_required
@blp.arguments(TaskCompleteSchema)
@blp.response(200, RequestDetailSchema)
@blp.alt_response(403, schema=ErrorSchema)
@blp.alt_response(409, schema=ErrorSchema)
@blp.alt_response(503, **UNAVAILABLE)
def complete_task(body: dict[str, Any], task_id: int) -> service.RequestDetail:
    """Decide a task: approve, reject or request_info (review); grant or decline (consent)."""
    user = auth.signed_in_user()
    request = service.complete_task(user, task_id, body["decision"].value, body.get("comment"))
    return _answer(request)
