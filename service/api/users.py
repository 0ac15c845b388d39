"""Users, for administrators: list, create, read, edit, deactivate and reactivate.

Every answer with a user carries its version as the `ETag`; an edit (PATCH) must send it back
as `If-Match`, so an edit made from an older version is refused (409, with the current values)
instead of overwriting someone else's change. A PATCH without `If-Match` is refused (428).
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from domain.vocabulary import Role
from service import auth, users
from service.api import Blueprint
from service.api.schemas import (
    UNAVAILABLE,
    ErrorSchema,
    ReasonSchema,
    SessionsEndedSchema,
    StaleErrorSchema,
    UserArgsSchema,
    UserCreateSchema,
    UserListSchema,
    UserSchema,
    UserUpdateSchema,
)
from service.directory import Page
from service.errors import ServiceError
from service.models import User

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Users (admins)")
admins_only = auth.roles_required(Role.ADMIN)
NOT_ADMIN = "Not an administrator (this is no address for other roles)"
ETAG = {"ETag": {"schema": {"type": "string"}, "description": "The user's version, quoted"}}
STALE = "The user changed since the version you sent: `current` holds it as it is now"
IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "maxLength": 64},
    "description": 'The ETag of the user as you read it (e.g. `"3"`)',
}


class PreconditionRequired(ServiceError):
    status = 428
    code = "precondition_required"


def etag(user: User) -> str:
    """The ETag of a user's version."""
    return f'"{user.version}"'


def _with_etag(user: User, status: int = 200) -> tuple[User, int, dict[str, str]]:
    return user, status, {"ETag": etag(user)}


def _stale(problem: users.StaleVersion) -> users.StaleVersion:
    """The refusal of an edit of an older version, with the current values and ETag."""
    problem.extra = {"current": UserSchema().dump(problem.current)}
    problem.headers["ETag"] = etag(problem.current)
    return problem


@blp.route("", methods=["GET"])
@admins_only
@blp.arguments(UserArgsSchema, location="query")
@blp.response(200, UserListSchema)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_ADMIN)
def list_users(args: dict[str, Any]) -> Page:
    """List users by username, searched and filtered by role and state."""
    filters = users.UserFilters(args.get("q"), args.get("role"), args.get("active"))
    return users.list_users(filters, args["page"], args["per_page"])


@blp.route("", methods=["POST"])
@admins_only
@blp.arguments(UserCreateSchema)
@blp.response(201, UserSchema, headers=ETAG)
@blp.alt_response(404, schema=ErrorSchema, description=NOT_ADMIN)
@blp.alt_response(409, schema=ErrorSchema, description="Username or e-mail address taken")
@blp.alt_response(422, schema=ErrorSchema, description="Bad field, or a scope unfit for the role")
@blp.alt_response(503, **UNAVAILABLE)
def create_user(body: dict[str, Any]) -> tuple[User, int, dict[str, str]]:
    """Create a user with no password: send them a password link from the user's page."""
    user = users.create_user(
        auth.signed_in_user(),
        username=body["username"],
        display_name=body.get("display_name"),
        email=body.get("email"),
        role=body["role"],
        console=body.get("console_id"),
        instances=body.get("instance_ids") or (),
        reason=body["reason"],
    )
    return _with_etag(user, 201)


@blp.route("/<int:user_id>")
class UserView(MethodView):
    """One user. GET and PATCH share one route, so an ID past any table's is 404 for both."""

    @admins_only
    @blp.response(200, UserSchema, headers=ETAG)
    @blp.alt_response(404, schema=ErrorSchema, description=f"No such user, or: {NOT_ADMIN}")
    def get(self, user_id: int) -> tuple[User, int, dict[str, str]]:
        """Read one user, with its version as the ETag."""
        return _with_etag(users.get_user(user_id))

    @admins_only
    @blp.doc(parameters=[IF_MATCH])
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema, headers=ETAG)
    @blp.alt_response(404, schema=ErrorSchema, description=f"No such user, or: {NOT_ADMIN}")
    @blp.alt_response(
        409,
        schema=StaleErrorSchema,
        description=f"{STALE}; or the e-mail address is taken, or it would demote the last admin",
    )
    @blp.alt_response(
        422, schema=ErrorSchema, description="Bad field, or a scope unfit for the role"
    )
    @blp.alt_response(428, schema=ErrorSchema, description="No If-Match header")
    @blp.alt_response(503, **UNAVAILABLE)
    def patch(self, body: dict[str, Any], user_id: int) -> tuple[User, int, dict[str, str]]:
        """Change a user's name, e-mail, role and scope; only the fields sent change.

        Send the ETag you read as `If-Match`. Changing the role drops a scope the new role
        does not have (a partner's console, an instance admin's instances).
        """
        user = users.get_user(user_id)
        sent = request.headers.get("If-Match")
        if sent is None:
            raise PreconditionRequired(
                f"Send If-Match: {etag(user)} (the ETag of the user as you read it), so an "
                "edit never overwrites a change you have not seen."
            )
        version = user.version if sent.strip() == etag(user) else -1
        changes = {_FIELDS.get(key, key): value for key, value in body.items() if key != "reason"}
        try:
            return _with_etag(
                users.update_user(auth.signed_in_user(), user, version, changes, body["reason"])
            )
        except users.StaleVersion as problem:
            raise _stale(problem) from None


_FIELDS = {"console_id": "console", "instance_ids": "instances"}


@blp.route("/<int:user_id>/deactivate", methods=["POST"])
@admins_only
@blp.arguments(ReasonSchema, required=False)
@blp.response(200, SessionsEndedSchema, headers=ETAG)
@blp.alt_response(404, schema=ErrorSchema, description=f"No such user, or: {NOT_ADMIN}")
@blp.alt_response(409, schema=ErrorSchema, description="Yourself, or the last active admin")
@blp.alt_response(503, **UNAVAILABLE)
def deactivate_user(body: dict[str, Any], user_id: int) -> tuple[Any, int, dict[str, str]]:
    """Deactivate a user: their sessions end and their API tokens stop working at once."""
    user = users.get_user(user_id)
    ended = users.set_active(auth.signed_in_user(), user, False, body.get("reason"))
    return _ended(user, ended), 200, {"ETag": etag(user)}


@blp.route("/<int:user_id>/reactivate", methods=["POST"])
@admins_only
@blp.arguments(ReasonSchema, required=False)
@blp.response(200, UserSchema, headers=ETAG)
@blp.alt_response(404, schema=ErrorSchema, description=f"No such user, or: {NOT_ADMIN}")
@blp.alt_response(503, **UNAVAILABLE)
def reactivate_user(body: dict[str, Any], user_id: int) -> tuple[User, int, dict[str, str]]:
    """Let a deactivated user sign in and use their API tokens again."""
    user = users.get_user(user_id)
    users.set_active(auth.signed_in_user(), user, True, body.get("reason"))
    return _with_etag(user)


def _ended(user: User, ended: int) -> dict[str, Any]:
    return {name: getattr(user, name) for name in UserSchema().fields} | {"sessions_ended": ended}
