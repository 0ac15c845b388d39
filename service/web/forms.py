"""Marshmallow schemas for HTML forms, the one way pages load them, and the one way a page
shows a form the service layer refused."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import marshmallow as ma
from flask import request
from marshmallow import fields, validate

from domain.sla import SlaState
from domain.vocabulary import ConsoleType, Decision, RequestKind, RequestStatus, Role, TaskType
from service.api.schemas import AuditFilterArgs, InputSchema, RefField, RequestFilterArgs
from service.auth import MAX_PASSWORD_LENGTH
from service.errors import Invalid, NotFound, ServiceError
from service.metrics.selection import GROUPINGS

P = ParamSpec("P")
R = TypeVar("R")


class FormSchema(InputSchema):
    """Base of form schemas: the CSRF token and submit buttons are not data."""

    class Meta:
        unknown = ma.EXCLUDE


class SignInForm(FormSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH)
    )


class PasswordForm(FormSchema):
    current_password = fields.String(
        required=True,
        validate=validate.Length(max=MAX_PASSWORD_LENGTH),
        error_messages={"required": "Type your current password."},
    )
    new_password = fields.String(
        required=True,
        validate=validate.Length(max=MAX_PASSWORD_LENGTH),
        error_messages={"required": "Choose a new password."},
    )
    new_password_again = fields.String(
        required=True,
        validate=validate.Length(max=MAX_PASSWORD_LENGTH),
        error_messages={"required": "Type the new password a second time."},
    )


class TokenForm(FormSchema):
    name = fields.String(load_default="", validate=validate.Length(max=100))


class CodeForm(FormSchema):
    """A code from an authenticator app or a recovery code."""

    code = fields.String(required=True, validate=validate.Length(min=1, max=64))


class PageForm(FormSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))


class RelationshipFilterForm(PageForm):
    console = RefField(load_default=None)
    instance = RefField(load_default=None)


class AuditFilterForm(FormSchema, AuditFilterArgs):
    """The audit log page's filters and cursor: the API's query arguments, as a form."""


def load_form(schema: FormSchema, data: Any = None) -> dict[str, Any]:
    """Validate submitted data (the form by default); `Invalid` carries the field messages."""
    raw = request.form if data is None else data
    cleaned = {key: value for key, value in raw.items() if value != ""}
    try:
        return schema.load(cleaned)
    except ma.ValidationError as exc:
        messages = exc.normalized_messages()
        field_errors = {key: list(value) for key, value in messages.items()}
        raise Invalid("Please correct the marked fields.", fields=field_errors) from exc


def refusals_shown_on(
    page: Callable[..., str],
) -> Callable[[Callable[P, R]], Callable[P, R | tuple[str, int]]]:
    """A form view whose submission the service layer refuses answers with the page the form
    is on, `page(problem, **view_args)`, under the refusal's status; what does not exist (or
    is out of the user's scope) stays the 404 page."""

    def decorate(view: Callable[P, R]) -> Callable[P, R | tuple[str, int]]:
        @functools.wraps(view)
        def shown(*args: P.args, **kwargs: P.kwargs) -> R | tuple[str, int]:
            try:
                return view(*args, **kwargs)
            except NotFound:
                raise
            except ServiceError as problem:
                return page(problem, **kwargs), problem.status

        return shown

    return decorate


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError("Write something, not only spaces.")


def _text(required: str, max_length: int) -> fields.String:
    """A free-text field that must say something, with a message telling what is missing."""
    return fields.String(
        required=True,
        validate=[validate.Length(max=max_length), _not_blank],
        error_messages={"required": required},
    )


STATUS_GROUPS = {
    "open": "Open (any)",
    "closed": "Closed (any)",
    "handled": "Handled: completed, rejected or failed",
}


