"""The administrator's user pages: find, create and edit users, deactivate and reactivate
them, send password links and revoke their API tokens (all through `service.users`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from domain.vocabulary import Role
from service import auth, users
from service.errors import ServiceError
from service.models import User
from service.web.forms import (
    EditUserForm,
    NewUserForm,
    ReasonForm,
    UserFilterForm,
    load_form,
    refusals_shown_on,
)

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")
bp.add_app_template_global(Role, "Role")
PER_PAGE = 25
admins_only = auth.roles_required(Role.ADMIN)


@bp.get("")
@admins_only
def index() -> str | tuple[str, int]:
    """Users, searched by username, name or e-mail and filtered by role and state."""
    typed = request.args.to_dict()
    try:
        form = load_form(UserFilterForm(), request.args)
    except ServiceError as exc:
        page = render_template("admin_users/index.html", result=None, form=typed, errors=exc.fields)
        return page, exc.status
    active = {"yes": True, "no": False}.get(form["active"] or "")
    filters = users.UserFilters(form["q"], form["role"], active)
    result = users.list_users(filters, form["page"], PER_PAGE)
    return render_template("admin_users/index.html", result=result, form=typed, errors={})


def _new_page(problem: ServiceError | None = None) -> str:
    return render_template(
        "admin_users/new.html",
        form=request.form if problem else {},
        errors=(problem.fields or {"_": [problem.message]}) if problem else {},
        message=problem.message if problem else None,
    )


@bp.get("/new")
@admins_only
def new() -> str:
    """The form to create a user."""
    return _new_page()


@bp.post("/new")
@admins_only
@refusals_shown_on(_new_page)
def create() -> Response:
    """Create a user; they choose a password through a link sent by e-mail."""
    form = load_form(NewUserForm())
    user = users.create_user(
        auth.signed_in_user(),
        username=form["username"],
        display_name=form["display_name"],
        email=form["email"],
        role=form["role"],
        console=form["console"],
        instances=form["instances"],
        reason=form["reason"],
    )
    flash(f"{user.username} was created. Send them a password link to let them sign in.")
    return redirect(url_for("admin_users.show", user_id=user.id))


def _show_page(problem: ServiceError | None = None, user_id: int = 0, **shown: Any) -> str:
    """The user's page; after a refused edit, the typed values with the messages (and, for
    an edit of an older version, the current values beside them)."""
    user = users.get_user(user_id)
    stale = isinstance(problem, users.StaleVersion)
    return render_template(
        "admin_users/show.html",
        user=user,
        tokens=auth.list_tokens(user),
        form=request.form if problem and not stale else _values(user),
        typed=request.form if stale else None,
        errors=(problem.fields if problem else {}),
        message=problem.message if problem else None,
        is_self=user.id == auth.signed_in_user().id,
        **shown,
    )


def _values(user: User) -> dict[str, Any]:
    """A user's editable values as the form shows them."""
    return {
        "display_name": user.display_name,
        "email": user.email or "",
        "role": user.role.value,
        "console": user.console.code if user.console else "",
        "instances": " ".join(i.code for i in user.instances),
        "version": user.version,
    }


@bp.get("/<int:user_id>")
@admins_only
def show(user_id: int) -> str:
    """One user: edit them, their state, their password link and their API tokens."""
    return _show_page(user_id=user_id)


@bp.post("/<int:user_id>")
@admins_only
@refusals_shown_on(_show_page)
def update(user_id: int) -> Response:
    """Save a user's name, e-mail, role and scope (refused if changed meanwhile)."""
    user = users.get_user(user_id)
    form = load_form(EditUserForm())
    version, reason = form.pop("version"), form.pop("reason")
    users.update_user(auth.signed_in_user(), user, version, form, reason)
    flash(f"{user.username} was saved.")
    return redirect(url_for("admin_users.show", user_id=user.id))


@bp.post("/<int:user_id>/deactivate")
@admins_only
@refusals_shown_on(_show_page)
def deactivate(user_id: int) -> Response:
    """Deactivate a user: their sessions end and their API tokens stop working."""
    user = users.get_user(user_id)
    ended = users.set_active(auth.signed_in_user(), user, False, load_form(ReasonForm())["reason"])
    flash(f"{user.username} was deactivated; {ended} session(s) ended, their tokens stop working.")
    return redirect(url_for("admin_users.show", user_id=user.id))


@bp.post("/<int:user_id>/reactivate")
@admins_only
@refusals_shown_on(_show_page)
def reactivate(user_id: int) -> Response:
    """Let a deactivated user sign in and use their API tokens again."""
    user = users.get_user(user_id)
    users.set_active(auth.signed_in_user(), user, True, load_form(ReasonForm())["reason"])
    flash(f"{user.username} was reactivated.")
    return redirect(url_for("admin_users.show", user_id=user.id))


@bp.post("/<int:user_id>/password-link")
@admins_only
@refusals_shown_on(_show_page)
def send_password_link(user_id: int) -> Response:
    """E-mail the user a one-time link to choose a new password."""
    user = users.get_user(user_id)
    reason = load_form(ReasonForm())["reason"]
    sent = users.send_password_link(user, auth.signed_in_user().username, reason)
    where = "sent" if sent.sent else "put in the e-mail outbox (SMTP is not set or failed)"
    flash(f"A password link for {user.username} was {where}: to {sent.email.recipient}.")
    return redirect(url_for("admin_users.show", user_id=user.id))


@bp.post("/<int:user_id>/tokens/<int:token_id>/revoke")
@admins_only
def revoke_token(user_id: int, token_id: int) -> Response:
    """Revoke one of the user's API tokens."""
    user = users.get_user(user_id)
    users.revoke_token(auth.signed_in_user(), user, token_id)
    flash(f"The token was revoked: it no longer works for {user.username}.")
    return redirect(url_for("admin_users.show", user_id=user.id))
