"""Bad input from a client never answers 500: it is refused with the right 4xx, in the
documented error body under /api/."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import Factory, sign_in, waiting_request
from tests.lifecycle import file, task_of, wait_status

HUGE = "99999999999999999999"  # past 64 bits


def refused(response: Any, status: int) -> dict[str, Any]:
    """The error body of a response with this status."""
    assert response.status_code == status, (response.status_code, response.get_data()[:500])
    assert response.is_json, response.get_data()[:500]
    return dict(response.json["error"])


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/consoles?page={HUGE}",
        f"/api/v1/consoles?per_page={HUGE}",
        f"/api/v1/requests?page={HUGE}",
        f"/api/v1/requests?agent={HUGE}",
        f"/api/v1/requests?assignee={HUGE}",
        f"/api/v1/requests?console_id={HUGE}",
        f"/api/v1/relationships?console_id={HUGE}",
        f"/api/v1/tasks?page={HUGE}",
        f"/api/v1/metrics/turnaround?agent={HUGE}",
        "/api/v1/requests?page=2147483648",
    ],
)
def test_huge_integers_in_queries_are_refused(
    demo_directory: Factory, api_as: Any, url: str
) -> None:
    username = "boss" if "metrics" in url else "agent"
    assert refused(api_as(username).get(url), 422)["code"] == "validation_error"


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/requests/REQ-{HUGE}",
        f"/api/v1/requests/REQ-{HUGE}/comments",
        f"/api/v1/tasks/{HUGE}/claim",
        f"/api/v1/notifications/{HUGE}/read",
    ],
)
def test_huge_ids_in_paths_are_not_found(demo_directory: Factory, api_as: Any, url: str) -> None:
    api = api_as("agent")
    response = api.get(url) if url.endswith(HUGE) else api.post(url, json={"body": "hello"})
    refused(response, 404)


def test_huge_token_id_is_not_found(demo_directory: Factory, api_as: Any) -> None:
    refused(api_as("agent").delete(f"/api/v1/tokens/{HUGE}"), 404)


@pytest.mark.parametrize("console_id", [int(HUGE), HUGE, 2**31])
def test_huge_console_id_in_a_body_is_refused(
    demo_directory: Factory, api_as: Any, console_id: Any
) -> None:
    body = {"kind": "link", "console_id": console_id, "instance_id": "BETA", "reason": "x"}
    error = refused(api_as("pacct").post("/api/v1/requests", json=body), 422)
    assert "console_id" in error["fields"]


# Superscript two, full-width one, Arabic-Indic three: digits to str.isdigit, not to LinkDesk.
@pytest.mark.parametrize("ref", ["\u00b2", "\uff11", "\u0663"])
def test_only_ascii_digits_are_ids(demo_directory: Factory, api_as: Any, ref: str) -> None:
    body = {"kind": "link", "console_id": ref, "instance_id": "BETA", "reason": "x"}
    error = refused(api_as("pacct").post("/api/v1/requests", json=body), 422)
    assert "console_id" in error["fields"]
    refused(api_as("agent").get("/api/v1/relationships", query_string={"console_id": ref}), 422)
    refused(api_as("agent").get("/api/v1/requests", query_string={"agent": ref}), 422)


def test_a_request_id_of_other_digits_is_not_found(demo_directory: Factory, api_as: Any) -> None:
    refused(api_as("agent").get("/api/v1/requests/REQ-²"), 404)
    response = api_as("agent").get("/api/v1/requests", query_string={"q": "REQ-\uff11"})
    assert response.status_code == 200, response.json


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/requests?created_from=0001-01-01",
        "/api/v1/requests?resolved_to=9999-12-31",
        "/api/v1/metrics/turnaround?from=0001-01-01&to=0001-01-01",
        "/api/v1/metrics/turnaround?to=0001-01-01",
        "/api/v1/metrics/turnaround?from=9999-12-31&to=9999-12-31",
    ],
)
def test_dates_out_of_range_are_refused(demo_directory: Factory, api_as: Any, url: str) -> None:
    error = refused(api_as("boss").get(url), 422)
    assert error["fields"] and all(error["fields"].values())


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/tokens", {"username": "agent", "password": "pw", "name": "a\x00b"}, "name"),
        ("/api/v1/tokens", {"username": "ag\x00ent", "password": "pw"}, "username"),
        (
            "/api/v1/requests",
            {"kind": "link", "console_id": "ACCT-01", "instance_id": "BETA", "reason": "a\x00"},
            "reason",
        ),
    ],
)
def test_nul_bytes_in_text_are_refused(
    demo_directory: Factory, api_as: Any, url: str, body: dict[str, Any], field: str
) -> None:
    error = refused(api_as("pacct").post(url, json=body), 422)
    assert field in error["fields"]


def test_nul_bytes_in_a_query_are_refused(demo_directory: Factory, api_as: Any) -> None:
    refused(api_as("agent").get("/api/v1/requests", query_string={"q": "a\x00"}), 422)


def test_an_oversize_body_is_refused(make_app: Any) -> None:
    app = make_app(MAX_CONTENT_LENGTH=1000)
    client = app.test_client()
    body = {"username": "x", "password": "y" * 2000}
    error = refused(client.post("/api/v1/tokens", json=body), 413)
    assert error["code"] == "payload_too_large"
    page = client.post("/sign-in", data={"username": "x", "password": "y" * 2000})
    assert page.status_code == 413
    assert page.mimetype == "text/html"


def test_the_body_cap_defaults_to_one_mebibyte(app: Flask) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_deeply_nested_json_is_a_bad_request(client: FlaskClient) -> None:
    body = "[" * 1000 + "]" * 1000
    response = client.post("/api/v1/tokens", data=body, content_type="application/json")
    assert refused(response, 400)["code"] == "bad_request"


def test_a_body_that_is_not_utf8_is_a_bad_request(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/tokens", data=b'{"username": "\xff"}', content_type="application/json"
    )
    refused(response, 400)


def test_an_anonymous_unsafe_api_call_is_unauthorized(client: FlaskClient) -> None:
    response = client.post("/api/v1/requests", json={"kind": "link"})
    assert refused(response, 401)["code"] == "unauthorized"
    refused(client.post("/api/v1/tasks/1/claim"), 401)


def test_a_page_post_without_csrf_token_still_fails_csrf(client: FlaskClient) -> None:
    response = client.post("/requests/new", data={"kind": "link"})
    assert response.status_code == 400


def test_a_method_not_allowed_says_which_are(client: FlaskClient) -> None:
    response = client.open("/api/v1/tokens", method="TRACE")
    assert refused(response, 405)["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]
    page = client.open("/sign-in", method="TRACE")
    assert page.status_code == 405
    assert "GET" in page.headers["Allow"]


def test_a_too_long_url_is_refused_as_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/requests?q=" + "x" * 70_000)
    assert refused(response, 414)["code"] == "uri_too_long"


def test_the_error_body_stays_documented(client: FlaskClient) -> None:
    response = client.post("/api/v1/tokens", data="{", content_type="application/json")
    assert set(json.loads(response.get_data())["error"]) == {"code", "message", "fields"}


@pytest.mark.parametrize(
    "error", [RecursionError("too deep"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")]
)
def test_unreadable_input_anywhere_is_a_bad_request(make_app: Any, error: Exception) -> None:
    app = make_app()

    def unreadable() -> str:
        raise error

    app.add_url_rule("/api/v1/unreadable", view_func=unreadable)
    assert refused(app.test_client().get("/api/v1/unreadable"), 400)["code"] == "bad_request"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        (f"/requests?page={HUGE}", 422),
        ("/requests?created_from=0001-01-01", 422),
        ("/dashboard?from=0001-01-01&to=0001-01-01", 422),
        (f"/queue/tasks/{HUGE}", 404),
        (f"/requests/REQ-{HUGE}", 404),
    ],
)
def test_pages_refuse_bad_input_too(
    demo_directory: Factory, client: FlaskClient, url: str, status: int
) -> None:
    sign_in(client, "boss")
    response = client.get(url)
    assert response.status_code == status, response.get_data()[:300]


# The OpenAPI document tells the truth (findings of tests/api/test_fuzz.py) ------------------


@pytest.fixture
def openapi(client: FlaskClient) -> dict[str, Any]:
    return dict(client.get("/api/v1/openapi.json").json)


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    ]


def test_no_operation_documents_a_catch_all_answer(openapi: dict[str, Any]) -> None:
    # A `default` response made any status, a 500 too, "documented".
    for path, method, operation in operations(openapi):
        assert "default" not in operation["responses"], (method, path)


def test_every_operation_documents_its_error_answers(openapi: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/Error"}
    for path, method, operation in operations(openapi):
        responses = operation["responses"]
        expected = {"414"}
        if operation.get("security") != []:
            expected.add("401")
        if "requestBody" in operation:
            expected |= {"400", "413"}
        if "{" in path:
            expected.add("404")
        if method in ("post", "delete"):
            expected.add("503")
        assert expected <= set(responses), (method, path, sorted(responses))
        for status in expected:
            ref = responses[status].get("$ref", "").rsplit("/", 1)[-1]
            documented = openapi["components"]["responses"][ref] if ref else responses[status]
            assert documented["content"]["application/json"]["schema"] == error


def test_answers_found_by_fuzzing_are_documented(
    demo_directory: Factory, api_as: Any, openapi: dict[str, Any]
) -> None:
    # An agent filing a request is refused with 403; an unknown company in the request list's
    # filter is 404. Neither status was in the document.
    body = {"kind": "establish_link", "console_id": "ACCT-01", "instance_id": "BETA", "reason": "x"}
    refused(api_as("agent").post("/api/v1/requests", json=body), 403)
    assert "403" in openapi["paths"]["/api/v1/requests"]["post"]["responses"]
    refused(api_as("agent").get("/api/v1/requests", query_string={"instance_id": "null"}), 404)
    assert "404" in openapi["paths"]["/api/v1/requests"]["get"]["responses"]


def test_input_bounds_are_in_the_document(openapi: dict[str, Any]) -> None:
    # page=27725934311 was refused with 422 while the document allowed any integer.
    page = openapi["paths"]["/api/v1/notifications"]["get"]["parameters"][0]
    assert page["name"] == "page"
    assert page["schema"]["maximum"] == 2**31 - 1
    # Text holding NUL is refused, and the document says so.
    username = openapi["components"]["schemas"]["TokenCreate"]["properties"]["username"]
    assert re.fullmatch(username["pattern"], "agent")
    assert not re.fullmatch(username["pattern"], "ag\x00ent")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        *[("ACME-US", True), ("12", True), ("012", True), ("1.a", True), ("null", True)],
        *[("", False), ("0", False), ("-1", False), (".a", False), ("a" * 65, False)],
    ],
)
def test_references_are_documented_as_read(
    demo_directory: Factory, api_as: Any, openapi: dict[str, Any], value: str, valid: bool
) -> None:
    # Console and company references were documented as any JSON value: `null` or "" was
    # "valid" and refused with 422.
    parameters = openapi["paths"]["/api/v1/relationships"]["get"]["parameters"]
    (documented,) = [p["schema"] for p in parameters if p["name"] == "instance_id"]
    integer, text = documented["oneOf"]
    assert integer == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    matches = bool(re.fullmatch(text["pattern"], value)) and len(value) <= text["maxLength"]
    assert matches == valid
    response = api_as("agent").get("/api/v1/relationships", query_string={"instance_id": value})
    assert (response.status_code != 422) == valid, response.json


@pytest.mark.parametrize(("value", "valid"), [("none", True), ("NONE", True), ("7", True)])
def test_the_agent_filter_is_documented_as_read(
    openapi: dict[str, Any], value: str, valid: bool
) -> None:
    parameters = openapi["paths"]["/api/v1/requests"]["get"]["parameters"]
    (documented,) = [p["schema"] for p in parameters if p["name"] == "agent"]
    assert documented["type"] == "string"
    assert bool(re.fullmatch(documented["pattern"], value)) == valid
    assert not re.fullmatch(documented["pattern"], "")


@pytest.mark.usefixtures("worker")
def test_claiming_a_task_of_another_role_is_a_documented_403(
    demo_directory: Factory, api_as: Any, openapi: dict[str, Any]
) -> None:
    # An agent claiming or releasing a consent task is refused with 403, which the document
    # of those two operations did not list (found by the fuzz test).
    partner, admin, agent = api_as("pacct"), api_as("iadmin"), api_as("agent")
    demo_directory.relationship("ACCT-01", "ACME-US", access_enabled=False, linked=True)
    request_id = file(partner, "enable_access", "ACCT-01", "ACME-US").json["id"]
    wait_status(partner, request_id, "awaiting_consent")
    consent = task_of(admin, request_id, "consent")
    for action in ("claim", "release"):
        refused(agent.post(f"/api/v1/tasks/{consent['id']}/{action}"), 403)
        responses = openapi["paths"][f"/api/v1/tasks/{{task_id}}/{action}"]["post"]["responses"]
        assert "403" in responses, action


def test_refusals_of_the_callers_role_are_documented(
    app: Flask, demo_directory: Factory, api_as: Any, openapi: dict[str, Any]
) -> None:
    # A partner's internal note and an agent's answer to an info request are refused with 403,
    # as is a cancel the workflow refuses to a role: the document of those operations did not
    # list it.
    request_id = waiting_request(app).public_id
    partner, agent = api_as("pacct"), api_as("agent")
    note = {"body": "psst", "internal": True}
    refused(partner.post(f"/api/v1/requests/{request_id}/comments", json=note), 403)
    refused(agent.post(f"/api/v1/requests/{request_id}/response", json={"answer": "x"}), 403)
    for action in ("comments", "response", "cancel"):
        responses = openapi["paths"][f"/api/v1/requests/{{public_id}}/{action}"]["post"]
        assert "403" in responses["responses"], action
