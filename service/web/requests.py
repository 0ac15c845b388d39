"""Pages for requests: lists (the partner home), filing, the request page, the slide-in check
and the instance admins' consent inbox.

Every page calls the service layer (`service.requests`, `service.directory`), the same one the
JSON API calls; service errors are shown in place on the form that caused them
(`refusals_shown_on`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_required
from werkzeug.wrappers import Response

from domain.sla import SlaState
from domain.vocabulary import ConsoleType, Decision, RequestKind, RequestStatus, Role, TaskType
from service import auth, directory
from service import requests as service
from service.api.schemas import RequestFilterArgs
from service.errors import Conflict, Invalid, NotFound, ServiceError
from service.metrics.backlog import AGE_BUCKETS
from service.metrics.figures import RESOLUTION_BUCKETS
from service.models import Request, User
from service.web.forms import (
    STATUS_GROUPS,
    AnswerForm,
    CancelForm,
    CommentForm,
    ConsentForm,
    NewRequestForm,
    PageForm,
    RequestFilterForm,
    SlideInForm,
    load_form,
    refusals_shown_on,
)

bp = Blueprint("request_pages", __name__)

PER_PAGE = 20
# Choices offered by the pages' datalists; longer directories are still reachable by code.
CHOICES_LIMIT = 500
OPEN_STATUSES = list(service.STATUS_GROUPS["open"])
# The list's filters shared with the API (dates, console type, agent, SLA, age, resolution).
MORE_FILTERS = tuple(RequestFilterArgs().fields)
# Shown to Customer Service only: who took a request up, and who holds it now.
STAFF_FILTERS = ("agent", "assignee")
SLA_FILTER_LABELS = {state.value: state.label for state in SlaState}
# Who sees the link to a request's workflow in the Temporal Web UI: those who work requests.
TEMPORAL_UI_ROLES = (Role.AGENT, Role.MANAGER)
CONSENT_INBOX_ONLY = "The consent inbox is for instance admins."

HtmlPage = str | tuple[str, int]


# Lists ---------------------------------------------------------------------------------------


def _statuses(choice: str | None) -> list[RequestStatus] | None:
    return None if choice is None else service.statuses_of([choice])


def _instance_choices(user: User) -> list[Any]:
    return directory.paginate(directory.visible_instances(user), 1, CHOICES_LIMIT).items


def _console_choices(user: User) -> list[Any]:
    return directory.paginate(directory.visible_consoles(user), 1, CHOICES_LIMIT).items


def _more_filter_choices(user: User) -> dict[str, list[tuple[str, str]]]:
    """Options of the list's further filters; agents are listed for Customer Service only."""
    staff = Role(user.role) in service.CUSTOMER_SERVICE
    agents = (
        [(str(u.id), u.display_name or u.username) for u in service.assignees()] if staff else []
    )
    return {
        "console_type": [(t.value, t.value.capitalize()) for t in ConsoleType],
        "sla": [(state, SLA_FILTER_LABELS[state]) for state in service.SLA_STATES],
        "age": [(service.bucket_key(b[0]), b[0]) for b in AGE_BUCKETS],
        "resolution": [(service.bucket_key(b[0]), b[0]) for b in RESOLUTION_BUCKETS],
        "agent": [(service.NO_AGENT, "No agent yet"), *agents] if staff else [],
        "assignee": agents,
    }


