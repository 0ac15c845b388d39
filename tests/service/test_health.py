"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from domain.vocabulary import Role
from tests.conftest import Factory, free_port

SCRAPE_TOKEN = "scrape-token-for-tests-only-0123456789"


def test_healthz_answers_without_dependencies(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


@pytest.mark.usefixtures("temporal_env")
def test_readyz_is_ready_when_database_and_temporal_answer(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json == {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}


def test_readyz_is_503_when_temporal_is_unreachable(make_app: Any) -> None:
    app = make_app(TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"] == {"database": "ok", "temporal": "unreachable"}


def test_metrics_count_requests_and_tasks_for_prometheus(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "# TYPE linkdesk_requests gauge" in text
    assert "# TYPE linkdesk_open_tasks gauge" in text


def test_metrics_stay_open_when_no_scrape_token_is_configured(app: Flask) -> None:
    assert app.config["METRICS_TOKEN"] is None
    assert app.test_client().get("/metrics").status_code == 200


def test_metrics_answer_the_configured_scrape_token_alone(
    app: Flask, client: FlaskClient, make: Factory, api_as: Any
) -> None:
    app.config["METRICS_TOKEN"] = SCRAPE_TOKEN
    scraped = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert scraped.status_code == 200
    assert "# TYPE linkdesk_requests gauge" in scraped.get_data(as_text=True)

    make.user("mona", Role.MANAGER)
    refused = {
        "no token": client.get("/metrics"),
        "wrong token": client.get("/metrics", headers={"Authorization": "Bearer nope"}),
        "token without scheme": client.get("/metrics", headers={"Authorization": SCRAPE_TOKEN}),
        "basic scheme": client.get("/metrics", headers={"Authorization": f"Basic {SCRAPE_TOKEN}"}),
        "a user's API token": api_as("mona").get("/metrics"),
    }
    for what, response in refused.items():
        assert response.status_code == 401, what
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"', what
        assert response.mimetype == "text/plain", what
        body = response.get_data(as_text=True)
        assert "linkdesk_" not in body and SCRAPE_TOKEN not in body, what


def test_the_scrape_token_opens_nothing_but_metrics(app: Flask, client: FlaskClient) -> None:
    app.config["METRICS_TOKEN"] = SCRAPE_TOKEN
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_the_scrape_token_is_read_from_the_environment_as_written(
    monkeypatch: pytest.MonkeyPatch, make_app: Any
) -> None:
    monkeypatch.setenv("LINKDESK_METRICS_TOKEN", "12e3")  # JSON would read it as a number
    app = make_app()
    assert app.config["METRICS_TOKEN"] == "12e3"
    scraped = app.test_client().get("/metrics", headers={"Authorization": "Bearer 12e3"})
    assert scraped.status_code == 200
