"""Every operation of the API's own OpenAPI document, fuzzed as every kind of caller.

Schemathesis reads the document the app serves (/api/v1/openapi.json) and calls the app in
process (WSGI) with the examples, coverage (boundaries and wrong types, missing and unexpected
parameters, other methods) and fuzzing (random valid and invalid input) cases of each operation,
as a partner, an instance admin, an agent, a manager, anonymously and as an admin: each with
a real API token of a real user, on a directory with requests, tasks and notifications (so IDs
hit real rows), with the real Temporal dev server and worker behind the app. Every answer goes
through all of Schemathesis's checks: no 5xx, and every status, content type, header and body
as the document describes them.

Deterministic: a fixed seed, derandomized, no example database. `LINKDESK_FUZZ_EXAMPLES` sets
the number of random cases per operation and caller (`make fuzz` raises it for a campaign).
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import positive_data_acceptance
from temporalio.testing import WorkflowEnvironment

from service import create_app, idempotency
from tests.api.conftest import FIGURES
from tests.conftest import (
    ApiClient,
    Factory,
    LoopThread,
    api_token,
    app_on_test_database,
    fill_demo_directory,
    running_worker,
)
from tests.lifecycle import decide, file, task_of, wait_status

pytestmark = pytest.mark.fuzz

SEED = 20261207
EXAMPLES = int(os.environ.get("LINKDESK_FUZZ_EXAMPLES") or 5)
OPENAPI = "/api/v1/openapi.json"
REVOKE_TOKEN = "DELETE /api/v1/tokens/{token_id}"
WELL_FORMED_KEY = re.compile(rf"[\x20-\x7e]{{1,{idempotency.MAX_LENGTH}}}")
# Checks left out for one operation, each for a deliberate reason.
EXCLUDED_CHECKS = {
    # A well-formed reference to no console or company, or a request that would change
    # nothing, is refused with the documented 422: no document can say which codes exist.
    "POST /api/v1/requests": [positive_data_acceptance],
    # A well-formed user ID of no agent in the `agent` filter is refused with 422 (documented).
    "GET /api/v1/requests": [positive_data_acceptance],
    "GET /api/v1/metrics/turnaround": [positive_data_acceptance],
    # A username of no active agent or manager is refused with 422 (documented).
    "POST /api/v1/tasks/{task_id}/reassign": [positive_data_acceptance],
    # A scope that does not fit the role (a console for an agent), a console or company that
    # does not exist, or text that is no e-mail address, is refused with 422 (documented):
    # which scope a role takes is a rule between fields that no schema states.
    "POST /api/v1/users": [positive_data_acceptance],
    # A decision of another task type (grant on a review) is refused with 422 (documented).
    "POST /api/v1/tasks/{task_id}/complete": [positive_data_acceptance],
    # An object reference without its object type, or a date range that ends before it
    # starts, is refused with 422 (documented).
    "GET /api/v1/audit": [positive_data_acceptance],
}


def _served_document() -> dict[str, Any]:
    """The OpenAPI document as the app serves it, read once when the tests are collected."""
    with tempfile.TemporaryDirectory() as var:
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": f"sqlite:///{var}/openapi.sqlite3",
                "SECRET_KEY": "only-reads-the-openapi-document-of-linkdesk",
                "VAR_DIR": var,
            }
        )
        return dict(app.test_client().get(OPENAPI).json)


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
    }
)
# Loaded when the module is collected, so each operation and caller is a test of its own
# (Schemathesis's fixture-based loader does not run under pytest 9.2); every case is sent to
# the module's app (`fuzz_app`).
schema = schemathesis.openapi.from_dict(_served_document(), config=CONFIG)


@dataclass
class Caller:
    """Who the cases are sent as: a role's user with an API token, or nobody."""

    role: str
    username: str | None
    token: str | None = None

    def renew(self, app: Flask) -> None:
        if self.username:
            self.token = api_token(app.test_client(), self.username)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


