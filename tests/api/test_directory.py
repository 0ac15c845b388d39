"""The directory through the API: each role sees exactly its scope."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Factory

Api = Any


def codes(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["code"] for item in response.json["items"]]


def pairs(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.json
    return [(r["console"]["code"], r["instance"]["code"]) for r in response.json["items"]]


@pytest.mark.parametrize(
    ("username", "consoles", "instances"),
    [
        ("pacct", ["ACCT-01"], ["ACME-US", "BETA", "GAMMA"]),
        ("pvar", ["VAR-01"], ["DELTA"]),
        ("iadmin", ["ACCT-01", "VAR-01"], ["ACME-US", "DELTA"]),
        ("agent", ["ACCT-01", "MGMT-01", "VAR-01"], ["ACME-US", "BETA", "DELTA", "GAMMA", "OMEGA"]),
        ("boss", ["ACCT-01", "MGMT-01", "VAR-01"], ["ACME-US", "BETA", "DELTA", "GAMMA", "OMEGA"]),
        ("root", ["ACCT-01", "MGMT-01", "VAR-01"], ["ACME-US", "BETA", "DELTA", "GAMMA", "OMEGA"]),
    ],
)
def test_each_role_lists_exactly_its_scope(
    demo_directory: Factory, api_as: Any, username: str, consoles: list[str], instances: list[str]
) -> None:
    api = api_as(username)
    assert codes(api.get("/api/v1/consoles")) == consoles
    assert codes(api.get("/api/v1/instances")) == instances


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("pacct", [("ACCT-01", "ACME-US"), ("ACCT-01", "BETA"), ("ACCT-01", "GAMMA")]),
        ("pvar", [("VAR-01", "DELTA")]),
        ("iadmin", [("ACCT-01", "ACME-US"), ("VAR-01", "DELTA")]),
        (
            "agent",
            [
                ("ACCT-01", "ACME-US"),
                ("ACCT-01", "BETA"),
                ("ACCT-01", "GAMMA"),
                ("VAR-01", "DELTA"),
            ],
        ),
    ],
)
def test_each_role_sees_exactly_its_relationships(
    demo_directory: Factory, api_as: Any, username: str, expected: list[tuple[str, str]]
) -> None:
    assert pairs(api_as(username).get("/api/v1/relationships")) == expected


def test_me_shows_role_and_scope(demo_directory: Factory, api_as: Any) -> None:
    partner = api_as("pacct").get("/api/v1/me").json
    assert partner["role"] == "partner"
    assert partner["console"]["code"] == "ACCT-01"
    assert partner["console"]["type"] == "accountant"
    assert partner["instances"] == []
    admin = api_as("iadmin").get("/api/v1/me").json
    assert admin["console"] is None
    assert [i["code"] for i in admin["instances"]] == ["ACME-US", "DELTA"]


@pytest.mark.parametrize(
    ("instance", "access", "linked", "slide_in", "missing"),
    [
        ("ACME-US", True, True, True, []),
        ("BETA", True, False, False, ["establish_link"]),
        ("GAMMA", False, False, False, ["enable_access", "establish_link"]),
        ("OMEGA", False, False, False, ["enable_access", "establish_link"]),  # no row yet
    ],
)
def test_relationship_lookup_reports_slide_in_and_what_is_missing(
    demo_directory: Factory,
    api_as: Any,
    instance: str,
    access: bool,
    linked: bool,
    slide_in: bool,
    missing: list[str],
) -> None:
    response = api_as("pacct").get(
        "/api/v1/relationships", query_string={"console_id": "ACCT-01", "instance_id": instance}
    )
    assert response.status_code == 200
    assert response.json["total"] == 1
    (item,) = response.json["items"]
    assert item["console"]["code"] == "ACCT-01"
    assert item["instance"]["code"] == instance
    assert (item["access_enabled"], item["linked"]) == (access, linked)
    assert item["can_slide_in"] is slide_in
    assert item["missing"] == missing


def test_references_accept_numeric_ids_and_codes_in_any_case(
    demo_directory: Factory, api_as: Any
) -> None:
    api = api_as("agent")
    console_id = api.get("/api/v1/consoles").json["items"][0]["id"]
    by_id = api.get(
        "/api/v1/relationships", query_string={"console_id": console_id, "instance_id": "beta"}
    )
    assert pairs(by_id) == [("ACCT-01", "BETA")]


def test_partner_cannot_reach_another_console(demo_directory: Factory, api_as: Any) -> None:
    api = api_as("pacct")
    other = api.get("/api/v1/relationships", query_string={"console_id": "VAR-01"})
    unknown = api.get("/api/v1/relationships", query_string={"console_id": "NOPE-99"})
    assert other.status_code == unknown.status_code == 404
    assert other.json["error"]["message"] == "No console 'VAR-01' that you can see."
    assert "console_id" in other.json["error"]["fields"]


def test_partner_cannot_enumerate_unrelated_instances_by_numeric_id(
    demo_directory: Factory, api_as: Any
) -> None:
    omega_id = next(
        i["id"]
        for i in api_as("agent").get("/api/v1/instances").json["items"]
        if i["code"] == "OMEGA"
    )
    response = api_as("pacct").get(
        "/api/v1/relationships", query_string={"console_id": "ACCT-01", "instance_id": omega_id}
    )
    assert response.status_code == 404
    by_code = api_as("pacct").get(
        "/api/v1/relationships", query_string={"console_id": "ACCT-01", "instance_id": "OMEGA"}
    )
    assert by_code.status_code == 200


def test_instance_admin_only_reaches_own_instances(demo_directory: Factory, api_as: Any) -> None:
    api = api_as("iadmin")
    assert api.get("/api/v1/relationships", query_string={"instance_id": "BETA"}).status_code == 404
    own = api.get(
        "/api/v1/relationships", query_string={"console_id": "MGMT-01", "instance_id": "ACME-US"}
    )
    assert pairs(own) == [("MGMT-01", "ACME-US")]
    assert own.json["items"][0]["missing"] == ["enable_access", "establish_link"]


def test_lists_are_paginated(demo_directory: Factory, api_as: Any) -> None:
    api = api_as("agent")
    first = api.get("/api/v1/instances", query_string={"per_page": 2})
    third = api.get("/api/v1/instances", query_string={"per_page": 2, "page": 3})
    assert first.json["total"] == 5
    assert (first.json["page"], first.json["per_page"]) == (1, 2)
    assert codes(first) == ["ACME-US", "BETA"]
    assert codes(third) == ["OMEGA"]
    beyond = api.get("/api/v1/instances", query_string={"per_page": 2, "page": 9})
    assert beyond.json["items"] == [] and beyond.json["total"] == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 201}, "per_page"),
        ({"page": "two"}, "page"),
        ({"console_id": "bad code!"}, "console_id"),
        ({"instance_id": "-3"}, "instance_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_query_arguments_are_422_per_field(
    demo_directory: Factory, api_as: Any, query: dict[str, Any], field: str
) -> None:
    response = api_as("agent").get("/api/v1/relationships", query_string=query)
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert field in response.json["error"]["fields"]


def test_unknown_api_path_and_method_are_json_errors(demo_directory: Factory, api_as: Any) -> None:
    api = api_as("agent")
    missing = api.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json["error"]["code"] == "not_found"
    wrong_method = api.client.delete("/api/v1/consoles", headers=api.headers)
    assert wrong_method.status_code == 405
    assert wrong_method.json["error"]["code"] == "method_not_allowed"


def test_openapi_document_describes_the_api(client: Any) -> None:
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in ("/api/v1/tokens", "/api/v1/me", "/api/v1/consoles", "/api/v1/relationships"):
        assert path in spec["paths"]
    relationships = spec["paths"]["/api/v1/relationships"]["get"]
    assert relationships["summary"].startswith("Show relationships")
    assert {p["name"] for p in relationships["parameters"]} >= {"console_id", "instance_id"}
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/api/v1/tokens"]["post"]["security"] == []
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs.get_data(as_text=True)
    bundle = client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    bundle.close()


def test_every_write_documents_its_503(client: Any) -> None:
    """Any write can meet Temporal unreachable or SQLite too busy: the answer, 503 with
    Retry-After and nothing done, is in the document for each, and so is a list's total."""
    spec = client.get("/api/v1/openapi.json").json
    writes = [
        (path, method, operation)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method in ("post", "put", "patch", "delete")
    ]
    assert len(writes) >= 11
    for path, method, operation in writes:
        assert "503" in operation["responses"], (method, path)
        assert "Retry-After" in operation["responses"]["503"]["description"]
    listed = spec["components"]["schemas"]["RequestList"]["properties"]
    assert listed["total_exact"]["type"] == "boolean"
