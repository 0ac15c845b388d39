"""Personal API tokens: create with a password, list and revoke your own."""

from __future__ import annotations

from typing import Any

from flask_login import login_required

from service import auth, mfa
from service.api import Blueprint
from service.api.schemas import (
    UNAVAILABLE,
    ErrorSchema,
    TokenCreatedSchema,
    TokenCreateSchema,
    TokenListSchema,
    TokenSchema,
)
from service.directory import Page

blp = Blueprint("tokens", __name__, url_prefix="/api/v1/tokens", description="API tokens")


@blp.route("", methods=["POST"])
@blp.doc(security=[])
@blp.arguments(TokenCreateSchema)
@blp.response(201, TokenCreatedSchema)
@blp.alt_response(401, schema=ErrorSchema, description="Wrong username or password")
@blp.alt_response(
    403,
    schema=ErrorSchema,
    description="The account signs in with a second factor (or its role requires one): "
    "create the token on the settings page",
)
@blp.alt_response(429, schema=ErrorSchema, description="Too many failed attempts")
@blp.alt_response(503, **UNAVAILABLE)
def create_token(body: dict[str, Any]) -> dict[str, Any]:
    """Create a personal API token from a username and password.

    Not for an account with two-factor sign-in (or whose role requires it): a password alone
    is not enough, so its tokens are created on the settings page.
    """
    user = auth.authenticate(body["username"], body["password"])
    mfa.check_password_may_create_token(user)
    token, secret = auth.create_token(user, body.get("name"))
    return {name: getattr(token, name) for name in TokenSchema().fields} | {"token": secret}


@blp.route("", methods=["GET"])
@login_required
@blp.response(200, TokenListSchema)
def list_tokens() -> Page:
    """List your API tokens that have not been revoked."""
    tokens = auth.list_tokens(auth.signed_in_user())
    return Page(tokens, 1, len(tokens) or 1, len(tokens))


@blp.route("/<int:token_id>", methods=["DELETE"])
@login_required
@blp.response(204)
@blp.alt_response(404, schema=ErrorSchema)
@blp.alt_response(503, **UNAVAILABLE)
def revoke_token(token_id: int) -> None:
    """Revoke one of your API tokens; it stops working at once."""
    auth.revoke_token(auth.signed_in_user(), token_id)
