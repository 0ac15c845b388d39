"""Users API (service/api/users.py): administrators only, every change audited, edits of an
older version refused, the last admin kept, tokens of a deactivated user refused."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.extensions import db
from service.models import AuditEvent, User
from tests.conftest import Factory, api_token

USERS = "/api/v1/users"


@pytest.fixture
def root(app: Flask, demo_directory: Factory, api_as: Any) -> Any:
    return api_as("root")


def _patch(api: Any, url: str, body: dict[str, Any], etag: str | None) -> Any:
    headers = dict(api.headers) | ({"If-Match": etag} if etag else {})
    return api.client.patch(url, json=body, headers=headers)


def _user_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.execute(select(func.count()).select_from(User)).scalar_one())


def _audit(app: Flask, action: str) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.execute(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows.scalars())


@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "boss"])
def test_other_roles_find_no_users_api(demo_directory: Factory, api_as: Any, username: str) -> None:
    api = api_as(username)
    for response in (
        api.get(USERS),
        api.post(USERS, json={"username": "x", "role": "agent"}),
        api.get(f"{USERS}/1"),
        api.post(f"{USERS}/1/deactivate"),
        api.post(f"{USERS}/1/reactivate"),
        api.client.patch(f"{USERS}/1", json={}, headers=api.headers),
    ):
        assert response.status_code == 404, response.json
        assert response.json["error"]["code"] == "not_found"


def test_anonymous_is_told_to_sign_in(client: Any) -> None:
    assert client.get(USERS).status_code == 401


def test_list_searches_and_filters(root: Any) -> None:
    found = root.get(f"{USERS}?q=PACCT").json
    assert [u["username"] for u in found["items"]] == ["pacct"]
    assert found["items"][0]["console"]["code"] == "ACCT-01"
    by_mail = root.get(f"{USERS}?q=boss@example").json
    assert [u["username"] for u in by_mail["items"]] == ["boss"]
    partners = root.get(f"{USERS}?role=partner&per_page=1").json
    assert partners["total"] == 2 and len(partners["items"]) == 1
    assert root.get(f"{USERS}?active=false").json["total"] == 0
    assert root.get(f"{USERS}?q=50%25").json["total"] == 0  # % is no wildcard
    assert root.get(f"{USERS}?role=king").status_code == 422


def test_create_a_partner_audited(app: Flask, root: Any) -> None:
    response = root.post(
        USERS,
        json={
            "username": "newp",
            "display_name": "New Partner",
            "email": "NewP@Example.test",
            "role": "partner",
            "console_id": "ACCT-01",
            "reason": "joined the firm",
        },
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["email"] == "newp@example.test" and body["console"]["code"] == "ACCT-01"
    assert response.headers["ETag"] == f'"{body["version"]}"'
    [event] = [e for e in _audit(app, "user.created") if e.object_ref == "newp"]
    assert event.actor == "root" and event.comment == "joined the firm"
    assert event.detail["console"] == "ACCT-01"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"username": "x", "role": "partner"}, 422, "console"),
        ({"username": "x", "role": "instance_admin"}, 422, "instances"),
        ({"username": "x", "role": "agent", "console_id": "ACCT-01"}, 422, "console"),
        ({"username": "x", "role": "partner", "console_id": "NOPE-1"}, 422, "console"),
        ({"username": "x", "role": "instance_admin", "instance_ids": ["NOPE"]}, 422, "instances"),
        ({"username": "has space", "role": "agent"}, 422, "username"),
        ({"username": "x", "role": "agent", "email": "not-an-address"}, 422, "email"),
        ({"username": "x", "role": "agent", "display_name": "  "}, 422, "display_name"),
        ({"username": "pacct", "role": "agent"}, 409, "username"),
        ({"username": "x", "role": "agent", "email": "boss@example.test"}, 409, "email"),
        ({"username": "x", "role": "wizard"}, 422, "role"),
        ({"username": "x", "role": "agent", "extra": 1}, 422, "extra"),
    ],
)
def test_bad_input_is_refused_and_makes_nothing(
    app: Flask, root: Any, body: dict[str, Any], status: int, field: str
) -> None:
    before = _user_count(app)
    response = root.post(USERS, json=body)
    assert response.status_code == status, response.json
    assert field in response.json["error"]["fields"], response.json
    assert response.json["error"]["message"]
    assert _user_count(app) == before


def test_patch_needs_the_current_version(app: Flask, root: Any, make: Factory) -> None:
    user_id = make.get_user("agent").id
    url = f"{USERS}/{user_id}"
    read = root.get(url)
    etag = read.headers["ETag"]
    assert _patch(root, url, {"display_name": "A"}, None).status_code == 428
    first = _patch(root, url, {"display_name": "Agent Smith", "reason": "typo"}, etag)
    assert first.status_code == 200, first.json
    assert first.headers["ETag"] != etag
    stale = _patch(root, url, {"display_name": "Overwritten"}, etag)
    assert stale.status_code == 409
    assert stale.json["error"]["code"] == "stale_version"
    assert stale.json["current"]["display_name"] == "Agent Smith"
    assert stale.headers["ETag"] == first.headers["ETag"]
    assert root.get(url).json["display_name"] == "Agent Smith"
    [event] = _audit(app, "user.updated")
    assert event.actor == "root" and event.comment == "typo"
    assert event.detail == {
        "before": {"display_name": "agent"},
        "after": {"display_name": "Agent Smith"},
    }


def test_patch_role_change_drops_the_old_scope(root: Any, make: Factory) -> None:
    url = f"{USERS}/{make.get_user('pacct').id}"
    etag = root.get(url).headers["ETag"]
    changed = _patch(root, url, {"role": "agent"}, etag)
    assert changed.status_code == 200, changed.json
    assert changed.json["role"] == "agent" and changed.json["console"] is None
    etag = changed.headers["ETag"]
    refused = _patch(root, url, {"role": "instance_admin"}, etag)
    assert refused.status_code == 422 and "instances" in refused.json["error"]["fields"]
    ok = _patch(root, url, {"role": "instance_admin", "instance_ids": ["BETA", 99999]}, etag)
    assert ok.status_code == 422  # an unknown instance: nothing changes
    assert root.get(url).json["role"] == "agent"


def test_instances_only_change_bumps_the_version(root: Any, make: Factory) -> None:
    url = f"{USERS}/{make.get_user('iadmin').id}"
    etag = root.get(url).headers["ETag"]
    changed = _patch(root, url, {"instance_ids": ["OMEGA"]}, etag)
    assert changed.status_code == 200, changed.json
    assert [i["code"] for i in changed.json["instances"]] == ["OMEGA"]
    assert changed.headers["ETag"] != etag
    assert _patch(root, url, {"instance_ids": ["BETA"]}, etag).status_code == 409


def test_deactivation_ends_tokens_and_reactivation_restores(
    app: Flask, root: Any, make: Factory, client: Any
) -> None:
    token = api_token(client, "agent")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    user_id = make.get_user("agent").id
    off = root.post(f"{USERS}/{user_id}/deactivate", json={"reason": "left"})
    assert off.status_code == 200, off.json
    assert off.json["active"] is False
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    [event] = _audit(app, "user.deactivated")
    assert event.detail["before"] == {"active": True} and event.comment == "left"
    on = root.post(f"{USERS}/{user_id}/reactivate")
    assert on.status_code == 200 and on.json["active"] is True
    assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_no_self_deactivation_and_the_last_admin_stays(
    app: Flask, root: Any, make: Factory, api_as: Any
) -> None:
    root_id = make.get_user("root").id
    refused = root.post(f"{USERS}/{root_id}/deactivate")
    assert refused.status_code == 409 and "yourself" in refused.json["error"]["message"]
    etag = root.get(f"{USERS}/{root_id}").headers["ETag"]
    demoted = _patch(root, f"{USERS}/{root_id}", {"role": "agent"}, etag)
    assert demoted.status_code == 409 and "last active" in demoted.json["error"]["message"]
    # A second admin may be deactivated while root remains; then root is the last again.
    make.user("second", "admin")
    second = api_as("second")
    second_id = make.get_user("second").id
    assert root.post(f"{USERS}/{second_id}/deactivate").status_code == 200
    assert second.get(USERS).status_code == 401  # its token stopped working
    assert _patch(root, f"{USERS}/{root_id}", {"role": "agent"}, etag).status_code == 409
    assert root.get(f"{USERS}/{root_id}").json["role"] == "admin"


def test_unknown_user_is_404(root: Any) -> None:
    assert root.get(f"{USERS}/999999").status_code == 404
    assert root.post(f"{USERS}/999999/deactivate").status_code == 404


def test_users_are_in_the_openapi_document(client: Any) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert set(paths[USERS]) >= {"get", "post"}
    assert {"get", "patch"} <= set(paths[USERS + "/{user_id}"])
    patch = paths[USERS + "/{user_id}"]["patch"]["responses"]
    assert {"200", "404", "409", "422", "428"} <= set(patch)
