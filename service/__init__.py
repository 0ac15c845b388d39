"""LinkDesk's web application: the Flask app factory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wrappers import Response

from service import config
from service.sqlite_writers import SqliteWriters, WriterGate

NOT_SERVING = "This LinkDesk app was built for operator commands and serves no requests.\n"


def create_app(overrides: Mapping[str, Any] | None = None, *, serving: bool = True) -> Flask:
    """Build a LinkDesk app; `overrides` take precedence over defaults and the environment.

    An app that serves requests (gunicorn, `flask run`, the tests) is refused without a good
    `LINKDESK_SECRET_KEY`. The operator commands and the worker build theirs with
    `serving=False`: it has no key, signs nothing and answers every request 503.
    """
    app = Flask(__name__)
    config.load(app, overrides, serving=serving)

    from service import api as json_api
    from service import auth, errors, headers, health, idempotency, sso
    from service.extensions import IdConverter, db, migrate
    from service.temporal import TemporalBridge
    from service.web import admin, admin_directory, admin_users, dashboard, mfa, queue, views
    from service.web import requests as request_pages
    from service.web import sso as sso_pages
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
    idempotency.init_app(app)
    json_api.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(mfa.bp)
    app.register_blueprint(sso_pages.bp)
    sso.init_app(app)
    app.register_blueprint(request_pages.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(admin_users.bp)
    app.register_blueprint(admin_directory.bp)
    app.register_blueprint(admin.bp)
    app.extensions["linkdesk.temporal"] = TemporalBridge(TemporalSettings.from_config(app.config))
    if not serving:  # a fixed answer to every request: it has no key to sign with
        app.wsgi_app = Response(NOT_SERVING, 503, mimetype="text/plain")  # type: ignore[method-assign]
    return app
