"""The directory as each role may see it: consoles, instances and their relationships.

Scope: Customer Service and administrators see everything; a partner sees its own
console and the instances related to it; an instance admin sees its own instances and the
consoles related to them. A partner may also name any instance by its company code (the
customer gives it to them, and it is needed to ask for a first link), and an instance admin
any console by its code; numeric IDs outside the scope are never resolved, so the directory
cannot be enumerated. Anything else out of scope is reported exactly like something unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, exists, false, func, literal_column, select, true
from sqlalchemy.sql.elements import ColumnElement

from domain.kinds import missing_for_slide_in
from domain.vocabulary import RequestKind, Role
from service.errors import NotFound
from service.extensions import MAX_ID, db
from service.models import (
    Console,
    Instance,
    Relationship,
    User,
    is_numeral,
    parse_id,
    user_instances,
)

Ref = int | str
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def normalise_code(code: str) -> str:
    """Codes are compared and stored upper-case."""
    return code.strip().upper()


def is_valid_code(code: str) -> bool:
    """A code is 1-64 letters, digits, dots, dashes or underscores with at least one letter.

    The letter keeps codes apart from numeric IDs, so a reference is never ambiguous.
    """
    return bool(CODE_PATTERN.match(code)) and any(c.isalpha() for c in code)


def _is_id(ref: Ref) -> bool:
    """Whether a reference is a numeric ID: an int, or ASCII digits (a code has a letter)."""
    return isinstance(ref, int) or is_numeral(ref.strip())


def _console_scope(user: User) -> ColumnElement[bool]:
    if Role(user.role).sees_everything:
        return true()
    if user.role == Role.PARTNER:
        return Console.id == user.console_id if user.console_id else false()
    related_to_own_instances = exists().where(
        Relationship.console_id == Console.id,
        Relationship.instance_id == user_instances.c.instance_id,
        user_instances.c.user_id == user.id,
    )
    return related_to_own_instances


def _instance_scope(user: User) -> ColumnElement[bool]:
    if Role(user.role).sees_everything:
        return true()
    if user.role == Role.PARTNER:
        if not user.console_id:
            return false()
        return exists().where(
            Relationship.instance_id == Instance.id, Relationship.console_id == user.console_id
        )
    return exists().where(
        user_instances.c.instance_id == Instance.id, user_instances.c.user_id == user.id
    )


def _relationship_scope(user: User) -> ColumnElement[bool]:
    if Role(user.role).sees_everything:
        return true()
    if user.role == Role.PARTNER:
        return Relationship.console_id == user.console_id if user.console_id else false()
    own_instances = select(user_instances.c.instance_id).where(user_instances.c.user_id == user.id)
    return Relationship.instance_id.in_(own_instances)


def visible_consoles(user: User) -> Select[Console]:
    """The consoles the user may list, ordered by code."""
    return (
        select(Console)
        .where(_console_scope(user), Console.removed_at.is_(None))
        .order_by(Console.code)
    )


def visible_instances(user: User) -> Select[Instance]:
    """The instances the user may list, ordered by code."""
    return (
        select(Instance)
        .where(_instance_scope(user), Instance.removed_at.is_(None))
        .order_by(Instance.code)
    )


M = TypeVar("M", Console, Instance)


def _resolve(
    user: User, model: type[M], ref: Ref, field: str, scope: ColumnElement[bool], by_code: bool
) -> M:
    """Find a console or instance by ID or code within the user's scope, else `NotFound`.

    `by_code` lets a code reach outside the listing scope (the other side of the user's own
    relationships, see the module docstring).
    """
    noun = "console" if model is Console else "instance"
    message = f"No {noun} {ref!r} that you can see."
    if _is_id(ref):
        number = ref if isinstance(ref, int) else parse_id(ref.strip())
        if number is None or not 0 < number <= MAX_ID:  # an ID that cannot exist names nothing
            raise NotFound(message, fields={field: [message]})
        condition: ColumnElement[bool] = model.id == number
    else:
        condition = model.code == normalise_code(str(ref))
        if by_code:
            scope = true()
    found = db.session.execute(
        select(model).where(condition, scope, model.removed_at.is_(None))
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(message, fields={field: [message]})
    return found


def resolve_console(user: User, ref: Ref, field: str = "console_id") -> Console:
    """The console named by numeric ID or code, if the user may refer to it."""
    return _resolve(
        user, Console, ref, field, _console_scope(user), user.role == Role.INSTANCE_ADMIN
    )


def resolve_instance(user: User, ref: Ref, field: str = "instance_id") -> Instance:
    """The instance named by numeric ID or company code, if the user may refer to it."""
    return _resolve(user, Instance, ref, field, _instance_scope(user), user.role == Role.PARTNER)


@dataclass(frozen=True)
class RelationshipView:
    """A console-instance relationship as shown to users; absent rows read as both flags off."""

    console: Console
    instance: Instance
    access_enabled: bool
    linked: bool

    @property
    def can_slide_in(self) -> bool:
        """Console users slide in exactly when access is enabled and the link exists."""
        return self.access_enabled and self.linked

    @property
    def missing(self) -> list[RequestKind]:
        """The request kinds that would make sliding in possible."""
        return missing_for_slide_in(self.access_enabled, self.linked)

    @classmethod
    def of(cls, row: Relationship) -> RelationshipView:
        """The view of a stored relationship."""
        return cls(row.console, row.instance, bool(row.access_enabled), bool(row.linked))


def relationship_between(console: Console, instance: Instance) -> RelationshipView:
    """The current relationship of a console and an instance (both flags off when none)."""
    row = db.session.execute(
        select(Relationship).where(
            Relationship.console_id == console.id, Relationship.instance_id == instance.id
        )
    ).scalar_one_or_none()
    return RelationshipView.of(row) if row else RelationshipView(console, instance, False, False)


@dataclass(frozen=True)
class Page:
    """One page of a list, in the API's list shape. When `total_exact` is false, `total` is
    a lower bound: the list was counted only that far."""

    items: list[Any]
    page: int
    per_page: int
    total: int
    total_exact: bool = True


def paginate(query: Select[Any], page: int, per_page: int, count_up_to: int | None = None) -> Page:
    """Run a select one page at a time, counting every row, or with `count_up_to` only that
    many (and at least up to this page), so a list of a million rows is not counted whole."""
    if count_up_to is None:
        result = db.paginate(query, page=page, per_page=per_page, error_out=False, count=True)
        return Page(list(result.items), page, per_page, result.total or 0)
    items = list(db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).scalars())
    limit = max(count_up_to, page * per_page)
    rows: Select[Any] = query.with_only_columns(literal_column("1"), maintain_column_froms=True)
    rows = rows.order_by(None).limit(limit + 1)
    found = db.session.execute(select(func.count()).select_from(rows.subquery())).scalar_one()
    return Page(items, page, per_page, min(int(found), limit), int(found) <= limit)


def list_relationships(
    user: User,
    console_ref: Ref | None = None,
    instance_ref: Ref | None = None,
    *,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """Relationships the user may see, optionally for one console and/or one instance.

    Given both a console and an instance, the one relationship between them is returned even
    when no row exists yet (both flags off), so a slide-in check always has an answer.
    """
    console = resolve_console(user, console_ref) if console_ref is not None else None
    instance = resolve_instance(user, instance_ref) if instance_ref is not None else None
    if console is not None and instance is not None:
        return Page([relationship_between(console, instance)], 1, per_page, 1)

    query = (
        select(Relationship)
        .join(Relationship.console)
        .join(Relationship.instance)
        .where(
            _relationship_scope(user), Console.removed_at.is_(None), Instance.removed_at.is_(None)
        )
        .order_by(Console.code, Instance.code)
    )
    if console is not None:
        query = query.where(Relationship.console_id == console.id)
    if instance is not None:
        query = query.where(Relationship.instance_id == instance.id)
    result = paginate(query, page, per_page)
    return Page([RelationshipView.of(r) for r in result.items], page, per_page, result.total)
