"""LinkDesk's web application: the Flask app factory."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import OperationalError
from werkzeug.middleware.proxy_fix import ProxyFix

from service import config
from service.errors import SQLITE_LOCKED

log = logging.getLogger(__name__)
_WRITING = "linkdesk_writing"  # set in a connection's info while it holds its process's turn


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build a LinkDesk app; `overrides` take precedence over defaults and the environment."""
    app = Flask(__name__)
    config.load(app, overrides)

    from service import api as json_api
    from service import auth, errors, health
    from service.extensions import db, migrate
    from service.temporal import TemporalBridge
    from service.web import dashboard, queue, views
    from service.web import requests as request_pages
    from workflows.client import TemporalSettings

    proxies = int(app.config["PROXY_COUNT"])
    if proxies:  # client addresses (sign-in throttling) come from the trusted proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        if config.is_sqlite(app.config["DATABASE_URL"]):
            SqliteWriters(float(app.config["SQLITE_BUSY_TIMEOUT"])).listen(db.engine)
    auth.init_app(app)
    errors.register(app)
    json_api.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(request_pages.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(dashboard.bp)
    app.extensions["linkdesk.temporal"] = TemporalBridge(TemporalSettings.from_config(app.config))
    if app.config["SECRET_KEY"] == config.DEFAULT_SECRET_KEY:
        log.warning("LINKDESK_SECRET_KEY is not set: using the development key (SQLite only)")
    return app


class SqliteWriters:
    """SQLite shared by the web processes and the worker: connection settings, how
    transactions begin, and this process's writers taking turns at the one write lock.

    Connections use WAL, wait up to `timeout` seconds for a lock, and check foreign keys. The
    driver's own transaction handling is switched off (BEGIN is emitted here): left on, it
    commits at a SAVEPOINT release and breaks all-or-nothing batches.

    IMMEDIATE takes the write lock up front (waiting up to the busy timeout): a deferred
    transaction that reads and then writes fails at once if another process wrote between.
    Work that only reads (GET requests, `reading_only`) begins deferred: under WAL it reads a
    snapshot beside the writer instead of queueing for the one write lock.

    SQLite's own wait for the lock is a poll that sleeps up to 100 ms between tries, so with
    dozens of threads polling, one can lose every try for the whole busy timeout even though
    each writer holds the lock for milliseconds. So the threads of a process first queue for
    a lock of the process, held from BEGIN IMMEDIATE to the end of the transaction, and only
    the one holding it polls SQLite, against the other processes' one writer each.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._turn = threading.Lock()

    def listen(self, engine: Engine) -> None:
        event.listen(engine, "connect", self.connect)
        event.listen(engine, "begin", self.begin)
        event.listen(engine, "commit", self.end)
        event.listen(engine, "rollback", self.end)
        # A connection given back or dropped without ending its transaction (an error on
        # the way) gives its turn back too, so the process never stops writing.
        event.listen(engine.pool, "checkin", self._record_done)
        event.listen(engine.pool, "invalidate", self._record_done)

    def connect(self, dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={round(self.timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    def begin(self, connection: Connection) -> None:
        from service.extensions import reads_only

        if reads_only():
            connection.exec_driver_sql("BEGIN")
            return
        if not self._turn.acquire(timeout=self.timeout):
            locked = sqlite3.OperationalError(SQLITE_LOCKED)
            raise OperationalError("BEGIN IMMEDIATE", None, locked)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self._turn.release()
            raise
        connection.info[_WRITING] = True

    def end(self, connection: Connection) -> None:
        if connection.invalidated:  # its pool record gave the turn back (`_record_done`)
            return
        if connection.info.pop(_WRITING, False):
            self._turn.release()

    def _record_done(self, _dbapi_connection: Any, record: Any, *_: Any) -> None:
        if record is not None and record.info.pop(_WRITING, False):
            self._turn.release()
