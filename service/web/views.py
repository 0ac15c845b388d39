"""Pages: sign-in, settings with API tokens, home and the directory browser."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from domain.sla import SlaState
from domain.vocabulary import Role, TaskType
from service import auth, directory, users
from service.errors import Forbidden, Invalid, NotFound, Throttled, Unauthorized
from service.models import User
from service.web import mfa as mfa_pages
from service.web import requests as request_pages
from service.web.forms import (
    ChoosePasswordForm,
    ForgotPasswordForm,
    PageForm,
    PasswordForm,
    RelationshipFilterForm,
    SignInForm,
    TokenForm,
    load_form,
)

bp = Blueprint("web", __name__)
# The domain's vocabulary for every template (macros imported without context too), so that no
# template spells a state or a label of its own.
bp.add_app_template_global(SlaState, "SlaState")
bp.add_app_template_global(TaskType, "TaskType")


def safe_next(target: str | None) -> str:
    """Only redirect to a path on this site after signing in."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("web.home")


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> str | Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Sign in with a username and password."""
    next_url = request.args.get("next")
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(safe_next(next_url))
        return render_template("sign_in.html", next_url=next_url, form={}, errors={})
    typed = {"username": request.form.get("username", "")}
    try:
        form = load_form(SignInForm())
        user = auth.authenticate(form["username"], form["password"])
    except Invalid as exc:
        page = render_template("sign_in.html", next_url=next_url, form=typed, errors=exc.fields)
        return page, 422
    except (Unauthorized, Throttled) as exc:
        page = render_template(
            "sign_in.html", next_url=next_url, form=typed, errors={}, message=exc.message
        )
        return page, exc.status, exc.headers
    return mfa_pages.complete_first_factor(user, safe_next(next_url))


@bp.route("/forgot-password", methods=["GET", "POST"])
def forgot_password() -> str | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Ask for a password link by e-mail; the answer never tells whether the account exists."""
    if request.method == "GET":
        return render_template("password/forgot.html", form={}, errors={})
    typed = {"email": request.form.get("email", "")}
    try:
        users.forgot_password(load_form(ForgotPasswordForm())["email"])
    except Invalid as exc:
        return render_template("password/forgot.html", form=typed, errors=exc.fields), 422
    except Throttled as exc:
        page = render_template("password/forgot.html", form=typed, errors={}, message=exc.message)
        return page, exc.status, exc.headers
    return render_template("password/forgot.html", form=typed, errors={}, asked=True)


@bp.route("/password/<secret>", methods=["GET", "POST"])
def choose_password(secret: str) -> str | Response | tuple[str, int]:
    """Choose a new password through a one-time link sent by e-mail."""
    link = users.find_link(secret)
    if request.method == "GET":
        return render_template("password/choose.html", link=link, errors={})
    try:
        form = load_form(ChoosePasswordForm())
        users.choose_password(secret, form["password"], form["password_again"])
    except Invalid as exc:
        return render_template("password/choose.html", link=link, errors=exc.fields), 422
    auth.end_session()  # whoever was signed in to this browser signs in anew
    flash("Your password is set. Sign in with it.")
    return redirect(url_for("web.sign_in"))


@bp.post("/sign-out")
def sign_out() -> Response:
    """End the session."""
    auth.end_session()
    flash("You are signed out.")
    return redirect(url_for("web.sign_in"))


@bp.get("/")
@login_required
def home() -> str | tuple[str, int]:
    """The starting page of the signed-in user; for partners, their console's requests."""
    user = auth.signed_in_user()
    if user.role == Role.PARTNER:
        return request_pages.request_list(home=True)
    return render_template("home.html", user=user)


def _settings_page(user: User, **shown: Any) -> str:
    """The settings page, with what a form just did or refused (`shown`)."""
    return render_template(
        "settings.html",
        **{
            "user": user,
            "tokens": auth.list_tokens(user),
            "sessions": auth.list_sessions(user),
            "this_session": auth.current_session_id(),
            "session_rules": auth.session_rules(),
            "errors": {},
            "password_errors": {},
            **shown,
        },
    )


