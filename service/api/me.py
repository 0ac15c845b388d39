"""The caller: who they are, their role and their scope."""

from __future__ import annotations

from flask_login import login_required

from service import auth
from service.api import Blueprint
from service.api.schemas import ErrorSchema, MeSchema
from service.models import User

blp = Blueprint("me", __name__, url_prefix="/api/v1/me", description="The caller")


@blp.route("", methods=["GET"])
@login_required
@blp.response(200, MeSchema)
@blp.alt_response(401, schema=ErrorSchema)
def get_me() -> User:
    """Show the caller, their role, and their console or instances."""
    return auth.signed_in_user()
