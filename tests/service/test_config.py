"""Configuration from defaults, LINKDESK_* variables and explicit overrides."""

from __future__ import annotations

from typing import Any

import pytest

from service import create_app
from service.config import DEFAULT_SECRET_KEY, ConfigError


def test_environment_variables_are_parsed_into_types(
    monkeypatch: pytest.MonkeyPatch, base_config: dict[str, Any]
) -> None:
    monkeypatch.setenv("LINKDESK_LOGIN_MAX_FAILURES", "9")
    monkeypatch.setenv("LINKDESK_TEMPORAL_NAMESPACE", "linkdesk-prod")
    monkeypatch.setenv("LINKDESK_SESSION_COOKIE_SECURE", "true")
    app = create_app(
        {"DATABASE_URL": base_config["DATABASE_URL"], "SECRET_KEY": base_config["SECRET_KEY"]}
    )
    assert app.config["LOGIN_MAX_FAILURES"] == 9
    assert app.config["TEMPORAL_NAMESPACE"] == "linkdesk-prod"
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_a_non_sqlite_database_refuses_the_default_secret_key() -> None:
    with pytest.raises(ConfigError, match="LINKDESK_SECRET_KEY is not set"):
        create_app({"DATABASE_URL": "postgresql://db.internal/linkdesk"})


def test_postgres_urls_use_psycopg_3() -> None:
    app = create_app({"DATABASE_URL": "postgresql://db.internal/linkdesk", "SECRET_KEY": "x" * 40})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db.internal/linkdesk"


def test_sqlite_default_lives_in_the_var_directory(tmp_path: Any) -> None:
    app = create_app({"VAR_DIR": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'linkdesk.sqlite3'}"
    assert app.config["SECRET_KEY"] == DEFAULT_SECRET_KEY  # allowed on SQLite only


def test_temporal_cloud_api_key_turns_tls_on(tmp_path: Any) -> None:
    app = create_app({"VAR_DIR": str(tmp_path), "TEMPORAL_API_KEY": "secret"})
    assert app.config["TEMPORAL_TLS"] is True


def test_a_bad_sla_calendar_is_refused_at_start(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="LINKDESK_SLA_CALENDAR is not valid"):
        create_app({"VAR_DIR": str(tmp_path), "SLA_CALENDAR": {"start": "18:00", "end": "09:00"}})