def request_list(*, home: bool = False) -> HtmlPage:
    """The requests the signed-in user may see, filtered; for partners, their home page."""
    user = auth.signed_in_user()
    typed = request.args.to_dict()
    errors: dict[str, list[str]] = {}
    result = None
    status = 200
    try:
        form = load_form(RequestFilterForm(), request.args)
        filters = service.RequestFilters(
            status=_statuses(form["status"]),
            kind=form["kind"],
            console=form["console"],
            instance=form["instance"],
            search=form["q"],
            **{name: form.get(name) for name in MORE_FILTERS},
        )
        result = service.list_requests(user, filters, form["page"], PER_PAGE)
    except (Invalid, NotFound) as exc:
        errors, status = exc.fields, exc.status
    choices = _more_filter_choices(user)
    shown = [name for name in MORE_FILTERS if name not in STAFF_FILTERS or choices[name]]
    page = render_template(
        "requests/list.html",
        user=user,
        home=home,
        result=result,
        form=typed,
        errors=errors,
        filtered=any(value for key, value in typed.items() if key != "page"),
        more_filtered=any(typed.get(name) or errors.get(name) for name in shown),
        status_groups=STATUS_GROUPS,
        statuses=list(RequestStatus),
        kinds=list(RequestKind),
        choices=choices,
        fileable=service.fileable_kinds(user),
        instances=_instance_choices(user),
        consoles=_console_choices(user) if Role(user.role) != Role.PARTNER else [],
    )
    return (page, status) if status != 200 else page


@bp.get("/requests")
@login_required
def index() -> HtmlPage:
    """Requests you may see, with filters and search."""
    return request_list()


# Filing --------------------------------------------------------------------------------------


def _new_form(typed: dict[str, str], **context: Any) -> str:
    user = auth.signed_in_user()
    return render_template(
        "requests/new.html",
        user=user,
        kinds=service.fileable_kinds(user),
        form=typed,
        instances=_instance_choices(user),
        consoles=_console_choices(user),
        **{"errors": {}, **context},
    )


def _typed_filing(source: Any) -> dict[str, str]:
    return {key: source.get(key, "") for key in ("kind", "console", "instance", "reason")}


def _filing_refused(problem: ServiceError) -> str:
    """The form as typed, saying why nothing was filed: nothing to do, an open request that
    already asks it, or what to correct."""
    typed = _typed_filing(request.form)
    if isinstance(problem, service.NothingToDo):
        return _new_form(typed, nothing_to_do=problem.message)
    if isinstance(problem, Conflict):
        open_ids = problem.fields.get("open_request_id") or []
        open_id = open_ids[0] if open_ids and open_ids[0].startswith("REQ-") else None
        return _new_form(typed, duplicate=problem.message, open_id=open_id)
    return _new_form(typed, errors=problem.fields, message=problem.message)


@bp.get("/requests/new")
@auth.roles_required(*service.FILEABLE_KINDS, message=service.FILED_BY)
def new() -> str:
    """The form to file a request; the query may preset kind, console and instance."""
    user = auth.signed_in_user()
    typed = _typed_filing(request.args)
    if Role(user.role) == Role.PARTNER and user.console is not None:
        typed["console"] = user.console.code
    kinds = service.fileable_kinds(user)
    if len(kinds) == 1:
        typed["kind"] = kinds[0].value
    return _new_form(typed)


@bp.post("/requests/new")
@auth.roles_required(*service.FILEABLE_KINDS, message=service.FILED_BY)
@refusals_shown_on(_filing_refused)
def file() -> Response:
    """File a request; what was typed stays on the form when it is refused."""
    form = load_form(NewRequestForm())
    filed = service.file_request(
        auth.signed_in_user(), form["kind"], form["console"], form["instance"], form["reason"]
    )
    flash(f"{filed.public_id} is filed. You can follow it here.")
    return redirect(url_for("request_pages.show", public_id=filed.public_id))


# The request page ----------------------------------------------------------------------------


def _temporal_ui_url(user: User, req: Request) -> str | None:
    if Role(user.role) not in TEMPORAL_UI_ROLES:
        return None
    base = str(current_app.config["TEMPORAL_UI_URL"]).rstrip("/")
    namespace = quote(str(current_app.config["TEMPORAL_NAMESPACE"]), safe="")
    return f"{base}/namespaces/{namespace}/workflows/{quote(req.workflow_id, safe='')}"


