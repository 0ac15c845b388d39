"""The JSON API under /api/v1, documented by OpenAPI 3 generated from the marshmallow schemas."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

import flask
from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from webargs.flaskparser import FlaskParser

from service import idempotency
from service.api.schemas import ErrorSchema

UNSAFE = ("post", "put", "patch", "delete")
# Calls made before anyone is signed in take no key: keys belong to the caller.
WITHOUT_KEY = {("/api/v1/tokens", "post")}
IDEMPOTENCY_KEY_PARAMETER = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency.MAX_LENGTH,
        "pattern": "^[\\x20-\\x7E]+$",
    },
    "description": (
        "Makes the call safe to retry. The same key with the same call within 24 hours gets "
        "the first answer back (marked `Idempotent-Replayed: true`) and does nothing again; "
        "the same key with another call is 422; a call whose key is still in flight answers "
        "409 `in_progress` with `Retry-After`. 1 to 255 printable ASCII characters (else 400), "
        "one per action, e.g. a UUID; keys are per user. After a 503 `outcome_unknown`, retry "
        "with the same key to learn what happened."
    ),
}


class _StrictParser(FlaskParser):
    """Query strings are validated like bodies: an unknown argument (a typo) is an error."""

    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
    }

    def _raw_load_json(self, req: flask.Request) -> Any:
        """The JSON body; nesting deeper than Python's stack is invalid JSON like any other."""
        try:
            return super()._raw_load_json(req)
        except RecursionError as exc:
            # A non-empty document: webargs reads an empty one as "no body".
            raise json.JSONDecodeError("Nested too deep", doc="[", pos=0) from exc


class Blueprint(SmorestBlueprint):
    """The blueprint every API module uses."""

    ARGUMENTS_PARSER = _StrictParser()


def takes_idempotency_key(path: str, method: str) -> bool:
    """Whether an operation takes the `Idempotency-Key` header: every unsafe one of a caller."""
    return method in UNSAFE and (path, method) not in WITHOUT_KEY


def common_errors(path: str, method: str, operation: dict[str, Any]) -> list[HTTPStatus]:
    """The error statuses an operation can answer by its kind, whatever its view does: 401
    without credentials, 400 (not JSON) and 413 (too large) for a body, 404 for an unknown
    ID in the path, 503 for a write (Temporal unreachable or SQLite busy), 414 for any address
    that is too long; with an `Idempotency-Key`, 400 (a malformed key), 409 (the key in
    flight) and 422 (the key used for another call)."""
    errors: list[HTTPStatus] = [HTTPStatus.REQUEST_URI_TOO_LONG]
    if operation.get("security") != []:
        errors.append(HTTPStatus.UNAUTHORIZED)
    if "requestBody" in operation:
        errors += [HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE]
    if "{" in path:
        errors.append(HTTPStatus.NOT_FOUND)
    if method in UNSAFE:
        errors.append(HTTPStatus.SERVICE_UNAVAILABLE)
    if takes_idempotency_key(path, method):
        errors += [HTTPStatus.BAD_REQUEST, HTTPStatus.CONFLICT, HTTPStatus.UNPROCESSABLE_ENTITY]
    return errors


class CommonErrors(BasePlugin):
    """Documents on every operation the error answers of its kind (`common_errors`), with the
    error body: the document names every status an operation answers, and no catch-all."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            for status in common_errors(path or "", method, operation):
                if status not in responses and str(status.value) not in responses:
                    responses[str(status.value)] = status.name  # flask-smorest's component


class IdempotencyKeyPlugin(BasePlugin):
    """Documents the `Idempotency-Key` header on every unsafe operation (service.idempotency)."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Add the header parameter to the path's unsafe operations."""
        for method, operation in (operations or {}).items():
            if takes_idempotency_key(path or "", method):
                # A component's name: apispec makes it a reference.
                operation.setdefault("parameters", []).append("IdempotencyKey")


class LinkDeskApi(Api):
    """flask-smorest's Api, with errors left to the app's one handler (service.errors), and
    each operation's error answers documented one by one (no `default` response)."""

    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self) -> None:
        """Errors are rendered by service.errors for the API and the pages alike."""

    def _openapi_swagger_ui(self) -> str:
        """Swagger UI from LinkDesk's own page, started by a static script (the
        Content-Security-Policy allows no inline script, which flask-smorest's page has)."""
        return flask.render_template(
            "api/docs.html",
            title=self.spec.title,
            spec_url=flask.url_for(f"{self._make_doc_blueprint_name()}.openapi_json"),
            swagger_ui_url=self._swagger_ui_url,
            swagger_ui_config=self.config.get("OPENAPI_SWAGGER_UI_CONFIG", {}),
        )


OPENAPI_CONFIG: dict[str, Any] = {
    "API_TITLE": "LinkDesk API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": (
                "Requests to Customer Service about console-company relationships. "
                "Authenticate with `Authorization: Bearer <token>` (create one with "
                '`POST /api/v1/tokens`). Errors have the body `{"error": {"code", '
                '"message", "fields"}}`.'
            )
        },
        "security": [{"bearerAuth": []}],
        "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    },
}


def init_app(app: Flask) -> None:
    """Register the API blueprints and the OpenAPI document on the app."""
    from service.api import (
        audit,
        directory,
        me,
        metrics,
        notifications,
        requests,
        tasks,
        tokens,
        users,
    )

    for key, value in OPENAPI_CONFIG.items():
        app.config.setdefault(key, value)
    # One per app: it holds that app's OpenAPI document.
    api = LinkDeskApi(app, spec_kwargs={"extra_plugins": [IdempotencyKeyPlugin(), CommonErrors()]})
    api.spec.components.parameter("IdempotencyKey", "header", IDEMPOTENCY_KEY_PARAMETER)
    for module in (tokens, me, directory, requests, tasks, notifications, metrics, users, audit):
        api.register_blueprint(module.blp)
