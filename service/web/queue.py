"""Customer Service pages: the agent queue, the task page, notifications and the email outbox.

Who may open each page is said above it; views parse the form, call one service function
and render. A refused task action (someone else holds the task, four eyes, a missing reason)
is shown on the task page itself with the request as it now stands, never as an error page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from domain.sla import SlaState
from domain.vocabulary import DECISIONS_BY_TASK, ConsoleType, Decision, RequestKind, Role, TaskType
from service import auth, notifications
from service import requests as service
from service.directory import relationship_between
from service.errors import Invalid, ServiceError
from service.models import Task, User, format_request_id, utcnow
from service.web.forms import (
    QUEUE_TASK_TYPES,
    CommentForm,
    DecisionForm,
    NotificationFilterForm,
    PageForm,
    QueueFilterForm,
    ReassignForm,
    load_form,
    refusals_shown_on,
)

bp = Blueprint("queue", __name__)

QUEUE_ROLES = (Role.AGENT, Role.MANAGER)
OUTBOX_ROLES = (Role.ADMIN, Role.MANAGER)
PER_PAGE = 25
REFRESH_SECONDS = 10  # how often the queue fetches itself again
APPLYING_REFRESH_SECONDS = 2  # the task page, while the change is being applied
DONE_TEXT = {
    Decision.APPROVE: "You approved {id}; it is now {status}.",
    Decision.REJECT: "You rejected {id}; the requester sees your reason.",
    Decision.REQUEST_INFO: "Your question went to the requester; {id} is now {status}.",
}


def _queue_url(target: str | None) -> str:
    """Back to the queue the form came from (same filters), never anywhere off this site."""
    if target and target.startswith("/queue") and "//" not in target and "\\" not in target:
        return target
    return url_for("queue.queue")


@bp.app_context_processor
def _unread_notifications() -> dict[str, int]:
    """`unread_notifications` for the navigation's badge (0 when nobody is signed in)."""
    if not current_user.is_authenticated:
        return {"unread_notifications": 0}
    try:
        return {"unread_notifications": notifications.unread_count(current_user)}
    except SQLAlchemyError:  # the error page of a database failure must still render
        return {"unread_notifications": 0}


@bp.app_template_filter("utc")
def _utc(when: datetime | None) -> str:
    """A moment as people read it on these pages: `2026-11-25 18:40 UTC`."""
    return f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if when else ""


@bp.app_template_filter("ago")
def _ago(when: datetime | None) -> str:
    """How long ago a moment was, coarsely: `just now`, `12 min ago`, `5 h ago`, `3 d ago`."""
    if when is None:
        return ""
    minutes = int((utcnow() - when).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} d ago"


@bp.get("/queue")
@auth.roles_required(*QUEUE_ROLES)
def queue() -> str | tuple[str, int]:
    """Open review and second-approval tasks, most urgent SLA first; refreshes by itself."""
    user = auth.signed_in_user()
    typed = request.args.to_dict()
    page: dict[str, Any] = {
        "user": user,
        "form": typed,
        "filtered": any(value for key, value in typed.items() if key != "page"),
        "now": utcnow(),
        "refresh": REFRESH_SECONDS,
        "choices": _filter_choices(),
    }
    try:
        form = load_form(QueueFilterForm(), request.args)
    except Invalid as exc:
        return render_template("queue/queue.html", result=None, errors=exc.fields, **page), 422
    filters = service.TaskFilters(
        type=form["type"],
        assignee=form["assignee"],
        kind=form["kind"],
        sla=form["sla"].value if form["sla"] else None,
        console_type=form["console_type"],
    )
    result = service.list_tasks(user, filters, form["page"], PER_PAGE)
    return render_template("queue/queue.html", result=result, errors={}, **page)


def _filter_choices() -> dict[str, list[tuple[str, str]]]:
    return {
        "kind": [(kind.value, kind.label) for kind in RequestKind],
        "console_type": [(ct.value, ct.value.capitalize()) for ct in ConsoleType],
        "type": [(t.value, t.value.replace("_", " ").capitalize()) for t in QUEUE_TASK_TYPES],
        "sla": [(s.value, s.label) for s in SlaState],
        "assignee": [("me", "Mine"), ("unassigned", "Unassigned")],
    }


@bp.get("/queue/tasks/<int:task_id>")
@auth.roles_required(*QUEUE_ROLES)
def task(task_id: int) -> str:
    """A task with its request, the current relationship, the timeline and the actions."""
    user = auth.signed_in_user()
    return _task_page(user, service.get_task(user, task_id))


def _task_page(
    user: User,
    task: Task,
    *,
    problem: ServiceError | None = None,
    errors: dict[str, list[str]] | None = None,
    typed: dict[str, str] | None = None,
) -> str:
    """The task page, optionally with what just went wrong (a refusal or field errors)."""
    req = task.request
    config = current_app.config
    temporal_url = (
        f"{config['TEMPORAL_UI_URL'].rstrip('/')}/namespaces/"
        f"{config['TEMPORAL_NAMESPACE']}/workflows/{req.workflow_id}"
    )
    return render_template(
        "queue/task.html",
        user=user,
        task=task,
        req=req,
        detail=service.detail(user, req),
        relationship=relationship_between(req.console, req.instance),
        decisions=DECISIONS_BY_TASK.get(TaskType(task.type), ()),
        workable=TaskType(task.type) in QUEUE_TASK_TYPES,
        assignees=service.assignees() if Role(user.role) == Role.MANAGER else [],
        temporal_url=temporal_url,
        refresh=APPLYING_REFRESH_SECONDS,
        problem=problem,
        errors=errors or {},
        typed=typed or {},
    )


