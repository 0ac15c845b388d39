"""The audit log's reads: each filter reads its own index in the log's order, whatever the
page's depth; and the settings page's token actions are audited as the API's are."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from service import audit
from service.config import is_sqlite
from service.extensions import db
from service.models import AuditEvent
from tests.conftest import Factory, csrf_token, sign_in

CURSOR = audit.Cursor(datetime(2026, 11, 2, 12, tzinfo=UTC), 1000)


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        (audit.AuditFilters(), "ix_audit_events_at_id"),
        (audit.AuditFilters(actor="root"), "ix_audit_events_actor_at_id"),
        (audit.AuditFilters(action="token.created"), "ix_audit_events_action_at_id"),
        (audit.AuditFilters(object_type="request"), "ix_audit_events_object_type_at_id"),
        (
            audit.AuditFilters(object_type="user", object_ref="root"),
            "ix_audit_events_object_type_ref_at_id",
        ),
        (
            audit.AuditFilters(start=date(2026, 11, 1), end=date(2026, 11, 2)),
            "ix_audit_events_at_id",
        ),
    ],
)
@pytest.mark.parametrize("cursor", [None, CURSOR], ids=["first page", "deep page"])
def test_each_filter_reads_its_index_in_the_log_order_without_sorting(
    app: Flask, filters: audit.AuditFilters, index: str, cursor: audit.Cursor | None
) -> None:
    """SQLite's plan is fixed by the schema (PostgreSQL's depends on the statistics: see
    BENCHMARKS.md for its plans at a million events)."""
    with app.app_context():
        if not is_sqlite(str(db.engine.url)):
            pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL's plans are in BENCHMARKS.md")
        query = audit.events_query(filters, cursor).limit(51)
        compiled = query.compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = " / ".join(
            row[-1] for row in db.session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
    assert f"USING INDEX {index}" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort: the index holds the order
    if cursor is not None:
        assert "at<?" in plan, plan  # the cursor bounds the index range, it is not a filter


def test_token_creation_and_revocation_on_the_settings_page_are_audited(
    app: Flask, client: FlaskClient, demo_directory: Factory
) -> None:
    sign_in(client, "boss")
    token = csrf_token(client, "/settings")
    created = client.post("/settings/tokens", data={"name": "laptop", "csrf_token": token})
    assert created.status_code == 200
    with app.app_context():
        token_id, prefix = db.session.execute(
            text("SELECT id, prefix FROM api_tokens WHERE name = 'laptop'")
        ).one()
    revoked = client.post(f"/settings/tokens/{token_id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 302
    with app.app_context():
        events = db.session.execute(
            select(AuditEvent.actor, AuditEvent.action, AuditEvent.object_ref, AuditEvent.detail)
            .where(AuditEvent.object_type == "apitoken")
            .order_by(AuditEvent.id)
        ).all()
    assert [(actor, action, ref) for actor, action, ref, _ in events] == [
        ("boss", "token.created", prefix),
        ("boss", "token.revoked", prefix),
    ]
    assert [detail["via"] for *_, detail in events] == ["web.create_token", "web.revoke_token"]