# The user each role's cases are sent as (users of `fill_demo_directory`).
CALLERS = {
    "partner": "pacct",
    "instance_admin": "iadmin",
    "agent": "agent",
    "manager": "boss",
    "anonymous": None,
    # Last: its cases may deactivate or change the other callers' users.
    "admin": "root",
}


@pytest.fixture(scope="module")
def fuzz_app(
    base_config: dict[str, Any],
    _migrated_schema: None,
    temporal_address: str,
    temporal_env: WorkflowEnvironment,
    loop_thread: LoopThread,
) -> Iterator[Flask]:
    """One app with its worker for the whole module, on a directory with requests in several
    states: open, claimed and info tasks, timelines and notifications."""
    with (
        app_on_test_database({**base_config, "TEMPORAL_ADDRESS": temporal_address}) as app,
        running_worker(app, temporal_env, loop_thread),
    ):
        fill_demo_directory(Factory(app))
        client = app.test_client()

        def api(username: str) -> ApiClient:
            return ApiClient(app.test_client(), api_token(client, username))

        partner, admin, agent = api("pacct"), api("iadmin"), api("agent")
        link = file(partner, "establish_link", "ACCT-01", "BETA").json["id"]
        access = file(partner, "enable_access", "ACCT-01", "GAMMA").json["id"]
        file(api("pvar"), "enable_access", "VAR-01", "DELTA")
        dissociate = file(admin, "dissociate_link", "ACCT-01", "ACME-US").json["id"]
        wait_status(partner, link, "awaiting_agent")
        wait_status(partner, access, "awaiting_consent")
        wait_status(admin, dissociate, "awaiting_agent")
        claimed = task_of(agent, link, "review")
        assert agent.post(f"/api/v1/tasks/{claimed['id']}/claim").status_code == 200
        asked = task_of(agent, dissociate, "review")
        assert agent.post(f"/api/v1/tasks/{asked['id']}/claim").status_code == 200
        assert decide(agent, asked, "request_info", "Which firm?").status_code == 200
        wait_status(admin, dissociate, "awaiting_requester")
        yield app


@pytest.fixture(scope="module", params=list(CALLERS))
def caller(request: pytest.FixtureRequest, fuzz_app: Flask) -> Caller:
    found = Caller(request.param, CALLERS[request.param])
    found.renew(fuzz_app)
    return found


def fresh_idempotency_key(case: Any) -> None:
    """A well-formed `Idempotency-Key` the case carries becomes a new one: the document asks
    for one key per action, and a key the fuzzer draws again for another call is rightly
    refused (422). A malformed key stays, to be refused with 400."""
    headers = case.headers or {}
    key = headers.get(idempotency.HEADER)
    if isinstance(key, str) and WELL_FORMED_KEY.fullmatch(key) and key.strip():
        headers[idempotency.HEADER] = uuid.uuid4().hex
        case.headers = headers


@schema.parametrize()
def test_api_fuzz(case: Any, caller: Caller, fuzz_app: Flask) -> None:
    FIGURES.cases += 1
    FIGURES.operations.add(case.operation.label)
    FIGURES.roles.add(caller.role)
    # The caller's token, unless the case is about leaving the credentials out.
    negated = case.operation.schema.is_security_param_negated(case)
    headers = {} if negated else caller.headers
    case.operation.schema.app = fuzz_app  # also for the checks that send cases of their own
    fresh_idempotency_key(case)
    try:
        response = case.call(app=fuzz_app, headers=headers)
        FIGURES.statuses[response.status_code] += 1
        if case.operation.label == REVOKE_TOKEN and response.status_code == 204:
            caller.renew(fuzz_app)  # it may have been the caller's own
        case.validate_response(
            response,
            headers=headers,
            transport_kwargs={"app": fuzz_app},
            excluded_checks=EXCLUDED_CHECKS.get(case.operation.label),
        )
    except FailureGroup as group:
        for failure in group.exceptions:
            FIGURES.failures[type(failure).__name__] += 1
        raise
