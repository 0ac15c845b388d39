"""The directory as the caller may see it: consoles, instances and relationships; and, for
administrators, its edits: create and edit consoles and instances, override relationships.

An answer with a console or instance carries its ETag (a digest of its editable values); an
edit (PATCH) must send it back as `If-Match` (428 without), so an edit of an older state is
refused (409, with the current values) instead of overwriting someone else's change.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_login import login_required

from domain.vocabulary import Role
from service import auth, directory, directory_admin
from service.api import Blueprint
from service.api.schemas import (
    UNAVAILABLE,
    ConsoleCreateSchema,
    ConsoleListSchema,
    ConsoleSchema,
    ConsoleStaleErrorSchema,
    ConsoleUpdateSchema,
    ErrorSchema,
    InstanceCreateSchema,
    InstanceListSchema,
    InstanceSchema,
    InstanceStaleErrorSchema,
    InstanceUpdateSchema,
    OpenRequestErrorSchema,
    PageArgsSchema,
    RelationshipArgsSchema,
    RelationshipListSchema,
    RelationshipOverrideSchema,
    RelationshipSchema,
)
from service.api.users import PreconditionRequired
from service.directory import Page
from service.models import Console, Instance, Relationship

blp = Blueprint("directory", __name__, url_prefix="/api/v1", description="Directory")
admins_only = auth.roles_required(Role.ADMIN)
NOT_ADMIN = "Not an administrator (this is no address for other roles)"
ETAG = {"ETag": {"schema": {"type": "string"}, "description": "The state's digest, quoted"}}
STALE = "It changed since the state you sent: `current` holds it as it is now"
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "maxLength": 64},
    "description": "The ETag of the console or instance as you read it",
}
Entry = Console | Instance


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


def _with_etag(entry: Entry, status: int = 200) -> tuple[Entry, int, dict[str, str]]:
    return entry, status, {"ETag": directory_admin.etag(entry)}


def _if_match(entry: Entry) -> str:
    sent = request.headers.get("If-Match")
    if sent is None:
        raise PreconditionRequired(
            f"Send If-Match: {directory_admin.etag(entry)} (the ETag as you read it), so an "
            "edit never overwrites a change you have not seen."
        )
    return sent


def _stale(problem: directory_admin.StaleEntry) -> directory_admin.StaleEntry:
    schema = ConsoleSchema() if isinstance(problem.current, Console) else InstanceSchema()
    problem.extra = {"current": schema.dump(problem.current)}
    problem.headers["ETag"] = directory_admin.etag(problem.current)
    return problem


@blp.route("/consoles", methods=["POST"])
@admins_only
@blp.arguments(ConsoleCreateSchema)
@blp.response(201, ConsoleSchema, headers=ETAG)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_ADMIN)
@blp.alt_response(409, schema=ErrorSchema, description="The code is taken")
@blp.alt_response(422, schema=ErrorSchema, description="Bad field")
@blp.alt_response(503, **UNAVAILABLE)
def create_console(body: dict[str, Any]) -> tuple[Entry, int, dict[str, str]]:
    """Create a console (administrators)."""
    console = directory_admin.create_console(
        auth.signed_in_user(), body["code"], body["name"], body["type"].value, body["reason"]
    )
    return _with_etag(console, 201)


@blp.route("/consoles/<int:console_id>", methods=["PATCH"])
@admins_only
@blp.doc(parameters=[IF_MATCH])
@blp.arguments(ConsoleUpdateSchema)
@blp.response(200, ConsoleSchema, headers=ETAG)
@blp.alt_response(404, schema=ErrorSchema, description=f"No such console, or: {NOT_ADMIN}")
@blp.alt_response(409, schema=ConsoleStaleErrorSchema, description=STALE)
@blp.alt_response(422, schema=ErrorSchema, description="Bad field")
@blp.alt_response(428, schema=ErrorSchema, description="No If-Match header")
@blp.alt_response(503, **UNAVAILABLE)
def update_console(body: dict[str, Any], console_id: int) -> tuple[Entry, int, dict[str, str]]:
    """Change a console's name and type (administrators); only the fields sent change."""
    console = directory_admin.get_console(console_id)
    changes = {key: value for key, value in body.items() if key != "reason"}
    if "type" in changes:
        changes["type"] = changes["type"].value
    try:
        directory_admin.update_console(
            auth.signed_in_user(), console, _if_match(console), changes, body["reason"]
        )
    except directory_admin.StaleEntry as problem:
        raise _stale(problem) from None
    return _with_etag(console)


@blp.route("/instances", methods=["POST"])
@admins_only
@blp.arguments(InstanceCreateSchema)
@blp.response(201, InstanceSchema, headers=ETAG)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_ADMIN)
@blp.alt_response(409, schema=ErrorSchema, description="The company code is taken")
@blp.alt_response(422, schema=ErrorSchema, description="Bad field")
@blp.alt_response(503, **UNAVAILABLE)
def create_instance(body: dict[str, Any]) -> tuple[Entry, int, dict[str, str]]:
    """Create an instance (administrators)."""
    instance = directory_admin.create_instance(
        auth.signed_in_user(), body["code"], body["name"], body["reason"]
    )
    return _with_etag(instance, 201)


@blp.route("/instances/<int:instance_id>", methods=["PATCH"])
@admins_only
@blp.doc(parameters=[IF_MATCH])
@blp.arguments(InstanceUpdateSchema)
@blp.response(200, InstanceSchema, headers=ETAG)
@blp.alt_response(404, schema=ErrorSchema, description=f"No such instance, or: {NOT_ADMIN}")
@blp.alt_response(409, schema=InstanceStaleErrorSchema, description=STALE)
@blp.alt_response(422, schema=ErrorSchema, description="Bad field")
@blp.alt_response(428, schema=ErrorSchema, description="No If-Match header")
@blp.alt_response(503, **UNAVAILABLE)
def update_instance(body: dict[str, Any], instance_id: int) -> tuple[Entry, int, dict[str, str]]:
    """Change an instance's name (administrators)."""
    instance = directory_admin.get_instance(instance_id)
    changes = {key: value for key, value in body.items() if key != "reason"}
    try:
        directory_admin.update_instance(
            auth.signed_in_user(), instance, _if_match(instance), changes, body["reason"]
        )
    except directory_admin.StaleEntry as problem:
        raise _stale(problem) from None
    return _with_etag(instance)


@blp.route("/relationships", methods=["PATCH"])
@admins_only
@blp.arguments(RelationshipOverrideSchema)
@blp.response(200, RelationshipSchema)
@blp.alt_response(
    404, schema=ErrorSchema, description=f"No such console or instance, or: {NOT_ADMIN}"
)
@blp.alt_response(
    409,
    schema=OpenRequestErrorSchema,
    description="Open requests are about this pair (`requests`): send `confirm: true` to override",
)
@blp.alt_response(422, schema=ErrorSchema, description="Bad field")
@blp.alt_response(503, **UNAVAILABLE)
def override_relationship(body: dict[str, Any]) -> Relationship:
    """Set a relationship's two flags as an administrator's override, with the reason, kept in
    the audit log (its history); a change an open request is about needs `confirm`."""
    actor = auth.signed_in_user()
    console = directory.resolve_console(actor, body["console"], "console")
    instance = directory.resolve_instance(actor, body["instance"], "instance")
    try:
        return directory_admin.override_relationship(
            actor,
            console,
            instance,
            access_enabled=body["access_enabled"],
            linked=body["linked"],
            reason=body["reason"],
            confirm=body["confirm"],
        )
    except directory_admin.OpenRequests as problem:
        problem.extra = {"requests": problem.requests}
        raise
