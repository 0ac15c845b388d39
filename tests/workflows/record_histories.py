"""Record one workflow history per request path, for the replay test (test_replay.py).

Regenerate every history (after a deliberate, replay-breaking change to the request workflow,
or to add a path), from the repository root:

    .venv/bin/python -m tests.workflows.record_histories

It runs this module under pytest, so each path uses the suite's own fixtures: a clean
database, the real Temporal dev server and LinkDesk's worker. Each path is driven through the
API as people would, and the finished workflow's history is written to
`tests/workflows/histories/<path>.json` (Temporal's JSON history format, as `temporal workflow
show --output json` prints it). Commit the files with the change. The module is named so that
a plain `pytest` run does not collect it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from temporalio.testing import WorkflowEnvironment

from service.extensions import db
from service.models import Instance, utcnow, workflow_id_for
from tests.conftest import Factory, LoopThread
from tests.lifecycle import claim_and_decide, decide, file, task_of, wait_status

HISTORIES = Path(__file__).with_name("histories")


@dataclass(frozen=True)
class RecordedPath:
    """A way through the request workflow: how to drive it, and the status it ends in."""

    drive: Callable[[Flask, Factory, Any], str]
    status: str


PATHS: dict[str, RecordedPath] = {}


def recorded(name: str, status: str) -> Callable[[Callable[..., str]], Callable[..., str]]:
    def register(drive: Callable[..., str]) -> Callable[..., str]:
        PATHS[name] = RecordedPath(drive, status)
        return drive

    return register


def _queued(partner: Any, kind: str, console: str, instance: str) -> str:
    request_id = str(file(partner, kind, console, instance).json["id"])
    wait_status(partner, request_id, "awaiting_agent")
    return request_id


@recorded("enable_access_with_consent", "completed")
def _enable_access(app: Flask, make: Factory, api_as: Any) -> str:
    partner, admin, agent = api_as("pacct"), api_as("iadmin"), api_as("agent")
    make.relationship("ACCT-01", "ACME-US", access_enabled=False, linked=True)
    request_id = str(file(partner, "enable_access", "ACCT-01", "ACME-US").json["id"])
    wait_status(partner, request_id, "awaiting_consent")
    assert decide(admin, task_of(admin, request_id, "consent"), "grant", "ok").status_code == 200
    assert claim_and_decide(agent, request_id, "review", "approve").status_code == 200
    return request_id


@recorded("rejected_after_release_and_reassign", "rejected")
def _rejected(app: Flask, make: Factory, api_as: Any) -> str:
    partner, agent, manager = api_as("pacct"), api_as("agent"), api_as("boss")
    request_id = _queued(partner, "establish_link", "ACCT-01", "BETA")
    task = task_of(agent, request_id, "review")
    assert agent.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    assert agent.post(f"/api/v1/tasks/{task['id']}/release").status_code == 200
    reassigned = manager.post(f"/api/v1/tasks/{task['id']}/reassign", json={"assignee": "agent"})
    assert reassigned.status_code == 200, reassigned.json
    assert decide(agent, task, "reject", "not your client").status_code == 200
    return request_id


@recorded("request_info_round_trip", "completed")
def _request_info(app: Flask, make: Factory, api_as: Any) -> str:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = _queued(partner, "establish_link", "ACCT-01", "GAMMA")
    assert claim_and_decide(agent, request_id, "review", "request_info", comment="Which office?")
    answer = partner.post(f"/api/v1/requests/{request_id}/response", json={"answer": "Paris"})
    assert answer.status_code == 200, answer.json
    assert decide(agent, task_of(agent, request_id, "review"), "approve").status_code == 200
    return request_id


@recorded("cancelled", "cancelled")
def _cancelled(app: Flask, make: Factory, api_as: Any) -> str:
    partner = api_as("pacct")
    request_id = _queued(partner, "establish_link", "ACCT-01", "BETA")
    cancelled = partner.post(f"/api/v1/requests/{request_id}/cancel", json={"reason": "typo"})
    assert cancelled.status_code == 200, cancelled.json
    return request_id


@recorded("dissociate_with_second_approval", "completed")
def _dissociate(app: Flask, make: Factory, api_as: Any) -> str:
    partner, agent, manager = api_as("pacct"), api_as("agent"), api_as("boss")
    request_id = _queued(partner, "dissociate_link", "ACCT-01", "ACME-US")
    assert claim_and_decide(agent, request_id, "review", "approve").status_code == 200
    second = claim_and_decide(manager, request_id, "second_approval", "approve")
    assert second.status_code == 200, second.json
    return request_id


@recorded("no_action_needed", "no_action_needed")
def _no_action(app: Flask, make: Factory, api_as: Any) -> str:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = _queued(partner, "establish_link", "ACCT-01", "BETA")
    make.relationship("ACCT-01", "BETA", access_enabled=True, linked=True)  # done meanwhile
    assert claim_and_decide(agent, request_id, "review", "approve").status_code == 200
    return request_id


@recorded("failed_instance_removed", "failed")
def _failed(app: Flask, make: Factory, api_as: Any) -> str:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = _queued(partner, "establish_link", "ACCT-01", "GAMMA")
    with app.app_context():  # an administrator removes the company before the apply
        db.session.execute(
            db.update(Instance).where(Instance.code == "GAMMA").values(removed_at=utcnow())
        )
        db.session.commit()
    assert claim_and_decide(agent, request_id, "review", "approve").status_code == 200
    return request_id


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("name", sorted(PATHS))
def test_record(
    name: str,
    app: Flask,
    demo_directory: Factory,
    api_as: Any,
    temporal_env: WorkflowEnvironment,
    loop_thread: LoopThread,
) -> None:
    path = PATHS[name]
    request_id = path.drive(app, demo_directory, api_as)
    handle = temporal_env.client.get_workflow_handle(workflow_id_for(request_id))
    assert loop_thread.run(handle.result(), timeout=30) == path.status
    history = loop_thread.run(handle.fetch_history())
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(history.to_json() + "\n")


def main() -> int:
    """Record every path's history into tests/workflows/histories/."""
    return int(pytest.main([__file__, "-q", "-p", "no:cacheprovider", *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
