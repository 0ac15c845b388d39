"""Idempotency keys: a retried call gets the first answer and acts once, through the API and
the pages alike, against the real Temporal dev server, worker and database."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service import idempotency
from service.extensions import db
from service.models import IdempotencyKey, Request, TimelineEvent, utcnow
from tests.conftest import ApiClient, Factory, csrf_token, sign_in, waiting_request
from tests.lifecycle import file, task_of, wait_status

BODY = {"kind": "establish_link", "console_id": "ACCT-01", "instance_id": "BETA", "reason": "x"}


def post(api: ApiClient, url: str, key: str | None, **kwargs: Any) -> Any:
    """POST as the API client, with an Idempotency-Key when one is given."""
    headers = {**api.headers, **({idempotency.HEADER: key} if key is not None else {})}
    return api.client.post(url, headers=headers, **kwargs)


def count(app: Flask, model: type[Any], *where: Any) -> int:
    with app.app_context():
        return int(
            db.session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
        )


def comments(app: Flask) -> int:
    return count(app, TimelineEvent, TimelineEvent.action == "comment")


@pytest.mark.usefixtures("worker")
def test_a_filing_retried_with_its_key_is_answered_as_the_first_and_files_once(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    partner = api_as("pacct")
    key = str(uuid.uuid4())
    first = post(partner, "/api/v1/requests", key, json=BODY)
    assert first.status_code == 201, first.json
    assert idempotency.REPLAYED not in first.headers
    # The same body in another layout is the same call.
    again = post(partner, "/api/v1/requests", key, json=dict(reversed(list(BODY.items()))))
    assert again.status_code == 201
    assert again.headers[idempotency.REPLAYED] == "true"
    assert again.json == first.json
    assert count(app, Request) == 1
    # Without the key, the same filing is a second call: refused as a duplicate.
    assert post(partner, "/api/v1/requests", None, json=BODY).status_code == 409


@pytest.mark.usefixtures("worker")
def test_a_task_action_retried_with_its_key_acts_once(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    task = task_of(agent, request_id, "review")
    assert post(agent, f"/api/v1/tasks/{task['id']}/claim", None).status_code == 200
    url, key = f"/api/v1/tasks/{task['id']}/complete", "decide-1"
    body = {"decision": "request_info", "comment": "Which users?"}
    asked = post(agent, url, key, json=body)
    assert asked.status_code == 200, asked.json
    assert asked.json["status"] == "awaiting_requester"
    replayed = post(agent, url, key, json=body)
    assert (replayed.status_code, replayed.json) == (200, asked.json)
    assert replayed.headers[idempotency.REPLAYED] == "true"
    timeline = partner.get(f"/api/v1/requests/{request_id}").json["timeline"]
    assert [e["action"] for e in timeline].count("request_info") == 1
    # A refusal is final too: answered again as it was, not tried again.
    late = post(agent, url, "decide-2", json={"decision": "approve"})
    assert late.status_code == 409
    assert post(agent, url, "decide-2", json={"decision": "approve"}).json == late.json


@pytest.mark.usefixtures("worker")
def test_a_filing_whose_answer_was_lost_is_found_by_its_key(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    """The web process died after storing the filing and before storing its answer: the
    retry that takes the key over once its lease ended gets the request the first call made
    (201), not a 409 "already asks" or a 422 "nothing to do"."""
    partner = api_as("pacct")
    first = post(partner, "/api/v1/requests", "file-1", json=BODY)
    assert first.status_code == 201, first.json
    with app.app_context():  # as if its process had died before storing the answer
        db.session.execute(
            db.update(IdempotencyKey).values(
                status=None,
                content_type=None,
                body=None,
                started_at=utcnow() - idempotency.IN_FLIGHT_LEASE - timedelta(seconds=1),
            )
        )
        db.session.commit()
    retried = post(partner, "/api/v1/requests", "file-1", json=BODY)
    assert retried.status_code == 201, retried.json
    assert retried.json["id"] == first.json["id"]
    assert count(app, Request) == 1
    # The key is the partner's: another partner's call with it files a request of its own.
    other = post(api_as("pvar"), "/api/v1/requests", "file-1", json=BODY)
    assert other.status_code != 201 or other.json["id"] != first.json["id"]


@pytest.mark.usefixtures("worker")
def test_a_retry_whose_answer_was_lost_attaches_to_the_same_update(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    """The Update's ID comes from the key: sent again, Temporal answers with the first run's
    outcome instead of running it a second time."""
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    task = task_of(agent, request_id, "review")
    assert post(agent, f"/api/v1/tasks/{task['id']}/claim", None).status_code == 200
    url = f"/api/v1/tasks/{task['id']}/release"
    assert post(agent, url, "release-1").status_code == 200
    with app.app_context():  # as if the answer had never been stored (an unknown outcome)
        db.session.execute(db.delete(IdempotencyKey))
        db.session.commit()
    retried = post(agent, url, "release-1")
    assert retried.status_code == 200, retried.json  # not 409 "The task is not claimed"
    assert idempotency.REPLAYED not in retried.headers
    assert post(agent, url, "release-2").status_code == 409  # a new key is a new release
    timeline = partner.get(f"/api/v1/requests/{request_id}").json["timeline"]
    assert [e["action"] for e in timeline].count("released") == 1


@pytest.mark.usefixtures("worker")
def test_a_cancel_retried_after_its_answer_was_lost_answers_with_that_cancel(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    """The cancel ended the request: its retry still learns that it was this call's doing,
    while another cancel is told the request has ended."""
    partner = api_as("pacct")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    url = f"/api/v1/requests/{request_id}/cancel"
    cancelled = post(partner, url, "cancel-1", json={"reason": "no longer needed"})
    assert cancelled.status_code == 200, cancelled.json
    with app.app_context():  # as if the answer had never been stored (an unknown outcome)
        db.session.execute(db.delete(IdempotencyKey))
        db.session.commit()
    retried = post(partner, url, "cancel-1", json={"reason": "no longer needed"})
    assert retried.status_code == 200, retried.json
    assert retried.json["status"] == "cancelled"
    other = post(partner, url, "cancel-2", json={"reason": "no longer needed"})
    assert other.status_code == 409
    assert other.json["error"]["message"] == f"{request_id} is cancelled; nothing more to do."


def test_a_comment_retried_with_its_key_is_posted_once(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    request_id = _stored_request(app)
    agent = api_as("agent")
    url = f"/api/v1/requests/{request_id}/comments"
    first = post(agent, url, "c-1", json={"body": "hello"})
    assert first.status_code == 201, first.json
    again = post(agent, url, "c-1", json={"body": "hello"})
    assert (again.status_code, again.json) == (201, first.json)
    assert comments(app) == 1


def test_the_same_key_for_another_call_is_refused(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    request_id = _stored_request(app)
    agent = api_as("agent")
    url = f"/api/v1/requests/{request_id}/comments"
    assert post(agent, url, "k", json={"body": "hello"}).status_code == 201
    other_body = post(agent, url, "k", json={"body": "bye"})
    assert other_body.status_code == 422, other_body.json
    assert other_body.json["error"]["fields"] == {
        "Idempotency-Key": ["Already used for another call."]
    }
    other_call = post(agent, f"/api/v1/requests/{request_id}/cancel", "k", json={"reason": "x"})
    assert other_call.status_code == 422
    assert comments(app) == 1


def test_a_key_in_flight_asks_to_retry_until_its_process_is_given_up_for_dead(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    request_id = _stored_request(app)
    agent = api_as("agent")
    url = f"/api/v1/requests/{request_id}/comments"
    assert post(agent, url, "k", json={"body": "hello"}).status_code == 201

    def in_flight_since(ago: timedelta) -> None:
        with app.app_context():  # as if its call were still running, since `ago`
            row = db.session.execute(select(IdempotencyKey)).scalar_one()
            row.status, row.started_at = None, utcnow() - ago
            db.session.commit()

    in_flight_since(timedelta(seconds=5))
    busy = post(agent, url, "k", json={"body": "hello"})
    assert busy.status_code == 409, busy.json
    assert busy.json["error"]["code"] == "in_progress"
    assert busy.headers["Retry-After"] == "1"
    in_flight_since(idempotency.IN_FLIGHT_LEASE + timedelta(seconds=1))
    taken_over = post(agent, url, "k", json={"body": "hello"})
    assert taken_over.status_code == 201
    assert idempotency.REPLAYED not in taken_over.headers
    assert post(agent, url, "k", json={"body": "hello"}).headers[idempotency.REPLAYED] == "true"


def test_keys_belong_to_their_user(app: Flask, demo_directory: Factory, api_as: Any) -> None:
    request_id = _stored_request(app)
    url = f"/api/v1/requests/{request_id}/comments"
    for name in ("agent", "boss"):
        answer = post(api_as(name), url, "shared-key", json={"body": "hello"})
        assert answer.status_code == 201
        assert idempotency.REPLAYED not in answer.headers
        assert answer.json["actor"] == name
    assert comments(app) == 2


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "bad\x7fkey", "tab\tkey"])
def test_a_malformed_key_is_a_bad_request(
    app: Flask, demo_directory: Factory, api_as: Any, key: str
) -> None:
    request_id = _stored_request(app)
    answer = post(
        api_as("agent"), f"/api/v1/requests/{request_id}/comments", key, json={"body": "x"}
    )
    assert answer.status_code == 400, answer.json
    assert answer.json["error"]["code"] == "bad_idempotency_key"
    assert comments(app) == 0


def test_a_key_of_255_printable_characters_is_taken(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    request_id = _stored_request(app)
    answer = post(
        api_as("agent"), f"/api/v1/requests/{request_id}/comments", "k ~" * 85, json={"body": "x"}
    )
    assert answer.status_code == 201, answer.json


def test_an_answer_that_asks_to_retry_is_not_remembered(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    """Temporal refuses the connection here (503): the key stays free for the retry."""
    request_id = _stored_request(app)
    refused = post(
        api_as("agent"), f"/api/v1/requests/{request_id}/cancel", "c", json={"reason": "x"}
    )
    assert refused.status_code == 503, refused.json
    assert refused.headers["Retry-After"]
    assert count(app, IdempotencyKey) == 0


def test_keys_are_forgotten_after_a_day(app: Flask, demo_directory: Factory, api_as: Any) -> None:
    request_id = _stored_request(app)
    agent = api_as("agent")
    url = f"/api/v1/requests/{request_id}/comments"
    assert post(agent, url, "old", json={"body": "hello"}).status_code == 201
    with app.app_context():
        for row in db.session.execute(select(IdempotencyKey)).scalars():
            row.created_at -= timedelta(hours=25)
        db.session.commit()
    app.extensions["linkdesk.idempotency"]["pruned_at"] = None  # its minute has passed
    assert post(agent, url, "new", json={"body": "other"}).status_code == 201
    with app.app_context():
        assert db.session.execute(select(IdempotencyKey.key)).scalars().all() == ["new"]
    again = post(agent, url, "old", json={"body": "hello"})
    assert again.status_code == 201
    assert idempotency.REPLAYED not in again.headers
    assert comments(app) == 3


def test_a_page_form_carries_a_fresh_key_and_a_double_submit_posts_once(
    app: Flask, demo_directory: Factory, client: FlaskClient
) -> None:
    request_id = _stored_request(app)
    sign_in(client, "agent")
    page = client.get(f"/requests/{request_id}").get_data(as_text=True)
    keys = re.findall(r'name="idempotency_key" value="([^"]+)"', page)
    assert len(keys) == len(set(keys)) >= 1
    reload = client.get(f"/requests/{request_id}").get_data(as_text=True)
    assert not set(keys) & set(re.findall(r'name="idempotency_key" value="([^"]+)"', reload))
    form = {
        "body": "hello",
        "csrf_token": csrf_token(client, f"/requests/{request_id}"),
        "idempotency_key": keys[-1],
    }
    first = client.post(f"/requests/{request_id}/comments", data=form)
    second = client.post(f"/requests/{request_id}/comments", data=form)
    assert first.status_code == second.status_code == 302
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers[idempotency.REPLAYED] == "true"
    assert comments(app) == 1


def test_the_api_documents_the_header_on_every_unsafe_call(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").json
    header = spec["components"]["parameters"]["IdempotencyKey"]
    assert (header["name"], header["in"]) == ("Idempotency-Key", "header")
    reference = {"$ref": "#/components/parameters/IdempotencyKey"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # the path's own
                continue
            documented = reference in operation.get("parameters", [])
            unsafe = method in ("post", "put", "patch", "delete")
            expected = unsafe and (path, method) != ("/api/v1/tokens", "post")
            assert documented == expected, (method, path)


def _stored_request(app: Flask) -> str:
    """A request of `pacct`'s waiting for an agent, with no workflow (comments need none)."""
    return waiting_request(app).public_id