def _render_request(user: User, req: Request, **context: Any) -> str:
    shown = service.detail(user, req)
    questions = [event for event in shown.timeline if event.action == Decision.REQUEST_INFO]
    customer_service = Role(user.role) in service.CUSTOMER_SERVICE
    consent_tasks = [task for task in shown.tasks if task.type == TaskType.CONSENT]
    if Role(user.role) != Role.INSTANCE_ADMIN:
        consent_tasks = []
    return render_template(
        "requests/show.html",
        user=user,
        req=shown,
        question=questions[-1] if questions else None,
        customer_service=customer_service,
        # What the page offers; the workflow itself refuses whatever is not allowed.
        may_answer=not customer_service,
        may_cancel=req.status.cancellable
        and (Role(user.role) in (Role.PARTNER, Role.MANAGER) or user.id == req.requester_id),
        consent_task=consent_tasks[0] if consent_tasks else None,
        temporal_url=_temporal_ui_url(user, req),
        **{
            "comment_form": {},
            "comment_errors": {},
            "answer_form": {},
            "answer_errors": {},
            **context,
        },
    )


def _comment_refused(problem: ServiceError, public_id: str) -> str:
    """The request page with the comment as typed and what is wrong with it."""
    user = auth.signed_in_user()
    typed = {"body": request.form.get("body", ""), "internal": request.form.get("internal")}
    errors = problem.fields or {"body": [problem.message]}
    req = service.get_request(user, public_id)
    return _render_request(user, req, comment_form=typed, comment_errors=errors)


def _answer_refused(problem: ServiceError, public_id: str) -> str:
    """The request page with the answer as typed and why it was not sent."""
    user = auth.signed_in_user()
    typed = {"answer": request.form.get("answer", "")}
    errors = problem.fields or {"answer": [problem.message]}
    req = service.get_request(user, public_id)
    return _render_request(user, req, answer_form=typed, answer_errors=errors)


def _cancel_refused(problem: ServiceError, public_id: str) -> str:
    """The cancel confirmation with the reason as typed and why the request was not cancelled."""
    req = service.get_request(auth.signed_in_user(), public_id)
    typed = {"reason": request.form.get("reason", "")}
    return render_template(
        "requests/cancel.html", req=req, form=typed, errors=problem.fields, message=problem.message
    )


@bp.get("/requests/<public_id>")
@login_required
def show(public_id: str) -> str:
    """A request: status, expected completion, timeline, comments and what you can do."""
    user = auth.signed_in_user()
    return _render_request(user, service.get_request(user, public_id))


@bp.post("/requests/<public_id>/comments")
@login_required
@refusals_shown_on(_comment_refused)
def comment(public_id: str) -> Response:
    """Comment on a request (Customer Service may mark it an internal note)."""
    user = auth.signed_in_user()
    req = service.get_request(user, public_id)
    form = load_form(CommentForm())
    event = service.add_comment(user, req, form["body"], form["internal"])
    flash("Your internal note is added." if event.internal else "Your comment is added.")
    return redirect(url_for("request_pages.show", public_id=req.public_id, _anchor="timeline"))


@bp.post("/requests/<public_id>/response")
@login_required
@refusals_shown_on(_answer_refused)
def answer(public_id: str) -> Response:
    """Answer Customer Service's question; the request goes back to the agent who asked."""
    user = auth.signed_in_user()
    req = service.get_request(user, public_id)
    form = load_form(AnswerForm())
    service.respond(user, req, form["answer"])
    flash("Your answer is sent; the request is back with Customer Service.")
    return redirect(url_for("request_pages.show", public_id=req.public_id))


@bp.route("/requests/<public_id>/cancel", methods=["GET", "POST"])
@login_required
@refusals_shown_on(_cancel_refused)
def cancel(public_id: str) -> str | Response:
    """Confirm, then cancel a request before it is applied."""
    user = auth.signed_in_user()
    req = service.get_request(user, public_id)
    if request.method == "GET":
        return render_template("requests/cancel.html", req=req, form={}, errors={})
    form = load_form(CancelForm())
    service.cancel(user, req, form["reason"])
    flash(f"{req.public_id} is cancelled.")
    return redirect(url_for("request_pages.show", public_id=req.public_id))


