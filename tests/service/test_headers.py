"""The security headers on every response, HSTS behind HTTPS, and no caching of what is
answered to someone signed in."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import Factory, sign_in

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def security_headers(response: Any) -> dict[str, str | None]:
    """The security headers a response carries (None for a missing one)."""
    return {name: response.headers.get(name) for name in SECURITY_HEADERS}


@pytest.mark.parametrize(
    "url",
    [
        "/sign-in",
        "/",  # a redirect to the sign-in page
        "/no-such-page",
        "/healthz",
        "/api/v1/me",  # 401 in the API's error body
        "/api/v1/openapi.json",
        "/api/v1/docs",
        "/static/css/app.css",
    ],
)
def test_every_response_carries_the_security_headers(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert security_headers(response) == SECURITY_HEADERS
    response.close()


def test_a_signed_in_page_and_a_bearer_answer_carry_them_too(
    client: FlaskClient, api_as: Any, demo_directory: Factory
) -> None:
    sign_in(client, "agent")
    assert security_headers(client.get("/queue")) == SECURITY_HEADERS
    assert security_headers(api_as("pacct").get("/api/v1/me")) == SECURITY_HEADERS


def test_hsts_only_when_the_session_cookie_is_https_only(make_app: Any) -> None:
    plain = make_app(SESSION_COOKIE_SECURE=False).test_client().get("/healthz")
    assert "Strict-Transport-Security" not in plain.headers
    secure = make_app(SESSION_COOKIE_SECURE=True).test_client().get("/healthz")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_answers_to_a_signed_in_browser_are_not_stored(
    client: FlaskClient, demo_directory: Factory
) -> None:
    sign_in(client, "boss")
    for url in ("/", "/queue", "/dashboard", "/directory/relationships", "/settings"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
    # The API answered with the session cookie, and an error page, are not stored either.
    assert client.get("/api/v1/me").headers["Cache-Control"] == "no-store"
    assert client.get("/no-such-page").headers["Cache-Control"] == "no-store"


def test_answers_to_a_bearer_token_are_not_stored(api_as: Any, demo_directory: Factory) -> None:
    api = api_as("agent")
    for url in ("/api/v1/me", "/api/v1/relationships", "/api/v1/requests", "/api/v1/nothing"):
        assert api.get(url).headers["Cache-Control"] == "no-store", url


def test_static_files_keep_their_caching_even_when_signed_in(
    client: FlaskClient, demo_directory: Factory
) -> None:
    sign_in(client, "agent")
    for url in ("/static/css/app.css", "/static/vendor/swagger-ui/swagger-ui.css"):
        response = client.get(url)
        assert response.status_code == 200
        assert "no-store" not in response.headers.get("Cache-Control", "")
        assert response.headers["ETag"]
        response.close()


def test_anonymous_public_answers_stay_cacheable(client: FlaskClient) -> None:
    for url in ("/healthz", "/api/v1/openapi.json"):
        assert "no-store" not in client.get(url).headers.get("Cache-Control", ""), url


def test_api_docs_page_has_no_inline_script(client: FlaskClient) -> None:
    """The docs page starts Swagger UI from a static script, so the CSP holds there too."""
    page = client.get("/api/v1/docs").get_data(as_text=True)
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.DOTALL)
    assert scripts, "no script on the docs page"
    assert all('src="' in attributes and not body.strip() for attributes, body in scripts)
    assert 'src="/static/js/api-docs.js"' in page
    assert 'data-spec-url="/api/v1/openapi.json"' in page
    init = client.get("/static/js/api-docs.js")
    assert init.status_code == 200
    assert "SwaggerUIBundle" in init.get_data(as_text=True)
    init.close()


def test_api_docs_page_passes_the_swagger_ui_settings(make_app: Any) -> None:
    """Extra Swagger UI settings reach the page intact, quotes and all."""
    app = make_app(OPENAPI_SWAGGER_UI_CONFIG={"docExpansion": "none", "title": 'a "b" <c>'})
    page = app.test_client().get("/api/v1/docs").get_data(as_text=True)
    match = re.search(r'data-config="([^"]*)"', page)
    assert match
    assert json.loads(html.unescape(match.group(1))) == {
        "docExpansion": "none",
        "title": 'a "b" <c>',
    }
