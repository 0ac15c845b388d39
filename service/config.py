"""Configuration: defaults in code, overridden by `LINKDESK_*` environment variables.

Every key below can be set as `LINKDESK_<KEY>`; values are parsed as JSON when they can be
(`LINKDESK_LOGIN_MAX_FAILURES=10` is the integer 10), as Flask's `from_prefixed_env` does.
The README has the table.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy.engine import make_url

from domain.calendar import BusinessCalendar
from domain.vocabulary import Role
from service import private_files

ENV_PREFIX = "LINKDESK"
# A key shorter than this is refused: it could be guessed, and with it any session forged.
MIN_SECRET_KEY_BYTES = 32
# Keys that were once printed in LinkDesk's own code, so anyone may know them.
PUBLIC_SECRET_KEYS = frozenset({"linkdesk-insecure-development-key"})
GENERATE_SECRET_KEY = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says what to change."""


DEFAULTS: dict[str, Any] = {
    "VAR_DIR": "var",
    "DATABASE_URL": None,  # None: SQLite file in VAR_DIR
    "SECRET_KEY": None,  # no built-in key: see check_secret_key
    "TEMPORAL_ADDRESS": "127.0.0.1:7233",
    "TEMPORAL_NAMESPACE": "default",
    "TEMPORAL_TASK_QUEUE": "linkdesk",
    "TEMPORAL_TLS": False,
    "TEMPORAL_TLS_CERT": None,
    "TEMPORAL_TLS_KEY": None,
    "TEMPORAL_TLS_CA": None,
    "TEMPORAL_API_KEY": None,
    "TEMPORAL_UI_URL": "http://127.0.0.1:8233",
    "TEMPORAL_RPC_TIMEOUT": 5.0,
    # Seconds a SQLite writer waits for the write lock before the request answers 503.
    "SQLITE_BUSY_TIMEOUT": 10.0,
    # The worker's writes give way to the web's (service.sqlite_writers.WriterGate); the
    # worker sets it.
    "SQLITE_BACKGROUND_WRITER": False,
    "SMTP_HOST": None,
    "SMTP_PORT": 25,
    "SMTP_USERNAME": None,
    "SMTP_PASSWORD": None,
    "SMTP_STARTTLS": False,
    "MAIL_FROM": "linkdesk@localhost",
    "PASSWORD_HASH_METHOD": "scrypt",  # werkzeug's method string, e.g. "scrypt:32768:8:1"
    "TOKEN_TTL_DAYS": 90,
    # Business hours of the SLA clock (see domain.calendar.BusinessCalendar.from_config).
    "SLA_CALENDAR": {
        "timezone": "UTC",
        "workdays": [0, 1, 2, 3, 4],
        "start": "09:00",
        "end": "17:00",
        "holidays": [],
    },
    # Sign-in throttling (service.auth.authenticate): failed attempts per username and client
    # address before each further attempt waits, that wait doubling with every failure up to
    # the longest; how long a failure counts. One address may fail four times as often in all.
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_DELAY_SECONDS": 15,
    "LOGIN_MAX_DELAY_SECONDS": 900,
    "LOGIN_WINDOW_SECONDS": 3600,
    # A session not used for this long is ended; PERMANENT_SESSION_LIFETIME ends any session
    # that long after sign-in.
    "SESSION_IDLE_MINUTES": 60,
    # One-time password links (service.users): how long one works, and how many one e-mail
    # address may ask for ("Forgot your password?") per window before it must wait.
    "PASSWORD_LINK_MINUTES": 60,
    "PASSWORD_LINK_LIMIT": 3,
    "PASSWORD_LINK_WINDOW_SECONDS": 3600,
    # The address people reach LinkDesk at, e.g. https://linkdesk.example.com: e-mailed links
    # start with it. Unset: the address of the request that sends the link.
    "PUBLIC_URL": None,
    # Shortest password a person may choose (the settings page, `linkdesk set-password`).
    "PASSWORD_MIN_LENGTH": 12,
    # How many reverse proxies in front set X-Forwarded-For/-Proto (0: none, trust nothing).
    "PROXY_COUNT": 0,
    "SESSION_COOKIE_SECURE": False,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "linkdesk_session",
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,
    "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead of a clock
    "WTF_CSRF_CHECK_DEFAULT": False,
    # Bytes a request body may hold; a larger one is refused with 413 before it is read.
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # checked in one before_request hook, see service.auth
    # Bearer token Prometheus sends to scrape /metrics; unset: /metrics is open (local runs).
    "METRICS_TOKEN": None,
    # Roles whose users must sign in with a second factor (comma-separated or a JSON list).
    "MFA_REQUIRED_ROLES": "",
    # OpenID Connect sign-in (service.sso); off while OIDC_ISSUER is unset.
    "OIDC_ISSUER": None,
    "OIDC_CLIENT_ID": None,
    "OIDC_CLIENT_SECRET": None,
    "OIDC_EMAIL_CLAIM": "email",
    "OIDC_USERNAME_CLAIM": "preferred_username",
    "OIDC_DISPLAY_NAME": "single sign-on",
    # Role given to a person the provider knows and LinkDesk does not; unset: nobody is created.
    "OIDC_NEW_USER_ROLE": None,
}
# Secrets and identifiers taken as written: the JSON parsing would turn "12e3" into a number.
RAW_KEYS = ("METRICS_TOKEN", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")
# Roles a first single sign-on may create: the others need a scope (a partner's console, an
# instance admin's instances) or are given by hand (admin).
OIDC_NEW_USER_ROLES = frozenset({Role.AGENT, Role.MANAGER})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def load(app: Flask, overrides: Mapping[str, Any] | None = None, *, serving: bool = True) -> None:
    """Fill `app.config` from defaults, the environment and explicit overrides, then check it.

    An app that serves requests needs a good `SECRET_KEY` (see `check_secret_key`); one built
    for operator commands and the worker (`serving=False`) has none, so it signs nothing.
    """
    app.config.from_mapping(copy.deepcopy(DEFAULTS))  # nested defaults stay untouched
    app.config.from_prefixed_env(ENV_PREFIX)
    for key in RAW_KEYS:
        if f"{ENV_PREFIX}_{key}" in os.environ:
            app.config[key] = os.environ[f"{ENV_PREFIX}_{key}"] or None
    if overrides:
        app.config.from_mapping(overrides)

    var_dir = Path(app.config["VAR_DIR"]).resolve()
    app.config["VAR_DIR"] = str(var_dir)
    url = app.config["DATABASE_URL"] or f"sqlite:///{var_dir / 'linkdesk.sqlite3'}"
    app.config["DATABASE_URL"] = url
    app.config["SQLALCHEMY_DATABASE_URI"] = _normalise_database_url(url)
    if serving:
        check_secret_key(app.config["SECRET_KEY"])
    else:
        app.config["SECRET_KEY"] = None
    if is_sqlite(url):
        private_files.private_dir(var_dir)
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            private_files.private_sqlite(Path(database))
    try:
        calendar = BusinessCalendar.from_config(app.config["SLA_CALENDAR"])
    except ValueError as exc:
        raise ConfigError(f"LINKDESK_SLA_CALENDAR is not valid: {exc}") from None
    app.config["SLA_CALENDAR"] = calendar.to_config()
    if app.config["TEMPORAL_API_KEY"] or app.config["TEMPORAL_TLS_CERT"]:
        app.config["TEMPORAL_TLS"] = True
    app.config["MFA_REQUIRED_ROLES"] = _roles(app.config["MFA_REQUIRED_ROLES"])
    _check_oidc(app.config)


def _roles(value: object) -> frozenset[Role]:
    """The roles of `MFA_REQUIRED_ROLES`: a comma-separated string or a list of role names."""
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list | tuple | set | frozenset):
        raise ConfigError("LINKDESK_MFA_REQUIRED_ROLES must list role names, e.g. agent,admin")
    roles = set()
    for name in names:
        text = str(name).strip()
        if not text:
            continue
        try:
            roles.add(Role(text))
        except ValueError:
            choices = ", ".join(role.value for role in Role)
            raise ConfigError(
                f"LINKDESK_MFA_REQUIRED_ROLES names an unknown role {text!r} (one of: {choices})"
            ) from None
    return frozenset(roles)