# Slide-in check ------------------------------------------------------------------------------


def _default_reason(relationship: directory.RelationshipView, kind: RequestKind) -> str:
    return (
        f"Our users at {relationship.console.code} need to slide in to "
        f"{relationship.instance.code} ({relationship.instance.name}): "
        f"please {kind.label.lower()}."
    )


@bp.get("/slide-in")
@login_required
def slide_in() -> HtmlPage:
    """Whether a console's users can slide in to an instance, and what to request if not."""
    user = auth.signed_in_user()
    typed = request.args.to_dict()
    if Role(user.role) == Role.PARTNER and user.console is not None:
        typed.setdefault("console", user.console.code)
    relationship = None
    open_requests: dict[RequestKind, Request] = {}
    errors: dict[str, list[str]] = {}
    status = 200
    try:
        form = load_form(SlideInForm(), typed)
        if form["console"] is not None and form["instance"] is not None:
            (relationship,) = directory.list_relationships(
                user, form["console"], form["instance"]
            ).items
            pending = service.list_requests(
                user,
                service.RequestFilters(
                    status=OPEN_STATUSES,
                    console=relationship.console.code,
                    instance=relationship.instance.code,
                ),
                1,
                len(RequestKind),
            )
            open_requests = {req.kind: req for req in pending.items}
        elif request.args:
            missing = "console" if form["console"] is None else "instance"
            errors = {missing: ["Give both a console and a company."]}
            status = 422
    except (Invalid, NotFound) as exc:
        errors, status = exc.fields, exc.status
    page = render_template(
        "requests/slide_in.html",
        user=user,
        form=typed,
        errors=errors,
        relationship=relationship,
        open_requests=open_requests,
        fileable=service.fileable_kinds(user),
        default_reason=_default_reason,
        instances=_instance_choices(user),
        consoles=_console_choices(user),
    )
    return (page, status) if status != 200 else page


# Consent inbox -------------------------------------------------------------------------------


def _consent_inbox(**context: Any) -> str:
    user = auth.signed_in_user()
    page_number = load_form(PageForm(), request.args)["page"]
    result = service.list_tasks(
        user, service.TaskFilters(type=TaskType.CONSENT), page_number, PER_PAGE
    )
    return render_template(
        "requests/consents.html",
        user=user,
        result=result,
        **{"failed_task": None, "form": {}, "errors": {}, "message": None, **context},
    )


def _consent_refused(problem: ServiceError, task_id: int) -> str:
    """The inbox with the comment as typed on the refused task, and why it did not go through."""
    typed = {"comment": request.form.get("comment", "")}
    return _consent_inbox(
        failed_task=task_id, form=typed, errors=problem.fields, message=problem.message
    )


@bp.get("/consents")
@auth.roles_required(Role.INSTANCE_ADMIN, message=CONSENT_INBOX_ONLY)
def consents() -> str:
    """Instance admins: the requests waiting for your consent."""
    return _consent_inbox()


@bp.post("/consents/<int:task_id>")
@auth.roles_required(Role.INSTANCE_ADMIN, message=CONSENT_INBOX_ONLY)
@refusals_shown_on(_consent_refused)
def decide_consent(task_id: int) -> Response:
    """Grant or decline consent, with an optional comment the requester sees."""
    form = load_form(ConsentForm())
    req = service.complete_task(auth.signed_in_user(), task_id, form["decision"], form["comment"])
    if form["decision"] == Decision.GRANT:
        flash(f"You granted consent to {req.public_id}; Customer Service reviews it next.")
    else:
        flash(f"You declined {req.public_id}; the request is closed.")
    return redirect(url_for("request_pages.consents"))
