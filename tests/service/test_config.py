"""Configuration from defaults, LINKDESK_* variables and explicit overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service import NOT_SERVING, create_app
from service.config import ConfigError

KEY = "k" * 32


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


def test_a_non_sqlite_database_refuses_a_missing_secret_key() -> None:
    with pytest.raises(ConfigError, match="LINKDESK_SECRET_KEY is not set"):
        create_app({"DATABASE_URL": "postgresql://db.internal/linkdesk"})


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("linkdesk-insecure-development-key", "is a development key published"),
        ("CHANGE-ME-to-a-long-random-value", "is still the CHANGE-ME placeholder"),
        ("change_me_" + "x" * 40, "is still the CHANGE-ME placeholder"),
        ("k" * 31, r"is too short \(31 bytes; at least 32\)"),
        (12345, "is not a string"),
    ],
)
def test_an_app_that_serves_refuses_a_weak_secret_key_on_sqlite_too(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, key: Any, problem: str
) -> None:
    monkeypatch.delenv("LINKDESK_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match=f"LINKDESK_SECRET_KEY {problem}") as refused:
        create_app({"VAR_DIR": str(tmp_path), "SECRET_KEY": key})
    assert "secrets.token_urlsafe" in str(refused.value)  # says how to make one


def test_the_secret_key_placeholder_of_the_example_environment_is_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = Path(__file__).parents[2] / "deploy" / "linkdesk.env.example"
    lines = example.read_text().splitlines()
    placeholder = next(line for line in lines if line.startswith("LINKDESK_SECRET_KEY="))
    monkeypatch.setenv("LINKDESK_SECRET_KEY", placeholder.partition("=")[2])
    with pytest.raises(ConfigError, match="LINKDESK_SECRET_KEY is still the CHANGE-ME"):
        create_app({"VAR_DIR": str(tmp_path)})


def test_an_app_for_operator_commands_has_no_key_and_serves_nothing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKDESK_SECRET_KEY", "CHANGE-ME")
    app = create_app({"VAR_DIR": str(tmp_path)}, serving=False)
    assert app.config["SECRET_KEY"] is None
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_data(as_text=True) == NOT_SERVING


def test_postgres_urls_use_psycopg_3() -> None:
    app = create_app({"DATABASE_URL": "postgresql://db.internal/linkdesk", "SECRET_KEY": KEY})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db.internal/linkdesk"


def test_sqlite_default_lives_in_the_var_directory(tmp_path: Any) -> None:
    app = create_app({"VAR_DIR": str(tmp_path), "SECRET_KEY": KEY})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'linkdesk.sqlite3'}"


def test_temporal_cloud_api_key_turns_tls_on(tmp_path: Any) -> None:
    app = create_app({"VAR_DIR": str(tmp_path), "SECRET_KEY": KEY, "TEMPORAL_API_KEY": "secret"})
    assert app.config["TEMPORAL_TLS"] is True


def test_a_bad_sla_calendar_is_refused_at_start(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="LINKDESK_SLA_CALENDAR is not valid"):
        create_app(
            {
                "VAR_DIR": str(tmp_path),
                "SECRET_KEY": KEY,
                "SLA_CALENDAR": {"start": "18:00", "end": "09:00"},
            }
        )
