"""The security headers on every response, HSTS behind HTTPS, and no caching of what is
answered to someone signed in."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from flask.testing import FlaskClient


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
