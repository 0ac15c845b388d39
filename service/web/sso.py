"""Single sign-on pages: the button's start of the flow and the provider's way back."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from service import sso
from service.errors import ServiceError
from service.web import mfa as mfa_pages
from service.web.views import safe_next

bp = Blueprint("sso", __name__)
# Where to go after signing in, kept in the session across the visit to the provider.
NEXT = "linkdesk_sso_next"


@bp.get("/sign-in/sso")
def start() -> Response | tuple[str, int]:
    """Go to the provider to sign in (a link, not a form: the page's form-action policy
    would stop a form's redirect to another site)."""
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url)
    try:
        response = sso.start(url_for("sso.callback", _external=True))
    except ServiceError as exc:
        return _sign_in_page(exc)
    session[NEXT] = next_url
    return response


@bp.get("/sign-in/sso/callback")
def callback() -> Response | tuple[str, int]:
    """Back from the provider: sign in the user it vouches for (after their second factor,
    if they have one), or show the sign-in page saying what went wrong."""
    next_url = session.pop(NEXT, None) or url_for("web.home")
    try:
        user = sso.finish()
    except ServiceError as exc:
        return _sign_in_page(exc)
    return mfa_pages.complete_first_factor(user, next_url)


def _sign_in_page(problem: ServiceError) -> tuple[str, int]:
    page = render_template(
        "sign_in.html", next_url=None, form={}, errors={}, message=problem.message
    )
    return page, problem.status


@bp.app_template_global("single_sign_on")
def _single_sign_on() -> str | None:
    """The provider's name for the sign-in page's button; None when single sign-on is off."""
    return sso.provider_name()