class RequestFilterForm(PageForm, RequestFilterArgs):
    """Filters of a request list; `status` is one status or a group of them. The other
    filters are the API's, so a dashboard figure drills down to either the same way."""

    status = fields.String(
        load_default=None,
        validate=validate.OneOf([*STATUS_GROUPS, *(status.value for status in RequestStatus)]),
    )
    kind = fields.Enum(RequestKind, by_value=True, load_default=None)
    console = RefField(load_default=None)
    instance = RefField(load_default=None)
    q = fields.String(load_default=None, validate=validate.Length(max=64))


def _day(**kwargs: Any) -> fields.Date:
    return fields.Date(error_messages={"invalid": "Give a day as YYYY-MM-DD."}, **kwargs)


class DashboardForm(FormSchema):
    """The dashboard's selection: filing days (UTC, both included), filters and grouping.

    Unset days mean the last 30 days; `service.metrics.selection` checks the range and the
    agent.
    """

    from_ = _day(data_key="from", load_default=None)
    to = _day(load_default=None)
    kind = fields.Enum(RequestKind, by_value=True, load_default=None)
    console_type = fields.Enum(ConsoleType, by_value=True, load_default=None)
    agent = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1),
        error_messages={"invalid": "Pick an agent from the list."},
    )
    group_by = fields.String(load_default="kind", validate=validate.OneOf(GROUPINGS))


class NewRequestForm(FormSchema):
    kind = fields.Enum(
        RequestKind, by_value=True, required=True, error_messages={"required": "Choose one."}
    )
    console = RefField(
        required=True, error_messages={"required": "Give the console code, e.g. ACCT-01."}
    )
    instance = RefField(
        required=True, error_messages={"required": "Give the company ID, e.g. ACME-US."}
    )
    reason = _text("Say why this is needed; Customer Service reads it.", 4000)


class CommentForm(FormSchema):
    body = _text("Write a comment.", 8000)
    internal = fields.Boolean(load_default=False)


class AnswerForm(FormSchema):
    answer = _text("Write your answer.", 8000)


class CancelForm(FormSchema):
    reason = _text("Say why you cancel; Customer Service reads it.", 4000)


class ConsentForm(FormSchema):
    decision = fields.String(
        required=True, validate=validate.OneOf([Decision.GRANT.value, Decision.DECLINE.value])
    )
    comment = fields.String(load_default=None, validate=validate.Length(max=8000))


class SlideInForm(FormSchema):
    console = RefField(load_default=None)
    instance = RefField(load_default=None)


QUEUE_TASK_TYPES = (TaskType.REVIEW, TaskType.SECOND_APPROVAL)


class QueueFilterForm(PageForm):
    kind = fields.Enum(RequestKind, by_value=True, load_default=None)
    console_type = fields.Enum(ConsoleType, by_value=True, load_default=None)
    type = fields.Enum(
        TaskType,
        by_value=True,
        load_default=None,
        validate=validate.OneOf(QUEUE_TASK_TYPES, error="Pick review or second approval."),
    )
    sla = fields.Enum(SlaState, by_value=True, load_default=None)
    assignee = fields.String(load_default=None, validate=validate.OneOf(["me", "unassigned"]))


class DecisionForm(FormSchema):
    """A decision on a task. A rejection needs a reason and an info request a question, each
    in a field of its own so the message shows beside the right form; loads as `comment`."""

    decision = fields.Enum(Decision, by_value=True, required=True)
    comment = fields.String(load_default=None, validate=validate.Length(max=8000))
    reason = fields.String(load_default=None, validate=validate.Length(max=8000))
    question = fields.String(load_default=None, validate=validate.Length(max=8000))

    @ma.validates_schema
    def _text_given(self, data: dict[str, Any], **_kwargs: Any) -> None:
        needed = {
            Decision.REJECT: ("reason", "Give the reason for rejecting; the requester sees it."),
            Decision.REQUEST_INFO: ("question", "Write the question for the requester."),
        }.get(data["decision"])
        if needed and not (data.get(needed[0]) or "").strip():
            raise ma.ValidationError(needed[1], needed[0])

    @ma.post_load
    def _as_comment(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        field = {Decision.REJECT: "reason", Decision.REQUEST_INFO: "question"}
        text = data.get(field.get(data["decision"], "comment")) or ""
        return {"decision": data["decision"], "comment": text.strip() or None}


class ReassignForm(FormSchema):
    assignee = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        error_messages={"required": "Pick the agent or manager to give the task to."},
    )


