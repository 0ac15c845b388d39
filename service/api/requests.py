"""Requests: file, list, read, cancel, comment and answer info requests."""

from __future__ import annotations

from typing import Any

from flask_login import login_required

from service import auth
from service import requests as service
from service.api import Blueprint
from service.api.schemas import (
    UNAVAILABLE,
    CancelSchema,
    CommentSchema,
    ErrorSchema,
    RequestArgsSchema,
    RequestCreateSchema,
    RequestDetailSchema,
    RequestFilterArgs,
    RequestListSchema,
    ResponseSchema,
    TimelineEntrySchema,
)
from service.directory import Page
from service.models import TimelineEvent

blp = Blueprint("requests", __name__, url_prefix="/api/v1/requests", description="Requests")
# The list's filters shared with the pages (dates, console type, agent, SLA, age, resolution).
FILTERS = tuple(RequestFilterArgs().fields)


def _detail(public_id: str) -> service.RequestDetail:
    user = auth.signed_in_user()
    return service.detail(user, service.get_request(user, public_id))


@blp.route("", methods=["POST"])
@login_required
@blp.arguments(RequestCreateSchema)
@blp.response(201, RequestDetailSchema)
@blp.alt_response(403, schema=ErrorSchema, description="Only partners and instance admins file")
@blp.alt_response(409, schema=ErrorSchema, description="An open request already asks this")
@blp.alt_response(422, schema=ErrorSchema, description="Unknown reference or nothing to do")
@blp.alt_response(503, **UNAVAILABLE)
def file_request(body: dict[str, Any]) -> service.RequestDetail:
    """File a request for one console and one instance."""
    user = auth.signed_in_user()
    request = service.file_request(
        user, body["kind"], body["console_id"], body["instance_id"], body["reason"]
    )
    return service.detail(user, request)


@blp.route("", methods=["GET"])
@login_required
@blp.arguments(RequestArgsSchema, location="query")
@blp.response(200, RequestListSchema)
@blp.alt_response(404, schema=ErrorSchema, description="Unknown or out-of-scope console, company")
def list_requests(args: dict[str, Any]) -> Page:
    """List the requests you may see, newest first.

    Every filter narrows the list; the turnaround figures drill down to it with the filed and
    ended days, console type, agent, SLA state, age and resolution-time filters.
    """
    filters = service.RequestFilters(
        status=service.statuses_of(args.get("status") or []),
        kind=args.get("kind"),
        console=args.get("console_id"),
        instance=args.get("instance_id"),
        search=args.get("q"),
        **{name: args.get(name) for name in FILTERS},
    )
    return service.list_requests(auth.signed_in_user(), filters, args["page"], args["per_page"])


@blp.route("/<public_id>", methods=["GET"])
@login_required
@blp.response(200, RequestDetailSchema)
@blp.alt_response(404, schema=ErrorSchema)
def get_request(public_id: str) -> service.RequestDetail:
    """Show a request with its SLA, open tasks and timeline."""
    return _detail(public_id)


@blp.route("/<public_id>/cancel", methods=["POST"])
@login_required
@blp.arguments(CancelSchema)
@blp.response(200, RequestDetailSchema)
@blp.alt_response(403, schema=ErrorSchema, description="Not the caller's to cancel")
@blp.alt_response(409, schema=ErrorSchema, description="Too late to cancel")
@blp.alt_response(503, **UNAVAILABLE)
def cancel_request(body: dict[str, Any], public_id: str) -> service.RequestDetail:
    """Cancel a request before it is applied."""
    user = auth.signed_in_user()
    request = service.cancel(user, service.get_request(user, public_id), body["reason"])
    return service.detail(user, request)


@blp.route("/<public_id>/comments", methods=["POST"])
@login_required
@blp.arguments(CommentSchema)
@blp.response(201, TimelineEntrySchema)
@blp.alt_response(403, schema=ErrorSchema, description="Internal notes: Customer Service only")
@blp.alt_response(503, **UNAVAILABLE)
def add_comment(body: dict[str, Any], public_id: str) -> TimelineEvent:
    """Comment on a request; internal notes are for Customer Service only."""
    user = auth.signed_in_user()
    request = service.get_request(user, public_id)
    return service.add_comment(user, request, body["body"], body["internal"])


@blp.route("/<public_id>/response", methods=["POST"])
@login_required
@blp.arguments(ResponseSchema)
@blp.response(200, RequestDetailSchema)
@blp.alt_response(403, schema=ErrorSchema, description="Only the requesting side answers")
@blp.alt_response(409, schema=ErrorSchema, description="No question is waiting")
@blp.alt_response(503, **UNAVAILABLE)
def respond(body: dict[str, Any], public_id: str) -> service.RequestDetail:
    """Answer Customer Service's question; the request goes back to the same agent."""
    user = auth.signed_in_user()
    request = service.respond(user, service.get_request(user, public_id), body["answer"])
    return service.detail(user, request)
