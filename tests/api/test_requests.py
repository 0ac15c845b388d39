"""Requests end to end: the API, the real Temporal dev server, the worker and the database."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from temporalio.worker import Worker

from domain.vocabulary import TaskState, TaskType
from service.extensions import db
from service.models import Instance, Task, utcnow
from tests.conftest import Factory, eventually, waiting_request
from tests.lifecycle import claim_and_decide, decide, file, flags, task_of, wait_status

pytestmark = pytest.mark.usefixtures("worker")


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
    metrics = partner.client.get("/metrics").get_data(as_text=True)
    assert 'linkdesk_requests{kind="establish_link",status="awaiting_agent"} 1' in metrics
    assert 'linkdesk_open_tasks{type="review",state="open"} 1' in metrics
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


def test_enable_access_needs_consent_then_agent_approval(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    partner, admin, agent = api_as("pacct"), api_as("iadmin"), api_as("agent")
    demo_directory.relationship("ACCT-01", "ACME-US", access_enabled=False, linked=True)
    request_id = file(partner, "enable_access", "ACCT-01", "ACME-US").json["id"]
    waiting = wait_status(partner, request_id, "awaiting_consent")
    assert waiting["sla"]["state"] == "paused"
    assert [t["type"] for t in waiting["tasks"]] == ["consent"]
    assert agent.get("/api/v1/tasks").json["items"] == []  # nothing for agents yet
    consent = task_of(admin, request_id, "consent")
    granted = decide(admin, consent, "grant", "fine by us")
    assert granted.status_code == 200, granted.json
    assert granted.json["status"] == "awaiting_agent"  # read-your-writes
    approved = claim_and_decide(agent, request_id, "review", "approve")
    assert approved.status_code == 200, approved.json
    assert wait_status(partner, request_id, "completed")["outcome"] == "Done: access is enabled."
    assert flags(app, "ACCT-01", "ACME-US") == (True, True, True)


def test_management_console_skips_consent(demo_directory: Factory, api_as: Any) -> None:
    demo_directory.user("pmgmt", "partner", console="MGMT-01")
    partner = api_as("pmgmt")
    request_id = file(partner, "enable_access", "MGMT-01", "OMEGA").json["id"]
    assert wait_status(partner, request_id, "awaiting_agent")["status"] == "awaiting_agent"


def test_dissociate_needs_two_different_approvers(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    demo_directory.user("agent2", "agent")
    partner, first, second = api_as("pacct"), api_as("agent"), api_as("agent2")
    request_id = file(partner, "dissociate_link", "ACCT-01", "ACME-US").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    after_first = claim_and_decide(first, request_id, "review", "approve")
    assert after_first.json["status"] == "awaiting_second_approval"
    second_task = task_of(second, request_id, "second_approval")
    # The first approver's queue does not offer it; taking it anyway is refused.
    queue = first.get("/api/v1/tasks", query_string={"per_page": 200}).json
    assert second_task["id"] not in [task["id"] for task in queue["items"]]
    refused = first.post(f"/api/v1/tasks/{second_task['id']}/claim")
    assert refused.status_code == 403
    assert "another agent or a manager" in refused.json["error"]["message"]
    assert claim_and_decide(second, request_id, "second_approval", "approve").status_code == 200
    assert wait_status(partner, request_id, "completed")["status"] == "completed"
    assert flags(app, "ACCT-01", "ACME-US") == (False, False, False)


def test_instance_admin_may_file_dissociate_only(demo_directory: Factory, api_as: Any) -> None:
    admin = api_as("iadmin")
    refused = file(admin, "enable_access", "VAR-01", "DELTA")
    assert refused.status_code == 422
    assert "kind" in refused.json["error"]["fields"]
    filed = file(admin, "dissociate_link", "VAR-01", "DELTA")
    assert filed.status_code == 201, filed.json


def test_reject_needs_a_reason_and_ends_rejected(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    task = task_of(agent, request_id, "review")
    agent.post(f"/api/v1/tasks/{task['id']}/claim")
    no_reason = decide(agent, task, "reject")
    assert no_reason.status_code == 422
    assert no_reason.json["error"]["message"] == "Give a reason in the comment."
    assert agent.get(f"/api/v1/requests/{request_id}").json["status"] == "in_review"
    rejected = decide(agent, task, "reject", "not your client")
    assert rejected.json["status"] == "rejected"
    assert rejected.json["outcome"] == "Rejected: not your client"
    assert flags(app, "ACCT-01", "BETA") == (True, False, False)
    again = decide(agent, task, "approve")
    assert again.status_code == 409


def test_request_info_round_trip_returns_to_the_same_agent(
    demo_directory: Factory, api_as: Any
) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "GAMMA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    no_question = claim_and_decide(agent, request_id, "review", "request_info")
    assert no_question.status_code == 422
    task = task_of(agent, request_id, "review")
    asked = decide(agent, task, "request_info", "Which office?")
    assert asked.json["status"] == "awaiting_requester"
    assert asked.json["sla"]["state"] == "paused"
    empty = partner.post(f"/api/v1/requests/{request_id}/response", json={"answer": " "})
    assert empty.status_code == 422
    answered = partner.post(f"/api/v1/requests/{request_id}/response", json={"answer": "Paris"})
    assert answered.status_code == 200, answered.json
    assert answered.json["status"] == "in_review"
    review = task_of(agent, request_id, "review")
    assert review["state"] == "claimed" and review["assignee"] == "agent"
    comments = [e["comment"] for e in answered.json["timeline"]]
    assert "Which office?" in comments and "Paris" in comments


def test_cancel_before_applying_and_not_after(demo_directory: Factory, api_as: Any) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    no_reason = partner.post(f"/api/v1/requests/{request_id}/cancel", json={"reason": ""})
    assert no_reason.status_code == 422
    cancelled = partner.post(f"/api/v1/requests/{request_id}/cancel", json={"reason": "typo"})
    assert cancelled.status_code == 200, cancelled.json
    assert cancelled.json["status"] == "cancelled"
    assert cancelled.json["tasks"] == []
    assert agent.get("/api/v1/tasks").json["items"] == []
    late = partner.post(f"/api/v1/requests/{request_id}/cancel", json={"reason": "again"})
    assert late.status_code == 409
    refiled = file(partner, "establish_link", "ACCT-01", "BETA")
    assert refiled.status_code == 201  # the triple is free again


def test_a_second_open_request_is_refused_with_the_open_id(
    demo_directory: Factory, api_as: Any
) -> None:
    partner = api_as("pacct")
    first = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    second = file(partner, "establish_link", "ACCT-01", "BETA")
    assert second.status_code == 409
    assert second.json["error"]["fields"]["open_request_id"] == [first]
    assert first in second.json["error"]["message"]
    assert partner.get("/api/v1/requests").json["total"] == 1


def test_nothing_to_do_is_explained_instead_of_filed(demo_directory: Factory, api_as: Any) -> None:
    partner = api_as("pacct")
    response = file(partner, "enable_access", "ACCT-01", "BETA")
    assert response.status_code == 422
    assert "access is already enabled" in response.json["error"]["message"]
    assert partner.get("/api/v1/requests").json["total"] == 0


def test_change_made_meanwhile_ends_no_action_needed(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    demo_directory.relationship("ACCT-01", "BETA", access_enabled=True, linked=True)
    claim_and_decide(agent, request_id, "review", "approve")
    done = wait_status(partner, request_id, "no_action_needed")
    assert done["status"] == "no_action_needed"
    assert "already" in done["outcome"]


def test_instance_removed_before_apply_ends_failed(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "GAMMA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    with app.app_context():  # an administrator removes the company meanwhile
        db.session.execute(
            db.update(Instance).where(Instance.code == "GAMMA").values(removed_at=utcnow())
        )
        db.session.commit()
    claim_and_decide(agent, request_id, "review", "approve")
    done = wait_status(partner, request_id, "failed")
    assert done["status"] == "failed"
    assert "instance was removed" in done["outcome"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "fly", "console_id": "ACCT-01", "instance_id": "BETA", "reason": "x"}, "kind"),
        (
            {
                "kind": "establish_link",
                "console_id": "NOPE-1",
                "instance_id": "BETA",
                "reason": "x",
            },
            "console_id",
        ),
        (
            {
                "kind": "establish_link",
                "console_id": "ACCT-01",
                "instance_id": "NOPE",
                "reason": "x",
            },
            "instance_id",
        ),
        ({"kind": "establish_link", "console_id": "ACCT-01", "instance_id": "BETA"}, "reason"),
        (
            {
                "kind": "establish_link",
                "console_id": "VAR-01",
                "instance_id": "DELTA",
                "reason": "x",
            },
            "console_id",
        ),
    ],
)
def test_bad_filings_are_field_errors_and_file_nothing(
    demo_directory: Factory, api_as: Any, body: dict[str, Any], field: str
) -> None:
    partner = api_as("pacct")
    response = partner.post("/api/v1/requests", json=body)
    assert response.status_code == 422, response.json
    assert field in response.json["error"]["fields"]
    assert partner.get("/api/v1/requests").json["total"] == 0


def test_scope_hides_other_consoles_requests(demo_directory: Factory, api_as: Any) -> None:
    mine = file(api_as("pacct"), "establish_link", "ACCT-01", "BETA").json["id"]
    other = api_as("pvar")
    assert other.get(f"/api/v1/requests/{mine}").status_code == 404
    assert other.get("/api/v1/requests").json["total"] == 0
    assert other.post(f"/api/v1/requests/{mine}/cancel", json={"reason": "x"}).status_code == 404
    assert api_as("agent").get(f"/api/v1/requests/{mine}").status_code == 200
    assert api_as("pacct").get("/api/v1/requests/REQ-999999").status_code == 404
    assert api_as("pacct").get("/api/v1/requests/banana").status_code == 404


def test_customer_service_cannot_file(demo_directory: Factory, api_as: Any) -> None:
    response = file(api_as("agent"), "establish_link", "ACCT-01", "BETA")
    assert response.status_code == 403


def test_internal_notes_are_hidden_from_the_requesting_side(
    demo_directory: Factory, api_as: Any
) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    note = agent.post(
        f"/api/v1/requests/{request_id}/comments", json={"body": "checked", "internal": True}
    )
    assert note.status_code == 201
    public = partner.post(f"/api/v1/requests/{request_id}/comments", json={"body": "thanks"})
    assert public.status_code == 201
    refused = partner.post(
        f"/api/v1/requests/{request_id}/comments", json={"body": "x", "internal": True}
    )
    assert refused.status_code == 403
    partner_view = [
        e["comment"] for e in partner.get(f"/api/v1/requests/{request_id}").json["timeline"]
    ]
    agent_view = [
        e["comment"] for e in agent.get(f"/api/v1/requests/{request_id}").json["timeline"]
    ]
    assert "thanks" in partner_view and "checked" not in partner_view
    assert "checked" in agent_view


def test_task_actions_by_the_wrong_role_are_refused(demo_directory: Factory, api_as: Any) -> None:
    partner, admin, agent = api_as("pacct"), api_as("iadmin"), api_as("agent")
    demo_directory.relationship("ACCT-01", "ACME-US", access_enabled=False, linked=True)
    request_id = file(partner, "enable_access", "ACCT-01", "ACME-US").json["id"]
    wait_status(partner, request_id, "awaiting_consent")
    consent = task_of(admin, request_id, "consent")
    # Agents do not see consent tasks at all; partners do not see them either.
    assert (
        agent.post(
            f"/api/v1/tasks/{consent['id']}/complete", json={"decision": "grant"}
        ).status_code
        == 403
    )
    assert partner.post(f"/api/v1/tasks/{consent['id']}/claim").status_code == 404
    wrong = decide(admin, consent, "approve")
    assert wrong.status_code == 422
    assert "grant, decline" in wrong.json["error"]["message"]
    assert agent.get(f"/api/v1/requests/{request_id}").json["status"] == "awaiting_consent"


def test_people_are_notified_and_can_mark_read(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    partner, admin, agent = api_as("pacct"), api_as("iadmin"), api_as("agent")
    demo_directory.relationship("ACCT-01", "ACME-US", access_enabled=False, linked=True)
    request_id = file(partner, "enable_access", "ACCT-01", "ACME-US").json["id"]
    wait_status(partner, request_id, "awaiting_consent")
    eventually(
        lambda: admin.get("/api/v1/notifications").json["unread"],
        lambda unread: unread >= 1,
        what="iadmin's first notification",
    )
    inbox = admin.get("/api/v1/notifications").json
    assert inbox["unread"] >= 1
    consent_notes = [n for n in inbox["items"] if n["event"] == "consent_requested"]
    assert consent_notes[0]["request_id"] == request_id
    assert admin.post(f"/api/v1/notifications/{consent_notes[0]['id']}/read").json == {"marked": 1}
    assert agent.post(f"/api/v1/notifications/{consent_notes[0]['id']}/read").status_code == 404
    assert admin.post("/api/v1/notifications/read").status_code == 200
    assert admin.get("/api/v1/notifications", query_string={"unread": "true"}).json["total"] == 0
    with app.app_context():
        from service.models import OutboxEmail

        emails = db.session.execute(
            db.select(OutboxEmail).where(OutboxEmail.recipient == "iadmin@example.test")
        ).scalars()
        # No SMTP configured: emails wait in the local outbox, one per person and event.
        subjects = [e.subject for e in emails if e.sent_at is None]
    assert subjects == [f"[LinkDesk] {request_id}: Your consent is requested."]


def test_manager_reassigns_and_agents_release(demo_directory: Factory, api_as: Any) -> None:
    demo_directory.user("agent2", "agent")
    partner, agent, agent2, boss = (
        api_as("pacct"),
        api_as("agent"),
        api_as("agent2"),
        api_as("boss"),
    )
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    task = task_of(agent, request_id, "review")
    url = f"/api/v1/tasks/{task['id']}"
    assert agent.post(f"{url}/claim").json["status"] == "in_review"
    taken = agent2.post(f"{url}/claim")
    assert taken.status_code == 409
    assert taken.json["error"]["message"].startswith("The task is claimed by agent since ")
    assert agent2.post(f"{url}/release").status_code == 409
    not_manager = agent.post(f"{url}/reassign", json={"assignee": "agent2"})
    assert not_manager.status_code == 403
    unknown = boss.post(f"{url}/reassign", json={"assignee": "nobody"})
    assert unknown.status_code == 422
    to_partner = boss.post(f"{url}/reassign", json={"assignee": "pacct"})
    assert to_partner.status_code == 422
    moved = boss.post(f"{url}/reassign", json={"assignee": "agent2"})
    assert moved.status_code == 200, moved.json
    assert task_of(agent2, request_id, "review")["assignee"] == "agent2"
    assert task_of(agent2, request_id, "review")["state"] == "claimed"
    released = agent2.post(f"{url}/release")
    assert released.json["status"] == "awaiting_agent"
    mine = agent2.get("/api/v1/tasks", query_string={"assignee": "unassigned"}).json["items"]
    assert [t["id"] for t in mine] == [task["id"]]
    assert agent2.get("/api/v1/tasks", query_string={"assignee": "me"}).json["items"] == []


def test_a_task_the_workflow_does_not_know_yet_asks_to_retry(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    """The database shows a task its workflow has not made again yet (the workflow replays
    after a worker restart): the action is to be retried in a moment, never a 404."""
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    shown = task_of(agent, request_id, "review")
    with app.app_context():
        known = db.session.get(Task, shown["id"])
        assert known is not None
        ahead = Task(
            request_id=known.request_id,
            key=known.key + 1,
            type=TaskType.REVIEW,
            state=TaskState.OPEN,
            created_at=utcnow(),
        )
        db.session.add(ahead)
        db.session.commit()
        ahead_id = ahead.id
    for action, body in (("claim", None), ("complete", {"decision": "approve"})):
        answer = agent.post(f"/api/v1/tasks/{ahead_id}/{action}", json=body)
        assert answer.status_code == 409, answer.json
        assert answer.json["error"]["code"] == "not_ready"
        assert answer.headers["Retry-After"] == "2"
    assert agent.post(f"/api/v1/tasks/{shown['id']}/claim").status_code == 200


def test_a_request_whose_workflow_has_not_started_yet_asks_to_retry(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    request_id = waiting_request(app).public_id  # stored, its workflow not started yet
    cancelled = api_as("pacct").post(f"/api/v1/requests/{request_id}/cancel", json={"reason": "x"})
    assert cancelled.status_code == 409, cancelled.json
    assert cancelled.json["error"]["code"] == "not_ready"
    assert cancelled.headers["Retry-After"] == "2"
