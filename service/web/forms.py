"""Marshmallow schemas for HTML forms, and the one way pages load them."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from marshmallow import fields, validate

from service.api.schemas import RefField
from service.errors import Invalid


class FormSchema(ma.Schema):
    """Base of form schemas: the CSRF token and submit buttons are not data."""

    class Meta:
        unknown = ma.EXCLUDE


class SignInForm(FormSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class TokenForm(FormSchema):
    name = fields.String(load_default="", validate=validate.Length(max=100))


class PageForm(FormSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))


class RelationshipFilterForm(PageForm):
    console = RefField(load_default=None)
    instance = RefField(load_default=None)


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
