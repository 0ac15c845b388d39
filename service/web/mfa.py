"""Two-factor sign-in pages: the code after the password (or single sign-on), setting up an
authenticator app, turning it off, new recovery codes; and the rule that a role requiring a
second factor can do nothing else until it is set up.

After the first factor (`complete_first_factor`), a user with a second factor is not signed
in yet: the Flask session holds a short-lived marker (their ID and its expiry) and the code
page asks for the code; only then does `auth.begin_session` run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from service import auth, mfa
from service.errors import Conflict, Forbidden, Invalid, Throttled, Unauthorized
from service.extensions import db
from service.models import User
from service.web.forms import CodeForm, load_form

bp = Blueprint("mfa", __name__)
T = TypeVar("T")

# Session keys: the sign-in waiting for its second factor, and the user whose sign-in in this
# session passed one.
PENDING = "linkdesk_second_factor_pending"
PASSED = "linkdesk_second_factor_passed"
PENDING_SECONDS = 300
TOO_SLOW = "The sign-in took too long. Sign in again."
# What a user who must first set up a second factor may still reach.
OPEN_WHILE_ENROLLING = frozenset(
    {
        "mfa.two_factor",
        "mfa.start",
        "mfa.confirm",
        "web.sign_out",
        "web.sign_in",
        "static",
    }
)


def complete_first_factor(user: User, next_url: str) -> Response:
    """Sign the user in after a password or single sign-on, or, with a second factor, ask
    for the code first (`next_url` is a path on this site)."""
    if user.has_second_factor:
        session[PENDING] = {
            "user": user.id,
            "until": time.time() + PENDING_SECONDS,
            "next": next_url,
        }
        return redirect(url_for("mfa.second_factor"))
    session.pop(PENDING, None)
    auth.begin_session(user)
    return redirect(next_url)


def _pending_user() -> tuple[User, str] | None:
    """The user whose sign-in waits for a code, and where to go next; None when none waits
    or the wait ran out."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or float(pending.get("until", 0)) < time.time():
        session.pop(PENDING, None)
        return None
    user = db.session.get(User, int(pending["user"]))
    if user is None or not user.active or not user.has_second_factor:
        session.pop(PENDING, None)
        return None
    return user, str(pending.get("next") or url_for("web.home"))


@bp.route("/sign-in/code", methods=["GET", "POST"])
def second_factor() -> str | Response | tuple[str, int]:
    """The second step of signing in: a code from the authenticator app or a recovery code."""
    pending = _pending_user()
    if pending is None:
        flash(TOO_SLOW)
        return redirect(url_for("web.sign_in"))
    user, next_url = pending
    if request.method == "GET":
        return render_template("sign_in_code.html", errors={})
    try:
        code = load_form(CodeForm())["code"]
        mfa.verify_sign_in(user, code)
    except Invalid as exc:
        return render_template("sign_in_code.html", errors=exc.fields), exc.status
    except (Unauthorized, Throttled, Conflict) as exc:
        page = render_template("sign_in_code.html", errors={}, message=exc.message)
        return page, exc.status
    session.pop(PENDING, None)
    auth.begin_session(user)
    session[PASSED] = user.id
    return redirect(next_url)


def check_session_passed_second_factor(user: User) -> None:
    """For a user with a second factor, `Forbidden` unless this session's sign-in passed it
    (a session begun before it was set up did not)."""
    if user.has_second_factor and session.get(PASSED) != user.id:
        raise Forbidden(
            "This session began before two-factor sign-in was on. Sign out and sign in "
            "again with your code to create API tokens."
        )


# Settings: set up, turn off, new recovery codes.


def _page(**context: Any) -> str:
    context.setdefault("errors", {})
    return render_template("settings/two_factor.html", user=auth.signed_in_user(), **context)


@bp.get("/settings/two-factor")
@login_required
def two_factor() -> str:
    """Two-factor sign-in on its own page: what the settings page shows of it."""
    return _page()


@bp.post("/settings/two-factor/start")
@login_required
def start() -> Response:
    """Make a new secret for an authenticator app and show it."""
    user = auth.signed_in_user()
    if not user.has_second_factor:
        mfa.start_enrolment(user)
    return redirect(url_for("mfa.two_factor"))


def _with_code(action: str, act: Callable[[User, str], T]) -> T | tuple[str, int]:
    """Run a form's `act` with the signed-in user and the code typed; a missing or wrong
    code shows the page again with the message beside the form of `action`."""
    user = auth.signed_in_user()
    try:
        return act(user, load_form(CodeForm())["code"])
    except Invalid as exc:
        return _page(errors={action: exc.fields.get("code", [exc.message])}), exc.status
    except (Unauthorized, Throttled, Conflict) as exc:
        return _page(errors={action: [exc.message]}), exc.status


@bp.post("/settings/two-factor/confirm")
@login_required
def confirm() -> str | tuple[str, int]:
    """Turn two-factor sign-in on with the app's current code; show the recovery codes."""

    def act(user: User, code: str) -> str:
        codes = mfa.confirm_enrolment(user, code)
        session[PASSED] = user.id  # this session has shown a current code
        return render_template("settings/recovery_codes.html", codes=codes, first=True)

    return _with_code("confirm", act)


@bp.post("/settings/two-factor/recovery-codes")
@login_required
def recovery_codes() -> str | tuple[str, int]:
    """New recovery codes, for a current code from the app."""

    def act(user: User, code: str) -> str:
        codes = mfa.regenerate_recovery_codes(user, code)
        return render_template("settings/recovery_codes.html", codes=codes, first=False)

    return _with_code("regenerate", act)


@bp.post("/settings/two-factor/disable")
@login_required
def disable() -> Response | tuple[str, int]:
    """Turn two-factor sign-in off, for a current code from the app or a recovery code."""

    def act(user: User, code: str) -> Response:
        mfa.disable(user, code)
        session.pop(PASSED, None)
        flash("Two-factor sign-in is off.")
        return redirect(url_for("web.settings"))

    return _with_code("disable", act)


# A role that requires a second factor: nothing else until it is set up.


@bp.before_app_request
def _enrol_first() -> Response | None:
    """Send a signed-in user whose role requires a second factor, and who has none, to set
    one up; their API calls (tokens included) are refused meanwhile."""
    if not current_app.config["MFA_REQUIRED_ROLES"]:
        return None
    endpoint = request.endpoint
    if endpoint is None or endpoint in OPEN_WHILE_ENROLLING or endpoint.startswith("health."):
        return None
    if not current_user.is_authenticated or not mfa.must_enrol(auth.signed_in_user()):
        return None
    if request.path.startswith("/api/") or "Authorization" in request.headers:
        raise Forbidden(mfa.ENROL_FIRST)
    flash("Your role requires two-factor sign-in. Set it up to continue.")
    return redirect(url_for("mfa.two_factor"))


@bp.app_template_global("second_factor")
def _second_factor_of(user: User) -> dict[str, Any]:
    """What the settings section shows: the status and the set-up under way, if any."""
    return {"status": mfa.status(user), "enrolment": mfa.enrolment(user)}
