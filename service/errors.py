"""Errors the service layer raises, and the one handler that renders every error.

Service functions raise a `ServiceError` with a status, a short machine code and a message
for people; the same handler answers with the documented JSON body (`ErrorSchema`) under
`/api/` and with an HTML page elsewhere, so a view never builds an error response itself.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from marshmallow import fields as ma_fields
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException, RequestURITooLarge

FieldErrors = Mapping[str, list[str]]
SQLITE_LOCKED = "database is locked"  # SQLite's error once a writer's wait for the lock ran out
BUSY_RETRY_AFTER = 2  # seconds
# Longest path and query string taken, in bytes: more is no address LinkDesk makes.
MAX_URL_LENGTH = 8192


class ServiceError(Exception):
    """An outcome other than success, with what the caller needs to understand it."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        fields: FieldErrors | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})
        # More of the JSON error body, beside `error` (a 409's current values, for one).
        self.extra: dict[str, Any] = {}


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Invalid(ServiceError):
    status = 422
    code = "validation_error"


class Throttled(ServiceError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class InProgress(Conflict):
    """The same action is being done right now (its Idempotency-Key is in flight): retry."""

    code = "in_progress"


class NotReady(Conflict):
    """The workflow has not caught up with what the database already shows: retry shortly."""

    code = "not_ready"


class Unavailable(ServiceError):
    status = 503
    code = "unavailable"


class OutcomeUnknown(Unavailable):
    """An action was sent but its answer was lost: it may or may not have been applied."""

    code = "outcome_unknown"


class ErrorDetailSchema(ma.Schema):
    """What went wrong: a machine code, a message for people and messages per field."""

    class Meta:  # as every API schema (service.api.schemas.Schema)
        unknown = ma.RAISE
        ordered = True

    code = ma_fields.String(required=True, metadata={"example": "validation_error"})
    message = ma_fields.String(required=True)
    field_errors = ma_fields.Dict(
        data_key="fields",
        keys=ma_fields.String(),
        values=ma_fields.List(ma_fields.String()),
        metadata={"description": "Messages per field, when the error concerns fields"},
    )


class ErrorSchema(ma.Schema):
    """The body of every error response."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    error = ma_fields.Nested(ErrorDetailSchema, required=True)


_ERROR_BODY = ErrorSchema()
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def render_error(
    status: int,
    code: str,
    message: str,
    fields: FieldErrors | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    """The response for an error: the documented JSON body for the API, a page for people."""
    if _wants_json():
        error = {"code": code, "message": message, "field_errors": dict(fields or {})}
        response = jsonify({**(extra or {}), **_ERROR_BODY.dump({"error": error})})
    else:
        html = render_template(
            "error.html", status=status, code=code, message=message, fields=fields or {}
        )
        response = Response(html, mimetype="text/html")
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _flatten_webargs(messages: Any) -> dict[str, list[str]]:
    """Turn webargs' `{location: {field: [msg]}}` into `{field: [msg]}`."""
    fields: dict[str, list[str]] = {}
    if not isinstance(messages, Mapping):
        return fields
    for location_errors in messages.values():
        if isinstance(location_errors, Mapping):
            for name, errors in location_errors.items():
                fields[str(name)] = _as_messages(errors)
        else:
            fields["_body"] = _as_messages(location_errors)
    return fields


def _as_messages(errors: Any) -> list[str]:
    if isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        return errors
    if isinstance(errors, Mapping):  # nested schema errors: keep the first level readable
        return [f"{key}: {'; '.join(_as_messages(val))}" for key, val in errors.items()]
    return [str(errors)]


def handle_http_exception(error: HTTPException) -> Response:
    """Render any HTTP exception (webargs validation, 404 routing, 500) in the house style."""
    status = error.code or 500
    if status >= 500:  # Flask has already logged the traceback; never show it
        return render_error(status, "internal_error", "Something went wrong on our side.")
    data = getattr(error, "data", None) or {}
    fields = _flatten_webargs(data.get("messages") or data.get("errors"))
    if isinstance(error, CSRFError):
        return render_error(
            400,
            "csrf_failed",
            "The form expired or did not come from LinkDesk (CSRF check failed): "
            "reload the page and try again.",
        )
    if status == 400 and "_body" in fields:
        return render_error(400, "bad_request", "The request body is not valid JSON.", fields)
    if status == 422:
        return render_error(422, "validation_error", "Some fields are not valid.", fields)
    message = data.get("message") or error.description or error.name
    # What the exception says in headers stays said: the `Allow` of a 405, for one.
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    return render_error(status, _HTTP_CODES.get(status, "error"), message, fields, headers)


def handle_unreadable_input(error: Exception) -> Response:
    """Last resort for input a parser could not read (bytes that are not UTF-8, nesting
    deeper than Python's stack): the client's fault, so 400, logged at info only."""
    current_app.logger.info(
        "%s %s: unreadable input: %s", request.method, request.path, type(error).__name__
    )
    return render_error(400, "bad_request", "The request could not be read.")


def refuse_long_urls() -> None:
    """Refuse an address longer than `MAX_URL_LENGTH` before anything reads it (414)."""
    if len(request.path.encode()) + len(request.query_string) > MAX_URL_LENGTH:
        raise RequestURITooLarge()


def handle_database_error(error: OperationalError) -> Response:
    """A SQLite writer that waited its whole busy timeout for the write lock gets 503 (the
    transaction was rolled back, so nothing it meant to write was written); any other
    database failure is a 500."""
    if SQLITE_LOCKED in str(error.orig):
        current_app.logger.warning("%s %s: %s", request.method, request.path, error.orig)
        return render_error(
            503,
            "unavailable",
            "LinkDesk is too busy to take this right now: nothing was saved. "
            f"Try again in {BUSY_RETRY_AFTER} seconds.",
            headers={"Retry-After": str(BUSY_RETRY_AFTER)},
        )
    current_app.log_exception(sys.exc_info())
    return render_error(500, "internal_error", "Something went wrong on our side.")


def handle_lost_race(error: StaleDataError) -> Response:
    """Two writers changed the same row from the same version at once: the later one's
    transaction was rolled back, and it is told to look again (409)."""
    return render_error(
        409,
        "conflict",
        "Someone else changed this at the same moment: nothing was saved. Reload and try again.",
    )


def register(app: Flask) -> None:
    """Install the error handlers on the app."""

    @app.errorhandler(ServiceError)
    def _service_error(error: ServiceError) -> Response:
        return render_error(
            error.status, error.code, error.message, error.fields, error.headers, error.extra
        )

    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(UnicodeDecodeError, handle_unreadable_input)
    app.register_error_handler(RecursionError, handle_unreadable_input)
    app.before_request_funcs.setdefault(None, []).insert(0, refuse_long_urls)
    app.register_error_handler(OperationalError, handle_database_error)
    app.register_error_handler(StaleDataError, handle_lost_race)
