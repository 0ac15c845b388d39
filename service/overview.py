"""What the admin home counts: users by role, the directory, relationships by state, and
the requests still open."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select

from domain.vocabulary import Role
from service.extensions import db
from service.models import Console, Instance, Relationship, Request, User


@dataclass(frozen=True)
class RoleCount:
    """How many users of one role can sign in (active) and how many cannot."""

    role: Role
    active: int
    inactive: int


@dataclass(frozen=True)
class StateCount:
    """How many relationships are in one state of their two flags."""

    access_enabled: bool
    linked: bool
    count: int


@dataclass(frozen=True)
class Overview:
    """The admin home's counts."""

    users: list[RoleCount]
    consoles: int
    instances: int
    relationships: list[StateCount]
    open_requests: int

    @property
    def users_total(self) -> int:
        """Every user, active or not."""
        return sum(row.active + row.inactive for row in self.users)

    @property
    def relationships_total(self) -> int:
        """Every relationship, whatever its state."""
        return sum(row.count for row in self.relationships)


def overview() -> Overview:
    """Count what the admin home shows: every role and every flag state is listed, with 0
    when there is none; consoles and instances removed from the directory are not counted."""
    by_role = {
        (Role(role), bool(active)): int(count)
        for role, active, count in db.session.execute(
            select(User.role, User.active, func.count()).group_by(User.role, User.active)
        )
    }
    by_state = {
        (bool(access), bool(linked)): int(count)
        for access, linked, count in db.session.execute(
            select(Relationship.access_enabled, Relationship.linked, func.count()).group_by(
                Relationship.access_enabled, Relationship.linked
            )
        )
    }
    return Overview(
        users=[
            RoleCount(role, by_role.get((role, True), 0), by_role.get((role, False), 0))
            for role in Role
        ],
        consoles=_count(select(func.count()).where(Console.removed_at.is_(None))),
        instances=_count(select(func.count()).where(Instance.removed_at.is_(None))),
        relationships=[
            StateCount(access, linked, by_state.get((access, linked), 0))
            for access in (True, False)
            for linked in (True, False)
        ],
        open_requests=_count(select(func.count()).where(Request.open_key.is_not(None))),
    )


def _count(query: Select[Any]) -> int:
    return int(db.session.execute(query).scalar_one())
