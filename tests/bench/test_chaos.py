"""The chaos campaign's checks (bench/chaos.py), on made-up records: each kind of damage is
counted, and a clean campaign passes. The campaign itself runs outside the suite (`make chaos`)."""

from __future__ import annotations

from collections import Counter

from bench.chaos import (
    Action,
    Answer,
    Event,
    Kill,
    RequestRow,
    Snapshot,
    TaskRow,
    Workflow,
    assess,
    recovery_after,
)

TRIPLE = ("establish_link", "ACCT-01", "CHAOS-F0001")


def filing(request: str | None, *statuses: int | None) -> Action:
    return Action("partner-acct", "file", "k1", request, triple=TRIPLE, statuses=list(statuses))


def approval(*statuses: int | None, task: int = 7) -> Action:
    return Action(
        "agent1", "complete", "k2", "REQ-000001", task, "approve", text="ok", statuses=[*statuses]
    )


def completed_request() -> Snapshot:
    """REQ-000001 filed, approved by agent1 and applied once: all as it should be."""
    return Snapshot(
        requests={"REQ-000001": RequestRow("REQ-000001", *TRIPLE, "completed", 6)},
        tasks=[TaskRow(7, "REQ-000001", "review", "done", "approve", "agent1")],
        events=[
            Event("REQ-000001", "partner-acct", "filed", None),
            Event("REQ-000001", "agent1", "claimed", "review task"),
            Event("REQ-000001", "agent1", "approve", "ok"),
        ],
        applied={"REQ-000001"},
        applied_audits=Counter({"REQ-000001": 1}),
        workflows={"REQ-000001": Workflow("COMPLETED")},
    )


def answer(status: int | None, code: str | None = None, action: str = "file") -> Answer:
    return Answer("partner-acct", action, "k", 1, 10.0, 10.5, status, code)


def test_a_clean_campaign_passes_and_counts_503s_by_code() -> None:
    """Retried 503s and lost connections are no defect; the 503s are counted by error code."""
    answers = [answer(None, "ConnectionRefusedError"), answer(503, "unavailable"), answer(201)]
    found = assess(
        [filing("REQ-000001", None, 503, 201), approval(200)], answers, completed_request()
    )
    assert not found.failed, found
    assert found.unavailable == Counter({"unavailable": 1})


def test_an_acknowledged_filing_that_is_not_stored_or_has_no_workflow_is_lost() -> None:
    state = completed_request()
    found = assess([filing("REQ-000002", 201)], [], state)
    assert found.lost == ["REQ-000002: acknowledged filing " + repr(TRIPLE) + " not stored"]
    state.workflows.clear()
    found = assess([filing("REQ-000001", 201)], [], state)
    assert "REQ-000001: acknowledged filing never got a workflow" in found.lost
    assert found.failed


def test_a_filing_retried_after_a_lost_answer_is_acknowledged_by_its_409() -> None:
    """A careful client that lost the answer learns its request from the 409 naming it."""
    found = assess([filing("REQ-000001", None, 409), approval(200)], [], completed_request())
    assert not found.failed, found
    found = assess([filing("REQ-000009", None, 409)], [], completed_request())
    assert found.lost == ["REQ-000009: acknowledged filing " + repr(TRIPLE) + " not stored"]
    # A 409 naming no request (its key still in flight when the client gave up) says
    # nothing was acknowledged: no request stored is then not a lost one.
    unnamed = filing(None, None, 409)
    assert not unnamed.acknowledged
    assert not assess([unnamed], [], completed_request()).lost


def test_an_acknowledged_decision_the_task_does_not_hold_is_lost() -> None:
    state = completed_request()
    state.tasks = [TaskRow(7, "REQ-000001", "review", "done", "reject", "agent2")]
    found = assess([approval(200)], [], state)
    assert found.lost == [
        "REQ-000001: agent1's acknowledged complete approve (k2) is not in the database"
    ]


