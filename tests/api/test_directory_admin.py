"""Directory edits through the API (service/api/directory.py): administrators only, every
change audited with its reason, edits of an older state refused, overrides of a pair that an
open request is about confirmed first, bad input refused with nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.extensions import db
from service.models import AuditEvent, Console, Instance, Relationship, format_request_id
from tests.conftest import Factory, waiting_request


@pytest.fixture
def root(app: Flask, demo_directory: Factory, api_as: Any) -> Any:
    return api_as("root")


def _patch(api: Any, url: str, body: dict[str, Any], etag: str | None = None) -> Any:
    headers = dict(api.headers) | ({"If-Match": etag} if etag else {})
    return api.client.patch(url, json=body, headers=headers)


def _count(app: Flask, model: Any) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(model)).scalar_one())


def _audit(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.execute(
            select(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.actor == "root")
            .order_by(AuditEvent.id)
        )
        return list(rows.scalars())


def _id(app: Flask, model: Any, code: str) -> int:
    with app.app_context():
        return int(db.session.execute(select(model.id).filter_by(code=code)).scalar_one())


@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "boss"])
def test_other_roles_find_no_directory_edits(
    demo_directory: Factory, api_as: Any, username: str
) -> None:
    api = api_as(username)
    body = {"console": "ACCT-01", "instance": "OMEGA", "access_enabled": True}
    for response in (
        api.post("/api/v1/consoles", json={"code": "X", "name": "X", "type": "partner"}),
        api.post("/api/v1/instances", json={"code": "X", "name": "X"}),
        _patch(api, "/api/v1/consoles/1", {"name": "x"}),
        _patch(api, "/api/v1/instances/1", {"name": "x"}),
        _patch(api, "/api/v1/relationships", body | {"linked": True, "reason": "x"}),
    ):
        assert response.status_code == 404, response.json
        assert response.json["error"]["code"] == "not_found"


def test_create_console_and_instance_audited(app: Flask, root: Any) -> None:
    made = root.post(
        "/api/v1/consoles",
        json={"code": "new-01", "name": "New", "type": "partner", "reason": "onboarding"},
    )
    assert made.status_code == 201, made.json
    assert made.json["code"] == "NEW-01" and made.json["type"] == "partner"
    assert made.headers["ETag"]
    inst = root.post("/api/v1/instances", json={"code": "ZETA", "name": "Zeta", "reason": "new"})
    assert inst.status_code == 201, inst.json
    (event,) = _audit(app, "console.created")
    assert event.actor == "root" and event.comment == "onboarding"
    assert event.detail["before"] is None
    assert event.detail["after"] == {"name": "New", "type": "partner"}
    assert _audit(app, "instance.created")[0].comment == "new"


def test_create_refuses_taken_codes_and_bad_input_writing_nothing(app: Flask, root: Any) -> None:
    consoles = _count(app, Console)
    taken = root.post(
        "/api/v1/consoles",
        json={"code": "acct-01", "name": "Dup", "type": "partner", "reason": "x"},
    )
    assert taken.status_code == 409 and "acct-01" in taken.json["error"]["message"]
    for body in (
        {"code": "!!", "name": "Bad", "type": "partner", "reason": "x"},
        {"code": "OK-1", "name": "  ", "type": "partner", "reason": "x"},
        {"code": "OK-1", "name": "Ok", "type": "nope", "reason": "x"},
        {"code": "OK-1", "name": "Ok", "type": "partner"},
        {"code": "OK-1", "name": "Ok", "type": "partner", "reason": "   "},
    ):
        response = root.post("/api/v1/consoles", json=body)
        assert response.status_code == 422, (body, response.json)
        assert response.json["error"]["message"]
    assert _count(app, Console) == consoles
    assert not _audit(app, "console.created")


def test_edit_needs_if_match_and_refuses_a_stale_state(app: Flask, root: Any) -> None:
    console_id = _id(app, Console, "VAR-01")
    url = f"/api/v1/consoles/{console_id}"
    without = _patch(root, url, {"name": "Renamed", "reason": "x"})
    assert without.status_code == 428
    etag = without.json["error"]["message"].split("If-Match: ")[1].split(" ")[0]
    first = _patch(root, url, {"name": "Renamed", "reason": "typo"}, etag)
    assert first.status_code == 200, first.json
    assert first.json["name"] == "Renamed" and first.headers["ETag"] != etag
    stale = _patch(root, url, {"type": "accountant", "reason": "x"}, etag)
    assert stale.status_code == 409
    assert stale.json["error"]["code"] == "stale_version"
    assert stale.json["current"]["name"] == "Renamed"
    assert stale.headers["ETag"] == first.headers["ETag"]
    (event,) = _audit(app, "console.updated")
    assert event.comment == "typo"
    assert event.detail["before"]["name"] != "Renamed"
    assert event.detail["after"] == {"name": "Renamed", "type": "partner"}
    again = _patch(root, url, {"type": "accountant", "reason": "x"}, stale.headers["ETag"])
    assert again.status_code == 200 and again.json["type"] == "accountant"


def test_instance_edit_and_unknown_ids(app: Flask, root: Any) -> None:
    instance_id = _id(app, Instance, "OMEGA")
    url = f"/api/v1/instances/{instance_id}"
    etag = _patch(root, url, {"name": "x", "reason": "x"}).json["error"]["message"]
    etag = etag.split("If-Match: ")[1].split(" ")[0]
    done = _patch(root, url, {"name": "Omega Ltd", "reason": "rename"}, etag)
    assert done.status_code == 200 and done.json["name"] == "Omega Ltd"
    assert _audit(app, "instance.updated")[0].detail["after"] == {"name": "Omega Ltd"}
    assert _patch(root, "/api/v1/instances/999999", {"name": "x", "reason": "x"}).status_code == 404
    assert _patch(root, "/api/v1/consoles/999999", {"name": "x", "reason": "x"}).status_code == 404
    bad = _patch(root, url, {"name": "", "reason": "x"}, done.headers["ETag"])
    assert bad.status_code == 422


def test_override_sets_flags_with_reason_in_history(app: Flask, root: Any) -> None:
    body = {"console": "ACCT-01", "instance": "OMEGA", "access_enabled": True, "linked": True}
    assert _patch(root, "/api/v1/relationships", body).status_code == 422  # no reason
    done = _patch(root, "/api/v1/relationships", body | {"reason": "contract signed"})
    assert done.status_code == 200, done.json
    assert done.json["can_slide_in"] is True
    (event,) = _audit(app, "relationship.set")
    assert event.object_ref == "ACCT-01/OMEGA" and event.actor == "root"
    assert event.comment == "Override: contract signed"
    assert event.detail["before"] is None
    assert event.detail["after"] == {"access_enabled": True, "linked": True}
    history = root.get("/api/v1/audit?object_type=relationship&object_ref=ACCT-01/OMEGA")
    assert [e["comment"] for e in history.json["items"]] == ["Override: contract signed"]
    unknown = _patch(root, "/api/v1/relationships", body | {"console": "NOPE", "reason": "x"})
    assert unknown.status_code == 404


def test_override_of_a_pair_with_an_open_request_needs_confirmation(app: Flask, root: Any) -> None:
    request = waiting_request(app)  # ACCT-01 / BETA: access on, link off
    body = {
        "console": "ACCT-01",
        "instance": "BETA",
        "access_enabled": True,
        "linked": True,
        "reason": "linked by phone",
    }
    refused = _patch(root, "/api/v1/relationships", body)
    assert refused.status_code == 409, refused.json
    assert refused.json["error"]["code"] == "open_request"
    assert refused.json["requests"] == [request.id]
    assert format_request_id(request.id) in refused.json["error"]["message"]
    with app.app_context():
        row = db.session.execute(
            select(Relationship).join(Relationship.instance).where(Instance.code == "BETA")
        ).scalar_one()
        assert row.linked is False
    assert not _audit(app, "relationship.set")
    same = _patch(root, "/api/v1/relationships", body | {"linked": False})
    assert same.status_code == 200  # no change: nothing the request asks for is touched
    confirmed = _patch(root, "/api/v1/relationships", body | {"confirm": True})
    assert confirmed.status_code == 200 and confirmed.json["linked"] is True
    (event,) = _audit(app, "relationship.set")
    assert event.detail["before"] == {"access_enabled": True, "linked": False}
