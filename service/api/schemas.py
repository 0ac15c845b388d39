"""Marshmallow schemas of the JSON API: one per request body, query and response contract."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from service.directory import is_valid_code
from service.domain import ConsoleType, RequestKind, Role


class Schema(ma.Schema):
    """Base schema: unknown fields are refused, so typos surface as errors."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class RefField(fields.Field):
    """A console or instance named by numeric ID or by code (`12` or `"ACME-US"`)."""

    default_error_messages = {"invalid": "Give a numeric ID or a code such as ACME-US."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int | str:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int) and value > 0:
            return value
        if isinstance(value, str):
            text = value.strip()
            if text.isdigit() and int(text) > 0:
                return int(text)
            if is_valid_code(text):
                return text
        raise self.make_error("invalid")

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class ErrorDetailSchema(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    field_errors = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Messages per field, when the error concerns fields"},
    )


class ErrorSchema(Schema):
    """The body of every error response."""

    error = fields.Nested(ErrorDetailSchema, required=True)


class PageArgsSchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


def list_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The list shape of PRODUCT §5 (`items`, `page`, `per_page`, `total`) for an item schema."""
    return type(
        name,
        (Schema,),
        {
            "items": fields.List(fields.Nested(item), required=True),
            "page": fields.Integer(required=True),
            "per_page": fields.Integer(required=True),
            "total": fields.Integer(required=True),
        },
    )


class RefSchema(Schema):
    id = fields.Integer(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class ConsoleSchema(RefSchema):
    type = fields.Enum(ConsoleType, by_value=True, required=True)


class InstanceSchema(RefSchema):
    pass


class RelationshipSchema(Schema):
    console = fields.Nested(RefSchema, required=True)
    instance = fields.Nested(RefSchema, required=True)
    access_enabled = fields.Boolean(required=True)
    linked = fields.Boolean(required=True)
    can_slide_in = fields.Boolean(required=True)
    missing = fields.List(
        fields.Enum(RequestKind, by_value=True),
        required=True,
        metadata={"description": "Request kinds that would let the console's users slide in"},
    )


class RelationshipArgsSchema(PageArgsSchema):
    console_id = RefField(metadata={"description": "Numeric ID or code"})
    instance_id = RefField(metadata={"description": "Numeric ID or company code"})


class MeSchema(Schema):
    id = fields.Integer(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    email = fields.String(allow_none=True)
    role = fields.Enum(Role, by_value=True, required=True)
    console = fields.Nested(ConsoleSchema, allow_none=True)
    instances = fields.List(fields.Nested(InstanceSchema))


class TokenCreateSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    name = fields.String(validate=validate.Length(max=100), metadata={"description": "A label"})


class TokenSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "First characters, to tell"})
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(allow_none=True)


class TokenCreatedSchema(TokenSchema):
    token = fields.String(required=True, metadata={"description": "Shown once, never again"})


ConsoleListSchema = list_schema(ConsoleSchema, "ConsoleListSchema")
InstanceListSchema = list_schema(InstanceSchema, "InstanceListSchema")
RelationshipListSchema = list_schema(RelationshipSchema, "RelationshipListSchema")
TokenListSchema = list_schema(TokenSchema, "TokenListSchema")
