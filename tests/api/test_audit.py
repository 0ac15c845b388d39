"""The audit log through the API: admins only, filters, keyset paging by cursor, CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from service.audit import audit
from service.extensions import db
from service.models import AuditEvent, User
from tests.conftest import PASSWORD, Factory
from tests.lifecycle import claim_and_decide, file, wait_status


def stored_events(app: Flask, count: int, at: datetime, **fields: Any) -> None:
    """`count` audit events a second apart, the newest at `at`."""
    with app.app_context():
        for n in range(count):
            audit(
                fields.get("actor", "cli:test"),
                fields.get("action", "user.updated"),
                User,
                fields.get("ref", f"user{n}"),
                at=at - timedelta(seconds=n),
                n=n,
            )
        db.session.commit()


@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "boss"])
def test_the_audit_log_is_not_there_for_other_roles(
    demo_directory: Factory, api_as: Any, username: str
) -> None:
    response = api_as(username).get("/api/v1/audit")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


def test_the_audit_log_pages_by_cursor_newest_first_without_repeats_or_gaps(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    api = api_as("root")
    noon = datetime(2026, 11, 2, 12, tzinfo=UTC)
    stored_events(app, 25, noon)
    stored_events(app, 3, noon, ref="tie")  # three events at the very same time as the first

    seen: list[int] = []
    cursor = None
    while True:
        query = "action=user.updated&per_page=10" + (f"&cursor={cursor}" if cursor else "")
        response = api.get(f"/api/v1/audit?{query}")
        assert response.status_code == 200, response.json
        seen += [item["id"] for item in response.json["items"]]
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
        # An event recorded meanwhile is newer than any page after the first: no shift.
        stored_events(app, 1, datetime.now(UTC))
    assert len(seen) == len(set(seen)) == 28
    with app.app_context():
        expected = [
            event.id
            for event in db.session.execute(
                db.select(AuditEvent)
                .where(AuditEvent.at <= noon)
                .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            ).scalars()
        ]
    assert seen == expected


def test_the_audit_log_filters_by_actor_object_action_and_days(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    api = api_as("root")
    noon = datetime(2026, 11, 2, 12, tzinfo=UTC)
    stored_events(app, 2, noon, actor="alice", ref="bob")
    stored_events(app, 1, noon - timedelta(days=1), actor="alice", ref="carol")
    stored_events(app, 1, noon, actor="dave", ref="bob", action="user.deactivated")

    def refs(query: str) -> list[tuple[str, str, str]]:
        response = api.get(f"/api/v1/audit?{query}")
        assert response.status_code == 200, response.json
        return [(e["actor"], e["action"], e["object_ref"]) for e in response.json["items"]]

    assert refs("actor=alice&to=2026-11-01") == [("alice", "user.updated", "carol")]
    assert (
        refs("actor=alice&from=2026-11-02&to=2026-11-02") == [("alice", "user.updated", "bob")] * 2
    )
    assert refs("object_type=user&object_ref=bob&action=user.deactivated") == [
        ("dave", "user.deactivated", "bob")
    ]
    assert refs("object_type=console&actor=alice") == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("cursor=1733600000000000-", "cursor"),
        ("cursor=1733600000000000-12%0A", "cursor"),
        ("cursor=abc", "cursor"),
        ("from=2026-11-03&to=2026-11-02", "to"),
        ("object_type=spaceship", "object_type"),
        ("object_ref=root", "object_type"),
        ("per_page=500", "per_page"),
    ],
)
def test_a_bad_cursor_or_filter_is_a_clear_422(
    demo_directory: Factory, api_as: Any, query: str, field: str
) -> None:
    response = api_as("root").get(f"/api/v1/audit?{query}")
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]


def test_the_audit_log_as_csv_holds_every_selected_event(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    api = api_as("root")
    noon = datetime(2026, 11, 2, 12, tzinfo=UTC)
    stored_events(app, 1200, noon, actor="bulk")  # more than one export batch
    stored_events(app, 1, noon, actor="=HYPERLINK(1)", ref="-2+3")

    as_csv = {**api.headers, "Accept": "text/csv"}
    response = api.client.get("/api/v1/audit?actor=bulk&per_page=1", headers=as_csv)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["at", "actor", "action", "object_type", "object_ref", "comment", "detail"]
    assert len(rows) == 1201
    assert rows[1][:5] == [noon.isoformat(), "bulk", "user.updated", "user", "user0"]
    assert [row[4] for row in rows[1:]] == [f"user{n}" for n in range(1200)]

    # A value a spreadsheet would run as a formula is written as text.
    formula = api.client.get("/api/v1/audit?object_type=user&object_ref=-2%2B3", headers=as_csv)
    row = list(csv.reader(io.StringIO(formula.get_data(as_text=True))))[1]
    assert row[1] == "'=HYPERLINK(1)" and row[4] == "'-2+3"


def test_token_creation_and_revocation_are_audited(
    app: Flask, demo_directory: Factory, client: Any, api_as: Any
) -> None:
    created = client.post("/api/v1/tokens", json={"username": "agent", "password": PASSWORD})
    assert created.status_code == 201, created.json
    token = created.json
    revoked = client.delete(
        f"/api/v1/tokens/{token['id']}", headers={"Authorization": f"Bearer {token['token']}"}
    )
    assert revoked.status_code == 204

    response = api_as("root").get("/api/v1/audit?actor=agent&object_type=apitoken")
    events = response.json["items"]
    assert [(e["action"], e["object_ref"]) for e in events] == [
        ("token.revoked", token["prefix"]),
        ("token.created", token["prefix"]),
    ]
    assert events[1]["detail"]["name"] == token["name"]
    assert token["token"] not in str(response.json)


def test_each_request_decision_is_in_the_audit_log_once(
    app: Flask, demo_directory: Factory, api_as: Any, worker: Any
) -> None:
    """Through the real workflow: an approval of one request and the cancellation of another
    are each audited once, by whoever decided, with the comment given."""
    partner, agent, admin = api_as("pacct"), api_as("agent"), api_as("root")
    approved = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    cancelled = file(partner, "enable_access", "ACCT-01", "GAMMA").json["id"]
    wait_status(partner, approved, "awaiting_agent")
    assert claim_and_decide(agent, approved, "review", "approve").status_code == 200
    wait_status(partner, approved, "completed")
    answer = partner.post(f"/api/v1/requests/{cancelled}/cancel", json={"reason": "Not needed"})
    assert answer.status_code == 200, answer.json
    wait_status(partner, cancelled, "cancelled")

    def decisions(request_id: str) -> list[tuple[str, str, str | None]]:
        query = f"object_type=request&object_ref={request_id}"
        items = admin.get(f"/api/v1/audit?{query}").json["items"]
        return [(e["actor"], e["action"], e["comment"]) for e in items]

    assert decisions(approved) == [("agent", "request.approved", None)]
    assert decisions(cancelled) == [("pacct", "request.cancelled", "Not needed")]