def _check_oidc(config: dict[str, Any]) -> None:
    """Refuse an OpenID Connect configuration that could not work."""
    if not config["OIDC_ISSUER"]:
        return
    issuer = urlsplit(str(config["OIDC_ISSUER"]))
    loopback = issuer.scheme == "http" and issuer.hostname in LOOPBACK_HOSTS
    if not issuer.hostname or (issuer.scheme != "https" and not loopback):
        raise ConfigError(
            "LINKDESK_OIDC_ISSUER must be the provider's https:// URL (plain http only on "
            "this machine's loopback)."
        )
    for key in ("OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"):
        if not config[key]:
            raise ConfigError(f"LINKDESK_OIDC_ISSUER is set: set LINKDESK_{key} too.")
    role = config["OIDC_NEW_USER_ROLE"]
    if role is not None and role not in {r.value for r in OIDC_NEW_USER_ROLES}:
        allowed = ", ".join(sorted(r.value for r in OIDC_NEW_USER_ROLES))
        raise ConfigError(
            f"LINKDESK_OIDC_NEW_USER_ROLE may be {allowed} or unset (nobody is created), "
            f"not {role!r}: the other roles need a scope or are given by an administrator."
        )


def check_secret_key(key: object) -> None:
    """Refuse a `SECRET_KEY` that would let anyone forge a session: unset, a placeholder, one
    LinkDesk's code once shipped, or shorter than `MIN_SECRET_KEY_BYTES`."""
    raw = key.encode() if isinstance(key, str) else key
    if not raw:
        problem = "is not set"
    elif not isinstance(raw, bytes):
        problem = "is not a string"
    elif "changeme" in raw.decode(errors="replace").lower().replace("-", "").replace("_", ""):
        problem = "is still the CHANGE-ME placeholder"
    elif raw.decode(errors="replace").strip() in PUBLIC_SECRET_KEYS:
        problem = "is a development key published in LinkDesk's code"
    elif len(raw) < MIN_SECRET_KEY_BYTES:
        problem = f"is too short ({len(raw)} bytes; at least {MIN_SECRET_KEY_BYTES})"
    else:
        return
    raise ConfigError(
        f"LINKDESK_SECRET_KEY {problem}. It signs session cookies and CSRF tokens, and a "
        "key anyone could know or guess would let them forge a session. Set "
        f"LINKDESK_SECRET_KEY to a long random value, generated with: {GENERATE_SECRET_KEY} "
        "(`linkdesk up` makes one by itself in var/secret_key)."
    )


def is_sqlite(url: str) -> bool:
    """Whether a database URL points at SQLite, LinkDesk's embedded default."""
    return url.startswith("sqlite")


def _normalise_database_url(url: str) -> str:
    """Use psycopg 3 for plain `postgresql://` URLs, as SQLAlchemy would pick psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url
