"""Requests end to end: the API, the real Temporal dev server, the worker and the database."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from temporalio.worker import Worker

from service.directory import relationship_between
from service.extensions import db
from service.models import Console, Instance
from tests.conftest import Factory

pytestmark = pytest.mark.usefixtures("worker")


def file(api: Any, kind: str, console: str, instance: str, **extra: Any) -> Any:
    body = {"kind": kind, "console_id": console, "instance_id": instance, "reason": "please"}
    return api.post("/api/v1/requests", json={**body, **extra})


def flags(app: Flask, console: str, instance: str) -> tuple[bool, bool, bool]:
    with app.app_context():
        rel = relationship_between(
            db.session.execute(db.select(Console).filter_by(code=console)).scalar_one(),
            db.session.execute(db.select(Instance).filter_by(code=instance)).scalar_one(),
        )
        return rel.access_enabled, rel.linked, rel.can_slide_in


def wait_status(api: Any, request_id: str, status: str, timeout: float = 10) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while True:
        body = api.get(f"/api/v1/requests/{request_id}").json
        if body["status"] == status or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def test_establish_link_approved_by_an_agent_completes(
    app: Flask, demo_directory: Factory, api_as: Any, worker: Worker
) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    filed = file(partner, "establish_link", "ACCT-01", "BETA")
    assert filed.status_code == 201, filed.json
    request_id = filed.json["id"]
    assert filed.json["status"] in ("submitted", "awaiting_agent")
    queued = wait_status(partner, request_id, "awaiting_agent")
    assert queued["status"] == "awaiting_agent"
    tasks = agent.get("/api/v1/tasks").json["items"]
    (task,) = [t for t in tasks if t["request_id"] == request_id]
    assert task["type"] == "review" and task["state"] == "open"
    claimed = agent.post(f"/api/v1/tasks/{task['id']}/claim")
    assert claimed.status_code == 200, claimed.json
    assert claimed.json["status"] == "in_review"
    approved = agent.post(
        f"/api/v1/tasks/{task['id']}/complete", json={"decision": "approve", "comment": "ok"}
    )
    assert approved.status_code == 200, approved.json
    done = wait_status(partner, request_id, "completed")
    assert done["status"] == "completed", done
    assert flags(app, "ACCT-01", "BETA") == (True, True, True)
    actions = [e["action"] for e in done["timeline"]]
    assert actions[0] == "filed"
    assert "claimed" in actions and "approve" in actions
