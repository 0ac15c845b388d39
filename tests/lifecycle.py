"""Drive requests as API clients would: file one, find and decide its tasks, wait for a status,
and read the relationship it changes. Shared by the API, workflow, crash and page tests."""

from __future__ import annotations

from typing import Any

from flask import Flask

from service.directory import relationship_between
from service.extensions import db
from service.models import Console, Instance
from tests.conftest import eventually


def file(api: Any, kind: str, console: str, instance: str, **extra: Any) -> Any:
    """File a request through the API; `extra` overrides fields of the body."""
    body = {"kind": kind, "console_id": console, "instance_id": instance, "reason": "please"}
    return api.post("/api/v1/requests", json={**body, **extra})


def flags(app: Flask, console: str, instance: str) -> tuple[bool, bool, bool]:
    """A relationship's access, link and slide-in flags as the directory holds them now."""
    with app.app_context():
        rel = relationship_between(
            db.session.execute(db.select(Console).filter_by(code=console)).scalar_one(),
            db.session.execute(db.select(Instance).filter_by(code=instance)).scalar_one(),
        )
        return rel.access_enabled, rel.linked, rel.can_slide_in


def wait_status(api: Any, request_id: str, status: str, timeout: float = 10) -> Any:
    """The request as the API shows it, once the workflow has moved it to `status`."""
    return eventually(
        lambda: api.get(f"/api/v1/requests/{request_id}").json,
        lambda body: body["status"] == status,
        timeout=timeout,
        what=f"{request_id} to be {status}",
    )


def task_of(api: Any, request_id: str, type_: str) -> dict[str, Any]:
    """The open task of a type on a request, from the caller's queue."""
    items = api.get("/api/v1/tasks", query_string={"per_page": 200}).json["items"]
    matching = [t for t in items if t["request_id"] == request_id and t["type"] == type_]
    assert len(matching) == 1, items
    return matching[0]


def decide(api: Any, task: dict[str, Any], decision: str, comment: str | None = None) -> Any:
    """Complete a task with a decision (and a comment)."""
    body: dict[str, Any] = {"decision": decision}
    if comment is not None:
        body["comment"] = comment
    return api.post(f"/api/v1/tasks/{task['id']}/complete", json=body)


def claim_and_decide(api: Any, request_id: str, type_: str, decision: str, **kw: Any) -> Any:
    """Claim the open task of a type on a request, then decide it."""
    task = task_of(api, request_id, type_)
    assert api.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    return decide(api, task, decision, **kw)
