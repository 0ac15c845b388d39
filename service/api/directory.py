"""The directory as the caller may see it: consoles, instances and relationships."""

from __future__ import annotations

from typing import Any

from flask_login import login_required

from service import auth, directory
from service.api import Blueprint
from service.api.schemas import (
    ConsoleListSchema,
    ErrorSchema,
    InstanceListSchema,
    PageArgsSchema,
    RelationshipArgsSchema,
    RelationshipListSchema,
)
from service.directory import Page

blp = Blueprint("directory", __name__, url_prefix="/api/v1", description="Directory")


@blp.route("/consoles", methods=["GET"])
@login_required
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, ConsoleListSchema)
def list_consoles(args: dict[str, Any]) -> Page:
    """List the consoles you may see."""
    query = directory.visible_consoles(auth.signed_in_user())
    return directory.paginate(query, args["page"], args["per_page"])


@blp.route("/instances", methods=["GET"])
@login_required
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, InstanceListSchema)
def list_instances(args: dict[str, Any]) -> Page:
    """List the instances (companies) you may see."""
    query = directory.visible_instances(auth.signed_in_user())
    return directory.paginate(query, args["page"], args["per_page"])


@blp.route("/relationships", methods=["GET"])
@login_required
@blp.arguments(RelationshipArgsSchema, location="query")
@blp.response(200, RelationshipListSchema)
@blp.alt_response(404, schema=ErrorSchema, description="Unknown or out-of-scope reference")
def list_relationships(args: dict[str, Any]) -> Page:
    """Show relationships and their slide-in state; for one console and instance, that one."""
    return directory.list_relationships(
        auth.signed_in_user(),
        args.get("console_id"),
        args.get("instance_id"),
        page=args["page"],
        per_page=args["per_page"],
    )
