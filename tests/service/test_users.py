"""The user service (service/users.py) where the pages and the API cannot reach: two edits
made from the same version at the same moment."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from service import users
from service.extensions import db
from service.models import User
from tests.conftest import Factory


def _user(username: str) -> User:
    return db.session.execute(select(User).filter_by(username=username)).scalar_one()


def test_of_two_edits_from_one_version_the_later_is_refused(
    app: Flask, demo_directory: Factory
) -> None:
    with app.app_context():
        mine = _user("agent")
        version, _ = mine.version, mine.instances
        db.session.expunge(mine)
        db.session.rollback()  # SQLite: let the other writer in (PostgreSQL runs both at once)
        with app.app_context():  # another request, with a session of its own
            users.update_user(_user("root"), _user("agent"), version, {"display_name": "Theirs"})
        mine = db.session.merge(mine, load=False)  # as this request read it, unchanged since
        # Both passed the version check; the database keeps the later one from landing.
        with pytest.raises(StaleDataError):
            users.update_user(_user("root"), mine, version, {"display_name": "Mine"})
        db.session.rollback()
    with app.app_context():
        assert _user("agent").display_name == "Theirs"
        assert _user("agent").version == version + 1