def _refused(problem: ServiceError, task_id: int) -> str:
    """The task page as it now stands, with the refusal said plainly at the top, beside the
    field it concerns, and what was typed still in the form."""
    user = auth.signed_in_user()
    return _task_page(
        user,
        service.get_task(user, task_id),
        problem=problem,
        errors=problem.fields,
        typed=request.form.to_dict(),
    )


def _form_refused(problem: ServiceError, task_id: int) -> str:
    """The task page with what is wrong said beside the form's fields, and what was typed."""
    user = auth.signed_in_user()
    task = service.get_task(user, task_id)
    return _task_page(user, task, errors=problem.fields, typed=request.form.to_dict())


@bp.post("/queue/tasks/<int:task_id>/claim")
@auth.roles_required(*QUEUE_ROLES)
@refusals_shown_on(_refused)
def claim(task_id: int) -> Response:
    """Claim a task and go to its page; a task someone else holds says who."""
    req = service.claim_task(auth.signed_in_user(), task_id)
    flash(f"You claimed this task; {req.public_id} is now {req.status.label}.")
    return redirect(url_for("queue.task", task_id=task_id))


@bp.post("/queue/tasks/<int:task_id>/release")
@auth.roles_required(*QUEUE_ROLES)
@refusals_shown_on(_refused)
def release(task_id: int) -> Response:
    """Put a claimed task back in the queue."""
    req = service.release_task(auth.signed_in_user(), task_id)
    flash(f"The task of {req.public_id} is back in the queue for anyone to claim.")
    if request.form.get("next"):
        return redirect(_queue_url(request.form.get("next")))
    return redirect(url_for("queue.task", task_id=task_id))


@bp.post("/queue/tasks/<int:task_id>/complete")
@auth.roles_required(*QUEUE_ROLES)
@refusals_shown_on(_refused)
def complete(task_id: int) -> Response | tuple[str, int]:
    """Approve, reject with a reason or ask the requester a question."""
    user = auth.signed_in_user()
    try:
        form = load_form(DecisionForm())
    except Invalid as exc:  # said beside the field alone: nothing went to the workflow
        return _form_refused(exc, task_id), exc.status
    req = service.complete_task(user, task_id, form["decision"].value, form["comment"])
    template = DONE_TEXT.get(form["decision"], "Done; {id} is now {status}.")
    flash(template.format(id=req.public_id, status=req.status.label))
    return redirect(url_for("queue.task", task_id=task_id))


@bp.post("/queue/tasks/<int:task_id>/reassign")
@auth.roles_required(*QUEUE_ROLES)
@refusals_shown_on(_refused)
def reassign(task_id: int) -> Response:
    """Give a task to an agent or a manager (managers only)."""
    form = load_form(ReassignForm())
    req = service.reassign_task(auth.signed_in_user(), task_id, form["assignee"])
    flash(f"The task of {req.public_id} now belongs to {form['assignee']}.")
    return redirect(url_for("queue.task", task_id=task_id))


@bp.post("/queue/tasks/<int:task_id>/notes")
@auth.roles_required(*QUEUE_ROLES)
@refusals_shown_on(_form_refused)
def add_note(task_id: int) -> Response:
    """Add a note to the request's timeline: internal, or visible to the requester."""
    user = auth.signed_in_user()
    task = service.get_task(user, task_id)
    form = load_form(CommentForm())
    service.add_comment(user, task.request, form["body"], form["internal"])
    flash("Your note is on the timeline." if form["internal"] else "Your comment is posted.")
    return redirect(url_for("queue.task", task_id=task_id, _anchor="timeline"))


@bp.get("/notifications")
@login_required
def notifications_page() -> str:
    """Your notifications, newest first, unread ones marked."""
    user = auth.signed_in_user()
    form = load_form(NotificationFilterForm(), request.args)
    result = notifications.list_notifications(user, form["unread"], form["page"], PER_PAGE)
    return render_template(
        "queue/notifications.html",
        user=user,
        result=result,
        unread_only=form["unread"],
        can_see_outbox=Role(user.role) in OUTBOX_ROLES,
        request_ref=format_request_id,
    )


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int) -> Response:
    """Mark one notification as read."""
    notifications.mark_read(auth.signed_in_user(), notification_id)
    return redirect(_notifications_url())


@bp.post("/notifications/read")
@login_required
def mark_all_read() -> Response:
    """Mark all your notifications as read."""
    marked = notifications.mark_read(auth.signed_in_user())
    flash(f"Marked {marked} notification{'' if marked == 1 else 's'} as read.")
    return redirect(_notifications_url())


def _notifications_url() -> str:
    target = request.form.get("next", "")
    if target.startswith("/notifications") and "//" not in target and "\\" not in target:
        return target
    return url_for("queue.notifications_page")


@bp.get("/outbox")
@auth.roles_required(*OUTBOX_ROLES)
def outbox() -> str:
    """Emails LinkDesk sent, or keeps here when no SMTP server is configured."""
    form = load_form(PageForm(), request.args)
    return render_template(
        "queue/outbox.html",
        result=notifications.list_outbox(form["page"], PER_PAGE),
        smtp_host=current_app.config["SMTP_HOST"],
    )
