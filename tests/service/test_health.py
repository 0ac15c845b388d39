"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import free_port


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
