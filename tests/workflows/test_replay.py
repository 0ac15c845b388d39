"""The request workflow still replays every recorded history: a change that would break
running requests (a command added, removed or reordered without `workflow.patched()`) fails
here, before it reaches a worker with requests in flight.

The histories in `tests/workflows/histories/` are data, committed with the code. They are
recorded by `tests/workflows/record_histories.py`; regenerate them, after a deliberate change
that is safe for no running request (or to add a path), with

    .venv/bin/python -m tests.workflows.record_histories

A change that must keep running requests alive keeps the old histories and uses
`workflow.patched()` instead; add a history of the new path alongside.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import LoopThread
from tests.workflows.record_histories import HISTORIES, PATHS
from workflows.request import RequestWorkflow

RECORDED = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def test_every_path_has_a_recorded_history() -> None:
    assert sorted(p.stem for p in RECORDED) == sorted(PATHS)


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
def test_history_replays(path: Path, loop_thread: LoopThread) -> None:
    history = load(path)
    closing = history.events[-1]
    assert closing.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    (payload,) = closing.workflow_execution_completed_event_attributes.result.payloads
    assert json.loads(payload.data) == PATHS[path.stem].status  # the path it claims to be

    replayer = Replayer(workflows=[RequestWorkflow])
    result = loop_thread.run(replayer.replay_workflow(history))
    assert result.replay_failure is None
