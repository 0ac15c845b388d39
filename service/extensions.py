"""Flask extensions, created unbound here and bound to the app in `create_app`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import g, has_request_context, request
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase
from werkzeug.routing import IntegerConverter

# The largest numeric ID any table holds (a 32-bit SQL INTEGER): a larger number names nothing.
MAX_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """The `int` of every route: ASCII digits up to `MAX_ID`, so an ID past what any table
    holds is a 404 like any unknown one, not an integer the database cannot compare."""

    regex = r"[0-9]+"

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every LinkDesk model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


MIGRATIONS_DIR = str(Path(__file__).with_name("migrations"))

db = SQLAlchemy(model_class=Base)
if TYPE_CHECKING:  # db.Model is made at run time; to a type checker it is the Base
    Model = Base
else:
    Model = db.Model
migrate = Migrate(directory=MIGRATIONS_DIR, render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_reading: ContextVar[bool] = ContextVar("linkdesk_reading_only", default=False)


@contextmanager
def reading_only() -> Iterator[None]:
    """Database work that only reads (on SQLite its transactions leave the write lock free)."""
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def done_writing() -> None:
    """The current web request has committed its writes: what it does next only reads."""
    g.linkdesk_done_writing = True


def reads_only() -> bool:
    """Whether the current work only reads: `reading_only`, a GET, HEAD or OPTIONS request,
    or the rest of a request after `done_writing`."""
    if _reading.get():
        return True
    if not has_request_context():
        return False
    return request.method in SAFE_METHODS or bool(g.get("linkdesk_done_writing"))