@bp.get("/settings")
@login_required
def settings() -> str:
    """Personal settings: profile, two-factor sign-in, password, sessions and API tokens."""
    return _settings_page(auth.signed_in_user())


@bp.post("/settings/tokens")
@login_required
def create_token() -> str | tuple[str, int]:
    """Create an API token; its secret is shown on this one page only."""
    user = auth.signed_in_user()
    try:
        mfa_pages.check_session_passed_second_factor(user)
        form = load_form(TokenForm())
        token, secret = auth.create_token(user, form["name"])
    except (Invalid, Forbidden) as exc:
        return _settings_page(user, errors=exc.fields or {"name": [exc.message]}), exc.status
    return _settings_page(user, new_token=token, new_secret=secret)


@bp.post("/settings/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Response:
    """Revoke one of your API tokens."""
    auth.revoke_token(auth.signed_in_user(), token_id)
    flash("The token was revoked; it no longer works.")
    return redirect(url_for("web.settings"))


@bp.post("/settings/password")
@login_required
def change_password() -> Response | tuple[str, int] | tuple[str, int, dict[str, str]]:
    """Change your password; your other sessions are signed out."""
    user = auth.signed_in_user()
    try:
        form = load_form(PasswordForm())
        ended = auth.change_password(
            user, form["current_password"], form["new_password"], form["new_password_again"]
        )
    except Invalid as exc:
        return _settings_page(user, password_errors=exc.fields), exc.status
    except Throttled as exc:
        return _settings_page(user, password_message=exc.message), exc.status, exc.headers
    others = {0: "You had no other session.", 1: "Your 1 other session was signed out."}
    flash(
        "Your password was changed. "
        + others.get(ended, f"Your {ended} other sessions were signed out.")
    )
    return redirect(url_for("web.settings"))


@bp.post("/settings/sessions/<int:session_id>/end")
@login_required
def end_session(session_id: int) -> Response:
    """End one of your sessions: that browser is signed out."""
    if auth.end_one_session(auth.signed_in_user(), session_id):
        flash("You are signed out.")
        return redirect(url_for("web.sign_in"))
    flash("The session was ended: that browser is signed out.")
    return redirect(url_for("web.settings"))


@bp.post("/settings/sessions/end-all")
@login_required
def sign_out_everywhere() -> Response:
    """End all your sessions, this browser's too."""
    auth.sign_out_everywhere(auth.signed_in_user())
    flash("You are signed out everywhere.")
    return redirect(url_for("web.sign_in"))


@bp.get("/directory/consoles")
@login_required
def consoles() -> str:
    """The consoles you may see."""
    page = load_form(PageForm(), request.args)["page"]
    result = directory.paginate(directory.visible_consoles(auth.signed_in_user()), page, 50)
    return render_template("directory/consoles.html", result=result)


@bp.get("/directory/instances")
@login_required
def instances() -> str:
    """The instances (companies) you may see."""
    page = load_form(PageForm(), request.args)["page"]
    result = directory.paginate(directory.visible_instances(auth.signed_in_user()), page, 50)
    return render_template("directory/instances.html", result=result)


@bp.get("/directory/relationships")
@login_required
def relationships() -> str | tuple[str, int]:
    """Relationships with their slide-in state, filtered by console and/or instance."""
    user = auth.signed_in_user()
    typed = request.args.to_dict()
    try:
        form = load_form(RelationshipFilterForm(), request.args)
        result = directory.list_relationships(
            user, form["console"], form["instance"], page=form["page"], per_page=50
        )
    except (Invalid, NotFound) as exc:
        page = render_template(
            "directory/relationships.html", result=None, form=typed, errors=exc.fields
        )
        return page, exc.status
    return render_template("directory/relationships.html", result=result, form=typed, errors={})
