"""Sign-in, throttling, API tokens, sessions and CSRF."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.extensions import db
from service.models import ApiToken, AuditEvent, LoginAttempt, User, utcnow
from tests.conftest import PASSWORD, Factory, api_token, csrf_token, sign_in


@pytest.fixture
def alice(make: Factory) -> str:
    make.user("alice", "agent")
    return "alice"


def test_token_is_created_shown_once_and_stored_hashed(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    response = client.post(
        "/api/v1/tokens", json={"username": alice, "password": PASSWORD, "name": "cli"}
    )
    assert response.status_code == 201
    body = response.json
    assert body["token"].startswith("ldk_")
    assert body["name"] == "cli"
    assert body["expires_at"] > body["created_at"]
    with app.app_context():
        stored = db.session.get(ApiToken, body["id"])
        assert stored is not None
        assert body["token"] not in (stored.digest, stored.prefix)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    assert me.json["username"] == "alice"
    assert me.json["role"] == "agent"
    listed = client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {body['token']}"})
    assert "token" not in listed.json["items"][0]


def test_wrong_password_and_unknown_user_get_the_same_401(client: FlaskClient, alice: str) -> None:
    wrong_password = client.post("/api/v1/tokens", json={"username": alice, "password": "nope"})
    unknown_user = client.post("/api/v1/tokens", json={"username": "bob", "password": "nope"})
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json == unknown_user.json
    assert wrong_password.json["error"]["message"] == "Wrong username or password."


def test_repeated_failures_are_throttled_with_retry_after(client: FlaskClient, alice: str) -> None:
    for _ in range(5):
        assert (
            client.post("/api/v1/tokens", json={"username": alice, "password": "guess"}).status_code
            == 401
        )
    throttled = client.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD})
    assert throttled.status_code == 429
    assert throttled.json["error"]["code"] == "too_many_requests"
    assert 0 < int(throttled.headers["Retry-After"]) <= 900
    # The web form shares the limit.
    page = sign_in(client, alice)
    assert page.status_code == 429
    assert "Too many failed sign-in attempts" in page.get_data(as_text=True)


def from_address(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def fail(client: FlaskClient, username: str) -> Any:
    return client.post("/api/v1/tokens", json={"username": username, "password": "guess"})


def age_attempts(app: Flask, seconds: float) -> None:
    """Move every recorded sign-in attempt this many seconds into the past."""
    with app.app_context():
        for attempt in db.session.execute(db.select(LoginAttempt)).scalars():
            attempt.at -= timedelta(seconds=seconds)
        db.session.commit()


def test_a_strangers_failures_never_lock_the_owner_out(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    stranger = from_address(app, "203.0.113.66")
    for _ in range(12):
        fail(stranger, alice)
    assert fail(stranger, alice).status_code == 429
    # The owner, at an address that has not been failing, signs in on the page and the API.
    assert sign_in(client, alice).status_code == 302
    assert api_token(client, alice).startswith("ldk_")
    # ... while the stranger still waits, correct password or not.
    throttled = stranger.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD})
    assert throttled.status_code == 429


def test_each_further_failure_doubles_the_wait_up_to_the_longest(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    for _ in range(4):
        assert fail(client, alice).status_code == 401
    waits = []
    for _ in range(9):
        assert fail(client, alice).status_code == 401
        refused = fail(client, alice)
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        age_attempts(app, waits[-1])  # the wait is over
    assert waits == [15, 30, 60, 120, 240, 480, 900, 900, 900]


def test_the_delays_are_settings(make_app: Any, alice: str) -> None:
    app = make_app(LOGIN_MAX_FAILURES=2, LOGIN_DELAY_SECONDS=3, LOGIN_MAX_DELAY_SECONDS=5)
    client = app.test_client()
    waits = []
    for _ in range(4):
        fail(client, alice)
        if (refused := fail(client, alice)).status_code == 429:
            waits.append(int(refused.headers["Retry-After"]))
            age_attempts(app, waits[-1])
    assert waits == [3, 5, 5]


def test_an_address_spraying_many_accounts_is_throttled(
    app: Flask, client: FlaskClient, make: Factory, alice: str
) -> None:
    sprayer = from_address(app, "198.51.100.13")
    for number in range(20):
        assert fail(sprayer, f"user{number}").status_code == 401
    refused = sprayer.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD})
    assert refused.status_code == 429
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert api_token(client, alice)  # another address is not concerned
    with app.app_context():
        events = db.session.execute(
            db.select(AuditEvent).where(AuditEvent.action == "sign_in.throttled")
        ).scalars()
        reasons = [(e.object_ref, e.detail["reason"]) for e in events]
    assert reasons == [("user19", "address_limit")]


def test_every_429_of_sign_in_says_when_to_retry(
    app: Flask, client: FlaskClient, alice: str
) -> None:
    for _ in range(5):
        fail(client, alice)
    api = fail(client, alice)
    page = sign_in(client, alice)
    assert api.status_code == page.status_code == 429
    assert api.headers["Retry-After"] == page.headers["Retry-After"] == "15"
    assert "Try again in 15 seconds." in page.get_data(as_text=True)
    assert (
        api.json["error"]["message"] == "Too many failed sign-in attempts. Try again in 15 seconds."
    )


def test_sign_ins_failures_and_throttling_are_audited_without_passwords(
    app: Flask, client: FlaskClient, make: Factory, alice: str
) -> None:
    make.user("carol", "agent")
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username="carol")).scalar_one()
        user.active = False
        db.session.commit()
    stranger = from_address(app, "203.0.113.9")
    stranger.post("/api/v1/tokens", json={"username": "carol", "password": PASSWORD})
    stranger.post("/api/v1/tokens", json={"username": "nobody", "password": "hunter2-secret"})
    for _ in range(5):
        fail(stranger, alice)
    fail(stranger, alice)  # refused while it waits: its wait was audited already
    sign_in(client, alice)
    with app.app_context():
        events = db.session.execute(
            db.select(AuditEvent)
            .where(AuditEvent.action.startswith("sign_in."))
            .order_by(AuditEvent.id)
        ).scalars()
        seen = [
            (
                e.action,
                e.actor,
                e.object_type,
                e.object_ref,
                e.detail.get("address"),
                e.detail.get("reason"),
            )
            for e in events
        ]
        stored = json.dumps(
            [
                (e.actor, e.object_ref, e.detail, e.comment)
                for e in db.session.execute(db.select(AuditEvent)).scalars()
            ]
        )
    failed = ("sign_in.failed", "anonymous", "user")
    assert seen == [
        (*failed, "carol", "203.0.113.9", "deactivated"),
        (*failed, "nobody", "203.0.113.9", "unknown_user"),
        *[(*failed, alice, "203.0.113.9", "wrong_password")] * 5,
        ("sign_in.throttled", "anonymous", "user", alice, "203.0.113.9", "repeated_failures"),
        ("sign_in.succeeded", alice, "user", alice, "127.0.0.1", None),
    ]
    for password in (PASSWORD, "hunter2-secret", "guess"):
        assert password not in stored


def test_a_success_resets_the_failure_count(client: FlaskClient, alice: str) -> None:
    for _ in range(4):
        client.post("/api/v1/tokens", json={"username": alice, "password": "guess"})
    api_token(client, alice)
    for _ in range(4):
        client.post("/api/v1/tokens", json={"username": alice, "password": "guess"})
    assert (
        client.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD}).status_code
        == 201
    )


def test_revoked_token_stops_working_at_once(client: FlaskClient, alice: str) -> None:
    first = api_token(client, alice)
    response = client.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD})
    second, second_id = response.json["token"], response.json["id"]
    headers = {"Authorization": f"Bearer {first}"}
    assert client.delete(f"/api/v1/tokens/{second_id}", headers=headers).status_code == 204
    rejected = client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})
    assert rejected.status_code == 401
    assert "revoked" in rejected.json["error"]["message"]
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    again = client.delete(f"/api/v1/tokens/{second_id}", headers=headers)
    assert again.status_code == 404


def test_another_users_token_cannot_be_revoked(
    client: FlaskClient, make: Factory, alice: str
) -> None:
    make.user("bob", "agent")
    bobs = client.post("/api/v1/tokens", json={"username": "bob", "password": PASSWORD}).json
    alices = api_token(client, alice)
    response = client.delete(
        f"/api/v1/tokens/{bobs['id']}", headers={"Authorization": f"Bearer {alices}"}
    )
    assert response.status_code == 404
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {bobs['token']}"}).status_code
        == 200
    )


def test_expired_token_is_refused(app: Flask, client: FlaskClient, alice: str) -> None:
    response = client.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD})
    with app.app_context():
        token = db.session.get(ApiToken, response.json["id"])
        assert token is not None
        token.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {response.json['token']}"})
    assert me.status_code == 401


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer ldk_not-a-real-token"}, {"Authorization": "Basic abc"}],
)
def test_api_without_valid_credentials_is_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"


def test_pages_redirect_to_sign_in_and_back(client: FlaskClient, alice: str) -> None:
    response = client.get("/directory/consoles")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=/directory/consoles")
    token = csrf_token(client)
    signed = client.post(
        "/sign-in?next=/directory/consoles",
        data={"username": alice, "password": PASSWORD, "csrf_token": token},
    )
    assert signed.status_code == 302
    assert signed.headers["Location"] == "/directory/consoles"


def test_sign_in_never_redirects_off_site(client: FlaskClient, alice: str) -> None:
    token = csrf_token(client)
    response = client.post(
        "/sign-in?next=//evil.example/",
        data={"username": alice, "password": PASSWORD, "csrf_token": token},
    )
    assert response.headers["Location"] == "/"


def test_session_cookie_is_http_only_and_same_site(client: FlaskClient, alice: str) -> None:
    response = sign_in(client, alice)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_form_post_without_csrf_token_is_refused(client: FlaskClient, alice: str) -> None:
    response = client.post("/sign-in", data={"username": alice, "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not signed in


def test_session_api_calls_need_csrf_but_bearer_calls_do_not(
    client: FlaskClient, alice: str
) -> None:
    token_id = client.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD}).json[
        "id"
    ]
    sign_in(client, alice)
    refused = client.delete(f"/api/v1/tokens/{token_id}")
    assert refused.status_code == 400
    assert refused.json["error"]["code"] == "csrf_failed"
    allowed = client.delete(
        f"/api/v1/tokens/{token_id}", headers={"X-CSRFToken": csrf_token(client, "/settings")}
    )
    assert allowed.status_code == 204


def test_sign_out_ends_the_session(client: FlaskClient, alice: str) -> None:
    sign_in(client, alice)
    assert client.get("/").status_code == 200
    token = csrf_token(client, "/")
    assert client.post("/sign-out", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_disabled_user_cannot_sign_in_or_use_tokens(
    app: Flask, client: FlaskClient, alice: str, make: Factory
) -> None:
    token = api_token(client, alice)
    with app.app_context():
        from service.models import User

        user = db.session.execute(db.select(User).filter_by(username=alice)).scalar_one()
        user.active = False
        db.session.commit()
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert (
        client.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD}).status_code
        == 401
    )


def test_settings_page_creates_and_revokes_tokens(client: FlaskClient, alice: str) -> None:
    sign_in(client, alice)
    token = csrf_token(client, "/settings")
    created = client.post("/settings/tokens", data={"name": "laptop", "csrf_token": token})
    page = created.get_data(as_text=True)
    assert created.status_code == 200
    assert "Copy it now" in page
    assert "laptop" in page
    too_long = client.post("/settings/tokens", data={"name": "x" * 101, "csrf_token": token})
    assert too_long.status_code == 422
    assert "Longer than maximum length 100." in too_long.get_data(as_text=True)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"username": "alice"}, 422, "password"),
        ({"username": "", "password": "x"}, 422, "username"),
        ({"username": "alice", "password": "x", "extra": 1}, 422, "extra"),
        ({"username": 5, "password": "x"}, 422, "username"),
    ],
)
def test_token_request_validation(
    client: FlaskClient, body: dict[str, Any], status: int, field: str
) -> None:
    response = client.post("/api/v1/tokens", json=body)
    assert response.status_code == status
    assert field in response.json["error"]["fields"]


def test_malformed_json_is_400_not_500(client: FlaskClient) -> None:
    response = client.post("/api/v1/tokens", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["message"] == "The request body is not valid JSON."


# Pages limited to some roles: method, path, who may open it, and what anyone else reads.
CONSENT_INBOX_ONLY = "The consent inbox is for instance admins."
FILED_BY = "Requests are filed by partners and instance admins."
NOT_HERE = "There is no page at this address."
ROLE_LIMITED_PAGES = [
    *(("GET", path, ("agent", "boss"), NOT_HERE) for path in ("/queue", "/queue/tasks/1")),
    *(
        ("POST", f"/queue/tasks/1/{action}", ("agent", "boss"), NOT_HERE)
        for action in ("claim", "release", "complete", "reassign", "notes")
    ),
    ("GET", "/outbox", ("boss", "root"), NOT_HERE),
    ("GET", "/consents", ("iadmin",), CONSENT_INBOX_ONLY),
    ("POST", "/consents/1", ("iadmin",), CONSENT_INBOX_ONLY),
    ("GET", "/requests/new", ("pacct", "iadmin"), FILED_BY),
    ("POST", "/requests/new", ("pacct", "iadmin"), FILED_BY),
    *(
        ("GET", path, ("boss",), NOT_HERE)
        for path in ("/dashboard", "/dashboard/figures.csv", "/dashboard/requests.csv")
    ),
]


@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "boss", "root"])
def test_a_page_for_other_roles_is_not_found(
    client: FlaskClient, demo_directory: Factory, username: str
) -> None:
    sign_in(client, username)
    token = csrf_token(client, "/settings")
    for method, path, roles, message in ROLE_LIMITED_PAGES:
        response = client.open(path, method=method, data={"csrf_token": token})
        page = response.get_data(as_text=True)
        if username in roles:
            assert message not in page, (method, path)
        else:
            assert response.status_code == 404, (method, path)
            assert message in page, (method, path)


def test_a_page_for_some_roles_sends_anonymous_people_to_sign_in(client: FlaskClient) -> None:
    token = csrf_token(client)
    for method, path, _roles, _message in ROLE_LIMITED_PAGES:
        response = client.open(path, method=method, data={"csrf_token": token})
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"] == f"/sign-in?next={path}", (method, path)


def test_an_api_error_body_has_exactly_the_documented_shape(client: FlaskClient) -> None:
    anonymous = client.get("/api/v1/me")
    assert anonymous.json == {
        "error": {
            "code": "unauthorized",
            "message": "Sign in first: send 'Authorization: Bearer <token>'.",
            "fields": {},
        }
    }
    invalid = client.post("/api/v1/tokens", json={"username": ""})
    assert invalid.status_code == 422
    assert invalid.json == {
        "error": {
            "code": "validation_error",
            "message": "Some fields are not valid.",
            "fields": {
                "password": ["Missing data for required field."],
                "username": ["Length must be between 1 and 64."],
            },
        }
    }


@pytest.mark.parametrize(
    "authorization", ["Bearer ldk_not-a-real-token", "Bearer", "Basic abc", "junk", ""]
)
def test_a_bad_authorization_header_is_401_even_beside_a_session(
    client: FlaskClient, alice: str, authorization: str
) -> None:
    token_id = client.post("/api/v1/tokens", json={"username": alice, "password": PASSWORD}).json[
        "id"
    ]
    sign_in(client, alice)
    headers = {"Authorization": authorization}
    api = client.get("/api/v1/me", headers=headers)
    assert api.status_code == 401
    assert api.json["error"]["code"] == "unauthorized"
    assert client.get("/settings", headers=headers).status_code == 401
    # Never a cookie-authenticated change without its CSRF token.
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=headers).status_code == 401
    assert client.post(f"/settings/tokens/{token_id}/revoke", headers=headers).status_code == 401
    assert [t["id"] for t in client.get("/api/v1/tokens").json["items"]] == [token_id]


def test_a_valid_bearer_token_speaks_for_its_user_not_the_session(
    client: FlaskClient, make: Factory, alice: str
) -> None:
    make.user("bob", "agent")
    bobs = api_token(client, "bob")
    sign_in(client, alice)
    headers = {"Authorization": f"Bearer {bobs}"}
    assert client.get("/api/v1/me", headers=headers).json["username"] == "bob"
    created = client.post("/api/v1/tokens", json={"username": "bob", "password": PASSWORD})
    # No CSRF token needed: the header, which a browser never adds by itself, is the credential.
    revoked = client.delete(f"/api/v1/tokens/{created.json['id']}", headers=headers)
    assert revoked.status_code == 204
    assert client.get("/api/v1/me").json["username"] == "alice"  # the session is untouched
