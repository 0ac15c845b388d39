"""LinkDesk's web application: the Flask app factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service import config
from service.sqlite_writers import SqliteWriters, WriterGate

log = logging.getLogger(__name__)


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build a LinkDesk app; `overrides` take precedence over defaults and the environment."""
    app = Flask(__name__)
    config.load(app, overrides)

    from service import api as json_api
    from service import auth, errors, headers, health
    from service.extensions import IdConverter, db, migrate
    from service.temporal import TemporalBridge
    from service.web import dashboard, queue, views
    from service.web import requests as request_pages
    from workflows.client import TemporalSettings

    proxies = int(app.config["PROXY_COUNT"])
    if proxies:  # client addresses (sign-in throttling) come from the trusted proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    app.url_map.converters["int"] = IdConverter  # before any route is added
    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        if config.is_sqlite(app.config["DATABASE_URL"]):
            SqliteWriters(
                float(app.config["SQLITE_BUSY_TIMEOUT"]),
                WriterGate.beside(db.engine.url.database),
                background=bool(app.config["SQLITE_BACKGROUND_WRITER"]),
            ).listen(db.engine)
    auth.init_app(app)
    errors.register(app)
    headers.init_app(app)
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
