"""LinkDesk's web application: the Flask app factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from service import config

log = logging.getLogger(__name__)


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
            event.listen(db.engine, "connect", _sqlite_pragmas)
            event.listen(db.engine, "begin", _sqlite_begin)
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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite shared by the web processes and the worker: WAL, waits on locks, foreign keys.

    The driver's own transaction handling is switched off (SQLAlchemy emits BEGIN itself,
    below): left on, it commits at a SAVEPOINT release and breaks all-or-nothing batches.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front (waiting up to busy_timeout): a deferred
    # transaction that reads and then writes fails at once if another process wrote between.
    # Work that only reads (GET requests, `reading_only`) begins deferred: under WAL it reads
    # a snapshot beside the writer instead of queueing for the one write lock.
    from service.extensions import reads_only

    connection.exec_driver_sql("BEGIN" if reads_only() else "BEGIN IMMEDIATE")
