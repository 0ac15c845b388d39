"""People acting on the same request at the same moment: one of them wins, the others are told
who did, and the page shows what the workflow holds.

Each person is a separate API client on a thread of their own; a barrier releases them
together, so their updates reach the workflow as close together as the stack allows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.extensions import db
from service.models import AppliedChange, workflow_id_for
from tests.conftest import Factory, LoopThread
from tests.lifecycle import decide, file, flags, task_of, wait_status
from workflows.request import RequestWorkflow

pytestmark = pytest.mark.usefixtures("worker")


def at_once(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions on threads released together; their results, in the same order."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = actions[index]()
        except BaseException as exc:  # surfaced below, not lost in the thread
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def race_to_claim(people: dict[str, Any], task_id: int) -> str:
    """Everyone claims the task at once: one wins, the rest are told who; returns the winner."""
    names = list(people)
    responses = at_once(
        *(lambda p=p: p.post(f"/api/v1/tasks/{task_id}/claim") for p in people.values())
    )
    codes = {name: (r.status_code, r.json) for name, r in zip(names, responses, strict=True)}
    winners = [name for name, (code, _) in codes.items() if code == 200]
    assert len(winners) == 1, codes
    (winner,) = winners
    for name, (code, body) in codes.items():
        if name != winner:
            assert code == 409, body
            assert f"The task is claimed by {winner} since " in body["error"]["message"]
    return winner


def message(response: Any) -> str:
    return str(response.json["error"]["message"])


def too_late(request_id: str, status: str) -> tuple[str, ...]:
    """What the loser of a race hears, depending on how far the winner has got."""
    return (
        f"The request is already {status.replace('_', ' ')}.",
        "The task is already done.",
        "The request can no longer be cancelled (applying).",
        f"{request_id} is {status}; nothing more to do.",
    )


def queued_request(partner: Any) -> str:
    request_id = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
    assert wait_status(partner, request_id, "awaiting_agent")["status"] == "awaiting_agent"
    return str(request_id)


def test_eight_agents_claim_the_same_task_and_one_gets_it(
    demo_directory: Factory, api_as: Any
) -> None:
    names = [f"agent{n}" for n in range(1, 9)]
    for name in names:
        demo_directory.user(name, "agent")
    agents = {name: api_as(name) for name in names}
    partner = api_as("pacct")
    request_id = queued_request(partner)
    task = task_of(agents["agent1"], request_id, "review")

    winner = race_to_claim(agents, task["id"])

    claimed = task_of(agents[winner], request_id, "review")
    assert (claimed["state"], claimed["assignee"]) == ("claimed", winner)
    timeline = partner.get(f"/api/v1/requests/{request_id}").json["timeline"]
    assert [e["actor"] for e in timeline if e["action"] == "claimed"] == [winner]


def test_concurrent_approvals_decide_the_task_once(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    demo_directory.user("agent2", "agent")
    partner, holder, other = api_as("pacct"), api_as("agent"), api_as("agent2")
    request_id = queued_request(partner)
    task = task_of(holder, request_id, "review")
    assert holder.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200

    # The holder double-submits while a colleague, looking at a stale page, approves too.
    first, second, colleague = at_once(
        lambda: decide(holder, task, "approve", "ok"),
        lambda: decide(holder, task, "approve", "ok"),
        lambda: decide(other, task, "approve", "ok"),
    )

    assert sorted([first.status_code, second.status_code]) == [200, 409]
    late = first if first.status_code == 409 else second
    assert message(late) in too_late(request_id, "completed")
    assert colleague.status_code == 409, colleague.json
    assert message(colleague) in too_late(request_id, "completed") or (
        "claimed by agent since" in message(colleague)
    )
    done = wait_status(partner, request_id, "completed")
    assert done["status"] == "completed"
    assert [e["actor"] for e in done["timeline"] if e["action"] == "approve"] == ["agent"]
    assert flags(app, "ACCT-01", "BETA") == (True, True, True)
    with app.app_context():
        markers = db.session.execute(select(func.count()).select_from(AppliedChange)).scalar()
    assert markers == 1


def test_the_second_approval_goes_to_one_of_two_racing_approvers(
    app: Flask, demo_directory: Factory, api_as: Any
) -> None:
    demo_directory.user("agent2", "agent")
    partner, first = api_as("pacct"), api_as("agent")
    approvers = {"agent2": api_as("agent2"), "boss": api_as("boss")}
    request_id = file(partner, "dissociate_link", "ACCT-01", "ACME-US").json["id"]
    wait_status(partner, request_id, "awaiting_agent")
    review = task_of(first, request_id, "review")
    first.post(f"/api/v1/tasks/{review['id']}/claim")
    assert decide(first, review, "approve").json["status"] == "awaiting_second_approval"
    task = task_of(approvers["agent2"], request_id, "second_approval")

    winner = race_to_claim(approvers, task["id"])

    (loser,) = [name for name in approvers if name != winner]
    assert decide(approvers[loser], task, "approve").status_code == 409
    assert decide(approvers[winner], task, "approve").status_code == 200
    assert wait_status(partner, request_id, "completed")["status"] == "completed"
    assert flags(app, "ACCT-01", "ACME-US") == (False, False, False)


def workflow_state(loop_thread: LoopThread, temporal_env: Any, request_id: str) -> Any:
    handle = temporal_env.client.get_workflow_handle(workflow_id_for(request_id))
    return loop_thread.run(handle.query(RequestWorkflow.state))


@pytest.mark.parametrize("attempt", range(4))
def test_cancel_racing_an_approval_has_one_winner_and_a_consistent_end(
    attempt: int,
    app: Flask,
    demo_directory: Factory,
    api_as: Any,
    loop_thread: LoopThread,
    temporal_env: Any,
) -> None:
    partner, agent = api_as("pacct"), api_as("agent")
    request_id = queued_request(partner)
    task = task_of(agent, request_id, "review")
    assert agent.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200

    cancelled, approved = at_once(
        lambda: partner.post(f"/api/v1/requests/{request_id}/cancel", json={"reason": "oops"}),
        lambda: decide(agent, task, "approve"),
    )

    codes = (cancelled.status_code, approved.status_code)
    assert sorted(codes) == [200, 409], (cancelled.json, approved.json)
    final = "cancelled" if cancelled.status_code == 200 else "completed"
    assert message(approved if final == "cancelled" else cancelled) in too_late(request_id, final)
    shown = wait_status(partner, request_id, final)
    assert shown["status"] == final, shown
    state = workflow_state(loop_thread, temporal_env, request_id)
    assert state.status == shown["status"]
    assert state.outcome == shown["outcome"]
    assert {t.state for t in state.tasks} == {"done"}
    assert shown["tasks"] == []  # no open task left behind in any queue
    assert agent.get("/api/v1/tasks").json["items"] == []
    linked = final == "completed"
    assert flags(app, "ACCT-01", "BETA") == (True, linked, linked)
    with app.app_context():
        markers = db.session.execute(select(func.count()).select_from(AppliedChange)).scalar()
    assert markers == int(linked)