def test_an_action_answered_503_that_was_done_all_the_same_is_counted_apart() -> None:
    """503 says nothing was changed; a retry answered 409 by a task this action closed shows
    it was. Counted, not a failure: the client found out."""
    found = assess([approval(503, 409)], [answer(503, "unavailable")], completed_request())
    assert found.done_despite_503 == [
        "REQ-000001: complete k2 answered [503, 409], yet it was done"
    ]
    assert not found.failed


def test_doubled_filings_decisions_and_changes_are_counted() -> None:
    state = completed_request()
    state.requests["REQ-000002"] = RequestRow("REQ-000002", *TRIPLE, "completed", 6)
    state.applied.add("REQ-000002")
    state.workflows["REQ-000002"] = Workflow("COMPLETED")
    state.events.append(Event("REQ-000001", "agent1", "approve", "ok"))
    state.applied_audits["REQ-000001"] = 2
    found = assess([filing("REQ-000001", 201), approval(200), approval(200)], [], state)
    assert found.doubled == [
        "one filing of " + repr(TRIPLE) + " made REQ-000001, REQ-000002",
        "task 7: 2 decisions acknowledged",
        "REQ-000001: agent1's approve 'ok' is on the timeline 2x",
        "REQ-000001: 2 approve entries for 1 task(s) so decided",
        "REQ-000001: its relationship change was applied 2x",
    ]


def test_requests_neither_ended_nor_properly_waiting_are_stuck() -> None:
    state = completed_request()
    state.requests["REQ-000001"] = RequestRow("REQ-000001", *TRIPLE, "awaiting_agent", 6)
    state.applied.clear()
    state.tasks = [TaskRow(7, "REQ-000001", "review", "open", None, None)]
    state.events = state.events[:1]
    state.workflows["REQ-000001"] = Workflow("RUNNING", 6)
    assert not assess([], [], state).failed  # waits on its open review task

    state.workflows["REQ-000001"] = Workflow("RUNNING", 8)
    assert assess([], [], state).stuck == ["REQ-000001: projection at 6, workflow at 8"]
    state.workflows["REQ-000001"] = Workflow("COMPLETED")
    assert assess([], [], state).stuck == [
        "REQ-000001: awaiting_agent, but its workflow is COMPLETED"
    ]
    state.workflows["REQ-000001"] = Workflow("RUNNING", 6)
    state.requests["REQ-000001"] = RequestRow("REQ-000001", *TRIPLE, "applying", 6)
    assert assess([], [], state).stuck == ["REQ-000001: applying, waiting on no one"]


def test_applied_changes_match_completed_requests_and_workflows_match_requests() -> None:
    state = completed_request()
    state.applied.clear()
    assert assess([], [], state).lost == ["REQ-000001: completed without its applied change"]
    state = completed_request()
    state.workflows["REQ-000005"] = Workflow("FAILED")
    assert assess([], [], state).inconsistent == [
        "REQ-000005: a FAILED workflow for a request that is not stored"
    ]


def test_a_5xx_other_than_503_fails_the_campaign() -> None:
    found = assess(
        [], [answer(500, "internal_error"), answer(502, "not_json")], completed_request()
    )
    assert found.server_errors == Counter({500: 1, 502: 1}) and found.failed


def test_recovery_is_the_first_success_through_the_killed_part_sent_after_the_kill() -> None:
    """A worker serves again when a workflow update succeeds; a read says nothing of it."""
    kill = Kill("worker", at=10.0, pid=1)
    answers = [
        Answer("agent1", "claim", "a", 1, 9.0, 12.0, 200, None),  # sent before the kill
        Answer("agent1", "read", "b", 1, 10.5, 10.75, 200, None),  # not through the worker
        Answer("agent1", "claim", "c", 1, 11.0, 14.0, 503, "unavailable"),
        Answer("agent1", "complete", "d", 1, 13.0, 15.5, 200, None),
    ]
    assert recovery_after(kill, answers) == 5.5
    assert recovery_after(Kill("web", at=10.0, pid=2), answers) == 0.75
    assert recovery_after(Kill("temporal", at=16.0, pid=3), answers) is None
