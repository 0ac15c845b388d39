"""The admin console's pages: the admin home and the audit log, for admins only; in a real
browser, an admin finds a change in the audit log and exports it as CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect

from service.audit import audit
from service.extensions import db
from service.models import ApiToken, Relationship, Request, User
from tests.conftest import Factory, sign_in
from tests.web.conftest import PHONE, Shoot
from tests.web.conftest import sign_in as sign_in_browser


@pytest.mark.parametrize("username", ["pacct", "iadmin", "agent", "boss"])
@pytest.mark.parametrize("path", ["/admin", "/admin/audit", "/admin/audit.csv"])
def test_the_admin_pages_are_not_there_for_other_roles(
    client: FlaskClient, demo_directory: Factory, username: str, path: str
) -> None:
    sign_in(client, username)
    response = client.get(path)
    assert response.status_code == 404
    assert "Admin" not in re.findall(r"<nav aria-label=\"Main\">.*?</nav>", response.text, re.S)[0]


def test_the_admin_home_counts_users_directory_relationships_and_open_requests(
    app: Flask, client: FlaskClient, demo_directory: Factory
) -> None:
    demo_directory.user("gone", "agent")
    with app.app_context():
        user = db.session.execute(db.select(User).filter_by(username="gone")).scalar_one()
        user.active = False
        db.session.commit()
    sign_in(client, "root")
    page = client.get("/admin").text
    rows = [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", page, re.S)
    ]
    assert ["Agent", "1", "1"] in rows
    assert ["Partner", "2", "0"] in rows
    assert ["Admin", "1", "0"] in rows
    assert ["enabled", "linked", "1"] in rows  # ACCT-01 / ACME-US
    assert ["enabled", "not linked", "1"] in rows  # ACCT-01 / BETA
    assert ["disabled", "linked", "1"] in rows  # VAR-01 / DELTA
    assert ["disabled", "not linked", "1"] in rows  # ACCT-01 / GAMMA
    assert re.search(r"<dt>Consoles</dt><dd>3</dd>", page)
    assert re.search(r"<dt>Instances</dt><dd>5</dd>", page)
    assert re.search(r"<dt>Open requests</dt><dd>0</dd>", page)
    # The Admin entry of the navigation is current, and the audit log is linked.
    assert re.search(r'<a href="/admin" aria-current="page">Admin</a>', page)
    assert 'href="/admin/audit"' in page
    assert 'href="/directory/consoles"' in page


def test_audit_rows_link_to_their_object_where_it_has_a_page(
    app: Flask, client: FlaskClient, demo_directory: Factory
) -> None:
    with app.app_context():
        at = datetime(2026, 11, 2, 12, tzinfo=UTC)
        audit("cli:test", "relationship.set", Relationship, "ACCT-01/BETA", at=at)
        audit("agent", "request.approved", Request, "REQ-000042", at=at)
        audit("cli:test", "user.deactivated", User, "pvar", at=at)
        audit("pvar", "token.created", ApiToken, "ldk_abcdef", at=at)
        db.session.commit()
    sign_in(client, "root")
    page = client.get("/admin/audit?from=2026-11-02&to=2026-11-02").text
    assert '<a href="/directory/relationships?console=ACCT-01&amp;instance=BETA">' in page
    assert '<a href="/requests/REQ-000042">REQ-000042</a>' in page
    # A user links to the users page, searched for them; a token has no page.
    assert '<a href="/admin/users?q=pvar">pvar</a>' in page
    assert "</span> ldk_abcdef</span></td>" in page
    assert 'href="/admin/users">Users</a>' in client.get("/admin").text


def test_a_bad_filter_is_shown_on_the_page(client: FlaskClient, demo_directory: Factory) -> None:
    sign_in(client, "root")
    response = client.get("/admin/audit?from=2026-11-03&to=2026-11-02&cursor=nope")
    assert response.status_code == 422
    assert "Please correct the marked fields." in response.text
    assert 'id="cursor-error"' not in response.text  # no such field on the form: said above
    assert 'aria-invalid="true"' not in response.text or "to-error" in response.text


@pytest.mark.browser
def test_an_admin_finds_a_new_api_token_in_the_audit_log_and_exports_it(
    open_page: Callable[..., Page], shoot: Shoot, demo_directory: Factory
) -> None:
    page = open_page()
    sign_in_browser(page, shoot, "root")
    page.get_by_role("link", name=re.compile(r"\(settings\)")).click()
    page.get_by_label("Token name").fill("nightly report")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("Token nightly report created.")).to_be_visible()
    prefix = page.get_by_label("New token secret").inner_text()[:10]

    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", level=1, name="Admin")).to_be_visible()
    expect(nav.get_by_role("link", name="Admin")).to_have_attribute("aria-current", "page")
    shoot(page, "admin-home")

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", level=1, name="Audit log")).to_be_visible()
    page.get_by_label("Actor").fill("root")
    page.get_by_label("Action").fill("token.created")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("table.audit-log tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("token.created")
    expect(rows.first).to_contain_text(prefix)
    expect(rows.first).to_contain_text("name: nightly report")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    ).to_have_attribute("aria-current", "page")
    shoot(page, "audit-filtered")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Export CSV").click()
    download = download_info.value
    assert re.fullmatch(r"linkdesk-audit\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8") as exported:
        rows_csv = list(csv.reader(io.StringIO(exported.read())))
    assert rows_csv[0][:5] == ["at", "actor", "action", "object_type", "object_ref"]
    assert [row[1:5] for row in rows_csv[1:]] == [["root", "token.created", "apitoken", prefix]]
    assert '"name": "nightly report"' in rows_csv[1][6]

    phone = open_page(viewport=PHONE)
    sign_in_browser(phone, shoot, "root")
    phone.goto(page.url)
    expect(phone.locator("table.audit-log tbody tr")).to_have_count(1)
    for path, step in ((page.url, "phone-audit"), ("/admin", "phone-admin-home")):
        phone.goto(path)
        scroll_width, inner_width = phone.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner_width, f"{path} is {scroll_width}px wide on a phone"
        shoot(phone, step)