class NotificationFilterForm(PageForm):
    unread = fields.Boolean(load_default=False)


class ForgotPasswordForm(FormSchema):
    email = fields.String(
        required=True,
        validate=validate.Length(min=3, max=254),
        error_messages={"required": "Give the e-mail address of your account."},
    )


class ChoosePasswordForm(FormSchema):
    password = fields.String(
        required=True,
        validate=validate.Length(max=MAX_PASSWORD_LENGTH),
        error_messages={"required": "Choose a password."},
    )
    password_again = fields.String(
        required=True,
        validate=validate.Length(max=MAX_PASSWORD_LENGTH),
        error_messages={"required": "Type the password a second time."},
    )


class UserFilterForm(PageForm):
    q = fields.String(load_default=None, validate=validate.Length(max=254))
    role = fields.Enum(Role, by_value=True, load_default=None)
    active = fields.String(load_default=None, validate=validate.OneOf(["yes", "no"]))


def _reason() -> fields.String:
    return fields.String(load_default=None, validate=validate.Length(max=2000))


class UserForm(FormSchema):
    """A user's name, e-mail, role and scope; instances as codes separated by commas or
    spaces. New users also give a username; edits give the version they were made from."""

    display_name = fields.String(
        required=True,
        validate=validate.Length(max=200),
        error_messages={"required": "Give the person's name."},
    )
    email = fields.String(load_default=None, validate=validate.Length(max=254))
    role = fields.Enum(
        Role, by_value=True, required=True, error_messages={"required": "Choose a role."}
    )
    console = RefField(load_default=None)
    instances = fields.String(load_default="", validate=validate.Length(max=2000))
    reason = _reason()

    @ma.post_load
    def _instance_codes(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        data["instances"] = data["instances"].replace(",", " ").split()
        return data


class NewUserForm(UserForm):
    username = fields.String(
        required=True,
        validate=validate.Length(max=64),
        error_messages={"required": "Choose a username."},
    )


class EditUserForm(UserForm):
    version = fields.Integer(required=True, validate=validate.Range(min=1))


class ReasonForm(FormSchema):
    reason = _reason()


# The directory, for administrators -----------------------------------------------------------


def _required_reason() -> fields.String:
    return _text("Say why: the reason is kept in the audit log.", 2000)


class NewConsoleForm(FormSchema):
    code = fields.String(required=True, validate=validate.Length(max=64))
    name = fields.String(required=True, validate=validate.Length(max=200))
    type = fields.String(required=True, validate=validate.Length(max=32))
    reason = _required_reason()


class EditConsoleForm(FormSchema):
    name = fields.String(required=True, validate=validate.Length(max=200))
    type = fields.String(required=True, validate=validate.Length(max=32))
    reason = _required_reason()
    etag = fields.String(required=True, validate=validate.Length(max=64))


class NewInstanceForm(FormSchema):
    code = fields.String(required=True, validate=validate.Length(max=64))
    name = fields.String(required=True, validate=validate.Length(max=200))
    reason = _required_reason()


class EditInstanceForm(FormSchema):
    name = fields.String(required=True, validate=validate.Length(max=200))
    reason = _required_reason()
    etag = fields.String(required=True, validate=validate.Length(max=64))


class OverrideForm(FormSchema):
    console = fields.String(required=True, validate=validate.Length(max=64))
    instance = fields.String(required=True, validate=validate.Length(max=64))
    access_enabled = fields.Boolean(load_default=False)
    linked = fields.Boolean(load_default=False)
    reason = _required_reason()
    confirm = fields.Boolean(load_default=False)
